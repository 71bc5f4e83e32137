//! Ingest: the `/webhooks/{source}` listener and its request pipeline.
//!
//! - `server`: the webhook listener on the shared accept loop (`crate::listener`).
//! - `admission`: route, quotas and the in-flight bound, before the body is read.
//! - `pipeline`: body, verification, dedup, envelope, publish, settle;
//!   `finish`: the settling runs to the end even when the sender hangs up.
//! - `delivery`: a request's event id, dedup key, event type and envelope;
//!   `claim`: a large body written to the history store, a reference in the record.
//! - `answer` and `error`: every outcome as a status and a JSON body.

mod admission;
mod answer;
mod body;
mod claim;
mod delivery;
mod error;
mod extract;
mod finish;
mod pipeline;
mod server;
mod source;

/// The webhook listener's connection limits.
pub use crate::listener::Limits as ServerLimits;
pub use answer::IngestBody;
pub use error::IngestError;
pub use extract::{client_ip, extract, LazyJson};
pub use pipeline::Ingest;
pub use server::serve;
pub use source::{prepare as prepare_sources, Source, Sources};
