//! Large bodies against the real broker (Tansu), the real `hookgate` binary
//! and both history stores: a record the producer can never take is a 413
//! `body_too_large` every time (never a 503 that the sender retries
//! forever), and a source with `large_bodies` takes a 25 MB signed GitHub
//! delivery by claim check: the body goes to the history store before the
//! record is published, the record stays small and carries a reference, the
//! query API serves the body byte for byte, replay publishes the reference
//! again, and a store that cannot take the body means 503 with nothing
//! published. Also the configuration checks that keep body limits honest.

mod common;

use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, Instant};

use common::gateway::config;
use common::history::{get_json, now_micros, PgSchema, TestStore};
use common::webhook::{self, headers};
use common::{consume_all, error_code, unique, wait_until, Broker, Gateway, Record, Setup};
use hookgate::envelope::{body_location, HEADER_REPLAY};
use hookgate::history::retention;
use hookgate::publish::record_size;
use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

const WAIT: Duration = Duration::from_secs(60);
const TOKEN: &str = "large-bodies-token";
/// GitHub's cap on a webhook payload.
const GITHUB_MAX: usize = 25_000_000;
/// The source's threshold in the tests below.
const ABOVE: usize = 512 * 1024;

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A JSON body of exactly `len` bytes whose content changes all along it.
fn json_body(len: usize) -> Vec<u8> {
    let mut body = b"{\"action\":\"opened\",\"pad\":\"".to_vec();
    let mut n: u32 = 0;
    while body.len() < len - 2 {
        n = n.wrapping_mul(1_103_515_245).wrapping_add(12345);
        body.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(n >> 16) as usize % 36]);
    }
    body.extend_from_slice(b"\"}");
    body
}

/// The size librdkafka counted for a record read back.
fn size_of(record: &Record) -> u64 {
    let headers: Vec<(&str, &str)> = record.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    record_size(record.key.as_deref(), record.envelope.to_bytes().len(), &headers)
}

async fn records(setup: &Setup, expected: usize, timeout: Duration) -> Vec<Record> {
    let (bootstrap, topic) = (setup.broker.bootstrap(), setup.topic.clone());
    tokio::task::spawn_blocking(move || consume_all(&bootstrap, &topic, expected, timeout))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_default_record_limit_is_413_every_time() {
    let setup = Setup::start(Broker::any(), 1, "ingest", &[], |bootstrap, topic| {
        config(bootstrap, topic, "", "[[sources]]\nname = \"raw\"\nverify = \"none\"\n")
    });
    // The issue's report: 1,030,011 bytes got 503 broker_error, every time.
    for body_len in [1_000_001, 1_030_011] {
        for attempt in 0..3 {
            let body = vec![b'x'; body_len];
            let response = webhook::post(&setup.gateway.url("/webhooks/raw"), &body, &[]).await;
            assert_eq!(response.status(), 413, "{body_len} bytes, attempt {attempt}");
            assert!(response.headers().get("retry-after").is_none());
            let answer: serde_json::Value = response.json().await.unwrap();
            assert_eq!(error_code(&answer), "body_too_large");
        }
    }
    assert!(records(&setup, 0, Duration::from_secs(3)).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_over_the_configured_record_limit_is_413_not_503() {
    let rest = "[kafka.options]\n\"message.max.bytes\" = \"100000\"\n\
                [[sources]]\nname = \"raw\"\nverify = \"none\"\nmax_body_bytes = 80000\n";
    let setup = Setup::start(Broker::any(), 1, "ingest", &[], |bootstrap, topic| {
        config(bootstrap, topic, "", rest)
    });
    let url = setup.gateway.url("/webhooks/raw");
    let body = vec![b'y'; 80_000];
    // The body is within the source's limit, but 24 KiB of headers push the
    // record past message.max.bytes: the producer could never take it.
    let big_header = "h".repeat(24 * 1024);
    for attempt in 0..3 {
        let response = webhook::post(&url, &body, &headers(&[("x-padding", &big_header)])).await;
        assert_eq!(response.status(), 413, "attempt {attempt}");
        assert!(response.headers().get("retry-after").is_none());
        let answer: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error_code(&answer), "body_too_large", "{answer}");
    }
    let response = webhook::post(&url, &body, &[]).await;
    assert_eq!(response.status(), 202, "the same body with ordinary headers fits");
    let read = records(&setup, 1, WAIT).await;
    assert_eq!(read.len(), 1);
    assert!(size_of(&read[0]) <= 100_000);
    let metrics = setup.gateway.metrics().await;
    assert!(
        metrics.contains("hookgate_publish_failures_total{source=\"raw\",reason=\"body_too_large\"} 3"),
        "{metrics}"
    );
}

fn github_config(bootstrap: &str, topic: &str, store: &str, deadline: &str) -> String {
    format!(
        r#"
[ingest]
listen = "127.0.0.1:0"
deadline = "{deadline}"
body_timeout = "20s"
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
name = "github"
verify = "github"
secrets = ["large-bodies-secret"]
max_body_bytes = 26214400
large_bodies = {{ above_bytes = {ABOVE} }}
"#,
        group = unique("large-bodies")
    )
}

/// Posts a signed GitHub delivery; returns the answer's status and JSON.
async fn deliver(gateway: &Gateway, body: &[u8], delivery: &str) -> (u16, serde_json::Value) {
    let response = webhook::post_signed(gateway, "github", body, delivery, &[("x-github-event", "push")]).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

async fn a_25_mb_delivery_round_trips(store: &str) {
    let setup = Setup::start(Broker::any(), 1, "all", &[], |bootstrap, topic| {
        github_config(bootstrap, topic, store, "8s")
    });
    let gateway = &setup.gateway;
    let big = json_body(GITHUB_MAX);
    let (status, answer) = deliver(gateway, &big, "delivery-big").await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["id"].as_str().unwrap().to_owned();
    let small = b"{\"zen\":\"Keep it logically awesome.\"}".to_vec();
    let (status, answer) = deliver(gateway, &small, "delivery-small").await;
    assert_eq!(status, 202, "{answer}");
    let small_id = answer["id"].as_str().unwrap().to_owned();

    let read = records(&setup, 2, WAIT).await;
    assert_eq!(read.len(), 2);
    let record = read.iter().find(|r| r.envelope.id == id).unwrap();
    assert!(
        size_of(record) < 1_000_000,
        "the record stays under the producer's limit"
    );
    assert!(record.envelope.body.is_empty());
    let body_ref = record.envelope.body_ref.as_ref().expect("a reference");
    assert_eq!(body_ref.length, GITHUB_MAX as u64);
    assert_eq!(body_ref.sha256.as_ref(), Sha256::digest(&big).as_slice());
    assert_eq!(body_ref.location, body_location(&id));
    let inline = read.iter().find(|r| r.envelope.id == small_id).unwrap();
    assert_eq!(
        inline.envelope.body.as_ref(),
        &small[..],
        "small bodies stay in the record"
    );
    assert!(inline.envelope.body_ref.is_none());

    let c = client();
    let body_url = gateway.query_url(&body_ref.location);
    wait_until(WAIT, "the large event indexed", || async {
        get_json(&gateway.query_url(&format!("/v1/events/{id}")), Some(TOKEN))
            .await
            .0
            == 200
    })
    .await;
    let served = c.get(&body_url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-type"], "application/json");
    let bytes = served.bytes().await.unwrap();
    assert!(bytes.as_ref() == &big[..], "the body read back is byte-identical");
    let (_, detail) = get_json(&gateway.query_url(&format!("/v1/events/{id}")), Some(TOKEN)).await;
    assert_eq!(detail["body_size"], GITHUB_MAX);
    assert_eq!(detail["body"].as_str().map(str::len), Some(GITHUB_MAX));

    let replayed = c
        .post(gateway.query_url(&format!("/v1/events/{id}/replay")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), 202, "{}", replayed.text().await.unwrap());
    let read = records(&setup, 3, WAIT).await;
    let copies: Vec<&Record> = read.iter().filter(|r| r.envelope.id == id).collect();
    assert_eq!(copies.len(), 2, "the replay is a second record");
    let replay = copies.iter().find(|r| r.header(HEADER_REPLAY) == Some("true")).unwrap();
    assert_eq!(
        replay.envelope.body_ref.as_ref(),
        Some(body_ref),
        "replay republishes the reference"
    );
    assert!(size_of(replay) < 1_000_000);
    let metrics = gateway.metrics().await;
    assert!(
        metrics.contains("hookgate_large_bodies_stored_total{source=\"github\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_25_mb_github_delivery_round_trips_through_sqlite() {
    a_25_mb_delivery_round_trips("sqlite://history.db").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_25_mb_github_delivery_round_trips_through_postgres() {
    let pg = PgSchema::create().await;
    let url = format!("{}?options=-c%20search_path%3D{}", pg.url(), pg.schema());
    a_25_mb_delivery_round_trips(&url).await;
    pg.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_cannot_take_the_body_means_503_and_nothing_published() {
    let pg = PgSchema::create().await;
    let url = format!("{}?options=-c%20search_path%3D{}", pg.url(), pg.schema());
    let setup = Setup::start(Broker::any(), 1, "all", &[], |bootstrap, topic| {
        github_config(bootstrap, topic, &url, "2s")
    });
    let gateway = &setup.gateway;
    // Another session holds the bodies table: every write waits past the deadline.
    let options = PgConnectOptions::from_str(pg.url())
        .unwrap()
        .options([("search_path", pg.schema())]);
    let mut locker = options.connect().await.unwrap();
    let mut lock = locker.begin().await.unwrap();
    sqlx::query("LOCK TABLE bodies IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let body = json_body(2 * 1024 * 1024);
    for attempt in 0..2 {
        let started = Instant::now();
        let response = webhook::post_signed(
            gateway,
            "github",
            &body,
            "delivery-locked",
            &[("x-github-event", "push")],
        )
        .await;
        assert_eq!(response.status(), 503, "attempt {attempt}");
        assert_eq!(response.headers()["retry-after"], "5");
        assert!(started.elapsed() < Duration::from_secs(4), "answered by the deadline");
        let answer: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error_code(&answer), "store_unavailable");
    }
    assert!(
        records(&setup, 0, Duration::from_secs(3)).await.is_empty(),
        "nothing published"
    );
    lock.rollback().await.unwrap();
    // The dedup key was released: the sender's retry goes through.
    let (status, answer) = deliver(gateway, &body, "delivery-locked").await;
    assert_eq!(status, 202, "{answer}");
    let read = records(&setup, 1, WAIT).await;
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].envelope.dedup_key, "delivery-locked");
    drop(setup);
    pg.remove().await;
}

fn hookgate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(args)
        .env_remove("HOOKGATE_CONFIG")
        .output()
        .expect("run hookgate")
}

fn write_config(dir: &tempfile::TempDir, text: &str) -> String {
    let path = dir.path().join("hookgate.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn check_config_refuses_a_body_limit_no_record_can_hold() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[ingest]\nmax_body_bytes = 1048576\n\
                [[sources]]\nname = \"a\"\nverify = \"none\"\n\
                [[sources]]\nname = \"b\"\nverify = \"none\"\nmax_body_bytes = 26214400\n\
                [[sources]]\nname = \"c\"\nverify = \"none\"\nmax_body_bytes = 26214400\n\
                large_bodies = { above_bytes = 999999 }\n";
    let path = write_config(&dir, text);
    let output = hookgate(&["check-config", &path]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "hookgate.toml:2:18: error: ingest.max_body_bytes",
        "hookgate.toml:9:18: error: sources[1].max_body_bytes",
        "sources[2].large_bodies.above_bytes",
        "kafka.options.\"message.max.bytes\"",
        "sources[1].large_bodies",
    ] {
        assert!(stderr.contains(expected), "`{expected}` missing from:\n{stderr}");
    }

    let fixed = "[kafka.options]\n\"message.max.bytes\" = \"2000000\"\n\
                 [[sources]]\nname = \"a\"\nverify = \"none\"\nmax_body_bytes = 1048576\n\
                 [[sources]]\nname = \"c\"\nverify = \"none\"\nmax_body_bytes = 26214400\n\
                 large_bodies = { above_bytes = 524288 }\n";
    let path = write_config(&dir, fixed);
    let output = hookgate(&["check-config", &path]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn an_ingest_only_replica_needs_the_store_that_takes_large_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[[sources]]\nname = \"c\"\nverify = \"none\"\nmax_body_bytes = 26214400\n\
                large_bodies = { above_bytes = 524288 }\n";
    let path = write_config(&dir, text);
    let output = hookgate(&["serve", "--config", &path, "--role", "ingest"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("query.store"), "{stderr}");
    assert!(stderr.contains("sources[0].large_bodies"), "{stderr}");
    // check-config does not know the role: the file itself is fine.
    let output = hookgate(&["check-config", &path]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

async fn stored_bodies_are_idempotent_and_leave_with_retention(kind: &str) {
    let test = TestStore::open(kind).await;
    let store = test.store();
    let two_hours_ago = now_micros() - 2 * 3600 * 1_000_000;
    store
        .put_body("old", two_hours_ago, &[1; 32], b"old body")
        .await
        .unwrap();
    store
        .put_body("old", two_hours_ago, &[2; 32], b"a retry")
        .await
        .unwrap();
    store
        .put_body("new", now_micros(), &[3; 32], b"new body")
        .await
        .unwrap();
    assert_eq!(
        store.body("old").await.unwrap().as_deref(),
        Some(&b"old body"[..]),
        "the first write stays"
    );
    let digest = store.body_digest("old").await.unwrap().unwrap();
    assert_eq!((digest.length, digest.sha256), (8, vec![1; 32]));
    assert_eq!(store.body("none").await.unwrap(), None);
    let (_stop, mut shutdown) = tokio::sync::watch::channel(false);
    retention::sweep(&store, Duration::from_secs(3600), &mut shutdown)
        .await
        .unwrap();
    assert_eq!(
        store.body("old").await.unwrap(),
        None,
        "older than the retention: deleted"
    );
    assert!(store.body("new").await.unwrap().is_some());
    test.cleanup().await;
}

#[tokio::test]
async fn sqlite_bodies_are_idempotent_and_leave_with_retention() {
    stored_bodies_are_idempotent_and_leave_with_retention("sqlite").await;
}

#[tokio::test]
async fn postgres_bodies_are_idempotent_and_leave_with_retention() {
    stored_bodies_are_idempotent_and_leave_with_retention("postgres").await;
}
