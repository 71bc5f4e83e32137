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

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::gateway::LOOPBACK_LISTENERS;
use common::ledger::{send, Answer, Ledger, Load, Plan};
use common::{consume_all, create_topic, unique, Gateway, Record, Tansu};

/// The ingest deadline of these tests: short, so faults resolve in seconds.
const DEADLINE: Duration = Duration::from_secs(3);
/// Slack on top of the deadline for an answer to count as "at the deadline".
const ANSWER_SLACK: Duration = Duration::from_millis(1500);

/// One case at a time.
fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A private broker with a fresh topic.
struct Cluster {
    tansu: Tansu,
    topic: String,
}

impl Cluster {
    fn start(partitions: i32) -> Cluster {
        let tansu = Tansu::start();
        let topic = unique("faults");
        create_topic(&tansu.bootstrap(), &topic, partitions);
        Cluster { tansu, topic }
    }

    /// An ingest config for this cluster with `extra` lines in `[ingest]` and `rest` appended.
    fn config(&self, extra: &str, rest: &str) -> String {
        ingest_config(&self.tansu.bootstrap(), &self.topic, extra, rest)
    }

    /// Every record of the topic, waiting until at least `expected` arrived.
    fn records(&self, expected: usize) -> Vec<Record> {
        consume_all(&self.tansu.bootstrap(), &self.topic, expected, Duration::from_secs(30))
    }
}

/// Config text: loopback listeners, the deadline, one unverified source `load`
/// whose dedup key is the ledger's delivery header.
fn ingest_config(bootstrap: &str, topic: &str, extra: &str, rest: &str) -> String {
    let listeners = LOOPBACK_LISTENERS.replace(
        "[ingest]\n",
        &format!("[ingest]\ndeadline = \"{}s\"\n{extra}\n", DEADLINE.as_secs()),
    );
    format!(
        "{listeners}\n[kafka]\nbrokers = \"{bootstrap}\"\ntopic = \"{topic}\"\n{rest}\n\
         [[sources]]\nname = \"load\"\nverify = \"none\"\ndedup_key = \"header:{}\"\n",
        common::ledger::DELIVERY_HEADER
    )
}

/// Sends single requests until one is accepted; panics after `within`.
async fn until_accepted(url: &str, ledger: &Ledger, prefix: &str, within: Duration) -> Duration {
    let client = reqwest::Client::builder().timeout(DEADLINE + Duration::from_secs(5)).build().unwrap();
    let started = Instant::now();
    for n in 0.. {
        let answer = send(&client, url, &format!("{prefix}-probe-{n}"), "{}", ledger).await;
        if matches!(answer, Answer::Status(202)) {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "no 202 within {within:?}: {}", ledger.summary());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    unreachable!()
}

fn assert_no_panics(gateway: &Gateway) {
    let panics = gateway.panics();
    assert!(panics.is_empty(), "hookgate panicked: {panics:?}");
}

/// Ambiguous answers must come at the deadline, not after it: no hang.
fn assert_answered_by_deadline(ledger: &Ledger) {
    let slowest = ledger.attempts().iter().map(|a| a.latency).max().unwrap_or_default();
    assert!(slowest <= DEADLINE + ANSWER_SLACK, "slowest answer took {slowest:?}: {}", ledger.summary());
    let unanswered = ledger.attempts().iter().filter(|a| a.answer == Answer::NoAnswer).count();
    assert_eq!(unanswered, 0, "requests without an answer: {}", ledger.summary());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_under_load_recovers_by_itself() {
    let _one = exclusive();
    let mut cluster = Cluster::start(3);
    let gateway = Gateway::start(&cluster.config("", ""), "ingest");
    let ledger = Ledger::new("broker_restart");
    let url = gateway.url("/webhooks/load");
    let plan = Plan { workers: 8, deliveries: 1500, pause: Duration::from_millis(5), ..Plan::default() };
    let load = Load::start(ledger.clone(), url.clone(), "restart", plan);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = ledger.accepted_deliveries();
    cluster.tansu.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.tansu.restart();
    load.wait(Duration::from_secs(60)).await;
    let recovery = until_accepted(&url, &ledger, "restart", Duration::from_secs(30)).await;
    eprintln!("accepted before the kill: {before}; first 202 after the load {recovery:?}; answers {}", ledger.summary());
    assert!(before > 0, "traffic flowed before the kill: {}", ledger.summary());
    let records = cluster.records(ledger.accepted_deliveries());
    ledger.settle(&records);
    assert_no_panics(&gateway);
}
