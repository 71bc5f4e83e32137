//! The Kafka-protocol broker of the tests: Tansu with sqlite storage in a
//! temporary directory, which fault tests stop, freeze and restart.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A broker for one test: the shared one from the environment, or a private Tansu.
#[derive(Debug)]
pub enum Broker {
    /// `HOOKGATE_TEST_KAFKA`, started by tests/run.sh.
    Shared(String),
    /// A Tansu process owned by this test.
    Private(Tansu),
}

impl Broker {
    /// The shared broker when tests/run.sh started one, else a private Tansu.
    pub fn any() -> Broker {
        match std::env::var("HOOKGATE_TEST_KAFKA") {
            Ok(bootstrap) if !bootstrap.is_empty() => Broker::Shared(bootstrap),
            _ => Broker::Private(Tansu::start()),
        }
    }

    /// Bootstrap servers.
    pub fn bootstrap(&self) -> String {
        match self {
            Broker::Shared(bootstrap) => bootstrap.clone(),
            Broker::Private(tansu) => tansu.bootstrap(),
        }
    }
}

/// A private Tansu broker process.
#[derive(Debug)]
pub struct Tansu {
    /// Working directory holding tansu.db (the sqlite path is relative to it).
    dir: tempfile::TempDir,
    /// Loopback port it listens on (kept across restarts).
    port: u16,
    /// The running process, if any.
    child: Option<Child>,
}

fn tansu_binary() -> PathBuf {
    if let Ok(path) = std::env::var("TANSU_BIN") {
        return path.into();
    }
    let cargo_bin = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join(".cargo"));
    let candidate = cargo_bin.join("bin/tansu");
    if candidate.exists() {
        candidate
    } else {
        "tansu".into()
    }
}

impl Tansu {
    /// Starts Tansu on a free loopback port and waits until it accepts connections.
    pub fn start() -> Tansu {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = super::dead_port();
        let mut tansu = Tansu { dir, port, child: None };
        tansu.spawn();
        tansu
    }

    fn spawn(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("tansu.log"))
            .unwrap();
        let child = Command::new(tansu_binary())
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url, "--storage-engine", "sqlite://tansu.db"])
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("tansu must be installed: cargo install tansu --locked --features dynostore,libsql (tests/run.sh does it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Bootstrap servers.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Everything the broker process wrote, across restarts.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tansu.log")).unwrap_or_default()
    }

    /// Kills the broker (SIGKILL); its storage stays.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port with the same storage.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Freezes the broker process (SIGSTOP): connections stay open, nothing answers.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Resumes a frozen broker (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().expect("kill");
        assert!(status.success());
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.resume();
        }
        self.kill();
    }
}
