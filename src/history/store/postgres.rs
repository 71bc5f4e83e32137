//! The PostgreSQL store, shared by several query replicas. Each replica's
//! indexer writes only the partitions assigned to it, so every insert also
//! sends the new ids on the [`NOTIFY_CHANNEL`] (delivered at commit) and
//! every replica's live tail follows that channel: a client sees all events
//! whichever replica it is connected to. Tests point the store at a private
//! schema through the connection's `search_path`.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};

use super::rows::SummaryRow;
use super::{sql, EventRecord, EventSummary, StoreError, ACQUIRE_TIMEOUT};

/// Connections per process.
const CONNECTIONS: u32 = 10;
/// Channel carrying the ids of newly stored events (comma-separated).
pub const NOTIFY_CHANNEL: &str = "hookgate_events";
/// Ids per notification (a payload must stay under 8000 bytes).
const IDS_PER_NOTIFICATION: usize = 100;

/// Sets the reclaiming VACUUM's throttle: autovacuum's cost delay with five
/// times its default cost limit (200). At the default, the VACUUM of a store
/// of a few GB took longer than inserts took to fill the space it freed;
/// unthrottled, it slowed ingest more (benches/README.md).
const RECLAIM_THROTTLE: &str =
    "SELECT set_config('vacuum_cost_delay', '2ms', false), set_config('vacuum_cost_limit', '1000', false)";

/// A PostgreSQL history store.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    /// The connection pool.
    pub(super) pool: PgPool,
}

impl PostgresStore {
    /// Connects to `postgres://...` and applies migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::connect(PgConnectOptions::from_str(url)?).await
    }

    /// Connects with explicit options (e.g. a `search_path`) and applies migrations.
    pub async fn connect(options: PgConnectOptions) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }

    /// Inserts `records` in one transaction; per record, whether it was new.
    pub(super) async fn insert_batch(&self, records: &[EventRecord]) -> Result<Vec<bool>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let inserted = super::batch::insert_postgres(&mut tx, records).await?;
        let new_ids: Vec<&str> = records
            .iter()
            .zip(&inserted)
            .filter(|(_, new)| **new)
            .map(|(r, _)| r.summary.id.as_str())
            .collect();
        for ids in new_ids.chunks(IDS_PER_NOTIFICATION) {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(NOTIFY_CHANNEL)
                .bind(ids.join(","))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    /// Makes the space of deleted events and bodies reusable (`VACUUM`,
    /// skipped for a table autovacuum is already vacuuming), throttled so
    /// that it yields to the indexer and readers. Retention calls it after
    /// a sweep: PostgreSQL otherwise reuses that space only once autovacuum
    /// visits the tables, which a server may have turned off or may run
    /// only after a fifth of a table has been deleted.
    pub(super) async fn reclaim_space(&self) -> Result<(), StoreError> {
        let mut connection = self.pool.acquire().await?;
        // A session setting; it changes nothing but this connection's VACUUMs, which only this runs.
        sqlx::query(RECLAIM_THROTTLE).execute(&mut *connection).await?;
        // VACUUM cannot run inside a transaction block: one statement per call.
        sqlx::query("VACUUM (SKIP_LOCKED) events, bodies")
            .execute(&mut *connection)
            .await?;
        Ok(())
    }

    /// A listener subscribed to [`NOTIFY_CHANNEL`] (it reconnects by itself;
    /// notifications sent while it is disconnected are lost).
    pub async fn listen(&self) -> Result<PgListener, StoreError> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        Ok(listener)
    }

    /// Summaries of `ids`, in the order given (ids no longer stored are left out).
    pub async fn summaries(&self, ids: &[String]) -> Result<Vec<EventSummary>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let statement = sql::select_summaries(ids.len());
        let mut query = sqlx::query_as::<_, SummaryRow>(&statement);
        for id in ids {
            query = query.bind(id);
        }
        let mut found: Vec<EventSummary> = query
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(EventSummary::from)
            .collect();
        found.sort_by_key(|e| ids.iter().position(|id| *id == e.id));
        Ok(found)
    }

    /// Names of the indexes on `events` (in the current schema) starting with `prefix`.
    pub(super) async fn index_names(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let names = sqlx::query_scalar::<_, String>(
            "SELECT indexname::text FROM pg_indexes WHERE schemaname = current_schema() \
             AND tablename = 'events' AND left(indexname, length($1)) = $1",
        )
        .bind(prefix)
        .fetch_all(&self.pool)
        .await?;
        Ok(names)
    }

    /// `EXPLAIN` of `select` with sequential scans discouraged, one line per plan line.
    pub(super) async fn explain(&self, select: &str) -> Result<String, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET LOCAL enable_seqscan = off").execute(&mut *tx).await?;
        let lines = sqlx::query_scalar::<_, String>(&format!("EXPLAIN {select}"))
            .fetch_all(&mut *tx)
            .await?;
        tx.rollback().await?;
        Ok(lines.join("\n"))
    }

    sql::common_operations!(sqlx::Postgres);
    super::bodies::body_operations!();
    super::reconcile::reconcile_operations!();
}
