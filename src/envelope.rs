//! The `hookgate.v1` envelope: generated protobuf types (from proto/) and the
//! Kafka record headers that let consumers route without decoding.

#[allow(missing_docs, unreachable_pub, missing_debug_implementations, clippy::all)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/hookgate.v1.rs"));
}

pub use generated::{Header, Verification, WebhookEnvelope};

/// Record header carrying the event id.
pub const HEADER_ID: &str = "hookgate-id";
/// Record header carrying the source name.
pub const HEADER_SOURCE: &str = "hookgate-source";
/// Record header carrying the event type (absent when unknown).
pub const HEADER_EVENT_TYPE: &str = "hookgate-event-type";
/// Record header present (value "true") on records published by a replay.
pub const HEADER_REPLAY: &str = "hookgate-replay";
/// Record header naming the schema of the value.
pub const HEADER_SCHEMA: &str = "hookgate-schema";
/// Value of [`HEADER_SCHEMA`].
pub const SCHEMA: &str = "hookgate.v1.WebhookEnvelope";

/// Returns a new gateway event id: a UUIDv7, so ids sort by receive time.
pub fn new_event_id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

impl WebhookEnvelope {
    /// Encodes the envelope as a Kafka record value.
    pub fn to_bytes(&self) -> Vec<u8> {
        prost::Message::encode_to_vec(self)
    }

    /// Decodes a Kafka record value.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, prost::DecodeError> {
        prost::Message::decode(bytes)
    }

    /// The record headers for this envelope, as (name, value) pairs.
    pub fn record_headers(&self) -> Vec<(&'static str, &str)> {
        let mut headers = vec![(HEADER_ID, self.id.as_str()), (HEADER_SOURCE, self.source.as_str()), (HEADER_SCHEMA, SCHEMA)];
        if !self.event_type.is_empty() {
            headers.push((HEADER_EVENT_TYPE, self.event_type.as_str()));
        }
        if self.replay {
            headers.push((HEADER_REPLAY, "true"));
        }
        headers
    }

    /// The value of a request header as received, if present (first occurrence, case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trips_through_bytes() {
        let envelope = WebhookEnvelope {
            id: new_event_id().to_string(),
            source: "github".into(),
            event_type: "push".into(),
            body: bytes::Bytes::from_static(b"\x00\xffnot utf-8"),
            headers: vec![Header { name: "X-A".into(), value: bytes::Bytes::from_static(b"1") }],
            verification: Some(Verification { scheme: "github".into(), verified: true, secret_index: 1 }),
            ..Default::default()
        };
        let decoded = WebhookEnvelope::from_bytes(&envelope.to_bytes()).unwrap();
        assert_eq!(decoded, envelope);
        assert_eq!(decoded.header("x-a"), Some(&b"1"[..]));
    }

    #[test]
    fn replay_and_event_type_show_in_record_headers() {
        let mut envelope = WebhookEnvelope { id: "i".into(), source: "s".into(), ..Default::default() };
        assert!(!envelope.record_headers().iter().any(|(k, _)| *k == HEADER_EVENT_TYPE || *k == HEADER_REPLAY));
        envelope.event_type = "t".into();
        envelope.replay = true;
        let headers = envelope.record_headers();
        assert!(headers.contains(&(HEADER_EVENT_TYPE, "t")));
        assert!(headers.contains(&(HEADER_REPLAY, "true")));
    }
}
