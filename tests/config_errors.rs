//! `hookgate check-config` as a new user meets it: a file with many
//! mistakes is explained in one run, each problem with its line, key, value
//! and a suggestion; environment overrides are named; a valid file gets a
//! summary; `serve` refuses a broken file with the same report.

use std::process::{Command, Output};

use serde_json::Value;

/// Runs the real binary with a clean `HOOKGATE_*` environment plus `env`.
fn hookgate(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookgate"));
    command.args(args);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("HOOKGATE_")) {
        command.env_remove(key);
    }
    command.envs(env.iter().copied());
    command.output().expect("run hookgate")
}

fn write_config(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path.to_str().unwrap().to_owned())
}

fn json_report(path: &str, env: &[(&str, &str)]) -> (Option<i32>, Value) {
    let output = hookgate(&["check-config", path, "--format", "json"], env);
    let report = serde_json::from_slice(&output.stdout).expect("check-config --format json prints JSON");
    (output.status.code(), report)
}

/// Thirteen mistakes of different kinds; the comment on each line says which.
const MISTAKES: &str = r#"[ingest]
listen = "127.0.0.1:99999"          # 2  port out of range
deadline = "forever"                # 3  not a duration
max_body_bytes = -1                 # 4  number out of range
max_in_flight = 0                   # 5  semantic: must be > 0

[kafka.options]
"acks" = "1"                        # 8  refused by the producer's rules

[dedup]
dedup_windw = "72h"                 # 11 unknown key, did you mean window

[query]
store = "mysql://db"                # 14 semantic: not sqlite or postgres

[[sources]]
name = "gh"
verify = "githubb"                  # 18 unknown preset, did you mean github

[[sources]]
name = "stripe"
verify = "stripe"
secrets = ["env:HOOKGATE_TEST_SURELY_UNSET", "file:/nonexistent/hookgate-secret"]  # 23 both unresolvable
dedup_key = "body:/id"              # 24 not header:, json: or none

[[sources]]                         # 26 name missing
verify = "none"

[rate_limit]
per_client_ip = { per_second = 5 }  # 30 burst missing
"#;

#[test]
fn one_run_reports_every_mistake_with_its_line() {
    let (_dir, path) = write_config(MISTAKES);
    let (code, report) = json_report(&path, &[]);
    assert_eq!(code, Some(2));
    let found: Vec<(String, u64)> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["severity"] == "error")
        .map(|d| {
            (
                d["key"].as_str().unwrap().to_owned(),
                d["location"]["line"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("ingest.listen", 2),
        ("ingest.deadline", 3),
        ("ingest.max_body_bytes", 4),
        ("ingest.max_in_flight", 5),
        ("kafka.options.\"acks\"", 8),
        ("dedup.dedup_windw", 11),
        ("query.store", 14),
        ("sources[0].verify", 18),
        ("sources[1].secrets[0]", 23),
        ("sources[1].secrets[1]", 23),
        ("sources[1].dedup_key", 24),
        ("sources[2].name", 26),
        ("rate_limit.per_client_ip.burst", 30),
    ];
    for (key, line) in expected {
        assert!(
            found.contains(&(key.to_owned(), line)),
            "{key} on line {line} missing from {found:#?}"
        );
    }
    assert_eq!(
        found.len(),
        expected.len(),
        "each problem once, nothing else: {found:#?}"
    );
    assert_eq!(report["errors"], expected.len());
}

#[test]
fn problems_read_like_a_compiler_with_suggestions() {
    let (_dir, path) = write_config(MISTAKES);
    let output = hookgate(&["check-config", &path], &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!stderr.contains('\x1b'), "no colour when not a terminal:\n{stderr}");
    for expected in [
        format!("{path}:18:10: error: sources[0].verify: unknown value `githubb`"),
        "18 | verify = \"githubb\"".to_owned(),
        "   |          ^^^^^^^^^".to_owned(),
        "= help: did you mean `github`?".to_owned(),
        format!("{path}:11:1: error: dedup.dedup_windw: unknown key `dedup_windw`"),
        "= help: did you mean `window`?".to_owned(),
        format!("{path}:2:10: error: ingest.listen: port 99999 is out of range (0-65535)"),
        format!("{path}:3:12: error: ingest.deadline: not a duration"),
        "environment variable HOOKGATE_TEST_SURELY_UNSET is not set".to_owned(),
        format!("{path}: 13 errors and 0 warnings: hookgate would refuse to start"),
    ] {
        assert!(stderr.contains(&expected), "`{expected}` missing from:\n{stderr}");
    }
}

#[test]
fn the_tolerance_the_verifier_refuses_is_reported_once_the_source_parses() {
    let (_dir, path) = write_config(
        "[[sources]]\nname = \"stripe\"\nverify = \"stripe\"\nsecrets = [\"env:HG_CE_STRIPE\"]\ntolerance = \"0s\"\n",
    );
    let (code, report) = json_report(&path, &[("HG_CE_STRIPE", "whsec")]);
    assert_eq!(code, Some(2));
    let diagnostic = &report["diagnostics"][0];
    assert_eq!(diagnostic["key"], "sources[0].tolerance");
    assert_eq!(diagnostic["location"]["line"], 5);
    assert_eq!(diagnostic["found"], "\"0s\"");
}

#[test]
fn environment_overrides_are_named_instead_of_a_line() {
    let (_dir, path) = write_config("[[sources]]\nname = \"a\"\nverify = \"none\"\n");
    let env = [
        ("HOOKGATE_INGEST__LISTEN", "127.0.0.1:99999"),
        ("HOOKGATE_DEDUP__WINDW", "1h"),
    ];
    let (code, report) = json_report(&path, &env);
    assert_eq!(code, Some(2));
    let diagnostics = report["diagnostics"].as_array().unwrap();
    let listen = diagnostics.iter().find(|d| d["key"] == "ingest.listen").unwrap();
    assert_eq!(listen["env"], "HOOKGATE_INGEST__LISTEN");
    assert_eq!(listen["location"], Value::Null);
    assert_eq!(listen["found"], "\"127.0.0.1:99999\"");
    let window = diagnostics.iter().find(|d| d["key"] == "dedup.windw").unwrap();
    assert_eq!(
        (&window["env"], &window["suggestion"]),
        (&Value::from("HOOKGATE_DEDUP__WINDW"), &Value::from("window"))
    );
}

#[test]
fn a_valid_file_gets_a_summary_with_warnings_and_no_secret() {
    let (_dir, path) = write_config(
        "[kafka]\nbrokers = \"127.0.0.1:9092\"\n[dedup]\nredis = \"redis://u:redis-pw@127.0.0.1:6379\"\n\
         [[sources]]\nname = \"gh\"\nverify = \"github\"\nsecrets = [\"env:HG_CE_GH\", \"literal-secret-value\"]\n\
         topic = \"webhooks.github\"\n",
    );
    let env = [
        ("HG_CE_GH", "env-secret-value"),
        ("HOOKGATE_METRICS__LISTEN", "127.0.0.1:9999"),
    ];
    let output = hookgate(&["check-config", &path], &env);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("warning: sources[0].secrets[1]: written literally"),
        "{stderr}"
    );
    for part in [
        "OK (1 source, 1 warning)",
        "metrics 127.0.0.1:9999",
        "127.0.0.1:9092",
        "gh (verify github) -> topic webhooks.github, secrets env:HG_CE_GH, literal",
        "redis redis://u:[redacted]@127.0.0.1:6379",
        "metrics.listen from HOOKGATE_METRICS__LISTEN",
    ] {
        assert!(stdout.contains(part), "`{part}` missing from:\n{stdout}");
    }
    for secret in ["literal-secret-value", "env-secret-value", "redis-pw"] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret), "{secret} shown");
    }
    let (code, report) = json_report(&path, &env);
    assert_eq!(
        (code, &report["valid"], &report["warnings"]),
        (Some(0), &Value::Bool(true), &Value::from(1))
    );
    assert_eq!(report["summary"]["sources"][0]["topic"], "webhooks.github");
}

#[test]
fn serve_refuses_a_broken_file_with_the_same_report() {
    let (_dir, path) = write_config(MISTAKES);
    let output = hookgate(&["serve", "--config", &path], &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    for line in [
        ":2:10: error: ingest.listen",
        ":18:10: error: sources[0].verify",
        "13 errors",
    ] {
        assert!(stderr.contains(line), "`{line}` missing from:\n{stderr}");
    }
}

#[test]
fn syntax_errors_do_not_hide_the_rest_of_the_file() {
    let (_dir, path) = write_config(
        "[ingest]\nlisten = 127.0.0.1:8080\ndeadline = \"soon\"\n[[sources]]\nname = \"a\"\nverify = github\n",
    );
    let (code, report) = json_report(&path, &[]);
    assert_eq!(code, Some(2));
    let found: Vec<(&str, u64)> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["key"].as_str().unwrap(), d["location"]["line"].as_u64().unwrap()))
        .collect();
    assert_eq!(found, [("", 2), ("ingest.deadline", 3), ("", 6)], "{report:#}");
}

/// `[sources.reconcile]` mistakes; the comment on each line says which.
const RECONCILE_MISTAKES: &str = r#"[[sources]]
name = "gh"
verify = "github"
secrets = ["env:HG_CE_SECRET"]
[sources.reconcile]                 # 5  hook missing
token = "env:HG_CE_SECRET"
interval = "0s"                     # 7  too short
types = ["push"]                    # 8  stripe only

[[sources]]
name = "stripe"
verify = "stripe"
secrets = ["env:HG_CE_SECRET"]
[sources.reconcile]
api = "http://api.example.com"      # 15 plain http off loopback
token = "env:HG_CE_SECRET"
dryrun = true                       # 17 unknown key, did you mean dry_run

[[sources]]
name = "shop"
verify = "shopify"
secrets = ["env:HG_CE_SECRET"]
[sources.reconcile]                 # 23 not a reconcilable provider
token = "env:HG_CE_UNSET"           # 24 unset secret
"#;

#[test]
fn reconcile_tables_are_checked_key_by_key() {
    let (_dir, path) = write_config(RECONCILE_MISTAKES);
    let (code, report) = json_report(&path, &[("HG_CE_SECRET", "s")]);
    assert_eq!(code, Some(2));
    let found: Vec<(String, u64)> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["key"].as_str().unwrap().to_owned(),
                d["location"]["line"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert!(
        found.iter().any(|(key, _)| key == "sources[0].reconcile.hook"),
        "{found:#?}"
    );
    for (key, line) in [
        ("sources[0].reconcile.interval", 7),
        ("sources[0].reconcile.types", 8),
        ("sources[1].reconcile.api", 15),
        ("sources[1].reconcile.dryrun", 17),
        ("sources[2].reconcile.token", 24),
    ] {
        assert!(
            found.contains(&(key.to_owned(), line)),
            "{key} on line {line} missing from {found:#?}"
        );
    }
    let output = hookgate(&["check-config", &path], &[("HG_CE_SECRET", "s")]);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("did you mean `dry_run`?"), "{stderr}");
}

#[test]
fn a_valid_reconcile_table_passes() {
    let (_dir, path) = write_config(
        "[[sources]]\nname = \"gh\"\nverify = \"github\"\nsecrets = [\"env:HG_CE_SECRET\"]\n\
         [sources.reconcile]\nhook = \"orgs/octo/hooks/7\"\ntoken = \"env:HG_CE_SECRET\"\ninterval = \"10m\"\ndry_run = true\n",
    );
    let (code, report) = json_report(&path, &[("HG_CE_SECRET", "s")]);
    assert_eq!(code, Some(0), "{report}");
}
