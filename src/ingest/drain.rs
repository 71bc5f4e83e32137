//! Graceful shutdown of the listener's connections: once asked, each open
//! connection finishes the request it is serving and closes, and
//! [`Drain::shutdown`] waits until all of them did.
//!
//! hyper-util's `GracefulShutdown` does the same by polling a shared watch
//! channel (a lock and a waker registration) on every poll of every
//! connection. Here a connection's poll costs one comparison of its task's
//! waker with the one it registered and one read of a flag: the wakers are
//! kept in a registry that only shutdown walks.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use futures::task::AtomicWaker;
use tokio::sync::Notify;

/// A connection that can be asked to finish its request and close.
pub(super) trait GracefulConnection: Future {
    /// Starts the graceful shutdown: no new request is read after the current one.
    fn graceful_shutdown(self: Pin<&mut Self>);
}

impl<I, S, B> GracefulConnection for hyper::server::conn::http1::Connection<I, S>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        hyper::server::conn::http1::Connection::graceful_shutdown(self);
    }
}

/// The connections of one listener.
#[derive(Debug, Default)]
pub(super) struct Drain {
    /// Shared with every watched connection.
    shared: Arc<Shared>,
}

/// What the listener and its connections share.
#[derive(Debug, Default)]
struct Shared {
    /// Set once shutdown began.
    stopping: AtomicBool,
    /// The wakers of the open connections, by connection number.
    open: Mutex<HashMap<u64, Arc<AtomicWaker>>>,
    /// Numbers the next connection.
    next: AtomicU64,
    /// Told when the last open connection closed.
    closed: Notify,
}

impl Shared {
    fn open(&self) -> MutexGuard<'_, HashMap<u64, Arc<AtomicWaker>>> {
        // A panic elsewhere while holding the lock leaves the map intact.
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drain {
    /// Watches `connection`: it is shut down gracefully once [`Drain::shutdown`] is called.
    pub(super) fn watch<C: GracefulConnection>(&self, connection: C) -> Watched<C> {
        let number = self.shared.next.fetch_add(1, Ordering::Relaxed);
        let waker = Arc::new(AtomicWaker::new());
        self.shared.open().insert(number, waker.clone());
        Watched {
            connection,
            shared: self.shared.clone(),
            number,
            waker,
            registered: None,
            shutting_down: false,
        }
    }

    /// Connections watched and not yet closed.
    pub(super) fn open_connections(&self) -> usize {
        self.shared.open().len()
    }

    /// Asks every open connection to finish its request and close, then waits until all did.
    pub(super) async fn shutdown(&self) {
        self.shared.stopping.store(true, Ordering::Release);
        for waker in self.shared.open().values() {
            waker.wake();
        }
        loop {
            let closed = self.shared.closed.notified();
            tokio::pin!(closed);
            // Registered before looking, so a close in between is not missed.
            closed.as_mut().enable();
            if self.shared.open().is_empty() {
                return;
            }
            closed.await;
        }
    }
}

pin_project_lite::pin_project! {
    /// A connection that shuts down gracefully when its [`Drain`] does.
    pub(super) struct Watched<C> {
        #[pin]
        connection: C,
        shared: Arc<Shared>,
        // Its key in `shared.open`.
        number: u64,
        // Where shutdown finds this connection's task.
        waker: Arc<AtomicWaker>,
        // The task waker last put into `waker`.
        registered: Option<Waker>,
        // Set once the connection was told to shut down.
        shutting_down: bool,
    }

    impl<C> PinnedDrop for Watched<C> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let mut open = this.shared.open();
            open.remove(this.number);
            if open.is_empty() {
                this.shared.closed.notify_waiters();
            }
        }
    }
}

impl<C: GracefulConnection> Future for Watched<C> {
    type Output = C::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<C::Output> {
        let mut this = self.project();
        if !*this.shutting_down {
            // Set before reading the flag: shutdown sets the flag, then wakes.
            if !this
                .registered
                .as_ref()
                .is_some_and(|waker| waker.will_wake(cx.waker()))
            {
                this.waker.register(cx.waker());
                *this.registered = Some(cx.waker().clone());
            }
            if this.shared.stopping.load(Ordering::Acquire) {
                *this.shutting_down = true;
                this.connection.as_mut().graceful_shutdown();
            }
        }
        this.connection.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A connection that ends only once told to shut down.
    struct Idle {
        told: bool,
    }

    impl Future for Idle {
        type Output = Result<(), std::io::Error>;

        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
            if self.told {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            }
        }
    }

    impl GracefulConnection for Idle {
        fn graceful_shutdown(mut self: Pin<&mut Self>) {
            self.told = true;
        }
    }

    #[tokio::test]
    async fn shutdown_wakes_idle_connections_and_waits_for_them() {
        let drain = Drain::default();
        let tasks: Vec<_> = (0..3)
            .map(|_| tokio::spawn(drain.watch(Idle { told: false })))
            .collect();
        // Let every connection be polled once and go idle.
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(drain.open_connections(), 3);
        tokio::time::timeout(Duration::from_secs(5), drain.shutdown())
            .await
            .expect("shutdown returns once the idle connections closed");
        for task in tasks {
            task.await.unwrap().unwrap();
        }
    }

    #[tokio::test]
    async fn shutdown_without_connections_returns_at_once() {
        let drain = Drain::default();
        drop(drain.watch(Idle { told: false }));
        assert_eq!(drain.open_connections(), 0);
        tokio::time::timeout(Duration::from_secs(5), drain.shutdown())
            .await
            .expect("nothing to wait for");
    }

    #[tokio::test]
    async fn a_connection_first_polled_after_shutdown_began_is_told_too() {
        let drain = Drain::default();
        let late = drain.watch(Idle { told: false });
        let shared = drain.shared.clone();
        let shutdown = tokio::spawn(async move { drain.shutdown().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(shared.stopping.load(Ordering::Acquire));
        tokio::time::timeout(Duration::from_secs(5), late)
            .await
            .expect("told to shut down on its first poll")
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), shutdown)
            .await
            .expect("shutdown sees it closed")
            .unwrap();
    }
}
