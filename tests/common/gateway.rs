//! The `hookgate` binary under test: started with a config file on loopback
//! port 0, its listener addresses read from its log, stopped on drop.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookgate::config::{Config, SourceConfig};

/// A running hookgate process.
#[derive(Debug)]
pub struct Gateway {
    /// The process.
    child: Child,
    /// Directory holding the config file and the SQLite history.
    pub dir: tempfile::TempDir,
    /// Webhook listener, when the role runs ingest.
    pub ingest: Option<SocketAddr>,
    /// Query API, when the role runs query.
    pub query: Option<SocketAddr>,
    /// Metrics listener.
    pub metrics: SocketAddr,
    /// Everything the process wrote to stderr so far.
    log: Arc<Mutex<String>>,
}

/// Listener settings that put every listener on a free loopback port.
pub const LOOPBACK_LISTENERS: &str = r#"
[ingest]
listen = "127.0.0.1:0"
[query]
listen = "127.0.0.1:0"
store = "sqlite://history.db"
[metrics]
listen = "127.0.0.1:0"
"#;

/// Config text: [`LOOPBACK_LISTENERS`] with `ingest` lines added to
/// `[ingest]`, publishing to `topic` on `bootstrap`, then `rest`.
pub fn config(bootstrap: &str, topic: &str, ingest: &str, rest: &str) -> String {
    let listeners = LOOPBACK_LISTENERS.replace("[ingest]\n", &format!("[ingest]\n{ingest}\n"));
    format!("{listeners}\n[kafka]\nbrokers = \"{bootstrap}\"\ntopic = \"{topic}\"\n{rest}\n")
}

impl Gateway {
    /// Starts `hookgate serve --role ROLE` with `config` (TOML) and waits until it listens.
    pub fn start(config: &str, role: &str) -> Gateway {
        Self::start_with_env(config, role, &[])
    }

    /// Like [`Gateway::start`], with extra environment variables.
    pub fn start_with_env(config: &str, role: &str, env: &[(&str, &str)]) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hookgate.toml");
        std::fs::write(&path, config).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_hookgate"));
        command.args(["serve", "--config", path.to_str().unwrap(), "--role", role]);
        Self::spawn(command, dir, env)
    }

    /// Starts `hookgate serve` with no config file at all, in an empty directory.
    pub fn start_without_config(env: &[(&str, &str)]) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_hookgate"));
        command.arg("serve");
        Self::spawn(command, dir, env)
    }

    fn spawn(mut command: Command, dir: tempfile::TempDir, env: &[(&str, &str)]) -> Gateway {
        command
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command.env("RUST_LOG", "info").env_remove("HOOKGATE_CONFIG");
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn hookgate");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut gateway = Gateway {
            child,
            dir,
            ingest: None,
            query: None,
            metrics: "0.0.0.0:0".parse().unwrap(),
            log,
        };
        gateway.wait_until_listening();
        gateway
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let log = self.logs();
            if let Some(metrics) = listening(&log, "metrics") {
                self.metrics = metrics;
                self.ingest = listening(&log, "ingest");
                self.query = listening(&log, "query");
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("hookgate exited with {status} before listening:\n{log}");
            }
            assert!(Instant::now() < deadline, "hookgate did not start:\n{log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// URL of a path on the webhook listener.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.ingest.expect("ingest role"))
    }

    /// URL of a path on the query API.
    pub fn query_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.query.expect("query role"))
    }

    /// URL of a path on the metrics listener.
    pub fn metrics_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.metrics)
    }

    /// The source `name` as the gateway read it from its config file.
    pub fn source(&self, name: &str) -> SourceConfig {
        let text = std::fs::read_to_string(self.dir.path().join("hookgate.toml")).expect("a config file");
        let config = Config::from_toml(&text).expect("the gateway's config parses");
        let source = config.sources.into_iter().find(|s| s.name == name);
        source.unwrap_or_else(|| panic!("no source `{name}` configured"))
    }

    /// The text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let response = reqwest::get(self.metrics_url("/metrics")).await.unwrap();
        response.text().await.unwrap()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Open file descriptors of the process (Linux: entries of /proc/PID/fd).
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|entries| entries.count())
            .unwrap_or(0)
    }

    /// Resident memory of the process in KiB (Linux: VmRSS of /proc/PID/status).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let line = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .unwrap_or("VmRSS: 0 kB");
        line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0)
    }

    /// Lines of the log that report a panic.
    pub fn panics(&self) -> Vec<String> {
        self.logs()
            .lines()
            .filter(|l| l.contains("panicked"))
            .map(str::to_owned)
            .collect()
    }

    /// Everything logged so far.
    pub fn logs(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.wait(timeout)
    }

    /// Kills the process at once (SIGKILL).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit by itself.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "hookgate did not exit in time:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The values the label `label` takes in the series of `metric` in a `/metrics` text.
pub fn label_values(metrics: &str, metric: &str, label: &str) -> BTreeSet<String> {
    let (series, label) = (format!("{metric}{{"), format!("{label}=\""));
    metrics
        .lines()
        .filter(|l| l.starts_with(&series))
        .filter_map(|l| Some(l.split(&label).nth(1)?.split('"').next()?.to_owned()))
        .collect()
}

/// The address in a `listening role="ROLE" addr=...` log line.
fn listening(log: &str, role: &str) -> Option<SocketAddr> {
    let marker = format!("role=\"{role}\" addr=");
    let line = log.lines().find(|l| l.contains("listening") && l.contains(&marker))?;
    let rest = &line[line.find(&marker)? + marker.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill();
    }
}
