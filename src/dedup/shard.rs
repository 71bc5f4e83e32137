//! One shard of the in-process dedup store: the delivered keys of the shard
//! in commit order (a ring, which is also the expiry and eviction order,
//! since every key lives for the same window), an index from key hash to
//! ring position (hashbrown's `HashTable` of sequence numbers), and the keys
//! reserved but not yet settled.
//!
//! Memory per delivered key: a 40-byte ring slot (128-bit key hash, 16-byte
//! event id, 8-byte expiry) plus a 4-byte sequence number and a control byte
//! in the index, which hashbrown keeps between 7/16 and 7/8 full: 46-52 B/key,
//! plus at most two partly used ring chunks of 40 KiB per shard. The ring
//! grows and shrinks a chunk at a time, never copying the keys it holds.
//! Reserved-but-unsettled keys sit in a separate small set, bounded by
//! requests in flight. The key text is never stored.

use hashbrown::HashTable;

use super::ring::ChunkedRing;

/// A 128-bit hash of (source, key).
pub(super) type KeyHash = u128;

/// Ring slots per chunk (40 KiB); smaller for shards with a smaller bound.
const RING_CHUNK: usize = 1024;
/// Most delivered keys one shard may hold (sequence numbers are kept modulo 2^32).
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
    /// Sequence number of `ring[0]`; the key at `ring[i]` has `head + i`.
    head: u64,
    /// Expiry of `ring[0]` (`u64::MAX` when empty), kept beside the ring so
    /// that checking for expired keys on every call reads no ring slot.
    front_expires: u64,
    /// Expiry of the newest key pushed (0 before any): the floor of the next one.
    back_expires: u64,
    /// The sequence number (modulo 2^32) of every delivered key, hashed by the key's low half.
    index: HashTable<u32>,
    /// Keys reserved by requests still publishing, hashed by their own low half.
    pending: HashTable<KeyHash>,
    /// Most delivered keys held; the oldest is evicted beyond it.
    cap: usize,
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
            index: HashTable::new(),
            pending: HashTable::new(),
            cap,
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
        self.ring.capacity() * size_of::<Slot>() + self.index.allocation_size()
    }

    /// Claims `hash` unless it is delivered or reserved; forgets expired keys first.
    pub(super) fn reserve(&mut self, hash: KeyHash, now: u64) -> Claim {
        self.expire(now);
        if self.pending.find(hash as u64, |&held| held == hash).is_some() {
            Claim::InFlight
        } else if let Some(slot) = self.find(halves(hash)) {
            Claim::Duplicate(slot.id)
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
        let (ring, head) = (&self.ring, self.head);
        self.index.shrink_to_fit(|&seq| ring[offset(seq, head)].hash[0]);
        self.pending.shrink_to_fit(|&held| held as u64);
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
        let seq = (self.head + self.ring.len() as u64) as u32;
        if self.ring.len() == 0 {
            self.front_expires = slot.expires;
        }
        self.back_expires = slot.expires;
        self.ring.push_back(slot);
        let (ring, head) = (&self.ring, self.head);
        self.index
            .insert_unique(slot.hash[0], seq, |&seq| ring[offset(seq, head)].hash[0]);
    }

    fn pop_front(&mut self) {
        let Some(front) = self.ring.front() else { return };
        let head = self.head as u32;
        if let Ok(entry) = self.index.find_entry(front.hash[0], |&seq| seq == head) {
            entry.remove();
        }
        self.ring.pop_front();
        self.head += 1;
        self.front_expires = self.ring.front().map_or(u64::MAX, |slot| slot.expires);
    }

    /// The ring slot of a delivered key.
    fn find(&self, hash: [u64; 2]) -> Option<&Slot> {
        let (ring, head) = (&self.ring, self.head);
        let seq = self.index.find(hash[0], |&seq| ring[offset(seq, head)].hash == hash)?;
        Some(&ring[offset(*seq, head)])
    }
}

/// The ring offset of sequence number `seq` when the oldest key has `head`.
fn offset(seq: u32, head: u64) -> usize {
    seq.wrapping_sub(head as u32) as usize
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
    fn sequence_numbers_wrap_around() {
        let mut shard = Shard::new(4);
        shard.head = u64::from(u32::MAX) - 2;
        for hash in 1..=8 {
            committed(&mut shard, hash, 0, 100);
        }
        assert_eq!(shard.len(), 4);
        assert_eq!(shard.reserve(8, 0), Claim::Duplicate(ID));
        assert_eq!(shard.reserve(5, 0), Claim::Duplicate(ID));
        assert_eq!(shard.reserve(4, 0), Claim::Reserved, "evicted");
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
