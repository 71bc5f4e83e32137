//! Criterion benchmarks of every step of the webhook hot path, one module
//! per step, plus the whole handler without the network:
//!
//! - `verify`: signature verification per preset, 1 KiB and 64 KiB bodies;
//! - `dedup`: reserve of a held key (hit) and of a new key (miss), and
//!   reserve then commit below the store's bound and at it (evicting), with
//!   1.5 million keys held;
//! - `ratelimit`: the per-source and per-client quota check;
//! - `envelope`: building and encoding the protobuf envelope;
//! - `handler`: `Ingest::handle` on an in-memory request against the
//!   embedded mock cluster, one request at a time and 64 at once.
//!
//! Run all: `cargo bench --bench hot_path`; one group: `cargo bench --bench hot_path -- dedup`.

mod dedup;
mod envelope;
mod fixtures;
mod handler;
mod ratelimit;
mod verify;

use criterion::{criterion_group, criterion_main, Criterion};

/// Short runs: the steps take micro- to milliseconds and a 2-core machine runs them all in minutes.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3))
}

criterion_group! {
    name = hot_path;
    config = config();
    targets = verify::bench, dedup::bench, ratelimit::bench, envelope::bench, handler::bench
}
criterion_main!(hot_path);
