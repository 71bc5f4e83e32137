//! hookgate: a webhook gateway in front of Kafka.
//!
//! Providers POST webhooks to `/webhooks/{source}`; hookgate verifies the
//! signature, rate-limits and deduplicates, wraps the request in a protobuf
//! envelope and answers only once Kafka has acknowledged the write. A
//! companion query API indexes the topics and serves the history.
//!
//! Map of the crate:
//! - [`config`]: the TOML configuration, environment overrides, validation.
//! - [`verify`]: signature and credential schemes, one file per family, and the providers' handshakes.
//! - [`ratelimit`]: per-source and per-client-IP quotas (governor).
//! - [`dedup`]: reserve/commit/release of delivery keys, in process or in Redis.
//! - [`envelope`]: the generated `hookgate.v1` protobuf types, record headers and keys, event ids.
//! - [`publish`]: the shared Kafka producer, its guarantees and the embedded broker.
//! - [`listener`]: the accept loop every listener shares (connection limits, header timeout, drain).
//! - [`ingest`]: the webhook listener and its request pipeline.
//! - [`history`]: indexer, history stores (SQLite, PostgreSQL) and the query API.
//! - [`reconcile`]: asks GitHub and Stripe what they sent and gets back what never arrived.
//! - [`error_body`]: the `{"error":{"code","message"}}` body every listener answers errors with.
//! - [`telemetry`]: metric names, the Prometheus recorder and health endpoints.
//! - [`shutdown`]: the shutdown signal every task listens to.
//! - [`app`]: wiring of the roles of `hookgate serve`, start-up and shutdown.
//! - [`cli`]: the command line (`serve`, `check-config`, `send`).

pub mod app;
pub mod cli;
pub mod config;
pub mod dedup;
pub mod envelope;
pub mod error_body;
pub mod history;
pub mod ingest;
pub mod listener;
pub mod publish;
pub mod ratelimit;
pub mod reconcile;
pub mod shutdown;
pub mod telemetry;
pub mod verify;
