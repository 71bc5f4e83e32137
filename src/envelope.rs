//! The `hookgate.v1` envelope: generated protobuf types (from proto/), the
//! Kafka record headers that let consumers route without decoding, and
//! [`EnvelopeRef`], which encodes a received request into the same bytes
//! without first copying it into an owned [`WebhookEnvelope`].

#[allow(missing_docs, unreachable_pub, missing_debug_implementations, clippy::all)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/hookgate.v1.rs"));
}

use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName};
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};

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
/// Value that replaces redacted request header values in envelopes.
pub const REDACTED: &[u8] = b"[redacted]";
/// Room [`EnvelopeRef::encode_into`] reserves beyond the body: a typical request head.
const HEAD_ROOM: usize = 2048;
/// Key byte of field 8 (`headers`), length-delimited.
const HEADER_ENTRY_KEY: u8 = (8 << 3) | 2;
/// Key byte of `Header.name` (field 1), length-delimited.
const HEADER_NAME_KEY: u8 = (1 << 3) | 2;
/// Key byte of `Header.value` (field 2), length-delimited.
const HEADER_VALUE_KEY: u8 = (2 << 3) | 2;

/// Returns a new gateway event id: a UUIDv7, so ids sort by receive time.
pub fn new_event_id() -> uuid::Uuid {
    new_event_id_at(SystemTime::now())
}

/// The event id of a webhook received at `received` (the caller's clock
/// reading, not another): a UUIDv7 whose 48-bit prefix is that millisecond
/// and whose other 74 bits are random, so ids sort by receive time to the
/// millisecond. uuid's `now_v7` would also order the ids of one millisecond
/// by a process-wide counter, at the price of a mutex every call; within a
/// millisecond the envelope's microsecond receive time orders them instead.
/// uuid's `fast-rng` feature draws the random bits from a thread-local
/// generator instead of making a `getrandom` system call per webhook.
pub fn new_event_id_at(received: SystemTime) -> uuid::Uuid {
    let since_epoch = received.duration_since(UNIX_EPOCH).unwrap_or_default();
    let timestamp = uuid::Timestamp::from_unix(uuid::NoContext, since_epoch.as_secs(), since_epoch.subsec_nanos());
    uuid::Uuid::new_v7(timestamp)
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
        RecordHeaders::new(&self.id, &self.source, &self.event_type, self.replay)
            .as_slice()
            .to_vec()
    }

    /// The value of a request header as received, if present (first occurrence, case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_ref())
    }
}

/// The Kafka record headers of an envelope, without allocating.
#[derive(Debug, Clone, Copy)]
pub struct RecordHeaders<'a> {
    /// The headers; the first `len` are in use.
    items: [(&'static str, &'a str); 5],
    /// Headers in use.
    len: usize,
}

impl<'a> RecordHeaders<'a> {
    /// The headers of an envelope with these fields: id, source, schema, event type (when known), replay (when set).
    pub fn new(id: &'a str, source: &'a str, event_type: &'a str, replay: bool) -> Self {
        let mut items = [
            (HEADER_ID, id),
            (HEADER_SOURCE, source),
            (HEADER_SCHEMA, SCHEMA),
            ("", ""),
            ("", ""),
        ];
        let mut len = 3;
        if !event_type.is_empty() {
            items[len] = (HEADER_EVENT_TYPE, event_type);
            len += 1;
        }
        if replay {
            items[len] = (HEADER_REPLAY, "true");
            len += 1;
        }
        Self { items, len }
    }

    /// The headers in use, as (name, value) pairs.
    pub fn as_slice(&self) -> &[(&'static str, &'a str)] {
        &self.items[..self.len]
    }
}

/// How a request was authenticated, borrowed: the fields of [`Verification`].
#[derive(Debug, Clone, Copy)]
pub struct VerificationRef<'a> {
    /// Preset name.
    pub scheme: &'a str,
    /// True when a signature was checked and matched.
    pub verified: bool,
    /// Index of the secret that matched.
    pub secret_index: u32,
}

/// A received webhook's envelope, borrowing the request rather than copying
/// it: the hot path encodes it straight into the record value. Its fields
/// mean what the same fields of [`WebhookEnvelope`] mean, and [`encode`](Self::encode)
/// writes exactly the bytes prost writes for the equal owned envelope (fields
/// in number order, proto3 defaults omitted), in one allocation.
#[derive(Debug, Clone, Copy)]
pub struct EnvelopeRef<'a> {
    /// Event id (UUID text).
    pub id: &'a str,
    /// Source name.
    pub source: &'a str,
    /// Event type; empty when unknown.
    pub event_type: &'a str,
    /// Receive time, microseconds since the Unix epoch.
    pub received_at_unix_micros: i64,
    /// HTTP method.
    pub method: &'a str,
    /// Request path.
    pub path: &'a str,
    /// Raw query string; empty when absent.
    pub query: &'a str,
    /// Request headers, in the order received.
    pub headers: &'a HeaderMap,
    /// Header names whose values are written as [`REDACTED`].
    pub redact: &'a [HeaderName],
    /// Content-Type value; empty when absent.
    pub content_type: &'a str,
    /// The raw body.
    pub body: &'a [u8],
    /// Dedup key; empty when none.
    pub dedup_key: &'a str,
    /// Verification outcome.
    pub verification: Option<VerificationRef<'a>>,
    /// Client address as text.
    pub client_addr: &'a str,
    /// Published by a replay.
    pub replay: bool,
}

impl<'a> EnvelopeRef<'a> {
    /// The record value: the protobuf encoding of the envelope.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut buf);
        buf
    }

    /// Appends the encoding to `buf` in one pass (the top-level message has
    /// no length prefix, and each nested one's length is known before it is
    /// written). It reserves room for the body and a typical head: a buffer
    /// reused from request to request has it already, and larger heads grow it.
    pub fn encode_into(&self, buf: &mut Vec<u8>) {
        buf.reserve(self.body.len() + HEAD_ROOM);
        let start = buf.len();
        put_str(1, self.id, buf);
        put_str(2, self.source, buf);
        put_str(3, self.event_type, buf);
        put_varint(4, self.received_at_unix_micros as u64, buf);
        put_str(5, self.method, buf);
        put_str(6, self.path, buf);
        put_str(7, self.query, buf);
        for (name, value) in self.headers {
            put_header(name.as_str().as_bytes(), self.header_value(name, value.as_bytes()), buf);
        }
        put_str(9, self.content_type, buf);
        put_bytes(10, self.body, buf);
        put_str(11, self.dedup_key, buf);
        if let Some(verification) = &self.verification {
            put_prefix(12, verification_len(verification), buf);
            put_str(1, verification.scheme, buf);
            put_varint(2, u64::from(verification.verified), buf);
            put_varint(3, u64::from(verification.secret_index), buf);
        }
        put_str(13, self.client_addr, buf);
        put_varint(14, u64::from(self.replay), buf);
        debug_assert_eq!(
            buf.len() - start,
            self.encoded_len(),
            "encoded_len disagrees with encode"
        );
    }

    /// Length of [`encode`](Self::encode)'s output.
    pub fn encoded_len(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(name, value)| {
                nested_len(
                    8,
                    header_len(name.as_str().as_bytes(), self.header_value(name, value.as_bytes())),
                )
            })
            .sum();
        str_len(1, self.id)
            + str_len(2, self.source)
            + str_len(3, self.event_type)
            + varint_len(4, self.received_at_unix_micros as u64)
            + str_len(5, self.method)
            + str_len(6, self.path)
            + str_len(7, self.query)
            + headers
            + str_len(9, self.content_type)
            + str_len(10, self.body)
            + str_len(11, self.dedup_key)
            + self
                .verification
                .as_ref()
                .map_or(0, |v| nested_len(12, verification_len(v)))
            + str_len(13, self.client_addr)
            + varint_len(14, u64::from(self.replay))
    }

    /// The Kafka record headers of this envelope.
    pub fn record_headers(&self) -> RecordHeaders<'a> {
        RecordHeaders::new(self.id, self.source, self.event_type, self.replay)
    }

    /// The owned envelope with the same content.
    pub fn to_envelope(&self) -> WebhookEnvelope {
        WebhookEnvelope {
            id: self.id.to_owned(),
            source: self.source.to_owned(),
            event_type: self.event_type.to_owned(),
            received_at_unix_micros: self.received_at_unix_micros,
            method: self.method.to_owned(),
            path: self.path.to_owned(),
            query: self.query.to_owned(),
            headers: self
                .headers
                .iter()
                .map(|(name, value)| Header {
                    name: name.as_str().to_owned(),
                    value: bytes::Bytes::copy_from_slice(self.header_value(name, value.as_bytes())),
                })
                .collect(),
            content_type: self.content_type.to_owned(),
            body: bytes::Bytes::copy_from_slice(self.body),
            dedup_key: self.dedup_key.to_owned(),
            verification: self.verification.map(|v| Verification {
                scheme: v.scheme.to_owned(),
                verified: v.verified,
                secret_index: v.secret_index,
            }),
            client_addr: self.client_addr.to_owned(),
            replay: self.replay,
        }
    }

    fn header_value<'v>(&self, name: &HeaderName, value: &'v [u8]) -> &'v [u8] {
        if self.redact.contains(name) {
            REDACTED
        } else {
            value
        }
    }
}

/// Encoded length of a `Header` message.
fn header_len(name: &[u8], value: &[u8]) -> usize {
    str_len(1, name) + str_len(2, value)
}

/// Encoded length of a `Verification` message.
fn verification_len(v: &VerificationRef<'_>) -> usize {
    str_len(1, v.scheme) + varint_len(2, u64::from(v.verified)) + varint_len(3, u64::from(v.secret_index))
}

/// Length of a message field: key, length, body (written even when the body is empty).
fn nested_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

/// Length of a string or bytes field; 0 when empty (proto3 omits defaults).
fn str_len(tag: u32, value: impl AsRef<[u8]>) -> usize {
    let len = value.as_ref().len();
    if len == 0 {
        0
    } else {
        nested_len(tag, len)
    }
}

/// Length of a varint field; 0 when zero.
fn varint_len(tag: u32, value: u64) -> usize {
    if value == 0 {
        0
    } else {
        key_len(tag) + encoded_len_varint(value)
    }
}

fn put_str(tag: u32, value: &str, buf: &mut Vec<u8>) {
    put_bytes(tag, value.as_bytes(), buf);
}

fn put_bytes(tag: u32, value: &[u8], buf: &mut Vec<u8>) {
    if !value.is_empty() {
        put_prefix(tag, value.len(), buf);
        buf.extend_from_slice(value);
    }
}

/// The key and length of a length-delimited field. Field numbers below 16
/// with lengths below 128 (most fields of a request) take two bytes, written at once.
fn put_prefix(tag: u32, len: usize, buf: &mut Vec<u8>) {
    if tag < 16 && len < 128 {
        buf.extend_from_slice(&[(tag << 3) as u8 | WireType::LengthDelimited as u8, len as u8]);
    } else {
        encode_key(tag, WireType::LengthDelimited, buf);
        encode_varint(len as u64, buf);
    }
}

/// A request header: a `Header` message in field 8.
fn put_header(name: &[u8], value: &[u8], buf: &mut Vec<u8>) {
    let len = header_len(name, value);
    if len < 128 && !name.is_empty() && !value.is_empty() {
        // Name and value are shorter still: every prefix is one key byte and one length byte.
        buf.extend_from_slice(&[HEADER_ENTRY_KEY, len as u8, HEADER_NAME_KEY, name.len() as u8]);
        buf.extend_from_slice(name);
        buf.extend_from_slice(&[HEADER_VALUE_KEY, value.len() as u8]);
        buf.extend_from_slice(value);
    } else {
        put_prefix(8, len, buf);
        put_bytes(1, name, buf);
        put_bytes(2, value, buf);
    }
}

fn put_varint(tag: u32, value: u64, buf: &mut Vec<u8>) {
    if value != 0 {
        encode_key(tag, WireType::Varint, buf);
        encode_varint(value, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn event_ids_carry_their_receive_millisecond_and_differ_within_it() {
        let received = UNIX_EPOCH + std::time::Duration::new(1_790_000_000, 123_456_789);
        let (first, second) = (new_event_id_at(received), new_event_id_at(received));
        assert_eq!(first.get_version(), Some(uuid::Version::SortRand));
        let (seconds, nanos) = first.get_timestamp().expect("a v7 id has a timestamp").to_unix();
        assert_eq!((seconds, nanos), (1_790_000_000, 123_000_000));
        assert_ne!(first, second);
        let later = new_event_id_at(received + std::time::Duration::from_millis(1));
        assert!(later > first && later > second, "ids of a later millisecond sort after");
    }

    fn header_map(pairs: &[(String, Vec<u8>)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
            map.append(name, http::HeaderValue::from_bytes(value).unwrap());
        }
        map
    }

    proptest! {
        /// The borrowed encoder writes exactly what prost writes for the equal owned envelope
        /// (lengths on both sides of 128, where the one-byte prefixes end).
        #[test]
        fn envelope_ref_encodes_like_prost(
            text in proptest::collection::vec("[a-z0-9:/._-]{0,12}|[a-z]{120,140}", 9),
            micros in any::<i64>(),
            headers in proptest::collection::vec(("[a-z][a-z0-9-]{0,10}", proptest::collection::vec(32u8..127, 0..140)), 0..8),
            body in proptest::collection::vec(any::<u8>(), 0..300),
            verification in proptest::option::of((any::<bool>(), any::<u32>())),
            replay in any::<bool>(),
        ) {
            let headers = header_map(&headers);
            let redact = [HeaderName::from_static("authorization"), HeaderName::from_static("a")];
            let envelope = EnvelopeRef {
                id: &text[0],
                source: &text[1],
                event_type: &text[2],
                received_at_unix_micros: micros,
                method: &text[3],
                path: &text[4],
                query: &text[5],
                headers: &headers,
                redact: &redact,
                content_type: &text[6],
                body: &body,
                dedup_key: &text[7],
                verification: verification.map(|(verified, secret_index)| VerificationRef { scheme: &text[8], verified, secret_index }),
                client_addr: &text[0],
                replay,
            };
            let owned = envelope.to_envelope();
            prop_assert_eq!(envelope.encode(), owned.to_bytes());
            prop_assert_eq!(envelope.encoded_len(), prost::Message::encoded_len(&owned));
            let (borrowed, owned) = (envelope.record_headers(), owned.record_headers());
            prop_assert_eq!(borrowed.as_slice(), owned.as_slice());
        }
    }

    #[test]
    fn event_ids_are_v7_unique_and_ordered_by_millisecond() {
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let ids: Vec<uuid::Uuid> = (0..100_000).map(|_| new_event_id()).collect();
        let millisecond = |id: &uuid::Uuid| id.as_u128() >> 80;
        assert!(
            ids.windows(2)
                .all(|pair| millisecond(&pair[0]) <= millisecond(&pair[1])),
            "ids sort by the millisecond they were made in"
        );
        let distinct: std::collections::HashSet<&uuid::Uuid> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len(), "no id repeats");
        assert!(ids
            .iter()
            .all(|id| id.get_version_num() == 7 && id.get_variant() == uuid::Variant::RFC4122));
        let (secs, nanos) = ids[0].get_timestamp().unwrap().to_unix();
        let millis = secs * 1000 + u64::from(nanos) / 1_000_000;
        assert!(millis >= before && millis < before + 5_000, "{millis} vs {before}");
        let random: std::collections::HashSet<u32> = ids
            .iter()
            .map(|id| u32::from_be_bytes(id.as_bytes()[12..16].try_into().unwrap()))
            .collect();
        assert!(random.len() > 99_000, "the low bits are random");
    }

    #[test]
    fn redacted_headers_keep_their_name_and_place() {
        let headers = header_map(&[
            ("x-a".into(), b"1".to_vec()),
            ("authorization".into(), b"secret".to_vec()),
        ]);
        let redact = [http::header::AUTHORIZATION];
        let envelope = EnvelopeRef {
            id: "i",
            source: "s",
            event_type: "",
            received_at_unix_micros: 0,
            method: "POST",
            path: "/webhooks/s",
            query: "",
            headers: &headers,
            redact: &redact,
            content_type: "",
            body: b"{}",
            dedup_key: "",
            verification: None,
            client_addr: "127.0.0.1",
            replay: false,
        };
        let decoded = WebhookEnvelope::from_bytes(&envelope.encode()).unwrap();
        assert_eq!(decoded.headers[1].name, "authorization");
        assert_eq!(decoded.headers[1].value.as_ref(), REDACTED);
        assert_eq!(decoded.header("x-a"), Some(&b"1"[..]));
    }

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
