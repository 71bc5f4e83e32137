//! Event history: the indexer that copies every published envelope from
//! Kafka into a history store, the store itself (SQLite or PostgreSQL),
//! retention, and the query API that serves it over HTTP.
//!
//! - [`Store`]: one interface over both databases; migrations under `migrations/`.
//! - [`Indexer`]: Kafka consumer, idempotent batched writes, commits after the write.
//! - [`LiveFeed`]: newly indexed events fanned out to live tails.
//! - [`retention`]: deletes events older than `query.retention`.
//! - [`HistoryRuntime`]: the history's own runtime, below ingest's priority (`--role all`).
//! - [`replays`]: publishing stored events again, one or in background jobs.
//! - [`api`]: the axum router (`/v1/events...`, `/v1/replays...`, `/ui`).
//!
//! [`QueryService`] starts all of it for the query role of `hookgate serve`.

pub mod api;
mod indexer;
mod live;
pub mod replays;
pub mod retention;
mod runtime;
mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use hyper_util::service::TowerToHyperService;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::listener::Limits;
use crate::publish::{KafkaEndpoint, Publisher};

pub use api::{router, ApiState};
pub use indexer::{decode, DecodeError, Indexer, IndexerReport, IndexerSettings, MAX_BATCH};
pub use live::{relay_notifications, LiveFeed, LIVE_FEED_CAPACITY};
pub use runtime::{HistoryRuntime, HISTORY_NICE};
pub use store::{
    BodyDigest, EventFilter, EventRecord, EventSummary, HeaderEntry, InvalidEnvelope, JobState, JsonMatch, JsonPointer,
    Order, PointerError, Position, PostgresStore, Provenance, ReplayJob, SqliteStore, Store, StoreError,
    VerificationInfo, NOTIFY_CHANNEL,
};

/// Why the query role could not start.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The history store could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The indexer's Kafka consumer could not be created.
    #[error("cannot create the indexer's kafka consumer: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The listener has no local address.
    #[error("query API listener: {0}")]
    Listener(#[from] std::io::Error),
}

/// The running query role: indexer, retention and query API.
#[derive(Debug)]
pub struct QueryService {
    /// Where the query API listens.
    addr: SocketAddr,
    /// The history store (for readiness).
    store: Store,
    /// The indexer, retention and API tasks, by name.
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl QueryService {
    /// Opens the store from `config.query.store` (migrations applied), starts
    /// the indexer (consumes `config.topics()` from `endpoint` with group
    /// `config.query.consumer_group`), the retention task, and serves the
    /// query API on `listener` until `shutdown` turns true. Replays go
    /// through `publisher`.
    pub async fn start(
        config: Arc<Config>,
        endpoint: KafkaEndpoint,
        publisher: Publisher,
        listener: tokio::net::TcpListener,
        shutdown: watch::Receiver<bool>,
    ) -> Result<QueryService, HistoryError> {
        let addr = listener.local_addr()?;
        let store = Store::open(&config.query.store).await?;
        store.ensure_json_indexes(&indexed_pointers(&config)).await?;
        store.ensure_text_index(config.query.text_index).await?;
        let live = LiveFeed::default();
        // A shared store announces what every replica stored; listen before serving.
        let notifications = match &store {
            Store::Postgres(shared) => Some((shared.clone(), shared.listen().await?)),
            Store::Sqlite(_) => None,
        };
        let indexer_feed = notifications.is_none().then(|| live.clone());
        let indexer = Indexer::new(
            &endpoint,
            &IndexerSettings::from_config(&config),
            store.clone(),
            indexer_feed,
        )?;
        let retention = config.query.retention;
        let limits = listener_limits(&config);
        let state = ApiState::new(
            store.clone(),
            config.clone(),
            publisher.clone(),
            live.clone(),
            shutdown.clone(),
        );
        let runner = replays::JobRunner {
            store: store.clone(),
            publisher,
            config,
            wakeup: state.jobs_wakeup(),
            owner: format!("{}:{addr}:{}", hostname(), uuid::Uuid::now_v7()),
        };
        let mut tasks = vec![
            ("indexer", tokio::spawn(indexer.run(shutdown.clone()).map(drop))),
            (
                "retention",
                tokio::spawn(retention::run(store.clone(), retention, shutdown.clone())),
            ),
            ("replay jobs", tokio::spawn(replays::run_jobs(runner, shutdown.clone()))),
        ];
        if let Some((shared, pg_listener)) = notifications {
            let relay = live::relay_notifications(shared, pg_listener, live, shutdown.clone());
            tasks.push(("live tail relay", tokio::spawn(relay)));
        }
        tasks.push((
            "query api",
            tokio::spawn(serve(listener, router(state), limits, shutdown)),
        ));
        Ok(QueryService { addr, store, tasks })
    }

    /// Address of the query API.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The history store (a clone sharing the pool).
    pub fn store(&self) -> Store {
        self.store.clone()
    }

    /// Readiness of the query role: the store answers a trivial query.
    pub async fn store_ready(&self) -> bool {
        self.store.ping().await.is_ok()
    }

    /// Waits for the indexer, API and retention tasks to finish after shutdown, then closes the store.
    pub async fn join(self) {
        for (name, task) in self.tasks {
            if let Err(error) = task.await {
                tracing::error!(task = name, %error, "query role task failed");
            }
        }
        self.store.close().await;
    }
}

/// The JSON pointers the sources ask to index, each once (invalid ones
/// were refused by the configuration's validation).
fn indexed_pointers(config: &Config) -> Vec<JsonPointer> {
    let mut pointers: Vec<JsonPointer> = config
        .sources
        .iter()
        .flat_map(|s| s.index.iter())
        .filter_map(|p| JsonPointer::parse(p).ok())
        .collect();
    pointers.sort();
    pointers.dedup();
    pointers
}

/// This machine's name, for replay job leases (diagnostics only).
fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// The query listener's connection limits from `[query]`. Shutdown waits
/// as long as a replay may take (`ingest.deadline`) and a little more.
fn listener_limits(config: &Config) -> Limits {
    Limits {
        max_connections: config.query.max_connections,
        max_connections_per_ip: config.query.max_connections_per_ip,
        header_timeout: config.query.header_timeout,
        drain_timeout: config.ingest.deadline + Duration::from_secs(2),
    }
}

/// Serves the router on the shared accept loop until shutdown; open live tails end at shutdown too.
async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    limits: Limits,
    shutdown: watch::Receiver<bool>,
) {
    let make_service = move |_peer| TowerToHyperService::new(router.clone());
    crate::listener::serve(listener, "query", limits, make_service, shutdown).await;
}

/// Resolves once `shutdown` is true (or its sender is gone).
pub(crate) async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Now, in microseconds since the Unix epoch.
pub(crate) fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}
