//! Recycled sleeps for a connection's two per-request deadlines (the request
//! head and the broker's ack). A fresh tokio sleep per request takes the
//! runtime's timer lock twice (register, deregister) and counts a reference
//! on the runtime handle every request shares. A sleep kept by the
//! connection stays registered, and is re-armed only when it fires before the
//! deadline it now stands for: deadlines only move forward, so a request
//! usually finds its connection's sleep armed for an earlier one, and
//! re-arming it then would cost the same shared reference count (tokio's
//! `Sleep::reset` clones the runtime handle) for a wake-up that rarely comes.
//! Nor is a sleep polled while it is known to be registered to wake the
//! polling task and not due yet: a connection's task polls its sleeps
//! request after request, and each poll read the sleep's cold memory
//! (benches/README.md, seventh pass).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tokio::time::Sleep;

/// One connection's spare sleep for one kind of deadline. Keep one slot per
/// kind: each kind's deadlines only move forward, which is what lets a
/// recycled sleep stay armed for an earlier one.
#[derive(Debug, Default)]
pub(super) struct SleepSlot {
    /// The sleep the last [`RecycledSleep`] of this slot gave back.
    spare: Mutex<Option<Armed>>,
}

/// A tokio sleep with what is known about it without reading it (it sits
/// in memory that has gone cold since the connection's previous request).
#[derive(Debug)]
struct Armed {
    /// The registered sleep.
    sleep: Pin<Box<Sleep>>,
    /// The deadline it is armed for.
    at: tokio::time::Instant,
    /// The task it wakes: the one that last polled it, if it has not fired
    /// since (`None` when unknown).
    wakes: Option<Waker>,
}

impl Armed {
    /// A new sleep, armed for `deadline`.
    fn new(deadline: tokio::time::Instant) -> Self {
        Self {
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
            at: deadline,
            wakes: None,
        }
    }

    /// Re-arms the sleep for `deadline`.
    fn reset(&mut self, deadline: tokio::time::Instant) {
        self.sleep.as_mut().reset(deadline);
        self.at = deadline;
        self.wakes = None;
    }

    /// Makes sure the sleep fires by `deadline`: re-armed only when it is
    /// armed for a later one (one armed earlier is re-armed when it fires).
    fn fire_by(&mut self, deadline: tokio::time::Instant) {
        if self.at > deadline {
            self.reset(deadline);
        }
    }

    /// Polls the sleep unless it is known to be registered to wake this
    /// task and not due yet: the task of a connection polls the same sleep
    /// request after request, and its waker stays registered until the sleep
    /// fires.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let registered = self.wakes.as_ref().is_some_and(|waker| waker.will_wake(cx.waker()));
        if registered && tokio::time::Instant::now() < self.at {
            return Poll::Pending;
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.wakes = None;
                Poll::Ready(())
            }
            Poll::Pending => {
                if !registered {
                    self.wakes = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

impl SleepSlot {
    /// A slot with no spare sleep yet.
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A sleep until `deadline`: the spare one (re-armed only if it was armed
    /// for a later deadline), or a new one.
    pub(super) fn sleep_until(self: &Arc<Self>, deadline: Instant) -> RecycledSleep {
        let deadline = tokio::time::Instant::from_std(deadline);
        let armed = match self.take_spare() {
            Some(mut armed) => {
                armed.fire_by(deadline);
                armed
            }
            None => Armed::new(deadline),
        };
        RecycledSleep {
            armed: Some(armed),
            deadline,
            slot: self.clone(),
        }
    }

    fn take_spare(&self) -> Option<Armed> {
        self.spare.lock().ok()?.take()
    }

    fn give_back(&self, armed: Armed) {
        let replaced = match self.spare.lock() {
            Ok(mut spare) => spare.replace(armed),
            Err(_) => Some(armed),
        };
        // Dropped outside the lock: dropping a registered sleep takes the timer's lock.
        drop(replaced);
    }
}

/// A sleep until `deadline` that goes back to its [`SleepSlot`] when dropped,
/// still registered with the timer. The tokio sleep inside may be armed for
/// an earlier deadline: when that one fires first it is re-armed for
/// `deadline`. A sleep in its slot may wake the task that last polled it
/// once, at the deadline it is armed for.
#[derive(Debug)]
pub(super) struct RecycledSleep {
    /// `None` only while being dropped.
    armed: Option<Armed>,
    /// When this sleep ends.
    deadline: tokio::time::Instant,
    /// Where it goes back to.
    slot: Arc<SleepSlot>,
}

impl RecycledSleep {
    /// Makes this sleep end at `deadline` instead, re-arming the tokio sleep
    /// only when it is armed for a later one.
    fn move_to(&mut self, deadline: tokio::time::Instant) {
        self.deadline = deadline;
        if let Some(armed) = self.armed.as_mut() {
            armed.fire_by(deadline);
        }
    }
}

impl Future for RecycledSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self.deadline;
        let Some(armed) = self.armed.as_mut() else {
            return Poll::Ready(());
        };
        loop {
            std::task::ready!(armed.poll(cx));
            if armed.at >= deadline {
                return Poll::Ready(());
            }
            // Fired at an earlier deadline it was still armed for.
            armed.reset(deadline);
        }
    }
}

impl Drop for RecycledSleep {
    fn drop(&mut self) {
        if let Some(armed) = self.armed.take() {
            self.slot.give_back(armed);
        }
    }
}

impl hyper::rt::Sleep for RecycledSleep {}

/// hyper's timer for one connection (hyper uses it for the request-head
/// timeout): its sleeps come from the connection's head slot.
#[derive(Debug, Default)]
pub(super) struct ConnectionTimer {
    /// The connection's slot for request-head deadlines.
    head: Arc<SleepSlot>,
}

impl hyper::rt::Timer for ConnectionTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(self.now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(self.head.sleep_until(deadline))
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<RecycledSleep>() {
            Some(recycled) => recycled.get_mut().move_to(new_deadline.into()),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }

    fn now(&self) -> Instant {
        // tokio's clock, so that a paused test runtime governs hyper's timeouts too.
        tokio::time::Instant::now().into_std()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEP: Duration = Duration::from_millis(50);
    /// Bound on waits that must end (a test that hangs fails instead).
    const NO_HANG: Duration = Duration::from_secs(10);

    async fn finishes(sleep: impl Future<Output = ()>) {
        tokio::time::timeout(NO_HANG, sleep)
            .await
            .expect("the sleep never ended");
    }

    #[tokio::test]
    async fn a_recycled_sleep_ends_at_its_deadline() {
        let slot = SleepSlot::new();
        let start = Instant::now();
        finishes(slot.sleep_until(start + STEP)).await;
        assert!(start.elapsed() >= STEP);
    }

    #[tokio::test]
    async fn a_sleep_given_back_is_rearmed_to_the_next_deadline() {
        let slot = SleepSlot::new();
        let start = Instant::now();
        let mut first = Box::pin(slot.sleep_until(start + STEP));
        assert!(futures::poll!(first.as_mut()).is_pending());
        drop(first);
        assert!(slot.spare.lock().unwrap().is_some(), "given back");
        let mut second = Box::pin(slot.sleep_until(start + 3 * STEP));
        assert!(slot.spare.lock().unwrap().is_none(), "recycled rather than made anew");
        let armed = second.armed.as_ref().expect("a sleep").sleep.deadline();
        assert_eq!(armed.into_std(), start + STEP, "left armed for the earlier deadline");
        tokio::time::sleep_until((start + 2 * STEP).into()).await;
        assert!(futures::poll!(second.as_mut()).is_pending(), "the old deadline passed");
        finishes(second).await;
        assert!(start.elapsed() >= 3 * STEP);
    }

    #[tokio::test]
    async fn a_deadline_earlier_than_the_spare_ones_holds() {
        let slot = SleepSlot::new();
        let start = Instant::now();
        drop(slot.sleep_until(start + NO_HANG * 10));
        finishes(slot.sleep_until(start + STEP)).await;
        assert!(start.elapsed() >= STEP);
    }

    #[tokio::test]
    async fn a_sleep_polled_by_another_task_wakes_that_task() {
        let slot = SleepSlot::new();
        let start = Instant::now();
        let mut first = Box::pin(slot.sleep_until(start + 2 * STEP));
        assert!(
            futures::poll!(first.as_mut()).is_pending(),
            "registered to wake this task"
        );
        drop(first);
        let other = tokio::spawn(slot.sleep_until(start + 2 * STEP));
        tokio::time::timeout(NO_HANG, other)
            .await
            .expect("the other task was never woken")
            .expect("the other task");
        assert!(start.elapsed() >= 2 * STEP);
    }

    #[tokio::test]
    async fn a_sleep_moved_later_ends_at_the_later_deadline() {
        use hyper::rt::Timer as _;
        let timer = ConnectionTimer::default();
        let start = timer.now();
        let mut sleep = timer.sleep(STEP);
        timer.reset(&mut sleep, start + 3 * STEP);
        tokio::time::sleep_until((start + 2 * STEP).into()).await;
        assert!(futures::poll!(sleep.as_mut()).is_pending(), "the first deadline passed");
        finishes(sleep).await;
        assert!(timer.now() - start >= 3 * STEP);
    }

    #[tokio::test]
    async fn hyper_resets_move_the_deadline() {
        use hyper::rt::Timer as _;
        let timer = ConnectionTimer::default();
        let start = timer.now();
        let mut sleep = timer.sleep(NO_HANG * 10);
        timer.reset(&mut sleep, start + STEP);
        finishes(sleep).await;
        assert!(timer.now() - start >= STEP);
    }
}
