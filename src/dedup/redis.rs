//! The Redis dedup store, shared by a fleet of ingest replicas. A key
//! `hg:dedup:<source>:<key>` holds `pending:<id>` while a replica publishes
//! (with a short TTL, so a crashed replica frees its keys) and `done:<id>`
//! for the window once the broker acked. Each step is one Lua script, so
//! check-and-set is atomic across replicas. Every call is bounded by a
//! timeout: a slow Redis costs a 503, not the sender's patience.

use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisResult, Script};

use super::DedupError;

/// Upper bound on any single Redis call, reconnection included.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Upper bound on establishing the first connection at start-up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Returns the current value, or sets `pending:<id>` (NX semantics) and returns nil.
const RESERVE: &str = r"
local current = redis.call('GET', KEYS[1])
if current then return current end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
";

/// Sets `done:<id>` for the window unless some request already committed the key.
const COMMIT: &str = r"
local current = redis.call('GET', KEYS[1])
if current and string.sub(current, 1, 5) == 'done:' then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
";

/// Deletes the key only while it still holds our `pending:<id>`.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// What a reservation found in Redis.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Found {
    /// The key was free and now holds our pending marker.
    Reserved,
    /// The key was delivered as this event id.
    Done(String),
    /// Another request holds the key.
    Pending,
}

/// A connection to the shared dedup store.
pub(super) struct RedisStore {
    /// Multiplexed connection that reconnects by itself.
    conn: ConnectionManager,
    /// `host:port` (or socket path) and database, for logs; never the password.
    addr: String,
    /// How long a delivered key is remembered, in milliseconds.
    window_ms: u64,
    /// How long a reservation survives without commit or release, in milliseconds.
    pending_ms: u64,
    /// The compiled scripts (sent by hash, loaded on first use).
    scripts: Scripts,
}

/// The Lua scripts of the store.
struct Scripts {
    /// See [`RESERVE`].
    reserve: Script,
    /// See [`COMMIT`].
    commit: Script,
    /// See [`RELEASE`].
    release: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("addr", &self.addr)
            .field("window", &Duration::from_millis(self.window_ms))
            .field("pending_ttl", &Duration::from_millis(self.pending_ms))
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to `url`; fails when Redis cannot be reached within a few seconds.
    pub(super) async fn connect(url: &str, window: Duration, pending_ttl: Duration) -> Result<Self, DedupError> {
        let client = redis::Client::open(url).map_err(|e| DedupError::InvalidUrl(e.to_string()))?;
        let info = client.get_connection_info();
        let addr = format!("{}/{}", info.addr, info.redis.db);
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(1))
            .set_response_timeout(CALL_TIMEOUT)
            .set_number_of_retries(2)
            .set_max_delay(500);
        let conn = bounded(CONNECT_TIMEOUT, ConnectionManager::new_with_config(client, config)).await?;
        let scripts = Scripts {
            reserve: Script::new(RESERVE),
            commit: Script::new(COMMIT),
            release: Script::new(RELEASE),
        };
        Ok(Self {
            conn,
            addr,
            window_ms: millis(window),
            pending_ms: millis(pending_ttl),
            scripts,
        })
    }

    /// The Redis key of `key` of `source` (source names hold no ':').
    pub(super) fn key(source: &str, key: &str) -> String {
        format!("hg:dedup:{source}:{key}")
    }

    /// Reserves `key` for event `id` unless it is delivered or pending.
    pub(super) async fn reserve(&self, key: &str, id: &str) -> Result<Found, DedupError> {
        let mut conn = self.conn.clone();
        let mut call = self.scripts.reserve.key(key);
        call.arg(format!("pending:{id}")).arg(self.pending_ms);
        let current: Option<String> = bounded(CALL_TIMEOUT, call.invoke_async(&mut conn)).await?;
        match current {
            None => Ok(Found::Reserved),
            Some(value) => parse(&value),
        }
    }

    /// Marks `key` delivered as `id` for the window.
    pub(super) async fn commit(&self, key: &str, id: &str) -> Result<(), DedupError> {
        let mut conn = self.conn.clone();
        let mut call = self.scripts.commit.key(key);
        call.arg(format!("done:{id}")).arg(self.window_ms);
        let _: i64 = bounded(CALL_TIMEOUT, call.invoke_async(&mut conn)).await?;
        Ok(())
    }

    /// Frees `key` if it still holds the pending marker of `id`.
    pub(super) async fn release(&self, key: &str, id: &str) -> Result<(), DedupError> {
        let mut conn = self.conn.clone();
        let mut call = self.scripts.release.key(key);
        call.arg(format!("pending:{id}"));
        let _: i64 = bounded(CALL_TIMEOUT, call.invoke_async(&mut conn)).await?;
        Ok(())
    }

    /// Whether Redis answers PING in time.
    pub(super) async fn ping(&self) -> bool {
        let mut conn = self.conn.clone();
        let pong = bounded(CALL_TIMEOUT, redis::cmd("PING").query_async::<String>(&mut conn)).await;
        matches!(pong.as_deref(), Ok("PONG"))
    }
}

fn parse(value: &str) -> Result<Found, DedupError> {
    if let Some(id) = value.strip_prefix("done:") {
        Ok(Found::Done(id.to_owned()))
    } else if value.starts_with("pending:") {
        Ok(Found::Pending)
    } else {
        Err(DedupError::Unavailable(
            "a dedup key holds a value hookgate did not write".into(),
        ))
    }
}

/// Runs a Redis call with a deadline; failures and timeouts both mean "unavailable".
async fn bounded<T>(limit: Duration, call: impl Future<Output = RedisResult<T>>) -> Result<T, DedupError> {
    match tokio::time::timeout(limit, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(DedupError::Unavailable(error.to_string())),
        Err(_) => Err(DedupError::Unavailable(format!(
            "no answer from redis within {limit:?}"
        ))),
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse() {
        assert_eq!(parse("done:abc").unwrap(), Found::Done("abc".into()));
        assert_eq!(parse("pending:abc").unwrap(), Found::Pending);
        assert!(matches!(parse("junk"), Err(DedupError::Unavailable(_))));
    }

    #[test]
    fn keys_are_namespaced_per_source() {
        assert_eq!(RedisStore::key("github", "d-1"), "hg:dedup:github:d-1");
    }

    #[tokio::test]
    async fn bad_url_is_a_config_error() {
        let error = RedisStore::connect("http://nope", Duration::from_secs(1), Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(matches!(error, DedupError::InvalidUrl(_)), "{error:?}");
    }
}
