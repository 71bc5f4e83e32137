//! The command line as a user meets it: `serve` with no config at all,
//! `check-config` on good and broken files, `send` against a running gateway.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::gateway::config;
use common::{Broker, Gateway, Setup};

fn hookgate(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookgate"));
    command.args(args).env_remove("HOOKGATE_CONFIG");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run hookgate")
}

fn write_config(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hookgate.toml");
    std::fs::write(&path, text).unwrap();
    let path = path.to_str().unwrap().to_owned();
    (dir, path)
}

#[tokio::test]
async fn serve_without_config_runs_the_demo_source_on_the_embedded_broker() {
    let env = [
        ("HOOKGATE_INGEST__LISTEN", "127.0.0.1:0"),
        ("HOOKGATE_QUERY__LISTEN", "127.0.0.1:0"),
        ("HOOKGATE_METRICS__LISTEN", "127.0.0.1:0"),
    ];
    let mut gateway = Gateway::start_without_config(&env);
    let logs = gateway.logs();
    assert!(
        logs.contains("EMBEDDED in-memory broker") && logs.contains("LOST WHEN hookgate EXITS"),
        "{logs}"
    );
    assert!(logs.contains("UNVERIFIED source `demo`"), "{logs}");
    let client = reqwest::Client::new();
    let response = client
        .post(gateway.url("/webhooks/demo"))
        .body(r#"{"hello":"world"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let accepted: serde_json::Value = response.json().await.unwrap();
    // The same event comes back from the query API once indexed.
    let id = accepted["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = client
            .get(gateway.query_url(&format!("/v1/events/{id}/body")))
            .send()
            .await
            .unwrap();
        if body.status() == 200 {
            assert_eq!(body.text().await.unwrap(), r#"{"hello":"world"}"#);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "event never reached the history: {}",
            body.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        gateway.dir.path().join("hookgate.db").exists(),
        "the default SQLite history file is created"
    );
    let status = gateway.terminate(Duration::from_secs(30));
    assert!(status.success());
}

#[test]
fn check_config_accepts_a_good_file_and_names_every_bad_key() {
    let (_dir, good) =
        write_config("[[sources]]\nname = \"gh\"\nverify = \"github\"\nsecrets = [\"env:HG_CLI_SECRET\"]\n");
    let output = hookgate(&["check-config", &good], &[("HG_CLI_SECRET", "s")]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("OK"));

    let (_dir, bad) = write_config(
        "[kafka.options]\n\"acks\" = \"0\"\n[[sources]]\nname = \"gh\"\nverify = \"github\"\n[[sources]]\nname = \"x y\"\nverify = \"none\"\n",
    );
    let output = hookgate(&["check-config", &bad], &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for key in ["kafka.options.\"acks\"", "sources[0].secrets", "sources[1].name"] {
        assert!(stderr.contains(key), "{key} missing from:\n{stderr}");
    }
}

#[test]
fn check_config_explains_unknown_keys_and_missing_secrets() {
    let (_dir, unknown) = write_config("[ingest]\nlisten_addr = \"127.0.0.1:1\"\n");
    let output = hookgate(&["check-config", &unknown], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("listen_addr"));

    let (_dir, missing) =
        write_config("[[sources]]\nname = \"gh\"\nverify = \"github\"\nsecrets = [\"env:HG_SURELY_UNSET_SECRET\"]\n");
    let output = hookgate(&["check-config", &missing], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("HG_SURELY_UNSET_SECRET"));

    let output = hookgate(&["check-config", "/nonexistent/hookgate.toml"], &[]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn serve_refuses_a_broken_config_with_exit_code_2() {
    let (_dir, bad) = write_config("[ingest]\nmax_body_bytes = \"big\"\n");
    let output = hookgate(&["serve", "--config", &bad], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("max_body_bytes"));
}

#[test]
fn send_signs_like_the_provider_and_shows_deduplication() {
    let source = "[[sources]]\nname = \"github\"\nverify = \"github\"\nsecrets = [\"env:HG_SEND_SECRET\"]\n";
    let s = Setup::start(
        Broker::any(),
        1,
        "ingest",
        &[("HG_SEND_SECRET", "send-secret")],
        |bootstrap, topic| config(bootstrap, topic, "", source),
    );
    let (_dir, path) = write_config(&s.config);
    let url = s.gateway.url("/webhooks/github");
    let args = [
        "send",
        "--config",
        &path,
        "--source",
        "github",
        "--url",
        &url,
        "--delivery-id",
        "fixed-delivery-1",
    ];
    let first = hookgate(&args, &[("HG_SEND_SECRET", "send-secret")]);
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success() && stdout.starts_with("202"),
        "{stdout}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let again = hookgate(&args, &[("HG_SEND_SECRET", "send-secret")]);
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(
        stdout.starts_with("200") && stdout.contains("\"duplicate\":true"),
        "{stdout}"
    );
    let wrong = hookgate(&args, &[("HG_SEND_SECRET", "not-the-secret")]);
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stdout).starts_with("401"));
    let unknown = hookgate(
        &["send", "--config", &path, "--source", "nope"],
        &[("HG_SEND_SECRET", "x")],
    );
    assert_eq!(unknown.status.code(), Some(2));
}

#[test]
fn send_signs_every_new_preset_and_checks_each_handshake() {
    let sources = r#"
[[sources]]
name = "gitlab"
verify = "gitlab"
secrets = ["env:HG_SEND_SECRET"]
[[sources]]
name = "zoom"
verify = "zoom"
secrets = ["env:HG_SEND_SECRET"]
[[sources]]
name = "meta"
verify = "meta"
secrets = ["env:HG_SEND_SECRET"]
verify_token = "env:HG_SEND_VERIFY_TOKEN"
[[sources]]
name = "twilio"
verify = "twilio"
secrets = ["env:HG_SEND_SECRET"]
public_url = "https://hooks.example.com/webhooks/twilio"
[[sources]]
name = "basic"
verify = "basic"
secrets = ["env:HG_SEND_BASIC"]
[[sources]]
name = "token"
verify = "token"
secrets = ["env:HG_SEND_SECRET"]
token_header = "x-webhook-token"
[[sources]]
name = "slack"
verify = "slack"
secrets = ["env:HG_SEND_SECRET"]
"#;
    let env = [
        ("HG_SEND_SECRET", "send-secret"),
        ("HG_SEND_VERIFY_TOKEN", "send-verify-token"),
        ("HG_SEND_BASIC", "hookgate:send"),
    ];
    let s = Setup::start(Broker::any(), 1, "ingest", &env, |bootstrap, topic| {
        config(bootstrap, topic, "", sources)
    });
    let (_dir, path) = write_config(&s.config);
    let send = |source: &str, extra: &[&str], env: &[(&str, &str)]| {
        let url = s.gateway.url(&format!("/webhooks/{source}"));
        let mut args = vec!["send", "--config", &path, "--source", source, "--url", &url];
        args.extend(extra);
        let output = hookgate(&args, env);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.code(), text)
    };
    for source in ["gitlab", "zoom", "meta", "twilio", "basic", "token"] {
        let (code, text) = send(source, &[], &env);
        assert!(code == Some(0) && text.starts_with("202"), "{source}: {text}");
        let wrong = [
            ("HG_SEND_SECRET", "not-the-secret"),
            ("HG_SEND_VERIFY_TOKEN", "send-verify-token"),
            ("HG_SEND_BASIC", "hookgate:wrong"),
        ];
        let (code, text) = send(source, &[], &wrong);
        assert!(code == Some(1) && text.starts_with("401"), "{source}: {text}");
    }
    for source in ["zoom", "meta", "slack"] {
        let (code, text) = send(source, &["--handshake"], &env);
        assert!(
            code == Some(0) && text.starts_with("200") && text.contains("handshake answered as the provider expects"),
            "{source}: {text}"
        );
    }
    // A verify token the gateway does not know: Meta would not subscribe.
    let forged = [("HG_SEND_VERIFY_TOKEN", "guess"), env[0], env[2]];
    let (code, text) = send("meta", &["--handshake"], &forged);
    assert!(
        code == Some(1) && text.contains("401") && text.contains("NOT answered"),
        "{text}"
    );
    let (code, text) = send("gitlab", &["--handshake"], &env);
    assert!(code == Some(2) && text.contains("has no handshake"), "{text}");
    assert!(
        s.records(6, Duration::from_secs(10)).len() == 6,
        "the handshakes were not published"
    );
}
