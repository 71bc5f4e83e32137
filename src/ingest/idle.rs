//! The header timeout of one connection, kept by a watchdog that wakes once
//! per `header_timeout` instead of a timer armed and cancelled per request.
//!
//! hyper's own `header_read_timeout` boxes a fresh timer for every request
//! head and registers and removes it in tokio's timer wheel each time; under
//! load that cost hookgate about a tenth of its peak throughput (README
//! "Performance"). Here each request bumps a counter when its head is parsed
//! and when it is answered, and the watchdog closes the connection when a
//! whole period passed without either while no request was in progress:
//! a client that sends no complete head (or stays idle on a keep-alive
//! connection) is cut off between one and two `header_timeout`s after its
//! last sign of life.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Requests started and answered on one connection.
#[derive(Debug, Default)]
pub(super) struct Activity {
    /// Request heads parsed (hyper called the service).
    started: AtomicU64,
    /// Requests whose answer was handed back to hyper.
    answered: AtomicU64,
}

impl Activity {
    /// A request head was parsed.
    pub(super) fn started(&self) {
        self.started.fetch_add(1, Ordering::Relaxed);
    }

    /// A request was answered.
    pub(super) fn answered(&self) {
        self.answered.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> (u64, u64) {
        (
            self.started.load(Ordering::Relaxed),
            self.answered.load(Ordering::Relaxed),
        )
    }
}

/// Resolves once a whole `timeout` passed with no request head parsed, no
/// answer given and no request in progress: then the connection is to be closed.
pub(super) async fn stalled(activity: &Activity, timeout: Duration) {
    let mut seen = activity.snapshot();
    loop {
        tokio::time::sleep(timeout).await;
        let now = activity.snapshot();
        let (started, answered) = now;
        if now == seen && started == answered {
            return;
        }
        seen = now;
    }
}

#[cfg(test)]
mod tests {
    //! Real time with short periods (a paused clock needs tokio's `test-util`,
    //! which would put a mutex behind every clock read of the benchmarks too).
    use super::*;
    use std::sync::Arc;
    use tokio::time::Instant;

    const PERIOD: Duration = Duration::from_millis(200);

    #[tokio::test]
    async fn a_silent_connection_is_stalled_after_one_period() {
        let started = Instant::now();
        stalled(&Activity::default(), PERIOD).await;
        let waited = started.elapsed();
        assert!(waited >= PERIOD && waited < 2 * PERIOD, "{waited:?}");
    }

    #[tokio::test]
    async fn progress_rearms_the_watchdog_for_a_whole_period() {
        let activity = Arc::new(Activity::default());
        let started = Instant::now();
        let watched = activity.clone();
        let watchdog = tokio::spawn(async move { stalled(&watched, PERIOD).await });
        // A request answered early in the first period: the check that ends
        // it sees progress, and only a second silent period closes.
        tokio::time::sleep(PERIOD / 10).await;
        activity.started();
        activity.answered();
        watchdog.await.unwrap();
        assert!(started.elapsed() >= 2 * PERIOD, "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn a_request_in_progress_is_never_cut_off() {
        let activity = Arc::new(Activity::default());
        activity.started();
        let watched = activity.clone();
        let watchdog = tokio::spawn(async move { stalled(&watched, PERIOD / 2).await });
        tokio::time::sleep(3 * PERIOD).await;
        assert!(!watchdog.is_finished(), "closed while a request was being answered");
        let answered_at = Instant::now();
        activity.answered();
        watchdog.await.unwrap();
        assert!(answered_at.elapsed() >= PERIOD / 2, "{:?}", answered_at.elapsed());
    }
}
