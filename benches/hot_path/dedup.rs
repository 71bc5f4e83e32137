//! The in-process dedup store with 1.5 million delivered keys held: reserve
//! of a held key (hit: answered as a duplicate), of a new key (miss: reserved),
//! and a new key reserved then committed (what every accepted webhook costs),
//! once in a store below its bound and once in a store at its bound, where
//! every commit evicts the oldest key (a gateway's steady state once its
//! window holds more deliveries than `dedup.max_keys`).

use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion};
use futures::executor::block_on;
use hookgate::dedup::{Dedup, Reservation};
use uuid::Uuid;

/// Delivered keys held while measuring.
const HELD: usize = 1_500_000;
/// The bound of the store that stays below it: far above what a run commits.
const ROOMY: usize = 50_000_000;

pub(crate) fn bench(c: &mut Criterion) {
    let id = Uuid::now_v7();
    let roomy = filled(ROOMY, id);
    let full = filled(HELD, id);

    let mut group = c.benchmark_group("dedup");
    let mut n = 0usize;
    group.bench_function("reserve_hit", |b| {
        b.iter_batched(
            || {
                // A stride through the held keys, so that lookups miss the CPU caches as in production.
                n = (n + 7919) % HELD;
                key(n)
            },
            |key| match block_on(roomy.reserve("github", &key, id)) {
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
            |key| block_on(roomy.reserve("github", &key, id)),
            BatchSize::SmallInput,
        )
    });
    for (name, store) in [
        ("reserve_miss_then_commit", &roomy),
        ("reserve_miss_then_commit_at_bound", &full),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    fresh += 1;
                    format!("fresh-{fresh}")
                },
                |key| reserve_and_commit(store, &key, id),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

/// A store bounded at `max_keys` holding `HELD` delivered keys (`full` when the two are equal).
fn filled(max_keys: usize, id: Uuid) -> Dedup {
    let dedup = Dedup::in_memory(Duration::from_secs(72 * 3600), max_keys);
    let started = Instant::now();
    for n in 0..HELD {
        reserve_and_commit(&dedup, &key(n), id);
    }
    eprintln!(
        "dedup: {HELD} keys held (bound {max_keys}) after {:.1?}",
        started.elapsed()
    );
    dedup
}

/// Reserves a key that must be new and commits it.
fn reserve_and_commit(dedup: &Dedup, key: &str, id: Uuid) {
    let Ok(Reservation::Reserved(ticket)) = block_on(dedup.reserve("github", key, id)) else {
        panic!("fresh key {key} not reserved");
    };
    block_on(ticket.commit()).expect("in-memory commit");
}

/// The n-th delivery id, shaped like GitHub's (a UUID).
fn key(n: usize) -> String {
    format!("6f1c2a40-{:04x}-11ee-8c90-{:012x}", n % 0xffff, n)
}
