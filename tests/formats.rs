//! Record formats and routing against the real broker (Tansu), read back
//! with independent libraries only (tests/decode_records.py): envelopes
//! framed for a Schema Registry (a small one following Confluent's REST API,
//! tests/common/registry.rs) and decoded by confluent-kafka's
//! ProtobufDeserializer through it; CloudEvents decoded by the CloudEvents
//! Python SDK; routes by event type. The indexer rebuilds the history from
//! both formats, and a replay goes to the topic the event was routed to.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::history::get_json;
use common::registry::{Registry, RegistryState};
use common::webhook::post_signed;
use common::{create_topic, dead_port, unique, Broker, Setup};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "formats-token";
const SECRET: &str = "formats-secret";

/// Runs tests/decode_records.py; one JSON value per record.
fn decode(mode: &str, bootstrap: &str, topic: &str, count: usize, extra: &[&str]) -> Vec<Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/decode_records.py");
    let output = Command::new("python3")
        .arg(script)
        .args([mode, bootstrap, topic, &count.to_string()])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs (tests/run.sh installs confluent-kafka, cloudevents, grpcio-tools)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "decode_records.py {mode} failed:\n{stderr}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let records: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), count, "records of {topic}: {stdout}\n{stderr}");
    records
}

fn query_config(rest: &str) -> String {
    format!(
        r#"
[ingest]
listen = "127.0.0.1:0"
[query]
listen = "127.0.0.1:0"
store = "sqlite://history.db"
consumer_group = "{group}"
[[query.tokens]]
token = "{TOKEN}"
scopes = ["read", "replay"]
[metrics]
listen = "127.0.0.1:0"
{rest}
"#,
        group = unique("formats")
    )
}

/// POSTs a signed GitHub-style webhook of `event`; returns the 202 answer.
async fn post_event(gateway: &common::Gateway, source: &str, event: &str, delivery: &str) -> Value {
    let body = format!(r#"{{"delivery":"{delivery}"}}"#);
    let response = post_signed(gateway, source, body.as_bytes(), delivery, &[("x-github-event", event)]).await;
    assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
    response.json().await.unwrap()
}

/// The history's view of event `id`, once indexed.
async fn indexed(gateway: &common::Gateway, id: &str) -> Value {
    let url = gateway.query_url(&format!("/v1/events/{id}"));
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = get_json(&url, Some(TOKEN)).await;
        if status == 200 {
            return body;
        }
        assert!(Instant::now() < deadline, "event {id} not indexed: {status} {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn replay(gateway: &common::Gateway, id: &str) -> Value {
    let response = reqwest::Client::new()
        .post(gateway.query_url(&format!("/v1/events/{id}/replay")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelopes_are_framed_for_the_registry_and_routed_by_event_type() {
    let registry = Registry::start(RegistryState {
        basic_auth: Some("hookgate:registry-pw".into()),
        ..Default::default()
    })
    .await;
    let (push, prs) = (unique("gh.push"), unique("gh.prs"));
    let url = registry.url();
    let Setup {
        broker, topic, gateway, ..
    } = Setup::start(Broker::any(), 1, "all", &[], |bootstrap, topic| {
        create_topic(bootstrap, &push, 1);
        create_topic(bootstrap, &prs, 1);
        query_config(&format!(
            r#"
[kafka]
brokers = "{bootstrap}"
topic = "{topic}"
[kafka.schema_registry]
url = "{url}"
username = "hookgate"
password = "registry-pw"
[[sources]]
name = "gh"
verify = "github"
secrets = ["{SECRET}"]
routes = [{{ event_type = "push", topic = "{push}" }}, {{ event_type = "pull_request*", topic = "{prs}" }}]
"#
        ))
    });
    let bootstrap = broker.bootstrap();
    let pushed = post_event(&gateway, "gh", "push", "d-push").await;
    let reviewed = post_event(&gateway, "gh", "pull_request_review", "d-review").await;
    let other = post_event(&gateway, "gh", "issues", "d-issues").await;
    assert_eq!(
        [&pushed["topic"], &reviewed["topic"], &other["topic"]],
        [push.as_str(), prs.as_str(), topic.as_str()]
    );

    // One subject per topic (TopicNameStrategy), one schema, one id.
    for t in [&push, &prs, &topic] {
        assert_eq!(registry.ids(&format!("{t}-value")), [1], "subject of {t}");
    }
    let user = ["--registry", &url, "--user", "hookgate:registry-pw"];
    for (t, sent, event, delivery) in [
        (&push, &pushed, "push", "d-push"),
        (&prs, &reviewed, "pull_request_review", "d-review"),
        (&topic, &other, "issues", "d-issues"),
    ] {
        let record = &decode("schema-registry", &bootstrap, t, 1, &user)[0];
        assert_eq!(record["id"], sent["id"]);
        assert_eq!(
            (record["source"].as_str(), record["event_type"].as_str()),
            (Some("gh"), Some(event))
        );
        assert_eq!(
            (record["dedup_key"].as_str(), record["verified"].as_bool()),
            (Some(delivery), Some(true))
        );
    }
    assert!(
        registry
            .requests()
            .contains(&"GET /schemas/ids/1?format=serialized".to_owned()),
        "the deserializer looked the schema up: {:?}",
        registry.requests()
    );

    // The indexer reads framed records; a replay goes to the routed topic, framed.
    let id = pushed["id"].as_str().unwrap();
    let event = indexed(&gateway, id).await;
    assert_eq!(event["kafka"]["topic"], push.as_str());
    assert_eq!(event["body"], r#"{"delivery":"d-push"}"#);
    let replayed = replay(&gateway, id).await;
    assert_eq!(replayed["topic"], push.as_str());
    let records = decode("schema-registry", &bootstrap, &push, 2, &user);
    assert_eq!(
        (records[1]["id"].as_str(), records[1]["replay"].as_bool()),
        (Some(id), Some(true))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudevents_records_decode_with_the_cloudevents_sdk_and_index() {
    let Setup {
        broker, topic, gateway, ..
    } = Setup::start(Broker::any(), 1, "all", &[], |bootstrap, topic| {
        query_config(&format!(
            r#"
[kafka]
brokers = "{bootstrap}"
topic = "{topic}"
[[sources]]
name = "ce"
verify = "github"
secrets = ["{SECRET}"]
record_format = "cloudevents"
"#
        ))
    });
    let bootstrap = broker.bootstrap();
    let sent = post_event(&gateway, "ce", "issues", "d-ce-1").await;
    let id = sent["id"].as_str().unwrap();
    let record = &decode("cloudevents", &bootstrap, &topic, 1, &[])[0];
    let attributes = &record["attributes"];
    assert_eq!(attributes["specversion"], "1.0");
    assert_eq!(attributes["id"], id);
    assert_eq!(attributes["source"], "hookgate/ce");
    assert_eq!(attributes["type"], "issues");
    assert_eq!(attributes["datacontenttype"], "application/json");
    assert_eq!(attributes["hookgatededupkey"], "d-ce-1");
    assert_eq!(attributes["hookgateverified"], "true");
    assert_eq!(attributes["hookgatescheme"], "github");
    assert_eq!(record["data"], serde_json::json!({ "delivery": "d-ce-1" }));
    let time = chrono::DateTime::parse_from_rfc3339(attributes["time"].as_str().unwrap()).unwrap();
    let age = chrono::Utc::now().signed_duration_since(time);
    assert!(age.num_seconds().abs() < 60, "ce_time is the receive time: {time}");

    // What the history rebuilds from the CloudEvent.
    let event = indexed(&gateway, id).await;
    assert_eq!(
        (event["source"].as_str(), event["event_type"].as_str()),
        (Some("ce"), Some("issues"))
    );
    assert_eq!(event["dedup_key"], "d-ce-1");
    assert_eq!(event["verification"]["verified"], true);
    assert_eq!(event["verification"]["scheme"], "github");
    assert_eq!(event["content_type"], "application/json");
    assert_eq!(event["body"], r#"{"delivery":"d-ce-1"}"#);
    assert_eq!(event["received_at_unix_micros"], time.timestamp_micros());

    let replayed = replay(&gateway, id).await;
    assert_eq!(replayed["topic"], topic.as_str());
    let records = decode("cloudevents", &bootstrap, &topic, 2, &[]);
    assert_eq!(records[1]["attributes"]["id"], id);
    assert_eq!(records[1]["attributes"]["hookgatereplay"], "true");
}

/// Runs `hookgate serve` with `config` until it exits (at most 60 s); its exit code and stderr.
fn serve_until_exit(config: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hookgate.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(["serve", "--config", path.to_str().unwrap()])
        .current_dir(dir.path())
        .env_remove("HOOKGATE_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("hookgate kept running although the registry refused");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn registry_config(bootstrap: &str, topic: &str, url: &str) -> String {
    query_config(&format!(
        r#"
[kafka]
brokers = "{bootstrap}"
topic = "{topic}"
[kafka.schema_registry]
url = "{url}"
timeout = "3s"
[[sources]]
name = "gh"
verify = "none"
"#
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_stops_with_a_clear_error_when_the_registry_is_down_or_refuses() {
    let broker = Broker::any();
    let bootstrap = broker.bootstrap();
    let topic = unique("topic");
    create_topic(&bootstrap, &topic, 1);

    let down = format!("http://127.0.0.1:{}", dead_port());
    let (code, stderr) = serve_until_exit(&registry_config(&bootstrap, &topic, &down));
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("schema registry {down} is unreachable")),
        "{stderr}"
    );

    let mut state = RegistryState::default();
    state.incompatible.insert(format!("{topic}-value"));
    let registry = Registry::start(state).await;
    let config = registry_config(&bootstrap, &topic, &registry.url());
    let (code, stderr) = tokio::task::spawn_blocking(move || serve_until_exit(&config))
        .await
        .unwrap();
    assert_ne!(code, Some(0), "{stderr}");
    let expected = format!("refuses the schema for subject `{topic}-value`: incompatible");
    assert!(stderr.contains(&expected), "{stderr}");
}

#[test]
fn check_config_refuses_unreachable_routes_and_a_bad_registry() {
    let text = r#"[kafka.schema_registry]
url = "registry:8081"
username = "u"

[[sources]]
name = "gh"
verify = "none"
routes = [
  { event_type = "pull_request*", topic = "gh.prs" },
  { event_type = "pull_request_review", topic = "gh.reviews" },
  { event_type = "push", topic = "" },
]
record_format = "avro"
"#;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes.toml");
    std::fs::write(&path, text).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(["check-config", path.to_str().unwrap(), "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let found: Vec<(String, u64, String)> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let line = d["location"]["line"].as_u64().unwrap_or(0);
            (d["key"].as_str().unwrap().to_owned(), line, d["message"].to_string())
        })
        .collect();
    let has = |key: &str, line: u64, words: &str| {
        found
            .iter()
            .any(|(k, l, m)| k == key && *l == line && m.contains(words))
    };
    assert!(has("kafka.schema_registry.url", 2, "http://"), "{found:#?}");
    assert!(
        has("kafka.schema_registry.password", 1, "required with username"),
        "{found:#?}"
    );
    assert!(
        has(
            "sources[0].routes[1].event_type",
            10,
            "unreachable: routes[0] (`pull_request*`)"
        ),
        "{found:#?}"
    );
    assert!(has("sources[0].routes[2].topic", 11, "must not be empty"), "{found:#?}");
    assert!(has("sources[0].record_format", 13, "avro"), "{found:#?}");
    let errors = found.len() - 1; // and the warning about verify = "none"
    assert_eq!(report["errors"], errors, "each problem once: {found:#?}");
}
