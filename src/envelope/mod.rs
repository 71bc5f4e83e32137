//! The `hookgate.v1` envelope: the protobuf types generated from proto/
//! (the public schema of every record value), the envelope of a received
//! request borrowing it ([`borrowed`]), the Kafka record around it
//! ([`record`]), its Schema Registry framing ([`framing`]), the CloudEvents
//! form of the record ([`cloudevents`]) and event ids ([`id`]).

#[allow(missing_docs, unreachable_pub, missing_debug_implementations, clippy::all)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/hookgate.v1.rs"));
}
mod borrowed;
pub mod cloudevents;
pub mod framing;
mod id;
mod record;

pub use borrowed::{EnvelopeRef, VerificationRef};
pub use generated::{BodyRef, Header, Verification, WebhookEnvelope};
pub use id::{new_event_id, new_event_id_at};
pub use record::{
    record_headers, record_key, HEADER_EVENT_TYPE, HEADER_ID, HEADER_REPLAY, HEADER_SCHEMA, HEADER_SOURCE, SCHEMA,
};

/// The text of `proto/hookgate/v1/envelope.proto`, registered with the schema registry.
pub const PROTO_SCHEMA: &str = include_str!("../../proto/hookgate/v1/envelope.proto");
/// Where the query API serves the body of event `id`: the `location` of its
/// [`BodyRef`] when the body was kept out of the record.
pub fn body_location(id: &str) -> String {
    format!("/v1/events/{id}/body")
}

/// Value that replaces redacted request header values in envelopes.
pub const REDACTED: &[u8] = b"[redacted]";

/// Whether `text` may be an envelope's `event_type` or `dedup_key`: no
/// control character (Unicode Cc) other than a tab, as in a header value.
/// Ingest refuses a request whose key breaks it and the indexer skips a
/// record that does, so the two agree on what reaches the history.
pub fn is_key_text(text: &str) -> bool {
    !text.chars().any(|c| c.is_control() && c != '\t')
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
        record_headers(&self.id, &self.source, &self.event_type, self.replay)
    }

    /// The value of a request header as received, if present (first occurrence, case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_ref())
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
            headers: vec![Header {
                name: "X-A".into(),
                value: bytes::Bytes::from_static(b"1"),
            }],
            verification: Some(Verification {
                scheme: "github".into(),
                verified: true,
                secret_index: 1,
                static_credential: false,
            }),
            ..Default::default()
        };
        let decoded = WebhookEnvelope::from_bytes(&envelope.to_bytes()).unwrap();
        assert_eq!(decoded, envelope);
        assert_eq!(decoded.header("x-a"), Some(&b"1"[..]));
    }

    #[test]
    fn replay_and_event_type_show_in_record_headers() {
        let mut envelope = WebhookEnvelope {
            id: "i".into(),
            source: "s".into(),
            ..Default::default()
        };
        assert!(!envelope
            .record_headers()
            .iter()
            .any(|(k, _)| *k == HEADER_EVENT_TYPE || *k == HEADER_REPLAY));
        envelope.event_type = "t".into();
        envelope.replay = true;
        let headers = envelope.record_headers();
        assert!(headers.contains(&(HEADER_EVENT_TYPE, "t")));
        assert!(headers.contains(&(HEADER_REPLAY, "true")));
    }
}
