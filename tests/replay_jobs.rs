//! Bulk replay jobs (`POST /v1/replays`, `GET /v1/replays/{id}`).
//!
//! End to end: the real `hookgate` binary on a real Kafka-protocol broker
//! (Tansu) with each store; a job replays the events a `json=` filter
//! selects into an allow-listed topic, the replica is killed (SIGKILL)
//! mid-job and started again, and the job completes: every matching event
//! published, oldest first, marked as a replay, with at most the one event
//! in flight at the kill published twice (the documented at-least-once).
//! In process: the dry run and every refusal.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::history::{get_json, PgSchema};
use common::webhook::{self, headers};
use common::{create_topic, error_code, unique, wait_until, Broker, Gateway, Setup};
use hookgate::envelope::HEADER_REPLAY;
use reqwest::StatusCode;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);
const TOKEN: &str = "replay-jobs-token";
const READER: &str = "replay-jobs-reader";

fn config(bootstrap: &str, topic: &str, store: &str, replay_topic: &str) -> String {
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
replay_topics = ["{replay_topic}"]
[[query.tokens]]
token = "{TOKEN}"
scopes = ["read", "replay"]
[[query.tokens]]
token = "{READER}"
scopes = ["read"]
[metrics]
listen = "127.0.0.1:0"
[[sources]]
name = "stripe"
verify = "none"
dedup_key = "json:/id"
event_type = "json:/type"
index = ["/data/object/customer"]
"#,
        group = unique("replay-jobs")
    )
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn post_replay(gateway: &Gateway, token: &str, body: Value) -> (StatusCode, Value) {
    let response = client()
        .post(gateway.query_url("/v1/replays"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap_or_default())
}

/// Posts 30 Stripe events, every third for customer cus_A; returns the ids of cus_A's, oldest first.
async fn post_events(gateway: &Gateway) -> Vec<String> {
    let mut wanted = Vec::new();
    for n in 0..30 {
        let customer = if n % 3 == 0 { "cus_A" } else { "cus_B" };
        let body = json!({ "id": format!("evt_{n}"), "type": "charge.succeeded",
            "data": { "object": { "customer": customer, "amount": n } } });
        let response = webhook::post(
            &gateway.url("/webhooks/stripe"),
            body.to_string().as_bytes(),
            &headers(&[]),
        )
        .await;
        assert_eq!(response.status(), 202);
        let id = response.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        if customer == "cus_A" {
            wanted.push(id);
        }
    }
    wanted
}

async fn job(gateway: &Gateway, id: &str) -> Value {
    let (status, job) = get_json(&gateway.query_url(&format!("/v1/replays/{id}")), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{job}");
    job
}

async fn a_job_survives_the_death_of_its_replica(store: &str) {
    let replay_topic = unique("replays");
    let Setup {
        broker,
        config: text,
        mut gateway,
        ..
    } = Setup::start(Broker::any(), 1, "all", &[], |bootstrap, topic| {
        config(bootstrap, topic, store, &replay_topic)
    });
    create_topic(&broker.bootstrap(), &replay_topic, 1);
    let wanted = post_events(&gateway).await;
    wait_until(WAIT, "30 indexed events", || async {
        let (_, page) = get_json(&gateway.query_url("/v1/events?limit=100"), Some(TOKEN)).await;
        page["events"].as_array().map(Vec::len) == Some(30)
    })
    .await;

    let filter = json!({ "source": "stripe", "json": ["/data/object/customer:cus_A"] });
    let mut dry = filter.clone();
    dry["dry_run"] = json!(true);
    assert_eq!(
        post_replay(&gateway, TOKEN, dry).await,
        (StatusCode::OK, json!({ "dry_run": true, "matched": 10 }))
    );
    let mut request = filter.clone();
    request["topic"] = json!(replay_topic);
    request["rate"] = json!(4);
    let (status, created) = post_replay(&gateway, TOKEN, request).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (created["matched"].as_u64(), created["state"].as_str()),
        (Some(10), Some("running"))
    );

    wait_until(WAIT, "three events replayed", || async {
        job(&gateway, &id).await["published"].as_u64() >= Some(3)
    })
    .await;
    gateway.kill();
    let interrupted = Gateway::start(&text, "query");
    let stalled = job(&interrupted, &id).await;
    assert_eq!(stalled["state"], "running", "{stalled}");
    assert!(stalled["published"].as_u64().unwrap() < 10, "killed mid-job: {stalled}");
    wait_until(WAIT, "the job to finish on the restarted replica", || async {
        job(&interrupted, &id).await["state"] == "done"
    })
    .await;
    let done = job(&interrupted, &id).await;
    assert_eq!(
        (
            done["published"].as_u64(),
            done["failed"].as_u64(),
            done["remaining"].as_u64()
        ),
        (Some(10), Some(0), Some(0))
    );

    let records = tokio::task::spawn_blocking({
        let bootstrap = broker.bootstrap();
        move || common::consume_all(&bootstrap, &replay_topic, 10, Duration::from_secs(20))
    })
    .await
    .unwrap();
    let mut copies: HashMap<&str, usize> = HashMap::new();
    for record in &records {
        assert!(record.envelope.replay && record.header(HEADER_REPLAY) == Some("true"));
        *copies.entry(record.envelope.id.as_str()).or_default() += 1;
    }
    assert!(
        wanted.iter().all(|id| copies.contains_key(id.as_str())),
        "every cus_A event replayed: {copies:?}"
    );
    assert_eq!(copies.len(), 10, "nothing but cus_A events: {copies:?}");
    assert!(
        records.len() <= 11,
        "at most the one in-flight event twice: {} records",
        records.len()
    );
    let mut order: Vec<&str> = records.iter().map(|r| r.envelope.id.as_str()).collect();
    order.dedup();
    assert_eq!(
        order,
        wanted.iter().map(String::as_str).collect::<Vec<_>>(),
        "oldest first"
    );
    drop(interrupted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_survives_the_death_of_its_replica_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("history.db").display());
    a_job_survives_the_death_of_its_replica(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_survives_the_death_of_its_replica_on_postgres() {
    let pg = PgSchema::create().await;
    let url = format!("{}?options=-c%20search_path%3D{}", pg.url(), pg.schema());
    a_job_survives_the_death_of_its_replica(&url).await;
    pg.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_replay_requests_are_refused_with_their_code() {
    let Setup { gateway, .. } = Setup::start(Broker::any(), 1, "all", &[], |bootstrap, topic| {
        config(bootstrap, topic, "sqlite://history.db", "allowed")
    });
    for (token, body, status, code) in [
        (READER, json!({}), StatusCode::FORBIDDEN, "forbidden"),
        (
            TOKEN,
            json!({ "topic": "elsewhere" }),
            StatusCode::BAD_REQUEST,
            "topic_not_allowed",
        ),
        (TOKEN, json!({ "rate": 0 }), StatusCode::BAD_REQUEST, "invalid_request"),
        (
            TOKEN,
            json!({ "sorce": "stripe" }),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            TOKEN,
            json!({ "json": ["customer:cus_A"] }),
            StatusCode::BAD_REQUEST,
            "invalid_filter",
        ),
        (
            TOKEN,
            json!({ "since": "yesterday" }),
            StatusCode::BAD_REQUEST,
            "invalid_filter",
        ),
    ] {
        let (got, answer) = post_replay(&gateway, token, body.clone()).await;
        assert_eq!((got, error_code(&answer)), (status, code), "{body}");
    }
    let response = client()
        .post(gateway.query_url("/v1/replays"))
        .bearer_auth(TOKEN)
        .body("not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (status, answer) = get_json(&gateway.query_url("/v1/replays/no-such-job"), Some(TOKEN)).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::NOT_FOUND, "replay_not_found")
    );
    let (status, _) = get_json(&gateway.query_url("/v1/replays/no-such-job"), Some(READER)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // An empty history: a job that matches nothing is done at once.
    let (status, created) = post_replay(&gateway, TOKEN, json!({ "q": "nothing" })).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = created["id"].as_str().unwrap().to_owned();
    wait_until(WAIT, "the empty job to finish", || async {
        job(&gateway, &id).await["state"] == "done"
    })
    .await;
}
