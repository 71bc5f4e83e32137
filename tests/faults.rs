//! Fault tests: hookgate under broker faults, restarts and overload, each
//! judged by the delivery ledger (tests/common/ledger.rs): every request's
//! delivery id and answer, then the whole topic read back. Each case prints
//!
//!     ledger case=NAME sent=.. accepted=.. ambiguous=.. in_topic=.. lost=0 duplicates=.. unexpected=0
//!
//! and asserts lost = 0 and duplicates <= ambiguous. Every case starts its
//! own Tansu (it kills, freezes and restarts it) and its own gateway, sends a
//! bounded number of requests on loopback, and runs alone (the cases would
//! disturb each other's timing on a small machine).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::gateway::config;
use common::ledger::{send, Answer, Ledger, Load, Plan};
use common::{consume_all, create_topic, unique, Gateway, Record, Tansu};
use futures::FutureExt;
use hookgate::config::Config;
use hookgate::publish::{KafkaEndpoint, Publisher};
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use tokio::sync::watch;

/// The ingest deadline of these tests: short, so faults resolve in seconds.
const DEADLINE: Duration = Duration::from_secs(3);
/// Slack on top of the deadline for an answer to count as "at the deadline".
const ANSWER_SLACK: Duration = Duration::from_millis(1500);

/// One case at a time (a lock that works across the tests' runtimes and survives a failed test).
async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// A private broker with a fresh topic, and a gateway publishing to it.
struct Rig {
    tansu: Tansu,
    topic: String,
    /// The gateway's config text (a replacement gateway gets the same).
    config: String,
    gateway: Gateway,
}

impl Rig {
    /// Starts Tansu with a 3-partition topic and an ingest gateway with
    /// `deadline`, `ingest` lines in `[ingest]` and `rest` appended.
    fn start(deadline: Duration, ingest: &str, rest: &str) -> Rig {
        let tansu = Tansu::start();
        let topic = unique("faults");
        create_topic(&tansu.bootstrap(), &topic, 3);
        let config = ingest_config(&tansu.bootstrap(), &topic, deadline, ingest, rest);
        let gateway = Gateway::start(&config, "ingest");
        Rig {
            tansu,
            topic,
            config,
            gateway,
        }
    }

    fn url(&self) -> String {
        self.gateway.url("/webhooks/load")
    }

    /// Every record of the topic, waiting until at least `expected` arrived.
    fn records(&self, expected: usize) -> Vec<Record> {
        consume_all(&self.tansu.bootstrap(), &self.topic, expected, Duration::from_secs(30))
    }

    /// Writes both logs to $HOOKGATE_FAULT_LOGS/, when set, for a failure's post-mortem.
    fn dump(&self) {
        if let Ok(dir) = std::env::var("HOOKGATE_FAULT_LOGS") {
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(format!("{dir}/{}-hookgate.log", self.topic), self.gateway.logs());
            let _ = std::fs::write(format!("{dir}/{}-tansu.log", self.topic), self.tansu.log());
            eprintln!("logs written to {dir}/{}-*.log", self.topic);
        }
    }

    fn assert_no_panics(&self) {
        let panics = self.gateway.panics();
        if !panics.is_empty() {
            self.dump();
            panic!("hookgate panicked: {panics:?}");
        }
    }
}

/// Config text: loopback listeners, the deadline, one unverified source `load`
/// whose dedup key is the ledger's delivery header.
fn ingest_config(bootstrap: &str, topic: &str, deadline: Duration, ingest: &str, rest: &str) -> String {
    let ingest = format!("deadline = \"{}ms\"\n{ingest}", deadline.as_millis());
    let source = format!(
        "[[sources]]\nname = \"load\"\nverify = \"none\"\ndedup_key = \"header:{}\"\n",
        common::ledger::DELIVERY_HEADER
    );
    config(bootstrap, topic, &ingest, &format!("{rest}\n{source}"))
}

/// Sends single requests until one is accepted; `None` after `within`.
async fn until_accepted(url: &str, ledger: &Ledger, prefix: &str, within: Duration) -> Option<Duration> {
    let client = reqwest::Client::builder()
        .timeout(DEADLINE + Duration::from_secs(5))
        .build()
        .unwrap();
    let started = Instant::now();
    for n in 0.. {
        let answer = send(&client, url, &format!("{prefix}-probe-{n}"), "{}", ledger).await;
        if matches!(answer, Answer::Status(202)) {
            return Some(started.elapsed());
        }
        if started.elapsed() > within {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    unreachable!()
}

/// Every request is answered, by the deadline at the latest: no hang.
fn assert_answered_by(deadline: Duration, ledger: &Ledger) {
    let slowest = ledger.attempts().iter().map(|a| a.latency).max().unwrap_or_default();
    assert!(
        slowest <= deadline + ANSWER_SLACK,
        "slowest answer took {slowest:?}: {}",
        ledger.summary()
    );
    let unanswered = ledger.count(Answer::Unanswered);
    assert_eq!(unanswered, 0, "requests without an answer: {}", ledger.summary());
}

/// Tansu 0.6 cannot follow an idempotent producer that bumped its own
/// epoch, which librdkafka does (as Kafka allows) after messages timed out
/// in flight: a freeze, or an outage longer than the message timeout. The
/// next batch with the new epoch makes Tansu's sqlite engine panic in
/// `idempotent_message_check` (tansu-storage lite.rs: "more or less than one
/// row"); its storage actor is gone and every produce fails until the broker
/// restarts, and then the same producer id and epoch make it panic again.
/// Only a new producer heals it. A Kafka broker accepts the bumped epoch, so
/// on Kafka hookgate recovers by itself; on Tansu these tests restart the
/// broker and replace the gateway (SIGTERM, start again), as an operator
/// would, and then demand recovery. Throughout, hookgate owes what it owes
/// on any broker: 503 by the deadline, no hang, nothing acknowledged lost.
const TANSU_STORAGE_PANIC: &str = "more or less than one row";

/// Waits for a 202; when none comes and the Tansu storage bug struck, restarts
/// the broker, replaces the gateway, and waits again.
async fn recover(rig: &mut Rig, ledger: &Ledger, prefix: &str) -> Duration {
    // Once the broker's storage died, waiting for it is pointless.
    let broken = || rig.tansu.log().contains(TANSU_STORAGE_PANIC);
    if !broken() {
        if let Some(after) = until_accepted(&rig.url(), ledger, prefix, Duration::from_secs(15)).await {
            return after;
        }
    }
    if !broken() {
        rig.dump();
        panic!("no 202 for 15 s and the broker is healthy: {}", ledger.summary());
    }
    common::ledger::report(&format!(
        "note: Tansu's storage panicked ({TANSU_STORAGE_PANIC:?}, see TANSU_STORAGE_PANIC in tests/faults.rs); restarting it and the gateway"
    ));
    rig.assert_no_panics();
    rig.tansu.restart();
    let status = tokio::task::block_in_place(|| rig.gateway.terminate(Duration::from_secs(30)));
    assert!(status.success(), "the gateway exits cleanly: {status}");
    rig.gateway = Gateway::start(&rig.config, "ingest");
    match until_accepted(&rig.url(), ledger, prefix, Duration::from_secs(30)).await {
        Some(after) => after,
        None => {
            rig.dump();
            panic!("no 202 within 30 s of a healthy broker: {}", ledger.summary())
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_before_traffic_means_503_within_the_deadline() {
    let _one = exclusive().await;
    let mut rig = Rig::start(DEADLINE, "", "");
    rig.tansu.kill();
    let ledger = Ledger::new("broker_down");
    let plan = Plan {
        workers: 8,
        deliveries: 40,
        attempts: 1,
        ..Plan::default()
    };
    Load::start(ledger.clone(), rig.url(), "down", plan)
        .wait(Duration::from_secs(30))
        .await;
    let attempts = ledger.attempts();
    assert_eq!(attempts.len(), 40);
    assert!(
        attempts.iter().all(|a| a.answer == Answer::Status(503)),
        "only 503s: {}",
        ledger.summary()
    );
    assert_answered_by(DEADLINE, &ledger);
    let ready = reqwest::get(rig.gateway.metrics_url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503, "not ready while the broker is down");

    rig.tansu.restart();
    recover(&mut rig, &ledger, "down").await;
    let plan = Plan {
        workers: 4,
        deliveries: 100,
        ..Plan::default()
    };
    Load::start(ledger.clone(), rig.url(), "up", plan)
        .wait(Duration::from_secs(30))
        .await;
    let figures = ledger.settle(&rig.records(ledger.accepted_deliveries()));
    assert!(
        figures.accepted >= 100,
        "served once the broker is up: {}",
        ledger.summary()
    );
    rig.assert_no_panics();
}

/// The broker is killed mid-load and back a second later, well within the
/// default 8 s deadline: librdkafka retries through the outage, and senders
/// see slow 202s, not errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_under_load_recovers_by_itself() {
    let _one = exclusive().await;
    let deadline = Duration::from_secs(8);
    let mut rig = Rig::start(deadline, "", "");
    let ledger = Ledger::new("broker_restart");
    let plan = Plan {
        workers: 8,
        deliveries: 1500,
        pause: Duration::from_millis(5),
        ..Plan::default()
    };
    let load = Load::start(ledger.clone(), rig.url(), "restart", plan);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        ledger.accepted_deliveries() > 0,
        "traffic flows before the kill: {}",
        ledger.summary()
    );
    rig.tansu.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    rig.tansu.restart();
    load.wait(Duration::from_secs(60)).await;
    recover(&mut rig, &ledger, "restart").await;
    assert_answered_by(deadline, &ledger);
    ledger.settle(&rig.records(ledger.accepted_deliveries()));
    rig.assert_no_panics();
}

/// Frozen longer than the deadline: requests get 503 at the deadline, none hangs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_broker_means_503_at_the_deadline_and_no_hang() {
    let _one = exclusive().await;
    let mut rig = Rig::start(DEADLINE, "", "");
    let ledger = Ledger::new("broker_freeze");
    let plan = Plan {
        workers: 8,
        deliveries: 1200,
        pause: Duration::from_millis(5),
        ..Plan::default()
    };
    let load = Load::start(ledger.clone(), rig.url(), "freeze", plan);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    rig.tansu.freeze();
    tokio::time::sleep(DEADLINE + Duration::from_secs(2)).await;
    rig.tansu.resume();
    load.wait(Duration::from_secs(60)).await;
    let timed_out = ledger.count(Answer::Status(503));
    assert!(timed_out > 0, "the freeze produces 503s: {}", ledger.summary());
    assert_answered_by(DEADLINE, &ledger);
    recover(&mut rig, &ledger, "freeze").await;
    ledger.settle(&rig.records(ledger.accepted_deliveries()));
    rig.assert_no_panics();
}

/// A 16-message producer queue held back by a long linger: everything beyond
/// it is refused at once with 503 `queue_full`, and memory stays flat while
/// ~94 MiB of bodies are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_producer_queue_answers_503_at_once_with_bounded_memory() {
    let _one = exclusive().await;
    let options = "[kafka.options]\n\"queue.buffering.max.messages\" = \"16\"\n\"linger.ms\" = \"1000\"\n";
    let deadline = Duration::from_secs(8);
    let rig = Rig::start(deadline, "", options);
    let ledger = Ledger::new("queue_full");
    until_accepted(&rig.url(), &ledger, "warm", Duration::from_secs(20))
        .await
        .expect("broker up");
    let rss_before = rig.gateway.rss_kib();
    let plan = Plan {
        workers: 32,
        deliveries: 1500,
        attempts: 1,
        pause: Duration::ZERO,
        body_bytes: 64 * 1024,
        ..Plan::default()
    };
    Load::start(ledger.clone(), rig.url(), "full", plan)
        .wait(Duration::from_secs(60))
        .await;
    let rss_after = rig.gateway.rss_kib();
    let full: Vec<_> = ledger
        .attempts()
        .into_iter()
        .filter(|a| a.code.as_deref() == Some("queue_full"))
        .collect();
    assert!(
        full.len() > 1000,
        "most requests find the queue full: {}",
        ledger.summary()
    );
    let slowest = full.iter().map(|a| a.latency).max().unwrap();
    assert!(
        slowest < Duration::from_millis(500),
        "queue_full is answered at once, slowest {slowest:?}"
    );
    let growth_mib = rss_after.saturating_sub(rss_before) / 1024;
    eprintln!(
        "rss before {rss_before} KiB, after {rss_after} KiB; answers {}",
        ledger.summary()
    );
    assert!(
        growth_mib < 48,
        "memory grew by {growth_mib} MiB while refusing 94 MiB of bodies"
    );
    assert_answered_by(deadline, &ledger);
    ledger.settle(&rig.records(ledger.accepted_deliveries()));
    rig.assert_no_panics();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_finishes_in_flight_requests_and_flushes() {
    let _one = exclusive().await;
    let Rig {
        tansu,
        topic,
        mut gateway,
        ..
    } = Rig::start(DEADLINE, "", "");
    let ledger = Ledger::new("sigterm");
    let plan = Plan {
        workers: 8,
        deliveries: 5000,
        attempts: 1,
        pause: Duration::from_millis(2),
        ..Plan::default()
    };
    let load = Load::start(ledger.clone(), gateway.url("/webhooks/load"), "term", plan);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, logs) = tokio::task::spawn_blocking(move || {
        let status = gateway.terminate(DEADLINE + Duration::from_secs(20));
        (status, gateway.logs())
    })
    .await
    .unwrap();
    load.stop().await;
    assert!(status.success(), "exit status {status}:\n{logs}");
    assert!(logs.contains("producer flushed flushed=true"), "{logs}");
    assert!(!logs.contains("panicked"), "{logs}");
    eprintln!("answers around SIGTERM: {}", ledger.summary());
    let unanswered = ledger.count(Answer::Unanswered);
    assert!(
        unanswered <= 8,
        "at most one request per connection may race the close: {}",
        ledger.summary()
    );
    ledger.settle(&consume_all(
        &tansu.bootstrap(),
        &topic,
        ledger.accepted_deliveries(),
        Duration::from_secs(30),
    ));
}

/// Every 2xx given before a SIGKILL is in the topic. The senders then retry
/// what went unanswered against a new process, whose in-process dedup store
/// is empty: this is how duplicates arise, and the ledger bounds them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_keeps_every_acknowledged_event() {
    let _one = exclusive().await;
    let mut rig = Rig::start(DEADLINE, "", "");
    let ledger = Ledger::new("sigkill");
    let plan = Plan {
        workers: 8,
        deliveries: 5000,
        attempts: 1,
        pause: Duration::from_millis(2),
        ..Plan::default()
    };
    let load = Load::start(ledger.clone(), rig.url(), "kill", plan);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    rig.gateway.kill();
    load.stop().await;
    rig.gateway = Gateway::start(&rig.config, "ingest");
    let client = reqwest::Client::new();
    let unanswered: Vec<String> = ledger
        .attempts()
        .into_iter()
        .filter(|a| a.answer == Answer::Unanswered)
        .map(|a| a.delivery)
        .collect();
    for delivery in &unanswered {
        let answer = send(&client, &rig.url(), delivery, "{}", &ledger).await;
        assert_eq!(answer, Answer::Status(202), "retry of {delivery}");
    }
    let figures = ledger.settle(&rig.records(ledger.accepted_deliveries()));
    eprintln!(
        "retried {} unanswered deliveries; {} landed twice",
        unanswered.len(),
        figures.duplicates
    );
    rig.assert_no_panics();
}

/// hookgate's ingest role built in-process on librdkafka's mock cluster, so
/// that a test can inject broker errors and reach the publisher. Wired as
/// `hookgate::app` wires it: the listener, the publisher and `/readyz`.
struct InProcess {
    /// The webhook listener.
    ingest: std::net::SocketAddr,
    /// The metrics listener (`/readyz`, `/metrics`).
    metrics: std::net::SocketAddr,
    publisher: Publisher,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

impl InProcess {
    async fn start(config: &Config) -> InProcess {
        let endpoint = KafkaEndpoint {
            bootstrap: config.kafka.brokers.clone().unwrap(),
            options: config.kafka.options.clone(),
        };
        let publisher = Publisher::new(endpoint, config.ingest.deadline - Duration::from_millis(500)).unwrap();
        publisher.probe_broker(Duration::from_secs(2)).await;
        let (stop, stopped) = watch::channel(false);
        let sources = hookgate::ingest::prepare_sources(config).unwrap();
        let limiter = Arc::new(hookgate::ratelimit::RateLimiter::new(config));
        let dedup = hookgate::dedup::Dedup::connect(&config.dedup).await.unwrap();
        let ingest = Arc::new(hookgate::ingest::Ingest::new(
            config,
            sources,
            limiter,
            dedup,
            publisher.clone(),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = hookgate::ingest::ServerLimits {
            max_connections: config.ingest.max_connections,
            max_connections_per_ip: config.ingest.max_connections_per_ip,
            header_timeout: config.ingest.header_timeout,
            drain_timeout: config.ingest.deadline,
        };
        let server = tokio::spawn(hookgate::ingest::serve(listener, ingest, limits, stopped));
        let mut readiness = hookgate::telemetry::Readiness::default();
        let (p, q) = (publisher.clone(), publisher.clone());
        readiness.check("broker", move || std::future::ready(p.broker_reachable()).boxed());
        readiness.check("producer", move || std::future::ready(q.producer_healthy()).boxed());
        let router = hookgate::telemetry::router(hookgate::telemetry::install(), readiness);
        let metrics_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics = metrics_listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(metrics_listener, router).await.unwrap() });
        InProcess {
            ingest: addr,
            metrics,
            publisher,
            stop,
            server,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/webhooks/load", self.ingest)
    }

    async fn ready(&self) -> (u16, serde_json::Value) {
        let response = reqwest::get(format!("http://{}/readyz", self.metrics)).await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or_default())
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        self.server.await.unwrap();
        self.publisher.flush(Duration::from_secs(5)).await;
    }
}

/// Retriable broker errors are absorbed by the producer's retries: senders
/// only see 202. A fatal producer error flips `/readyz` to 503 and answers
/// 503 `producer_fatal` until the producer is rebuilt, which happens by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_broker_errors_retriable_are_invisible_and_fatal_rebuilds() {
    let _one = exclusive().await;
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("hooks", 3, 1).unwrap();
    // One request in flight per connection: the mock cluster checks
    // sequence numbers for transactional producers only, so with several in
    // flight a batch behind a failed one is accepted out of order, and
    // librdkafka (rightly, for a real broker) infers that the failed one was
    // persisted and reports it delivered (offset -1001) though it is not in
    // the log; and a retried batch is written twice. Kafka and Tansu enforce
    // the order, which is what makes those inferences sound.
    let rest = "[kafka.options]\n\"max.in.flight.requests.per.connection\" = \"1\"\n";
    let text = ingest_config(&cluster.bootstrap_servers(), "hooks", DEADLINE, "", rest);
    let gateway = InProcess::start(&Config::from_toml(&text).unwrap()).await;
    let ledger = Ledger::new("injected_errors");

    let retriable = [
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        RDKafkaRespErr::RD_KAFKA_RESP_ERR__TRANSPORT,
    ];
    // One error at a time, each kind twice, while the load runs. (Errors
    // pushed faster than produce requests consume them pile up into a run of
    // failures: an outage, where backoffs grow and records time out, which
    // the other cases cover.)
    let plan = Plan {
        workers: 4,
        deliveries: 800,
        attempts: 1,
        pause: Duration::from_millis(20),
        ..Plan::default()
    };
    let load = Load::start(ledger.clone(), gateway.url(), "retriable", plan);
    for error in retriable.iter().cycle().take(10) {
        tokio::time::sleep(Duration::from_millis(400)).await;
        cluster.request_errors(RDKafkaApiKey::Produce, &[*error]);
    }
    load.wait(Duration::from_secs(60)).await;
    assert!(
        ledger.attempts().iter().all(|a| a.answer == Answer::Status(202)),
        "retriable broker errors never reach the sender: {}",
        ledger.summary()
    );

    gateway.publisher.inject_fatal_error();
    let (status, report) = gateway.ready().await;
    assert_eq!(
        (status, &report["checks"]["producer"]),
        (503, &serde_json::json!(false)),
        "{report}"
    );
    let client = reqwest::Client::new();
    send(&client, &gateway.url(), "fatal-0", "{}", &ledger).await;
    assert_eq!(
        ledger.attempts().last().unwrap().code.as_deref(),
        Some("producer_fatal"),
        "{}",
        ledger.summary()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while gateway.ready().await.0 != 200 {
        assert!(
            Instant::now() < deadline,
            "the producer was not rebuilt: {:?}",
            gateway.ready().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let plan = Plan {
        workers: 4,
        deliveries: 200,
        ..Plan::default()
    };
    Load::start(ledger.clone(), gateway.url(), "rebuilt", plan)
        .wait(Duration::from_secs(60))
        .await;
    let metrics = reqwest::get(format!("http://{}/metrics", gateway.metrics))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("hookgate_kafka_producer_rebuilds_total 1"),
        "{metrics}"
    );
    let records = consume_all(
        &cluster.bootstrap_servers(),
        "hooks",
        ledger.accepted_deliveries(),
        Duration::from_secs(30),
    );
    let figures = ledger.settle(&records);
    assert_eq!(figures.accepted, 1000, "{}", ledger.summary());
    gateway.stop().await;
}

/// The query role is SIGKILLed while events flow and started again on the
/// same history store: the history ends up holding exactly the topic's
/// events, none missing and none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexer_killed_and_restarted_neither_loses_nor_doubles_history() {
    let _one = exclusive().await;
    let store_dir = tempfile::tempdir().unwrap();
    // A short session timeout, so the restarted indexer gets the partitions of its dead predecessor soon.
    let rest = "[kafka.options]\n\"session.timeout.ms\" = \"6000\"\n";
    let rig = Rig::start(DEADLINE, "", rest);
    let store = format!("sqlite://{}", store_dir.path().join("history.db").display());
    let query_config = rig
        .config
        .replace("store = \"sqlite://history.db\"", &format!("store = \"{store}\""));
    assert_ne!(query_config, rig.config);
    let mut indexer = Gateway::start(&query_config, "query");
    let ledger = Ledger::new("indexer_restart");
    let plan = Plan {
        workers: 4,
        deliveries: 1500,
        pause: Duration::from_millis(3),
        ..Plan::default()
    };
    let load = Load::start(ledger.clone(), rig.url(), "index", plan);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    indexer.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let indexer = Gateway::start(&query_config, "query");
    load.wait(Duration::from_secs(60)).await;
    let records = rig.records(ledger.accepted_deliveries());
    ledger.settle(&records);

    let in_topic: std::collections::BTreeSet<String> = records.iter().map(|r| r.envelope.id.clone()).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let history = loop {
        let history = history_ids(&indexer).await;
        if history.len() >= in_topic.len() || Instant::now() > deadline {
            break history;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let distinct: std::collections::BTreeSet<String> = history.iter().cloned().collect();
    common::ledger::report(&format!(
        "history case=indexer_restart in_topic={} indexed={} distinct={}",
        in_topic.len(),
        history.len(),
        distinct.len()
    ));
    assert_eq!(distinct.len(), history.len(), "an event is listed twice");
    assert_eq!(distinct, in_topic, "the history holds exactly the topic's events");
    assert!(indexer.panics().is_empty(), "{:?}", indexer.panics());
    rig.assert_no_panics();
}

/// Every event id the query API lists, walking all pages.
async fn history_ids(gateway: &Gateway) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    let mut url = gateway.query_url("/v1/events?limit=1000");
    loop {
        let page: serde_json::Value = client.get(&url).send().await.unwrap().json().await.unwrap();
        ids.extend(
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => url = gateway.query_url(&format!("/v1/events?limit=1000&cursor={cursor}")),
            None => return ids,
        }
    }
}
