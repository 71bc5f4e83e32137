//! Stripe: the account's events. `GET {api}/v1/events?created[gte]=T&limit=100`
//! lists them newest first; `has_more` and `starting_after={last id}` page
//! back through older ones. Stripe keeps events for 30 days. No
//! `Stripe-Version` is sent: events come in the account's default API
//! version, which is also what webhook endpoints without a pinned version get.

use reqwest::Method;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::client::ApiClient;
use super::run::Sent;
use super::{Lease, ReconcileError};
use crate::config::Preset;
use crate::config::ReconcileConfig;

/// A page of `GET /v1/events`.
#[derive(Debug, Deserialize)]
struct EventList {
    /// The events, newest first, exactly as the API wrote them.
    data: Vec<Box<RawValue>>,
    /// Whether older events follow.
    has_more: bool,
}

/// The fields of an event hookgate reads.
#[derive(Debug, Deserialize)]
struct EventHead {
    /// `evt_...`: the body `id` of its webhook, hookgate's dedup key.
    id: String,
    /// The event type, e.g. `invoice.paid`.
    #[serde(rename = "type")]
    event_type: String,
    /// Creation time, seconds since the epoch.
    created: i64,
}

/// One Stripe account's events.
#[derive(Debug)]
pub(super) struct StripeEvents {
    /// The API client.
    client: ApiClient,
    /// `{api}/v1/events`.
    url: String,
    /// Event types the endpoint subscribes to (empty: all).
    types: Vec<String>,
}

impl StripeEvents {
    /// The events API of `config` for `source`.
    pub(super) fn new(source: &str, config: &ReconcileConfig) -> Result<Self, ReconcileError> {
        Ok(Self {
            client: ApiClient::new(source, config.token.clone(), http::HeaderMap::new())?,
            url: format!("{}/v1/events", config.api_for(Preset::Stripe)),
            types: config.types.clone(),
        })
    }

    /// The events created since `cutoff` (µs).
    pub(super) async fn list(&self, cutoff: i64, lease: &Lease) -> Result<Vec<Sent>, ReconcileError> {
        let mut sent = Vec::new();
        let mut starting_after: Option<String> = None;
        loop {
            let query = self.query(cutoff, starting_after.as_deref());
            let response = self.client.send(Method::GET, &self.url, &query).await?;
            let origin = response.remote_addr().map(|addr| addr.ip());
            let page: EventList = response
                .json()
                .await
                .map_err(|e| ReconcileError::Decode(e.to_string()))?;
            for raw in page.data {
                sent.push(Sent {
                    origin,
                    ..into_sent(raw)?
                });
            }
            match sent.last() {
                Some(last) if page.has_more => starting_after = Some(last.key.clone()),
                _ => break,
            }
            if !lease.renew().await? {
                return Err(ReconcileError::LeaseLost);
            }
        }
        Ok(sent)
    }

    fn query(&self, cutoff: i64, starting_after: Option<&str>) -> Vec<(String, String)> {
        let mut query = vec![
            ("created[gte]".to_owned(), cutoff.div_euclid(1_000_000).to_string()),
            ("limit".to_owned(), "100".to_owned()),
        ];
        query.extend(self.types.iter().map(|t| ("types[]".to_owned(), t.clone())));
        query.extend(starting_after.map(|id| ("starting_after".to_owned(), id.to_owned())));
        query
    }
}

fn into_sent(raw: Box<RawValue>) -> Result<Sent, ReconcileError> {
    let head: EventHead = serde_json::from_str(raw.get()).map_err(|e| ReconcileError::Decode(e.to_string()))?;
    Ok(Sent {
        key: head.id.clone(),
        handles: vec![head.id.clone()],
        handle: head.id,
        at: head.created.saturating_mul(1_000_000),
        // Stripe lists no delivery outcome: an event absent from the history was never received.
        failed: true,
        in_flight: false,
        event_type: head.event_type,
        payload: Some(raw),
        origin: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_keep_their_bytes_and_read_their_head() {
        let raw = RawValue::from_string(r#"{"id":"evt_1","object":"event","type":"invoice.paid","created":17}"#.into())
            .unwrap();
        let sent = into_sent(raw).unwrap();
        assert_eq!(
            (sent.key.as_str(), sent.event_type.as_str(), sent.at),
            ("evt_1", "invoice.paid", 17_000_000)
        );
        assert!(sent.payload.unwrap().get().starts_with(r#"{"id":"evt_1","object""#));
        let broken = RawValue::from_string(r#"{"object":"event"}"#.into()).unwrap();
        assert_eq!(into_sent(broken).unwrap_err().reason(), "bad_response");
    }
}
