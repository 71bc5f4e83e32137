//! What the soak benchmark reads from the running gateway between windows:
//! CPU time per thread group (`/proc/PID/task/*/stat`, grouped by thread
//! name), resident memory, and counters from its metrics listener.

use std::collections::BTreeMap;
use std::net::SocketAddr;

/// CPU seconds per thread group of one process, at one moment.
#[derive(Debug, Clone, Default)]
pub(crate) struct ThreadCpu {
    /// Seconds by group (thread name without its trailing number).
    pub(crate) groups: BTreeMap<String, f64>,
    /// Seconds of the whole process (includes threads that have exited).
    pub(crate) total: f64,
}

impl ThreadCpu {
    /// Reads every live thread of `pid`.
    pub(crate) fn read(pid: u32) -> ThreadCpu {
        let mut groups = BTreeMap::new();
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten();
        for task in tasks.flatten() {
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            if let Some((name, seconds)) = thread_cpu(&stat) {
                *groups.entry(group_of(&name)).or_insert(0.0) += seconds;
            }
        }
        let total = crate::server::cpu_seconds_of(&pid.to_string(), false);
        ThreadCpu { groups, total }
    }

    /// CPU used between `earlier` and `self`, largest group first; threads
    /// that exited in between show up only in the total (as `other`).
    pub(crate) fn since(&self, earlier: &ThreadCpu) -> Vec<(String, f64)> {
        let mut used: Vec<(String, f64)> = self
            .groups
            .iter()
            .map(|(name, s)| (name.clone(), s - earlier.groups.get(name).copied().unwrap_or(0.0)))
            .filter(|(_, s)| *s > 0.005)
            .collect();
        let named: f64 = used.iter().map(|(_, s)| s).sum();
        let other = (self.total - earlier.total) - named;
        if other > 0.05 {
            used.push(("other".into(), other));
        }
        used.sort_by(|a, b| b.1.total_cmp(&a.1));
        used
    }
}

/// Name and user + system seconds from a `/proc/PID/task/TID/stat` line.
fn thread_cpu(stat: &str) -> Option<(String, f64)> {
    let open = stat.find('(')?;
    let (name, rest) = stat[open + 1..].rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((name.to_owned(), ticks as f64 / crate::server::clock_ticks_per_second()))
}

/// A thread's group: its name without the trailing number or separator
/// (`rdk:broker3` and `rdk:broker1` are one group, as are the sqlx workers).
fn group_of(name: &str) -> String {
    name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-' || c == '_')
        .to_owned()
}

/// The sum of every series of counter or gauge `name` in a Prometheus text exposition.
pub(crate) fn metric_sum(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The gateway's metrics page (empty when it does not answer).
pub(crate) async fn scrape(client: &reqwest::Client, addr: SocketAddr) -> String {
    let url = format!("http://{addr}/metrics");
    match client.get(url).send().await {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}
