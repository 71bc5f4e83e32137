//! Publishing an event fetched from the provider's API: an envelope marked
//! `recovered` (no request headers, `verification.scheme` "stripe-api",
//! the event object as the API returned it as body, the API server's
//! address as client address) through the normal
//! publish path: its dedup key is reserved first, so a webhook of the same
//! event arriving meanwhile and the recovered copy never both reach Kafka.

use std::time::SystemTime;

use super::run::Sent;
use super::{ReconcileError, Shared, RECOVERED_SCHEME};
use crate::config::SourceConfig;
use crate::dedup::Reservation;
use crate::envelope::{new_event_id_at, record_key, Verification, WebhookEnvelope};

/// What became of a recovered event.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Recovered {
    /// Published and acknowledged by the broker.
    Published,
    /// The event arrived as a webhook meanwhile (its dedup key was committed).
    AlreadyDelivered,
    /// Its dedup key is reserved and not settled (a webhook being published, or a reservation
    /// left by a crash until it lapses): the next run tries again.
    InFlight,
}

/// Publishes `item` of `source` as a recovered envelope.
pub(super) async fn publish(shared: &Shared, source: &SourceConfig, item: &Sent) -> Result<Recovered, ReconcileError> {
    let received = SystemTime::now();
    let id = new_event_id_at(received);
    let envelope = envelope(source, item, id.to_string(), crate::history::now_micros());
    let ticket = match shared.dedup.reserve(&source.name, &item.key, id).await? {
        Reservation::Reserved(ticket) => ticket,
        Reservation::Duplicate { .. } => return Ok(Recovered::AlreadyDelivered),
        Reservation::InFlight => return Ok(Recovered::InFlight),
    };
    let config = &shared.config;
    let key = record_key(&source.key, &envelope.id, &envelope.dedup_key).map(<[u8]>::to_vec);
    let topic = config.topic_for(source);
    let ack = shared
        .publisher
        .publish_envelope(&envelope, topic, key.as_deref(), config.ingest.deadline)
        .await;
    match ack {
        Ok(ack) => {
            if let Err(error) = ticket.commit().await {
                tracing::warn!(%error, "recovered event published, but its dedup key could not be committed");
            }
            tracing::info!(source = %source.name, id = %envelope.id, event = %item.key, partition = ack.partition, offset = ack.offset, "missing event recovered");
            Ok(Recovered::Published)
        }
        Err(error) => {
            ticket.release().await;
            Err(error.into())
        }
    }
}

/// The envelope of a recovered event received (fetched) at `received_at` (µs).
fn envelope(source: &SourceConfig, item: &Sent, id: String, received_at: i64) -> WebhookEnvelope {
    let body = item
        .payload
        .as_ref()
        .map(|raw| raw.get().as_bytes().to_vec())
        .unwrap_or_default();
    WebhookEnvelope {
        id,
        source: source.name.clone(),
        event_type: item.event_type.clone(),
        received_at_unix_micros: received_at,
        method: "GET".into(),
        path: "/v1/events".into(),
        content_type: "application/json".into(),
        body: body.into(),
        dedup_key: item.key.clone(),
        verification: Some(Verification {
            scheme: RECOVERED_SCHEME.into(),
            // Fetched over TLS from the provider with our API key: authentic, though unsigned.
            verified: true,
            secret_index: 0,
            static_credential: false,
        }),
        // The API server it came from: the envelope's sender address.
        client_addr: item
            .origin
            .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into())
            .to_string(),
        recovered: true,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Preset, SourceConfig};
    use crate::history::{decode, Provenance};

    #[test]
    fn a_recovered_envelope_is_one_the_indexer_stores_and_replays_as_recovered() {
        let raw = serde_json::value::RawValue::from_string(r#"{"id":"evt_1","type":"invoice.paid"}"#.into()).unwrap();
        let item = Sent {
            key: "evt_1".into(),
            handle: "evt_1".into(),
            handles: vec!["evt_1".into()],
            at: 0,
            failed: true,
            in_flight: false,
            event_type: "invoice.paid".into(),
            payload: Some(raw),
            origin: Some("203.0.113.7".parse().unwrap()),
        };
        let source = SourceConfig::new("stripe", Preset::Stripe, Vec::new());
        let id = new_event_id_at(SystemTime::now()).to_string();
        let envelope = envelope(&source, &item, id, 1_000);
        assert_eq!(
            (envelope.client_addr.as_str(), envelope.recovered),
            ("203.0.113.7", true)
        );
        let provenance = Provenance {
            topic: "t".into(),
            partition: 0,
            offset: 0,
        };
        let row = decode(Some(&envelope.to_bytes()), provenance, 2_000).expect("the indexer stores it");
        assert_eq!(row.summary.verification.scheme, RECOVERED_SCHEME);
        assert_eq!(row.to_envelope().unwrap(), envelope, "a replay keeps the mark");
    }
}
