//! The in-process dedup store: keys hashed with a per-process secret, spread
//! over up to 64 mutex-guarded [`Shard`]s. Locks are held for a few hash-table
//! operations only, never across an await. Expired keys are forgotten lazily
//! whenever a shard is touched, and by a periodic sweep that also returns
//! memory and updates the `hookgate_dedup_keys` gauge.

use std::hash::BuildHasher;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use xxhash_rust::xxh3::{xxh3_128_with_secret, Xxh3};

use super::shard::{Claim, KeyHash, Shard, MAX_SHARD_KEYS};
use crate::telemetry::names;

/// Most shards; fewer for small bounds so that eviction stays close to global FIFO order.
const MAX_SHARDS: usize = 64;
/// Keys per shard below which fewer shards are used.
const KEYS_PER_SHARD: usize = 4096;
/// How often the background sweep runs.
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// Size of an xxh3 custom secret.
const SECRET_LEN: usize = 192;
/// Longest source name and key hashed in one pass from a stack buffer; longer ones are streamed.
const ONE_PASS_INPUT: usize = 128;

/// Delivered and reserved keys of this process.
pub(super) struct MemoryStore {
    /// The shards; a power-of-two count.
    shards: Box<[Mutex<Shard>]>,
    /// How long a delivered key is remembered, in nanoseconds.
    window: u64,
    /// The bound on delivered keys (each shard holds its share, rounded up).
    max_keys: usize,
    /// Time zero of the shards' expiry stamps.
    epoch: Instant,
    /// A random xxh3 secret: keys chosen by one sender cannot be crafted to
    /// collide with another sender's.
    secret: [u8; SECRET_LEN],
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("window", &Duration::from_nanos(self.window))
            .field("max_keys", &self.max_keys)
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// A store remembering delivered keys for `window`, at most about `max_keys` of them.
    pub(super) fn new(window: Duration, max_keys: usize) -> Self {
        let max_keys = max_keys.max(1);
        // A power of two (the shard is picked by masking), each shard holding at least KEYS_PER_SHARD.
        let wanted = (max_keys / KEYS_PER_SHARD).clamp(1, MAX_SHARDS);
        let count = 1 << wanted.ilog2();
        let cap = max_keys.div_ceil(count).min(MAX_SHARD_KEYS);
        Self {
            shards: (0..count).map(|_| Mutex::new(Shard::new(cap))).collect(),
            window: u64::try_from(window.as_nanos()).unwrap_or(u64::MAX).max(1),
            max_keys,
            epoch: Instant::now(),
            secret: random_secret(),
        }
    }

    /// The 128-bit hash naming `key` of `source`: the hash of `source`, 0xff,
    /// `key` (source names never contain 0xff, config validation sees to it).
    pub(super) fn hash(&self, source: &str, key: &str) -> KeyHash {
        let (source, key) = (source.as_bytes(), key.as_bytes());
        let len = source.len() + 1 + key.len();
        if len <= ONE_PASS_INPUT {
            let mut input = [0u8; ONE_PASS_INPUT];
            input[..source.len()].copy_from_slice(source);
            input[source.len()] = 0xff;
            input[source.len() + 1..len].copy_from_slice(key);
            return xxh3_128_with_secret(&input[..len], &self.secret);
        }
        // Streaming gives the same hash as one pass over the same bytes.
        let mut hasher = Xxh3::with_secret(self.secret);
        hasher.update(source);
        hasher.update(&[0xff]);
        hasher.update(key);
        hasher.digest128()
    }

    /// Claims a key: reserved, already delivered (with its id) or in flight.
    pub(super) fn reserve(&self, hash: KeyHash) -> Claim {
        let now = self.now();
        self.shard(hash).lock().reserve(hash, now)
    }

    /// Marks a reserved key delivered as `id` for the window.
    pub(super) fn commit(&self, hash: KeyHash, id: [u8; 16]) {
        // Read before the lock, to keep the lock short: the shard keeps its
        // expiry stamps rising even when another thread's reading was later.
        let now = self.now();
        self.shard(hash).lock().commit(hash, id, now, self.window);
    }

    /// Frees a reserved key.
    pub(super) fn release(&self, hash: KeyHash) {
        self.shard(hash).lock().release(hash);
    }

    /// Delivered keys held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    /// Heap bytes held by the delivered keys.
    #[cfg(test)]
    pub(super) fn heap_bytes(&self) -> usize {
        self.shards.iter().map(|s| s.lock().heap_bytes()).sum()
    }

    /// Forgets expired keys in every shard, returns memory and updates the gauge; returns the keys left.
    pub(super) fn sweep(&self) -> usize {
        let mut total = 0;
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            let now = self.now();
            total += shard.sweep(now);
        }
        metrics::gauge!(names::DEDUP_KEYS).set(total as f64);
        total
    }

    /// Starts the periodic sweep on the current Tokio runtime, if there is one;
    /// it ends when the store is dropped. Without it expiry still happens lazily.
    pub(super) fn spawn_sweeper(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let store: Weak<Self> = Arc::downgrade(self);
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(store) = store.upgrade() else { break };
                store.sweep();
            }
        });
    }

    fn shard(&self, hash: KeyHash) -> &Mutex<Shard> {
        // The high half picks the shard; the shard's index uses the low half.
        &self.shards[((hash >> 64) as usize) & (self.shards.len() - 1)]
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A random xxh3 secret, drawn from the standard library's randomly keyed hasher.
fn random_secret() -> [u8; SECRET_LEN] {
    let keyed = std::hash::RandomState::new();
    let mut secret = [0u8; SECRET_LEN];
    for (n, chunk) in secret.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&keyed.hash_one(n).to_le_bytes());
    }
    secret
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_scale_with_the_bound() {
        assert_eq!(MemoryStore::new(Duration::from_secs(1), 10).shards.len(), 1);
        assert_eq!(MemoryStore::new(Duration::from_secs(1), 20_000).shards.len(), 4);
        assert_eq!(MemoryStore::new(Duration::from_secs(1), 30_000).shards.len(), 4);
        assert_eq!(MemoryStore::new(Duration::from_secs(1), 5_000_000).shards.len(), 64);
    }

    #[test]
    fn long_keys_hash_like_short_ones() {
        let store = MemoryStore::new(Duration::from_secs(1), 10);
        let long = "k".repeat(ONE_PASS_INPUT);
        let mut hasher = Xxh3::with_secret(store.secret);
        hasher.update(b"s\xffk");
        assert_eq!(store.hash("s", "k"), hasher.digest128(), "one pass equals streaming");
        assert_ne!(store.hash("s", &long), store.hash("s", &long[1..]));
        assert_eq!(store.hash("s", &long), store.hash("s", &long));
    }

    #[test]
    fn hash_namespaces_sources_and_is_keyed_per_process() {
        let store = MemoryStore::new(Duration::from_secs(1), 10);
        assert_ne!(store.hash("a", "bc"), store.hash("ab", "c"));
        assert_eq!(store.hash("a", "b"), store.hash("a", "b"));
        let other = MemoryStore::new(Duration::from_secs(1), 10);
        assert_ne!(store.hash("a", "b"), other.hash("a", "b"));
    }

    #[test]
    fn bound_holds_across_shards() {
        let store = MemoryStore::new(Duration::from_secs(60), 50_000);
        for n in 0..60_000 {
            let hash = store.hash("s", &n.to_string());
            assert_eq!(store.reserve(hash), Claim::Reserved);
            store.commit(hash, [1; 16]);
        }
        let len = store.len();
        assert!(len <= 50_000 + store.shards.len(), "{len} keys");
        assert!(len >= 45_000, "{len} keys: shards fill evenly");
        let per_key = store.heap_bytes() as f64 / len as f64;
        assert!(per_key < 64.0, "{per_key} B/key");
        assert_eq!(store.sweep(), len);
    }
}
