//! The header timeout of one connection, kept by a watchdog task that wakes
//! once per `header_timeout` instead of a timer armed and cancelled per request.
//!
//! hyper's own `header_read_timeout` boxes a fresh timer for every request
//! head and registers and removes it in tokio's timer wheel each time; under
//! load that cost hookgate a large share of its peak throughput (README
//! "Performance"). Here each request bumps a counter when its head is parsed
//! and when it is answered, and the watchdog aborts the connection's task
//! when a whole period passed without either while no request was in
//! progress: a client that sends no complete head (or stays idle on a
//! keep-alive connection) is cut off between one and two `header_timeout`s
//! after its last sign of life. The watchdog is a task of its own so that the
//! connection's task does not poll a timer on each of its wake-ups.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::AbortHandle;

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

/// Watches the task serving one connection: aborts it (which closes the
/// connection) once a whole `timeout` passed with no request head parsed, no
/// answer given and no request in progress; returns when the task ended by itself.
pub(super) async fn guard(activity: Arc<Activity>, timeout: Duration, connection: AbortHandle) {
    let mut seen = activity.snapshot();
    while !connection.is_finished() {
        tokio::time::sleep(timeout).await;
        let now = activity.snapshot();
        let (started, answered) = now;
        if now == seen && started == answered {
            if !connection.is_finished() {
                tracing::debug!("closing a connection that sent no request head within the header timeout");
                connection.abort();
            }
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
    use tokio::task::JoinHandle;
    use tokio::time::Instant;

    const PERIOD: Duration = Duration::from_millis(200);

    /// A connection task that never ends by itself, watched by a guard.
    fn watched(activity: &Arc<Activity>, period: Duration) -> JoinHandle<()> {
        let connection = tokio::spawn(std::future::pending::<()>());
        tokio::spawn(guard(activity.clone(), period, connection.abort_handle()));
        connection
    }

    #[tokio::test]
    async fn a_silent_connection_is_closed_after_one_period() {
        let started = Instant::now();
        let connection = watched(&Arc::default(), PERIOD);
        assert!(connection.await.unwrap_err().is_cancelled());
        let waited = started.elapsed();
        assert!(waited >= PERIOD && waited < 2 * PERIOD, "{waited:?}");
    }

    #[tokio::test]
    async fn progress_rearms_the_watchdog_for_a_whole_period() {
        let activity = Arc::new(Activity::default());
        let started = Instant::now();
        let connection = watched(&activity, PERIOD);
        // A request answered early in the first period: the check that ends
        // it sees progress, and only a second silent period closes.
        tokio::time::sleep(PERIOD / 10).await;
        activity.started();
        activity.answered();
        assert!(connection.await.unwrap_err().is_cancelled());
        assert!(started.elapsed() >= 2 * PERIOD, "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn a_request_in_progress_is_never_cut_off() {
        let activity = Arc::new(Activity::default());
        activity.started();
        let connection = watched(&activity, PERIOD / 2);
        tokio::time::sleep(3 * PERIOD).await;
        assert!(!connection.is_finished(), "closed while a request was being answered");
        let answered_at = Instant::now();
        activity.answered();
        assert!(connection.await.unwrap_err().is_cancelled());
        assert!(answered_at.elapsed() >= PERIOD / 2, "{:?}", answered_at.elapsed());
    }

    #[tokio::test]
    async fn the_guard_ends_with_a_connection_that_closed_by_itself() {
        let connection = tokio::spawn(tokio::time::sleep(PERIOD / 4));
        let guard = tokio::spawn(guard(Arc::default(), PERIOD, connection.abort_handle()));
        connection.await.expect("not aborted: it ended within its first period");
        let started = Instant::now();
        guard.await.unwrap();
        assert!(started.elapsed() < 2 * PERIOD, "{:?}", started.elapsed());
    }
}
