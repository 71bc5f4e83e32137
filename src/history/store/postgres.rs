//! The PostgreSQL store, shared by several query replicas. Tests point it
//! at a private schema through the connection's `search_path`.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::{StoreError, ACQUIRE_TIMEOUT};

/// Connections per process.
const CONNECTIONS: u32 = 10;

/// A PostgreSQL history store.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    /// The connection pool.
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `postgres://...` and applies migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::connect(PgConnectOptions::from_str(url)?).await
    }

    /// Connects with explicit options (e.g. a `search_path`) and applies migrations.
    pub async fn connect(options: PgConnectOptions) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new().max_connections(CONNECTIONS).acquire_timeout(ACQUIRE_TIMEOUT).connect_with(options).await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }

    super::sql::common_operations!();
}
