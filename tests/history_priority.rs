//! `hookgate serve --role all`: the history runs on threads of its own,
//! 10 nice levels below ingest's, and so do the threads it starts (SQLite's
//! connection workers, the indexer's librdkafka threads), so that under CPU
//! pressure the kernel serves webhooks first. Linux only (`/proc`).
#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{wait_until, Gateway};

/// `(thread name, nice value)` of every thread of `pid`.
fn threads(pid: u32) -> Vec<(String, i64)> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    tasks
        .flatten()
        .filter_map(|task| {
            let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
            let open = stat.find('(')?;
            let (name, rest) = stat[open + 1..].rsplit_once(')')?;
            // After the name: state is field 3; nice is field 19, the 17th after the name.
            let nice = rest.split_whitespace().nth(16)?.parse().ok()?;
            Some((name.to_owned(), nice))
        })
        .collect()
}

/// The nice values seen per thread name prefix.
fn nice_of(threads: &[(String, i64)], prefix: &str) -> Vec<i64> {
    threads
        .iter()
        .filter(|(name, _)| name.starts_with(prefix))
        .map(|(_, nice)| *nice)
        .collect()
}

#[tokio::test]
async fn history_threads_run_ten_nice_levels_below_ingest() {
    let config =
        "[ingest]\nlisten = \"127.0.0.1:0\"\n[query]\nlisten = \"127.0.0.1:0\"\nstore = \"sqlite://history.db\"\n\
                  [metrics]\nlisten = \"127.0.0.1:0\"\n[[sources]]\nname = \"a\"\nverify = \"none\"\n";
    let gateway = Gateway::start(config, "all");
    let pid = gateway.pid();
    // The indexer's consumer and the store's connections are up once the query API listens; wait for both kinds.
    wait_until(Duration::from_secs(30), "the history's threads", || {
        let seen = threads(pid);
        std::future::ready(!nice_of(&seen, "sqlx-sqlite").is_empty() && !nice_of(&seen, "hg-history").is_empty())
    })
    .await;
    let seen = threads(pid);
    let main = nice_of(&seen, "hg-main");
    assert!(!main.is_empty(), "ingest's runtime threads are named: {seen:?}");
    let own = main[0];
    assert!(
        main.iter().all(|n| *n == own),
        "every ingest thread at the process's priority: {seen:?}"
    );
    let expected = (own + 10).min(19);
    let by_group: BTreeMap<&str, Vec<i64>> = ["hg-history", "sqlx-sqlite"]
        .into_iter()
        .map(|prefix| (prefix, nice_of(&seen, prefix)))
        .collect();
    for (group, nices) in &by_group {
        assert!(
            nices.iter().all(|n| *n == expected),
            "{group} threads at nice {expected}: {seen:?}"
        );
    }
}
