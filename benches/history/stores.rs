//! Fresh history stores for each phase: a SQLite file in a temporary
//! directory (on disk, beside the target directory unless `HISTORY_DIR`
//! says otherwise) and a PostgreSQL schema of its own (`HISTORY_POSTGRES`,
//! default the test server), both through `Store::open`/`connect` as
//! hookgate opens them; plus what the benchmark asks them beyond the store's
//! interface: row counts and sizes per table and index.

use std::str::FromStr;

use hookgate::history::{PostgresStore, Store};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::{Executor, Row};

/// Which database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// SQLite file (WAL).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Kind {
    /// Name in the tables.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Sqlite => "SQLite",
            Kind::Postgres => "PostgreSQL",
        }
    }
}

/// A store made for the benchmark, removed by [`BenchStore::remove`].
pub(crate) struct BenchStore {
    /// The store as hookgate uses it.
    pub(crate) store: Store,
    /// SQLite: the directory holding the file.
    dir: Option<tempfile::TempDir>,
    /// PostgreSQL: server URL and schema.
    schema: Option<(String, String)>,
}

/// Size of one table or index.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    /// Table or index name.
    pub(crate) name: String,
    /// Bytes on disk.
    pub(crate) bytes: u64,
}

/// True when PostgreSQL stores get the word index (`HISTORY_TEXT_INDEX=1`).
pub(crate) fn text_index() -> bool {
    std::env::var("HISTORY_TEXT_INDEX").is_ok_and(|v| v == "1")
}

/// The server the PostgreSQL phases use.
fn postgres_url() -> String {
    std::env::var("HISTORY_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

impl BenchStore {
    /// A fresh, empty store of `kind` (migrations applied).
    pub(crate) async fn create(kind: Kind) -> BenchStore {
        match kind {
            Kind::Sqlite => {
                let base = std::env::var("HISTORY_DIR").unwrap_or_else(|_| std::env::temp_dir().display().to_string());
                let dir = tempfile::tempdir_in(base).expect("tempdir");
                let url = format!("sqlite://{}", dir.path().join("history.db").display());
                let store = Store::open(&url).await.expect("sqlite store");
                BenchStore {
                    store,
                    dir: Some(dir),
                    schema: None,
                }
            }
            Kind::Postgres => {
                let url = postgres_url();
                let schema = format!("hg_bench_{}", uuid::Uuid::now_v7().simple());
                let admin = PgPoolOptions::new()
                    .max_connections(1)
                    .connect(&url)
                    .await
                    .expect("postgres");
                admin
                    .execute(format!("CREATE SCHEMA {schema}").as_str())
                    .await
                    .expect("schema");
                admin.close().await;
                let options = PgConnectOptions::from_str(&url)
                    .expect("url")
                    .options([("search_path", schema.as_str())]);
                let store = Store::Postgres(PostgresStore::connect(options).await.expect("postgres store"));
                store.ensure_text_index(text_index()).await.expect("word index");
                BenchStore {
                    store,
                    dir: None,
                    schema: Some((url, schema)),
                }
            }
        }
    }

    /// The SQLite file's URL.
    fn sqlite_url(&self) -> String {
        let dir = self.dir.as_ref().expect("sqlite");
        format!("sqlite://{}", dir.path().join("history.db").display())
    }

    /// Events stored, counted by the database.
    pub(crate) async fn count(&self) -> i64 {
        self.query_one("SELECT count(*) FROM events").await
    }

    /// Prepares for reading: PostgreSQL gathers planner statistics, as
    /// autovacuum does after a bulk load; SQLite runs as hookgate leaves it.
    pub(crate) async fn settle(&self) {
        if let Some((url, schema)) = &self.schema {
            let pool = pg_pool(url, schema).await;
            pool.execute("ANALYZE events").await.expect("analyze");
            pool.close().await;
        }
    }

    /// Runs one statement on a connection of its own (e.g. `DROP INDEX`).
    pub(crate) async fn execute(&self, sql: &str) {
        match &self.schema {
            None => {
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect(&self.sqlite_url())
                    .await
                    .expect("sqlite");
                pool.execute(sql).await.expect("statement");
                pool.close().await;
            }
            Some((url, schema)) => {
                let pool = pg_pool(url, schema).await;
                pool.execute(sql).await.expect("statement");
                pool.close().await;
            }
        }
    }

    async fn query_one(&self, sql: &str) -> i64 {
        match (&self.dir, &self.schema) {
            (Some(_), _) => {
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect(&self.sqlite_url())
                    .await
                    .expect("sqlite");
                let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.expect("query");
                pool.close().await;
                n
            }
            (None, Some((url, schema))) => {
                let pool = pg_pool(url, schema).await;
                let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.expect("query");
                pool.close().await;
                n
            }
            _ => unreachable!("a store is one or the other"),
        }
    }

    /// Bytes of the whole store, then of the table and of each index.
    pub(crate) async fn sizes(&self) -> (u64, Vec<Part>) {
        match &self.schema {
            None => self.sqlite_sizes().await,
            Some((url, schema)) => postgres_sizes(url, schema).await,
        }
    }

    /// SQLite: the file after a checkpoint; parts from the `dbstat` table.
    async fn sqlite_sizes(&self) -> (u64, Vec<Part>) {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect(&self.sqlite_url())
            .await
            .expect("sqlite");
        pool.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            .await
            .expect("checkpoint");
        let rows = sqlx::query("SELECT name, SUM(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY name")
            .fetch_all(&pool)
            .await
            .unwrap_or_default();
        pool.close().await;
        let parts = rows
            .iter()
            .map(|r| Part {
                name: r.get("name"),
                bytes: r.get::<i64, _>("bytes") as u64,
            })
            .filter(|p| {
                p.name == "events" || p.name.starts_with("events_") || p.name.starts_with("sqlite_autoindex_events")
            })
            .collect();
        let dir = self.dir.as_ref().expect("sqlite").path();
        let total = std::fs::read_dir(dir)
            .expect("dir")
            .filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.len())
            .sum();
        (total, parts)
    }

    /// Drops the schema or deletes the file.
    pub(crate) async fn remove(self) {
        self.store.close().await;
        if let Some((url, schema)) = &self.schema {
            let admin = PgPoolOptions::new()
                .max_connections(1)
                .connect(url)
                .await
                .expect("postgres");
            admin
                .execute(format!("DROP SCHEMA IF EXISTS {schema} CASCADE").as_str())
                .await
                .expect("drop");
            admin.close().await;
        }
        drop(self.dir);
    }
}

/// A one-connection pool on `schema`.
async fn pg_pool(url: &str, schema: &str) -> sqlx::PgPool {
    let options = PgConnectOptions::from_str(url)
        .expect("url")
        .options([("search_path", schema)]);
    PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("postgres")
}

/// PostgreSQL: the table with its TOAST, and each index.
async fn postgres_sizes(url: &str, schema: &str) -> (u64, Vec<Part>) {
    let pool = pg_pool(url, schema).await;
    let total: i64 = sqlx::query_scalar("SELECT pg_total_relation_size('events')")
        .fetch_one(&pool)
        .await
        .expect("size");
    let table: i64 = sqlx::query_scalar("SELECT pg_table_size('events')")
        .fetch_one(&pool)
        .await
        .expect("size");
    let indexes = sqlx::query(
        "SELECT c.relname::text AS name, pg_relation_size(c.oid) AS bytes FROM pg_index i \
         JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'events'::regclass ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .expect("index sizes");
    pool.close().await;
    let mut parts = vec![Part {
        name: "events (table, TOAST)".into(),
        bytes: table as u64,
    }];
    parts.extend(indexes.iter().map(|r| Part {
        name: r.get("name"),
        bytes: r.get::<i64, _>("bytes") as u64,
    }));
    (total as u64, parts)
}
