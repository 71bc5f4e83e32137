//! The history store contract, run against SQLite (in memory and in a
//! file) and a real PostgreSQL (a private schema per test).

mod common;

use std::collections::HashSet;

use std::time::Duration;

use common::history::{record, sqlite_file, PgSchema, TestStore};
use hookgate::history::{relay_notifications, EventFilter, EventRecord, LiveFeed, Position, Store, StoreError};
use tokio::sync::watch;

/// Runs `body` against a fresh store of each kind.
macro_rules! for_each_store {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let store = super::TestStore::open("sqlite").await;
                super::$body(store.store()).await;
                store.cleanup().await;
            }

            #[tokio::test]
            async fn postgres() {
                let store = super::TestStore::open("postgres").await;
                super::$body(store.store()).await;
                store.cleanup().await;
            }
        }
    };
}

for_each_store!(inserts_are_idempotent_on_id, inserts_are_idempotent);
for_each_store!(an_event_reads_back_exactly, reads_back_exactly);
for_each_store!(lists_are_newest_first_with_ids_breaking_ties, newest_first);
for_each_store!(filters_combine, filters_combine_body);
for_each_store!(keyset_pages_neither_skip_nor_repeat, pages_cover_everything_once);
for_each_store!(retention_deletes_in_bounded_batches, deletes_in_batches);

async fn inserts_are_idempotent(store: Store) {
    let a = record("github", "push", 1_000, 1);
    let b = record("github", "push", 2_000, 2);
    assert_eq!(
        store.insert_batch(&[a.clone(), b.clone()]).await.unwrap(),
        vec![true, true]
    );
    // Re-read after a restart, or a replayed record: same id, no new row.
    let mut replayed = a.clone();
    replayed.summary.provenance.offset = 99;
    assert_eq!(
        store.insert_batch(&[replayed, b.clone()]).await.unwrap(),
        vec![false, false]
    );
    // The same id twice within one batch.
    let c = record("github", "push", 3_000, 3);
    assert_eq!(store.insert_batch(&[c.clone(), c]).await.unwrap(), vec![true, false]);
    let all = store.list(&EventFilter::default(), None, 10).await.unwrap();
    assert_eq!(all.len(), 3);
    // The first copy (and its provenance) wins.
    assert_eq!(
        store
            .get(&a.summary.id)
            .await
            .unwrap()
            .unwrap()
            .summary
            .provenance
            .offset,
        1
    );
    store.ping().await.unwrap();
}

async fn reads_back_exactly(store: Store) {
    let mut event = record("stripe", "charge.succeeded", 1_700_000_000_123_456, 7);
    event.body = vec![0, 159, 146, 150, 0xff];
    event.summary.body_size = 5;
    event.summary.query = "a=1&b=%20".into();
    store.insert_batch(std::slice::from_ref(&event)).await.unwrap();
    assert_eq!(store.get(&event.summary.id).await.unwrap(), Some(event.clone()));
    let listed = store.list(&EventFilter::default(), None, 1).await.unwrap();
    assert_eq!(listed, vec![event.summary.clone()]);
    assert_eq!(store.get("0190b6d2-0000-7000-8000-00000000ffff").await.unwrap(), None);
    // The envelope rebuilt from the row is the one ingest published.
    let envelope = event.to_envelope().unwrap();
    assert_eq!(envelope.body.as_ref(), &event.body[..]);
    assert_eq!(envelope.header("x-binary"), Some(&b"\xff\xfe"[..]));
}

async fn newest_first(store: Store) {
    let events: Vec<EventRecord> = (0..9)
        .map(|n| record("github", "push", 1_000 + (n / 3) as i64, n))
        .collect();
    store.insert_batch(&events).await.unwrap();
    let listed = store.list(&EventFilter::default(), None, 100).await.unwrap();
    let keys: Vec<(i64, String)> = listed.iter().map(|e| (e.received_at, e.id.clone())).collect();
    let mut expected = keys.clone();
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(keys, expected);
    assert_eq!(keys.len(), 9);
}

async fn filters_combine_body(store: Store) {
    let mut events = Vec::new();
    for n in 0..40u64 {
        let source = ["github", "stripe", "shopify"][(n % 3) as usize];
        let kind = ["push", "issues"][(n % 2) as usize];
        events.push(record(source, kind, 10_000 + n as i64 * 10, n));
    }
    store.insert_batch(&events).await.unwrap();
    let filters = [
        EventFilter {
            sources: Some(vec!["github".into()]),
            ..Default::default()
        },
        EventFilter {
            sources: Some(vec!["github".into(), "stripe".into()]),
            event_type: Some("push".into()),
            ..Default::default()
        },
        EventFilter {
            sources: Some(vec![]),
            ..Default::default()
        },
        EventFilter {
            since: Some(10_100),
            until: Some(10_250),
            verified: Some(true),
            ..Default::default()
        },
        EventFilter {
            dedup_key: Some("delivery-17".into()),
            ..Default::default()
        },
        EventFilter {
            event_type: Some("issues".into()),
            verified: Some(false),
            since: Some(10_200),
            ..Default::default()
        },
    ];
    for filter in filters {
        let got: Vec<String> = store
            .list(&filter, None, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        let mut expected: Vec<&EventRecord> = events.iter().filter(|e| filter.matches(&e.summary)).collect();
        expected.sort_by(|a, b| (b.summary.received_at, &b.summary.id).cmp(&(a.summary.received_at, &a.summary.id)));
        let expected: Vec<String> = expected.iter().map(|e| e.summary.id.clone()).collect();
        assert_eq!(got, expected, "{filter:?}");
    }
}

async fn pages_cover_everything_once(store: Store) {
    // Several events per microsecond, so that ids must break ties.
    let events: Vec<EventRecord> = (0..1000)
        .map(|n| record("github", "push", 50_000 + (n / 4) as i64, n))
        .collect();
    store.insert_batch(&events).await.unwrap();
    let filter = EventFilter::default();
    let mut seen = HashSet::new();
    let mut after: Option<Position> = None;
    loop {
        let page = store.list(&filter, after.as_ref(), 37).await.unwrap();
        // A newer event arriving mid-walk must not disturb the next pages.
        store
            .insert_batch(&[record(
                "github",
                "push",
                1_000_000 + seen.len() as i64,
                5000 + seen.len() as u64,
            )])
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some(Position::from(last));
        for event in &page {
            assert!(event.received_at < 1_000_000, "a newer event leaked into the walk");
            assert!(seen.insert(event.id.clone()), "{} repeated", event.id);
        }
    }
    assert_eq!(seen.len(), 1000);
}

async fn deletes_in_batches(store: Store) {
    let old: Vec<EventRecord> = (0..25).map(|n| record("github", "push", 1_000 + n as i64, n)).collect();
    let new: Vec<EventRecord> = (0..5)
        .map(|n| record("github", "push", 9_000 + n as i64, 100 + n))
        .collect();
    store.insert_batch(&old).await.unwrap();
    store.insert_batch(&new).await.unwrap();
    let mut deleted = Vec::new();
    loop {
        let n = store.delete_older_than(5_000, 10).await.unwrap();
        deleted.push(n);
        if n < 10 {
            break;
        }
    }
    assert_eq!(deleted, vec![10, 10, 5]);
    let left = store.list(&EventFilter::default(), None, 100).await.unwrap();
    assert_eq!(left.len(), 5);
    assert!(left.iter().all(|e| e.received_at >= 9_000));
}

#[tokio::test]
async fn a_sqlite_file_is_created_and_reopened_without_migrating_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_file(&dir).await;
    let event = record("github", "push", 1, 1);
    store.insert_batch(std::slice::from_ref(&event)).await.unwrap();
    store.close().await;
    let reopened = sqlite_file(&dir).await;
    assert_eq!(reopened.get(&event.summary.id).await.unwrap(), Some(event));
    reopened.close().await;
}

/// A SQLite file another connection holds the write lock of answers "busy"
/// once the busy timeout runs out: the indexer must retry that batch, not
/// skip its events as rejected.
#[tokio::test]
async fn a_locked_sqlite_file_is_unavailable_not_a_rejection() {
    use sqlx::Connection as _;
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_file(&dir).await;
    let url = format!("sqlite://{}", dir.path().join("history.db").display());
    let mut holder = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut holder).await.unwrap();
    let error = store.insert_batch(&[record("github", "push", 1, 1)]).await.unwrap_err();
    assert!(error.is_unavailable(), "{error}");
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    assert_eq!(
        store.insert_batch(&[record("github", "push", 1, 1)]).await.unwrap(),
        vec![true]
    );
    store.close().await;
}

/// The store's checkpoint task copies the WAL back into the database file
/// while the store stays open (commits no longer do it themselves).
#[tokio::test]
async fn sqlite_checkpoints_run_in_the_background_not_in_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_file(&dir).await;
    let file = dir.path().join("history.db");
    let size = || std::fs::metadata(&file).unwrap().len();
    let events: Vec<EventRecord> = (0..5000).map(|n| record("github", "push", n, n as u64)).collect();
    for batch in events.chunks(500) {
        store.insert_batch(batch).await.unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while size() < 1024 * 1024 {
        assert!(
            std::time::Instant::now() < deadline,
            "never checkpointed: {} bytes",
            size()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    store.close().await;
    let reopened = sqlite_file(&dir).await;
    assert_eq!(reopened.count(&EventFilter::default()).await.unwrap(), 5000);
    reopened.close().await;
}

#[tokio::test]
async fn postgres_schemas_keep_parallel_tests_apart() {
    let (a, b) = (PgSchema::create().await, PgSchema::create().await);
    a.store.insert_batch(&[record("github", "push", 1, 1)]).await.unwrap();
    assert!(b
        .store
        .list(&EventFilter::default(), None, 10)
        .await
        .unwrap()
        .is_empty());
    a.remove().await;
    b.remove().await;
}

#[tokio::test]
async fn unsupported_urls_are_refused() {
    assert!(matches!(
        Store::open("mysql://localhost/db").await,
        Err(StoreError::UnsupportedUrl)
    ));
}

#[tokio::test]
async fn postgres_announces_new_events_to_the_live_tail_of_every_replica() {
    let pg = PgSchema::create().await;
    let Store::Postgres(shared) = pg.store.clone() else {
        unreachable!()
    };
    let live = LiveFeed::default();
    let mut tail = live.subscribe();
    let (stop, shutdown) = watch::channel(false);
    let listener = shared.listen().await.unwrap();
    let relay = tokio::spawn(relay_notifications(shared, listener, live, shutdown));
    let (a, b, c) = (
        record("github", "push", 10, 1),
        record("stripe", "charge", 11, 2),
        record("github", "push", 12, 3),
    );
    pg.store.insert_batch(&[a.clone(), b.clone(), a.clone()]).await.unwrap();
    pg.store.insert_batch(&[c.clone(), b.clone()]).await.unwrap();
    for expected in [&a, &b, &c] {
        let event = tokio::time::timeout(Duration::from_secs(10), tail.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(*event, expected.summary, "each new event once, in commit order");
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(300), tail.recv())
            .await
            .is_err(),
        "duplicates are not announced"
    );
    stop.send(true).unwrap();
    relay.await.unwrap();
    pg.remove().await;
}

/// PostgreSQL reuses the space of deleted rows only once they are vacuumed;
/// this server may run without autovacuum (and it would come only after a
/// fifth of the table was deleted). After `reclaim_space`, events that
/// replace deleted ones fit in the pages those left.
#[tokio::test]
async fn postgres_reuses_the_space_of_swept_events_after_reclaim() {
    // In a shared database, another test's open transaction would keep
    // the swept rows from being reclaimed.
    let pg = PgSchema::create_in_own_database().await;
    let admin = pg.admin().await;
    let table_bytes = || async {
        sqlx::query_scalar::<_, i64>("SELECT pg_table_size('events')")
            .fetch_one(&admin)
            .await
            .unwrap()
    };
    let generation = |first: u64| -> Vec<EventRecord> {
        (first..first + 500)
            .map(|n| record("github", "push", n as i64, n))
            .collect()
    };
    pg.store.insert_batch(&generation(0)).await.unwrap();
    let full = table_bytes().await;
    while pg.store.delete_older_than(i64::MAX, 1_000).await.unwrap() > 0 {}
    pg.store.reclaim_space().await.unwrap();
    pg.store.insert_batch(&generation(1_000)).await.unwrap();
    let refilled = table_bytes().await;
    assert!(
        refilled <= full + full / 10,
        "the second 500 events reuse the first 500's space: {full} bytes, then {refilled}"
    );
    admin.close().await;
    pg.remove().await;
}
