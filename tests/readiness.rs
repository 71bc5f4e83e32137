//! Readiness as operators see it: `/readyz` and the `hookgate_ready` and
//! `hookgate_dependency_up{dependency}` gauges through a complete Kafka or
//! Redis outage (real broker and Redis processes, stopped under the
//! gateway), and a query-only replica that keeps serving the history while
//! Kafka is down.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::gateway::config;
use common::history::record;
use common::{create_topic, dead_port, error_code, unique, wait_until, Broker, Gateway, Tansu};
use hookgate::history::Store;
use reqwest::StatusCode;

const WAIT: Duration = Duration::from_secs(30);
const SOURCE: &str = "[[sources]]\nname = \"github\"\nverify = \"none\"\n";

/// The value of the series `series` (name and labels as rendered) in a `/metrics` text.
fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// `hookgate_dependency_up{dependency="NAME"}`.
fn dependency(name: &str) -> String {
    format!("hookgate_dependency_up{{dependency=\"{name}\"}}")
}

/// Waits until the gateway's `/metrics` shows every `(series, value)`.
async fn wait_for_metrics(gateway: &Gateway, expected: &[(&str, f64)]) {
    wait_until(WAIT, &format!("{expected:?} in /metrics"), || async {
        let metrics = gateway.metrics().await;
        expected.iter().all(|(series, v)| value(&metrics, series) == Some(*v))
    })
    .await;
}

async fn readyz(gateway: &Gateway) -> (StatusCode, serde_json::Value) {
    let response = reqwest::get(gateway.metrics_url("/readyz")).await.unwrap();
    (response.status(), response.json().await.unwrap())
}

/// A private Redis server on a free loopback port, killed on drop.
struct RedisServer {
    /// The process.
    child: Child,
    /// Its port.
    port: u16,
}

impl RedisServer {
    fn start() -> RedisServer {
        let port = dead_port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed");
        let server = RedisServer { child, port };
        let deadline = std::time::Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test]
async fn a_complete_kafka_outage_makes_an_ingest_replica_unready_and_shows_in_metrics() {
    let mut tansu = Tansu::start();
    let topic = unique("readiness");
    create_topic(&tansu.bootstrap(), &topic, 1);
    let gateway = Gateway::start(&config(&tansu.bootstrap(), &topic, "", SOURCE), "ingest");
    let up = [
        ("hookgate_ready", 1.0),
        (&*dependency("broker"), 1.0),
        (&*dependency("dedup"), 1.0),
    ];
    wait_for_metrics(&gateway, &up).await;
    tansu.kill();
    let down = [
        ("hookgate_ready", 0.0),
        (&*dependency("broker"), 0.0),
        (&*dependency("producer"), 1.0),
    ];
    wait_for_metrics(&gateway, &down).await;
    let (status, body) = readyz(&gateway).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["checks"]["broker"], false, "{body}");
}

#[tokio::test]
async fn a_complete_redis_outage_makes_an_ingest_replica_unready_and_shows_in_metrics() {
    let broker = Broker::any();
    let mut redis = RedisServer::start();
    let topic = unique("readiness");
    create_topic(&broker.bootstrap(), &topic, 1);
    let rest = format!("[dedup]\nredis = \"{}\"\n{SOURCE}", redis.url());
    let gateway = Gateway::start(&config(&broker.bootstrap(), &topic, "", &rest), "ingest");
    wait_for_metrics(&gateway, &[("hookgate_ready", 1.0), (&*dependency("dedup"), 1.0)]).await;
    redis.kill();
    wait_for_metrics(
        &gateway,
        &[
            ("hookgate_ready", 0.0),
            (&*dependency("dedup"), 0.0),
            (&*dependency("broker"), 1.0),
        ],
    )
    .await;
    let (status, body) = readyz(&gateway).await;
    assert_eq!(
        (status, &body["checks"]["dedup"]),
        (StatusCode::SERVICE_UNAVAILABLE, &false.into())
    );
}

#[tokio::test]
async fn a_query_only_replica_stays_ready_while_kafka_is_down_and_its_replays_answer_503() {
    let bootstrap = format!("127.0.0.1:{}", dead_port());
    let rest =
        format!("[[query.tokens]]\ntoken = \"env:HG_READINESS_TOKEN\"\nscopes = [\"read\", \"replay\"]\n{SOURCE}");
    let text = config(&bootstrap, "webhooks", "", &rest).replace("[ingest]\n", "[ingest]\ndeadline = \"2s\"\n");
    let gateway = Gateway::start_with_env(&text, "query", &[("HG_READINESS_TOKEN", "t0ken")]);
    let (status, body) = readyz(&gateway).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["checks"]["store"], &body["checks"]["broker"]),
        (&true.into(), &false.into()),
        "{body}"
    );
    assert_eq!(body["advisory"], serde_json::json!(["broker", "producer"]), "{body}");
    wait_for_metrics(
        &gateway,
        &[
            ("hookgate_ready", 1.0),
            (&*dependency("broker"), 0.0),
            (&*dependency("store"), 1.0),
        ],
    )
    .await;
    // The history is served; a replay cannot be, and says so.
    let history = Store::open(&format!("sqlite://{}", gateway.dir.path().join("history.db").display()))
        .await
        .unwrap();
    let stored = record("github", "push", common::history::now_micros(), 1);
    history.insert_batch(std::slice::from_ref(&stored)).await.unwrap();
    let client = reqwest::Client::new();
    let url = gateway.query_url(&format!("/v1/events/{}", stored.summary.id));
    let fetched = client.get(&url).bearer_auth("t0ken").send().await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK);
    let replay = client
        .post(format!("{url}/replay"))
        .bearer_auth("t0ken")
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(replay.headers().contains_key("retry-after"));
    let body: serde_json::Value = replay.json().await.unwrap();
    assert!(!error_code(&body).is_empty(), "{body}");
    history.close().await;
}
