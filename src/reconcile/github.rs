//! GitHub (REST API version 2022-11-28): a hook's deliveries and their
//! redelivery. `GET {api}/{hook}/deliveries?per_page=100` lists every attempt,
//! newest first, paginated by the `cursor` in the `Link` header's `next`
//! URL; redeliveries are further attempts with the same `guid`. `POST
//! {api}/{hook}/deliveries/{id}/attempts` asks GitHub to send one again
//! (202), signed and with the same `X-GitHub-Delivery` guid.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderValue};
use reqwest::Method;
use serde::Deserialize;

use super::client::ApiClient;
use super::run::Sent;
use super::{Lease, ReconcileError};
use crate::config::{Preset, ReconcileConfig};

/// The API version the requests ask for and the test server follows.
pub(super) const API_VERSION: &str = "2022-11-28";

/// One attempt as `GET .../deliveries` lists it (the fields hookgate reads).
#[derive(Debug, Deserialize)]
struct Delivery {
    /// The attempt's id: what a redelivery names.
    id: i64,
    /// The delivery's guid: `X-GitHub-Delivery`, hookgate's dedup key.
    guid: String,
    /// When the attempt was made.
    delivered_at: DateTime<Utc>,
    /// "OK", or what went wrong ("Invalid HTTP Response: 401", "timed out", ...).
    status: String,
    /// The HTTP status the receiver answered; 0 when there was no answer.
    status_code: u16,
    /// `X-GitHub-Event`.
    event: Option<String>,
}

impl Delivery {
    fn failed(&self) -> bool {
        !((200..300).contains(&self.status_code) && self.status.eq_ignore_ascii_case("ok"))
    }
}

/// One hook's deliveries.
#[derive(Debug)]
pub(super) struct GithubHook {
    /// The API client.
    client: ApiClient,
    /// The API base URL: `next` links must stay under it (the token goes with them).
    api: String,
    /// `{api}/{hook}`.
    hook_url: String,
}

impl GithubHook {
    /// The hook of `config` for `source`.
    pub(super) fn new(source: &str, config: &ReconcileConfig) -> Result<Self, ReconcileError> {
        let api = config.api_for(Preset::Github);
        let hook = config.hook.as_deref().unwrap_or_default().trim_matches('/');
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        headers.insert("x-github-api-version", HeaderValue::from_static(API_VERSION));
        Ok(Self {
            client: ApiClient::new(source, config.token.clone(), headers)?,
            hook_url: format!("{api}/{hook}"),
            api,
        })
    }

    /// The deliveries attempted since `cutoff` (µs), one per guid with its latest attempt.
    pub(super) async fn list(&self, cutoff: i64, lease: &Lease) -> Result<Vec<Sent>, ReconcileError> {
        let mut url = format!("{}/deliveries", self.hook_url);
        let mut query = vec![("per_page".to_owned(), "100".to_owned())];
        let mut latest: HashMap<String, Delivery> = HashMap::new();
        let mut attempts: HashMap<String, Vec<String>> = HashMap::new();
        loop {
            let response = self.client.send(Method::GET, &url, &query).await?;
            let next = next_link(response.headers());
            let page: Vec<Delivery> = response
                .json()
                .await
                .map_err(|e| ReconcileError::Decode(e.to_string()))?;
            let reached_cutoff = page.iter().any(|d| d.delivered_at.timestamp_micros() < cutoff);
            for delivery in page.into_iter().filter(|d| d.delivered_at.timestamp_micros() >= cutoff) {
                attempts
                    .entry(delivery.guid.clone())
                    .or_default()
                    .push(delivery.id.to_string());
                keep_latest(&mut latest, delivery);
            }
            match next {
                Some(next) if !reached_cutoff => url = self.checked_next(next)?,
                _ => break,
            }
            query.clear();
            if !lease.renew().await? {
                return Err(ReconcileError::LeaseLost);
            }
        }
        let sent = latest.into_values().map(|delivery| {
            let handles = attempts.remove(&delivery.guid).unwrap_or_default();
            Sent {
                handles,
                ..into_sent(delivery)
            }
        });
        Ok(sent.collect())
    }

    /// Asks GitHub to redeliver the attempt `handle`.
    pub(super) async fn redeliver(&self, handle: &str) -> Result<(), ReconcileError> {
        let url = format!("{}/deliveries/{handle}/attempts", self.hook_url);
        self.client.send(Method::POST, &url, &[]).await.map(drop)
    }

    /// A `next` link, refused unless it points under the configured API.
    fn checked_next(&self, next: String) -> Result<String, ReconcileError> {
        if next.starts_with(&format!("{}/", self.api)) {
            Ok(next)
        } else {
            Err(ReconcileError::Decode(format!("pagination link outside {}", self.api)))
        }
    }
}

fn keep_latest(latest: &mut HashMap<String, Delivery>, delivery: Delivery) {
    match latest.get(&delivery.guid) {
        Some(seen) if (seen.delivered_at, seen.id) >= (delivery.delivered_at, delivery.id) => {}
        _ => {
            latest.insert(delivery.guid.clone(), delivery);
        }
    }
}

fn into_sent(delivery: Delivery) -> Sent {
    Sent {
        failed: delivery.failed(),
        in_flight: delivery.status_code == 409,
        at: delivery.delivered_at.timestamp_micros(),
        handle: delivery.id.to_string(),
        handles: vec![delivery.id.to_string()],
        event_type: delivery.event.unwrap_or_default(),
        key: delivery.guid,
        payload: None,
        origin: None,
    }
}

/// The URL of `rel="next"` in a `Link` header (RFC 8288), if any.
pub(super) fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(http::header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
        let url = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| url.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::LINK,
            HeaderValue::from_static(
                "<https://api.github.com/x/deliveries?per_page=100&cursor=v1_2>; rel=\"next\", \
                 <https://api.github.com/x/deliveries?per_page=100>; rel=\"first\"",
            ),
        );
        assert_eq!(
            next_link(&headers).as_deref(),
            Some("https://api.github.com/x/deliveries?per_page=100&cursor=v1_2")
        );
        headers.insert(
            http::header::LINK,
            HeaderValue::from_static("<https://a/b>; rel=\"prev\""),
        );
        assert_eq!(next_link(&headers), None);
    }

    #[test]
    fn the_latest_attempt_of_a_guid_decides() {
        let attempt = |id: i64, secs: i64, code: u16| Delivery {
            id,
            guid: "g".into(),
            delivered_at: DateTime::from_timestamp(secs, 0).unwrap(),
            status: if code == 200 {
                "OK".into()
            } else {
                format!("Invalid HTTP Response: {code}")
            },
            status_code: code,
            event: Some("push".into()),
        };
        let mut latest = HashMap::new();
        keep_latest(&mut latest, attempt(2, 20, 200));
        keep_latest(&mut latest, attempt(1, 10, 503));
        assert!(!latest["g"].failed(), "an older failure does not count");
        keep_latest(&mut latest, attempt(3, 30, 0));
        assert!(latest["g"].failed());
        assert_eq!(into_sent(latest.remove("g").unwrap()).handle, "3");
    }
}
