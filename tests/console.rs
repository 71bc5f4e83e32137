//! The web console in a real browser: the `hookgate` binary on a real
//! broker (Tansu) with a SQLite history, and Debian's chromium driven
//! headless by Playwright (tests/console/drive.py): log in with a token,
//! per-source counts, json= and q= search, the detail view (pretty JSON,
//! hex), a replay, the live tail, and no replay button without the scope.
//! Screenshots are written to target/console-screenshots/. Without
//! chromium or Python's playwright the test says so and passes
//! (tests/run.sh installs both).

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::history::get_json;
use common::webhook::{self, headers};
use common::{unique, wait_until, Broker, Setup};
use serde_json::json;

const TOKEN: &str = "console-admin";
const READER: &str = "console-reader";

fn config(bootstrap: &str, topic: &str) -> String {
    format!(
        r#"
[ingest]
listen = "127.0.0.1:0"
[kafka]
brokers = "{bootstrap}"
topic = "{topic}"
[query]
listen = "127.0.0.1:0"
store = "sqlite://history.db"
consumer_group = "{group}"
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
event_type = "json:/type"
[[sources]]
name = "github"
verify = "none"
"#,
        group = unique("console")
    )
}

/// Why the browser cannot run here, if it cannot.
fn browser_missing() -> Option<String> {
    let chromium = ["chromium", "chromium-browser"].iter().any(|name| {
        Command::new("which")
            .arg(name)
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !chromium {
        return Some("chromium is not installed (apt-get install chromium; tests/run.sh does it)".into());
    }
    let playwright = Command::new("python3").args(["-c", "import playwright"]).output();
    if !playwright.is_ok_and(|o| o.status.success()) {
        return Some("Python playwright is not installed (pip install playwright; tests/run.sh does it)".into());
    }
    None
}

/// Posts a webhook as a sender would: retrying while the gateway answers 503
/// (a broker that just started may not take the first records in time).
async fn deliver(url: &str, body: &[u8], content_type: &str) {
    let mut last = String::new();
    for _ in 0..5 {
        let response = webhook::post(url, body, &headers(&[("content-type", content_type)])).await;
        match response.status().as_u16() {
            202 => return,
            503 => last = response.text().await.unwrap(),
            other => panic!("{other}: {}", response.text().await.unwrap()),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("the gateway kept answering 503: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_a_headless_browser() {
    if let Some(why) = browser_missing() {
        eprintln!("SKIPPED the_console_works_in_a_headless_browser: {why}");
        return;
    }
    let Setup { gateway, .. } = Setup::start(Broker::any(), 1, "all", &[], config);
    let url = gateway.url("/webhooks/stripe");
    deliver(&url, b"\xff\xfe\x00binary", "application/octet-stream").await;
    for n in 0..5 {
        let customer = if n % 2 == 0 { "cus_A" } else { "cus_B" };
        let note = if n == 2 { "refund issued" } else { "charge" };
        let body = json!({ "id": format!("evt_{n}"), "type": "charge.succeeded",
            "data": { "object": { "customer": customer, "note": note } } });
        deliver(&url, body.to_string().as_bytes(), "application/json").await;
    }

    wait_until(Duration::from_secs(30), "6 indexed events", || async {
        let (_, page) = get_json(&gateway.query_url("/v1/events"), Some(TOKEN)).await;
        page["events"].as_array().map(Vec::len) == Some(6)
    })
    .await;
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    let query = format!("http://{}", gateway.query.unwrap());
    let ingest = format!("http://{}", gateway.ingest.unwrap());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/console/drive.py");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .args([&query, &ingest, TOKEN, READER, shots.to_str().unwrap()])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "the browser checks failed:\n{}\n{}\nhookgate log:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        gateway.logs()
    );
}
