//! The in-process dedup store with 1.5 million delivered keys held: reserve
//! of a held key (hit: answered as a duplicate), of a new key (miss: reserved),
//! and a new key reserved then committed (what every accepted webhook costs).

use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion};
use futures::executor::block_on;
use hookgate::dedup::{Dedup, Reservation};

/// Delivered keys held while measuring.
const HELD: usize = 1_500_000;
/// The store's bound: room above `HELD` so that commits do not evict at once.
const MAX_KEYS: usize = 2_000_000;

pub(crate) fn bench(c: &mut Criterion) {
    let dedup = Dedup::in_memory(Duration::from_secs(72 * 3600), MAX_KEYS);
    let id = uuid::Uuid::now_v7();
    let started = Instant::now();
    for n in 0..HELD {
        let Ok(Reservation::Reserved(ticket)) = block_on(dedup.reserve("github", &key(n), id)) else {
            panic!("fresh key {n} not reserved");
        };
        block_on(ticket.commit()).expect("in-memory commit");
    }
    eprintln!("dedup: {HELD} keys held after {:.1?}", started.elapsed());

    let mut group = c.benchmark_group("dedup");
    let mut n = 0usize;
    group.bench_function("reserve_hit", |b| {
        b.iter_batched(
            || {
                // A stride through the held keys, so that lookups miss the CPU caches as in production.
                n = (n + 7919) % HELD;
                key(n)
            },
            |key| match block_on(dedup.reserve("github", &key, id)) {
                Ok(Reservation::Duplicate { id }) => id,
                other => panic!("expected a duplicate, got {other:?}"),
            },
            BatchSize::SmallInput,
        )
    });
    let mut fresh = 0usize;
    group.bench_function("reserve_miss", |b| {
        b.iter_batched(
            || {
                fresh += 1;
                format!("fresh-{fresh}")
            },
            // The ticket is returned, so its release (on drop) happens outside the measurement.
            |key| block_on(dedup.reserve("github", &key, id)),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("reserve_miss_then_commit", |b| {
        b.iter_batched(
            || {
                fresh += 1;
                format!("fresh-{fresh}")
            },
            |key| {
                let Ok(Reservation::Reserved(ticket)) = block_on(dedup.reserve("github", &key, id)) else {
                    panic!("fresh key not reserved");
                };
                block_on(ticket.commit())
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// The n-th delivery id, shaped like GitHub's (a UUID).
fn key(n: usize) -> String {
    format!("6f1c2a40-{:04x}-11ee-8c90-{:012x}", n % 0xffff, n)
}
