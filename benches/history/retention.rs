//! Retention under refill (`HISTORY_RETENTION=N`): a fresh store is filled
//! with N events, retention's own sweep (`hookgate::history::retention`,
//! batches and pauses as it runs in hookgate) deletes them all, and the
//! same N events are written again. It prints the delete rate and the
//! store's size after the first fill, after the sweep and after the refill:
//! a store whose freed space is reused does not grow on the refill.

use std::time::{Duration, Instant};

use hookgate::history::retention;
use tokio::sync::watch;

use crate::deliveries::Deliveries;
use crate::phases::write_all;
use crate::stores::{BenchStore, Kind};

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Fills, sweeps and refills a fresh store of `kind`; prints what it measured.
pub(crate) async fn measure(deliveries: &Deliveries, partitions: i32, kind: Kind) {
    let bench = BenchStore::create(kind).await;
    let write = write_all(&bench, deliveries, partitions).await;
    let (filled, _) = bench.sizes().await;
    let (_stop, mut shutdown) = watch::channel(false);
    let started = Instant::now();
    // Every delivery was received before the run began: a zero retention deletes them all.
    let deleted = retention::sweep(&bench.store, Duration::ZERO, &mut shutdown)
        .await
        .expect("sweep");
    let sweep = started.elapsed();
    assert_eq!(deleted, deliveries.count, "retention deletes every event");
    let (swept, _) = bench.sizes().await;
    let rewrite = write_all(&bench, deliveries, partitions).await;
    let (refilled, _) = bench.sizes().await;
    println!(
        "\n{} retention ({} events): written at {:.0}/s; the sweep deleted them at {:.0}/s ({:.1} s, \
         pauses included); written again at {:.0}/s; store {:.0} MiB filled, {:.0} MiB swept, {:.0} MiB refilled",
        kind.name(),
        deliveries.count,
        deliveries.count as f64 / write.as_secs_f64(),
        deleted as f64 / sweep.as_secs_f64(),
        sweep.as_secs_f64(),
        deliveries.count as f64 / rewrite.as_secs_f64(),
        mib(filled),
        mib(swept),
        mib(refilled)
    );
    bench.remove().await;
}
