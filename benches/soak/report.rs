//! What the soak benchmark prints: one line per window while it runs, and a
//! table of every run at the end with the all-roles / ingest-only p99 ratio.

use crate::store::Indexed;

const MIB: f64 = 1024.0 * 1024.0;

/// One window of one run.
#[derive(Debug)]
pub(crate) struct Window {
    /// Window number, from 0.
    pub(crate) index: usize,
    /// Its length, seconds (the load plus the drain of its last requests).
    pub(crate) seconds: f64,
    /// 2xx answers.
    pub(crate) ok: u64,
    /// Other answers and requests without an answer.
    pub(crate) errors: u64,
    /// Latency quantiles from the due time, ms.
    pub(crate) p50: f64,
    /// 99th percentile, ms.
    pub(crate) p99: f64,
    /// 99.9th percentile, ms.
    pub(crate) p999: f64,
    /// True when the gateway runs the indexer.
    pub(crate) history: bool,
    /// 2xx so far minus events indexed so far, at the window's end.
    pub(crate) lag: f64,
    /// Events retention deleted during the window.
    pub(crate) deleted: f64,
    /// Gateway RSS at the window's end, bytes.
    pub(crate) rss: u64,
    /// Store size at the window's end, bytes.
    pub(crate) store_bytes: u64,
    /// Gateway CPU seconds per thread group during the window, largest first.
    pub(crate) cpu: Vec<(String, f64)>,
    /// Broker CPU seconds during the window.
    pub(crate) broker_cpu: f64,
    /// Load generator (this process) CPU seconds during the window.
    pub(crate) generator_cpu: f64,
    /// CPU seconds the whole machine was busy during the window (other processes
    /// and the hypervisor's steal included).
    pub(crate) machine_cpu: f64,
    /// CPU seconds the hypervisor took from the machine during the window.
    pub(crate) steal: f64,
    /// Every latency of the window, µs (pooled into the run's figures).
    pub(crate) latencies: Vec<u32>,
}

impl Window {
    /// Prints the window's line (and its CPU line).
    pub(crate) fn print(&self) {
        let rate = self.ok as f64 / self.seconds.max(1e-9);
        let mut line = format!(
            "  window {:>2}: {:>7} 2xx ({rate:.0}/s), {} errors, p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, RSS {:.0} MiB",
            self.index,
            self.ok,
            self.errors,
            self.p50,
            self.p99,
            self.p999,
            self.rss as f64 / MIB
        );
        if self.history {
            line += &format!(
                ", indexer lag {:.0} records ({:.2} s of traffic), store {:.0} MiB, retention deleted {:.0}/s",
                self.lag,
                self.lag / rate.max(1.0),
                self.store_bytes as f64 / MIB,
                self.deleted / self.seconds.max(1e-9)
            );
        }
        println!("{line}");
        let groups: Vec<String> = self.cpu.iter().map(|(name, s)| format!("{name} {s:.1}")).collect();
        let total: f64 = self.cpu.iter().map(|(_, s)| s).sum();
        let others = self.machine_cpu - total - self.broker_cpu - self.generator_cpu - self.steal;
        println!(
            "             CPU s: hookgate {total:.1} [{}]; broker {:.1}; load generator {:.1}; other processes {:.1}; hypervisor steal {:.1} (of {:.0} available)",
            groups.join(", "),
            self.broker_cpu,
            self.generator_cpu,
            others.max(0.0),
            self.steal,
            self.seconds * std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
        );
    }
}

/// One run: its windows pooled.
#[derive(Debug)]
pub(crate) struct RunReport {
    /// `--role all (sqlite)` and the like.
    pub(crate) name: String,
    /// Latencies of every window, µs.
    latencies: Vec<u32>,
    /// The worst window's p99, ms.
    worst_p99: f64,
    /// 2xx and errors over the windows.
    counts: (u64, u64),
    /// Largest lag at a window's end, records.
    max_lag: f64,
    /// RSS and store size at the last window's end.
    last: (u64, u64),
    /// Seconds from the end of the load until every 2xx was indexed.
    pub(crate) catch_up: Option<f64>,
    /// The lookup of every 2xx.
    pub(crate) indexed: Option<Indexed>,
}

impl RunReport {
    pub(crate) fn new(name: String) -> RunReport {
        RunReport {
            name,
            latencies: Vec::new(),
            worst_p99: 0.0,
            counts: (0, 0),
            max_lag: 0.0,
            last: (0, 0),
            catch_up: None,
            indexed: None,
        }
    }

    pub(crate) fn add(&mut self, window: Window) {
        self.latencies.extend_from_slice(&window.latencies);
        self.worst_p99 = self.worst_p99.max(window.p99);
        self.counts.0 += window.ok;
        self.counts.1 += window.errors;
        self.max_lag = self.max_lag.max(window.lag);
        self.last = (window.rss, window.store_bytes);
    }

    /// Latency at quantile `q` over every window, ms.
    fn quantile(&mut self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        self.latencies.sort_unstable();
        let rank = ((q * self.latencies.len() as f64).ceil() as usize).clamp(1, self.latencies.len());
        f64::from(self.latencies[rank - 1]) / 1000.0
    }
}

/// Prints the table of every run and each history run's p99 over the ingest-only run's.
pub(crate) fn summary(mut reports: Vec<RunReport>) {
    println!("\nsoak summary (latency from the due time, all windows pooled)\n");
    println!("| run | 2xx | errors | p50 ms | p99 ms | p99.9 ms | worst window p99 ms | max lag (records) | RSS end MiB | store end MiB | all indexed after | missing | longest receipt-to-indexed |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &mut reports {
        let (p50, p99, p999) = (r.quantile(0.5), r.quantile(0.99), r.quantile(0.999));
        let dash = || "-".to_owned();
        println!(
            "| {} | {} | {} | {p50:.2} | {p99:.2} | {p999:.2} | {:.2} | {} | {:.0} | {} | {} | {} | {} |",
            r.name,
            r.counts.0,
            r.counts.1,
            r.worst_p99,
            if r.indexed.is_some() || r.catch_up.is_some() {
                format!("{:.0}", r.max_lag)
            } else {
                dash()
            },
            r.last.0 as f64 / MIB,
            if r.catch_up.is_some() {
                format!("{:.0}", r.last.1 as f64 / MIB)
            } else {
                dash()
            },
            r.catch_up.map(|s| format!("{s:.1} s")).unwrap_or_else(dash),
            r.indexed.map(|i| i.missing.to_string()).unwrap_or_else(dash),
            r.indexed.map(|i| format!("{:.2} s", i.max_delay)).unwrap_or_else(dash),
        );
    }
    let Some(ingest) = reports.iter().position(|r| r.name == "--role ingest") else {
        return;
    };
    let base = reports[ingest].quantile(0.99);
    for (i, report) in reports.iter_mut().enumerate() {
        if i != ingest {
            let (p99, worst) = (report.quantile(0.99), report.worst_p99);
            println!(
                "{}: p99 {:.2}x the ingest-only p99 ({base:.2} ms); worst window {:.2}x (target <= 2)",
                report.name,
                p99 / base,
                worst / base
            );
        }
    }
}
