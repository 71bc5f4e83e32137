//! The reconciler's state in the history store, on SQLite and PostgreSQL
//! (the lease that lets one replica reconcile a source, the actions that
//! keep an item from being handled twice, the dedup keys compared), and
//! `GET /v1/reconcile` over real HTTP: what it shows, to whom, and its errors.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::history::{record, sqlite_memory, TestStore};
use hookgate::config::Config;
use hookgate::history::{router, ApiState, LiveFeed, Store};
use hookgate::publish::{EmbeddedBroker, KafkaEndpoint, Publisher};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::watch;

const SECOND: i64 = 1_000_000;

async fn lease_is_exclusive_until_it_lapses(store: &Store) {
    let now = 1_000 * SECOND;
    assert!(store
        .acquire_lease("reconcile:github", "a", now, now + 30 * SECOND)
        .await
        .unwrap());
    assert!(
        store
            .acquire_lease("reconcile:github", "a", now + SECOND, now + 31 * SECOND)
            .await
            .unwrap(),
        "renewed"
    );
    assert!(!store
        .acquire_lease("reconcile:github", "b", now + 2 * SECOND, now + 32 * SECOND)
        .await
        .unwrap());
    assert!(
        store
            .acquire_lease("reconcile:stripe", "b", now, now + 30 * SECOND)
            .await
            .unwrap(),
        "one lease per source"
    );
    assert!(
        store
            .acquire_lease("reconcile:github", "b", now + 40 * SECOND, now + 70 * SECOND)
            .await
            .unwrap(),
        "taken over once lapsed"
    );
    assert!(!store
        .acquire_lease("reconcile:github", "a", now + 41 * SECOND, now + 71 * SECOND)
        .await
        .unwrap());
    store.release_lease("reconcile:github", "a").await.unwrap();
    assert!(
        !store
            .acquire_lease("reconcile:github", "a", now + 42 * SECOND, now + 72 * SECOND)
            .await
            .unwrap(),
        "only the holder releases"
    );
    store.release_lease("reconcile:github", "b").await.unwrap();
    assert!(store
        .acquire_lease("reconcile:github", "a", now + 43 * SECOND, now + 73 * SECOND)
        .await
        .unwrap());
}

async fn actions_and_keys_are_remembered(store: &Store) {
    let items: Vec<String> = ["g1", "g2", "g3"].map(String::from).into();
    store
        .record_action("github", "g1", "redelivery_requested", 100)
        .await
        .unwrap();
    store
        .record_action("github", "g2", "redelivery_requested", 200)
        .await
        .unwrap();
    store.record_action("stripe", "g3", "published", 300).await.unwrap();
    let acted = store.acted_on("github", &items, 150).await.unwrap();
    assert_eq!(
        acted.into_iter().collect::<Vec<_>>(),
        ["g2"],
        "only this source, only since the cutoff"
    );
    store.forget_actions("github", 150).await.unwrap();
    assert!(
        store.acted_on("github", &items, 0).await.unwrap().len() == 1,
        "g1 forgotten"
    );

    let mut event = record("github", "push", 5, 1);
    event.summary.dedup_key = Some("guid-1".into());
    store.insert_batch(&[event]).await.unwrap();
    let many: Vec<String> = (0..1_200).map(|i| format!("guid-{i}")).collect();
    let present = store.present_dedup_keys("github", &many).await.unwrap();
    assert_eq!(
        present.into_iter().collect::<Vec<_>>(),
        ["guid-1"],
        "found across chunks"
    );
    assert!(
        store.present_dedup_keys("stripe", &many).await.unwrap().is_empty(),
        "per source"
    );

    store.save_run("github", r#"{"checked":1}"#, 10).await.unwrap();
    store.save_run("github", r#"{"checked":2}"#, 20).await.unwrap();
    assert_eq!(
        store.reconcile_runs().await.unwrap(),
        [("github".to_owned(), r#"{"checked":2}"#.to_owned())]
    );
}

#[tokio::test]
async fn the_reconcile_state_works_on_both_stores() {
    for kind in ["sqlite", "postgres"] {
        let test_store = TestStore::open(kind).await;
        lease_is_exclusive_until_it_lapses(&test_store.store()).await;
        actions_and_keys_are_remembered(&test_store.store()).await;
        test_store.cleanup().await;
    }
}

const CONFIG: &str = r#"
[kafka]
topic = "webhooks"
embedded_partitions = 1
[[query.tokens]]
token = "read-all"
scopes = ["read"]
[[query.tokens]]
token = "github-team"
scopes = ["read"]
sources = ["github"]
[[query.tokens]]
token = "replay-only"
scopes = ["replay"]
[[sources]]
name = "github"
verify = "github"
secrets = ["s"]
[sources.reconcile]
hook = "repos/o/r/hooks/1"
token = "t"
dry_run = true
[[sources]]
name = "stripe"
verify = "stripe"
secrets = ["s"]
[sources.reconcile]
token = "t"
[[sources]]
name = "plain"
verify = "none"
"#;

async fn serve(store: Store) -> (String, EmbeddedBroker, watch::Sender<bool>) {
    let broker = EmbeddedBroker::start(&["webhooks".to_owned()], 1).unwrap();
    let endpoint = KafkaEndpoint {
        bootstrap: broker.bootstrap_servers().to_owned(),
        options: Default::default(),
    };
    let publisher = Publisher::new(endpoint, Duration::from_secs(1)).unwrap();
    let config = Arc::new(Config::from_toml(CONFIG).unwrap());
    let (stop, shutdown) = watch::channel(false);
    let state = ApiState::new(store, config, publisher, LiveFeed::default(), shutdown);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
    (base, broker, stop)
}

async fn get(url: &str, token: Option<&str>) -> (StatusCode, Value) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut request = client.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn get_reconcile_shows_each_reconciled_source_and_its_last_run() {
    let store = sqlite_memory().await;
    store
        .save_run("github", r#"{"status":"ok","checked":7,"missing":2}"#, 1)
        .await
        .unwrap();
    let (base, _broker, _stop) = serve(store).await;
    let url = format!("{base}/v1/reconcile");
    let (status, body) = get(&url, Some("read-all")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sources = body["sources"].as_array().unwrap();
    let names: Vec<&str> = sources.iter().map(|s| s["source"].as_str().unwrap()).collect();
    assert_eq!(names, ["github", "stripe"], "only reconciled sources");
    assert_eq!(sources[0]["last_run"]["checked"], 7);
    assert_eq!(
        (sources[0]["dry_run"].as_bool(), sources[0]["hook"].as_str()),
        (Some(true), Some("repos/o/r/hooks/1"))
    );
    assert_eq!(sources[0]["api"], "https://api.github.com");
    assert_eq!(
        (sources[1]["last_run"].clone(), sources[1]["api"].as_str()),
        (Value::Null, Some("https://api.stripe.com"))
    );
    assert_eq!(sources[1]["interval_seconds"], 300);

    let (_, team) = get(&url, Some("github-team")).await;
    assert_eq!(
        team["sources"].as_array().unwrap().len(),
        1,
        "a token sees its own sources: {team}"
    );
    let (status, body) = get(&url, Some("replay-only")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (status, body) = get(&url, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let (status, body) = get(&format!("{url}?source=github"), Some("read-all")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unknown_parameter"))
    );
}
