//! The figures of a run and the tables printed at its end (Markdown, so
//! benches/README.md can take them as they are).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::check::Readback;
use crate::dedup_memory::Measured as DedupMemory;
use crate::load::Phase;

/// The performance targets (README, "Performance").
const PEAK_RATIO_TARGET: f64 = 0.88;
const P99_RATIO_TARGET: f64 = 1.2;
const IDLE_RSS_TARGET: u64 = 30 << 20;

/// The figures of one phase.
#[derive(Debug, Default, Clone)]
pub(crate) struct Measured {
    /// Offered rate (open loop), 0 for closed loop.
    pub(crate) offered: f64,
    /// 2xx answers per second.
    pub(crate) rate: f64,
    /// Latency quantiles, milliseconds.
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) p999: f64,
    /// Server CPU seconds per 10,000 2xx answers.
    pub(crate) cpu_per_10k: f64,
    /// Mean core-to-core round trip sampled during the phase, ns, and the
    /// number of samples (closed-loop rounds only; see `cores`).
    pub(crate) core_round_trip: Option<(f64, usize)>,
}

impl Measured {
    pub(crate) fn of(mut phase: Phase, cpu: f64, offered: f64) -> Measured {
        Measured {
            offered,
            rate: phase.rate(),
            p50: phase.quantile_ms(0.5),
            p99: phase.quantile_ms(0.99),
            p999: phase.quantile_ms(0.999),
            cpu_per_10k: cpu / (phase.ok().max(1) as f64) * 10_000.0,
            core_round_trip: None,
        }
    }
}

/// Everything measured of one server on one broker.
#[derive(Debug, Default)]
pub(crate) struct ServerReport {
    pub(crate) idle_rss: u64,
    pub(crate) peak_rss: u64,
    /// The closed-loop round with the median rate.
    pub(crate) peak: Measured,
    /// Every closed-loop round, in the order run (interleaved with the other server's).
    pub(crate) rounds: Vec<Measured>,
    /// (fraction of the baseline peak, figures).
    pub(crate) fixed: Vec<(f64, Measured)>,
    /// Deliveries answered 2xx over the whole run (emptied once read back).
    pub(crate) accepted: Vec<crate::load::Acked>,
    pub(crate) accepted_count: u64,
    pub(crate) issued: u64,
    pub(crate) errors: u64,
    pub(crate) readback: Option<Result<Readback, rdkafka::error::KafkaError>>,
    /// `hookgate_requests_total{outcome="accepted"}` at the end (hookgate only).
    pub(crate) metrics: Option<f64>,
    pub(crate) alive: bool,
}

/// Both servers on one broker.
#[derive(Debug)]
pub(crate) struct BrokerReport {
    pub(crate) broker: &'static str,
    /// Baseline first, hookgate second.
    pub(crate) servers: Vec<ServerReport>,
    /// CPU seconds of the broker process over the run (Tansu only; the mock cluster runs in this process).
    pub(crate) broker_cpu: Option<f64>,
    /// Peak of the baseline writing hookgate's record headers (Tansu only), a reference.
    pub(crate) headered_baseline: Option<Measured>,
}

/// What the whole machine did during the run, to tell a quiet run from a disturbed one.
#[derive(Debug)]
pub(crate) struct MachineUse {
    started: std::time::Instant,
    busy: f64,
    steal: f64,
    ours: f64,
}

impl MachineUse {
    /// Readings at the start of the run.
    pub(crate) fn start() -> MachineUse {
        let (busy, steal) = crate::server::machine_seconds();
        MachineUse {
            started: std::time::Instant::now(),
            busy,
            steal,
            ours: crate::server::cpu_seconds_of("self", true),
        }
    }

    /// One line on CPU time used by other processes and stolen by the hypervisor since `start`.
    pub(crate) fn finish(&self) -> String {
        let (busy, steal) = crate::server::machine_seconds();
        // Children (servers, Tansu, helpers) were all waited for: their time is in ours.
        let ours = crate::server::cpu_seconds_of("self", true) - self.ours;
        let wall = self.started.elapsed().as_secs_f64();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let others = (busy - self.busy - ours).max(0.0);
        format!(
            "run: {wall:.0} s on {cores} cores; this benchmark and its processes used {ours:.0} CPU-s, \
             other processes {others:.0} CPU-s ({:.0}% of the machine), hypervisor steal {:.0} CPU-s",
            100.0 * others / (wall * cores),
            steal - self.steal
        )
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

/// The round with the median rate (the upper one of an even count).
pub(crate) fn median_round(rounds: &[Measured]) -> Measured {
    let mut sorted = rounds.to_vec();
    sorted.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    sorted.get(sorted.len() / 2).cloned().unwrap_or_default()
}

/// The median of hookgate's rate over the baseline's, round by round: each
/// pair ran back to back, so slow drifts of the machine's speed cancel out.
fn paired_peak_ratio(base: &[Measured], hook: &[Measured]) -> f64 {
    let mut ratios: Vec<f64> = base.iter().zip(hook).map(|(b, h)| h.rate / b.rate).collect();
    ratios.sort_by(f64::total_cmp);
    match ratios.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => ratios[n / 2],
        n => (ratios[n / 2 - 1] + ratios[n / 2]) / 2.0,
    }
}

fn rates(rounds: &[Measured]) -> String {
    rounds
        .iter()
        .map(|r| format!("{:.0}", r.rate))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `52 ns (4 samples)`, or `not sampled`.
pub(crate) fn round_trip_text(round_trip: Option<(f64, usize)>) -> String {
    match round_trip {
        Some((nanos, samples)) => format!("{nanos:.0} ns ({samples} samples)"),
        None => "not sampled".to_owned(),
    }
}

/// Each round's mean core-to-core round trip in ns (`-` where none was sampled).
fn round_trips(rounds: &[Measured]) -> String {
    rounds
        .iter()
        .map(|r| {
            r.core_round_trip
                .map_or("-".to_owned(), |(nanos, _)| format!("{nanos:.0}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn check(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "MISSED"
    }
}

/// Prints the tables; false when a record is missing or a server died.
pub(crate) fn print(reports: &[BrokerReport], memory: &DedupMemory, settings: &str, machine: &str) -> bool {
    let mut sound = true;
    println!("\n## hookgate vs. baseline ({settings})\n");
    println!("{machine}\n");
    for report in reports {
        let [base, hook] = &report.servers[..] else { continue };
        println!("### broker: {}\n", report.broker);
        println!("| | baseline | hookgate | hookgate / baseline |");
        println!("|---|---:|---:|---:|");
        let peak_ratio = paired_peak_ratio(&base.rounds, &hook.rounds);
        println!(
            "| peak (closed loop, median round), req/s | {:.0} | {:.0} | {:.3} ({} >= {PEAK_RATIO_TARGET}; median of the rounds' ratios) |",
            base.peak.rate,
            hook.peak.rate,
            peak_ratio,
            check(peak_ratio >= PEAK_RATIO_TARGET)
        );
        println!(
            "| closed-loop rounds, req/s | {} | {} | |",
            rates(&base.rounds),
            rates(&hook.rounds)
        );
        println!(
            "| core-to-core round trip during each round, ns | {} | {} | a VM's host moving the two vCPUs apart shows as a several-fold jump |",
            round_trips(&base.rounds),
            round_trips(&hook.rounds)
        );
        if let Some(reference) = &report.headered_baseline {
            println!(
                "| reference: peak of the baseline writing hookgate's 4 record headers, req/s (CPU s per 10k) | {:.0} ({:.3}) | {:.0} ({:.3}) | {:.2} against the same record headers (CPU {:.2}) |",
                reference.rate,
                reference.cpu_per_10k,
                hook.peak.rate,
                hook.peak.cpu_per_10k,
                hook.peak.rate / reference.rate,
                hook.peak.cpu_per_10k / reference.cpu_per_10k
            );
        }
        println!(
            "| CPU s per 10k requests at peak | {:.3} | {:.3} | {:.2} |",
            base.peak.cpu_per_10k,
            hook.peak.cpu_per_10k,
            hook.peak.cpu_per_10k / base.peak.cpu_per_10k
        );
        println!(
            "| p50 / p99 / p99.9 at peak, ms | {} | {} | |",
            quantiles(&base.peak),
            quantiles(&hook.peak)
        );
        for ((fraction, b), (_, h)) in base.fixed.iter().zip(&hook.fixed) {
            let ratio = h.p99 / b.p99;
            let mark = if (*fraction - 0.5).abs() < 1e-9 {
                format!(" ({} <= {P99_RATIO_TARGET})", check(ratio <= P99_RATIO_TARGET))
            } else {
                String::new()
            };
            println!(
                "| p50 / p99 / p99.9 at {:.0} req/s ({:.0}% of baseline peak), ms | {} | {} | p99 {:.3}{mark} |",
                b.offered,
                fraction * 100.0,
                quantiles(b),
                quantiles(h),
                ratio
            );
            println!(
                "| CPU s per 10k requests at {:.0} req/s | {:.3} | {:.3} | {:.2} |",
                b.offered,
                b.cpu_per_10k,
                h.cpu_per_10k,
                h.cpu_per_10k / b.cpu_per_10k
            );
        }
        println!(
            "| idle RSS | {} | {} ({} < 30 MiB) | |",
            mib(base.idle_rss),
            mib(hook.idle_rss),
            check(hook.idle_rss < IDLE_RSS_TARGET)
        );
        println!(
            "| peak RSS | {} | {} | {:.2} |",
            mib(base.peak_rss),
            mib(hook.peak_rss),
            hook.peak_rss as f64 / base.peak_rss as f64
        );
        println!(
            "| requests sent / non-2xx or unanswered | {} / {} | {} / {} | |",
            base.issued, base.errors, hook.issued, hook.errors
        );
        for server in [base, hook] {
            sound &= server.alive;
            // A read-back that could not finish (Tansu) proves nothing either way; a record found missing, or an
            // offset that two answers share or that lies past the partition's end, fails the run.
            if let Some(Ok(readback)) = &server.readback {
                sound &= readback.bad_offsets == 0 && (readback.missing == 0 || !readback.complete);
            }
        }
        println!(
            "| 2xx answered / found in the topic / trimmed by retention / **missing** | {} | {} | |\n",
            readback_cell(base),
            readback_cell(hook)
        );
        if let Some(accepted) = hook.metrics {
            println!("hookgate_requests_total{{outcome=\"accepted\"}} at the end: {accepted:.0}\n");
        }
        if let Some(cpu) = report.broker_cpu {
            println!("broker process CPU over the run: {cpu:.1} s\n");
        }
    }
    print_memory(memory);
    sound
}

fn quantiles(m: &Measured) -> String {
    format!("{:.2} / {:.2} / {:.2}", m.p50, m.p99, m.p999)
}

fn readback_cell(server: &ServerReport) -> String {
    match &server.readback {
        Some(Ok(r)) if r.complete => format!(
            "{} / {} / {} / **{}** (offsets: {} bad)",
            server.accepted_count, r.found, r.trimmed, r.missing, r.bad_offsets
        ),
        Some(Ok(r)) => format!(
            "{} / {} / {} / {} unread, topic not read to its end in time (offsets: {} bad)",
            server.accepted_count, r.found, r.trimmed, r.missing, r.bad_offsets
        ),
        Some(Err(error)) => format!("{} / not read back: {error}", server.accepted_count),
        None => "not read".into(),
    }
}

fn print_memory(memory: &DedupMemory) {
    println!("### in-process dedup store (default bound 5,000,000 keys)\n");
    println!("| keys held | process RSS | bytes per key over the empty store |");
    println!("|---:|---:|---:|");
    for &(keys, rss) in &memory.rss {
        let per_key = if keys == 0 {
            "-".to_owned()
        } else {
            format!("{:.1}", memory.bytes_per_key(keys))
        };
        println!("| {keys} | {} | {per_key} |", mib(rss));
    }
    println!();
}

/// `hookgate_requests_total{...outcome="accepted"...}` summed over sources, from `/metrics`.
pub(crate) async fn scrape_accepted(addr: SocketAddr) -> Option<f64> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await.ok()?;
    let values = text
        .lines()
        .filter(|l| l.starts_with("hookgate_requests_total{") && l.contains("outcome=\"accepted\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
    Some(values.sum())
}
