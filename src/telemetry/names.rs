//! Every metric hookgate exports, named once. Labels are bounded: a `source`
//! label only ever holds a configured source name or [`UNKNOWN_SOURCE`].

/// Label value used for requests to a path that names no configured source.
pub const UNKNOWN_SOURCE: &str = "_unknown";

/// Counter {source, outcome}: webhook requests by how they were answered.
pub const REQUESTS: &str = "hookgate_requests_total";
/// Counter {source, reason}: signature verification failures.
pub const VERIFY_FAILURES: &str = "hookgate_verify_failures_total";
/// Counter {source, scope}: requests refused by a quota (scope "source" or "client_ip").
pub const RATE_LIMITED: &str = "hookgate_rate_limited_total";
/// Counter {source, state}: duplicates recognised (state "acked" or "in_flight").
pub const DUPLICATES: &str = "hookgate_duplicates_total";
/// Counter {source}: requests whose configured dedup key was absent (published without deduplication).
pub const DEDUP_KEY_MISSING: &str = "hookgate_dedup_key_missing_total";
/// Gauge: delivery keys held by the in-process dedup store.
pub const DEDUP_KEYS: &str = "hookgate_dedup_keys";
/// Gauge: client addresses tracked by the per-IP rate limiter.
pub const RATE_LIMIT_TRACKED_CLIENTS: &str = "hookgate_rate_limit_tracked_clients";
/// Histogram {source}: seconds from handing a record to the producer until the broker acked it.
pub const PUBLISH_DURATION: &str = "hookgate_publish_duration_seconds";
/// Counter {source, reason}: publishes that failed (queue_full, timeout, broker, fatal).
pub const PUBLISH_FAILURES: &str = "hookgate_publish_failures_total";
/// Histogram {source}: size of accepted request bodies.
pub const REQUEST_BODY_BYTES: &str = "hookgate_request_body_bytes";
/// Gauge: webhook requests being handled right now.
pub const REQUESTS_IN_FLIGHT: &str = "hookgate_requests_in_flight";
/// Gauge {listener}: open connections per listener ("ingest", "query", "metrics").
pub const CONNECTIONS_OPEN: &str = "hookgate_connections_open";
/// Counter {listener}: connections refused with 429 because their client address held the listener's `max_connections_per_ip` already.
pub const CONNECTIONS_REFUSED: &str = "hookgate_connections_refused_total";
/// Gauge: messages in librdkafka's producer queue (waiting or in flight to the broker).
pub const KAFKA_QUEUE_MESSAGES: &str = "hookgate_kafka_queue_messages";
/// Gauge: 1 while the producer is usable, 0 after a fatal error until it is rebuilt.
pub const KAFKA_PRODUCER_HEALTHY: &str = "hookgate_kafka_producer_healthy";
/// Counter: producers rebuilt after a fatal error.
pub const KAFKA_PRODUCER_REBUILDS: &str = "hookgate_kafka_producer_rebuilds_total";
/// Gauge: 1 while `/readyz` would answer 200, else 0; evaluated at every scrape.
pub const READY: &str = "hookgate_ready";
/// Gauge {dependency}: 1 while the dependency's readiness check passes ("broker", "producer", "dedup", "store").
pub const DEPENDENCY_UP: &str = "hookgate_dependency_up";
/// Gauge {version}: always 1; carries the build version.
pub const BUILD_INFO: &str = "hookgate_build_info";

/// Counter {topic}: events written to the history store by the indexer.
pub const INDEXED_EVENTS: &str = "hookgate_indexer_events_total";
/// Counter {topic}: records the indexer could not decode (skipped, logged with their offset).
pub const INDEXER_DECODE_FAILURES: &str = "hookgate_indexer_decode_failures_total";
/// Gauge {topic, partition}: records between the indexer's position and the high watermark.
pub const INDEXER_LAG: &str = "hookgate_indexer_lag_records";
/// Histogram {route}: query API request duration.
pub const QUERY_DURATION: &str = "hookgate_query_duration_seconds";
/// Counter {operation}: history store errors.
pub const STORE_ERRORS: &str = "hookgate_store_errors_total";
/// Counter {result}: replays requested through the query API.
pub const REPLAYS: &str = "hookgate_replays_total";
/// Gauge: open live-tail streams.
pub const STREAM_CLIENTS: &str = "hookgate_stream_clients";
/// Counter: events deleted by retention.
pub const RETENTION_DELETED: &str = "hookgate_retention_deleted_total";

/// Counter {source}: items the provider listed that a reconciliation run compared with the history.
pub const RECONCILE_CHECKED: &str = "hookgate_reconcile_checked_total";
/// Counter {source}: items found missing from the history, per run (one still missing next run counts again).
pub const RECONCILE_MISSING: &str = "hookgate_reconcile_missing_total";
/// Counter {source, how}: missing items recovered ("redelivered": GitHub accepted the redelivery; "published": a Stripe event published).
pub const RECONCILE_RECOVERED: &str = "hookgate_reconcile_recovered_total";
/// Counter {source, reason}: reconciliation failures (unauthorized, unreachable, rate_limited, publish, store, ...).
pub const RECONCILE_ERRORS: &str = "hookgate_reconcile_errors_total";
/// Counter {source}: provider rate limits waited out.
pub const RECONCILE_RATE_LIMITED: &str = "hookgate_reconcile_rate_limited_total";
/// Gauge {source}: items the last run found missing and did not recover (handled before, failed, or dry run).
pub const RECONCILE_OUTSTANDING: &str = "hookgate_reconcile_outstanding";
/// Gauge {source}: Unix time of the last successful run.
pub const RECONCILE_LAST_SUCCESS: &str = "hookgate_reconcile_last_success_timestamp_seconds";
