//! [`EnvelopeRef`]: the envelope of a received request, borrowing the
//! request instead of copying it into an owned [`WebhookEnvelope`], and
//! encoded with prost's `encoding` helpers straight into the record value.
//! It writes exactly the bytes prost writes for the equal owned envelope
//! (fields in number order, proto3 defaults omitted; a test holds the two
//! together), in one allocation. It exists for speed alone: the owned
//! envelope's copies, encoding and drop cost ingest about 0.05 of its peak
//! ratio in the end-to-end benchmark (benches/README.md).

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};
use prost::Message as _;

use super::framing;
use super::{BodyRef, Header, Verification, WebhookEnvelope, REDACTED};

/// The verification outcome of a received request, borrowing the scheme name.
#[derive(Debug, Clone, Copy)]
pub struct VerificationRef<'a> {
    /// The verification preset's name.
    pub scheme: &'a str,
    /// Whether the request was verified.
    pub verified: bool,
    /// Index of the secret that matched.
    pub secret_index: u32,
    /// Whether the check was a static credential rather than a signature.
    pub static_credential: bool,
}

/// A received request's envelope. Its fields mean what the same fields of
/// [`WebhookEnvelope`] mean; `replay` and `recovered` are always false for a
/// request received from a sender.
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
    pub hidden: &'a [HeaderName],
    /// Content-Type value; empty when absent.
    pub content_type: &'a str,
    /// The body; empty when it was stored apart (`body_ref`).
    pub body: &'a [u8],
    /// Dedup key; empty when none.
    pub dedup_key: &'a str,
    /// Verification outcome.
    pub verification: VerificationRef<'a>,
    /// Client address as text.
    pub client_addr: &'a str,
    /// Where the body is when it was kept out of the record.
    pub body_ref: Option<&'a BodyRef>,
}

impl EnvelopeRef<'_> {
    /// The record value: the envelope's protobuf bytes, framed for the
    /// schema registry when `schema_id` is set.
    pub fn encode(&self, schema_id: Option<u32>) -> Vec<u8> {
        let mut value = Vec::with_capacity(framing::HEADER_LEN + self.encoded_len());
        if let Some(id) = schema_id {
            value.extend_from_slice(&framing::header(id));
        }
        self.encode_into(&mut value);
        value
    }

    /// The Kafka record headers of this envelope.
    pub fn record_headers(&self) -> Vec<(&'static str, &str)> {
        super::record_headers(self.id, self.source, self.event_type, false)
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
                    value: Bytes::copy_from_slice(self.header_value(name, value)),
                })
                .collect(),
            content_type: self.content_type.to_owned(),
            body: Bytes::copy_from_slice(self.body),
            dedup_key: self.dedup_key.to_owned(),
            verification: Some(Verification {
                scheme: self.verification.scheme.to_owned(),
                verified: self.verification.verified,
                secret_index: self.verification.secret_index,
                static_credential: self.verification.static_credential,
            }),
            client_addr: self.client_addr.to_owned(),
            replay: false,
            body_ref: self.body_ref.cloned(),
            recovered: false,
        }
    }

    /// Appends the protobuf bytes to `buf`. The top-level message has no
    /// length prefix, and each nested one's length is known before it is written.
    fn encode_into(&self, buf: &mut Vec<u8>) {
        put_bytes(1, self.id.as_bytes(), buf);
        put_bytes(2, self.source.as_bytes(), buf);
        put_bytes(3, self.event_type.as_bytes(), buf);
        put_varint(4, self.received_at_unix_micros as u64, buf);
        put_bytes(5, self.method.as_bytes(), buf);
        put_bytes(6, self.path.as_bytes(), buf);
        put_bytes(7, self.query.as_bytes(), buf);
        for (name, value) in self.headers {
            let (name, value) = (name.as_str().as_bytes(), self.header_value(name, value));
            put_prefix(8, header_len(name, value), buf);
            put_bytes(1, name, buf);
            put_bytes(2, value, buf);
        }
        put_bytes(9, self.content_type.as_bytes(), buf);
        put_bytes(10, self.body, buf);
        put_bytes(11, self.dedup_key.as_bytes(), buf);
        let verification = &self.verification;
        put_prefix(12, verification_len(verification), buf);
        put_bytes(1, verification.scheme.as_bytes(), buf);
        put_varint(2, u64::from(verification.verified), buf);
        put_varint(3, u64::from(verification.secret_index), buf);
        put_varint(4, u64::from(verification.static_credential), buf);
        put_bytes(13, self.client_addr.as_bytes(), buf);
        if let Some(body_ref) = self.body_ref {
            prost::encoding::message::encode(15, body_ref, buf);
        }
    }

    /// Length of [`encode_into`](Self::encode_into)'s output.
    fn encoded_len(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(name, value)| nested_len(8, header_len(name.as_str().as_bytes(), self.header_value(name, value))))
            .sum();
        bytes_len(1, self.id.as_bytes())
            + bytes_len(2, self.source.as_bytes())
            + bytes_len(3, self.event_type.as_bytes())
            + varint_len(4, self.received_at_unix_micros as u64)
            + bytes_len(5, self.method.as_bytes())
            + bytes_len(6, self.path.as_bytes())
            + bytes_len(7, self.query.as_bytes())
            + headers
            + bytes_len(9, self.content_type.as_bytes())
            + bytes_len(10, self.body)
            + bytes_len(11, self.dedup_key.as_bytes())
            + nested_len(12, verification_len(&self.verification))
            + bytes_len(13, self.client_addr.as_bytes())
            + self.body_ref.map_or(0, |r| nested_len(15, r.encoded_len()))
    }

    /// The value written for header `name`: [`REDACTED`] when it is hidden.
    fn header_value<'v>(&self, name: &HeaderName, value: &'v HeaderValue) -> &'v [u8] {
        if self.hidden.contains(name) {
            REDACTED
        } else {
            value.as_bytes()
        }
    }
}

/// Encoded length of a `Header` message.
fn header_len(name: &[u8], value: &[u8]) -> usize {
    bytes_len(1, name) + bytes_len(2, value)
}

/// Encoded length of a `Verification` message.
fn verification_len(v: &VerificationRef<'_>) -> usize {
    bytes_len(1, v.scheme.as_bytes())
        + varint_len(2, u64::from(v.verified))
        + varint_len(3, u64::from(v.secret_index))
        + varint_len(4, u64::from(v.static_credential))
}

/// Length of a message field: key, length, body (written even when empty).
fn nested_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

/// Length of a string or bytes field; 0 when empty (proto3 omits defaults).
fn bytes_len(tag: u32, value: &[u8]) -> usize {
    if value.is_empty() {
        0
    } else {
        nested_len(tag, value.len())
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

/// Writes a string or bytes field unless it is empty.
fn put_bytes(tag: u32, value: &[u8], buf: &mut Vec<u8>) {
    if !value.is_empty() {
        put_prefix(tag, value.len(), buf);
        buf.extend_from_slice(value);
    }
}

/// Writes a length-delimited field's key and length.
fn put_prefix(tag: u32, len: usize, buf: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(len as u64, buf);
}

/// Writes a varint field unless it is zero.
fn put_varint(tag: u32, value: u64, buf: &mut Vec<u8>) {
    if value != 0 {
        encode_key(tag, WireType::Varint, buf);
        encode_varint(value, buf);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn header_map(pairs: &[(String, Vec<u8>)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    fn envelope<'a>(
        headers: &'a HeaderMap,
        hidden: &'a [HeaderName],
        body: &'a [u8],
        text: &'a str,
        number: i64,
        flag: bool,
        body_ref: Option<&'a BodyRef>,
    ) -> EnvelopeRef<'a> {
        EnvelopeRef {
            id: text,
            source: "github",
            event_type: text,
            received_at_unix_micros: number,
            method: "POST",
            path: "/webhooks/github",
            query: text,
            headers,
            hidden,
            content_type: text,
            body,
            dedup_key: text,
            verification: VerificationRef {
                scheme: text,
                verified: flag,
                secret_index: number as u32,
                static_credential: flag,
            },
            client_addr: text,
            body_ref,
        }
    }

    #[test]
    fn hidden_headers_keep_their_name_and_place() {
        let headers = header_map(&[
            ("x-a".into(), b"1".to_vec()),
            ("authorization".into(), b"secret".to_vec()),
            ("x-gitlab-token".into(), b"glpat".to_vec()),
        ]);
        let hidden = [http::header::AUTHORIZATION, HeaderName::from_static("x-gitlab-token")];
        let borrowed = envelope(&headers, &hidden, b"", "t", 1, true, None);
        let kept: Vec<(String, Bytes)> = borrowed
            .to_envelope()
            .headers
            .into_iter()
            .map(|h| (h.name, h.value))
            .collect();
        assert_eq!(
            kept,
            [
                ("x-a".to_owned(), Bytes::from_static(b"1")),
                ("authorization".to_owned(), Bytes::from_static(REDACTED)),
                ("x-gitlab-token".to_owned(), Bytes::from_static(REDACTED)),
            ]
        );
    }

    proptest! {
        #[test]
        fn encodes_the_bytes_prost_writes_for_the_owned_envelope(
            pairs in proptest::collection::vec(("[a-z][a-z0-9-]{0,12}", proptest::collection::vec(32u8..127, 0..40)), 0..12),
            body in proptest::collection::vec(any::<u8>(), 0..300),
            text in "[ -~]{0,20}",
            number in any::<i64>(),
            flag in any::<bool>(),
            hide_first in any::<bool>(),
            with_ref in any::<bool>(),
        ) {
            let headers = header_map(&pairs);
            let hidden: Vec<HeaderName> = headers.keys().take(usize::from(hide_first)).cloned().collect();
            let body_ref = BodyRef { length: body.len() as u64, sha256: Bytes::from_static(&[7; 32]), location: text.clone() };
            let borrowed = envelope(&headers, &hidden, &body, &text, number, flag, with_ref.then_some(&body_ref));
            let owned = borrowed.to_envelope();
            prop_assert_eq!(borrowed.encode(None), owned.to_bytes());
            prop_assert_eq!(borrowed.encode(Some(9)), framing::frame(&owned, 9));
            prop_assert_eq!(borrowed.record_headers(), owned.record_headers());
            if let Some(name) = hidden.first() {
                prop_assert_eq!(owned.header(name.as_str()), Some(REDACTED));
            }
        }
    }
}
