//! Metric handles of the webhook pipeline, one set per configured source.
//!
//! `metrics::counter!(NAME, "source" => name.clone(), ...)` builds its labels
//! (a `String` clone, a label vector) and looks the series up in the
//! registry on every call: allocations and a map lookup per request. Here
//! each series is looked up once, on its first use, and kept: recording is
//! then an atomic add. A series appears in `/metrics` only once it happened.

use std::sync::OnceLock;

use metrics::{Counter, Gauge, Histogram};

use super::names;

/// Every `outcome` of `hookgate_requests_total`.
const OUTCOMES: [&str; 11] = [
    "accepted",
    "duplicate",
    "challenge",
    "in_flight",
    "unknown_source",
    "unauthorized",
    "too_large",
    "timeout",
    "bad_request",
    "rate_limited",
    "unavailable",
];
/// Every `reason` of `hookgate_verify_failures_total`.
const VERIFY_REASONS: [&str; 11] = [
    "missing_signature",
    "malformed_signature",
    "invalid_signature",
    "missing_timestamp",
    "malformed_timestamp",
    "stale_timestamp",
    "future_timestamp",
    "missing_credential",
    "malformed_credential",
    "invalid_credential",
    "malformed_handshake",
];
/// Every `scope` of `hookgate_rate_limited_total`.
const SCOPES: [&str; 2] = ["source", "client_ip"];
/// Every `state` of `hookgate_duplicates_total`.
const STATES: [&str; 2] = ["acked", "in_flight"];
/// Every `reason` of `hookgate_publish_failures_total`.
const PUBLISH_REASONS: [&str; 5] = [
    "queue_full",
    "publish_timeout",
    "broker_error",
    "producer_fatal",
    "body_too_large",
];

/// Counters of one metric and source, one per value of a second label.
struct Family {
    /// Metric name.
    name: &'static str,
    /// Name of the second label.
    label: &'static str,
    /// Its known values; others are registered on every use.
    values: &'static [&'static str],
    /// The handle of each known value, once used.
    cells: Box<[OnceLock<Counter>]>,
}

impl Family {
    fn new(name: &'static str, label: &'static str, values: &'static [&'static str]) -> Self {
        Self {
            name,
            label,
            values,
            cells: values.iter().map(|_| OnceLock::new()).collect(),
        }
    }

    /// Adds one to the series of `source` and `value`.
    fn increment(&self, source: &str, value: &'static str) {
        let register = || metrics::counter!(self.name, "source" => source.to_owned(), self.label => value);
        match self.values.iter().position(|known| *known == value) {
            Some(index) => self.cells[index].get_or_init(register).increment(1),
            None => register().increment(1),
        }
    }
}

/// The per-source series of the webhook pipeline.
pub struct SourceMetrics {
    /// The `source` label value: a configured name or `_unknown`.
    source: String,
    /// `hookgate_requests_total{source, outcome}`.
    requests: Family,
    /// `hookgate_verify_failures_total{source, reason}`.
    verify_failures: Family,
    /// `hookgate_rate_limited_total{source, scope}`.
    rate_limited: Family,
    /// `hookgate_duplicates_total{source, state}`.
    duplicates: Family,
    /// `hookgate_publish_failures_total{source, reason}`.
    publish_failures: Family,
    /// `hookgate_dedup_key_missing_total{source}`.
    dedup_key_missing: OnceLock<Counter>,
    /// `hookgate_request_body_bytes{source}`.
    body_bytes: OnceLock<Histogram>,
    /// `hookgate_publish_duration_seconds{source}`.
    publish_duration: OnceLock<Histogram>,
}

impl std::fmt::Debug for SourceMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceMetrics")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl SourceMetrics {
    /// The series of the source labelled `source`.
    pub fn new(source: &str) -> Self {
        Self {
            source: source.to_owned(),
            requests: Family::new(names::REQUESTS, "outcome", &OUTCOMES),
            verify_failures: Family::new(names::VERIFY_FAILURES, "reason", &VERIFY_REASONS),
            rate_limited: Family::new(names::RATE_LIMITED, "scope", &SCOPES),
            duplicates: Family::new(names::DUPLICATES, "state", &STATES),
            publish_failures: Family::new(names::PUBLISH_FAILURES, "reason", &PUBLISH_REASONS),
            dedup_key_missing: OnceLock::new(),
            body_bytes: OnceLock::new(),
            publish_duration: OnceLock::new(),
        }
    }

    /// One request answered with `outcome`.
    pub fn request(&self, outcome: &'static str) {
        self.requests.increment(&self.source, outcome);
    }

    /// One signature check failed for `reason`.
    pub fn verify_failure(&self, reason: &'static str) {
        self.verify_failures.increment(&self.source, reason);
    }

    /// One request refused by the quota of `scope`.
    pub fn rate_limited(&self, scope: &'static str) {
        self.rate_limited.increment(&self.source, scope);
    }

    /// One duplicate recognised in `state`.
    pub fn duplicate(&self, state: &'static str) {
        self.duplicates.increment(&self.source, state);
    }

    /// One publish that failed for `reason`.
    pub fn publish_failure(&self, reason: &'static str) {
        self.publish_failures.increment(&self.source, reason);
    }

    /// One request whose configured dedup key was absent.
    pub fn dedup_key_missing(&self) {
        let source = &self.source;
        self.dedup_key_missing
            .get_or_init(|| metrics::counter!(names::DEDUP_KEY_MISSING, "source" => source.clone()))
            .increment(1);
    }

    /// The size of an accepted body.
    pub fn body_bytes(&self, bytes: usize) {
        let source = &self.source;
        self.body_bytes
            .get_or_init(|| metrics::histogram!(names::REQUEST_BODY_BYTES, "source" => source.clone()))
            .record(bytes as f64);
    }

    /// Seconds from handing a record to the producer to the broker's ack.
    pub fn publish_duration(&self, seconds: f64) {
        let source = &self.source;
        self.publish_duration
            .get_or_init(|| metrics::histogram!(names::PUBLISH_DURATION, "source" => source.clone()))
            .record(seconds);
    }
}

/// `hookgate_requests_in_flight`, looked up once.
pub fn requests_in_flight() -> Gauge {
    metrics::gauge!(names::REQUESTS_IN_FLIGHT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_label_values_match_the_codes_in_use() {
        for error in crate::verify::VerifyError::ALL {
            assert!(VERIFY_REASONS.contains(&error.code()), "{}", error.code());
        }
        use crate::publish::PublishError;
        for error in [
            PublishError::QueueFull,
            PublishError::Timeout,
            PublishError::Broker(String::new()),
            PublishError::Fatal,
        ] {
            assert!(PUBLISH_REASONS.contains(&error.code()), "{}", error.code());
        }
    }
}
