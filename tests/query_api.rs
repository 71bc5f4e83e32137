//! The query API over real HTTP (127.0.0.1:0): routes, filters, keyset
//! pagination while events keep arriving, auth codes, the live tail,
//! replay through the embedded broker, the OpenAPI document, and the whole
//! query role (`QueryService`) from publish to stream to replay.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::history::{envelope, get_json, ids, now_micros, record, sqlite_memory, SseReader, TestStore};
use common::{error_code, wait_until};
use hookgate::config::Config;
use hookgate::envelope::{WebhookEnvelope, HEADER_ID, HEADER_REPLAY};
use hookgate::history::{router, ApiState, EventRecord, LiveFeed, Provenance, QueryService, Store};
use hookgate::publish::{EmbeddedBroker, KafkaEndpoint, Publisher};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::watch;

const WAIT: Duration = Duration::from_secs(30);

const CONFIG: &str = r#"
[ingest]
deadline = "3s"
[kafka]
topic = "webhooks"
embedded_partitions = 1
[query]
consumer_group = "query-api-test"
[[query.tokens]]
token = "read-all"
scopes = ["read"]
[[query.tokens]]
token = "github-team"
scopes = ["read", "replay"]
sources = ["github"]
[[query.tokens]]
token = "admin"
scopes = ["read", "replay"]
[[sources]]
name = "github"
verify = "none"
[[sources]]
name = "stripe"
verify = "none"
topic = "webhooks.stripe"
"#;

/// A router served on 127.0.0.1:0 over a store, with a publisher on a mock cluster.
struct Api {
    base: String,
    http: reqwest::Client,
    store: Store,
    live: LiveFeed,
    broker: Option<EmbeddedBroker>,
    stop: watch::Sender<bool>,
}

fn topics() -> Vec<String> {
    vec!["webhooks".into(), "webhooks.stripe".into()]
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn serve(store: Store, live: LiveFeed, heartbeat: Duration) -> Api {
    let broker = EmbeddedBroker::start(&topics(), 1).unwrap();
    let endpoint = KafkaEndpoint {
        bootstrap: broker.bootstrap_servers().to_owned(),
        options: Default::default(),
    };
    let publisher = Publisher::new(endpoint, Duration::from_secs(1)).unwrap();
    let config = Arc::new(Config::from_toml(CONFIG).unwrap());
    let (stop, shutdown) = watch::channel(false);
    let state =
        ApiState::new(store.clone(), config, publisher, live.clone(), shutdown.clone()).with_heartbeat(heartbeat);
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
    Api {
        base,
        http: http(),
        store,
        live,
        broker: Some(broker),
        stop,
    }
}

impl Api {
    fn request(&self, method: reqwest::Method, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        get_json(&format!("{}{path}", self.base), token).await
    }

    async fn post(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        self.request(reqwest::Method::POST, path, token).send().await.unwrap()
    }
}

#[tokio::test]
async fn events_are_listed_fetched_and_served_raw() {
    let api = serve(sqlite_memory().await, LiveFeed::default(), Duration::from_secs(15)).await;
    let text = record("github", "push", 1_714_572_000_000_001, 2);
    let mut binary = record("stripe", "charge.succeeded", 1_714_572_000_000_002, 3);
    binary.body = vec![0xff, 0x00, 0x01];
    binary.summary.content_type = "application/octet-stream".into();
    api.store.insert_batch(&[text.clone(), binary.clone()]).await.unwrap();

    let (status, page) = api.get("/v1/events", Some("admin")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&page), vec![binary.summary.id.clone(), text.summary.id.clone()]);
    assert_eq!(page["next_cursor"], Value::Null);
    assert_eq!(page["events"][1]["received_at"], "2024-05-01T14:00:00.000001Z");
    assert_eq!(page["events"][1]["kafka"]["topic"], "webhooks");

    let (status, detail) = api.get(&format!("/v1/events/{}", text.summary.id), Some("admin")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (detail["body_encoding"].as_str(), detail["body"].as_str()),
        (Some("utf8"), Some("{\"n\":2}"))
    );
    assert_eq!(
        detail["headers"][1],
        serde_json::json!({ "name": "X-Binary", "value_base64": "//4=" })
    );
    assert_eq!(detail["verification"]["verified"], true);
    let (_, detail) = api
        .get(&format!("/v1/events/{}", binary.summary.id), Some("admin"))
        .await;
    assert_eq!(
        (detail["body_encoding"].as_str(), detail["body"].as_str()),
        (Some("base64"), Some("/wAB"))
    );

    let raw = api
        .request(
            reqwest::Method::GET,
            &format!("/v1/events/{}/body", binary.summary.id),
            Some("admin"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(raw.headers()["content-type"], "application/octet-stream");
    assert_eq!(raw.bytes().await.unwrap().as_ref(), &[0xff, 0x00, 0x01]);
    let raw = api
        .request(
            reqwest::Method::GET,
            &format!("/v1/events/{}/body", text.summary.id),
            Some("admin"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(raw.headers()["content-type"], "application/json");
    assert_eq!(raw.text().await.unwrap(), "{\"n\":2}");
}

/// Walks 3000 events in pages while newer events keep arriving: every
/// event once, newest first, none of the newcomers.
async fn walk_while_events_arrive(kind: &str) {
    let test_store = TestStore::open(kind).await;
    let store = test_store.store();
    let base = now_micros() - 3_600_000_000;
    let events: Vec<EventRecord> = (0..3000)
        .map(|n| record("github", "push", base + (n / 3) as i64, n))
        .collect();
    for chunk in events.chunks(500) {
        store.insert_batch(chunk).await.unwrap();
    }
    let api = serve(store.clone(), LiveFeed::default(), Duration::from_secs(15)).await;
    let (writer_stop, mut writer_stopped) = watch::channel(false);
    let writer = tokio::spawn(async move {
        let mut n = 10_000;
        while !*writer_stopped.borrow_and_update() {
            store
                .insert_batch(&[record("github", "push", now_micros(), n)])
                .await
                .unwrap();
            n += 1;
            let _ = tokio::time::timeout(Duration::from_millis(2), writer_stopped.changed()).await;
        }
        n - 10_000
    });
    let mut seen: Vec<String> = Vec::new();
    let mut path = "/v1/events?source=github&limit=250".to_owned();
    loop {
        let (status, page) = api.get(&path, Some("read-all")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/events?source=github&limit=250&cursor={cursor}"),
            None => break,
        }
    }
    writer_stop.send(true).unwrap();
    assert!(writer.await.unwrap() > 0, "events arrived during the walk");
    let first = seen
        .iter()
        .position(|id| *id == events[2999].summary.id)
        .expect("the newest seeded event");
    let walked = &seen[first..];
    let unique: HashSet<&String> = walked.iter().collect();
    assert_eq!(unique.len(), walked.len(), "no repeats");
    let expected: HashSet<&String> = events.iter().map(|e| &e.summary.id).collect();
    assert_eq!(unique, expected, "no gaps");
    test_store.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination_has_no_gap_or_repeat_while_events_arrive_sqlite() {
    walk_while_events_arrive("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination_has_no_gap_or_repeat_while_events_arrive_postgres() {
    walk_while_events_arrive("postgres").await;
}

#[tokio::test]
async fn filters_combine_over_http() {
    let test_store = TestStore::open("postgres").await;
    let api = serve(test_store.store(), LiveFeed::default(), Duration::from_secs(15)).await;
    let base = 1_714_572_000_000_000; // 2024-05-01T14:00:00Z
    let events: Vec<EventRecord> = (0..60)
        .map(|n| {
            record(
                ["github", "stripe"][(n % 2) as usize],
                ["push", "issues", "ping"][(n % 3) as usize],
                base + n as i64 * 60_000_000,
                n,
            )
        })
        .collect();
    api.store.insert_batch(&events).await.unwrap();
    let query = "source=github&type=push&verified=true&since=2024-05-01T14:10:00Z&until=2024-05-01T14:50:00Z";
    let (status, page) = api.get(&format!("/v1/events?{query}"), Some("admin")).await;
    assert_eq!(status, StatusCode::OK);
    let since = base + 10 * 60_000_000;
    let until = base + 50 * 60_000_000;
    let mut expected: Vec<&EventRecord> = events
        .iter()
        .filter(|e| e.summary.source == "github" && e.summary.event_type.as_deref() == Some("push"))
        .filter(|e| e.summary.verification.verified && e.summary.received_at >= since && e.summary.received_at < until)
        .collect();
    expected.reverse();
    let expected: Vec<String> = expected.iter().map(|e| e.summary.id.clone()).collect();
    assert!(!expected.is_empty());
    assert_eq!(ids(&page), expected);
    let (_, page) = api.get("/v1/events?dedup_key=delivery-7", Some("admin")).await;
    assert_eq!(ids(&page), vec![events[7].summary.id.clone()]);
    test_store.cleanup().await;
}

#[tokio::test]
async fn tokens_scopes_and_sources_decide_401_and_403() {
    let api = serve(sqlite_memory().await, LiveFeed::default(), Duration::from_secs(15)).await;
    let github = record("github", "push", 1_000, 1);
    let stripe = record("stripe", "charge", 2_000, 2);
    api.store.insert_batch(&[github.clone(), stripe.clone()]).await.unwrap();
    for token in [None, Some("wrong")] {
        let response = api
            .request(reqwest::Method::GET, "/v1/events", token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
        assert_eq!(error_code(&response.json().await.unwrap()), "unauthorized");
    }
    let replay = api
        .post(&format!("/v1/events/{}/replay", github.summary.id), Some("read-all"))
        .await;
    assert_eq!(replay.status(), StatusCode::FORBIDDEN);
    // A source-restricted token sees its sources only.
    let (_, page) = api.get("/v1/events", Some("github-team")).await;
    assert_eq!(ids(&page), vec![github.summary.id.clone()]);
    let (status, body) = api.get("/v1/events?source=stripe", Some("github-team")).await;
    assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    let (status, _) = api
        .get(&format!("/v1/events/{}", stripe.summary.id), Some("github-team"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api
        .get(&format!("/v1/events/{}/body", stripe.summary.id), Some("github-team"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let replay = api
        .post(&format!("/v1/events/{}/replay", stripe.summary.id), Some("github-team"))
        .await;
    assert_eq!(replay.status(), StatusCode::FORBIDDEN);
    let (status, page) = api.get("/v1/events", Some("read-all")).await;
    assert_eq!((status, ids(&page).len()), (StatusCode::OK, 2));
    for path in ["/v1/events?token=admin", "/v1/events?access_token=admin"] {
        let (status, body) = api.get(path, None).await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "token_in_url"));
    }
}

#[tokio::test]
async fn bad_requests_get_stable_codes() {
    let api = serve(sqlite_memory().await, LiveFeed::default(), Duration::from_secs(15)).await;
    let events: Vec<EventRecord> = (0..3).map(|n| record("github", "push", 1_000 + n as i64, n)).collect();
    api.store.insert_batch(&events).await.unwrap();
    let (_, page) = api.get("/v1/events?limit=1", Some("admin")).await;
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let cases = [
        (
            "/v1/events?limit=0".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_filter",
            "`limit`",
        ),
        (
            "/v1/events?since=yesterday".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_filter",
            "`since`",
        ),
        (
            "/v1/events?verified=maybe".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_filter",
            "`verified`",
        ),
        (
            "/v1/events?colour=red".to_owned(),
            StatusCode::BAD_REQUEST,
            "unknown_parameter",
            "`colour`",
        ),
        (
            "/v1/events?cursor=bm9wZQ".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
            "cursor",
        ),
        (
            format!("/v1/events?limit=1&cursor={cursor}x"),
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
            "cursor",
        ),
        (
            format!("/v1/events?type=push&cursor={cursor}"),
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
            "different filters",
        ),
        (
            "/v1/events/stream?limit=3".to_owned(),
            StatusCode::BAD_REQUEST,
            "unknown_parameter",
            "`limit`",
        ),
        (
            "/v1/events/0190b6d2-0000-7000-8000-00000000ffff".to_owned(),
            StatusCode::NOT_FOUND,
            "event_not_found",
            "no event",
        ),
        ("/v1/nothing".to_owned(), StatusCode::NOT_FOUND, "not_found", "route"),
    ];
    for (path, status, expected_code, message) in cases {
        let (got, body) = api.get(&path, Some("admin")).await;
        assert_eq!((got, error_code(&body)), (status, expected_code), "{path}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(message),
            "{path}: {body}"
        );
    }
    let (status, page) = api
        .get(&format!("/v1/events?limit=1&cursor={cursor}"), Some("admin"))
        .await;
    assert_eq!(
        (status, ids(&page)),
        (StatusCode::OK, vec![events[1].summary.id.clone()])
    );
    let response = api
        .request(reqwest::Method::DELETE, "/v1/events", Some("admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_code(&response.json().await.unwrap()), "method_not_allowed");
    let replay = api
        .post("/v1/events/0190b6d2-0000-7000-8000-00000000ffff/replay", Some("admin"))
        .await;
    assert_eq!(replay.status(), StatusCode::NOT_FOUND);
}

fn summary_of(record: &EventRecord) -> hookgate::history::EventSummary {
    record.summary.clone()
}

#[tokio::test]
async fn the_live_tail_filters_and_sends_heartbeats() {
    let api = serve(sqlite_memory().await, LiveFeed::default(), Duration::from_millis(200)).await;
    let mut tail = SseReader::open(
        &format!("{}/v1/events/stream?source=github&type=push", api.base),
        "admin",
    )
    .await;
    let mut restricted = SseReader::open(&format!("{}/v1/events/stream", api.base), "github-team").await;
    let stripe = record("stripe", "push", now_micros(), 1);
    let issues = record("github", "issues", now_micros(), 2);
    let push = record("github", "push", now_micros(), 3);
    for event in [&stripe, &issues, &push] {
        api.live.publish(summary_of(event));
    }
    let block = tail.next_event().await;
    assert!(block.contains("event: webhook"), "{block}");
    assert!(block.contains(&format!("id: {}", push.summary.id)), "{block}");
    let data: Value = serde_json::from_str(block.lines().find_map(|l| l.strip_prefix("data: ")).unwrap()).unwrap();
    assert_eq!(data["source"], "github");
    // The github-only token never sees the stripe event.
    assert!(restricted.next_event().await.contains(&issues.summary.id));
    assert!(restricted.next_event().await.contains(&push.summary.id));
    let heartbeat = tail.next().await;
    assert!(heartbeat.contains("heartbeat"), "{heartbeat}");
    let (status, _) = api.get("/v1/events/stream?source=stripe", Some("github-team")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_slow_reader_is_told_how_many_events_it_missed() {
    let api = serve(sqlite_memory().await, LiveFeed::new(4), Duration::from_secs(15)).await;
    let mut tail = SseReader::open(&format!("{}/v1/events/stream", api.base), "admin").await;
    // Published without yielding: the stream cannot keep up with the bounded feed.
    for n in 0..50 {
        api.live.publish(summary_of(&record("github", "push", now_micros(), n)));
    }
    let block = tail.next_event().await;
    assert!(block.contains("event: lagged"), "{block}");
    let data: Value = serde_json::from_str(block.lines().find_map(|l| l.strip_prefix("data: ")).unwrap()).unwrap();
    assert_eq!(data["skipped"], 46);
    for _ in 0..4 {
        assert!(tail.next_event().await.contains("event: webhook"));
    }
}

/// The record at `offset` of `topic` partition 0.
async fn read_record(bootstrap: &str, topic: &str, offset: i64) -> (WebhookEnvelope, Vec<(String, String)>) {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "replay-check")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Offset(offset))
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let message = tokio::time::timeout(WAIT, consumer.recv()).await.unwrap().unwrap();
    let headers = message.headers().unwrap();
    let headers = headers
        .iter()
        .map(|h| {
            (
                h.key.to_owned(),
                String::from_utf8(h.value.unwrap_or_default().to_vec()).unwrap(),
            )
        })
        .collect();
    (
        WebhookEnvelope::from_bytes(message.payload().unwrap()).unwrap(),
        headers,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_publishes_the_original_envelope_marked_as_a_replay() {
    let mut api = serve(sqlite_memory().await, LiveFeed::default(), Duration::from_secs(15)).await;
    let original = envelope("stripe", "charge.succeeded", now_micros(), 4);
    let provenance = Provenance {
        topic: "webhooks.stripe".into(),
        partition: 0,
        offset: 0,
    };
    let stored = EventRecord::from_envelope(&original, provenance, now_micros()).unwrap();
    api.store.insert_batch(&[stored]).await.unwrap();
    let response = api
        .post(&format!("/v1/events/{}/replay", original.id), Some("admin"))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let ack: Value = response.json().await.unwrap();
    assert_eq!(
        (ack["id"].as_str(), ack["topic"].as_str(), ack["replay"].as_bool()),
        (Some(original.id.as_str()), Some("webhooks.stripe"), Some(true))
    );
    let bootstrap = api.broker.as_ref().unwrap().bootstrap_servers().to_owned();
    let (replayed, headers) = read_record(&bootstrap, "webhooks.stripe", ack["offset"].as_i64().unwrap()).await;
    assert_eq!(
        replayed,
        WebhookEnvelope {
            replay: true,
            ..original.clone()
        }
    );
    assert!(headers.contains(&(HEADER_REPLAY.to_owned(), "true".to_owned())));
    assert!(headers.contains(&(HEADER_ID.to_owned(), original.id.clone())));

    // With the broker gone, the replay is not acknowledged: 503, never 2xx.
    drop(api.broker.take());
    let response = api
        .post(&format!("/v1/events/{}/replay", original.id), Some("admin"))
        .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert!(
        ["publish_timeout", "broker_error", "queue_full", "producer_fatal"].contains(&error_code(&body)),
        "{body}"
    );
    api.stop.send(true).unwrap();
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_and_method() {
    let api = serve(sqlite_memory().await, LiveFeed::default(), Duration::from_secs(15)).await;
    let (status, document) = api.get("/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let paths = document["paths"].as_object().unwrap();
    let routes = hookgate::history::api::route_paths();
    assert_eq!(
        paths.len(),
        routes.len(),
        "the document describes no route the router lacks"
    );
    for route in routes {
        let described = paths
            .get(route)
            .unwrap_or_else(|| panic!("{route} is not in the OpenAPI document"));
        let url = route.replace("{id}", "0190b6d2-0000-7000-8000-00000000ffff");
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let status = api
                .request(method.clone(), &url, Some("admin"))
                .send()
                .await
                .unwrap()
                .status();
            let documented = described.get(method.as_str().to_lowercase()).is_some();
            assert_eq!(
                status != StatusCode::METHOD_NOT_ALLOWED,
                documented,
                "{method} {route}: {status}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_query_role_indexes_streams_replays_and_shuts_down() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::from_toml(CONFIG).unwrap();
    config.query.store = format!("sqlite://{}", dir.path().join("history.db").display());
    let broker = EmbeddedBroker::start(&topics(), 1).unwrap();
    let endpoint = KafkaEndpoint {
        bootstrap: broker.bootstrap_servers().to_owned(),
        options: Default::default(),
    };
    let publisher = Publisher::new(endpoint.clone(), Duration::from_secs(5)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, shutdown) = watch::channel(false);
    let service = QueryService::start(Arc::new(config), endpoint, publisher.clone(), listener, shutdown)
        .await
        .unwrap();
    assert!(service.store_ready().await);
    let base = format!("http://{}", service.local_addr());
    let mut tail = SseReader::open(&format!("{base}/v1/events/stream"), "admin").await;

    let original = envelope("github", "push", now_micros(), 1);
    publisher
        .publish_envelope(&original, "webhooks", Some(original.id.as_bytes()), WAIT)
        .await
        .unwrap();
    let block = tail.next_event().await;
    assert!(
        block.contains(&original.id),
        "the stream delivers an event published after it opened: {block}"
    );
    let body = http()
        .get(format!("{base}/v1/events/{}/body", original.id))
        .bearer_auth("read-all")
        .send()
        .await
        .unwrap();
    assert_eq!(body.bytes().await.unwrap(), original.body);

    let replay = http()
        .post(format!("{base}/v1/events/{}/replay", original.id))
        .bearer_auth("admin")
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::ACCEPTED);
    // One partition: once a later event is indexed, so is the replayed record.
    let sentinel = envelope("github", "push", now_micros(), 2);
    publisher
        .publish_envelope(&sentinel, "webhooks", None, WAIT)
        .await
        .unwrap();
    let client = http();
    wait_until(WAIT, "the sentinel", || async {
        let url = format!("{base}/v1/events/{}", sentinel.id);
        client.get(url).bearer_auth("admin").send().await.unwrap().status() == StatusCode::OK
    })
    .await;
    let (_, page) = get_json(&format!("{base}/v1/events"), Some("admin")).await;
    assert_eq!(
        ids(&page),
        vec![sentinel.id.clone(), original.id.clone()],
        "the replay added no row"
    );

    stop.send(true).unwrap();
    tokio::time::timeout(WAIT, service.join())
        .await
        .expect("shutdown completes with a stream open");
    drop(tail);
}
