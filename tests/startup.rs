//! SIGTERM while `hookgate serve` is still starting (connecting to Kafka,
//! Redis or PostgreSQL that accept the connection and then never answer)
//! ends the process at once, with exit status 0.
//!
//! hookgate runs as PID 1 in its container (deploy/Dockerfile), and the
//! kernel drops a signal sent to PID 1 that has no handler: a SIGTERM that
//! arrives before hookgate handles it is lost, and Kubernetes waits out the
//! grace period. The tests reproduce that by starting hookgate with SIGTERM
//! ignored (`trap '' TERM`, inherited across exec), as it is for PID 1
//! until a handler is installed.

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{create_topic, unique, Broker};

/// How long the process may take to exit after SIGTERM before the test gives up on it.
const EXIT_WAIT: Duration = Duration::from_secs(30);

/// A dependency that accepts connections and never says a word.
struct Unresponsive {
    /// The listening socket.
    listener: TcpListener,
}

impl Unresponsive {
    fn start() -> Unresponsive {
        Unresponsive {
            listener: TcpListener::bind("127.0.0.1:0").unwrap(),
        }
    }

    fn addr(&self) -> String {
        self.listener.local_addr().unwrap().to_string()
    }

    /// Blocks until hookgate connected; the connection stays open and silent.
    fn wait_for_a_connection(&self) -> std::net::TcpStream {
        self.listener.accept().expect("hookgate connects").0
    }
}

/// `hookgate serve --role ROLE` with `config`, SIGTERM ignored until it installs its own handler.
struct Starting {
    /// The process.
    child: Child,
    /// Holds the config file and the log.
    dir: tempfile::TempDir,
}

impl Starting {
    fn spawn(config: &str, role: &str) -> Starting {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hookgate.toml");
        std::fs::write(&path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("hookgate.log")).unwrap();
        let child = Command::new("sh")
            .args(["-c", "trap '' TERM; exec \"$0\" \"$@\""])
            .arg(env!("CARGO_BIN_EXE_hookgate"))
            .args(["serve", "--config", path.to_str().unwrap(), "--role", role])
            .current_dir(dir.path())
            .env("RUST_LOG", "info")
            .env_remove("HOOKGATE_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Starting { child, dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("hookgate.log")).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit.
    fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + EXIT_WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running after SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const LISTENERS: &str = "[ingest]\nlisten = \"127.0.0.1:0\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n";
const SOURCE: &str = "[[sources]]\nname = \"a\"\nverify = \"none\"\n";

/// Starts hookgate with `config`, waits until it connected to `dependency`, then sends SIGTERM.
fn sigterm_while_connecting(config: &str, role: &str, dependency: &Unresponsive, failure: &str) {
    let mut hookgate = Starting::spawn(config, role);
    let _held = dependency.wait_for_a_connection();
    let status = hookgate.terminate();
    let log = hookgate.log();
    assert!(status.success(), "{status}:\n{log}");
    assert!(log.contains("stopped during start-up"), "{log}");
    assert!(!log.contains(failure), "start-up ran its course instead:\n{log}");
}

#[test]
fn sigterm_while_connecting_to_kafka_ends_start_up() {
    let kafka = Unresponsive::start();
    let config = format!(
        "{LISTENERS}[query]\nlisten = \"127.0.0.1:0\"\n[kafka]\nbrokers = \"{}\"\n{SOURCE}",
        kafka.addr()
    );
    sigterm_while_connecting(&config, "ingest", &kafka, "listening");
}

#[test]
fn sigterm_while_connecting_to_redis_ends_start_up() {
    let broker = Broker::any();
    let topic = unique("startup");
    create_topic(&broker.bootstrap(), &topic, 1);
    let redis = Unresponsive::start();
    let config = format!(
        "{LISTENERS}[kafka]\nbrokers = \"{}\"\ntopic = \"{topic}\"\n[dedup]\nredis = \"redis://{}\"\n{SOURCE}",
        broker.bootstrap(),
        redis.addr()
    );
    sigterm_while_connecting(&config, "ingest", &redis, "cannot open the dedup store");
}

#[test]
fn sigterm_while_connecting_to_postgresql_ends_start_up() {
    let broker = Broker::any();
    let topic = unique("startup");
    create_topic(&broker.bootstrap(), &topic, 1);
    let postgres = Unresponsive::start();
    let config = format!(
        "[query]\nlisten = \"127.0.0.1:0\"\nstore = \"postgres://hookgate@{}/hookgate\"\nconsumer_group = \"{}\"\n\
         [metrics]\nlisten = \"127.0.0.1:0\"\n[kafka]\nbrokers = \"{}\"\ntopic = \"{topic}\"\n{SOURCE}",
        postgres.addr(),
        unique("startup"),
        broker.bootstrap()
    );
    sigterm_while_connecting(&config, "query", &postgres, "cannot start the history store");
}

/// Runs `hookgate serve` under `ulimit` (shell syntax, e.g. `-n 3000`) with
/// `config`; the child and its log file.
fn serve_with_ulimit(ulimit: &str, config: &str) -> (Child, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hookgate.toml");
    std::fs::write(&path, config).unwrap();
    let log = std::fs::File::create(dir.path().join("hookgate.log")).unwrap();
    let child = Command::new("sh")
        .args(["-c", &format!("ulimit {ulimit} && exec \"$0\" \"$@\"")])
        .arg(env!("CARGO_BIN_EXE_hookgate"))
        .args(["serve", "--config", path.to_str().unwrap(), "--role", "ingest"])
        .current_dir(dir.path())
        .env("RUST_LOG", "info")
        .env_remove("HOOKGATE_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    (child, dir)
}

#[test]
fn too_few_open_files_for_the_listeners_refuse_start_up_naming_the_key() {
    // 3000 descriptors cannot hold the default 10,000 webhook connections.
    let (mut child, dir) = serve_with_ulimit("-n 3000", &format!("{LISTENERS}{SOURCE}"));
    let deadline = Instant::now() + EXIT_WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running with too few descriptors");
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = std::fs::read_to_string(dir.path().join("hookgate.log")).unwrap();
    assert!(!status.success(), "{log}");
    assert!(log.contains("lower ingest.max_connections to at most"), "{log}");
    assert!(!log.contains("listening"), "{log}");
}

#[test]
fn the_soft_open_files_limit_is_raised_to_the_hard_limit() {
    let broker = Broker::any();
    let topic = unique("startup");
    create_topic(&broker.bootstrap(), &topic, 1);
    // A soft limit of 1024 could not hold 5,000 connections; the hard limit can.
    let hard: u64 = String::from_utf8(Command::new("sh").args(["-c", "ulimit -Hn"]).output().unwrap().stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap_or(u64::MAX);
    if hard < 10_000 {
        eprintln!("skipped: the hard limit ({hard}) is below what this test needs");
        return;
    }
    let config = format!(
        "[ingest]\nlisten = \"127.0.0.1:0\"\nmax_connections = 5000\n[metrics]\nlisten = \"127.0.0.1:0\"\n\
         [kafka]\nbrokers = \"{}\"\ntopic = \"{topic}\"\n{SOURCE}",
        broker.bootstrap()
    );
    let (mut child, dir) = serve_with_ulimit("-S -n 1024", &config);
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    let log = || std::fs::read_to_string(dir.path().join("hookgate.log")).unwrap_or_default();
    while !log().contains("listening") {
        assert!(child.try_wait().unwrap().is_none(), "exited:\n{}", log());
        assert!(Instant::now() < deadline, "did not start:\n{}", log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let open_files = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let numbers: Vec<&str> = open_files.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers[0], numbers[1], "soft = hard: {open_files}");
    let _ = child.kill();
    let _ = child.wait();
}
