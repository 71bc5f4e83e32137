//! The live feed: events the indexer has just written, fanned out to the
//! live-tail streams through a bounded broadcast channel. A subscriber that
//! falls behind loses the oldest events and is told how many, so a slow
//! reader never makes the process buffer without bound. The feed is fed by
//! the local indexer (SQLite) or by the store's notifications (PostgreSQL,
//! where several replicas share the store and each indexes a part).

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::{broadcast, watch};

use super::shutdown_requested;
use super::store::{EventSummary, PostgresStore};

/// Wait after the listener failed to reconnect.
const RELAY_RETRY: Duration = Duration::from_secs(1);
/// Most ids read back in one query.
const RELAY_FETCH: usize = 500;

/// Events a subscriber may fall behind before it starts losing them.
pub const LIVE_FEED_CAPACITY: usize = 1024;

/// Sender side of the live feed. Clones share one channel.
#[derive(Debug, Clone)]
pub struct LiveFeed {
    /// The broadcast channel of newly indexed events.
    sender: broadcast::Sender<Arc<EventSummary>>,
}

impl LiveFeed {
    /// A feed in which each subscriber may lag `capacity` events.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self { sender }
    }

    /// Hands a newly indexed event to every current subscriber.
    pub fn publish(&self, event: EventSummary) {
        // No subscriber is not an error: nobody is watching.
        let _ = self.sender.send(Arc::new(event));
    }

    /// A receiver of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<EventSummary>> {
        self.sender.subscribe()
    }

    /// Number of live subscribers.
    pub fn subscribers(&self) -> usize {
        self.sender.receiver_count()
    }
}

impl Default for LiveFeed {
    fn default() -> Self {
        Self::new(LIVE_FEED_CAPACITY)
    }
}

/// Relays events stored by any replica, as announced by PostgreSQL on
/// [`NOTIFY_CHANNEL`](super::store::NOTIFY_CHANNEL) to `listener` (see
/// [`PostgresStore::listen`]), to `live` until shutdown. With a shared store
/// this replaces the local indexer as the feed's source. Notifications lost
/// while the listener reconnects are logged, not replayed.
pub async fn relay_notifications(
    store: PostgresStore,
    mut listener: PgListener,
    live: LiveFeed,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let notification = tokio::select! {
            received = listener.recv() => received,
            () = shutdown_requested(&mut shutdown) => return,
        };
        let mut ids: Vec<String> = match notification {
            Ok(notification) => ids_of(notification.payload()).collect(),
            Err(error) => {
                tracing::warn!(%error, "live tail lost the store's notifications; some events may be missing from it");
                tokio::time::sleep(RELAY_RETRY).await;
                continue;
            }
        };
        while let Some(more) = listener.next_buffered() {
            ids.extend(ids_of(more.payload()));
        }
        if live.subscribers() > 0 {
            announce(&store, &ids, &live).await;
        }
    }
}

/// Reads the summaries of `ids` and hands them to `live`, in order.
async fn announce(store: &PostgresStore, ids: &[String], live: &LiveFeed) {
    for chunk in ids.chunks(RELAY_FETCH) {
        match store.summaries(chunk).await {
            Ok(events) => events.into_iter().for_each(|event| live.publish(event)),
            Err(error) => tracing::warn!(%error, events = chunk.len(), "cannot read new events for the live tail"),
        }
    }
}

fn ids_of(payload: &str) -> impl Iterator<Item = String> + '_ {
    payload.split(',').filter(|id| !id.is_empty()).map(str::to_owned)
}
