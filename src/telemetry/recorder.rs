//! The process-wide Prometheus recorder: installed once, with histogram
//! buckets chosen per metric and a help line for every exported name.

use std::sync::OnceLock;

use metrics::Unit;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::names;

/// Buckets (seconds) for request and publish latencies.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets (bytes) for body sizes.
const SIZE_BUCKETS: &[f64] = &[
    256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
];

/// How often histogram samples are folded into buckets.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the recorder on first call and returns the handle that renders
/// the exposition. Later calls (several apps in one test process) share it.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_bytes".into()), SIZE_BUCKETS))
                .expect("bucket lists are not empty")
                .build_recorder();
            let handle = recorder.handle();
            spawn_upkeep(handle.clone());
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; hookgate metrics go to it");
            }
            describe();
            metrics::gauge!(names::BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            handle
        })
        .clone()
}

/// Folds recorded histogram samples into their buckets every few seconds.
/// Until then the exporter keeps every sample (8 bytes each, per histogram);
/// without this only a scrape folded them, so memory grew with the request
/// count between scrapes, without bound when nothing scrapes.
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("hookgate-metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_EVERY);
            handle.run_upkeep();
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "cannot start the metrics upkeep thread; histogram samples are folded at scrapes only");
    }
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(names::REQUESTS, "Webhook requests by source and outcome.");
    describe_counter!(
        names::VERIFY_FAILURES,
        "Signature verification failures by source and reason."
    );
    describe_counter!(names::RATE_LIMITED, "Requests refused by a quota, by source and scope.");
    describe_counter!(
        names::DUPLICATES,
        "Duplicate deliveries recognised, by source and state."
    );
    describe_counter!(
        names::DEDUP_KEY_MISSING,
        "Requests published without deduplication because the key was absent."
    );
    describe_gauge!(names::DEDUP_KEYS, "Delivery keys held by the in-process dedup store.");
    describe_gauge!(
        names::RATE_LIMIT_TRACKED_CLIENTS,
        "Client addresses tracked by the per-IP rate limiter."
    );
    describe_histogram!(
        names::PUBLISH_DURATION,
        Unit::Seconds,
        "Time from producing a record to the broker's acknowledgement."
    );
    describe_counter!(
        names::PUBLISH_FAILURES,
        "Publishes that were not acknowledged, by source and reason."
    );
    describe_histogram!(
        names::REQUEST_BODY_BYTES,
        Unit::Bytes,
        "Size of accepted webhook bodies."
    );
    describe_gauge!(
        names::REQUESTS_IN_FLIGHT,
        "Webhook requests holding an in-flight slot (past the quotas, until answered), sampled every second."
    );
    describe_gauge!(names::CONNECTIONS_OPEN, "Open connections, by listener.");
    describe_counter!(
        names::CONNECTIONS_REFUSED,
        "Connections refused because their client address held the listener's max_connections_per_ip already."
    );
    describe_gauge!(
        names::KAFKA_QUEUE_MESSAGES,
        "Records in the producer queue awaiting a broker verdict."
    );
    describe_gauge!(
        names::KAFKA_PRODUCER_HEALTHY,
        "1 while the producer is usable, 0 after a fatal error until rebuilt."
    );
    describe_counter!(names::KAFKA_PRODUCER_REBUILDS, "Producers rebuilt after a fatal error.");
    describe_gauge!(
        names::READY,
        "1 while /readyz answers 200, else 0 (evaluated at every scrape)."
    );
    describe_gauge!(
        names::DEPENDENCY_UP,
        "1 while the dependency's readiness check passes, by dependency."
    );
    describe_gauge!(names::BUILD_INFO, "Build information; always 1.");
    describe_counter!(names::INDEXED_EVENTS, "Events written to the history store.");
    describe_counter!(names::INDEXER_DECODE_FAILURES, "Records the indexer could not decode.");
    describe_gauge!(
        names::INDEXER_LAG,
        "Records between the indexer position and the high watermark."
    );
    describe_histogram!(
        names::QUERY_DURATION,
        Unit::Seconds,
        "Query API request duration by route."
    );
    describe_counter!(names::STORE_ERRORS, "History store errors by operation.");
    describe_counter!(names::REPLAYS, "Replays requested through the query API, by result.");
    describe_gauge!(names::STREAM_CLIENTS, "Open live-tail streams.");
    describe_counter!(names::RETENTION_DELETED, "Events deleted by retention.");
    describe_reconcile();
}

fn describe_reconcile() {
    use metrics::{describe_counter, describe_gauge};
    describe_counter!(
        names::RECONCILE_CHECKED,
        "Items the provider listed, compared with the history, by source."
    );
    describe_counter!(
        names::RECONCILE_MISSING,
        "Items missing from the history, per run, by source."
    );
    describe_counter!(
        names::RECONCILE_RECOVERED,
        "Missing items recovered, by source and how."
    );
    describe_counter!(
        names::RECONCILE_ERRORS,
        "Reconciliation failures, by source and reason."
    );
    describe_counter!(
        names::RECONCILE_RATE_LIMITED,
        "Provider rate limits waited out, by source."
    );
    describe_gauge!(
        names::RECONCILE_OUTSTANDING,
        "Items the last run found missing and did not recover, by source."
    );
    describe_gauge!(
        names::RECONCILE_LAST_SUCCESS,
        "Unix time of the last successful reconciliation run, by source."
    );
}
