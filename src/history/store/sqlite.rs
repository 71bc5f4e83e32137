//! The SQLite store: one file in WAL mode (readers never wait for the
//! indexer's writes) with `synchronous = FULL` (each commit fsynced, so a
//! batch whose offsets the indexer commits survives a power loss; `NORMAL`
//! measured no faster here, see benches/README.md), WAL checkpoints in a
//! task of their own (`checkpoint`), a busy timeout for the single writer,
//! and a write gate through which the indexer and retention take turns;
//! or an in-memory database for tests.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use super::checkpoint::{Checkpointer, WAL_LIMIT};
use super::{StoreError, ACQUIRE_TIMEOUT};

/// How long a writer waits for the database lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections of a file database (WAL: many readers, one writer).
const FILE_CONNECTIONS: u32 = 8;

/// A SQLite history store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// The connection pool.
    pub(super) pool: SqlitePool,
    /// Held by the large writes (the indexer's batches, retention's deletes)
    /// for one statement or transaction. SQLite has one writer; left to its
    /// busy handler, a waiting writer sleeps up to 100 ms between tries and
    /// can miss every short pause of a sweep until its busy timeout ends.
    /// This lock queues them in arrival order instead.
    write_gate: Arc<tokio::sync::Mutex<()>>,
    /// A file database's WAL checkpoints (stopped when the last clone is dropped).
    _checkpointer: Option<Arc<Checkpointer>>,
}

impl SqliteStore {
    /// Opens `sqlite://PATH` (created if missing) or `sqlite::memory:` and applies migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .pragma("wal_autocheckpoint", "0")
            .pragma("journal_size_limit", WAL_LIMIT.to_string())
            .busy_timeout(BUSY_TIMEOUT);
        Self::connect(options, url.contains(":memory:") || url.contains("mode=memory")).await
    }

    /// Opens a database from explicit options and applies migrations. An
    /// in-memory database lives as long as its one pooled connection, so it
    /// gets exactly one that never expires; a file database gets the WAL
    /// checkpoint task.
    pub async fn connect(options: SqliteConnectOptions, in_memory: bool) -> Result<Self, StoreError> {
        let pool_options = SqlitePoolOptions::new().acquire_timeout(ACQUIRE_TIMEOUT);
        let pool_options = if in_memory {
            pool_options
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            pool_options.max_connections(FILE_CONNECTIONS)
        };
        let pool = pool_options.connect_with(options).await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        let checkpointer = (!in_memory).then(|| Arc::new(Checkpointer::start(pool.clone())));
        Ok(Self {
            pool,
            write_gate: Arc::default(),
            _checkpointer: checkpointer,
        })
    }

    /// Inserts `records` in one transaction; per record, whether it was new.
    pub(super) async fn insert_batch(&self, records: &[super::EventRecord]) -> Result<Vec<bool>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let inserted = super::batch::insert_sqlite(&mut tx, records).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    /// Waits for this store's turn to write (see `write_gate`); `Store`
    /// takes it around each batch insert and retention delete.
    pub(super) async fn write_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.write_gate.lock().await
    }

    /// Names of the indexes on `events` starting with `prefix`.
    pub(super) async fn index_names(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let names = sqlx::query_scalar::<_, String>(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND substr(name, 1, length($1)) = $1",
        )
        .bind(prefix)
        .fetch_all(&self.pool)
        .await?;
        Ok(names)
    }

    /// `EXPLAIN QUERY PLAN` of `select`, one step per line.
    pub(super) async fn explain(&self, select: &str) -> Result<String, StoreError> {
        let rows = sqlx::query_as::<_, (i64, i64, i64, String)>(&format!("EXPLAIN QUERY PLAN {select}"))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(_, _, _, step)| step)
            .collect::<Vec<_>>()
            .join("\n"))
    }

    super::sql::common_operations!(sqlx::Sqlite);
    super::bodies::body_operations!();
    super::reconcile::reconcile_operations!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_write_waits_for_its_turn_at_the_gate() {
        let sqlite = SqliteStore::open("sqlite::memory:").await.unwrap();
        let store = super::super::Store::Sqlite(sqlite.clone());
        let turn = sqlite.write_turn().await;
        let insert = store.insert_batch(&[]);
        tokio::pin!(insert);
        // Unblocked, this empty insert finishes in microseconds.
        let waited = tokio::time::timeout(Duration::from_secs(1), insert.as_mut()).await;
        assert!(waited.is_err(), "an insert ran while another writer held the turn");
        drop(turn);
        assert_eq!(insert.await.unwrap(), Vec::<bool>::new());
    }
}
