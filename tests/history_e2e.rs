//! The history end to end, as a user meets it: the real `hookgate` binary
//! (`serve --role all`) on a real Kafka-protocol broker (Tansu), with the
//! SQLite and the PostgreSQL store. Webhooks posted to the gateway appear
//! in the query API with identical bodies, filters work, the live tail
//! delivers an event posted after it opened, and a replay writes a second
//! Kafka record but no second history row.

mod common;

use std::time::Duration;

use common::history::{get_json, ids, PgSchema, SseReader};
use common::webhook::{self, headers};
use common::{consume_all, unique, wait_until, Broker, Gateway, Setup};
use hookgate::envelope::HEADER_REPLAY;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "e2e-query-token";

fn config(bootstrap: &str, topic: &str, store: &str) -> String {
    format!(
        r#"
[ingest]
listen = "127.0.0.1:0"
[kafka]
brokers = "{bootstrap}"
topic = "{topic}"
[query]
listen = "127.0.0.1:0"
store = "{store}"
consumer_group = "{group}"
[[query.tokens]]
token = "{TOKEN}"
scopes = ["read", "replay"]
[metrics]
listen = "127.0.0.1:0"
[[sources]]
name = "shop"
verify = "none"
dedup_key = "header:x-delivery"
event_type = "header:x-event"
"#,
        group = unique("history-e2e")
    )
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Posts one webhook; returns the id the gateway assigned.
async fn post(gateway: &Gateway, n: usize, body: Vec<u8>, content_type: &str) -> String {
    let delivery = format!("delivery-{n}");
    let event = if n % 2 == 0 { "order.created" } else { "order.paid" };
    let sent = headers(&[
        ("content-type", content_type),
        ("x-delivery", &delivery),
        ("x-event", event),
    ]);
    let response = webhook::post(&gateway.url("/webhooks/shop"), &body, &sent).await;
    assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
    response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn query(gateway: &Gateway, path: &str) -> Value {
    let (status, answer) = get_json(&gateway.query_url(path), Some(TOKEN)).await;
    assert_eq!(status, 200, "{path}");
    answer
}

async fn webhooks_round_trip_through_the_history(store: &str) {
    let Setup {
        broker, topic, gateway, ..
    } = Setup::start(Broker::any(), 3, "all", &[], |bootstrap, topic| {
        config(bootstrap, topic, store)
    });
    let mut stream = SseReader::open(&gateway.query_url("/v1/events/stream?type=order.paid"), TOKEN).await;

    let mut posted = Vec::new();
    for n in 0..20 {
        let body = if n == 3 {
            vec![0xff, 0x00, 0xfe, b'\n']
        } else {
            format!("{{\"order\":{n},\"note\":\"caf\u{e9}\"}}").into_bytes()
        };
        let content_type = if n == 3 {
            "application/octet-stream"
        } else {
            "application/json"
        };
        posted.push((post(&gateway, n, body.clone(), content_type).await, body, content_type));
    }
    let tail = stream.until("event: webhook").await;
    let paid_ids: Vec<&String> = posted.iter().skip(1).step_by(2).map(|(id, _, _)| id).collect();
    assert!(
        paid_ids.iter().any(|id| tail.contains(id.as_str())),
        "an order.paid posted after opening reaches the tail: {tail}"
    );

    let c = client();
    wait_until(WAIT, "20 indexed events", || async {
        let page = query(&gateway, "/v1/events").await;
        page["events"].as_array().map(Vec::len) == Some(20)
    })
    .await;
    for (id, body, content_type) in &posted {
        let raw = c
            .get(gateway.query_url(&format!("/v1/events/{id}/body")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(raw.headers()["content-type"], *content_type);
        assert_eq!(
            raw.bytes().await.unwrap().as_ref(),
            &body[..],
            "identical body for {id}"
        );
    }
    let paid = query(&gateway, "/v1/events?source=shop&type=order.paid&limit=1000").await;
    assert_eq!(ids(&paid).len(), 10);
    let one = query(&gateway, "/v1/events?dedup_key=delivery-7").await;
    assert_eq!(ids(&one), vec![posted[7].0.clone()]);
    let detail = query(&gateway, &format!("/v1/events/{}", posted[3].0)).await;
    assert_eq!(detail["body_encoding"], "base64");

    let replayed = &posted[5].0;
    let response = c
        .post(gateway.query_url(&format!("/v1/events/{replayed}/replay")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let records = tokio::task::spawn_blocking({
        let (bootstrap, topic) = (broker.bootstrap(), topic.clone());
        move || consume_all(&bootstrap, &topic, 21, WAIT)
    })
    .await
    .unwrap();
    let copies: Vec<_> = records.iter().filter(|r| r.envelope.id == *replayed).collect();
    assert_eq!(copies.len(), 2, "the replay is a second Kafka record");
    assert_eq!(
        copies
            .iter()
            .filter(|r| r.header(HEADER_REPLAY) == Some("true"))
            .count(),
        1
    );
    // The indexer reads the replayed record too; a later event shows it got that far.
    let last = post(&gateway, 20, b"{}".to_vec(), "application/json").await;
    wait_until(WAIT, "the event after the replay", || async {
        c.get(gateway.query_url(&format!("/v1/events/{last}")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .status()
            == 200
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = query(&gateway, "/v1/events?limit=1000").await;
    assert_eq!(ids(&all).len(), 21, "still one history row per event");
    assert_eq!(ids(&all).iter().filter(|id| *id == replayed).count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_round_trip_through_a_sqlite_history() {
    webhooks_round_trip_through_the_history("sqlite://history.db").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_round_trip_through_a_postgres_history() {
    let pg = PgSchema::create().await;
    let url = format!("{}?options=-c%20search_path%3D{}", pg.url(), pg.schema());
    webhooks_round_trip_through_the_history(&url).await;
    pg.remove().await;
}
