//! The timed phases: the indexer from scratch into a fresh store (until its
//! consumer group has committed every partition's end, so that what is
//! timed is "history caught up"), and the store-write stage alone (decoded
//! envelopes from memory, batched as the indexer batches them, only the
//! `insert_batch` calls timed).

use std::time::{Duration, Instant};

use hookgate::history::{decode, Indexer, IndexerSettings, Provenance, MAX_BATCH};
use tokio::sync::watch;

use crate::deliveries::Deliveries;
use crate::rss::Rss;
use crate::stores::{BenchStore, Kind};
use crate::topic::{Topic, TOPIC};

/// What one timed phase measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timed {
    /// Wall time of the phase.
    pub(crate) elapsed: Duration,
    /// Growth of the process's peak RSS during it, bytes.
    pub(crate) rss_growth: u64,
}

/// The longest a phase may take before the run gives up.
fn deadline(count: u64) -> Duration {
    Duration::from_secs(120 + count / 500)
}

/// Runs the indexer from scratch into a fresh store of `kind` until it has
/// committed every record; checks the store holds each delivery exactly once.
pub(crate) async fn index(topic: &Topic, ends: &[i64], deliveries: &Deliveries, kind: Kind) -> (Timed, BenchStore) {
    let bench = BenchStore::create(kind).await;
    let group = format!("history-bench-{}-{}", kind.name(), uuid::Uuid::now_v7().simple());
    let settings = IndexerSettings {
        topics: vec![TOPIC.to_owned()],
        group: group.clone(),
        retention: None,
    };
    let rss = Rss::mark();
    let started = Instant::now();
    let indexer = Indexer::new(&topic.endpoint(), &settings, bench.store.clone(), None).expect("indexer");
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(indexer.run(shutdown));
    let elapsed = topic
        .committed_to_end(&group, ends, started, deadline(deliveries.count))
        .await;
    let rss_growth = rss.growth();
    stop.send(true).expect("indexer running");
    let report = task.await.expect("indexer task");
    assert_eq!(report.inserted, deliveries.count, "{report:?}");
    assert_eq!(
        bench.count().await,
        deliveries.count as i64,
        "each delivery stored exactly once"
    );
    (Timed { elapsed, rss_growth }, bench)
}

/// The secondary indexes, each of which the index-cost phase leaves out once.
const SECONDARY_INDEXES: [&str; 5] = [
    "events_by_time",
    "events_by_source",
    "events_by_type",
    "events_by_source_type",
    "events_by_dedup_key",
];

/// A change the index-cost phase makes to a fresh store before writing.
pub(crate) enum Change {
    /// A statement dropping an index (or the trigger that feeds one).
    Drop(String),
    /// PostgreSQL's optional word index of `q=`, set on or off as hookgate does it.
    WordIndex(bool),
}

impl Change {
    /// True when the change adds an index (else it removes one).
    pub(crate) fn adds(&self) -> bool {
        matches!(self, Change::WordIndex(true))
    }
}

/// What the index-cost phase changes in turn on `kind`: each secondary
/// index left out, then the full-text index of `q=` (SQLite's FTS5 table fed
/// by its insert trigger, left out; PostgreSQL's optional GIN index, left
/// out or added, whichever `HISTORY_TEXT_INDEX` does not do), by name.
pub(crate) fn index_changes(kind: Kind) -> Vec<(String, Change)> {
    let mut all: Vec<(String, Change)> = SECONDARY_INDEXES
        .iter()
        .map(|name| ((*name).to_owned(), Change::Drop(format!("DROP INDEX {name}"))))
        .collect();
    all.push(match kind {
        Kind::Postgres => (
            "events_body_words (q=)".into(),
            Change::WordIndex(!crate::stores::text_index()),
        ),
        Kind::Sqlite => (
            "events_fts (q=)".into(),
            Change::Drop("DROP TRIGGER events_fts_insert".into()),
        ),
    });
    all
}

/// Writes every delivery into a fresh store of `kind` (after making
/// `change`, if given) in batches of [`MAX_BATCH`]; times only the writes.
/// The store is removed afterwards.
pub(crate) async fn store_write(
    deliveries: &Deliveries,
    partitions: i32,
    kind: Kind,
    change: Option<&Change>,
) -> Timed {
    let bench = BenchStore::create(kind).await;
    match change {
        Some(Change::Drop(statement)) => bench.execute(statement).await,
        Some(Change::WordIndex(on)) => bench.store.ensure_text_index(*on).await.expect("word index"),
        None => {}
    }
    let rss = Rss::mark();
    let elapsed = write_all(&bench, deliveries, partitions).await;
    let rss_growth = rss.growth();
    assert_eq!(bench.count().await, deliveries.count as i64);
    bench.remove().await;
    Timed { elapsed, rss_growth }
}

/// Writes every delivery into `bench` in batches of [`MAX_BATCH`]; returns
/// the time spent in `insert_batch` alone.
pub(crate) async fn write_all(bench: &BenchStore, deliveries: &Deliveries, partitions: i32) -> Duration {
    let mut elapsed = Duration::ZERO;
    let mut next = 0;
    while next < deliveries.count {
        let end = (next + MAX_BATCH as u64).min(deliveries.count);
        let batch: Vec<_> = (next..end)
            .map(|i| {
                let value = deliveries.envelope(i).to_bytes();
                let provenance = Provenance {
                    topic: TOPIC.into(),
                    partition: crate::topic::partition_of(i, deliveries.count, partitions),
                    offset: i as i64,
                };
                decode(Some(&value), provenance, 0).expect("a valid envelope")
            })
            .collect();
        let started = Instant::now();
        let inserted = bench.store.insert_batch(&batch).await.expect("insert");
        elapsed += started.elapsed();
        assert!(inserted.iter().all(|new| *new));
        next = end;
    }
    elapsed
}
