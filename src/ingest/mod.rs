//! Ingest: the `/webhooks/{source}` listener and its request pipeline.
//!
//! - `server`: accept loop, connection limits, HTTP/1.1, graceful shutdown.
//! - `connections`: open connections per client address.
//! - `admission`: route, quotas and the in-flight bound, before the body is read.
//! - `pipeline`: body, verification, dedup, envelope, publish, settle;
//!   `finish`: the settling runs to the end even when the sender hangs up.
//! - `delivery`: a request's event id, dedup key, event type and envelope.
//! - `answer` and `error`: every outcome as a status and a JSON body.

mod admission;
mod answer;
mod body;
mod connections;
mod delivery;
mod error;
mod extract;
mod finish;
mod pipeline;
mod server;
mod source;

pub use answer::IngestBody;
pub use error::IngestError;
pub use extract::{client_ip, extract, LazyJson};
pub use pipeline::Ingest;
pub use server::{serve, ServerLimits};
pub use source::{prepare as prepare_sources, Source, Sources};
