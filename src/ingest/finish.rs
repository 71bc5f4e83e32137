//! A future that runs to the end even when whoever awaits it goes away.
//!
//! hyper drops a request's future when the sender hangs up. The wait for
//! the broker's verdict must still finish, so that the dedup key is settled
//! with the verdict. Spawning every publish into a task of its own would
//! guarantee that too, but costs a task and a wake-up across threads per
//! request (about 0.08 of the e2e peak ratio here, benches/README.md); this
//! future runs inside the request's task and moves to a task of its own only
//! when dropped unfinished.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

/// `future`, polled in place; spawned to finish if dropped before it completed.
pub(super) struct FinishOnDrop<F>
where
    F: Future + Send + 'static,
    F::Output: Send,
{
    /// The future; `None` once it completed.
    future: Option<Pin<Box<F>>>,
}

impl<F> FinishOnDrop<F>
where
    F: Future + Send + 'static,
    F::Output: Send,
{
    /// Wraps `future`.
    pub(super) fn new(future: F) -> Self {
        Self {
            future: Some(Box::pin(future)),
        }
    }
}

impl<F> Future for FinishOnDrop<F>
where
    F: Future + Send + 'static,
    F::Output: Send,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let future = self.future.as_mut().expect("polled after completion");
        let output = ready!(future.as_mut().poll(cx));
        self.future = None;
        Poll::Ready(output)
    }
}

impl<F> Drop for FinishOnDrop<F>
where
    F: Future + Send + 'static,
    F::Output: Send,
{
    fn drop(&mut self) {
        // Without a runtime (it is shutting down) the future is dropped, which releases its dedup key.
        if let (Some(future), Ok(runtime)) = (self.future.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(future);
        }
    }
}

impl<F> std::fmt::Debug for FinishOnDrop<F>
where
    F: Future + Send + 'static,
    F::Output: Send,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FinishOnDrop")
            .field("finished", &self.future.is_none())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_dropped_future_still_completes() {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let future = FinishOnDrop::new(async move {
            let _ = go_rx.await;
            let _ = done_tx.send(());
        });
        // Polled once (pending), then dropped as hyper drops the request future of a closed connection.
        assert!(tokio::time::timeout(Duration::from_millis(10), future).await.is_err());
        go_tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), done_rx)
            .await
            .expect("finished in its own task")
            .unwrap();
    }
}
