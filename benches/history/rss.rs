//! Resident memory of this process from /proc/self: the current RSS, the
//! peak (VmHWM), and the peak's growth over a phase (the peak is reset at
//! the phase's start through /proc/self/clear_refs).

use std::sync::atomic::{AtomicU64, Ordering};

/// The highest peak seen before a phase reset it.
static EARLIER_PEAK: AtomicU64 = AtomicU64::new(0);

/// The process's peak RSS over the whole run, bytes.
pub(crate) fn run_peak() -> u64 {
    EARLIER_PEAK.load(Ordering::Relaxed).max(status_bytes("VmHWM"))
}

/// A value of /proc/self/status in bytes (`VmRSS`, `VmHWM`).
pub(crate) fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// The RSS at a phase's start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rss {
    /// RSS when the phase began, bytes.
    start: u64,
}

impl Rss {
    /// Resets the peak to the current RSS and remembers it.
    pub(crate) fn mark() -> Rss {
        // "5" resets VmHWM to the current RSS (Linux 4.0+); without it the
        // growth is measured against the run's earlier peak instead.
        EARLIER_PEAK.fetch_max(status_bytes("VmHWM"), Ordering::Relaxed);
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        Rss {
            start: status_bytes("VmRSS"),
        }
    }

    /// How far the peak rose above the start.
    pub(crate) fn growth(self) -> u64 {
        status_bytes("VmHWM").saturating_sub(self.start)
    }
}
