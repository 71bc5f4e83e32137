//! One shard of the in-process dedup store: the delivered keys of the shard
//! in commit order (a ring, which is also the expiry and eviction order,
//! since every key lives for the same window) plus an open-addressing index
//! of ring positions, and the keys reserved but not yet settled.
//!
//! Memory per delivered key: a 40-byte ring slot (128-bit key hash, 16-byte
//! event id, 8-byte expiry) plus 4-byte index buckets kept between 1/4 and
//! 1/2 full, i.e. 8 to 16 bytes: 48-56 B/key (53.4 B/key measured at the
//! default bound), plus at most two partly used ring chunks of 40 KiB per
//! shard. The ring grows and shrinks a chunk at a time, never copying the
//! keys it holds. Reserved-but-unsettled keys sit in a separate small set,
//! bounded by requests in flight. The key text is never stored.
//!
//! A bucket holds a ring position modulo the smallest power of two above
//! the shard's bound, and in its spare bits a few bits of the key's hash:
//! a lookup of a new key (every accepted webhook) then rarely reads a ring
//! slot, which with millions of keys held is a cache miss each.

use hashbrown::HashTable;

use super::ring::ChunkedRing;

/// A 128-bit hash of (source, key).
pub(super) type KeyHash = u128;

/// Set in every occupied index bucket; 0 is empty. The other 31 bits hold
/// the ring sequence number (low bits) and hash bits of the key (the rest).
const OCCUPIED: u32 = 1 << 31;
/// Smallest index table.
const MIN_TABLE: usize = 16;
/// Ring slots per chunk (40 KiB); smaller for shards with a smaller bound.
const RING_CHUNK: usize = 1024;
/// Most delivered keys one shard may hold (sequence numbers must stay unambiguous modulo 2^31).
pub(super) const MAX_SHARD_KEYS: usize = 1 << 30;

/// A delivered key.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// The key's hash, as two halves so that the slot needs only 8-byte alignment.
    hash: [u64; 2],
    /// The original event id (a UUID).
    id: [u8; 16],
    /// When the key is forgotten, in nanoseconds since the store's epoch.
    expires: u64,
}

/// What a reservation found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Claim {
    /// The key was free and is now reserved.
    Reserved,
    /// The key was delivered as this event id.
    Duplicate([u8; 16]),
    /// The key is reserved by a request that has not finished.
    InFlight,
}

/// Delivered and reserved keys of one shard.
#[derive(Debug)]
pub(super) struct Shard {
    /// Delivered keys, oldest first.
    ring: ChunkedRing<Slot>,
    /// Sequence number of `ring[0]`.
    head: u64,
    /// Expiry of `ring[0]` (`u64::MAX` when empty), kept beside the lock:
    /// checking for expired keys on every call then reads no ring slot,
    /// which with millions of keys held is a cache miss.
    front_expires: u64,
    /// Expiry of the newest key pushed (0 before any): the floor of the next one.
    back_expires: u64,
    /// Open-addressing (linear probing) index into `ring`; length is a power of two or 0.
    table: Vec<u32>,
    /// Keys reserved by requests still publishing, hashed by their own low half.
    pending: HashTable<KeyHash>,
    /// Most delivered keys held; the oldest is evicted beyond it.
    cap: usize,
    /// The bits of a bucket holding the ring sequence number: the smallest
    /// power of two above `cap`, minus one, so that the positions of a full
    /// ring stay distinct (`cap` <= 2^30, so it fits 31 bits).
    seq_mask: u32,
}

fn halves(hash: KeyHash) -> [u64; 2] {
    [hash as u64, (hash >> 64) as u64]
}

impl Shard {
    /// An empty shard holding at most `cap` delivered keys.
    pub(super) fn new(cap: usize) -> Self {
        let cap = cap.clamp(1, MAX_SHARD_KEYS);
        Self {
            ring: ChunkedRing::new(cap.min(RING_CHUNK)),
            head: 0,
            front_expires: u64::MAX,
            back_expires: 0,
            table: Vec::new(),
            pending: HashTable::new(),
            cap,
            seq_mask: ((1u64 << (usize::BITS - cap.leading_zeros())) - 1) as u32,
        }
    }

    /// Delivered keys held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.ring.len()
    }

    /// Heap bytes held by the delivered keys (ring and index).
    #[cfg(test)]
    pub(super) fn heap_bytes(&self) -> usize {
        self.ring.capacity() * size_of::<Slot>() + self.table.capacity() * size_of::<u32>()
    }

    /// Claims `hash` unless it is delivered or reserved; forgets expired keys first.
    pub(super) fn reserve(&mut self, hash: KeyHash, now: u64) -> Claim {
        self.expire(now);
        if self.pending.find(hash as u64, |&held| held == hash).is_some() {
            Claim::InFlight
        } else if let Some((_, offset)) = self.find(halves(hash)) {
            Claim::Duplicate(self.ring[offset].id)
        } else {
            self.pending.insert_unique(hash as u64, hash, |&held| held as u64);
            Claim::Reserved
        }
    }

    /// Marks a reserved key delivered as `id` until `now + window`. A key
    /// that was not reserved is ignored.
    pub(super) fn commit(&mut self, hash: KeyHash, id: [u8; 16], now: u64, window: u64) {
        // A reserved key is not delivered (reserve checked, and only its holder
        // can deliver it), so there is no need to look for it in the ring.
        if !self.take_pending(hash) {
            return;
        }
        self.expire(now);
        // Keep the ring sorted by expiry even if clocks were read out of order.
        self.push(Slot {
            hash: halves(hash),
            id,
            expires: now.saturating_add(window).max(self.back_expires),
        });
    }

    /// Frees a reserved key.
    pub(super) fn release(&mut self, hash: KeyHash) {
        self.take_pending(hash);
    }

    /// Removes a reserved key; false when it was not reserved.
    fn take_pending(&mut self, hash: KeyHash) -> bool {
        match self.pending.find_entry(hash as u64, |&held| held == hash) {
            Ok(entry) => {
                entry.remove();
                true
            }
            Err(_) => false,
        }
    }

    /// Forgets expired keys and returns unused memory; returns the keys left.
    pub(super) fn sweep(&mut self, now: u64) -> usize {
        self.expire(now);
        if self.table.len() > MIN_TABLE && self.ring.len() * 16 < self.table.len() {
            self.rebuild(table_size_for(self.ring.len()));
        }
        self.ring.shrink();
        self.ring.len()
    }

    fn expire(&mut self, now: u64) {
        while self.front_expires <= now {
            self.pop_front();
        }
    }

    fn push(&mut self, slot: Slot) {
        while self.ring.len() >= self.cap {
            self.pop_front();
        }
        if (self.ring.len() + 1) * 2 > self.table.len() {
            self.rebuild((self.table.len() * 2).max(MIN_TABLE));
        }
        let seq = self.head + self.ring.len() as u64;
        if self.ring.len() == 0 {
            self.front_expires = slot.expires;
        }
        self.back_expires = slot.expires;
        self.ring.push_back(slot);
        self.place(slot.hash, self.entry(slot.hash, seq));
    }

    fn pop_front(&mut self) {
        let Some(front) = self.ring.front() else { return };
        let wanted = self.entry(front.hash, self.head);
        let mut bucket = self.home(front.hash);
        while self.table[bucket] != wanted {
            bucket = (bucket + 1) & self.mask();
        }
        self.remove_bucket(bucket);
        self.ring.pop_front();
        self.head += 1;
        // The next slot lies beside the one popped: no cache miss of its own.
        self.front_expires = self.ring.front().map_or(u64::MAX, |slot| slot.expires);
    }

    /// Finds the bucket and ring offset of a delivered key.
    fn find(&self, hash: [u64; 2]) -> Option<(usize, usize)> {
        if self.table.is_empty() {
            return None;
        }
        let mut bucket = self.home(hash);
        let hash_bits = self.hash_bits(hash);
        loop {
            let entry = self.table[bucket];
            if entry == 0 {
                return None;
            }
            if entry & !self.seq_mask == hash_bits {
                let offset = self.offset(entry);
                if self.ring[offset].hash == hash {
                    return Some((bucket, offset));
                }
            }
            bucket = (bucket + 1) & self.mask();
        }
    }

    /// Backward-shift deletion: moves later entries of the probe run into the hole.
    fn remove_bucket(&mut self, mut hole: usize) {
        let mask = self.mask();
        let mut next = hole;
        loop {
            next = (next + 1) & mask;
            let entry = self.table[next];
            if entry == 0 {
                break;
            }
            let home = self.home(self.ring[self.offset(entry)].hash);
            // The entry may move into the hole unless its home lies cyclically in (hole, next].
            let stays = if hole <= next {
                hole < home && home <= next
            } else {
                hole < home || home <= next
            };
            if !stays {
                self.table[hole] = entry;
                hole = next;
            }
        }
        self.table[hole] = 0;
    }

    fn place(&mut self, hash: [u64; 2], entry: u32) {
        let mut bucket = self.home(hash);
        while self.table[bucket] != 0 {
            bucket = (bucket + 1) & self.mask();
        }
        self.table[bucket] = entry;
    }

    fn rebuild(&mut self, size: usize) {
        self.table = vec![0; size];
        for offset in 0..self.ring.len() {
            let hash = self.ring[offset].hash;
            self.place(hash, self.entry(hash, self.head + offset as u64));
        }
    }

    /// The bucket entry of the key with `hash` at ring sequence number `seq`.
    fn entry(&self, hash: [u64; 2], seq: u64) -> u32 {
        self.hash_bits(hash) | (seq as u32 & self.seq_mask)
    }

    /// The occupied bit and the bits of `hash` a bucket keeps above the sequence bits.
    fn hash_bits(&self, hash: [u64; 2]) -> u32 {
        // The top of the high half: the shard was picked from its low bits, the bucket from the low half.
        ((hash[1] >> 33) as u32 & !self.seq_mask) | OCCUPIED
    }

    fn offset(&self, entry: u32) -> usize {
        ((entry & self.seq_mask).wrapping_sub(self.head as u32) & self.seq_mask) as usize
    }

    fn home(&self, hash: [u64; 2]) -> usize {
        // The low half picks the bucket; the shard was picked from the high half.
        hash[0] as usize & self.mask()
    }

    fn mask(&self) -> usize {
        self.table.len() - 1
    }
}

/// Index size for `keys` keys: at most a quarter full after a rebuild.
fn table_size_for(keys: usize) -> usize {
    (keys * 4).next_power_of_two().max(MIN_TABLE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{HashMap, VecDeque};

    const ID: [u8; 16] = [7; 16];

    fn committed(shard: &mut Shard, hash: KeyHash, now: u64, window: u64) {
        assert_eq!(shard.reserve(hash, now), Claim::Reserved);
        shard.commit(hash, ID, now, window);
    }

    #[test]
    fn slot_is_40_bytes() {
        assert_eq!(size_of::<Slot>(), 40);
    }

    #[test]
    fn reserve_commit_duplicate_release() {
        let mut shard = Shard::new(100);
        assert_eq!(shard.reserve(1, 0), Claim::Reserved);
        assert_eq!(shard.reserve(1, 0), Claim::InFlight);
        shard.release(1);
        assert_eq!(shard.reserve(1, 0), Claim::Reserved);
        shard.commit(1, ID, 0, 10);
        assert_eq!(shard.reserve(1, 5), Claim::Duplicate(ID));
        assert_eq!(shard.reserve(1, 10), Claim::Reserved, "expired at now + window");
    }

    #[test]
    fn oldest_evicted_beyond_cap() {
        let mut shard = Shard::new(3);
        for hash in 1..=4 {
            committed(&mut shard, hash, 0, 100);
        }
        assert_eq!(shard.len(), 3);
        assert_eq!(shard.reserve(1, 0), Claim::Reserved);
        assert_eq!(shard.reserve(4, 0), Claim::Duplicate(ID));
    }

    #[test]
    fn colliding_low_halves_stay_distinct() {
        let mut shard = Shard::new(100);
        let (a, b) = (5u128, 5u128 | (1 << 64));
        committed(&mut shard, a, 0, 100);
        assert_eq!(shard.reserve(b, 0), Claim::Reserved);
        shard.commit(b, [9; 16], 0, 100);
        assert_eq!(shard.reserve(a, 0), Claim::Duplicate(ID));
        assert_eq!(shard.reserve(b, 0), Claim::Duplicate([9; 16]));
    }

    #[test]
    fn sweep_shrinks_after_expiry() {
        let mut shard = Shard::new(100_000);
        for hash in 0..10_000u128 {
            committed(&mut shard, hash * 0x9E37_79B9_7F4A_7C15, 0, 10);
        }
        let full = shard.heap_bytes();
        eprintln!("10000 keys while growing: {:.1} B/key", full as f64 / 10_000.0);
        assert!(full / 10_000 <= 56 + 10, "{} B/key", full / 10_000);
        assert_eq!(shard.sweep(10), 0);
        assert!(shard.heap_bytes() < full / 10);
    }

    #[test]
    fn bytes_per_key_at_the_bound() {
        let cap = 78_125; // the default 5,000,000 keys over 64 shards
        let mut shard = Shard::new(cap);
        for n in 0..(cap as u128 + 1000) {
            committed(
                &mut shard,
                n.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835),
                0,
                100,
            );
        }
        let per_key = shard.heap_bytes() as f64 / cap as f64;
        eprintln!("{cap} keys: {} bytes, {per_key:.1} B/key", shard.heap_bytes());
        assert!(per_key < 56.0, "{per_key} B/key");
    }

    proptest! {
        /// The shard behaves like a map with FIFO eviction, for any sequence of operations.
        #[test]
        fn matches_a_model(ops in proptest::collection::vec((0u8..4, 0u128..40, 0u64..3), 1..400)) {
            let (cap, window) = (16, 20);
            let mut shard = Shard::new(cap);
            let mut model: VecDeque<(KeyHash, u64)> = VecDeque::new();
            let mut pending: HashMap<KeyHash, ()> = HashMap::new();
            let mut now = 0;
            for (op, key, tick) in ops {
                now += tick;
                // Spread keys over the table, with some sharing a low half, and
                // some sharing the hash bits a bucket keeps (the top bits) while others differ there.
                let hash = (key % 7) | (key << 64) | ((key % 3) << 125);
                model.retain(|&(_, expires)| expires > now);
                let in_model = model.iter().any(|&(h, _)| h == hash);
                match op {
                    0 => {
                        let expected = if pending.contains_key(&hash) { Claim::InFlight }
                            else if in_model { Claim::Duplicate(ID) } else { Claim::Reserved };
                        prop_assert_eq!(shard.reserve(hash, now), expected);
                        if expected == Claim::Reserved { pending.insert(hash, ()); }
                    }
                    1 if pending.remove(&hash).is_some() => {
                        shard.commit(hash, ID, now, window);
                        if model.len() == cap { model.pop_front(); }
                        model.push_back((hash, now + window));
                    }
                    2 => { pending.remove(&hash); shard.release(hash); }
                    _ => prop_assert_eq!(shard.sweep(now), model.len()),
                }
            }
            prop_assert_eq!(shard.sweep(now), model.len());
        }
    }
}
