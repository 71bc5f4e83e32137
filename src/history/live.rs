//! The live feed: events the indexer has just written, fanned out to the
//! live-tail streams through a bounded broadcast channel. A subscriber that
//! falls behind loses the oldest events and is told how many, so a slow
//! reader never makes the process buffer without bound.

use std::sync::Arc;

use tokio::sync::broadcast;

use super::store::EventSummary;

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
