//! The lease that makes one query replica the reconciler of a source: a row
//! in the history store (SQLite or PostgreSQL) naming its holder and when it
//! lapses. The holder renews it before every run and every page it fetches;
//! another replica takes it over once it lapsed; a clean shutdown gives it up.

use std::time::Duration;

use crate::history::{Store, StoreError};

/// Shortest lease, so that a slow page never outlives it.
const MIN_TTL: Duration = Duration::from_secs(30);
/// Longest lease: how long a crashed holder can keep others waiting.
const MAX_TTL: Duration = Duration::from_secs(15 * 60);

/// One source's lease, as seen by this replica.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The history store holding the lease rows.
    store: Store,
    /// `reconcile:{source}`.
    name: String,
    /// This replica.
    holder: String,
    /// How long a renewal holds.
    ttl: Duration,
}

impl Lease {
    /// The lease of `source` for `holder`, lasting twice the run interval (within 30 s and 15 min).
    pub fn new(store: Store, source: &str, holder: &str, interval: Duration) -> Self {
        Self {
            store,
            name: format!("reconcile:{source}"),
            holder: holder.to_owned(),
            ttl: (interval * 2).clamp(MIN_TTL, MAX_TTL),
        }
    }

    /// Takes or renews the lease; false while another replica holds it.
    pub async fn renew(&self) -> Result<bool, StoreError> {
        let now = crate::history::now_micros();
        let until = now + i64::try_from(self.ttl.as_micros()).unwrap_or(i64::MAX);
        self.store.acquire_lease(&self.name, &self.holder, now, until).await
    }

    /// Gives the lease up (clean shutdown), so another replica need not wait for it to lapse.
    pub async fn release(&self) {
        if let Err(error) = self.store.release_lease(&self.name, &self.holder).await {
            tracing::warn!(lease = %self.name, %error, "could not release the reconcile lease");
        }
    }
}
