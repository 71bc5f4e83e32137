//! A body-signed delivery must not be replayable as a new event (issue 19,
//! item 2), against the real broker with both dedup stores: GitHub and
//! Shopify sign only the body, and their delivery ids sit outside the
//! signature. A replay with a fresh delivery id is a duplicate of the first
//! event; signature headers never reach Kafka or the history API; long keys
//! are hashed, never cut; and a key the indexer would skip is refused.

mod common;

use std::time::Duration;

use common::dedup::redis_url;
use common::gateway::config;
use common::history::get_json;
use common::webhook::{headers, post, post_signed, signed};
use common::{error_code, unique, wait_until, Broker, Setup};
use reqwest::StatusCode;

const GITHUB_SECRET: &str = "it's a secret to everybody";

/// github, shopify, stripe (signs a timestamp) and a declarative hmac source.
fn sources() -> String {
    format!(
        "[[sources]]\nname = \"github\"\nverify = \"github\"\nsecrets = [\"{GITHUB_SECRET}\"]\n\
         [[sources]]\nname = \"shopify\"\nverify = \"shopify\"\nsecrets = [\"shpss\"]\n\
         [[sources]]\nname = \"stripe\"\nverify = \"stripe\"\nsecrets = [\"whsec_abc\"]\n\
         [[sources]]\nname = \"acme\"\nverify = \"hmac\"\nsecrets = [\"acme-key\"]\ndedup_key = \"header:x-acme-id\"\n\
         [sources.hmac]\nheader = \"x-acme-sig\"\n"
    )
}

/// A gateway of `role` publishing to a fresh topic, its dedup store in
/// Redis when `redis` is set, with `rest` appended.
fn setup(role: &str, redis: bool, rest: &str) -> Setup {
    let dedup = if redis {
        format!("[dedup]\nredis = \"{}\"\n", redis_url())
    } else {
        String::new()
    };
    Setup::start(Broker::any(), 1, role, &[], |bootstrap, topic| {
        config(bootstrap, topic, "", &format!("{dedup}{rest}{}", sources()))
    })
}

/// A body no earlier run sent (signature fingerprints outlive a run in Redis).
fn fresh_body() -> Vec<u8> {
    format!(r#"{{"action":"opened","n":"{}"}}"#, unique("n")).into_bytes()
}

async fn json(response: reqwest::Response) -> serde_json::Value {
    response.json().await.unwrap()
}

/// The value of `hookgate_signature_replays_total{source="SOURCE"}`, 0 when absent.
async fn replays(setup: &Setup, source: &str) -> u64 {
    let metrics = setup.gateway.metrics().await;
    let series = format!("hookgate_signature_replays_total{{source=\"{source}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |value| value.trim().parse().unwrap())
}

async fn a_replayed_github_body_with_a_fresh_delivery_id_is_a_duplicate(redis: bool) {
    let s = setup("ingest", redis, "");
    let body = fresh_body();
    let first = post_signed(&s.gateway, "github", &body, &unique("delivery"), &[]).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first = json(first).await;
    // What a reader of the topic or the API saw, sent again under a new delivery id.
    for _ in 0..2 {
        let replay = post_signed(&s.gateway, "github", &body, &unique("delivery"), &[]).await;
        assert_eq!(replay.status(), StatusCode::OK, "redis: {redis}");
        let replay = json(replay).await;
        assert_eq!(
            (replay["id"].clone(), replay["duplicate"].clone()),
            (first["id"].clone(), true.into())
        );
    }
    assert_eq!(replays(&s, "github").await, 2);
    // Another body is another event; the same GitHub redelivery (same id) stays a plain duplicate.
    let other = post_signed(&s.gateway, "github", &fresh_body(), &unique("delivery"), &[]).await;
    assert_eq!(other.status(), StatusCode::ACCEPTED);
    assert_eq!(s.records(2, Duration::from_secs(20)).len(), 2, "published once each");
}

#[tokio::test]
async fn a_replayed_github_body_with_a_fresh_delivery_id_is_a_duplicate_in_memory() {
    a_replayed_github_body_with_a_fresh_delivery_id_is_a_duplicate(false).await;
}

#[tokio::test]
async fn a_replayed_github_body_with_a_fresh_delivery_id_is_a_duplicate_in_redis() {
    a_replayed_github_body_with_a_fresh_delivery_id_is_a_duplicate(true).await;
}

#[tokio::test]
async fn shopify_and_timestamp_less_hmac_replays_are_duplicates_and_stripe_is_left_to_its_timestamp() {
    let s = setup("ingest", true, "");
    for source in ["shopify", "acme"] {
        let body = fresh_body();
        let sent = signed(&s.gateway, source, &body, &unique("id"), std::time::SystemTime::now());
        let url = s.gateway.url(&format!("/webhooks/{source}"));
        let first = post(&url, &body, &sent).await;
        assert_eq!(first.status(), StatusCode::ACCEPTED, "{source}");
        let fresh_id = [("x-shopify-webhook-id", unique("x")), ("x-acme-id", unique("x"))];
        let mut replayed = sent.clone();
        for (name, value) in &fresh_id {
            replayed.retain(|(n, _)| n != name);
            replayed.extend(headers(&[(name, value)]));
        }
        let replay = post(&url, &body, &replayed).await;
        assert_eq!(replay.status(), StatusCode::OK, "{source}");
        assert_eq!(replays(&s, source).await, 1, "{source}");
    }
    // Stripe signs a timestamp, so its signatures expire: two deliveries of one
    // body and signature with different event ids stay two events.
    let body = fresh_body();
    let sent = signed(&s.gateway, "stripe", &body, "unused", std::time::SystemTime::now());
    let url = s.gateway.url("/webhooks/stripe");
    let first = post(&url, &body, &sent).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    assert_eq!(replays(&s, "stripe").await, 0);
}

#[tokio::test]
async fn signature_headers_are_redacted_in_kafka_and_in_the_history_api() {
    let s = setup("all", false, "");
    let body = fresh_body();
    let delivery = unique("delivery");
    let mut sent = signed(&s.gateway, "github", &body, &delivery, std::time::SystemTime::now());
    sent.extend(headers(&[("x-hub-signature", "sha1=0123"), ("x-github-event", "push")]));
    let response = post(&s.gateway.url("/webhooks/github"), &body, &sent).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let id = json(response).await["id"].as_str().unwrap().to_owned();
    let acme = post_signed(&s.gateway, "acme", &body, &unique("a"), &[]).await;
    assert_eq!(acme.status(), StatusCode::ACCEPTED);
    let records = s.records(2, Duration::from_secs(20));
    let github = records.iter().find(|r| r.envelope.source == "github").unwrap();
    for name in ["x-hub-signature-256", "x-hub-signature"] {
        assert_eq!(github.envelope.header(name), Some(&b"[redacted]"[..]), "{name}");
    }
    assert_eq!(github.envelope.header("x-github-delivery"), Some(delivery.as_bytes()));
    let verification = github.envelope.verification.as_ref().unwrap();
    assert!(verification.verified, "the record of the check is kept");
    let acme = records.iter().find(|r| r.envelope.source == "acme").unwrap();
    assert_eq!(
        acme.envelope.header("x-acme-sig"),
        Some(&b"[redacted]"[..]),
        "the configured hmac.header"
    );
    let url = s.gateway.query_url(&format!("/v1/events/{id}"));
    wait_until(Duration::from_secs(30), "the event is indexed", || {
        let url = url.clone();
        async move { get_json(&url, None).await.0 == StatusCode::OK }
    })
    .await;
    let shown = get_json(&url, None).await.1.to_string();
    assert!(
        shown.contains("x-hub-signature-256") && shown.contains("[redacted]"),
        "{shown}"
    );
    assert!(!shown.contains("sha256="), "no signature in the API answer: {shown}");
}

#[tokio::test]
async fn the_signature_can_be_kept_for_consumers_that_verify_again() {
    let s = Setup::start(Broker::any(), 1, "ingest", &[], |bootstrap, topic| {
        config(bootstrap, topic, "redact_signatures = false", &sources())
    });
    let response = post_signed(&s.gateway, "github", &fresh_body(), &unique("d"), &[]).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let records = s.records(1, Duration::from_secs(20));
    let kept = records[0].envelope.header("x-hub-signature-256").unwrap();
    assert!(kept.starts_with(b"sha256="));
}

#[tokio::test]
async fn long_delivery_keys_are_hashed_so_two_of_them_never_collide() {
    let s = setup("ingest", false, "");
    let common = "k".repeat(300);
    let mut ids = Vec::new();
    for tail in ["-1", "-2"] {
        let key = format!("{common}{tail}");
        let response = post_signed(&s.gateway, "acme", &fresh_body(), "unused", &[("x-acme-id", &key)]).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED, "{tail}");
        ids.push(json(response).await["id"].as_str().unwrap().to_owned());
    }
    let records = s.records(2, Duration::from_secs(20));
    let keys: Vec<&str> = records.iter().map(|r| r.envelope.dedup_key.as_str()).collect();
    assert_eq!(keys.len(), 2);
    assert!(
        keys.iter().all(|k| k.starts_with("sha256:") && k.len() == 71),
        "{keys:?}"
    );
    assert_ne!(keys[0], keys[1]);
}

#[tokio::test]
async fn keys_with_control_characters_are_refused_with_400_and_not_published() {
    let rest =
        "[[sources]]\nname = \"plain\"\nverify = \"none\"\ndedup_key = \"json:/id\"\nevent_type = \"json:/type\"\n";
    let s = setup("ingest", false, rest);
    let url = s.gateway.url("/webhooks/plain");
    for (body, code) in [
        (r#"{"id":"a\u0000b","type":"t"}"#, "invalid_dedup_key"),
        (r#"{"id":"ok-1","type":"push\n"}"#, "invalid_event_type"),
        (r#"{"id":"ok-2","type":"x\u0085"}"#, "invalid_event_type"),
    ] {
        let response = post(&url, body.as_bytes(), &[]).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_code(&json(response).await), code, "{body}");
    }
    let tab = post(&url, br#"{"id":"a\tb","type":"t"}"#, &[]).await;
    assert_eq!(tab.status(), StatusCode::ACCEPTED, "a tab is allowed, as in a header");
    assert_eq!(s.records(1, Duration::from_secs(20)).len(), 1, "only the valid one");
}
