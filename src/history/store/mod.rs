//! The history store: one interface over SQLite (embedded default, one WAL
//! file) and PostgreSQL (shared by several query replicas). Migrations are
//! applied when a store is opened. Every failure is counted in
//! `hookgate_store_errors_total{operation}`.

mod batch;
mod bodies;
mod checkpoint;
mod jobs;
mod postgres;
mod reconcile;
mod record;
mod rows;
mod search;
mod sql;
mod sqlite;

use std::time::Duration;

use crate::telemetry::names;

pub use bodies::BodyDigest;
pub use jobs::{JobState, ReplayJob};
pub use postgres::{PostgresStore, NOTIFY_CHANNEL};
pub use record::{EventRecord, EventSummary, HeaderEntry, InvalidEnvelope, Provenance, VerificationInfo};
pub(crate) use search::MAX_TEXT_LEN;
pub use search::{JsonMatch, JsonPointer, PointerError};
pub use sql::Order;
pub use sqlite::SqliteStore;

use sql::{Columns, Dialect};

/// How long a request waits for a free database connection before the
/// store counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is neither `sqlite:...` nor `postgres://...`.
    #[error("unsupported history store URL: expected sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl,
    /// The schema migrations could not be applied.
    #[error("cannot apply the history store migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database answered with an error or could not be reached.
    #[error("history store error: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored row cannot be read back.
    #[error("stored event {id} is unreadable: {reason}")]
    Corrupt {
        /// The event id.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl StoreError {
    /// True when the database is unreachable, saturated or busy (worth a
    /// retry), as opposed to a statement or data problem.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed,
            ) => true,
            StoreError::Database(sqlx::Error::Database(error)) => is_contention(error.as_ref()),
            _ => false,
        }
    }
}

/// Whether a database's own error says "not now" rather than "never":
/// SQLite's busy and locked results (primary codes 5 and 6, whatever the
/// extended code), PostgreSQL's connection (08), transaction rollback (40:
/// serialization failure, deadlock), resources (53) and operator
/// intervention (57) classes.
fn is_contention(error: &dyn sqlx::error::DatabaseError) -> bool {
    let Some(code) = error.code() else { return false };
    if error.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        return code.parse::<u32>().is_ok_and(|code| matches!(code & 0xff, 5 | 6));
    }
    ["08", "40", "53", "57"].iter().any(|class| code.starts_with(class))
}

/// Which events a list or live tail returns. `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Allowed sources; `Some(empty)` matches nothing.
    pub sources: Option<Vec<String>>,
    /// Exact event type.
    pub event_type: Option<String>,
    /// Received at or after, microseconds since the epoch.
    pub since: Option<i64>,
    /// Received strictly before, microseconds since the epoch.
    pub until: Option<i64>,
    /// Exact deduplication key.
    pub dedup_key: Option<String>,
    /// Verification outcome.
    pub verified: Option<bool>,
    /// Values inside JSON bodies, all of which must match.
    pub json: Vec<JsonMatch>,
    /// A word or phrase the body contains.
    pub text: Option<String>,
}

impl EventFilter {
    /// True when the filter looks inside bodies (`json`, `text`), which
    /// [`EventFilter::matches`] cannot see.
    pub fn searches_bodies(&self) -> bool {
        !self.json.is_empty() || self.text.is_some()
    }

    /// True when `event` passes the filter (used by the live tail), leaving
    /// the body filters aside.
    pub fn matches(&self, event: &EventSummary) -> bool {
        self.sources.as_ref().is_none_or(|s| s.contains(&event.source))
            && self
                .event_type
                .as_ref()
                .is_none_or(|t| event.event_type.as_ref() == Some(t))
            && self.since.is_none_or(|since| event.received_at >= since)
            && self.until.is_none_or(|until| event.received_at < until)
            && self
                .dedup_key
                .as_ref()
                .is_none_or(|k| event.dedup_key.as_ref() == Some(k))
            && self.verified.is_none_or(|v| event.verification.verified == v)
    }
}

/// A place in the newest-first order: a page continues strictly after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// `received_at` of the last event of the previous page.
    pub received_at: i64,
    /// `id` of the last event of the previous page.
    pub id: String,
}

impl From<&EventSummary> for Position {
    fn from(event: &EventSummary) -> Self {
        Position {
            received_at: event.received_at,
            id: event.id.clone(),
        }
    }
}

/// A history store. Clones share one connection pool.
#[derive(Debug, Clone)]
pub enum Store {
    /// A SQLite file (or in-memory database).
    Sqlite(SqliteStore),
    /// A PostgreSQL database.
    Postgres(PostgresStore),
}

/// Counts a failed store operation.
fn observe<T>(operation: &'static str, result: Result<T, StoreError>) -> Result<T, StoreError> {
    if let Err(error) = &result {
        metrics::counter!(names::STORE_ERRORS, "operation" => operation).increment(1);
        tracing::debug!(operation, %error, "history store operation failed");
    }
    result
}

impl Store {
    /// Opens `sqlite:PATH` / `sqlite::memory:` or `postgres://...` and applies migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let result = if url.starts_with("sqlite:") {
            SqliteStore::open(url).await.map(Store::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            PostgresStore::open(url).await.map(Store::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl)
        };
        observe("open", result)
    }

    /// Inserts events in one transaction, skipping ids already stored.
    /// Returns, per input event, whether it was new.
    pub async fn insert_batch(&self, events: &[EventRecord]) -> Result<Vec<bool>, StoreError> {
        let result = match self {
            Store::Sqlite(s) => {
                let _turn = s.write_turn().await;
                s.insert_batch(events).await
            }
            Store::Postgres(s) => s.insert_batch(events).await,
        };
        observe("insert", result)
    }

    /// Up to `limit` events matching `filter`, newest first, strictly after `after`.
    pub async fn list(
        &self,
        filter: &EventFilter,
        after: Option<&Position>,
        limit: u32,
    ) -> Result<Vec<EventSummary>, StoreError> {
        let statement = sql::scan(
            self.dialect(),
            Columns::Summary,
            Order::NewestFirst,
            filter,
            after,
            limit,
        );
        let result = match self {
            Store::Sqlite(s) => s.list(&statement).await,
            Store::Postgres(s) => s.list(&statement).await,
        };
        observe("list", result)
    }

    /// Up to `limit` complete events matching `filter` in `order`, strictly after `after`.
    pub async fn scan(
        &self,
        filter: &EventFilter,
        order: Order,
        after: Option<&Position>,
        limit: u32,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let statement = sql::scan(self.dialect(), Columns::Full, order, filter, after, limit);
        let result = match self {
            Store::Sqlite(s) => s.list_full(&statement).await,
            Store::Postgres(s) => s.list_full(&statement).await,
        };
        observe("scan", result)
    }

    /// How many events match `filter`.
    pub async fn count(&self, filter: &EventFilter) -> Result<u64, StoreError> {
        let statement = sql::count(self.dialect(), filter);
        let result = match self {
            Store::Sqlite(s) => s.count(&statement).await,
            Store::Postgres(s) => s.count(&statement).await,
        };
        observe("count", result)
    }

    /// Events received at or after `since` (µs), per source, by source name.
    pub async fn count_by_source(&self, since: i64) -> Result<Vec<(String, u64)>, StoreError> {
        let result = match self {
            Store::Sqlite(s) => s.count_by_source(since).await,
            Store::Postgres(s) => s.count_by_source(since).await,
        };
        let counts = observe("count", result)?;
        Ok(counts
            .into_iter()
            .map(|(source, n)| (source, u64::try_from(n).unwrap_or(0)))
            .collect())
    }

    /// Makes the expression indexes on configured JSON pointers exactly
    /// `pointers`: creates the missing ones, drops those no longer configured.
    pub async fn ensure_json_indexes(&self, pointers: &[JsonPointer]) -> Result<(), StoreError> {
        let dialect = self.dialect();
        let wanted: Vec<String> = pointers.iter().map(JsonPointer::index_name).collect();
        let existing = match self {
            Store::Sqlite(s) => s.index_names(search::INDEX_PREFIX).await,
            Store::Postgres(s) => s.index_names(search::INDEX_PREFIX).await,
        };
        let mut statements: Vec<String> = observe("index", existing)?
            .into_iter()
            .filter(|name| !wanted.contains(name))
            .map(|name| format!("DROP INDEX IF EXISTS {name}"))
            .collect();
        statements.extend(pointers.iter().map(|p| search::create_index(dialect, p)));
        for statement in statements {
            tracing::info!(%statement, "history store index");
            let result = match self {
                Store::Sqlite(s) => s.execute(&statement).await,
                Store::Postgres(s) => s.execute(&statement).await,
            };
            observe("index", result)?;
        }
        Ok(())
    }

    /// PostgreSQL: creates the word index `q=` searches through (GIN on
    /// `hookgate_body_words(body)`) when `enabled`, drops it otherwise.
    /// SQLite keeps its FTS5 word index either way (it costs a few µs per
    /// event there, against 60-80 µs on PostgreSQL).
    pub async fn ensure_text_index(&self, enabled: bool) -> Result<(), StoreError> {
        let Store::Postgres(s) = self else { return Ok(()) };
        let statement = search::text_index_ddl(enabled);
        tracing::info!(%statement, "history store index");
        observe("index", s.execute(&statement).await)
    }

    /// True when `q=` searches through a word index (always on SQLite).
    pub async fn has_text_index(&self) -> Result<bool, StoreError> {
        let Store::Postgres(s) = self else { return Ok(true) };
        let names = observe("index", s.index_names(search::TEXT_INDEX).await)?;
        Ok(!names.is_empty())
    }

    /// The database's plan for a `json=` lookup on `pointer` (newest page),
    /// to see whether an index serves it. PostgreSQL is told to avoid
    /// sequential scans, so the answer does not depend on the table's size.
    pub async fn explain_json_lookup(&self, pointer: &JsonPointer) -> Result<String, StoreError> {
        let select = format!(
            "SELECT id FROM events WHERE {} = 'x' ORDER BY received_at DESC, id DESC LIMIT 10",
            pointer.value_sql(self.dialect())
        );
        let result = match self {
            Store::Sqlite(s) => s.explain(&select).await,
            Store::Postgres(s) => s.explain(&select).await,
        };
        observe("explain", result)
    }

    fn dialect(&self) -> Dialect {
        match self {
            Store::Sqlite(_) => Dialect::Sqlite,
            Store::Postgres(_) => Dialect::Postgres,
        }
    }

    /// One complete event.
    pub async fn get(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        let result = match self {
            Store::Sqlite(s) => s.get(id).await,
            Store::Postgres(s) => s.get(id).await,
        };
        observe("get", result)
    }

    /// Deletes up to `batch` of the oldest events received before `cutoff` (µs); returns how many.
    pub async fn delete_older_than(&self, cutoff: i64, batch: u32) -> Result<u64, StoreError> {
        let result = match self {
            Store::Sqlite(s) => {
                let _turn = s.write_turn().await;
                s.delete_older_than(cutoff, batch).await
            }
            Store::Postgres(s) => s.delete_older_than(cutoff, batch).await,
        };
        observe("delete", result)
    }

    /// After a retention sweep: lets the database reuse the space of what it
    /// deleted (PostgreSQL: a throttled `VACUUM`; SQLite reuses free pages by
    /// itself, so there it does nothing).
    pub async fn reclaim_space(&self) -> Result<(), StoreError> {
        let Store::Postgres(s) = self else { return Ok(()) };
        observe("vacuum", s.reclaim_space().await)
    }

    /// Stores a body kept out of its Kafka record, under the event id (idempotent).
    pub async fn put_body(&self, id: &str, received_at: i64, sha256: &[u8], body: &[u8]) -> Result<(), StoreError> {
        let result = match self {
            Store::Sqlite(s) => s.put_body(id, received_at, sha256, body).await,
            Store::Postgres(s) => s.put_body(id, received_at, sha256, body).await,
        };
        observe("put_body", result)
    }

    /// The stored body of an event whose record carried a reference.
    pub async fn body(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let result = match self {
            Store::Sqlite(s) => s.body(id).await,
            Store::Postgres(s) => s.body(id).await,
        };
        observe("body", result)
    }

    /// Length and SHA-256 of a stored body, without reading it.
    pub async fn body_digest(&self, id: &str) -> Result<Option<BodyDigest>, StoreError> {
        let result = match self {
            Store::Sqlite(s) => s.body_digest(id).await,
            Store::Postgres(s) => s.body_digest(id).await,
        };
        observe("body", result)
    }

    /// Deletes up to `batch` of the oldest stored bodies received before `cutoff` (µs); returns how many.
    pub async fn delete_bodies_older_than(&self, cutoff: i64, batch: u32) -> Result<u64, StoreError> {
        let result = match self {
            Store::Sqlite(s) => {
                let _turn = s.write_turn().await;
                s.delete_bodies_older_than(cutoff, batch).await
            }
            Store::Postgres(s) => s.delete_bodies_older_than(cutoff, batch).await,
        };
        observe("delete", result)
    }

    /// Runs a trivial query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let result = match self {
            Store::Sqlite(s) => s.ping().await,
            Store::Postgres(s) => s.ping().await,
        };
        observe("ping", result)
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        match self {
            Store::Sqlite(s) => s.close().await,
            Store::Postgres(s) => s.close().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(source: &str, verified: bool, received_at: i64) -> EventSummary {
        EventSummary {
            id: "i".into(),
            source: source.into(),
            event_type: Some("push".into()),
            received_at,
            dedup_key: None,
            verification: VerificationInfo {
                scheme: "github".into(),
                verified,
                secret_index: 0,
            },
            content_type: String::new(),
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            client_addr: String::new(),
            body_size: 0,
            provenance: Provenance {
                topic: "t".into(),
                partition: 0,
                offset: 0,
            },
            indexed_at: 0,
        }
    }

    #[test]
    fn filters_match_in_memory_like_the_sql() {
        let e = summary("github", true, 100);
        assert!(EventFilter::default().matches(&e));
        assert!(EventFilter {
            sources: Some(vec!["github".into()]),
            ..Default::default()
        }
        .matches(&e));
        assert!(!EventFilter {
            sources: Some(vec![]),
            ..Default::default()
        }
        .matches(&e));
        assert!(EventFilter {
            since: Some(100),
            until: Some(101),
            ..Default::default()
        }
        .matches(&e));
        assert!(!EventFilter {
            until: Some(100),
            ..Default::default()
        }
        .matches(&e));
        assert!(!EventFilter {
            verified: Some(false),
            ..Default::default()
        }
        .matches(&e));
        assert!(!EventFilter {
            dedup_key: Some("k".into()),
            ..Default::default()
        }
        .matches(&e));
        assert!(!EventFilter {
            event_type: Some("issues".into()),
            ..Default::default()
        }
        .matches(&e));
    }

    #[test]
    fn only_connectivity_errors_count_as_unavailable() {
        assert!(StoreError::Database(sqlx::Error::PoolTimedOut).is_unavailable());
        assert!(!StoreError::Database(sqlx::Error::RowNotFound).is_unavailable());
        assert!(!StoreError::UnsupportedUrl.is_unavailable());
    }
}
