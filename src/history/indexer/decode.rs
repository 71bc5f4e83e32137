//! From a Kafka record to a history row. Anyone who can write to the topic
//! can write a record, so nothing in it is trusted: the value must decode as
//! a `hookgate.v1` envelope, and every string that becomes a column of its
//! own or a field of the live tail must look like what ingest writes there.
//! A record that does not is a decode failure (counted, logged, skipped).
//!
//! What each string field may hold ("control character": Unicode category
//! Cc, i.e. U+0000 to U+001F and U+007F to U+009F):
//!
//! | field | accepted |
//! |---|---|
//! | `id` | a UUID in canonical form (lower-case hex, hyphenated), as ingest assigns it |
//! | `source` | 1 to 64 of `A-Z a-z 0-9 . _ -` (a source name as the configuration allows it) |
//! | `method` | 1 to 32 characters of an HTTP token (RFC 9110) |
//! | `client_addr` | an IPv4 or IPv6 address |
//! | `verification.scheme` | up to 32 of `a-z 0-9 -` (may be empty) |
//! | `event_type`, `dedup_key` | at most 1024 bytes, no control character except tab (they come from header values or JSON strings; ingest cuts them at 256) |
//! | `content_type` | no control character except tab (a header value) |
//! | `path`, `query` | no control character (a URI holds none) |
//!
//! Header names and values and the body are bytes that may hold anything:
//! they are stored as JSON text (escaped), base64 or raw bytes, never as a
//! column or an SSE field of their own.

use std::net::IpAddr;

use uuid::Uuid;

use crate::envelope::{body_location, WebhookEnvelope};
use crate::history::store::{EventRecord, InvalidEnvelope, Provenance};

/// Longest `event_type` or `dedup_key` stored. Both are indexed, and
/// PostgreSQL's B-tree refuses entries beyond about 2700 bytes.
const MAX_KEY_BYTES: usize = 1024;
/// Longest source name (the configuration's bound).
const MAX_SOURCE_BYTES: usize = 64;
/// Longest method.
const MAX_METHOD_BYTES: usize = 32;
/// Longest verification scheme name.
const MAX_SCHEME_BYTES: usize = 32;

/// Why a record is not stored.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The record has no value.
    #[error("the record has no value")]
    NoValue,
    /// The value is not a protobuf `hookgate.v1.WebhookEnvelope`.
    #[error("not a hookgate.v1 envelope: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// A field holds what ingest never writes there.
    #[error("`{field}` {problem}")]
    Field {
        /// The envelope field.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The envelope lacks what a row needs.
    #[error(transparent)]
    Invalid(#[from] InvalidEnvelope),
}

/// Decodes a record's value into a row read at `provenance` and indexed at `now` (µs).
pub fn decode(value: Option<&[u8]>, provenance: Provenance, now: i64) -> Result<EventRecord, DecodeError> {
    let envelope = WebhookEnvelope::from_bytes(value.ok_or(DecodeError::NoValue)?)?;
    check(&envelope)?;
    Ok(EventRecord::from_envelope(&envelope, provenance, now)?)
}

/// Every field rule of the table above.
fn check(envelope: &WebhookEnvelope) -> Result<(), DecodeError> {
    let scheme = envelope.verification.as_ref().map_or("", |v| v.scheme.as_str());
    let rules: [(&'static str, bool, &'static str); 13] = [
        ("id", is_canonical_uuid(&envelope.id), "is not a UUID in canonical form"),
        (
            "source",
            is_name(&envelope.source, MAX_SOURCE_BYTES, |b| {
                b.is_ascii_alphanumeric() || b"._-".contains(&b)
            }),
            "is not 1-64 of A-Z a-z 0-9 . _ -",
        ),
        (
            "method",
            is_name(&envelope.method, MAX_METHOD_BYTES, is_token_byte),
            "is not an HTTP method",
        ),
        (
            "client_addr",
            envelope.client_addr.parse::<IpAddr>().is_ok(),
            "is not an IP address",
        ),
        (
            "verification.scheme",
            scheme.is_empty()
                || is_name(scheme, MAX_SCHEME_BYTES, |b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
                }),
            "is not a verification preset name",
        ),
        (
            "event_type",
            envelope.event_type.len() <= MAX_KEY_BYTES,
            "is longer than 1024 bytes",
        ),
        (
            "dedup_key",
            envelope.dedup_key.len() <= MAX_KEY_BYTES,
            "is longer than 1024 bytes",
        ),
        ("event_type", is_text(&envelope.event_type), "holds a control character"),
        ("dedup_key", is_text(&envelope.dedup_key), "holds a control character"),
        (
            "content_type",
            is_text(&envelope.content_type),
            "holds a control character",
        ),
        ("path", has_no_control(&envelope.path), "holds a control character"),
        ("query", has_no_control(&envelope.query), "holds a control character"),
        (
            "body_ref",
            is_body_ref_as_written(envelope),
            "is not what ingest writes (an empty body, a length, a 32-byte SHA-256 and /v1/events/{id}/body)",
        ),
    ];
    let broken = rules.into_iter().find(|(_, ok, _)| !ok);
    match broken {
        Some((field, _, problem)) => Err(DecodeError::Field { field, problem }),
        None => Ok(()),
    }
}

/// No reference, or one as ingest writes it for a body kept out of the record.
fn is_body_ref_as_written(envelope: &WebhookEnvelope) -> bool {
    envelope.body_ref.as_ref().is_none_or(|reference| {
        envelope.body.is_empty()
            && reference.length > 0
            && reference.sha256.len() == 32
            && reference.location == body_location(&envelope.id)
    })
}

/// `8-4-4-4-12` lower-case hex digits, the only form ingest writes.
fn is_canonical_uuid(text: &str) -> bool {
    Uuid::try_parse(text).is_ok_and(|uuid| uuid.hyphenated().to_string() == text)
}

/// 1 to `max` bytes, each accepted by `allowed`.
fn is_name(text: &str, max: usize, allowed: impl Fn(u8) -> bool) -> bool {
    !text.is_empty() && text.len() <= max && text.bytes().all(allowed)
}

/// A `tchar` of RFC 9110.
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// No control character other than a horizontal tab.
fn is_text(text: &str) -> bool {
    !text.chars().any(|c| c.is_control() && c != '\t')
}

/// No control character at all.
fn has_no_control(text: &str) -> bool {
    !text.chars().any(char::is_control)
}

#[cfg(test)]
mod tests;
