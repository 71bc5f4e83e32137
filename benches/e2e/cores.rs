//! How far apart the machine's first two CPUs are while the benchmark runs:
//! the round-trip time of one cache line passed back and forth between a
//! thread pinned to each, sampled twice a second. On a VM the host may move
//! the vCPUs between core complexes within seconds (on the machines of the
//! runs in benches/README.md the round trip flipped between ~50 and
//! ~320 ns), and both servers' peaks move with it, so each peak round
//! reports what was sampled during it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use core_affinity::CoreId;
use crossbeam_utils::CachePadded;

/// Time between samples.
const EVERY: Duration = Duration::from_millis(500);
/// Batches per sample; a sample is the median batch, so a batch in which
/// the scheduler took one of the threads away does not count.
const BATCHES: usize = 100;
/// Round trips per batch (a sample spins both cores for 0.5-3 ms).
const ROUND_TRIPS: u64 = 100;
/// Written to the line to end a sample.
const DONE: u64 = u64::MAX;

/// The samples taken so far: when, and nanoseconds per round trip.
static SAMPLES: OnceLock<Mutex<Vec<(Instant, f64)>>> = OnceLock::new();

/// Starts sampling in the background for the rest of the process; does
/// nothing on a machine with fewer than two CPUs or where threads cannot be pinned.
pub(crate) fn start() {
    let Some(&[ping, pong, ..]) = core_affinity::get_core_ids().as_deref() else {
        eprintln!("e2e: fewer than two pinnable CPUs; no core-to-core samples");
        return;
    };
    if SAMPLES.set(Mutex::new(Vec::new())).is_err() {
        return;
    }
    std::thread::spawn(move || {
        if !core_affinity::set_for_current(ping) {
            return;
        }
        loop {
            std::thread::sleep(EVERY);
            let Some(nanos) = sample(pong) else { return };
            if let Some(samples) = SAMPLES.get() {
                samples.lock().expect("samples").push((Instant::now(), nanos));
            }
        }
    });
}

/// The mean round trip sampled between `from` and `to`, in nanoseconds, and
/// how many samples it is of. The mean, not the median: a round during which
/// the vCPUs moved apart for a while should show it.
pub(crate) fn round_trip_between(from: Instant, to: Instant) -> Option<(f64, usize)> {
    let samples = SAMPLES.get()?.lock().expect("samples");
    let during: Vec<f64> = samples
        .iter()
        .filter(|(at, _)| (from..=to).contains(at))
        .map(|&(_, nanos)| nanos)
        .collect();
    (!during.is_empty()).then(|| (during.iter().sum::<f64>() / during.len() as f64, during.len()))
}

/// One sample: the median batch's nanoseconds per round trip between this
/// thread and a thread pinned to `pong`; `None` if it cannot be pinned.
fn sample(pong: CoreId) -> Option<f64> {
    let line = CachePadded::new(AtomicU64::new(0));
    let pinned = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let answering = scope.spawn(|| {
            if !core_affinity::set_for_current(pong) {
                line.store(DONE, Ordering::Release);
                return false;
            }
            pinned.store(true, Ordering::Release);
            answer(&line);
            true
        });
        let mut batches = Vec::with_capacity(BATCHES);
        let mut next = 1;
        while !pinned.load(Ordering::Acquire) && line.load(Ordering::Acquire) != DONE {
            std::hint::spin_loop();
        }
        if pinned.load(Ordering::Acquire) {
            for _ in 0..BATCHES {
                let started = Instant::now();
                for _ in 0..ROUND_TRIPS {
                    line.store(next, Ordering::Release);
                    while line.load(Ordering::Acquire) != next + 1 {
                        std::hint::spin_loop();
                    }
                    next += 2;
                }
                batches.push(started.elapsed().as_nanos() as f64 / ROUND_TRIPS as f64);
            }
            line.store(DONE, Ordering::Release);
        }
        let answered = answering.join().unwrap_or(false);
        batches.sort_by(f64::total_cmp);
        answered.then(|| batches[batches.len() / 2])
    })
}

/// Answers each odd value on the line with the next even one, until [`DONE`].
fn answer(line: &AtomicU64) {
    loop {
        match line.load(Ordering::Acquire) {
            DONE => return,
            odd if odd % 2 == 1 => line.store(odd + 1, Ordering::Release),
            _ => std::hint::spin_loop(),
        }
    }
}
