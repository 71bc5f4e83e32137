//! The dedup claims of one delivery: its delivery key (`X-GitHub-Delivery`,
//! a JSON `id`, ...) and, where the signature covers no timestamp (github,
//! shopify, meta, twilio, `hmac` without `timestamp_header`), the
//! signature itself. Such a signature stays valid forever, and the delivery
//! key sits outside it: whoever saw one delivery could post the same body
//! and signature with a fresh delivery id. Within the dedup window that
//! repeat is a duplicate of the first event, answered as one and counted in
//! `hookgate_signature_replays_total`.
//!
//! Both claims are reserved before publishing and settled together: both
//! committed once the broker acked, both released when it did not.

use http::HeaderMap;
use uuid::Uuid;

use super::admission::Route;
use super::delivery::Delivery;
use super::error::IngestError;
use crate::dedup::{Dedup, Reservation, Ticket};

/// What the dedup store said about a delivery.
pub(super) enum KeyState {
    /// Not delivered before: publish, then settle the claims.
    Fresh(Claims),
    /// Delivered before as this event id.
    Delivered(String),
}

/// The reserved claims of a delivery; dropping them releases them.
#[derive(Debug, Default)]
pub(super) struct Claims {
    /// The delivery key's reservation (none when the request carried no key).
    delivery: Option<Ticket>,
    /// The replayable signature's reservation (none for other schemes).
    signature: Option<Ticket>,
}

impl Claims {
    /// Marks both delivered for the window; an error is logged (the event is in Kafka regardless).
    pub(super) async fn commit(self, route: &Route, id: Uuid) {
        for ticket in [self.delivery, self.signature].into_iter().flatten() {
            if let Err(error) = ticket.commit().await {
                let source = &route.source.name;
                tracing::warn!(%source, %id, %error, "event published but its dedup key could not be stored");
            }
        }
    }

    /// Frees both, so that the sender's retry can go through.
    pub(super) async fn release(self) {
        for ticket in [self.delivery, self.signature].into_iter().flatten() {
            ticket.release().await;
        }
    }
}

/// Reserves the delivery key, then the replayable signature, of a delivery.
pub(super) async fn reserve(
    dedup: &Dedup,
    route: &Route,
    delivery: &Delivery,
    headers: &HeaderMap,
) -> Result<KeyState, IngestError> {
    let source = &route.source;
    let mut claims = Claims::default();
    if let Some(key) = &delivery.dedup_key {
        match claim(dedup, route, &source.name, key, delivery.id).await? {
            Claimed::Fresh(ticket) => claims.delivery = Some(ticket),
            Claimed::Delivered(id) => return Ok(KeyState::Delivered(id)),
        }
    }
    let Some(fingerprint) = source.verifier.replayable_signature(headers) else {
        return Ok(KeyState::Fresh(claims));
    };
    let key = const_hex::encode(fingerprint);
    let outcome = claim(dedup, route, &source.signature_scope, &key, delivery.id).await;
    match outcome {
        Ok(Claimed::Fresh(ticket)) => {
            claims.signature = Some(ticket);
            Ok(KeyState::Fresh(claims))
        }
        Ok(Claimed::Delivered(id)) => {
            route.metrics.signature_replay();
            claims.release().await;
            Ok(KeyState::Delivered(id))
        }
        Err(error) => {
            if matches!(error, IngestError::InFlight) {
                route.metrics.signature_replay();
            }
            claims.release().await;
            Err(error)
        }
    }
}

/// One reservation's outcome.
enum Claimed {
    /// Reserved for this delivery.
    Fresh(Ticket),
    /// Delivered before as this event id.
    Delivered(String),
}

/// Reserves `key` in the dedup namespace `scope`, counting a duplicate.
async fn claim(dedup: &Dedup, route: &Route, scope: &str, key: &str, id: Uuid) -> Result<Claimed, IngestError> {
    match dedup.reserve(scope, key, id).await {
        Ok(Reservation::Reserved(ticket)) => Ok(Claimed::Fresh(ticket)),
        Ok(Reservation::Duplicate { id }) => {
            route.metrics.duplicate("acked");
            Ok(Claimed::Delivered(id))
        }
        Ok(Reservation::InFlight) => {
            route.metrics.duplicate("in_flight");
            Err(IngestError::InFlight)
        }
        Err(error) => Err(IngestError::DedupUnavailable(error)),
    }
}
