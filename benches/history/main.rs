//! History benchmark: can the indexer keep up with what ingest publishes,
//! and do the listing queries stay fast at a million events?
//!
//! `cargo bench --bench history` fills a topic of the in-process mock
//! cluster with N signed deliveries (`deliveries`), times a bare consumer
//! reading it (the broker's read limit), then the store-write stage alone
//! and the indexer from scratch into SQLite and into PostgreSQL (each
//! against the bare consumer), then query latency on the filled stores,
//! store bytes per event (table and each index) and peak RSS growth.
//!
//! Settings (environment): `HISTORY_EVENTS` (N, 1,000,000), `HISTORY_STORES`
//! (`sqlite,postgres`), `HISTORY_QUERY_ROUNDS` (rounds per query, 300),
//! `HISTORY_PARTITIONS` (default: enough for the mock's per-partition
//! retention), `HISTORY_DIR` (where the SQLite files go, the temporary
//! directory), `HISTORY_POSTGRES` (server URL, the test server's),
//! `HISTORY_TEXT_INDEX` (1: PostgreSQL stores get the optional word index
//! of `q=`, `query.text_index = true`; 0, the default, as hookgate's default),
//! `HISTORY_INDEX_COST` (events of an extra phase timing the store-write
//! stage without each secondary index in turn; 0, the default, skips it),
//! `HISTORY_RETENTION` (events of an extra phase: fill a store, let
//! retention delete everything, fill it again; 0, the default, skips it).

mod deliveries;
mod phases;
mod queries;
mod report;
mod retention;
mod rss;
mod stores;
mod topic;

use std::time::Duration;

use deliveries::Deliveries;
use report::Report;
use stores::Kind;
use topic::Topic;

/// What the run does.
#[derive(Debug, Clone)]
struct Settings {
    /// Deliveries in the topic.
    events: u64,
    /// Stores to measure.
    stores: Vec<Kind>,
    /// Measured rounds per query.
    rounds: u64,
    /// Measured rounds of a query that reads every row.
    scan_rounds: u64,
    /// Partitions of the topic.
    partitions: i32,
    /// Events of the index-cost phase (0: skipped).
    index_cost: u64,
    /// Events of the retention phase (0: skipped).
    retention: u64,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(text) => text
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text} is not a valid value")),
        Err(_) => default,
    }
}

impl Settings {
    fn from_env() -> Self {
        let events: u64 = env_or("HISTORY_EVENTS", 1_000_000);
        assert!(events >= 1000, "HISTORY_EVENTS must be at least 1000");
        let stores = env_or("HISTORY_STORES", "sqlite,postgres".to_owned())
            .split(',')
            .map(|s| match s.trim() {
                "sqlite" => Kind::Sqlite,
                "postgres" => Kind::Postgres,
                other => panic!("HISTORY_STORES: unknown store {other} (sqlite, postgres)"),
            })
            .collect();
        Settings {
            events,
            stores,
            rounds: env_or("HISTORY_QUERY_ROUNDS", 300),
            scan_rounds: env_or("HISTORY_SCAN_ROUNDS", 5),
            partitions: env_or("HISTORY_PARTITIONS", Topic::partitions_for(events)),
            index_cost: env_or("HISTORY_INDEX_COST", 0),
            retention: env_or("HISTORY_RETENTION", 0),
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to filter.
    let settings = Settings::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(settings));
}

async fn run(settings: Settings) {
    let deliveries = Deliveries::new(settings.events);
    let topic = Topic::start(settings.partitions);
    let mut report = Report::new(settings.events, settings.partitions, settings.rounds);
    eprintln!("filling the topic with {} deliveries...", settings.events);
    let fill = tokio::task::block_in_place(|| topic.fill(&deliveries));
    let ends = topic.ends();
    assert_eq!(
        ends.iter().sum::<i64>(),
        settings.events as i64,
        "every delivery is in the topic"
    );
    report.fill = fill;
    eprintln!("bare consumer...");
    report.bare = phase_bare(&topic, settings.events).await;
    // One store at a time, removed before the next: a million events take
    // gigabytes of disk in each.
    for &kind in &settings.stores {
        eprintln!("{}: store-write stage...", kind.name());
        let write = phases::store_write(&deliveries, settings.partitions, kind, None).await;
        eprintln!("{}: indexer...", kind.name());
        let (indexed, bench) = phases::index(&topic, &ends, &deliveries, kind).await;
        report.add_store(kind, write, indexed);
        eprintln!("{}: queries...", kind.name());
        bench.settle().await;
        let latencies = queries::measure(&bench.store, deliveries, settings.rounds, settings.scan_rounds).await;
        let sizes = bench.sizes().await;
        report.add_queries(kind, latencies, sizes);
        bench.remove().await;
    }
    if settings.index_cost > 0 {
        index_cost(&settings).await;
    }
    if settings.retention > 0 {
        let deliveries = Deliveries::new(settings.retention);
        for &kind in &settings.stores {
            eprintln!("{}: retention...", kind.name());
            retention::measure(&deliveries, settings.partitions, kind).await;
        }
    }
    report.peak_rss = rss::run_peak();
    report.print();
}

/// What each secondary index costs a write: the store-write stage with all
/// indexes, then with each one left out, printed as µs per event saved.
async fn index_cost(settings: &Settings) {
    let deliveries = Deliveries::new(settings.index_cost);
    let per_event = |t: phases::Timed| t.elapsed.as_secs_f64() * 1e6 / deliveries.count as f64;
    for &kind in &settings.stores {
        eprintln!("{}: index cost...", kind.name());
        let all = per_event(phases::store_write(&deliveries, settings.partitions, kind, None).await);
        println!(
            "\n{} write cost per index ({} events): all indexes {all:.1} µs/event",
            kind.name(),
            deliveries.count
        );
        for (index, change) in phases::index_changes(kind) {
            let other = per_event(phases::store_write(&deliveries, settings.partitions, kind, Some(&change)).await);
            let (cost, with) = if change.adds() {
                (other - all, "with")
            } else {
                (all - other, "without")
            };
            println!("- {index}: {cost:.1} µs/event ({other:.1} {with} it)");
        }
    }
}

/// The bare consumer, timed in a fresh group.
async fn phase_bare(topic: &Topic, events: u64) -> Duration {
    let group = format!("history-bench-bare-{}", uuid::Uuid::now_v7().simple());
    topic.bare_read(&group, events).await
}
