//! Ingest: the `/webhooks/{source}` listener and its request pipeline.

mod body;
mod connections;
mod drain;
mod error;
mod extract;
mod handler;
mod server;
mod sleeps;
mod source;

pub use error::{IngestBody, IngestError};
pub use extract::{client_ip, extract, LazyJson};
pub use handler::{Ingest, IngestConnection};
pub use server::{serve, ServerLimits};
pub use source::{prepare as prepare_sources, Source, Sources};
