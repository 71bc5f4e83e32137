//! What a verified request delivers: its event id, dedup key, event type and
//! receive time, and the envelope that carries it to Kafka.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, HeaderName};
use uuid::Uuid;

use super::extract::{extract, LazyJson};
use super::source::Source;
use crate::config::KeySpec;
use crate::envelope::{new_event_id_at, Header, Verification, WebhookEnvelope, REDACTED};
use crate::verify::Verified;

/// The identity of one delivery.
#[derive(Debug)]
pub(super) struct Delivery {
    /// The gateway-assigned event id.
    pub(super) id: Uuid,
    /// The dedup key, when the source has one and the request carried it.
    pub(super) dedup_key: Option<String>,
    /// The event type, when known.
    pub(super) event_type: Option<String>,
    /// When the request was received (its body read).
    pub(super) received: SystemTime,
}

impl Delivery {
    /// Takes the dedup key and event type from a request as `source` says.
    pub(super) fn new(source: &Source, headers: &HeaderMap, body: &[u8], received: SystemTime) -> Self {
        let mut json = LazyJson::new(body);
        let dedup_key = extract(&source.dedup_key, headers, &mut json).map(|key| key.into_owned());
        let event_type = extract(&source.event_type, headers, &mut json).map(|kind| kind.into_owned());
        Self {
            id: new_event_id_at(received),
            dedup_key,
            event_type,
            received,
        }
    }

    /// True when the source names a dedup key and the request did not carry it.
    pub(super) fn lacks_dedup_key(&self, source: &Source) -> bool {
        self.dedup_key.is_none() && source.dedup_key != KeySpec::None
    }

    /// The envelope of this delivery: the request as received, with the values
    /// of the `redact` headers replaced.
    pub(super) fn into_envelope(
        self,
        source: &Source,
        request: &Parts,
        body: Bytes,
        client: IpAddr,
        verified: Verified,
        redact: &[HeaderName],
    ) -> WebhookEnvelope {
        WebhookEnvelope {
            id: self.id.hyphenated().encode_lower(&mut Uuid::encode_buffer()).to_owned(),
            source: source.name.clone(),
            event_type: self.event_type.unwrap_or_default(),
            received_at_unix_micros: unix_micros(self.received),
            method: request.method.to_string(),
            path: request.uri.path().to_owned(),
            query: request.uri.query().unwrap_or_default().to_owned(),
            headers: headers(&request.headers, redact, source.verifier.credential_header()),
            content_type: header_text(&request.headers, http::header::CONTENT_TYPE).to_owned(),
            body,
            dedup_key: self.dedup_key.unwrap_or_default(),
            verification: Some(Verification {
                scheme: source.verifier.scheme().to_owned(),
                verified: verified.verified,
                secret_index: verified.secret_index,
                static_credential: verified.verified && source.verifier.is_static_credential(),
            }),
            client_addr: client.to_string(),
            replay: false,
            recovered: false,
        }
    }
}

/// The request headers in the order received, redacted values replaced,
/// and so is the source's static credential (a token anyone could reuse).
fn headers(headers: &HeaderMap, redact: &[HeaderName], credential: Option<&HeaderName>) -> Vec<Header> {
    headers
        .iter()
        .map(|(name, value)| Header {
            name: name.as_str().to_owned(),
            value: if redact.contains(name) || credential == Some(name) {
                Bytes::from_static(REDACTED)
            } else {
                Bytes::copy_from_slice(value.as_bytes())
            },
        })
        .collect()
}

fn header_text(headers: &HeaderMap, name: HeaderName) -> &str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

fn unix_micros(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_headers_keep_their_name_and_place() {
        let mut map = HeaderMap::new();
        map.append("x-a", "1".parse().unwrap());
        map.append("authorization", "secret".parse().unwrap());
        map.append("x-gitlab-token", "glpat".parse().unwrap());
        let kept = headers(&map, &[http::header::AUTHORIZATION], None);
        assert_eq!(kept[1].name, "authorization");
        assert_eq!(kept[1].value.as_ref(), REDACTED);
        assert_eq!((kept[0].name.as_str(), kept[0].value.as_ref()), ("x-a", &b"1"[..]));
        assert_eq!(kept[2].value.as_ref(), b"glpat");
        let token = http::HeaderName::from_static("x-gitlab-token");
        let kept = headers(&map, &[], Some(&token));
        assert_eq!(kept[2].value.as_ref(), REDACTED);
        assert_eq!(kept[1].value.as_ref(), b"secret");
    }

    #[test]
    fn receive_times_are_microseconds_since_the_epoch() {
        let time = UNIX_EPOCH + std::time::Duration::new(1_790_000_000, 123_456_789);
        assert_eq!(unix_micros(time), 1_790_000_000_123_456);
        assert_eq!(unix_micros(UNIX_EPOCH - std::time::Duration::from_secs(1)), 0);
    }
}
