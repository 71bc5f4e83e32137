//! Reconciliation end to end: the real `hookgate` binary, a real broker,
//! and fake GitHub and Stripe APIs (tests/common/providers.rs) that "send"
//! their webhooks as real signed POSTs. Deliveries that never reached
//! hookgate (it was down, or answered 401) come back exactly once: GitHub's
//! redelivered and signed, Stripe's published as `recovered`.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use common::history::get_json;
use common::providers::{FakeGithub, FakeStripe, Throttle, API_TOKEN, GITHUB_HOOK};
use common::{consume_all, create_topic, dead_port, unique, wait_until, Broker, Gateway, Record};

const GITHUB_SECRET: &str = "gh-secret";
const STRIPE_SECRET: &str = "whsec_c3RyaXBlLXNlY3JldA";
const TOKEN_ENV: (&str, &str) = ("HG_TEST_RECONCILE_TOKEN", API_TOKEN);

/// A test's broker, topic, ports, fakes and the config that ties them together.
struct Scene {
    broker: Broker,
    topic: String,
    ingest_port: u16,
    query_port: u16,
    github: FakeGithub,
    stripe: FakeStripe,
    dir: tempfile::TempDir,
}

impl Scene {
    async fn new(page_size: usize) -> Scene {
        let broker = Broker::any();
        let topic = unique("reconcile");
        create_topic(&broker.bootstrap(), &topic, 3);
        let ingest_port = dead_port();
        let github = FakeGithub::start(
            &format!("http://127.0.0.1:{ingest_port}/webhooks/github"),
            GITHUB_SECRET,
            page_size,
        )
        .await;
        let stripe = FakeStripe::start(
            &format!("http://127.0.0.1:{ingest_port}/webhooks/stripe"),
            STRIPE_SECRET,
            page_size,
        )
        .await;
        Scene {
            broker,
            topic,
            ingest_port,
            query_port: dead_port(),
            github,
            stripe,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The config: both sources reconciled (`reconcile_extra` added to both tables) or not at all.
    fn config(&self, store: &str, github_secret: &str, reconcile_extra: Option<&str>) -> String {
        let table = |api: String, hook: &str| match reconcile_extra {
            Some(extra) => format!(
                "[sources.reconcile]\napi = \"{api}\"\n{hook}token = \"env:{}\"\ninterval = \"1s\"\nlookback = \"1h\"\n\
                 settle = \"2s\"\n{extra}\n",
                TOKEN_ENV.0
            ),
            None => String::new(),
        };
        format!(
            "[ingest]\nlisten = \"127.0.0.1:{}\"\n[query]\nlisten = \"127.0.0.1:{}\"\nstore = \"{store}\"\n\
             consumer_group = \"{}\"\n\
             [metrics]\nlisten = \"127.0.0.1:0\"\n[kafka]\nbrokers = \"{}\"\ntopic = \"{}\"\n\
             [[sources]]\nname = \"github\"\nverify = \"github\"\nsecrets = [\"{github_secret}\"]\n{}\
             [[sources]]\nname = \"stripe\"\nverify = \"stripe\"\nsecrets = [\"{STRIPE_SECRET}\"]\n{}",
            self.ingest_port,
            self.query_port,
            // A group of its own per process: Tansu keeps a killed member's partitions.
            unique("reconcile-indexer"),
            self.broker.bootstrap(),
            self.topic,
            table(self.github.api(), &format!("hook = \"{GITHUB_HOOK}\"\n")),
            table(self.stripe.api(), ""),
        )
    }

    fn sqlite(&self) -> String {
        format!("sqlite://{}", self.dir.path().join("history.db").display())
    }

    fn start(&self, config: &str, role: &str) -> Gateway {
        Gateway::start_with_env(config, role, &[TOKEN_ENV])
    }

    /// Sends `n` GitHub deliveries and `n` Stripe events; returns their ids.
    async fn send(&self, prefix: &str, n: usize) -> (Vec<String>, Vec<String>) {
        // Unique per run: the Redis dedup store remembers keys across test runs.
        let prefix = unique(prefix);
        let (mut guids, mut events) = (Vec::new(), Vec::new());
        for i in 0..n {
            let guid = format!("{prefix}-guid-{i:03}");
            let event = format!("evt_{}_{i:03}", prefix.replace('-', "_"));
            self.github.deliver(&guid).await;
            self.stripe.create_event(&event).await;
            guids.push(guid);
            events.push(event);
        }
        (guids, events)
    }

    fn records(&self, expected: usize) -> Vec<Record> {
        consume_all(&self.broker.bootstrap(), &self.topic, expected, Duration::from_secs(60))
    }
}

/// Every event of `source` in the history (newest first).
async fn history(gateway: &Gateway, source: &str) -> Vec<Value> {
    let url = gateway.query_url(&format!("/v1/events?source={source}&limit=500"));
    let (status, page) = get_json(&url, None).await;
    assert!(status.is_success(), "{status}: {page}");
    page["events"].as_array().cloned().unwrap_or_default()
}

/// Waits until the history holds `n` events of each source; on timeout, fails with the gateway's log.
async fn wait_for_history(gateway: &Gateway, n: usize) {
    // A crash leaves dedup reservations that lapse after 60 s before the next try.
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    loop {
        let (github, stripe) = (
            history(gateway, "github").await.len(),
            history(gateway, "stripe").await.len(),
        );
        if github >= n && stripe >= n {
            return;
        }
        if std::time::Instant::now() > deadline {
            let log = gateway.logs();
            let _ = std::fs::write(std::env::temp_dir().join("hookgate-reconcile-test.log"), &log);
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            panic!(
                "history holds {github} github and {stripe} stripe events, not {n}; log tail:\n{}",
                tail.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The last run of `source` as `GET /v1/reconcile` shows it.
async fn last_run(gateway: &Gateway, source: &str) -> Value {
    let (status, body) = get_json(&gateway.query_url("/v1/reconcile"), None).await;
    assert!(status.is_success(), "{status}: {body}");
    let sources = body["sources"].as_array().cloned().unwrap_or_default();
    let entry = sources
        .into_iter()
        .find(|s| s["source"] == source)
        .expect("source listed");
    entry["last_run"].clone()
}

/// The value of the series of `metric` carrying every label of `labels`, if any.
fn metric(text: &str, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")) || l.starts_with(&format!("{metric} ")))
        .find(|l| labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Each key's records; asserts every expected key is there exactly once.
fn assert_exactly_once<'a>(records: &'a [Record], keys: &[String]) -> HashMap<String, &'a Record> {
    let mut by_key: HashMap<String, Vec<&Record>> = HashMap::new();
    for record in records {
        by_key
            .entry(record.envelope.dedup_key.clone())
            .or_default()
            .push(record);
    }
    for key in keys {
        let found = by_key.get(key).map_or(0, Vec::len);
        assert_eq!(found, 1, "{key} is in the topic {found} times");
    }
    assert_eq!(records.len(), keys.len(), "no other records");
    by_key.into_iter().map(|(k, mut v)| (k, v.remove(0))).collect()
}

fn assert_marked_as_they_arrived(records: &HashMap<String, &Record>, guids: &[String], events: &[String]) {
    for guid in guids {
        let envelope = &records[guid].envelope;
        let verification = envelope.verification.as_ref().unwrap();
        assert!(
            verification.verified && verification.scheme == "github",
            "{guid} came signed"
        );
        assert!(!envelope.recovered && envelope.header("x-hub-signature-256").is_some());
    }
    for event in events {
        let envelope = &records[event].envelope;
        assert!(envelope.recovered, "{event} is marked recovered");
        assert_eq!(envelope.verification.as_ref().unwrap().scheme, "stripe-api");
        let body: Value = serde_json::from_slice(&envelope.body).unwrap();
        assert_eq!(
            (body["id"].as_str(), envelope.event_type.as_str()),
            (Some(event.as_str()), "invoice.paid")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_deliveries_sent_while_hookgate_was_down_arrive_exactly_once() {
    let scene = Scene::new(20).await;
    let (guids, events) = scene.send("down", 50).await;
    assert!(
        scene.github.attempts().iter().all(|a| a.status_code == 0),
        "hookgate was down"
    );
    let gateway = scene.start(&scene.config(&scene.sqlite(), GITHUB_SECRET, Some("")), "all");
    wait_for_history(&gateway, 50).await;
    // Two more runs: nothing is redelivered or published again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let records = scene.records(100);
    let by_key = assert_exactly_once(&records, &[guids.clone(), events.clone()].concat());
    assert_marked_as_they_arrived(&by_key, &guids, &events);
    assert_eq!(history(&gateway, "github").await.len(), 50);
    let stripe_history = history(&gateway, "stripe").await;
    assert_eq!(stripe_history.len(), 50);
    assert!(stripe_history
        .iter()
        .all(|e| e["verification"]["scheme"] == "stripe-api"));
    assert!(
        scene.github.redeliveries().values().all(|n| *n == 1),
        "{:?}",
        scene.github.redeliveries()
    );
    let text = gateway.metrics().await;
    let recovered = |source, how| {
        metric(
            &text,
            "hookgate_reconcile_recovered_total",
            &[("source", source), ("how", how)],
        )
    };
    assert_eq!(recovered("github", "redelivered"), Some(50.0));
    assert_eq!(recovered("stripe", "published"), Some(50.0));
    for source in ["github", "stripe"] {
        assert!(metric(&text, "hookgate_reconcile_missing_total", &[("source", source)]) >= Some(50.0));
        assert!(metric(&text, "hookgate_reconcile_checked_total", &[("source", source)]) >= Some(50.0));
        assert_eq!(
            metric(&text, "hookgate_reconcile_outstanding", &[("source", source)]),
            Some(0.0)
        );
        assert!(
            metric(
                &text,
                "hookgate_reconcile_last_success_timestamp_seconds",
                &[("source", source)]
            ) > Some(0.0)
        );
        assert_eq!(
            metric(&text, "hookgate_reconcile_errors_total", &[("source", source)]),
            None
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_missing_means_nothing_done() {
    let scene = Scene::new(100).await;
    let gateway = scene.start(&scene.config(&scene.sqlite(), GITHUB_SECRET, Some("")), "all");
    let (guids, events) = scene.send("up", 5).await;
    assert!(scene.github.attempts().iter().all(|a| a.status_code == 202));
    wait_for_history(&gateway, 5).await;
    wait_until(Duration::from_secs(30), "a run that saw all ten", || async {
        let (github, stripe) = (last_run(&gateway, "github").await, last_run(&gateway, "stripe").await);
        github["checked"] == 5 && stripe["checked"] == 5 && github["missing"] == 0 && stripe["missing"] == 0
    })
    .await;
    for source in ["github", "stripe"] {
        let run = last_run(&gateway, source).await;
        assert_eq!(
            (run["status"].as_str(), run["missing"].as_u64()),
            (Some("ok"), Some(0)),
            "{run}"
        );
    }
    let records = scene.records(10);
    let by_key = assert_exactly_once(&records, &[guids, events].concat());
    assert!(by_key.values().all(|r| !r.envelope.recovered));
    assert!(scene.github.redeliveries().is_empty());
    let text = gateway.metrics().await;
    assert_eq!(metric(&text, "hookgate_reconcile_recovered_total", &[]), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_refused_after_a_bad_secret_rotation_are_redelivered_once_fixed() {
    let scene = Scene::new(100).await;
    // The secret was rotated at GitHub but hookgate got a wrong one: every delivery is a 401.
    let mut misconfigured = scene.start(&scene.config(&scene.sqlite(), "wrong-secret", None), "all");
    let mut guids = Vec::new();
    for i in 0..3 {
        let guid = format!("rotation-{i}");
        assert_eq!(scene.github.deliver(&guid).await, 401);
        guids.push(guid);
    }
    misconfigured.terminate(Duration::from_secs(20));
    let gateway = scene.start(&scene.config(&scene.sqlite(), GITHUB_SECRET, Some("")), "all");
    wait_until(Duration::from_secs(60), "the redeliveries", || async {
        history(&gateway, "github").await.len() == 3
    })
    .await;
    for guid in &guids {
        let attempts: Vec<u16> = scene
            .github
            .attempts()
            .iter()
            .filter(|a| &a.guid == guid)
            .map(|a| a.status_code)
            .collect();
        assert_eq!(attempts, [401, 202], "{guid}");
    }
    let records = scene.records(3);
    assert_exactly_once(&records, &guids);
    assert!(records
        .iter()
        .all(|r| r.envelope.verification.as_ref().unwrap().verified));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_rate_limits_hit_mid_run_are_waited_out() {
    let scene = Scene::new(10).await;
    let (guids, events) = scene.send("limited", 25).await;
    // The second listing request of each provider is refused with a rate limit.
    scene.github.set_throttle(Throttle {
        at_request: 2,
        wait_secs: 2,
    });
    scene.stripe.set_throttle(Throttle {
        at_request: 2,
        wait_secs: 2,
    });
    let gateway = scene.start(&scene.config(&scene.sqlite(), GITHUB_SECRET, Some("")), "all");
    wait_for_history(&gateway, 25).await;
    let records = scene.records(50);
    assert_exactly_once(&records, &[guids, events].concat());
    let text = gateway.metrics().await;
    for source in ["github", "stripe"] {
        assert_eq!(
            metric(&text, "hookgate_reconcile_rate_limited_total", &[("source", source)]),
            Some(1.0)
        );
        assert_eq!(
            metric(&text, "hookgate_reconcile_errors_total", &[("source", source)]),
            None
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_query_replicas_only_one_reconciles() {
    let pg = common::history::PgSchema::create().await;
    let store = format!("{}?options=-c%20search_path%3D{}", pg.url(), pg.schema());
    let scene = Scene::new(100).await;
    let (guids, events) = scene.send("replicas", 10).await;
    let first = scene.start(&scene.config(&store, GITHUB_SECRET, Some("")), "all");
    let other = Scene {
        query_port: dead_port(),
        ..scene
    };
    let second = other.start(&other.config(&store, GITHUB_SECRET, Some("")), "query");
    wait_for_history(&first, 10).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let records = other.records(20);
    assert_exactly_once(&records, &[guids, events].concat());
    assert!(other.github.redeliveries().values().all(|n| *n == 1));
    let ran: Vec<bool> = [first.metrics().await, second.metrics().await]
        .iter()
        .map(|text| metric(text, "hookgate_reconcile_checked_total", &[("source", "github")]).is_some())
        .collect();
    assert_eq!(
        ran.iter().filter(|r| **r).count(),
        1,
        "exactly one replica reconciled: {ran:?}"
    );
    // Either replica shows the run.
    assert_eq!(last_run(&second, "stripe").await["status"], "ok");
    drop((first, second));
    pg.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_the_middle_of_a_run_loses_and_repeats_nothing() {
    let scene = Scene::new(100).await;
    let (guids, events) = scene.send("restart", 40).await;
    scene.github.set_redelivery_delay(Duration::from_millis(150));
    // The fleet's dedup store: a webhook published just before the crash is still known after it.
    let config =
        || scene.config(&scene.sqlite(), GITHUB_SECRET, Some("")) + "\n[dedup]\nredis = \"redis://127.0.0.1:6379\"\n";
    let mut gateway = scene.start(&config(), "all");
    wait_until(Duration::from_secs(60), "the run to be half way", || async {
        scene.github.redeliveries().len() >= 12
    })
    .await;
    gateway.kill();
    let requested_before = scene.github.redeliveries().len();
    assert!(requested_before < 40, "killed mid-run");
    let gateway = scene.start(&config(), "all");
    wait_for_history(&gateway, 40).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let records = scene.records(80);
    assert_exactly_once(&records, &[guids, events].concat());
    assert_eq!(history(&gateway, "github").await.len(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_only_reports() {
    let scene = Scene::new(100).await;
    let (guids, events) = scene.send("dry", 5).await;
    let gateway = scene.start(
        &scene.config(&scene.sqlite(), GITHUB_SECRET, Some("dry_run = true")),
        "all",
    );
    wait_until(Duration::from_secs(30), "a dry run of both", || async {
        last_run(&gateway, "github").await["missing"] == 5 && last_run(&gateway, "stripe").await["missing"] == 5
    })
    .await;
    for (source, action, ids) in [
        ("github", "would_redeliver", &guids),
        ("stripe", "would_publish", &events),
    ] {
        let run = last_run(&gateway, source).await;
        assert_eq!(
            (run["dry_run"].as_bool(), run["outstanding"].as_u64()),
            (Some(true), Some(5)),
            "{run}"
        );
        let listed: Vec<&str> = run["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["item"].as_str().unwrap())
            .collect();
        assert!(ids.iter().all(|id| listed.contains(&id.as_str())), "{run}");
        assert!(run["actions"].as_array().unwrap().iter().all(|a| a["action"] == action));
    }
    assert!(scene.github.redeliveries().is_empty());
    assert!(scene.records(0).is_empty(), "nothing published");
    let text = gateway.metrics().await;
    assert_eq!(
        metric(&text, "hookgate_reconcile_outstanding", &[("source", "github")]),
        Some(5.0)
    );
}
