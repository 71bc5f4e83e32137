//! The servers under load, each a child process so that its CPU time and
//! memory can be read from `/proc/<pid>` apart from the load generator's:
//! hookgate itself and the baseline forwarder (this binary started again).

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The secret of the benchmark's GitHub source.
pub(crate) const GITHUB_SECRET: &str = "e2e-benchmark-secret";

/// A running server process.
pub(crate) struct Server {
    /// Name in the report.
    pub(crate) name: &'static str,
    /// The process.
    child: Child,
    /// Where it accepts webhooks.
    pub(crate) addr: SocketAddr,
    /// Its metrics listener (hookgate only).
    pub(crate) metrics: Option<SocketAddr>,
    /// Everything it wrote to stdout and stderr.
    log: Arc<Mutex<String>>,
    /// Keeps hookgate's config file alive.
    _dir: Option<tempfile::TempDir>,
}

/// The hookgate configuration of the benchmark: a GitHub source with HMAC
/// verification, dedup on (in process, the default bound), rate limits far
/// above the offered load, metrics on.
pub(crate) fn hookgate_config(bootstrap: &str, topic: &str) -> String {
    format!(
        r#"[ingest]
listen = "127.0.0.1:0"
# All load comes from one loopback address; production traffic comes from many.
max_connections_per_ip = 4096
max_in_flight_per_client = 5000

[kafka]
brokers = "{bootstrap}"
topic = "{topic}"

[dedup]
window = "72h"
max_keys = 5000000

[rate_limit]
per_client_ip = {{ per_second = 1000000, burst = 1000000 }}

[metrics]
listen = "127.0.0.1:0"

[[sources]]
name = "github"
verify = "github"
secrets = ["env:E2E_GITHUB_SECRET"]
rate_limit = {{ per_second = 1000000, burst = 1000000 }}
"#
    )
}

impl Server {
    /// Starts `hookgate serve --role ingest` publishing to `topic`.
    pub(crate) fn hookgate(bootstrap: &str, topic: &str) -> Server {
        Self::hookgate_with(bootstrap, topic, "ingest", "")
    }

    /// Starts `hookgate serve --role ROLE` publishing to `topic`, with
    /// `extra` appended to the benchmark's configuration (the soak
    /// benchmark's `[query]` table).
    pub(crate) fn hookgate_with(bootstrap: &str, topic: &str, role: &str, extra: &str) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("hookgate.toml");
        let mut config = hookgate_config(bootstrap, topic) + extra;
        if std::env::var("E2E_HOOKGATE_MINIMAL").is_ok_and(|v| v == "1") {
            // Attribution aid: the same gateway with verification, dedup and quotas off.
            config = config
                .replace("verify = \"github\"", "verify = \"none\"\ndedup_key = \"none\"")
                .replace("per_client_ip = { per_second = 1000000, burst = 1000000 }", "")
                .replace("rate_limit = { per_second = 1000000, burst = 1000000 }", "")
                .replace("secrets = [\"env:E2E_GITHUB_SECRET\"]", "");
        }
        std::fs::write(&path, config).expect("write config");
        // Attribution aid: another build of hookgate against the same baseline.
        let binary = std::env::var_os("E2E_HOOKGATE_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_hookgate").into());
        let mut command = Command::new(binary);
        command
            .args(["serve", "--role", role, "--config"])
            .arg(&path)
            .current_dir(dir.path())
            .env("E2E_GITHUB_SECRET", GITHUB_SECRET)
            .env("RUST_LOG", "info")
            .env_remove("HOOKGATE_CONFIG");
        let mut server = Self::spawn("hookgate", command, |log| listening(log, "role=\"ingest\" addr="));
        server.metrics = listening(&server.logs(), "role=\"metrics\" addr=");
        server._dir = Some(dir);
        server
    }

    /// Starts the baseline forwarder publishing to `topic`.
    pub(crate) fn baseline(bootstrap: &str, topic: &str) -> Server {
        Self::forwarder("baseline", bootstrap, topic, &[])
    }

    /// Starts the baseline writing four record headers shaped like hookgate's:
    /// the reference that tells a broker's per-header cost apart from hookgate's.
    pub(crate) fn baseline_with_headers(bootstrap: &str, topic: &str) -> Server {
        Self::forwarder(
            "baseline + record headers",
            bootstrap,
            topic,
            &[("E2E_BASELINE_HEADERS", "1")],
        )
    }

    fn forwarder(name: &'static str, bootstrap: &str, topic: &str, env: &[(&str, &str)]) -> Server {
        let mut command = Command::new(std::env::current_exe().expect("own path"));
        command
            .env(crate::ROLE_VAR, "baseline")
            .env("E2E_BROKERS", bootstrap)
            .env("E2E_TOPIC", topic)
            .envs(env.iter().copied());
        Self::spawn(name, command, |log| listening(log, "listening addr="))
    }

    fn spawn(name: &'static str, mut command: Command, addr: impl Fn(&str) -> Option<SocketAddr>) -> Server {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let log = Arc::new(Mutex::new(String::new()));
        collect(child.stdout.take().expect("stdout"), log.clone());
        collect(child.stderr.take().expect("stderr"), log.clone());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = log.lock().unwrap().clone();
            if let Some(addr) = addr(&text) {
                // The metrics listener is announced after the ingest listener.
                if name != "hookgate" || listening(&text, "role=\"metrics\" addr=").is_some() {
                    eprintln!("e2e: {name} (pid {}) listening on {addr}", child.id());
                    return Server {
                        name,
                        child,
                        addr,
                        metrics: None,
                        log,
                        _dir: None,
                    };
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{name} exited with {status} before listening:\n{text}");
            }
            assert!(Instant::now() < deadline, "{name} did not start listening:\n{text}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the process logged so far.
    pub(crate) fn logs(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// User + system CPU seconds of the process (all its threads) so far.
    pub(crate) fn cpu_seconds(&self) -> f64 {
        cpu_seconds_of(&self.child.id().to_string(), false)
    }

    /// Resident memory now and at its highest, in bytes.
    pub(crate) fn rss(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        (
            status_kib(&status, "VmRSS:") * 1024,
            status_kib(&status, "VmHWM:") * 1024,
        )
    }

    /// Process id (the soak benchmark reads its threads).
    #[allow(dead_code)]
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process runs.
    pub(crate) fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(stream: impl Read + Send + 'static, sink: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let mut log = sink.lock().unwrap();
            // Bounded: a server logging every failed request must not fill the memory.
            if log.len() < 1 << 20 {
                log.push_str(&line);
                log.push('\n');
            }
        }
    });
}

/// The address after `marker` on a log line.
fn listening(log: &str, marker: &str) -> Option<SocketAddr> {
    let line = log.lines().find(|l| l.contains("listening") && l.contains(marker))?;
    let rest = &line[line.find(marker)? + marker.len()..];
    rest.split_whitespace().next()?.trim_matches('"').parse().ok()
}

/// A `Name:   123 kB` line of /proc/<pid>/status, in KiB.
pub(crate) fn status_kib(status: &str, name: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// User + system CPU seconds of process `pid` (`self` for this one), with
/// those of its children it waited for when `children` is set.
pub(crate) fn cpu_seconds_of(pid: &str, children: bool) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may contain spaces):
    // utime, stime, cutime, cstime are the 14th to 17th fields of the line.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let wanted: &[usize] = if children { &[11, 12, 13, 14] } else { &[11, 12] };
    let ticks: u64 = wanted.iter().filter_map(|&i| fields.get(i)?.parse::<u64>().ok()).sum();
    ticks as f64 / clock_ticks_per_second()
}

/// Busy (everything but idle and iowait, steal included) and steal seconds
/// of all CPUs, from /proc/stat.
pub(crate) fn machine_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .map(|cpu| cpu.split_whitespace().skip(1).filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_default();
    let hz = clock_ticks_per_second();
    let at = |i: usize| ticks.get(i).copied().unwrap_or(0.0) / hz;
    // user nice system idle iowait irq softirq steal
    (at(0) + at(1) + at(2) + at(5) + at(6) + at(7), at(7))
}

/// The kernel's clock tick (USER_HZ): `getconf CLK_TCK`, 100 when it cannot be asked.
pub(crate) fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok()?.trim().parse().ok())
            .unwrap_or(100.0)
    })
}
