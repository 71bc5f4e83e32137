//! One shard of the in-process dedup store: the keys of the shard in
//! reservation order (a ring, which is also the expiry and eviction order,
//! since every key lives for the same window) plus an open-addressing index
//! of ring positions. A reservation appends the key's slot at once, marked
//! pending; the commit then fills in the event id at the slot's known
//! position (at the hot end of the ring) without another index lookup, and
//! a release takes the key out of the index and leaves a tombstone in the ring.
//!
//! Memory per delivered key: a 40-byte ring slot (128-bit key hash, 16-byte
//! event id, 8-byte expiry) plus 4-byte index buckets kept between 1/4 and
//! 1/2 full, i.e. 8 to 16 bytes: 48-56 B/key (53.4 B/key measured at the
//! default bound), plus at most two partly used ring chunks of 40 KiB per
//! shard. The ring grows and shrinks a chunk at a time, never copying the
//! keys it holds. Reserved-but-unsettled keys take a slot like the others, bounded by requests in flight. The key text is never stored. A key is
//! remembered for the window from its reservation.
//!
//! A bucket holds a ring position modulo the smallest power of two above
//! the shard's bound, and in its spare bits a few bits of the key's hash:
//! a lookup of a new key (every accepted webhook) then rarely reads a ring
//! slot, which with millions of keys held is a cache miss each.

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

/// The `id` of a slot whose key is reserved and not yet settled (the nil UUID, never an event id).
const PENDING: [u8; 16] = [0; 16];
/// The `id` of a slot whose reservation was released: out of the index, waiting to leave the ring.
const RELEASED: [u8; 16] = [0xff; 16];

/// A reserved or delivered key.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// The key's hash, as two halves so that the slot needs only 8-byte alignment.
    hash: [u64; 2],
    /// The delivered event's id (a UUIDv7), or [`PENDING`] or [`RELEASED`].
    id: [u8; 16],
    /// When the key is forgotten, in nanoseconds since the store's epoch.
    expires: u64,
}

/// What a reservation found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Claim {
    /// The key was free and is now reserved, at this ring sequence number.
    Reserved(u64),
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
    /// Open-addressing (linear probing) index into `ring`; length is a power of two or 0.
    table: Vec<u32>,
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
            table: Vec::new(),
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

    /// Claims `hash` unless it is delivered or reserved; forgets expired keys
    /// first. A reserved key is remembered until `now + window`.
    pub(super) fn reserve(&mut self, hash: KeyHash, now: u64, window: u64) -> Claim {
        self.expire(now);
        if let Some((_, offset)) = self.find(halves(hash)) {
            return match self.ring[offset].id {
                PENDING => Claim::InFlight,
                id => Claim::Duplicate(id),
            };
        }
        // Keep the ring sorted by expiry even if clocks were read out of order.
        let floor = self.ring.back().map_or(0, |s| s.expires);
        Claim::Reserved(self.push(Slot {
            hash: halves(hash),
            id: PENDING,
            expires: now.saturating_add(window).max(floor),
        }))
    }

    /// Marks the key reserved at `seq` delivered as `id`. Nothing happens when
    /// its slot is gone (expired or evicted while the request was publishing).
    pub(super) fn commit(&mut self, hash: KeyHash, seq: u64, id: [u8; 16]) {
        if let Some(offset) = self.pending_offset(hash, seq) {
            self.ring[offset].id = id;
        }
    }

    /// Frees the key reserved at `seq`, so that it can be reserved again.
    pub(super) fn release(&mut self, hash: KeyHash, seq: u64) {
        let Some(offset) = self.pending_offset(hash, seq) else {
            return;
        };
        let slot = self.ring[offset];
        let mut bucket = self.home(slot.hash);
        let wanted = self.entry(slot.hash, seq);
        while self.table[bucket] != wanted {
            bucket = (bucket + 1) & self.mask();
        }
        self.remove_bucket(bucket);
        self.ring[offset].id = RELEASED;
    }

    /// The ring offset of the still pending reservation of `hash` at `seq`.
    fn pending_offset(&self, hash: KeyHash, seq: u64) -> Option<usize> {
        let offset = usize::try_from(seq.checked_sub(self.head)?).ok()?;
        let slot = self.ring.get(offset)?;
        (slot.hash == halves(hash) && slot.id == PENDING).then_some(offset)
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
        while self.ring.front().is_some_and(|slot| slot.expires <= now) {
            self.pop_front();
        }
    }

    /// Appends `slot` (evicting the oldest beyond the bound) and returns its sequence number.
    fn push(&mut self, slot: Slot) -> u64 {
        while self.ring.len() >= self.cap {
            self.pop_front();
        }
        if (self.ring.len() + 1) * 2 > self.table.len() {
            self.rebuild((self.table.len() * 2).max(MIN_TABLE));
        }
        let seq = self.head + self.ring.len() as u64;
        self.ring.push_back(slot);
        self.place(slot.hash, self.entry(slot.hash, seq));
        seq
    }

    fn pop_front(&mut self) {
        let Some(&front) = self.ring.front() else { return };
        if front.id != RELEASED {
            let wanted = self.entry(front.hash, self.head);
            let mut bucket = self.home(front.hash);
            while self.table[bucket] != wanted {
                bucket = (bucket + 1) & self.mask();
            }
            self.remove_bucket(bucket);
        }
        self.ring.pop_front();
        self.head += 1;
    }

    /// Finds the bucket and ring offset of a reserved or delivered key.
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
            let slot = self.ring[offset];
            if slot.id != RELEASED {
                self.place(slot.hash, self.entry(slot.hash, self.head + offset as u64));
            }
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
    use std::collections::VecDeque;

    const ID: [u8; 16] = [7; 16];

    /// Reserves `hash` (which must be free) and returns its ring position.
    fn reserved(shard: &mut Shard, hash: KeyHash, now: u64, window: u64) -> u64 {
        match shard.reserve(hash, now, window) {
            Claim::Reserved(seq) => seq,
            other => panic!("expected a reservation, got {other:?}"),
        }
    }

    fn committed(shard: &mut Shard, hash: KeyHash, now: u64, window: u64) {
        let seq = reserved(shard, hash, now, window);
        shard.commit(hash, seq, ID);
    }

    #[test]
    fn slot_is_40_bytes() {
        assert_eq!(size_of::<Slot>(), 40);
    }

    #[test]
    fn reserve_commit_duplicate_release() {
        let mut shard = Shard::new(100);
        let first = reserved(&mut shard, 1, 0, 10);
        assert_eq!(shard.reserve(1, 0, 10), Claim::InFlight);
        shard.release(1, first);
        shard.commit(1, first, ID);
        assert!(
            matches!(shard.reserve(1, 0, 10), Claim::Reserved(_)),
            "released, and a late commit is ignored"
        );
        assert_eq!(shard.reserve(1, 0, 10), Claim::InFlight);
        let second = first + 1;
        shard.commit(1, second, ID);
        assert_eq!(shard.reserve(1, 5, 10), Claim::Duplicate(ID));
        assert!(
            matches!(shard.reserve(1, 10, 10), Claim::Reserved(_)),
            "expired at reservation + window"
        );
    }

    #[test]
    fn oldest_evicted_beyond_cap() {
        let mut shard = Shard::new(3);
        for hash in 1..=4 {
            committed(&mut shard, hash, 0, 100);
        }
        assert_eq!(shard.len(), 3);
        assert!(matches!(shard.reserve(1, 0, 100), Claim::Reserved(_)));
        assert_eq!(shard.reserve(4, 0, 100), Claim::Duplicate(ID));
    }

    #[test]
    fn colliding_low_halves_stay_distinct() {
        let mut shard = Shard::new(100);
        let (a, b) = (5u128, 5u128 | (1 << 64));
        committed(&mut shard, a, 0, 100);
        let seq = reserved(&mut shard, b, 0, 100);
        shard.commit(b, seq, [9; 16]);
        assert_eq!(shard.reserve(a, 0, 100), Claim::Duplicate(ID));
        assert_eq!(shard.reserve(b, 0, 100), Claim::Duplicate([9; 16]));
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

    /// The slot states of the model.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum State {
        Pending,
        Delivered,
        Released,
    }

    proptest! {
        /// The shard's index agrees with a linear search of a plain queue, for any sequence of operations.
        #[test]
        fn matches_a_model(ops in proptest::collection::vec((0u8..4, 0u128..40, 0u64..3), 1..400)) {
            let (cap, window) = (16, 20);
            let mut shard = Shard::new(cap);
            // (hash, expires, state, seq), oldest first.
            let mut model: VecDeque<(KeyHash, u64, State, u64)> = VecDeque::new();
            let mut next_seq = 0;
            let mut now = 0;
            for (op, key, tick) in ops {
                now += tick;
                // Spread keys over the table, with some sharing a low half, and
                // some sharing the hash bits a bucket keeps (the top bits) while others differ there.
                let hash = (key % 7) | (key << 64) | ((key % 3) << 125);
                while model.front().is_some_and(|&(_, expires, _, _)| expires <= now) {
                    model.pop_front();
                }
                let live = model.iter().rev().find(|&&(h, _, state, _)| h == hash && state != State::Released).copied();
                match op {
                    0 => {
                        let claim = shard.reserve(hash, now, window);
                        match live {
                            Some((_, _, State::Pending, _)) => prop_assert_eq!(claim, Claim::InFlight),
                            Some(_) => prop_assert_eq!(claim, Claim::Duplicate(ID)),
                            None => {
                                prop_assert_eq!(claim, Claim::Reserved(next_seq));
                                if model.len() == cap { model.pop_front(); }
                                model.push_back((hash, now + window, State::Pending, next_seq));
                                next_seq += 1;
                            }
                        }
                    }
                    1 | 2 => {
                        // Settle the key's pending reservation, if it has one.
                        if let Some((_, _, State::Pending, seq)) = live {
                            let slot = model.iter_mut().find(|slot| slot.3 == seq).unwrap();
                            if op == 1 {
                                shard.commit(hash, seq, ID);
                                slot.2 = State::Delivered;
                            } else {
                                shard.release(hash, seq);
                                slot.2 = State::Released;
                            }
                        }
                    }
                    _ => prop_assert_eq!(shard.sweep(now), model.len()),
                }
            }
            prop_assert_eq!(shard.sweep(now), model.len());
        }
    }
}
