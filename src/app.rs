//! Wiring of `hookgate serve`: connect Kafka (or start the embedded broker),
//! start the roles this process runs and their readiness checks, serve
//! metrics, and on shutdown stop accepting, drain in-flight webhooks and
//! flush the producer. A shutdown during start-up ends it at once. Before
//! anything starts, the open-files limit is raised and checked (`fds`).

mod fds;
mod sockets;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::FutureExt;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Config, ConfigIssue, Severity};
use crate::dedup::Dedup;
use crate::history::{HistoryRuntime, QueryService};
use crate::ingest::{Ingest, ServerLimits};
use crate::publish::{register_schemas, EmbeddedBroker, KafkaEndpoint, Publisher};
use crate::ratelimit::RateLimiter;
use crate::telemetry::{self, Readiness};
use sockets::{bind, ingest_backlog, DEFAULT_BACKLOG};

/// How long shutdown waits for the producer to hand every queued record to the broker.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// How often idle rate-limiter state is dropped.
const PRUNE_INTERVAL: Duration = Duration::from_secs(10);

/// Which parts of hookgate this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Ingest, indexer and query API.
    #[default]
    All,
    /// Only the webhook listener.
    Ingest,
    /// Only the indexer and query API.
    Query,
}

impl Role {
    fn ingest(self) -> bool {
        matches!(self, Role::All | Role::Ingest)
    }
    fn query(self) -> bool {
        matches!(self, Role::All | Role::Query)
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "all" => Ok(Role::All),
            "ingest" => Ok(Role::Ingest),
            "query" => Ok(Role::Query),
            other => Err(format!("unknown role `{other}`: expected all, ingest or query")),
        }
    }
}

/// Where the Kafka cluster is: configured, or the embedded broker kept alive by the returned handle.
fn connect_kafka(config: &Config) -> anyhow::Result<(KafkaEndpoint, Option<EmbeddedBroker>)> {
    let options = config
        .kafka
        .resolved_options()
        .map_err(|(name, e)| anyhow::anyhow!("kafka.options.\"{name}\": {e}"))?;
    if let Some(brokers) = &config.kafka.brokers {
        return Ok((
            KafkaEndpoint {
                bootstrap: brokers.clone(),
                options,
            },
            None,
        ));
    }
    let embedded = EmbeddedBroker::start(&config.topics(), config.kafka.embedded_partitions)?;
    tracing::warn!(
        bootstrap = embedded.bootstrap_servers(),
        topics = ?config.topics(),
        "no [kafka] brokers configured: started the EMBEDDED in-memory broker; any Kafka client can read it at this address, \
         and EVERY EVENT IN IT IS LOST WHEN hookgate EXITS"
    );
    Ok((
        KafkaEndpoint {
            bootstrap: embedded.bootstrap_servers().to_owned(),
            options,
        },
        Some(embedded),
    ))
}

/// How long librdkafka keeps trying one record: a little under the ingest
/// deadline, so its verdict (not our timer) decides the answer when possible.
fn message_timeout(config: &Config) -> Duration {
    config
        .ingest
        .deadline
        .saturating_sub(Duration::from_millis(500))
        .max(Duration::from_secs(1))
}

/// Every finding about a configuration: its own checks, the producer's
/// option rules and each source's verifier. `serve` refuses to start on any
/// error among them; `check-config` lists them all.
pub fn config_issues(config: &Config) -> Vec<ConfigIssue> {
    let mut issues = config.validate();
    issues.extend(crate::publish::option_issues(&config.kafka));
    for (index, source) in config.sources.iter().enumerate() {
        // The verifier repeats some of the source's own checks: ask it only when those passed.
        let prefix = format!("sources[{index}]");
        let own_errors = issues.iter().any(|issue| {
            issue.severity == Severity::Error
                && issue
                    .key
                    .strip_prefix(&prefix)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
        });
        if !own_errors {
            issues.extend(crate::verify::source_issue(index, source));
            issues.extend(crate::verify::source_warnings(index, source));
        }
    }
    issues
}

/// Runs `hookgate serve` until `shutdown` completes, then shuts down
/// gracefully. A `shutdown` that completes during start-up (while Kafka,
/// Redis or PostgreSQL are being connected) ends it at once.
pub async fn run(config: Config, role: Role, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let mut issues = config_issues(&config);
    issues.extend(role_issues(&config, role));
    let errors: Vec<_> = issues.iter().filter(|i| i.severity == Severity::Error).collect();
    if let Some(first) = errors.first() {
        anyhow::bail!("invalid configuration ({} errors), first: {first}", errors.len());
    }
    let open_files = fds::ensure(&config, role)?;
    tracing::debug!(open_files, "open-files limit raised to the hard limit");
    let mut shutdown = std::pin::pin!(shutdown);
    // Biased: `shutdown` is polled first, so the signal handlers are in place
    // before any connection attempt. Until then a SIGTERM is lost where the
    // process runs as PID 1 (a container), which ignores unhandled signals.
    let running = tokio::select! {
        biased;
        () = &mut shutdown => {
            tracing::info!("stopped during start-up");
            return Ok(());
        }
        running = start(Arc::new(config), role) => running?,
    };
    shutdown.await;
    running.stop().await;
    Ok(())
}

/// Everything `hookgate serve` started, until [`Running::stop`].
struct Running {
    /// Turns true at shutdown.
    stop_tx: watch::Sender<bool>,
    /// The checks behind `/readyz`.
    readiness: Readiness,
    /// The shared producer.
    publisher: Publisher,
    /// The embedded broker, when no cluster is configured.
    embedded: Option<EmbeddedBroker>,
    /// Rebuilds the producer after a fatal error.
    supervisor: JoinHandle<()>,
    /// The webhook listener (ingest role).
    ingest: Option<JoinHandle<()>>,
    /// One reconciler per source with `[sources.reconcile]` (query role).
    reconcilers: Vec<JoinHandle<()>>,
    /// Indexer, retention and query API (query role).
    query: Option<Arc<QueryService>>,
    /// The runtime they run on when this process also runs ingest.
    history: Option<HistoryRuntime>,
    /// The metrics listener.
    metrics_server: JoinHandle<()>,
}

/// Connects Kafka, starts the roles and the metrics listener.
async fn start(config: Arc<Config>, role: Role) -> anyhow::Result<Running> {
    let metrics_handle = telemetry::install();
    let (endpoint, embedded) = connect_kafka(&config)?;
    let publisher =
        Publisher::new(endpoint.clone(), message_timeout(&config)).context("cannot create the Kafka producer")?;
    if let Some(registry) = &config.kafka.schema_registry {
        let ids = register_schemas(&config, registry)
            .await
            .context("cannot register the envelope schema")?;
        publisher.use_schema_ids(ids);
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut readiness = Readiness::default();
    add_kafka_checks(&mut readiness, &publisher, role);
    publisher.probe_broker(Duration::from_secs(2)).await;
    if embedded.is_none() {
        tokio::spawn(warn_about_missing_topics(endpoint.clone(), config.topics()));
    }
    let supervisor = tokio::spawn(publisher.clone().supervise(stop_rx.clone()));
    let dedup = open_dedup(&config, role, &mut readiness).await?;
    let ingest = match (&dedup, role.ingest()) {
        (Some(dedup), true) => {
            let ingest = start_ingest(
                &config,
                publisher.clone(),
                dedup.clone(),
                &mut readiness,
                stop_rx.clone(),
            );
            Some(ingest.await?)
        }
        _ => None,
    };
    // Beside ingest, the history gets a runtime of its own below ingest's priority.
    let history = match role {
        Role::All => Some(HistoryRuntime::new().context("cannot start the history runtime")?),
        _ => None,
    };
    let query = if role.query() {
        let on = history.as_ref().map(|h| h.handle().clone());
        Some(
            start_query(
                &config,
                endpoint,
                publisher.clone(),
                &mut readiness,
                stop_rx.clone(),
                on,
            )
            .await?,
        )
    } else {
        None
    };
    let reconcilers = match (&query, dedup) {
        (Some(service), Some(dedup)) => start_reconcile(&config, service, publisher.clone(), dedup, &stop_rx)?,
        _ => Vec::new(),
    };
    let metrics_listener = bind("metrics.listen", config.metrics.listen, DEFAULT_BACKLOG)?;
    tracing::info!(role = "metrics", addr = %metrics_listener.local_addr()?, "listening");
    let metrics_server = tokio::spawn(telemetry::serve_metrics(
        metrics_listener,
        metrics_handle,
        readiness.clone(),
        stop_rx,
    ));
    Ok(Running {
        stop_tx,
        readiness,
        publisher,
        embedded,
        supervisor,
        ingest,
        reconcilers,
        query,
        history,
        metrics_server,
    })
}

impl Running {
    /// Stops accepting, drains in-flight webhooks, flushes the producer and stops every task.
    async fn stop(self) {
        tracing::info!("shutting down: no new connections; finishing in-flight webhooks");
        self.readiness.start_draining();
        let _ = self.stop_tx.send(true);
        if let Some(ingest) = self.ingest {
            let _ = ingest.await;
        }
        for reconciler in self.reconcilers {
            let _ = reconciler.await;
        }
        let flushed = self.publisher.flush(FLUSH_TIMEOUT).await;
        tracing::info!(flushed, "producer flushed");
        let _ = self.metrics_server.await;
        drop(self.readiness);
        if let Some(query) = self.query.and_then(Arc::into_inner) {
            match &self.history {
                Some(history) => drop(history.handle().spawn(query.join()).await),
                None => query.join().await,
            }
        }
        drop(self.history);
        let _ = self.supervisor.await;
        // The producer goes before the broker it talks to.
        drop(self.publisher);
        drop(self.embedded);
        tracing::info!("stopped");
    }
}

/// Logs an error for every configured topic the cluster does not have: hookgate
/// never creates topics on a real cluster, and publishes to a missing one fail.
async fn warn_about_missing_topics(endpoint: KafkaEndpoint, topics: Vec<String>) {
    let check = tokio::task::spawn_blocking(move || {
        let consumer: rdkafka::consumer::BaseConsumer = endpoint.client_config().create()?;
        let metadata = rdkafka::consumer::Consumer::fetch_metadata(&consumer, None, Duration::from_secs(5))?;
        let present: std::collections::HashSet<&str> = metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| t.name())
            .collect();
        Ok::<_, rdkafka::error::KafkaError>(
            topics
                .into_iter()
                .filter(|t| !present.contains(t.as_str()))
                .collect::<Vec<_>>(),
        )
    });
    match check.await {
        Ok(Ok(missing)) if !missing.is_empty() => {
            tracing::error!(
                ?missing,
                "topics missing on the Kafka cluster: webhooks for their sources will get 503 until they are created"
            );
        }
        Ok(Err(error)) => tracing::warn!(%error, "could not list the cluster's topics"),
        _ => {}
    }
}

/// The broker and producer checks: they decide readiness where ingest runs.
/// A query-only replica serves the history while Kafka is down (its replays
/// answer 503 then), so for it they are only reported.
fn add_kafka_checks(readiness: &mut Readiness, publisher: &Publisher, role: Role) {
    let (p, q) = (publisher.clone(), publisher.clone());
    let probes: [(&'static str, Probe); 2] = [
        (
            "broker",
            Box::new(move || std::future::ready(p.broker_reachable()).boxed()),
        ),
        (
            "producer",
            Box::new(move || std::future::ready(q.producer_healthy()).boxed()),
        ),
    ];
    for (name, probe) in probes {
        if role.ingest() {
            readiness.check(name, probe);
        } else {
            readiness.advise(name, probe);
        }
    }
}

/// A readiness probe as [`add_kafka_checks`] hands it over.
type Probe = Box<dyn Fn() -> futures::future::BoxFuture<'static, bool> + Send + Sync>;

/// The dedup store, where ingest runs or the query role publishes recovered events.
async fn open_dedup(config: &Config, role: Role, readiness: &mut Readiness) -> anyhow::Result<Option<Dedup>> {
    let reconciles = role.query() && crate::reconcile::reconciled_sources(config).next().is_some();
    if !role.ingest() && !reconciles {
        return Ok(None);
    }
    let dedup = Dedup::connect(&config.dedup)
        .await
        .context("cannot open the dedup store")?;
    let d = dedup.clone();
    let probe = move || {
        let d = d.clone();
        async move { d.is_healthy().await }.boxed()
    };
    // A query-only replica serves the history while the dedup store is down; only its recoveries wait.
    if role.ingest() {
        readiness.check("dedup", probe);
    } else {
        readiness.advise("dedup", probe);
    }
    Ok(Some(dedup))
}

async fn start_ingest(
    config: &Arc<Config>,
    publisher: Publisher,
    dedup: Dedup,
    readiness: &mut Readiness,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<JoinHandle<()>> {
    let sources = crate::ingest::prepare_sources(config)
        .map_err(|(name, problem)| anyhow::anyhow!("source {name}: {}: {}", problem.key, problem.message))?;
    let limiter = Arc::new(RateLimiter::new(config));
    tokio::spawn(prune_rate_limits(limiter.clone(), stop.clone()));
    let mut ingest = Ingest::new(config, sources, limiter, dedup, publisher);
    if let Some(store) = body_store(config, readiness).await? {
        ingest = ingest.with_body_store(store);
    }
    let ingest = Arc::new(ingest);
    let listener = bind("ingest.listen", config.ingest.listen, ingest_backlog(config))?;
    tracing::info!(role = "ingest", addr = %listener.local_addr()?, sources = config.sources.len(), "listening");
    let limits = ServerLimits {
        max_connections: config.ingest.max_connections,
        max_connections_per_ip: config.ingest.max_connections_per_ip,
        header_timeout: config.ingest.header_timeout,
        drain_timeout: config.ingest.deadline + Duration::from_secs(2),
    };
    Ok(tokio::spawn(crate::ingest::serve(listener, ingest, limits, stop)))
}

/// The history store that takes large bodies, when a source keeps them out
/// of its records (`large_bodies`); readiness then depends on it.
async fn body_store(config: &Config, readiness: &mut Readiness) -> anyhow::Result<Option<crate::history::Store>> {
    if !config.sources.iter().any(|source| source.large_bodies.is_some()) {
        return Ok(None);
    }
    let store = crate::history::Store::open(&config.query.store)
        .await
        .context("cannot open the history store (query.store) that takes large bodies")?;
    let s = store.clone();
    readiness.check("store", move || {
        let s = s.clone();
        async move { s.ping().await.is_ok() }.boxed()
    });
    Ok(Some(store))
}

/// Findings that depend on the role: an ingest-only replica writes large
/// bodies to `query.store`, which must then be the store the query replicas
/// read, not the default local file.
pub fn role_issues(config: &Config, role: Role) -> Vec<ConfigIssue> {
    let Some(index) = config.sources.iter().position(|s| s.large_bodies.is_some()) else {
        return Vec::new();
    };
    if role != Role::Ingest {
        return Vec::new();
    }
    if config.query.store == crate::config::QueryConfig::default().store {
        return vec![ConfigIssue::error(
            "query.store",
            format!(
                "sources[{index}].large_bodies writes bodies to the history store, and with --role ingest no store \
                 is configured: set query.store to the store the query replicas read (postgres://...)"
            ),
        )];
    }
    if config.query.store.starts_with("sqlite:") {
        return vec![ConfigIssue::warning(
            "query.store",
            "large bodies go to a SQLite file: only a query process on this machine reading the same file serves them",
        )];
    }
    Vec::new()
}

async fn prune_rate_limits(limiter: Arc<RateLimiter>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(PRUNE_INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => limiter.prune(),
            _ = crate::shutdown::stopped(&mut stop) => return,
        }
    }
}

/// Starts the query role, on `on` when given (the history runtime): the
/// listener is bound there too, as a socket belongs to the runtime that created it.
async fn start_query(
    config: &Arc<Config>,
    endpoint: KafkaEndpoint,
    publisher: Publisher,
    readiness: &mut Readiness,
    stop: watch::Receiver<bool>,
    on: Option<Handle>,
) -> anyhow::Result<Arc<QueryService>> {
    let start = {
        let config = config.clone();
        async move {
            let listener = bind("query.listen", config.query.listen, DEFAULT_BACKLOG)?;
            QueryService::start(config, endpoint, publisher, listener, stop)
                .await
                .context("cannot start the history store and query API")
        }
    };
    let service = match &on {
        Some(history) => history.spawn(start).await.context("history start-up failed")??,
        None => start.await?,
    };
    tracing::info!(role = "query", addr = %service.local_addr(), store = %store_kind(&config.query.store), "listening");
    let service = Arc::new(service);
    let s = service.clone();
    readiness.check("store", move || {
        let s = s.clone();
        let ping = async move { s.store_ready().await };
        // On the history runtime, so that the store's connections are all opened there.
        match &on {
            Some(history) => history.spawn(ping).map(|done| done.unwrap_or(false)).boxed(),
            None => ping.boxed(),
        }
    });
    Ok(service)
}

/// Starts a reconciler per source with `[sources.reconcile]`; each runs only while it holds its lease.
fn start_reconcile(
    config: &Arc<Config>,
    service: &QueryService,
    publisher: Publisher,
    dedup: Dedup,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let shared = crate::reconcile::Shared {
        config: config.clone(),
        store: service.store(),
        publisher,
        dedup,
        holder: crate::reconcile::holder_name(service.local_addr()),
    };
    let tasks = crate::reconcile::spawn(&shared, stop).context("cannot start reconciliation")?;
    if !tasks.is_empty() {
        tracing::info!(sources = tasks.len(), replica = %shared.holder, "reconciliation on");
    }
    Ok(tasks)
}

fn store_kind(url: &str) -> &'static str {
    if url.starts_with("sqlite:") {
        "sqlite"
    } else {
        "postgres"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_issues_add_the_producer_and_verifier_checks() {
        let text = "[kafka.options]\n\"acks\" = \"1\"\n\
                    [[sources]]\nname = \"s\"\nverify = \"stripe\"\nsecrets = [\"k\"]\ntolerance = \"0s\"\n\
                    [[sources]]\nname = \"g\"\nverify = \"github\"\n";
        let issues = config_issues(&Config::from_toml(text).unwrap());
        let keys: Vec<_> = issues.iter().map(|i| i.key.as_str()).collect();
        assert!(keys.contains(&"kafka.options.\"acks\""), "{keys:?}");
        assert!(keys.contains(&"sources[0].tolerance"), "{keys:?}");
        assert_eq!(
            keys.iter().filter(|k| k.starts_with("sources[1].secrets")).count(),
            1,
            "the verifier does not repeat the source's own error: {keys:?}"
        );
    }
}
