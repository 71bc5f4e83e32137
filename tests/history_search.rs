//! Payload search, export and the live tail's bodies over real HTTP
//! (127.0.0.1:0) against both stores (in-memory SQLite and a private
//! PostgreSQL schema): `json=<pointer>:<value>` (ANDed, with every other
//! filter and with cursors, never matching bodies that are not JSON),
//! `q=` words and phrases, per-source token scoping, the indexes on
//! configured pointers, `GET /v1/events/export` and `include=body`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::error_code;
use common::history::{get_json, ids, record, SseReader, TestStore};
use hookgate::config::Config;
use hookgate::history::{router, ApiState, EventFilter, EventRecord, JsonPointer, LiveFeed, Store};
use hookgate::publish::{EmbeddedBroker, KafkaEndpoint, Publisher};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::watch;

const CONFIG: &str = r#"
[kafka]
topic = "webhooks"
[[query.tokens]]
token = "admin"
scopes = ["read", "replay"]
[[query.tokens]]
token = "github-only"
scopes = ["read"]
sources = ["github"]
[[sources]]
name = "github"
verify = "none"
index = ["/repository/full_name"]
[[sources]]
name = "stripe"
verify = "none"
index = ["/data/object/customer"]
"#;

/// The API over `store`, served until the returned sender is dropped; and its base URL.
async fn serve(store: Store) -> (String, watch::Sender<bool>, EmbeddedBroker) {
    let broker = EmbeddedBroker::start(&["webhooks".to_owned()], 1).unwrap();
    let endpoint = KafkaEndpoint {
        bootstrap: broker.bootstrap_servers().to_owned(),
        options: Default::default(),
    };
    let publisher = Publisher::new(endpoint, Duration::from_secs(1)).unwrap();
    let config = Arc::new(Config::from_toml(CONFIG).unwrap());
    let (stop, shutdown) = watch::channel(false);
    let state = ApiState::new(store, config, publisher, LiveFeed::default(), shutdown.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut until = shutdown;
    tokio::spawn(async move {
        let stopped = async move { drop(until.wait_for(|s| *s).await) };
        axum::serve(listener, router(state))
            .with_graceful_shutdown(stopped)
            .await
            .unwrap();
    });
    (base, stop, broker)
}

fn with_body(mut event: EventRecord, body: &[u8]) -> EventRecord {
    event.body = body.to_vec();
    event.summary.body_size = body.len() as i64;
    event
}

/// Ten events: Stripe charges of two customers, GitHub pushes, and bodies
/// that are not JSON but contain the same words.
fn events() -> Vec<EventRecord> {
    let base = 1_714_572_000_000_000;
    let stripe = |n: u64, customer: &str, amount: u64, kind: &str| {
        let body = format!(
            r#"{{"id":"evt_{n}","type":"{kind}","data":{{"object":{{"customer":"{customer}","amount":{amount},"paid":true,"refunds":[{{"id":"re_{n}"}}],"note":"Refund issued to the card"}}}}}}"#
        );
        with_body(record("stripe", kind, base + n as i64, n), body.as_bytes())
    };
    let github = |n: u64, repo: &str| {
        let body = format!(
            r#"{{"action":"opened","repository":{{"full_name":"{repo}"}},"items":[{{"0":"key zero"}},"second"]}}"#
        );
        with_body(record("github", "pull_request", base + n as i64, n), body.as_bytes())
    };
    vec![
        stripe(0, "cus_123", 100, "charge.succeeded"),
        stripe(1, "cus_123", 250, "charge.refunded"),
        stripe(2, "cus_999", 100, "charge.succeeded"),
        stripe(3, "cus_123", 100, "charge.succeeded"),
        github(4, "acme/api"),
        github(5, "acme/web"),
        // Not JSON, though it reads like a customer lookup.
        with_body(
            record("stripe", "charge.succeeded", base + 6, 6),
            b"customer=cus_123&note=refund issued",
        ),
        // Not UTF-8 at all.
        with_body(
            record("stripe", "charge.succeeded", base + 7, 7),
            b"\xff\xfe cus_123 \x00",
        ),
        // JSON, but the value at the pointer is an object, then null.
        with_body(
            record("stripe", "charge.succeeded", base + 8, 8),
            br#"{"data":{"object":{"customer":{"id":"cus_123"}}}}"#,
        ),
        with_body(
            record("stripe", "charge.succeeded", base + 9, 9),
            br#"{"data":{"object":{"customer":null}}}"#,
        ),
    ]
}

async fn get(base: &str, path: &str, token: &str) -> (StatusCode, Value) {
    get_json(&format!("{base}{path}"), Some(token)).await
}

/// The indexes (0..10) of `events()` a query returns, in answer order.
async fn found(base: &str, path: &str, token: &str, all: &[EventRecord]) -> Vec<usize> {
    let (status, page) = get(base, path, token).await;
    assert_eq!(status, StatusCode::OK, "{path}: {page}");
    ids(&page)
        .iter()
        .map(|id| all.iter().position(|e| e.summary.id == *id).unwrap())
        .collect()
}

async fn payload_search(kind: &str) {
    let test_store = TestStore::open(kind).await;
    let store = test_store.store();
    let pointers: Vec<JsonPointer> = ["/data/object/customer", "/repository/full_name"]
        .iter()
        .map(|p| JsonPointer::parse(p).unwrap())
        .collect();
    store.ensure_json_indexes(&pointers).await.unwrap();
    let all = events();
    store.insert_batch(&all).await.unwrap();
    let (base, _stop, _broker) = serve(store.clone()).await;
    let cases: [(&str, Vec<usize>); 14] = [
        ("json=/data/object/customer:cus_123", vec![3, 1, 0]),
        (
            "json=/data/object/customer:cus_123&json=/data/object/amount:100",
            vec![3, 0],
        ),
        ("json=/data/object/customer:cus_123&type=charge.refunded", vec![1]),
        (
            "json=/data/object/paid:true&json=/data/object/customer:cus_999",
            vec![2],
        ),
        ("json=/data/object/paid:false", vec![]),
        ("json=/data/object/refunds/0/id:re_1", vec![1]),
        ("json=/items/0/0:key%20zero", vec![5, 4]),
        ("json=/items/1:second&json=/repository/full_name:acme/web", vec![5]),
        ("json=/data/object/customer:cus_", vec![]),
        ("json=/action:opened&source=stripe", vec![]),
        ("q=refund", vec![6, 3, 2, 1, 0]),
        ("q=refund%20issued&json=/data/object/amount:250", vec![1]),
        ("q=issued%20refund", vec![]),
        ("q=ACME", vec![5, 4]),
    ];
    for (query, expected) in cases {
        assert_eq!(
            found(&base, &format!("/v1/events?{query}"), "admin", &all).await,
            expected,
            "{kind}: {query}"
        );
    }
    // A restricted token never sees another source's events, whatever it searches.
    assert_eq!(
        found(&base, "/v1/events?q=cus_123", "github-only", &all).await,
        Vec::<usize>::new()
    );
    assert_eq!(
        found(&base, "/v1/events?json=/action:opened", "github-only", &all).await,
        vec![5, 4]
    );
    let (status, body) = get(&base, "/v1/events?q=refund&source=stripe", "github-only").await;
    assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    // Pages of a search continue with its cursor, and only with its filters.
    let (_, first) = get(&base, "/v1/events?json=/data/object/customer:cus_123&limit=2", "admin").await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let rest = found(
        &base,
        &format!("/v1/events?json=/data/object/customer:cus_123&limit=2&cursor={cursor}"),
        "admin",
        &all,
    )
    .await;
    assert_eq!(rest, vec![0]);
    let (status, body) = get(
        &base,
        &format!("/v1/events?json=/data/object/customer:cus_999&cursor={cursor}"),
        "admin",
    )
    .await;
    assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "invalid_cursor"));
    for (bad, code) in [
        ("json=data:1", "invalid_filter"),
        ("json=/a", "invalid_filter"),
        ("q=%22%22", "invalid_filter"),
        ("jsn=/a:1", "unknown_parameter"),
    ] {
        let (status, body) = get(&base, &format!("/v1/events?{bad}"), "admin").await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, code), "{bad}");
    }
    // Dropping a pointer from the configuration drops its index.
    store.ensure_json_indexes(&pointers[..1]).await.unwrap();
    assert_eq!(
        found(&base, "/v1/events?json=/repository/full_name:acme/api", "admin", &all).await,
        vec![4]
    );
    test_store.cleanup().await;
}

#[tokio::test]
async fn payload_search_on_sqlite() {
    payload_search("sqlite").await;
}

#[tokio::test]
async fn payload_search_on_postgres() {
    payload_search("postgres").await;
}

/// The plan of a json= query on a configured pointer uses its index.
#[tokio::test]
async fn configured_pointers_are_searched_through_their_index() {
    for kind in ["sqlite", "postgres"] {
        let test_store = TestStore::open(kind).await;
        let store = test_store.store();
        let pointer = JsonPointer::parse("/data/object/customer").unwrap();
        store.ensure_json_indexes(std::slice::from_ref(&pointer)).await.unwrap();
        let plan = store.explain_json_lookup(&pointer).await.unwrap();
        assert!(plan.contains("events_json_"), "{kind}: {plan}");
        test_store.cleanup().await;
    }
}

/// PostgreSQL's word index exists only when `query.text_index` asks for it,
/// and `q=` finds the same events with it or without it.
#[tokio::test]
async fn the_postgres_word_index_is_optional() {
    let test_store = TestStore::open("postgres").await;
    let store = test_store.store();
    store.insert_batch(&events()).await.unwrap();
    let filter = EventFilter {
        text: Some("refund issued".into()),
        ..Default::default()
    };
    let found = |events: Vec<hookgate::history::EventSummary>| events.into_iter().map(|e| e.id).collect::<Vec<_>>();
    assert!(!store.has_text_index().await.unwrap(), "off unless configured");
    let without = found(store.list(&filter, None, 100).await.unwrap());
    assert!(!without.is_empty());
    store.ensure_text_index(true).await.unwrap();
    assert!(store.has_text_index().await.unwrap());
    assert_eq!(found(store.list(&filter, None, 100).await.unwrap()), without);
    store.ensure_text_index(true).await.unwrap();
    store.ensure_text_index(false).await.unwrap();
    assert!(!store.has_text_index().await.unwrap());
    assert_eq!(found(store.list(&filter, None, 100).await.unwrap()), without);
    // SQLite keeps its FTS5 index whatever the setting.
    let sqlite = TestStore::open("sqlite").await;
    sqlite.store().ensure_text_index(false).await.unwrap();
    assert!(sqlite.store().has_text_index().await.unwrap());
    sqlite.cleanup().await;
    // A store that cannot be reached fails the call (start-up reports it).
    store.close().await;
    assert!(store.ensure_text_index(true).await.is_err());
    assert!(store.has_text_index().await.is_err());
    test_store.cleanup().await;
}

async fn export(kind: &str) {
    let test_store = TestStore::open(kind).await;
    let store = test_store.store();
    let all = events();
    store.insert_batch(&all).await.unwrap();
    // More than one page of the export.
    let base_time = 1_714_000_000_000_000;
    let many: Vec<EventRecord> = (100..300)
        .map(|n| record("github", "push", base_time + n as i64, n))
        .collect();
    store.insert_batch(&many).await.unwrap();
    let (base, _stop, _broker) = serve(store.clone()).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let lines = |text: String| -> Vec<Value> { text.lines().map(|l| serde_json::from_str(l).unwrap()).collect() };
    let answer = client
        .get(format!("{base}/v1/events/export"))
        .bearer_auth("admin")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.headers()["content-type"], "application/x-ndjson");
    let exported = lines(answer.text().await.unwrap());
    assert_eq!(exported.len(), 210, "{kind}: every event once");
    assert_eq!(exported[0]["id"], all[9].summary.id.as_str(), "newest first");
    assert_eq!(exported[209]["id"], many[0].summary.id.as_str());
    let mut ids: Vec<&str> = exported.iter().map(|e| e["id"].as_str().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 210);
    // Each line is the event as GET /v1/events/{id} shows it.
    let (_, detail) = get(&base, &format!("/v1/events/{}", all[7].summary.id), "admin").await;
    assert_eq!(exported[2], detail);
    assert_eq!(exported[2]["body_encoding"], "base64");
    // Filters and scopes as for the list.
    let answer = client
        .get(format!(
            "{base}/v1/events/export?json=/data/object/customer:cus_123&q=refund"
        ))
        .bearer_auth("admin")
        .send()
        .await
        .unwrap();
    let searched: Vec<Value> = lines(answer.text().await.unwrap());
    let searched: Vec<&str> = searched.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(searched, [&all[3].summary.id, &all[1].summary.id, &all[0].summary.id]);
    let answer = client
        .get(format!("{base}/v1/events/export"))
        .bearer_auth("github-only")
        .send()
        .await
        .unwrap();
    let scoped = lines(answer.text().await.unwrap());
    assert_eq!(scoped.len(), 202);
    assert!(scoped.iter().all(|e| e["source"] == "github"));
    let answer = client
        .get(format!("{base}/v1/events/export?limit=5"))
        .bearer_auth("admin")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    let answer = client.get(format!("{base}/v1/events/export")).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    test_store.cleanup().await;
}

#[tokio::test]
async fn export_on_sqlite() {
    export("sqlite").await;
}

#[tokio::test]
async fn export_on_postgres() {
    export("postgres").await;
}

/// `include=body` on the live tail: text, base64, and too large to carry.
#[tokio::test]
async fn the_live_tail_carries_bodies_on_request() {
    for kind in ["sqlite", "postgres"] {
        let test_store = TestStore::open(kind).await;
        let store = test_store.store();
        let broker = EmbeddedBroker::start(&["webhooks".to_owned()], 1).unwrap();
        let endpoint = KafkaEndpoint {
            bootstrap: broker.bootstrap_servers().to_owned(),
            options: Default::default(),
        };
        let publisher = Publisher::new(endpoint, Duration::from_secs(1)).unwrap();
        let config = Arc::new(Config::from_toml(CONFIG).unwrap());
        let (_stop, shutdown) = watch::channel(false);
        let live = LiveFeed::default();
        let state = ApiState::new(store.clone(), config, publisher, live.clone(), shutdown);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });

        let mut with = SseReader::open(&format!("{base}/v1/events/stream?include=body"), "admin").await;
        let mut without = SseReader::open(&format!("{base}/v1/events/stream"), "admin").await;
        let text = with_body(record("github", "push", 1, 1), "{\"caf\u{e9}\":1}".as_bytes());
        let binary = with_body(record("github", "push", 2, 2), b"\xff\x00");
        let large = with_body(record("github", "push", 3, 3), &vec![b'a'; 64 * 1024 + 1]);
        for event in [&text, &binary, &large] {
            store.insert_batch(std::slice::from_ref(event)).await.unwrap();
            live.publish(event.summary.clone());
        }
        let data = |block: String| -> Value {
            let line = block.lines().find_map(|l| l.strip_prefix("data: ")).unwrap().to_owned();
            serde_json::from_str(&line).unwrap()
        };
        let first = data(with.until("event: webhook").await);
        assert_eq!(
            (first["body_encoding"].as_str(), first["body"].as_str()),
            (Some("utf8"), Some("{\"caf\u{e9}\":1}"))
        );
        let second = data(with.until("event: webhook").await);
        assert_eq!(
            (second["body_encoding"].as_str(), second["body"].as_str()),
            (Some("base64"), Some("/wA="))
        );
        let third = data(with.until("event: webhook").await);
        assert_eq!(third["body_omitted"], "too_large");
        assert!(third.get("body").is_none());
        let plain = data(without.until("event: webhook").await);
        assert!(plain.get("body").is_none() && plain.get("body_omitted").is_none());
        let (status, body) = get(&base, "/v1/events/stream?include=headers", "admin").await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "invalid_filter"));
        drop(broker);
        test_store.cleanup().await;
    }
}
