//! The printed tables: reading rates against the bare consumer, the
//! store-write stage, query latency per store, bytes per event per table
//! and index, and memory.

use std::time::Duration;

use crate::phases::Timed;
use crate::queries::Latency;
use crate::stores::{Kind, Part};

/// Indexer rate target, as a share of the bare consumer's.
const RATE_TARGET: f64 = 0.8;
/// Query p99 target.
const P99_TARGET: Duration = Duration::from_millis(20);

/// One store's figures.
struct StoreFigures {
    kind: Kind,
    write: Timed,
    indexed: Timed,
    latencies: Vec<Latency>,
    total_bytes: u64,
    parts: Vec<Part>,
}

/// Everything the run measured.
pub(crate) struct Report {
    events: u64,
    partitions: i32,
    rounds: u64,
    /// Time to fill the topic.
    pub(crate) fill: Duration,
    /// Time of the bare consumer.
    pub(crate) bare: Duration,
    stores: Vec<StoreFigures>,
    /// Peak RSS of the whole process (mock cluster included).
    pub(crate) peak_rss: u64,
}

fn rate(events: u64, time: Duration) -> f64 {
    events as f64 / time.as_secs_f64()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

impl Report {
    pub(crate) fn new(events: u64, partitions: i32, rounds: u64) -> Self {
        Report {
            events,
            partitions,
            rounds,
            fill: Duration::ZERO,
            bare: Duration::ZERO,
            stores: Vec::new(),
            peak_rss: 0,
        }
    }

    pub(crate) fn add_store(&mut self, kind: Kind, write: Timed, indexed: Timed) {
        self.stores.push(StoreFigures {
            kind,
            write,
            indexed,
            latencies: Vec::new(),
            total_bytes: 0,
            parts: Vec::new(),
        });
    }

    pub(crate) fn add_queries(&mut self, kind: Kind, latencies: Vec<Latency>, sizes: (u64, Vec<Part>)) {
        let figures = self.stores.iter_mut().find(|s| s.kind == kind).expect("store measured");
        figures.latencies = latencies;
        (figures.total_bytes, figures.parts) = sizes;
    }

    pub(crate) fn print(&self) {
        let n = self.events;
        println!(
            "\nhistory benchmark: {n} deliveries, librdkafka mock cluster in process, {} partitions",
            self.partitions
        );
        println!(
            "fill: {:.1} s ({:.0} records/s)\n",
            self.fill.as_secs_f64(),
            rate(n, self.fill)
        );
        let word_index = if crate::stores::text_index() {
            "on"
        } else {
            "off, hookgate's default"
        };
        println!("PostgreSQL word index of q= (query.text_index): {word_index}\n");
        self.print_rates();
        self.print_queries();
        self.print_sizes();
        println!(
            "\npeak RSS of the benchmark process (mock cluster holding the topic included): {:.0} MiB",
            mib(self.peak_rss)
        );
    }

    fn print_rates(&self) {
        let bare = rate(self.events, self.bare);
        println!("| reader | time, s | events/s | / bare consumer | peak RSS growth, MiB |");
        println!("|---|---:|---:|---:|---:|");
        println!(
            "| bare consumer | {:.1} | {bare:.0} | 1.00 | |",
            self.bare.as_secs_f64()
        );
        for s in &self.stores {
            let r = rate(self.events, s.indexed.elapsed);
            let verdict = if r / bare >= RATE_TARGET { "met" } else { "MISSED" };
            println!(
                "| indexer into {} | {:.1} | {r:.0} | **{:.2}** (target >= {RATE_TARGET}: {verdict}) | {:.0} |",
                s.kind.name(),
                s.indexed.elapsed.as_secs_f64(),
                r / bare,
                mib(s.indexed.rss_growth)
            );
        }
        println!("\nstore-write stage alone (decoded envelopes from memory, batches as the indexer's):\n");
        println!("| store | write time, s | events/s | µs/event | peak RSS growth, MiB |");
        println!("|---|---:|---:|---:|---:|");
        for s in &self.stores {
            let t = s.write.elapsed;
            println!(
                "| {} | {:.1} | {:.0} | {:.1} | {:.0} |",
                s.kind.name(),
                t.as_secs_f64(),
                rate(self.events, t),
                t.as_secs_f64() * 1e6 / self.events as f64,
                mib(s.write.rss_growth)
            );
        }
    }

    fn print_queries(&self) {
        println!(
            "\nquery latency, ms ({} rounds each, one at a time, store interface; target p99 <= 20 ms):\n",
            self.rounds
        );
        let heads: Vec<String> = self
            .stores
            .iter()
            .map(|s| format!("{0} p50 | {0} p99", s.kind.name()))
            .collect();
        println!("| query | {} |", heads.join(" | "));
        println!("|---|{}", "---:|---:|".repeat(self.stores.len()));
        let Some(first) = self.stores.first() else { return };
        for (row, latency) in first.latencies.iter().enumerate() {
            let cells: Vec<String> = self
                .stores
                .iter()
                .map(|s| {
                    let l = &s.latencies[row];
                    let mark = if l.p99 > P99_TARGET { " (over)" } else { "" };
                    let rounds = if l.rounds == self.rounds {
                        String::new()
                    } else {
                        format!(" ({} rounds)", l.rounds)
                    };
                    format!("{} | {}{mark}{rounds}", ms(l.p50), ms(l.p99))
                })
                .collect();
            println!(
                "| {} ({} events) | {} |",
                latency.query,
                latency.returned,
                cells.join(" | ")
            );
        }
    }

    fn print_sizes(&self) {
        for s in &self.stores {
            println!(
                "\n{}: {:.0} MiB, {:.0} bytes/event in all",
                s.kind.name(),
                mib(s.total_bytes),
                s.total_bytes as f64 / self.events as f64
            );
            for part in &s.parts {
                println!(
                    "- {}: {:.0} bytes/event",
                    part.name,
                    part.bytes as f64 / self.events as f64
                );
            }
        }
    }
}
