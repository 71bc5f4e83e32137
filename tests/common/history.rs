//! The history side of the harness: sample envelopes and records, the test
//! stores (SQLite, and PostgreSQL in a private schema per test), and readers
//! of the query API's pages and live tail.

use std::str::FromStr;
use std::time::Duration;

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
            static_credential: false,
        }),
        client_addr: "127.0.0.1".into(),
        replay: false,
        body_ref: None,
        recovered: false,
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

/// Fails the test: no URL of [`postgres_urls`] answered.
fn unreachable_postgres() -> ! {
    panic!(
        "PostgreSQL is not reachable at {:?} (set HOOKGATE_TEST_POSTGRES)",
        postgres_urls()
    );
}

/// A PostgreSQL store in a schema of its own, so that tests run in parallel.
pub struct PgSchema {
    /// The store, connected with `search_path` set to the schema.
    pub store: Store,
    /// The schema name.
    schema: String,
    /// Where it lives.
    url: String,
    /// A database created for this test alone: `(server URL, name)`.
    own_database: Option<(String, String)>,
    /// Set once the schema is gone.
    dropped: bool,
}

impl PgSchema {
    /// Creates `hg_test_<uuid>` and opens a store in it (migrations applied).
    pub async fn create() -> PgSchema {
        for url in postgres_urls() {
            if let Some(pg) = PgSchema::open(url, None).await {
                return pg;
            }
        }
        unreachable_postgres()
    }

    /// Like [`PgSchema::create`], in a database created for this test
    /// alone: for outcomes that other tests' sessions of a shared database
    /// would change (VACUUM keeps every row an open transaction of the
    /// same database might still see).
    pub async fn create_in_own_database() -> PgSchema {
        let name = format!("hg_test_{}", uuid::Uuid::now_v7().simple());
        for url in postgres_urls() {
            let Ok(admin) = PgPoolOptions::new().max_connections(1).connect(&url).await else {
                continue;
            };
            admin
                .execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("create database");
            admin.close().await;
            let mut database_url = url::Url::parse(&url).expect("postgres URL");
            database_url.set_path(&name);
            let pg = PgSchema::open(database_url.into(), Some((url, name.clone()))).await;
            return pg.expect("the new database is reachable");
        }
        unreachable_postgres()
    }

    /// Creates the schema at `url` and opens a store in it; `None` when
    /// the server does not answer.
    async fn open(url: String, own_database: Option<(String, String)>) -> Option<PgSchema> {
        let schema = format!("hg_test_{}", uuid::Uuid::now_v7().simple());
        let admin = PgPoolOptions::new().max_connections(1).connect(&url).await.ok()?;
        admin
            .execute(format!("CREATE SCHEMA {schema}").as_str())
            .await
            .expect("create schema");
        admin.close().await;
        let options = PgConnectOptions::from_str(&url)
            .unwrap()
            .options([("search_path", schema.as_str())]);
        let store = Store::Postgres(PostgresStore::connect(options).await.expect("postgres store"));
        Some(PgSchema {
            store,
            schema,
            url,
            own_database,
            dropped: false,
        })
    }

    /// The server URL (without schema).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema name.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// A pool of its own on the schema, for SQL the store does not offer
    /// (triggers that make it fail, lock inspection).
    pub async fn admin(&self) -> sqlx::PgPool {
        let options = PgConnectOptions::from_str(&self.url)
            .unwrap()
            .options([("search_path", self.schema.as_str())]);
        PgPoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .expect("postgres admin pool")
    }

    /// Closes the store and drops the schema (or the test's database).
    pub async fn remove(mut self) {
        self.store.close().await;
        drop_schema_or_database(&self.url, &self.schema, self.own_database.as_ref()).await;
        self.dropped = true;
    }
}

async fn drop_schema_or_database(url: &str, schema: &str, own_database: Option<&(String, String)>) {
    let (url, statement) = match own_database {
        Some((server, name)) => (server.as_str(), format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")),
        None => (url, format!("DROP SCHEMA IF EXISTS {schema} CASCADE")),
    };
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .expect("postgres");
    admin
        .execute(statement.as_str())
        .await
        .expect("drop the test schema or database");
    admin.close().await;
}

impl Drop for PgSchema {
    /// A test that panicked still leaves no schema behind.
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (url, schema, own_database) = (self.url.clone(), self.schema.clone(), self.own_database.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(drop_schema_or_database(&url, &schema, own_database.as_ref()));
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

/// GETs `url` of the query API with an optional bearer `token`: the status
/// and the JSON answer (`Null` when the answer is not JSON).
pub async fn get_json(url: &str, token: Option<&str>) -> (reqwest::StatusCode, serde_json::Value) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut request = client.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.json().await.unwrap_or_default())
}

/// The event ids of a page of `GET /v1/events`, in order.
pub fn ids(page: &serde_json::Value) -> Vec<String> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Reads the server-sent events of `GET /v1/events/stream` block by block.
pub struct SseReader {
    /// The open stream.
    response: reqwest::Response,
    /// Text received but not yet returned.
    buffer: String,
}

impl SseReader {
    /// How long one block may take.
    const WAIT: Duration = Duration::from_secs(30);

    /// Opens the stream at `url` with `token`; checks the answer and its `connected` greeting.
    pub async fn open(url: &str, token: &str) -> SseReader {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let response = client.get(url).bearer_auth(token).send().await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let mut reader = SseReader {
            response,
            buffer: String::new(),
        };
        assert!(reader.next().await.contains("connected"));
        reader
    }

    /// The next block (up to a blank line).
    pub async fn next(&mut self) -> String {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block = self.buffer[..end].to_owned();
                self.buffer.drain(..end + 2);
                return block;
            }
            let chunk = tokio::time::timeout(Self::WAIT, self.response.chunk())
                .await
                .expect("an SSE block in time");
            let chunk = chunk.unwrap().expect("the stream stays open");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next block that is not a heartbeat.
    pub async fn next_event(&mut self) -> String {
        loop {
            let block = self.next().await;
            if !block.contains("heartbeat") {
                return block;
            }
        }
    }

    /// The next block that contains `needle`.
    pub async fn until(&mut self, needle: &str) -> String {
        loop {
            let block = self.next().await;
            if block.contains(needle) {
                return block;
            }
        }
    }
}
