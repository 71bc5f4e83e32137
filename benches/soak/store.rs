//! The history store a soak run indexes into, seen from the benchmark: the
//! `[query]` table hookgate gets, the store's size on disk, and the final
//! check that every 2xx delivery was indexed (and how late).

use std::collections::HashSet;
use std::path::PathBuf;
use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Row};

/// Database the PostgreSQL runs create afresh (and drop at the end).
const PG_DATABASE: &str = "hookgate_soak";

/// Where one run's history goes.
pub(crate) enum SoakStore {
    /// A SQLite file in a temporary directory of its own.
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// Keeps the directory.
        _dir: tempfile::TempDir,
    },
    /// A fresh PostgreSQL database on the server at `server` (`postgres://USER@HOST:PORT`).
    Postgres {
        /// Server URL without a database.
        server: String,
    },
}

/// What the final check found.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Indexed {
    /// 2xx deliveries found in the store.
    pub(crate) found: u64,
    /// 2xx deliveries not in the store.
    pub(crate) missing: u64,
    /// Longest time from receipt (gateway clock) to being indexed, seconds.
    pub(crate) max_delay: f64,
}

impl SoakStore {
    /// A new SQLite file under `SOAK_DIR` (default: the system's temporary
    /// directory; on tmpfs an fsync is free, so put it on a disk).
    pub(crate) fn sqlite() -> SoakStore {
        let dir = match std::env::var_os("SOAK_DIR") {
            Some(base) => tempfile::tempdir_in(base),
            None => tempfile::tempdir(),
        }
        .expect("tempdir");
        SoakStore::Sqlite {
            path: dir.path().join("history.db"),
            _dir: dir,
        }
    }

    /// A fresh database on the PostgreSQL server `server`.
    pub(crate) async fn postgres(server: &str) -> SoakStore {
        let mut admin = admin(server).await;
        for statement in [
            format!("DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)"),
            format!("CREATE DATABASE {PG_DATABASE}"),
        ] {
            sqlx::query(&statement).execute(&mut admin).await.expect(&statement);
        }
        SoakStore::Postgres {
            server: server.to_owned(),
        }
    }

    /// Name in the report.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            SoakStore::Sqlite { .. } => "sqlite",
            SoakStore::Postgres { .. } => "postgres",
        }
    }

    /// `store = ...` for hookgate's `[query]` table.
    pub(crate) fn url(&self) -> String {
        match self {
            SoakStore::Sqlite { path, .. } => format!("sqlite://{}", path.display()),
            SoakStore::Postgres { server } => format!("{server}/{PG_DATABASE}"),
        }
    }

    /// Bytes on disk: the SQLite file with its WAL, or the database's size.
    pub(crate) async fn size(&self) -> u64 {
        match self {
            SoakStore::Sqlite { path, .. } => ["", "-wal", "-shm"]
                .iter()
                .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", path.display())).ok())
                .map(|m| m.len())
                .sum(),
            SoakStore::Postgres { server } => {
                let Ok(mut c) = PgConnectOptions::from_str(&format!("{server}/{PG_DATABASE}"))
                    .expect("url")
                    .connect()
                    .await
                else {
                    return 0;
                };
                let size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                    .fetch_one(&mut c)
                    .await
                    .unwrap_or(0);
                size as u64
            }
        }
    }

    /// Looks up every delivery numbered in `deliveries` by its dedup key.
    pub(crate) async fn check(&self, deliveries: &[u64]) -> Indexed {
        let statement = "SELECT dedup_key, indexed_at - received_at FROM events";
        let rows = match self {
            SoakStore::Sqlite { path, .. } => {
                let options = SqliteConnectOptions::new().filename(path).read_only(true);
                let mut c = sqlx::SqliteConnection::connect_with(&options)
                    .await
                    .expect("open sqlite");
                let rows: Vec<(Option<String>, i64)> = sqlx::query(statement)
                    .fetch_all(&mut c)
                    .await
                    .expect("read events")
                    .into_iter()
                    .map(|r| (r.get(0), r.get(1)))
                    .collect();
                rows
            }
            SoakStore::Postgres { server } => {
                let url = format!("{server}/{PG_DATABASE}");
                let mut c = sqlx::PgConnection::connect(&url).await.expect("connect postgres");
                sqlx::query(statement)
                    .fetch_all(&mut c)
                    .await
                    .expect("read events")
                    .into_iter()
                    .map(|r| (r.get(0), r.get(1)))
                    .collect()
            }
        };
        let max_delay = rows.iter().map(|(_, d)| *d).max().unwrap_or(0) as f64 / 1e6;
        let keys: HashSet<String> = rows.into_iter().filter_map(|(k, _)| k).collect();
        let found = deliveries
            .iter()
            .filter(|n| keys.contains(&crate::load::delivery_id(**n)))
            .count() as u64;
        Indexed {
            found,
            missing: deliveries.len() as u64 - found,
            max_delay,
        }
    }

    /// Drops the PostgreSQL database (the SQLite directory goes with `self`).
    pub(crate) async fn remove(self) {
        if let SoakStore::Postgres { server } = &self {
            let mut admin = admin(server).await;
            let statement = format!("DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)");
            let _ = sqlx::query(&statement).execute(&mut admin).await;
        }
    }
}

/// A connection to the server's `test` database, from which others are created and dropped.
async fn admin(server: &str) -> sqlx::PgConnection {
    sqlx::PgConnection::connect(&format!("{server}/test"))
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {server}/test: {e}"))
}
