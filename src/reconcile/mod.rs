//! Reconciliation: finding the webhooks a provider sent that never reached
//! hookgate (a DNS or load-balancer outage, a bad secret rotation answered
//! 401, a deploy answered 503) and getting them back.
//!
//! Per source with `[sources.reconcile]`, every `interval`, the query role
//! asks the provider's API what it sent within `lookback` and compares the
//! ids with the dedup keys in the history store:
//! - `github` ([`github`]): a delivery whose guid is not in the history and
//!   whose last attempt failed is redelivered by GitHub (`POST
//!   .../deliveries/{id}/attempts`); it arrives signed through ingest.
//! - `stripe` ([`stripe`]): an event whose id is not in the history is
//!   published from the API's copy through the normal publish path (dedup
//!   included) as an envelope marked `recovered` ([`recover`]).
//!
//! One replica reconciles a source at a time: it holds the source's lease in
//! the history store ([`lease`]). What was done about an item is remembered
//! in the store, so nothing is redelivered or published twice within the
//! lookback. Each run's report is stored for `GET /v1/reconcile` ([`run`]).

mod client;
mod github;
mod lease;
mod recover;
mod run;
mod stripe;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Config, Preset, SourceConfig};
use crate::dedup::{Dedup, DedupError};
use crate::history::{Store, StoreError};
use crate::publish::{PublishError, Publisher};

pub use client::{rate_limit_wait, MAX_WAIT};
pub use lease::Lease;
pub use run::{RunReport, ACTIONS_SHOWN};

/// `verification.scheme` of an envelope the reconciler built from the Stripe API's copy of an event.
pub const RECOVERED_SCHEME: &str = "stripe-api";

/// Why a reconciliation run (or one of its steps) failed.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The provider API could not be reached or did not answer in time.
    #[error("provider API unreachable: {0}")]
    Http(String),
    /// The provider API answered with an error status.
    #[error("provider API answered {status}: {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The start of the response body.
        message: String,
    },
    /// The provider's rate limit asks for a longer wait than one run allows.
    #[error("provider rate limit: retry in {0:?}")]
    RateLimited(Duration),
    /// The provider's answer does not have the documented shape.
    #[error("unexpected answer from the provider API: {0}")]
    Decode(String),
    /// The history store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Publishing a recovered event failed.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// The dedup store failed.
    #[error(transparent)]
    Dedup(#[from] DedupError),
    /// Another replica took the source's lease during the run.
    #[error("another replica took over the lease")]
    LeaseLost,
}

impl ReconcileError {
    /// Stable snake_case code: the `reason` label of `hookgate_reconcile_errors_total` and the report's error code.
    pub fn reason(&self) -> &'static str {
        match self {
            ReconcileError::Http(_) => "unreachable",
            ReconcileError::Status { status: 401 | 403, .. } => "unauthorized",
            ReconcileError::Status { status: 404, .. } => "not_found",
            ReconcileError::Status { .. } => "api_error",
            ReconcileError::RateLimited(_) => "rate_limited",
            ReconcileError::Decode(_) => "bad_response",
            ReconcileError::Store(_) => "store",
            ReconcileError::Publish(_) => "publish",
            ReconcileError::Dedup(_) => "dedup",
            ReconcileError::LeaseLost => "lease_lost",
        }
    }
}

/// What a reconciler needs besides its source.
#[derive(Clone, Debug)]
pub struct Shared {
    /// The whole configuration (topics, ingest deadline).
    pub config: Arc<Config>,
    /// The history store (dedup keys, lease, actions, reports).
    pub store: Store,
    /// Publishes recovered events.
    pub publisher: Publisher,
    /// Deduplicates recovered events against webhooks arriving meanwhile.
    pub dedup: Dedup,
    /// This replica's name in leases.
    pub holder: String,
}

/// Starts one reconciler task per source with `[sources.reconcile]`; each ends when `shutdown` turns true.
pub fn spawn(shared: &Shared, shutdown: &watch::Receiver<bool>) -> Result<Vec<JoinHandle<()>>, ReconcileError> {
    let mut tasks = Vec::new();
    for source in shared.config.sources.iter().filter(|s| s.reconcile.is_some()) {
        let reconciler = run::Reconciler::new(shared.clone(), source)?;
        tasks.push(tokio::spawn(reconciler.run(shutdown.clone())));
    }
    Ok(tasks)
}

/// The sources a configuration reconciles.
pub fn reconciled_sources(config: &Config) -> impl Iterator<Item = &SourceConfig> {
    config.sources.iter().filter(|s| s.reconcile.is_some())
}

/// The name of this replica in leases: host name and the query API's bound address, stable
/// across restarts on a fixed port, so a replica restarted after a crash takes its own lease back at once.
pub fn holder_name(query_addr: std::net::SocketAddr) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    format!("{}/{query_addr}", host.trim())
}

/// The provider name of a reconciled preset, as reports show it.
pub(crate) fn provider_name(preset: Preset) -> &'static str {
    preset.as_str()
}
