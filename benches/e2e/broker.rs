//! The brokers both servers write to: librdkafka's mock cluster (hookgate's
//! embedded broker, run in this process or in a child process of its own)
//! and, when installed, Tansu (a child process, as the integration tests run
//! it).

use std::io::BufRead;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use hookgate::publish::EmbeddedBroker;

/// Partitions of every benchmark topic.
pub(crate) const PARTITIONS: i32 = 3;

/// Environment variable that makes a benchmark binary act as a mock-cluster
/// process (its value: the topic and partitions, `topic:partitions`).
#[allow(dead_code)] // used by the soak benchmark only
pub(crate) const MOCK_PROCESS_VAR: &str = "HOOKGATE_BENCH_MOCK_BROKER";

/// A running broker.
pub(crate) enum Broker {
    /// The in-process mock cluster.
    Mock(EmbeddedBroker),
    /// The mock cluster in a child process (this benchmark binary, see [`serve_mock_process`]).
    #[allow(dead_code)] // used by the soak benchmark only
    MockProcess {
        child: Child,
        /// Closed on drop: the child's signal to stop.
        _stdin: ChildStdin,
        bootstrap: String,
    },
    /// A Tansu process and its storage directory.
    Tansu {
        /// `sqlite` or `memory`.
        storage: &'static str,
        child: Child,
        port: u16,
        _dir: tempfile::TempDir,
    },
}

impl Broker {
    /// The mock cluster with `topics` created.
    pub(crate) fn mock(topics: &[&str]) -> Broker {
        let topics: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
        Broker::Mock(EmbeddedBroker::start(&topics, PARTITIONS).expect("mock cluster"))
    }

    /// The mock cluster with `topic` of `partitions` in a child process, so
    /// that the CPU it spends serving producers and consumers is its own, as
    /// a broker's is, and not the load generator's.
    #[allow(dead_code)] // used by the soak benchmark only
    pub(crate) fn mock_process(topic: &str, partitions: i32) -> Broker {
        let mut child = Command::new(std::env::current_exe().expect("this benchmark's path"))
            .env(MOCK_PROCESS_VAR, format!("{topic}:{partitions}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the mock cluster process");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("child stdout"))
            .read_line(&mut line)
            .expect("mock cluster address");
        let bootstrap = line.trim().to_owned();
        assert!(!bootstrap.is_empty(), "the mock cluster process did not start");
        let stdin = child.stdin.take().expect("child stdin");
        Broker::MockProcess {
            child,
            _stdin: stdin,
            bootstrap,
        }
    }

    /// Tansu on a free loopback port with `topics` created, or `None` when it is not installed.
    pub(crate) fn tansu(topics: &[&str]) -> Option<Broker> {
        Self::tansu_with("sqlite", topics)
    }

    /// Tansu with `storage` (`sqlite`: records in a file of its temporary
    /// directory; `memory`: in its memory, which serves fetches fast enough
    /// for an indexer following the load).
    pub(crate) fn tansu_with(storage: &'static str, topics: &[&str]) -> Option<Broker> {
        let binary = tansu_binary()?;
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let log = std::fs::File::create(dir.path().join("tansu.log")).expect("tansu log");
        let child = Command::new(&binary)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                if storage == "memory" {
                    "memory://"
                } else {
                    "sqlite://tansu.db"
                },
            ])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start tansu");
        let broker = Broker::Tansu {
            storage,
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        for topic in topics {
            let status = Command::new(&binary)
                .args([
                    "topic",
                    "create",
                    topic,
                    "--partitions",
                    &PARTITIONS.to_string(),
                    "--broker",
                    &url,
                ])
                .stdout(Stdio::null())
                .status()
                .expect("tansu topic create");
            assert!(status.success(), "cannot create topic {topic} on tansu");
        }
        Some(broker)
    }

    /// Name in the report.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Broker::Mock(_) => "mock cluster",
            Broker::MockProcess { .. } => "mock cluster (own process)",
            Broker::Tansu { storage: "memory", .. } => "tansu (memory)",
            Broker::Tansu { .. } => "tansu (sqlite)",
        }
    }

    /// True for Tansu.
    pub(crate) fn is_tansu(&self) -> bool {
        matches!(self, Broker::Tansu { .. })
    }

    /// CPU seconds the broker used so far, when it is a process of its own.
    pub(crate) fn cpu_seconds(&self) -> Option<f64> {
        match self {
            Broker::Mock(_) => None,
            Broker::Tansu { child, .. } | Broker::MockProcess { child, .. } => {
                Some(crate::server::cpu_seconds_of(&child.id().to_string(), false))
            }
        }
    }

    /// Bootstrap servers.
    pub(crate) fn bootstrap(&self) -> String {
        match self {
            Broker::Mock(mock) => mock.bootstrap_servers().to_owned(),
            Broker::MockProcess { bootstrap, .. } => bootstrap.clone(),
            Broker::Tansu { port, .. } => format!("127.0.0.1:{port}"),
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Broker::Tansu { child, .. } | Broker::MockProcess { child, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Run in the child of [`Broker::mock_process`]: when [`MOCK_PROCESS_VAR`]
/// is set, starts the mock cluster, prints its bootstrap address, and keeps
/// it until stdin closes (so it also ends when the benchmark dies). Returns
/// false, doing nothing, when the variable is not set.
#[allow(dead_code)] // used by the soak benchmark only
pub(crate) fn serve_mock_process() -> bool {
    let Ok(spec) = std::env::var(MOCK_PROCESS_VAR) else {
        return false;
    };
    let (topic, partitions) = spec.rsplit_once(':').expect("topic:partitions");
    let broker =
        EmbeddedBroker::start(&[topic.to_owned()], partitions.parse().expect("partitions")).expect("mock cluster");
    println!("{}", broker.bootstrap_servers());
    // Nothing is ever written to stdin: this returns when it closes.
    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
    true
}

/// `TANSU_BIN`, else `tansu` in the cargo bin directory, else on the PATH.
fn tansu_binary() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("TANSU_BIN") {
        return Some(path.into());
    }
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join(".cargo"));
    let candidate = home.join("bin/tansu");
    if candidate.is_file() {
        return Some(candidate);
    }
    let found = Command::new("tansu")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    found.is_ok_and(|s| s.success()).then(|| PathBuf::from("tansu"))
}
