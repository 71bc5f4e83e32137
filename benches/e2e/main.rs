//! End-to-end load benchmark: hookgate against a bare HTTP-to-Kafka
//! forwarder (the baseline), on the same broker in the same run.
//!
//! `cargo bench --bench e2e` starts the mock cluster (and Tansu, when
//! installed), runs both servers as child processes on loopback, drives them
//! with the same load generator (closed loop for the peak, open loop at
//! fixed fractions of the baseline's peak for latency), reads CPU time and
//! RSS from /proc, samples the core-to-core round trip during each peak
//! round (`cores`), reads every topic back to check that each 2xx has its
//! record, measures memory per held dedup key, and prints the tables.
//!
//! Settings (environment): `E2E_BROKERS` (`mock,tansu`), `E2E_SECONDS`
//! (open-loop round length, 5), `E2E_OPEN_ROUNDS` (open-loop rounds per rate
//! and server, interleaved, pooled: 3), `E2E_PEAK_SECONDS` (4), `E2E_PEAK_ROUNDS`
//! (7), `E2E_CONNECTIONS` (closed-loop connections, 1024: enough to make
//! the servers, not `linger.ms`, the limit), `E2E_RATES` (fractions of the
//! baseline peak, `0.25,0.5,0.75`). On Tansu, whose sqlite storage is the
//! bottleneck and slow to read back, the run is shorter: one 3 s peak round
//! with at most 256 connections and a 3 s phase at 50% only, after one peak
//! round of the baseline writing hookgate's four record headers, as a
//! reference (Tansu stores each record header as a row of its own). `E2E_BASELINE_HEADERS=1` makes the baseline send four
//! record headers like hookgate's (to attribute a broker's per-header cost);
//! `E2E_HOOKGATE_MINIMAL=1` runs hookgate with verification, dedup and
//! quotas off (to attribute what the pipeline steps cost).

mod baseline;
mod broker;
mod check;
mod cores;
mod dedup_memory;
mod load;
mod report;
mod server;

use std::sync::Arc;
use std::time::Duration;

use broker::Broker;
use load::{Client, Deliveries, Phase};
use report::{BrokerReport, Measured, ServerReport};
use server::Server;

/// Environment variable that makes this binary act as one of its child processes.
pub(crate) const ROLE_VAR: &str = "HOOKGATE_E2E_ROLE";
/// Topic the baseline writes to.
const BASELINE_TOPIC: &str = "e2e-baseline";
/// Topic hookgate writes to.
const HOOKGATE_TOPIC: &str = "e2e-hookgate";
/// Topic of the baseline writing hookgate's record headers (Tansu only).
const REFERENCE_TOPIC: &str = "e2e-baseline-headers";
/// Unmeasured open-loop load per server before the rounds at each rate.
const OPEN_LOOP_WARM_UP: Duration = Duration::from_secs(1);

/// What the run does on one broker.
#[derive(Debug, Clone)]
struct Settings {
    brokers: Vec<String>,
    open_seconds: Duration,
    open_rounds: usize,
    peak_seconds: Duration,
    peak_rounds: usize,
    connections: usize,
    rates: Vec<f64>,
}

impl Settings {
    fn from_env() -> Settings {
        let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        let seconds = |name: &str, default: &str| Duration::from_secs_f64(var(name, default).parse().expect(name));
        Settings {
            brokers: var("E2E_BROKERS", "mock,tansu")
                .split(',')
                .map(str::trim)
                .map(str::to_owned)
                .collect(),
            open_seconds: seconds("E2E_SECONDS", "5"),
            open_rounds: var("E2E_OPEN_ROUNDS", "3").parse().expect("E2E_OPEN_ROUNDS"),
            peak_seconds: seconds("E2E_PEAK_SECONDS", "4"),
            peak_rounds: var("E2E_PEAK_ROUNDS", "7").parse().expect("E2E_PEAK_ROUNDS"),
            connections: var("E2E_CONNECTIONS", "1024").parse().expect("E2E_CONNECTIONS"),
            rates: var("E2E_RATES", "0.25,0.5,0.75")
                .split(',')
                .map(|r| r.trim().parse().expect("E2E_RATES"))
                .collect(),
        }
    }

    /// The shorter plan for Tansu: it is the bottleneck (so fewer connections
    /// do), and every record written has to be read back from sqlite.
    fn for_tansu(&self) -> Settings {
        Settings {
            peak_rounds: 1,
            peak_seconds: self.peak_seconds.min(Duration::from_secs(3)),
            open_seconds: self.open_seconds.min(Duration::from_secs(3)),
            open_rounds: 1,
            connections: self.connections.min(256),
            rates: vec![0.5],
            ..self.clone()
        }
    }
}

fn main() -> std::process::ExitCode {
    match std::env::var(ROLE_VAR).as_deref() {
        Ok("baseline") => {
            baseline::run();
            std::process::ExitCode::SUCCESS
        }
        Ok("dedup-memory") => {
            dedup_memory::run();
            std::process::ExitCode::SUCCESS
        }
        // `cargo bench` passes --bench; `cargo test --benches` does not, and a
        // minutes-long load run has no place in a test run.
        _ if !std::env::args().any(|arg| arg == "--bench") => {
            eprintln!("e2e: a load benchmark; run it with `cargo bench --bench e2e`");
            std::process::ExitCode::SUCCESS
        }
        _ => orchestrate(),
    }
}

fn orchestrate() -> std::process::ExitCode {
    let settings = Settings::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let machine = report::MachineUse::start();
    cores::start();
    let mut reports = Vec::new();
    for kind in &settings.brokers {
        let broker = match kind.as_str() {
            "mock" => Broker::mock(&[BASELINE_TOPIC, HOOKGATE_TOPIC]),
            "tansu" => match Broker::tansu(&[BASELINE_TOPIC, HOOKGATE_TOPIC, REFERENCE_TOPIC]) {
                Some(broker) => broker,
                None => {
                    eprintln!("e2e: tansu is not installed; skipping it (cargo install tansu --locked --features dynostore,libsql)");
                    continue;
                }
            },
            other => panic!("unknown broker `{other}` in E2E_BROKERS: expected mock or tansu"),
        };
        eprintln!("e2e: broker {} at {}", broker.name(), broker.bootstrap());
        let plan = if kind == "tansu" {
            settings.for_tansu()
        } else {
            settings.clone()
        };
        // On Tansu the reference runs first, on the fresh broker, as the baseline does next.
        let reference = broker
            .is_tansu()
            .then(|| runtime.block_on(headered_reference(&broker, &plan)));
        let mut report = runtime.block_on(run_pair(&broker, &plan));
        report.broker_cpu = broker.cpu_seconds();
        report.headered_baseline = reference;
        reports.push(report);
    }
    eprintln!("e2e: measuring memory per held dedup key");
    let memory = dedup_memory::measure();
    let noise = machine.finish();
    let ok = report::print(&reports, &memory, &settings.describe(), &noise);
    if ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

impl Settings {
    fn describe(&self) -> String {
        format!(
            "closed loop: {} connections, {} rounds of {:?} per server, interleaved (the first of each pair alternating), the median counts; \
             open loop: {} rounds of {:?} per rate and server, interleaved, pooled",
            self.connections, self.peak_rounds, self.peak_seconds, self.open_rounds, self.open_seconds
        )
    }
}

/// One server with its client and what was measured.
struct Subject {
    server: Server,
    client: Arc<Client>,
    deliveries: Arc<Deliveries>,
    report: ServerReport,
}

impl Subject {
    fn new(server: Server) -> Subject {
        let deliveries = Arc::new(Deliveries::new());
        let client = Client::new(server.addr, deliveries.clone());
        let report = ServerReport::default();
        Subject {
            server,
            client,
            deliveries,
            report,
        }
    }

    /// Runs one phase, adding its 2xx deliveries to the read-back list; returns it with the CPU seconds it cost.
    async fn measure(&mut self, phase: impl std::future::Future<Output = Phase>) -> (Phase, f64) {
        let cpu = self.server.cpu_seconds();
        let phase = phase.await;
        let cpu = self.server.cpu_seconds() - cpu;
        self.report.accepted.extend_from_slice(&phase.accepted);
        self.report.errors += phase.errors();
        (phase, cpu)
    }

    /// Two seconds of closed loop, unmeasured: connections, producer and broker warm up.
    async fn warm_up(&mut self, settings: &Settings) {
        eprintln!("e2e: warming up {}", self.server.name);
        let client = self.client.clone();
        self.measure(load::closed_loop(&client, settings.connections, Duration::from_secs(2)))
            .await;
    }

    /// One closed-loop round of `settings.peak_seconds` (`round` counts from 1), logged.
    async fn peak_round(&mut self, settings: &Settings, round: usize) -> Measured {
        let client = self.client.clone();
        let started = std::time::Instant::now();
        let (phase, cpu) = self
            .measure(load::closed_loop(&client, settings.connections, settings.peak_seconds))
            .await;
        let round_trip = cores::round_trip_between(started, std::time::Instant::now());
        eprintln!(
            "e2e: {} peak round {round}: {:.0} req/s; answers {:?}, {} unanswered; core-to-core round trip {}",
            self.server.name,
            phase.rate(),
            phase.statuses,
            phase.failed,
            report::round_trip_text(round_trip)
        );
        Measured {
            core_round_trip: round_trip,
            ..Measured::of(phase, cpu, 0.0)
        }
    }
}

/// The order in which the servers take round `round` (counted from 1): reversed
/// every other round, so that neither server always runs right after the
/// other and a drift of the machine's speed within a pair of rounds cancels out.
fn turns(servers: usize, round: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..servers).collect();
    if round % 2 == 0 {
        order.reverse();
    }
    order
}

/// One peak round of the baseline writing hookgate's four record headers.
/// Tansu stores every record header as a row of its own, so against the bare
/// baseline hookgate also pays Tansu's cost of its headers; this reference
/// shows how much of the gap that is. Not read back.
async fn headered_reference(broker: &Broker, settings: &Settings) -> Measured {
    let mut subject = Subject::new(Server::baseline_with_headers(&broker.bootstrap(), REFERENCE_TOPIC));
    tokio::time::sleep(Duration::from_secs(2)).await;
    subject.warm_up(settings).await;
    let measured = subject.peak_round(settings, 1).await;
    subject.client.close();
    measured
}

/// Both servers at a fixed `rate` (`fraction` of the baseline's peak), in
/// `settings.open_rounds` interleaved rounds: each server's latencies are
/// pooled over its rounds, so a hiccup of the machine lands in one round of
/// one server rather than deciding a whole comparison.
async fn open_loop_rounds(subjects: &mut [Subject], rate: f64, fraction: f64, settings: &Settings) {
    let rate = rate.max(1.0);
    // One unmeasured second per server first (its 2xx are read back like the
    // others'): without it the first open-loop round after the peak rounds
    // was the slowest of its rate in every run (p99 14-42 ms against 8-10 ms
    // in the other rounds), and it was always the baseline's.
    for i in turns(subjects.len(), 1) {
        let client = subjects[i].client.clone();
        subjects[i]
            .measure(load::open_loop(&client, rate, OPEN_LOOP_WARM_UP))
            .await;
    }
    let mut pooled: Vec<(Phase, f64)> = subjects.iter().map(|_| (Phase::default(), 0.0)).collect();
    for round in 1..=settings.open_rounds {
        for i in turns(subjects.len(), round) {
            let (subject, (pool, pool_cpu)) = (&mut subjects[i], &mut pooled[i]);
            let client = subject.client.clone();
            let (mut phase, cpu) = subject
                .measure(load::open_loop(&client, rate, settings.open_seconds))
                .await;
            eprintln!(
                "e2e: {} at {rate:.0} req/s, round {round}: p50 {:.2} ms, p99 {:.2} ms; answers {:?}, {} unanswered, samples {:?}",
                subject.server.name,
                phase.quantile_ms(0.5),
                phase.quantile_ms(0.99),
                phase.statuses,
                phase.failed,
                phase.samples
            );
            pool.absorb(phase);
            *pool_cpu += cpu;
        }
    }
    for (subject, (pool, cpu)) in subjects.iter_mut().zip(pooled) {
        subject.report.fixed.push((fraction, Measured::of(pool, cpu, rate)));
    }
}

async fn run_pair(broker: &Broker, settings: &Settings) -> BrokerReport {
    let bootstrap = broker.bootstrap();
    let mut subjects = [
        Subject::new(Server::baseline(&bootstrap, BASELINE_TOPIC)),
        Subject::new(Server::hookgate(&bootstrap, HOOKGATE_TOPIC)),
    ];
    tokio::time::sleep(Duration::from_secs(2)).await;
    for subject in &mut subjects {
        subject.report.idle_rss = subject.server.rss().0;
    }
    for subject in &mut subjects {
        subject.warm_up(settings).await;
    }
    for round in 1..=settings.peak_rounds {
        for i in turns(subjects.len(), round) {
            let measured = subjects[i].peak_round(settings, round).await;
            subjects[i].report.rounds.push(measured);
        }
    }
    for subject in &mut subjects {
        subject.report.peak = report::median_round(&subject.report.rounds);
    }
    let baseline_peak = subjects[0].report.peak.rate;
    for &fraction in &settings.rates {
        open_loop_rounds(&mut subjects, baseline_peak * fraction, fraction, settings).await;
    }
    let mut marks = Vec::new();
    for topic in [BASELINE_TOPIC, HOOKGATE_TOPIC] {
        let bootstrap = bootstrap.clone();
        marks.push(
            tokio::task::spawn_blocking(move || check::watermarks(&bootstrap, topic))
                .await
                .expect("watermarks"),
        );
    }
    let mut reports = Vec::new();
    for ((subject, (topic, enveloped)), marks) in subjects
        .iter_mut()
        .zip([(BASELINE_TOPIC, false), (HOOKGATE_TOPIC, true)])
        .zip(marks)
    {
        subject.client.close();
        subject.report.alive = subject.server.alive();
        subject.report.peak_rss = subject.server.rss().1;
        subject.report.issued = subject.deliveries.issued();
        if let Some(metrics) = subject.server.metrics {
            subject.report.metrics = report::scrape_accepted(metrics).await;
        }
        eprintln!("e2e: reading back {topic}");
        let accepted = std::mem::take(&mut subject.report.accepted);
        let bootstrap = bootstrap.clone();
        let count = accepted.len() as u64;
        // Tansu's sqlite storage serves fetches of a big topic very slowly: its read-back is best effort.
        let time = if broker.is_tansu() {
            Duration::from_secs(20)
        } else {
            Duration::from_secs(120)
        };
        let readback = tokio::task::spawn_blocking(move || {
            let marks = marks?;
            check::readback(&bootstrap, topic, &marks, &accepted, enveloped, time)
        })
        .await
        .expect("read back");
        if let Err(error) = &readback {
            eprintln!("e2e: cannot read back {topic}: {error}");
        }
        subject.report.readback = Some(readback);
        subject.report.accepted_count = count;
        if !subject.report.alive {
            eprintln!("e2e: {} died; its log:\n{}", subject.server.name, subject.server.logs());
        }
        reports.push(std::mem::take(&mut subject.report));
    }
    BrokerReport {
        broker: broker.name(),
        servers: reports,
        broker_cpu: None,
        headered_baseline: None,
    }
}
