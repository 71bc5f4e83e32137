//! Helpers shared by the history tests: sample envelopes and records, a
//! private PostgreSQL schema per test, and polling.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::str::FromStr;
use std::time::{Duration, Instant};

use hookgate::envelope::{Header, Verification, WebhookEnvelope};
use hookgate::history::{EventRecord, PostgresStore, Provenance, Store};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::Executor;

/// A complete envelope; `n` varies the id and body.
pub fn envelope(source: &str, event_type: &str, received_at: i64, n: u64) -> WebhookEnvelope {
    WebhookEnvelope {
        id: uuid::Uuid::now_v7().to_string(),
        source: source.into(),
        event_type: event_type.into(),
        received_at_unix_micros: received_at,
        method: "POST".into(),
        path: format!("/webhooks/{source}"),
        query: String::new(),
        headers: vec![
            Header {
                name: "Content-Type".into(),
                value: bytes::Bytes::from_static(b"application/json"),
            },
            Header {
                name: "X-Binary".into(),
                value: bytes::Bytes::from_static(b"\xff\xfe"),
            },
        ],
        content_type: "application/json".into(),
        body: format!("{{\"n\":{n}}}").into_bytes().into(),
        dedup_key: format!("delivery-{n}"),
        verification: Some(Verification {
            scheme: "github".into(),
            verified: n % 2 == 0,
            secret_index: 0,
        }),
        client_addr: "127.0.0.1".into(),
        replay: false,
    }
}

/// A record as the indexer would store it.
pub fn record(source: &str, event_type: &str, received_at: i64, n: u64) -> EventRecord {
    let provenance = Provenance {
        topic: "webhooks".into(),
        partition: (n % 3) as i32,
        offset: n as i64,
    };
    EventRecord::from_envelope(
        &envelope(source, event_type, received_at, n),
        provenance,
        received_at + 1,
    )
    .unwrap()
}

/// Now in microseconds since the epoch.
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Polls `check` every 20 ms until it returns true; panics after `timeout`.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fresh in-memory SQLite store.
pub async fn sqlite_memory() -> Store {
    Store::open("sqlite::memory:").await.expect("in-memory sqlite")
}

/// A SQLite store in a file of `dir`.
pub async fn sqlite_file(dir: &tempfile::TempDir) -> Store {
    let url = format!("sqlite://{}", dir.path().join("history.db").display());
    Store::open(&url).await.expect("sqlite file")
}

/// Base URLs tried for the test PostgreSQL (trust auth).
fn postgres_urls() -> Vec<String> {
    match std::env::var("HOOKGATE_TEST_POSTGRES") {
        Ok(url) => vec![url],
        Err(_) => vec![
            "postgres://postgres@127.0.0.1:5432/test".into(),
            "postgres://root@127.0.0.1:5432/test".into(),
        ],
    }
}

/// A PostgreSQL store in a schema of its own, so that tests run in parallel.
pub struct PgSchema {
    /// The store, connected with `search_path` set to the schema.
    pub store: Store,
    /// The schema name.
    schema: String,
    /// Where it lives.
    url: String,
    /// Set once the schema is gone.
    dropped: bool,
}

impl PgSchema {
    /// Creates `hg_test_<uuid>` and opens a store in it (migrations applied).
    pub async fn create() -> PgSchema {
        let schema = format!("hg_test_{}", uuid::Uuid::now_v7().simple());
        for url in postgres_urls() {
            let Ok(admin) = PgPoolOptions::new().max_connections(1).connect(&url).await else {
                continue;
            };
            admin
                .execute(format!("CREATE SCHEMA {schema}").as_str())
                .await
                .expect("create schema");
            admin.close().await;
            let options = PgConnectOptions::from_str(&url)
                .unwrap()
                .options([("search_path", schema.as_str())]);
            let store = Store::Postgres(PostgresStore::connect(options).await.expect("postgres store"));
            return PgSchema {
                store,
                schema,
                url,
                dropped: false,
            };
        }
        panic!(
            "PostgreSQL is not reachable at {:?} (set HOOKGATE_TEST_POSTGRES)",
            postgres_urls()
        );
    }

    /// The server URL (without schema).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema name.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Closes the store and drops the schema.
    pub async fn remove(mut self) {
        self.store.close().await;
        drop_schema(&self.url, &self.schema).await;
        self.dropped = true;
    }
}

async fn drop_schema(url: &str, schema: &str) {
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .expect("postgres");
    admin
        .execute(format!("DROP SCHEMA IF EXISTS {schema} CASCADE").as_str())
        .await
        .expect("drop schema");
    admin.close().await;
}

impl Drop for PgSchema {
    /// A test that panicked still leaves no schema behind.
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (url, schema) = (self.url.clone(), self.schema.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(drop_schema(&url, &schema));
        })
        .join();
    }
}

/// Every test store kind, by name.
pub enum TestStore {
    /// In-memory SQLite.
    Sqlite(Store),
    /// A private PostgreSQL schema.
    Postgres(PgSchema),
}

impl TestStore {
    /// Opens the store kind named `kind` ("sqlite" or "postgres").
    pub async fn open(kind: &str) -> TestStore {
        match kind {
            "sqlite" => TestStore::Sqlite(sqlite_memory().await),
            "postgres" => TestStore::Postgres(PgSchema::create().await),
            other => panic!("unknown store kind {other}"),
        }
    }

    /// The store.
    pub fn store(&self) -> Store {
        match self {
            TestStore::Sqlite(store) => store.clone(),
            TestStore::Postgres(pg) => pg.store.clone(),
        }
    }

    /// Releases it (drops the PostgreSQL schema).
    pub async fn cleanup(self) {
        match self {
            TestStore::Sqlite(store) => store.close().await,
            TestStore::Postgres(pg) => pg.remove().await,
        }
    }
}
