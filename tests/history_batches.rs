//! The indexer's batched write path against both stores: a batch larger
//! than one statement keeps exactly one row per id and reports which events
//! were new, and a batch that fails part way leaves nothing behind (one
//! transaction per batch), so the offsets the indexer commits only after a
//! successful batch never cover an event that is not stored.

mod common;

use common::history::{record, sqlite_file, PgSchema};
use hookgate::history::{EventFilter, EventRecord, Store};
use sqlx::sqlite::SqlitePoolOptions;

/// Events of one batch: more than one SQLite statement holds (256 rows).
const BATCH: u64 = 700;
/// The event a trigger rejects in the failing-batch tests (`delivery-N`).
const POISONED: u64 = 411;

async fn count(store: &Store) -> usize {
    store.list(&EventFilter::default(), None, 10_000).await.unwrap().len()
}

fn records(range: std::ops::Range<u64>) -> Vec<EventRecord> {
    range.map(|n| record("github", "push", 1_000 + n as i64, n)).collect()
}

/// 100 events stored, then one batch: 600 new, 50 of the stored ones again,
/// and 50 of its own new ones twice.
async fn one_row_per_id(store: Store) {
    let all = records(0..BATCH);
    assert!(store.insert_batch(&all[..100]).await.unwrap().iter().all(|new| *new));
    let mut batch: Vec<EventRecord> = all[50..].to_vec();
    batch.extend_from_slice(&all[200..250]);
    let mut replayed = all[300].clone();
    replayed.summary.provenance.offset = 9_999;
    batch.push(replayed);
    let inserted = store.insert_batch(&batch).await.unwrap();
    let expected: Vec<bool> = (0..batch.len()).map(|i| (50..650).contains(&i)).collect();
    assert_eq!(
        inserted, expected,
        "new: exactly the first copy of each id not stored before"
    );
    assert_eq!(count(&store).await, BATCH as usize);
    let stored = store.get(&all[300].summary.id).await.unwrap().unwrap();
    assert_eq!(
        stored.summary.provenance.offset, 300,
        "the first copy's provenance is kept"
    );
    for event in [&all[0], &all[99], &all[100], &all[699]] {
        assert_eq!(store.get(&event.summary.id).await.unwrap().as_ref(), Some(event));
    }
}

/// A batch whose event `POISONED` is refused by the database: nothing of it
/// is stored, and the same batch without that event is stored whole.
async fn nothing_of_a_failed_batch(store: Store) {
    let all = records(0..BATCH);
    store.insert_batch(&all[..10]).await.unwrap();
    let error = store.insert_batch(&all[10..]).await;
    assert!(error.is_err(), "the trigger refuses event {POISONED}");
    assert!(!error.unwrap_err().is_unavailable(), "a refused row is not an outage");
    assert_eq!(count(&store).await, 10, "no event of the failed batch is stored");
    // A test record's offset is its N (`delivery-N`).
    let without: Vec<EventRecord> = all[10..]
        .iter()
        .filter(|r| r.summary.provenance.offset != POISONED as i64)
        .cloned()
        .collect();
    let inserted = store.insert_batch(&without).await.unwrap();
    assert!(inserted.iter().all(|new| *new));
    assert_eq!(count(&store).await, BATCH as usize - 1);
}

#[tokio::test]
async fn a_batch_larger_than_a_statement_keeps_one_row_per_id_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_file(&dir).await;
    one_row_per_id(store.clone()).await;
    store.close().await;
}

#[tokio::test]
async fn a_batch_larger_than_a_statement_keeps_one_row_per_id_postgres() {
    let pg = PgSchema::create().await;
    one_row_per_id(pg.store.clone()).await;
    pg.remove().await;
}

#[tokio::test]
async fn a_batch_failing_part_way_stores_nothing_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_file(&dir).await;
    let url = format!("sqlite://{}", dir.path().join("history.db").display());
    let admin = SqlitePoolOptions::new().max_connections(1).connect(&url).await.unwrap();
    let trigger = format!(
        "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.dedup_key = 'delivery-{POISONED}' \
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
    );
    sqlx::query(&trigger).execute(&admin).await.unwrap();
    admin.close().await;
    nothing_of_a_failed_batch(store.clone()).await;
    store.close().await;
}

#[tokio::test]
async fn a_batch_failing_part_way_stores_nothing_postgres() {
    let pg = PgSchema::create().await;
    let admin = pg.admin().await;
    let trigger = format!(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'refused by the test'; END $$; \
         CREATE TRIGGER refuse BEFORE INSERT ON events FOR EACH ROW \
         WHEN (NEW.dedup_key = 'delivery-{POISONED}') EXECUTE FUNCTION refuse();"
    );
    sqlx::raw_sql(&trigger).execute(&admin).await.unwrap();
    admin.close().await;
    nothing_of_a_failed_batch(pg.store.clone()).await;
    pg.remove().await;
}
