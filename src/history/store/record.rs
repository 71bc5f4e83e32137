//! What the history store holds for one event, and the mapping between the
//! protobuf envelope read from Kafka and a stored row. The mapping is
//! lossless so that a replay can rebuild the envelope exactly from the row.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::envelope::{Header, Verification, WebhookEnvelope};

/// One request header as stored and served: `value` when the bytes are
/// UTF-8, else `value_base64` (standard alphabet, padded). Exactly one is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderEntry {
    /// Header name as received.
    pub name: String,
    /// The value, when it is valid UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The value in base64, when it is not valid UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_base64: Option<String>,
}

impl HeaderEntry {
    /// Stores a header value as text when possible, else as base64.
    pub fn from_bytes(name: &str, value: &[u8]) -> Self {
        match std::str::from_utf8(value) {
            Ok(text) => Self {
                name: name.to_owned(),
                value: Some(text.to_owned()),
                value_base64: None,
            },
            Err(_) => Self {
                name: name.to_owned(),
                value: None,
                value_base64: Some(BASE64.encode(value)),
            },
        }
    }

    /// The original value bytes.
    pub fn value_bytes(&self) -> Result<Vec<u8>, base64::DecodeError> {
        match (&self.value, &self.value_base64) {
            (Some(text), _) => Ok(text.as_bytes().to_vec()),
            (None, Some(encoded)) => BASE64.decode(encoded),
            (None, None) => Ok(Vec::new()),
        }
    }
}

/// Where the indexer read an event in Kafka.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provenance {
    /// Topic of the record.
    pub topic: String,
    /// Partition of the record.
    pub partition: i32,
    /// Offset of the record in its partition.
    pub offset: i64,
}

/// The outcome of signature verification, as recorded by ingest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerificationInfo {
    /// Preset used ("github", ..., "none").
    pub scheme: String,
    /// True when a signature was checked and matched.
    pub verified: bool,
    /// Index of the secret that matched.
    pub secret_index: u32,
}

/// Everything about an event except its headers and body: what lists and
/// the live tail carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSummary {
    /// Gateway-assigned id (UUIDv7 text).
    pub id: String,
    /// Configured source name.
    pub source: String,
    /// Event type, when the source's preset or config names one.
    pub event_type: Option<String>,
    /// Receive time, microseconds since the Unix epoch.
    pub received_at: i64,
    /// Deduplication key, when the source deduplicates.
    pub dedup_key: Option<String>,
    /// Signature verification outcome.
    pub verification: VerificationInfo,
    /// Content-Type of the request ("" when absent).
    pub content_type: String,
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// Raw query string without '?' ("" when absent).
    pub query: String,
    /// Client address as ingest saw it.
    pub client_addr: String,
    /// Body length in bytes.
    pub body_size: i64,
    /// Kafka topic, partition and offset the event was indexed from.
    pub provenance: Provenance,
    /// When the indexer wrote it, microseconds since the Unix epoch.
    pub indexed_at: i64,
}

/// A complete stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// Metadata and provenance.
    pub summary: EventSummary,
    /// Request headers in the order received (redactions already applied by ingest).
    pub headers: Vec<HeaderEntry>,
    /// The request body, byte for byte.
    pub body: Vec<u8>,
}

/// Why a decoded envelope cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEnvelope {
    /// The envelope has no id, so it cannot be stored idempotently.
    #[error("the envelope has no id")]
    MissingId,
    /// The envelope has no source.
    #[error("the envelope has no source")]
    MissingSource,
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

impl EventRecord {
    /// Builds a row from an envelope read at `provenance`, indexed at `indexed_at` (µs).
    pub fn from_envelope(
        envelope: &WebhookEnvelope,
        provenance: Provenance,
        indexed_at: i64,
    ) -> Result<Self, InvalidEnvelope> {
        if envelope.id.is_empty() {
            return Err(InvalidEnvelope::MissingId);
        }
        if envelope.source.is_empty() {
            return Err(InvalidEnvelope::MissingSource);
        }
        let verification = envelope.verification.clone().unwrap_or_default();
        let summary = EventSummary {
            id: envelope.id.clone(),
            source: envelope.source.clone(),
            event_type: non_empty(&envelope.event_type),
            received_at: envelope.received_at_unix_micros,
            dedup_key: non_empty(&envelope.dedup_key),
            verification: VerificationInfo {
                scheme: verification.scheme,
                verified: verification.verified,
                secret_index: verification.secret_index,
            },
            content_type: envelope.content_type.clone(),
            method: envelope.method.clone(),
            path: envelope.path.clone(),
            query: envelope.query.clone(),
            client_addr: envelope.client_addr.clone(),
            body_size: i64::try_from(envelope.body.len()).unwrap_or(i64::MAX),
            provenance,
            indexed_at,
        };
        let headers = envelope
            .headers
            .iter()
            .map(|h| HeaderEntry::from_bytes(&h.name, &h.value))
            .collect();
        Ok(Self {
            summary,
            headers,
            body: envelope.body.to_vec(),
        })
    }

    /// Rebuilds the envelope as ingest published it (`replay` false).
    pub fn to_envelope(&self) -> Result<WebhookEnvelope, base64::DecodeError> {
        let s = &self.summary;
        let headers = self
            .headers
            .iter()
            .map(|h| {
                Ok(Header {
                    name: h.name.clone(),
                    value: h.value_bytes()?.into(),
                })
            })
            .collect::<Result<Vec<_>, base64::DecodeError>>()?;
        Ok(WebhookEnvelope {
            id: s.id.clone(),
            source: s.source.clone(),
            event_type: s.event_type.clone().unwrap_or_default(),
            received_at_unix_micros: s.received_at,
            method: s.method.clone(),
            path: s.path.clone(),
            query: s.query.clone(),
            headers,
            content_type: s.content_type.clone(),
            body: self.body.clone().into(),
            dedup_key: s.dedup_key.clone().unwrap_or_default(),
            verification: Some(Verification {
                scheme: s.verification.scheme.clone(),
                verified: s.verification.verified,
                secret_index: s.verification.secret_index,
                // Not stored: it follows from the scheme.
                static_credential: s.verification.verified
                    && crate::config::Preset::from_name(&s.verification.scheme)
                        .is_some_and(crate::config::Preset::is_static_credential),
            }),
            client_addr: s.client_addr.clone(),
            replay: false,
            // Not stored: only the reconciler's envelopes carry an API scheme.
            recovered: s.verification.scheme == crate::reconcile::RECOVERED_SCHEME,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> WebhookEnvelope {
        WebhookEnvelope {
            id: "0190b6d2-0000-7000-8000-000000000001".into(),
            source: "github".into(),
            event_type: "push".into(),
            received_at_unix_micros: 1_700_000_000_123_456,
            method: "POST".into(),
            path: "/webhooks/github".into(),
            query: "a=1".into(),
            headers: vec![
                Header {
                    name: "X-Text".into(),
                    value: bytes::Bytes::from_static(b"plain"),
                },
                Header {
                    name: "X-Bin".into(),
                    value: bytes::Bytes::from_static(b"\xff\x00"),
                },
            ],
            content_type: "application/json".into(),
            body: bytes::Bytes::from_static(b"{\"a\":1}"),
            dedup_key: "d-1".into(),
            verification: Some(Verification {
                scheme: "github".into(),
                verified: true,
                secret_index: 2,
                static_credential: false,
            }),
            client_addr: "127.0.0.1".into(),
            replay: false,
            recovered: false,
        }
    }

    #[test]
    fn envelope_round_trips_through_a_record() {
        let provenance = Provenance {
            topic: "t".into(),
            partition: 1,
            offset: 7,
        };
        let record = EventRecord::from_envelope(&envelope(), provenance, 1).unwrap();
        assert_eq!(record.headers[0].value.as_deref(), Some("plain"));
        assert_eq!(record.headers[1].value_base64.as_deref(), Some("/wA="));
        assert_eq!(record.to_envelope().unwrap(), envelope());
    }

    #[test]
    fn empty_strings_become_absent_and_ids_are_required() {
        let mut e = envelope();
        e.event_type.clear();
        e.dedup_key.clear();
        let p = Provenance {
            topic: "t".into(),
            partition: 0,
            offset: 0,
        };
        let record = EventRecord::from_envelope(&e, p.clone(), 1).unwrap();
        assert_eq!((record.summary.event_type, record.summary.dedup_key), (None, None));
        e.id.clear();
        assert_eq!(EventRecord::from_envelope(&e, p, 1), Err(InvalidEnvelope::MissingId));
    }
}
