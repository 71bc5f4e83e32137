//! What a verified request delivers: its event id, dedup key, event type and
//! receive time, and the envelope that carries it to Kafka.

use std::time::{SystemTime, UNIX_EPOCH};

use http::request::Parts;
use http::{HeaderMap, HeaderName};
use uuid::Uuid;

use super::error::IngestError;
use super::extract::{extract, extract_key, LazyJson};
use super::source::Source;
use crate::config::KeySpec;
use crate::envelope::{is_key_text, new_event_id_at, BodyRef, EnvelopeRef, VerificationRef};
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
    /// Set when the body was written to the history store (claim check): the record carries this instead.
    pub(super) body_ref: Option<BodyRef>,
}

impl Delivery {
    /// Takes the dedup key and event type from a request as `source` says.
    /// Either holding a control character (only a JSON body can carry one)
    /// is refused: the indexer would skip such a record, and the event would
    /// be in Kafka but never in the history.
    pub(super) fn new(
        source: &Source,
        headers: &HeaderMap,
        body: &[u8],
        received: SystemTime,
    ) -> Result<Self, IngestError> {
        let mut json = LazyJson::new(body);
        let dedup_key = extract_key(&source.dedup_key, headers, &mut json).map(|key| key.into_owned());
        let event_type = extract(&source.event_type, headers, &mut json).map(|kind| kind.into_owned());
        if !dedup_key.as_deref().is_none_or(is_key_text) {
            return Err(IngestError::InvalidKey("dedup_key"));
        }
        if !event_type.as_deref().is_none_or(is_key_text) {
            return Err(IngestError::InvalidKey("event_type"));
        }
        Ok(Self {
            id: new_event_id_at(received),
            dedup_key,
            event_type,
            received,
            body_ref: None,
        })
    }

    /// True when the source names a dedup key and the request did not carry it.
    pub(super) fn lacks_dedup_key(&self, source: &Source) -> bool {
        self.dedup_key.is_none() && source.dedup_key != KeySpec::None
    }

    /// The envelope of this delivery: the request as received, with the values
    /// of the source's hidden headers replaced (the configured redactions, a
    /// static credential anyone could reuse, a signature that would let a
    /// reader forge a delivery); without the body when it was stored apart
    /// (`body_ref`).
    pub(super) fn envelope<'a>(
        &'a self,
        id: &'a str,
        source: &'a Source,
        request: &'a Parts,
        body: &'a [u8],
        client_addr: &'a str,
        verified: Verified,
    ) -> EnvelopeRef<'a> {
        EnvelopeRef {
            id,
            source: &source.name,
            event_type: self.event_type.as_deref().unwrap_or_default(),
            received_at_unix_micros: unix_micros(self.received),
            method: request.method.as_str(),
            path: request.uri.path(),
            query: request.uri.query().unwrap_or_default(),
            headers: &request.headers,
            hidden: &source.hidden_headers,
            content_type: header_text(&request.headers, http::header::CONTENT_TYPE),
            body: if self.body_ref.is_some() { &[] } else { body },
            dedup_key: self.dedup_key.as_deref().unwrap_or_default(),
            verification: VerificationRef {
                scheme: source.verifier.scheme(),
                verified: verified.verified,
                secret_index: verified.secret_index,
                static_credential: verified.verified && source.verifier.is_static_credential(),
            },
            client_addr,
            body_ref: self.body_ref.as_ref(),
        }
    }
}

fn header_text(headers: &HeaderMap, name: HeaderName) -> &str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

pub(super) fn unix_micros(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receive_times_are_microseconds_since_the_epoch() {
        let time = UNIX_EPOCH + std::time::Duration::new(1_790_000_000, 123_456_789);
        assert_eq!(unix_micros(time), 1_790_000_000_123_456);
        assert_eq!(unix_micros(UNIX_EPOCH - std::time::Duration::from_secs(1)), 0);
    }
}
