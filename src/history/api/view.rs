//! The JSON shapes of events in responses and on the live tail. Times are
//! RFC 3339 UTC with microseconds; `received_at_unix_micros` carries the
//! exact value as well.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat};
use serde::Serialize;

use crate::history::store::{EventRecord, EventSummary, HeaderEntry, Provenance, VerificationInfo};

/// RFC 3339 text of a microsecond timestamp.
pub(crate) fn rfc3339(micros: i64) -> String {
    DateTime::from_timestamp_micros(micros)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true))
        .unwrap_or_default()
}

/// An event in a list or on the live tail: metadata and provenance.
#[derive(Debug, Serialize)]
pub(crate) struct SummaryView<'a> {
    /// Event id.
    id: &'a str,
    /// Source name.
    source: &'a str,
    /// Event type or null.
    event_type: Option<&'a str>,
    /// Receive time, RFC 3339.
    received_at: String,
    /// Receive time, µs since the epoch.
    received_at_unix_micros: i64,
    /// Deduplication key or null.
    dedup_key: Option<&'a str>,
    /// Verification outcome.
    verification: &'a VerificationInfo,
    /// HTTP method.
    method: &'a str,
    /// Request path.
    path: &'a str,
    /// Query string.
    query: &'a str,
    /// Content-Type.
    content_type: &'a str,
    /// Client address.
    client_addr: &'a str,
    /// Body length in bytes.
    body_size: i64,
    /// Kafka topic, partition and offset.
    kafka: &'a Provenance,
    /// When the indexer stored it, RFC 3339.
    indexed_at: String,
}

impl<'a> From<&'a EventSummary> for SummaryView<'a> {
    fn from(e: &'a EventSummary) -> Self {
        SummaryView {
            id: &e.id,
            source: &e.source,
            event_type: e.event_type.as_deref(),
            received_at: rfc3339(e.received_at),
            received_at_unix_micros: e.received_at,
            dedup_key: e.dedup_key.as_deref(),
            verification: &e.verification,
            method: &e.method,
            path: &e.path,
            query: &e.query,
            content_type: &e.content_type,
            client_addr: &e.client_addr,
            body_size: e.body_size,
            kafka: &e.provenance,
            indexed_at: rfc3339(e.indexed_at),
        }
    }
}

/// A body as JSON text: ("utf8", the text) when it is UTF-8, else ("base64", its base64).
pub(crate) fn body_text(body: &[u8]) -> (&'static str, String) {
    match std::str::from_utf8(body) {
        Ok(text) => ("utf8", text.to_owned()),
        Err(_) => ("base64", BASE64.encode(body)),
    }
}

/// An event on the live tail with `include=body`: the summary and, when
/// available, the body (else why not).
#[derive(Debug, Serialize)]
pub(crate) struct StreamView<'a> {
    /// Metadata and provenance.
    #[serde(flatten)]
    pub(crate) summary: SummaryView<'a>,
    /// "utf8" or "base64", when the body is included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) body_encoding: Option<&'static str>,
    /// The body, when included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) body: Option<String>,
    /// Why the body is left out: "too_large", "not_found" or "unavailable".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) body_omitted: Option<&'static str>,
}

/// One event in full: the summary, headers and body.
#[derive(Debug, Serialize)]
pub(crate) struct DetailView<'a> {
    /// Metadata and provenance.
    #[serde(flatten)]
    summary: SummaryView<'a>,
    /// Headers in the order received.
    headers: &'a [HeaderEntry],
    /// "utf8" when `body` is the body's text, "base64" when it is its base64.
    body_encoding: &'static str,
    /// The body.
    body: String,
}

impl<'a> From<&'a EventRecord> for DetailView<'a> {
    fn from(e: &'a EventRecord) -> Self {
        let (body_encoding, body) = body_text(&e.body);
        DetailView {
            summary: (&e.summary).into(),
            headers: &e.headers,
            body_encoding,
            body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_with_microseconds() {
        assert_eq!(rfc3339(1_714_572_000_000_001), "2024-05-01T14:00:00.000001Z");
    }
}
