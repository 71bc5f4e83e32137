//! Soak benchmark: a fixed open-loop rate for minutes against `hookgate
//! serve --role all` (indexer writing SQLite, then PostgreSQL, in the same
//! process as ingest), then the same rate against `--role ingest`, to show
//! whether the history slows the answers to senders.
//!
//! `cargo bench --bench soak` starts a broker per run (librdkafka's mock
//! cluster in a process of its own, 8 partitions; or Tansu with memory
//! storage), runs hookgate as a child process, and drives
//! it with the e2e benchmark's load generator (`benches/e2e/load.rs`:
//! signed ~1 KiB GitHub deliveries, latency counted from each request's
//! due time). Every window (30 s) it prints the window's ingest latency,
//! indexer lag, RSS, store size and CPU per thread group (from
//! `/proc/PID/task/*/stat`, grouped by thread name); at the end of a run
//! with history it waits until every 2xx is indexed, then looks each
//! delivery up in the store by its dedup key.
//!
//! Settings (environment): `SOAK_RATE` (requests/s, 5000), `SOAK_SECONDS`
//! (per run, 150), `SOAK_WINDOW` (seconds, 30), `SOAK_RUNS` (in order,
//! `sqlite,postgres,ingest`), `SOAK_RETENTION` (`query.retention`, 30d;
//! shorter than the run makes retention delete during it, and the final
//! lookup is then skipped), `SOAK_PG` (`postgres://postgres@127.0.0.1:5432`;
//! the run creates and drops the database `hookgate_soak`), `SOAK_DIR`
//! (where the SQLite file goes), `SOAK_BROKER` (`mock`, or `tansu`),
//! `SOAK_MOCK_PARTITIONS` (8), `SOAK_KAFKA_OPTIONS` (extra librdkafka
//! options for hookgate, `name=value,...`), `E2E_HOOKGATE_BIN` (another
//! hookgate build).

#[allow(dead_code, unreachable_pub)]
#[path = "../e2e/broker.rs"]
mod broker;
#[allow(dead_code, unreachable_pub)]
#[path = "../e2e/load.rs"]
mod load;
mod probe;
mod report;
#[allow(dead_code, unreachable_pub)]
#[path = "../e2e/server.rs"]
mod server;
mod store;

use std::sync::Arc;
use std::time::{Duration, Instant};

use broker::Broker;
use load::{Client, Deliveries, Phase};
use probe::ThreadCpu;
use report::{RunReport, Window};
use server::Server;
use store::SoakStore;

/// Read by the e2e server module (this binary never acts as a child process).
pub(crate) const ROLE_VAR: &str = "HOOKGATE_SOAK_ROLE";
/// Topic of every run (each run has a broker of its own).
const TOPIC: &str = "soak";
/// Unmeasured load before the first window (its deliveries are checked too).
const WARM_UP: Duration = Duration::from_secs(2);
/// Longest wait, after the load, for every 2xx to be indexed.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(120);

/// What the benchmark runs.
#[derive(Debug, Clone)]
struct Settings {
    /// Requests per second.
    rate: f64,
    /// Measured length of each run.
    duration: Duration,
    /// Length of one reported window.
    window: Duration,
    /// `sqlite`, `postgres`, `ingest`, in order.
    runs: Vec<String>,
    /// `query.retention`.
    retention: String,
    /// PostgreSQL server URL without a database.
    pg: String,
    /// `mock` (in a process of its own) or `tansu` (memory storage).
    broker: String,
    /// Partitions of the mock cluster's topic.
    mock_partitions: i32,
    /// Extra `[kafka.options]` for hookgate, `name=value` pairs separated by commas.
    kafka_options: String,
}

impl Settings {
    fn from_env() -> Settings {
        let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        let seconds = |name: &str, default: &str| Duration::from_secs_f64(var(name, default).parse().expect(name));
        Settings {
            rate: var("SOAK_RATE", "5000").parse().expect("SOAK_RATE"),
            duration: seconds("SOAK_SECONDS", "150"),
            window: seconds("SOAK_WINDOW", "30"),
            runs: var("SOAK_RUNS", "sqlite,postgres,ingest")
                .split(',')
                .map(|s| s.trim().to_owned())
                .collect(),
            retention: var("SOAK_RETENTION", "30d"),
            pg: var("SOAK_PG", "postgres://postgres@127.0.0.1:5432"),
            broker: var("SOAK_BROKER", "mock"),
            mock_partitions: var("SOAK_MOCK_PARTITIONS", "8").parse().expect("SOAK_MOCK_PARTITIONS"),
            kafka_options: var("SOAK_KAFKA_OPTIONS", ""),
        }
    }

    /// True when retention deletes events during the run.
    fn retention_in_run(&self) -> bool {
        humantime::parse_duration(&self.retention).is_ok_and(|r| r < self.duration + WARM_UP + CATCH_UP_LIMIT)
    }
}

fn main() -> std::process::ExitCode {
    if broker::serve_mock_process() {
        return std::process::ExitCode::SUCCESS;
    }
    // `cargo test --benches` runs this without --bench: no minutes-long load in a test run.
    if !std::env::args().any(|arg| arg == "--bench") {
        eprintln!("soak: a load benchmark; run it with `cargo bench --bench soak`");
        return std::process::ExitCode::SUCCESS;
    }
    let settings = Settings::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "soak: {} req/s for {:?} per run, windows of {:?}, runs {:?}, retention {}",
        settings.rate, settings.duration, settings.window, settings.runs, settings.retention
    );
    let reports: Vec<RunReport> = settings
        .runs
        .iter()
        .map(|kind| runtime.block_on(soak(kind, &settings)))
        .collect();
    let failed = reports.iter().any(|r| r.indexed.is_some_and(|i| i.missing > 0));
    report::summary(reports);
    if failed {
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}

/// One run: a broker, hookgate in the role `kind` asks for, the windows, the check.
async fn soak(kind: &str, settings: &Settings) -> RunReport {
    let broker = start_broker(settings);
    let store = match kind {
        "sqlite" => Some(SoakStore::sqlite()),
        "postgres" => Some(SoakStore::postgres(&settings.pg).await),
        "ingest" => None,
        other => panic!("SOAK_RUNS: unknown run `{other}` (sqlite, postgres, ingest)"),
    };
    let (role, extra) = match &store {
        Some(store) => (
            "all",
            format!(
                "\n[query]\nlisten = \"127.0.0.1:0\"\nstore = \"{}\"\nretention = \"{}\"\n",
                store.url(),
                settings.retention
            ),
        ),
        None => ("ingest", String::new()),
    };
    let extra = extra + &kafka_options_table(&settings.kafka_options);
    let server = Server::hookgate_with(&broker.bootstrap(), TOPIC, role, &extra);
    let name = format!(
        "--role {role}{}",
        store.as_ref().map(|s| format!(" ({})", s.name())).unwrap_or_default()
    );
    println!(
        "\nsoak: {name}, broker {}, hookgate pid {}",
        broker.name(),
        server.pid()
    );
    let client = Client::new(server.addr, Arc::new(Deliveries::new()));
    let mut run = RunReport::new(name);
    let warm_up = load::open_loop(&client, settings.rate, WARM_UP).await;
    let mut accepted: Vec<u64> = warm_up.accepted.iter().map(|a| a.delivery).collect();
    let mut sampler = Sampler::start(&server, &broker, accepted.len() as u64);
    let windows = (settings.duration.as_secs_f64() / settings.window.as_secs_f64()).ceil() as usize;
    for index in 0..windows {
        let phase = load::open_loop(&client, settings.rate, settings.window).await;
        accepted.extend(phase.accepted.iter().map(|a| a.delivery));
        let window = sampler.window(index, phase, &store).await;
        window.print();
        run.add(window);
    }
    client.close();
    if let Some(store) = store {
        finish_history(&mut run, &mut sampler, &store, &accepted, settings).await;
        store.remove().await;
    }
    run
}

/// The mock cluster in a process of its own, or Tansu with memory storage.
/// The mock cluster keeps ~5 MB per partition (8 partitions: ~6 s of traffic
/// at 5,000/s, beyond which a lagging indexer would find records trimmed)
/// and scans a partition's retained batches on every fetch, so more
/// partitions cost it more per fetch; Tansu lists every batch it ever
/// stored on every fetch (see benches/README.md).
fn start_broker(settings: &Settings) -> Broker {
    match settings.broker.as_str() {
        "tansu" => Broker::tansu_with("memory", &[TOPIC]).expect("soak: tansu is not installed (TANSU_BIN)"),
        "mock" => Broker::mock_process(TOPIC, settings.mock_partitions),
        other => panic!("SOAK_BROKER: unknown broker `{other}` (tansu, mock)"),
    }
}

/// `SOAK_KAFKA_OPTIONS` (`a=1,b=2`) as a `[kafka.options]` table, or nothing.
fn kafka_options_table(options: &str) -> String {
    let pairs: Vec<String> = options
        .split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').expect("SOAK_KAFKA_OPTIONS: name=value pairs");
            format!("\"{}\" = \"{}\"\n", name.trim(), value.trim())
        })
        .collect();
    if pairs.is_empty() {
        return String::new();
    }
    format!("\n[kafka.options]\n{}", pairs.concat())
}

/// After the load: waits until the indexer has caught up, then checks every 2xx in the store.
async fn finish_history(
    run: &mut RunReport,
    sampler: &mut Sampler<'_>,
    store: &SoakStore,
    accepted: &[u64],
    settings: &Settings,
) {
    let end = Instant::now();
    let total = accepted.len() as f64;
    while sampler.indexed().await < total && end.elapsed() < CATCH_UP_LIMIT {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    run.catch_up = Some(end.elapsed().as_secs_f64());
    if settings.retention_in_run() {
        println!("  retention shorter than the run: the lookup of every 2xx is skipped");
        return;
    }
    let indexed = store.check(accepted).await;
    println!(
        "  check: {} 2xx, {} found in the store, {} missing; all indexed {:.1} s after the load ended; longest receipt-to-indexed {:.2} s",
        accepted.len(),
        indexed.found,
        indexed.missing,
        run.catch_up.unwrap_or(f64::NAN),
        indexed.max_delay
    );
    run.indexed = Some(indexed);
}

/// Reads the gateway between windows.
struct Sampler<'a> {
    /// The gateway.
    server: &'a Server,
    /// The broker (its CPU).
    broker: &'a Broker,
    /// The gateway's metrics page.
    http: reqwest::Client,
    /// CPU per thread group at the previous window's end.
    cpu: ThreadCpu,
    /// Broker, load generator, whole-machine and stolen CPU seconds at the previous window's end.
    others: (f64, f64, f64, f64),
    /// 2xx answers so far.
    ok: u64,
    /// Retention deletions at the previous window's end.
    deleted: f64,
}

impl<'a> Sampler<'a> {
    fn start(server: &'a Server, broker: &'a Broker, ok: u64) -> Sampler<'a> {
        Sampler {
            server,
            broker,
            http: reqwest::Client::new(),
            cpu: ThreadCpu::read(server.pid()),
            others: Self::others(broker),
            ok,
            deleted: 0.0,
        }
    }

    fn others(broker: &Broker) -> (f64, f64, f64, f64) {
        let (machine, steal) = server::machine_seconds();
        (
            broker.cpu_seconds().unwrap_or(0.0),
            server::cpu_seconds_of("self", false),
            machine,
            steal,
        )
    }

    async fn page(&self) -> String {
        probe::scrape(&self.http, self.server.metrics.expect("metrics listener")).await
    }

    /// Events the indexer has stored so far.
    async fn indexed(&self) -> f64 {
        probe::metric_sum(&self.page().await, "hookgate_indexer_events_total")
    }

    async fn window(&mut self, index: usize, mut phase: Phase, store: &Option<SoakStore>) -> Window {
        self.ok += phase.ok();
        let page = self.page().await;
        let cpu = ThreadCpu::read(self.server.pid());
        let others = Self::others(self.broker);
        let deleted = probe::metric_sum(&page, "hookgate_retention_deleted_total");
        let window = Window {
            index,
            seconds: phase.elapsed.as_secs_f64(),
            ok: phase.ok(),
            errors: phase.errors(),
            p50: phase.quantile_ms(0.5),
            p99: phase.quantile_ms(0.99),
            p999: phase.quantile_ms(0.999),
            history: store.is_some(),
            lag: self.ok as f64 - probe::metric_sum(&page, "hookgate_indexer_events_total"),
            deleted: deleted - self.deleted,
            rss: self.server.rss().0,
            store_bytes: match store {
                Some(store) => store.size().await,
                None => 0,
            },
            cpu: cpu.since(&self.cpu),
            broker_cpu: others.0 - self.others.0,
            generator_cpu: others.1 - self.others.1,
            machine_cpu: others.2 - self.others.2,
            steal: others.3 - self.others.3,
            latencies: std::mem::take(&mut phase.latencies),
        };
        (self.cpu, self.others, self.deleted) = (cpu, others, deleted);
        window
    }
}
