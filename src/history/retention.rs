//! Retention: at start and then every minute, events received longer ago
//! than `query.retention` are deleted, in bounded batches with a pause
//! between them at least as long as the batch took, so that the indexer and
//! readers are never locked out for long and the indexer keeps at least half
//! of the store's writing time: when the store cannot both keep up with
//! ingest and delete as fast, retention is what falls behind.
//! Bodies kept out of Kafka records go by the same receive-time cutoff, so
//! they leave with their events (and so do those whose publish failed).
//! After a sweep that deleted something, the store is asked to make that
//! space reusable (a throttled `VACUUM` on PostgreSQL).

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::store::{Store, StoreError};
use super::{now_micros, shutdown_requested};
use crate::telemetry::names;

/// Time between sweeps.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// Most events deleted by one statement.
pub const DELETE_BATCH: u32 = 1000;
/// Shortest pause between two delete statements of one sweep.
const BATCH_PAUSE: Duration = Duration::from_millis(50);

/// Sweeps now and every [`SWEEP_INTERVAL`] until shutdown. The interval
/// runs from one sweep's start to the next, so a long sweep or reclaim does
/// not stretch it (a sweep that outlasts it is followed at once by the next).
pub async fn run(store: Store, retention: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut sweeps = tokio::time::interval(SWEEP_INTERVAL);
    sweeps.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = sweeps.tick() => {}
            () = shutdown_requested(&mut shutdown) => return,
        }
        match sweep(&store, retention, &mut shutdown).await {
            Ok(0) => {}
            Ok(deleted) => {
                tracing::info!(deleted, "retention deleted old events");
                reclaim_space(&store, &mut shutdown).await;
            }
            Err(error) => tracing::warn!(%error, "retention sweep failed; retrying at the next one"),
        }
    }
}

/// Lets the store reuse the space a sweep freed; a failure is logged and
/// left to the next sweep, and shutdown abandons it.
async fn reclaim_space(store: &Store, shutdown: &mut watch::Receiver<bool>) {
    tokio::select! {
        result = store.reclaim_space() => {
            if let Err(error) = result {
                tracing::warn!(%error, "reclaiming the space of deleted events failed; retrying after the next sweep");
            }
        }
        () = shutdown_requested(shutdown) => {}
    }
}

/// Deletes every event older than `retention`, batch by batch; returns how
/// many. Stops early (with what was deleted so far) at shutdown.
pub async fn sweep(
    store: &Store,
    retention: Duration,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<u64, StoreError> {
    let cutoff = now_micros().saturating_sub(i64::try_from(retention.as_micros()).unwrap_or(i64::MAX));
    let (total, stopped) = in_batches(shutdown, || async {
        let deleted = store.delete_older_than(cutoff, DELETE_BATCH).await?;
        metrics::counter!(names::RETENTION_DELETED).increment(deleted);
        Ok(deleted)
    })
    .await?;
    if !stopped {
        in_batches(shutdown, || store.delete_bodies_older_than(cutoff, DELETE_BATCH)).await?;
    }
    Ok(total)
}

/// Runs `delete` (one statement of at most [`DELETE_BATCH`] rows) until it
/// deletes fewer, pausing after each; returns how many rows it deleted and
/// whether shutdown stopped it first.
async fn in_batches<F, D>(shutdown: &mut watch::Receiver<bool>, mut delete: F) -> Result<(u64, bool), StoreError>
where
    F: FnMut() -> D,
    D: Future<Output = Result<u64, StoreError>>,
{
    let mut total = 0;
    loop {
        let started = Instant::now();
        let deleted = delete().await?;
        total += deleted;
        if deleted < u64::from(DELETE_BATCH) {
            return Ok((total, false));
        }
        if paused_until_shutdown(pause_after(started.elapsed()), shutdown).await {
            return Ok((total, true));
        }
    }
}

/// The pause after a delete statement that took `statement`: as long, and
/// at least [`BATCH_PAUSE`].
fn pause_after(statement: Duration) -> Duration {
    statement.max(BATCH_PAUSE)
}

/// Waits `pause`; true when shutdown came first.
async fn paused_until_shutdown(pause: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(pause) => false,
        () = shutdown_requested(shutdown) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_pauses_at_least_as_long_as_its_last_statement_took() {
        assert_eq!(pause_after(Duration::from_millis(3)), BATCH_PAUSE);
        assert_eq!(pause_after(Duration::from_millis(700)), Duration::from_millis(700));
    }
}
