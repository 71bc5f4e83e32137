//! Deduplication of deliveries: a request first *reserves* its dedup key,
//! publishes, then *commits* the key (the broker acked: later deliveries of
//! the key are duplicates for the window) or *releases* it (the publish
//! failed: the sender's retry may go through). Concurrent deliveries of one
//! key see exactly one reservation; the others are told the key is in flight.
//!
//! Two stores: in process ([`Dedup::in_memory`], bounded, the embedded
//! default) and Redis ([`Dedup::connect`] with `dedup.redis`), shared by a
//! fleet of ingest replicas.

mod memory;
mod redis;
mod ring;
mod shard;

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::config::DedupConfig;
use memory::MemoryStore;
use redis::{Found, RedisStore};
use shard::{Claim, KeyHash};

/// How long a Redis reservation outlives a replica that crashed before settling it.
pub const PENDING_TTL: Duration = Duration::from_secs(60);

/// The dedup store; cheap to clone (clones share the store).
#[derive(Clone)]
pub struct Dedup {
    /// Where keys live.
    backend: Backend,
}

/// The two stores.
#[derive(Clone)]
enum Backend {
    /// In this process.
    Memory(Arc<MemoryStore>),
    /// In Redis.
    Redis(Arc<RedisStore>),
}

/// The outcome of [`Dedup::reserve`].
#[derive(Debug)]
pub enum Reservation {
    /// The key is ours: publish, then [`Ticket::commit`] or [`Ticket::release`].
    Reserved(Ticket),
    /// The key was delivered already, as the event `id`.
    Duplicate {
        /// The id of the event that was acked (UUID text).
        id: String,
    },
    /// Another request holds the key and has not finished.
    InFlight,
}

/// A reserved key. Dropping it without [`commit`](Ticket::commit) releases the key.
#[must_use = "commit the ticket once the broker acked, or release it; dropping it releases the key"]
pub struct Ticket {
    /// The reservation; `None` once settled.
    claim: Option<Claimed>,
}

/// What a ticket holds, per store.
enum Claimed {
    /// An in-process reservation.
    Memory {
        /// The store holding the reservation.
        store: Arc<MemoryStore>,
        /// The key's hash.
        hash: KeyHash,
        /// The reserving event's id.
        id: [u8; 16],
    },
    /// A Redis reservation.
    Redis {
        /// The store holding the reservation.
        store: Arc<RedisStore>,
        /// The Redis key.
        key: String,
        /// The reserving event's id.
        id: String,
    },
}

/// Why the dedup store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum DedupError {
    /// `dedup.redis` is not a Redis URL (found at start-up).
    #[error("invalid dedup.redis URL: {0}")]
    InvalidUrl(String),
    /// Redis failed, refused or did not answer in time; ingest answers 503.
    #[error("dedup store unavailable: {0}")]
    Unavailable(String),
}

impl Dedup {
    /// An in-process store remembering delivered keys for `window`, at most about
    /// `max_keys` of them (the oldest are forgotten first). 48-56 bytes per key at
    /// the bound (up to 66 while growing); see the `shard` module. Sweeps itself
    /// every few seconds when created inside a Tokio runtime, else lazily only.
    pub fn in_memory(window: Duration, max_keys: usize) -> Dedup {
        let store = Arc::new(MemoryStore::new(window, max_keys));
        store.spawn_sweeper();
        Dedup {
            backend: Backend::Memory(store),
        }
    }

    /// The store `config` asks for: Redis when `redis` is set, else in process.
    pub async fn connect(config: &DedupConfig) -> Result<Dedup, DedupError> {
        match &config.redis {
            None => Ok(Self::in_memory(config.window, config.max_keys)),
            Some(url) => Self::redis(url, config.window, PENDING_TTL).await,
        }
    }

    /// A Redis store at `url`; reservations not settled within `pending_ttl` lapse.
    pub async fn redis(url: &str, window: Duration, pending_ttl: Duration) -> Result<Dedup, DedupError> {
        let store = RedisStore::connect(url, window, pending_ttl).await?;
        Ok(Dedup {
            backend: Backend::Redis(Arc::new(store)),
        })
    }

    /// Atomically claims `key` of `source` for a new event `id` (a later
    /// duplicate reports it in hyphenated lower-case form).
    pub async fn reserve(&self, source: &str, key: &str, id: Uuid) -> Result<Reservation, DedupError> {
        match &self.backend {
            Backend::Memory(store) => Ok(reserve_in_memory(store, source, key, id)),
            // Boxed: the Redis round trip's state would otherwise make every caller's future kilobytes larger.
            Backend::Redis(store) => Box::pin(reserve_in_redis(store, source, key, &id.to_string())).await,
        }
    }

    /// Whether the store answers: Redis PING; always true in process.
    pub async fn is_healthy(&self) -> bool {
        match &self.backend {
            Backend::Memory(_) => true,
            Backend::Redis(store) => store.ping().await,
        }
    }
}

fn reserve_in_memory(store: &Arc<MemoryStore>, source: &str, key: &str, id: Uuid) -> Reservation {
    let hash = store.hash(source, key);
    match store.reserve(hash) {
        Claim::Reserved => {
            let claim = Claimed::Memory {
                store: Arc::clone(store),
                hash,
                id: id.into_bytes(),
            };
            Reservation::Reserved(Ticket { claim: Some(claim) })
        }
        Claim::Duplicate(original) => Reservation::Duplicate {
            id: Uuid::from_bytes(original).to_string(),
        },
        Claim::InFlight => Reservation::InFlight,
    }
}

async fn reserve_in_redis(
    store: &Arc<RedisStore>,
    source: &str,
    key: &str,
    id: &str,
) -> Result<Reservation, DedupError> {
    let key = RedisStore::key(source, key);
    Ok(match store.reserve(&key, id).await? {
        Found::Reserved => {
            let claim = Claimed::Redis {
                store: Arc::clone(store),
                key,
                id: id.to_owned(),
            };
            Reservation::Reserved(Ticket { claim: Some(claim) })
        }
        Found::Done(original) => Reservation::Duplicate { id: original },
        Found::Pending => Reservation::InFlight,
    })
}

impl Ticket {
    /// Marks the key delivered for the window, remembering this event's id.
    ///
    /// On error (Redis down) the key stays reserved until its pending TTL lapses;
    /// the event is in Kafka regardless, so callers log and still answer 2xx.
    pub async fn commit(mut self) -> Result<(), DedupError> {
        match self.claim.take() {
            Some(Claimed::Memory { store, hash, id }) => {
                store.commit(hash, id);
                Ok(())
            }
            // Boxed, as in `reserve`.
            Some(Claimed::Redis { store, key, id }) => Box::pin(async move { store.commit(&key, &id).await }).await,
            None => Ok(()),
        }
    }

    /// Frees the key so that a retry of the delivery can go through. Errors
    /// are logged: an unreleased Redis key lapses after its pending TTL.
    pub async fn release(mut self) {
        match self.claim.take() {
            Some(Claimed::Memory { store, hash, .. }) => store.release(hash),
            // Boxed, as in `reserve`.
            Some(Claimed::Redis { store, key, id }) => {
                Box::pin(async move { release_in_redis(&store, &key, &id).await }).await
            }
            None => {}
        }
    }
}

async fn release_in_redis(store: &RedisStore, key: &str, id: &str) {
    if let Err(error) = store.release(key, id).await {
        tracing::warn!(%error, "could not release a dedup key; it lapses after {PENDING_TTL:?}");
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        match self.claim.take() {
            None => {}
            Some(Claimed::Memory { store, hash, .. }) => store.release(hash),
            Some(Claimed::Redis { store, key, id }) => {
                // Without a runtime (shutdown) the pending TTL frees the key.
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(async move { release_in_redis(&store, &key, &id).await });
                }
            }
        }
    }
}

impl std::fmt::Debug for Dedup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.backend {
            Backend::Memory(store) => f.debug_tuple("Dedup").field(store).finish(),
            Backend::Redis(store) => f.debug_tuple("Dedup").field(store).finish(),
        }
    }
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = f.debug_struct("Ticket");
        match &self.claim {
            None => out.field("settled", &true),
            Some(Claimed::Memory { hash, .. }) => out.field("hash", &format_args!("{hash:032x}")),
            Some(Claimed::Redis { key, .. }) => out.field("key", key),
        };
        out.finish()
    }
}

#[cfg(test)]
mod tests;
