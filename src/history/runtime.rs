//! The history's own runtime, used when one process runs ingest and history
//! (`--role all`): the indexer, retention, the store's connections and the
//! query API run on one worker thread of their own, at a lower scheduling
//! priority than ingest. Threads started from it (SQLite's connection
//! workers, the indexer's librdkafka threads, its blocking pool) inherit
//! that priority, so under CPU contention the kernel serves the webhook
//! path first; the indexer falls behind and catches up when load drops,
//! instead of slowing the answers to senders.

use std::io;
use std::sync::Once;

use tokio::runtime::{Builder, Handle, Runtime};

/// Worker threads of the history runtime.
const WORKER_THREADS: usize = 1;
/// Most threads for the history's blocking calls (Kafka watermarks, the final offset commit).
const MAX_BLOCKING_THREADS: usize = 4;
/// Name of its threads (visible in `top -H` and `/proc/PID/task/*/comm`).
const THREAD_NAME: &str = "hg-history";
/// How much nicer than the process the history's threads are (ingest's keep
/// the process's own). The kernel's fair scheduler gives a thread 10 nice
/// levels below another about a tenth of its CPU share while both want the
/// CPU, and takes nothing from it while the other is idle.
pub const HISTORY_NICE: i32 = 10;
/// The highest nice value Linux has.
const MAX_NICE: i32 = 19;

/// A tokio runtime for the history, shut down in the background when dropped.
#[derive(Debug)]
pub struct HistoryRuntime {
    /// The runtime (taken at drop).
    runtime: Option<Runtime>,
}

impl HistoryRuntime {
    /// Builds the runtime; each of its threads lowers its own priority as it starts.
    pub fn new() -> io::Result<HistoryRuntime> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .max_blocking_threads(MAX_BLOCKING_THREADS)
            .thread_name(THREAD_NAME)
            .on_thread_start(lower_priority)
            .enable_all()
            .build()?;
        Ok(HistoryRuntime { runtime: Some(runtime) })
    }

    /// Where to spawn the history's tasks.
    pub fn handle(&self) -> &Handle {
        self.runtime.as_ref().expect("present until dropped").handle()
    }
}

impl Drop for HistoryRuntime {
    fn drop(&mut self) {
        // Dropping a runtime inside another one's task would panic; this does not wait.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Sets the calling thread's nice value [`HISTORY_NICE`] above the process's own (its main thread's); a failure
/// (a sandbox refusing it) is logged once and leaves the thread as it was.
fn lower_priority() {
    static WARNED: Once = Once::new();
    #[cfg(target_os = "linux")]
    let result = {
        // Relative to the main thread's (the process's own), not this thread's: a
        // blocking thread started by a history thread has inherited the lower one already.
        let main = Some(rustix::process::getpid());
        rustix::process::getpriority_process(main)
            .and_then(|nice| rustix::process::setpriority_process(Some(rustix::thread::gettid()), history_nice(nice)))
    };
    #[cfg(not(target_os = "linux"))]
    let result: io::Result<()> = Ok(());
    if let Err(error) = result {
        WARNED.call_once(|| tracing::warn!(%error, "cannot lower the history threads' priority"));
    }
}

/// The history's nice value in a process at `own`.
#[cfg(target_os = "linux")]
fn history_nice(own: i32) -> i32 {
    own.saturating_add(HISTORY_NICE).min(MAX_NICE).max(own)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn history_is_ten_levels_nicer_within_the_range() {
        assert_eq!(history_nice(0), 10);
        assert_eq!(history_nice(-10), 0);
        assert_eq!(history_nice(15), 19);
        assert_eq!(history_nice(19), 19);
    }

    #[test]
    fn history_threads_and_the_threads_they_start_run_below_ingest() {
        let history = HistoryRuntime::new().unwrap();
        let own = rustix::process::getpriority_process(None).unwrap();
        let (worker, child) = history.handle().block_on(async {
            tokio::spawn(async {
                let worker = rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
                let child = std::thread::spawn(|| {
                    rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap()
                })
                .join()
                .unwrap();
                (worker, child)
            })
            .await
            .unwrap()
        });
        assert_eq!(worker, history_nice(own));
        assert!(
            own >= MAX_NICE || worker > own,
            "history runs below the process's own priority"
        );
        assert_eq!(
            child, worker,
            "a thread started by a history thread inherits its priority"
        );
        assert_eq!(
            rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap(),
            own,
            "the caller's own thread is untouched"
        );
    }
}
