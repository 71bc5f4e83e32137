//! SQLite's WAL checkpoints, kept off every request's path. By default a
//! SQLite connection whose commit takes the WAL past 1,000 pages copies the
//! WAL back into the database file right then, inside that commit: the
//! indexer's batch, a retention delete, or an ingest request storing a
//! claim-checked body would wait for it and its fsync of the database
//! file. Here every connection of a file store opens with
//! `wal_autocheckpoint = 0`, and one task per store runs a PASSIVE
//! checkpoint every [`INTERVAL`] on a pooled connection (a thread of its
//! own): it never waits for readers or the writer, copies what they no
//! longer need, and lets the WAL start over once all of it is copied;
//! `journal_size_limit` then truncates the WAL file to [`WAL_LIMIT`].

use std::time::Duration;

use sqlx::sqlite::SqlitePool;

/// Time between two checkpoints.
pub(super) const INTERVAL: Duration = Duration::from_secs(1);
/// Bytes the WAL file is truncated to when it starts over.
pub(super) const WAL_LIMIT: u64 = 64 * 1024 * 1024;

/// The checkpoint task of one store; dropping it stops the task.
#[derive(Debug)]
pub(super) struct Checkpointer(tokio::task::JoinHandle<()>);

impl Checkpointer {
    /// Starts checkpointing `pool`'s database every [`INTERVAL`].
    pub(super) fn start(pool: SqlitePool) -> Self {
        Checkpointer(tokio::spawn(run(pool)))
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Checkpoints every [`INTERVAL`] until the pool is closed.
async fn run(pool: SqlitePool) {
    let mut ticks = tokio::time::interval(INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match checkpoint(&pool).await {
            Ok(()) => {}
            Err(_) if pool.is_closed() => return,
            Err(error) => tracing::warn!(%error, "history store WAL checkpoint failed; retrying"),
        }
    }
}

/// One PASSIVE checkpoint.
async fn checkpoint(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(pool).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_closed_pool_fails_the_checkpoint_and_ends_the_task() {
        let pool = SqlitePool::connect("sqlite::memory:").await.unwrap();
        let task = Checkpointer::start(pool.clone());
        pool.close().await;
        assert!(checkpoint(&pool).await.is_err());
        tokio::time::timeout(INTERVAL * 3, async {
            while !task.0.is_finished() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the task ends once the pool is closed");
    }
}
