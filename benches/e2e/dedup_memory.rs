//! Memory per held dedup key: a child process fills hookgate's in-process
//! dedup store (the default bound, 5,000,000 keys) with N delivered keys
//! through its public API and reports its resident memory; the parent compares
//! N = 0, 1,000,000 and 5,000,000.

use std::process::Command;
use std::time::Duration;

use futures::executor::block_on;
use hookgate::dedup::{Dedup, Reservation};

/// Keys held in each measurement.
pub(crate) const COUNTS: [u64; 3] = [0, 1_000_000, 5_000_000];

/// Resident memory of a process holding each of [`COUNTS`] keys, in bytes.
#[derive(Debug)]
pub(crate) struct Measured {
    /// (keys held, resident bytes).
    pub(crate) rss: Vec<(u64, u64)>,
}

impl Measured {
    /// Bytes per key between the empty store and `keys` keys.
    pub(crate) fn bytes_per_key(&self, keys: u64) -> f64 {
        let empty = self.rss.iter().find(|(n, _)| *n == 0).map_or(0, |(_, rss)| *rss);
        let full = self.rss.iter().find(|(n, _)| *n == keys).map_or(0, |(_, rss)| *rss);
        full.saturating_sub(empty) as f64 / keys.max(1) as f64
    }
}

/// Runs one child per count.
pub(crate) fn measure() -> Measured {
    let rss = COUNTS
        .iter()
        .map(|&keys| {
            let output = Command::new(std::env::current_exe().expect("own path"))
                .env(crate::ROLE_VAR, "dedup-memory")
                .env("E2E_KEYS", keys.to_string())
                .output()
                .expect("dedup memory child");
            let text = String::from_utf8_lossy(&output.stdout);
            let rss = text
                .lines()
                .find_map(|l| l.strip_prefix("rss_bytes=")?.parse().ok())
                .expect("child reports rss");
            (keys, rss)
        })
        .collect();
    Measured { rss }
}

/// The child: fills a store with `E2E_KEYS` keys and prints `rss_bytes=<n>`.
pub(crate) fn run() {
    let keys: u64 = std::env::var("E2E_KEYS")
        .ok()
        .and_then(|n| n.parse().ok())
        .expect("E2E_KEYS");
    let dedup = Dedup::in_memory(Duration::from_secs(72 * 3600), 5_000_000);
    let id = uuid::Uuid::now_v7();
    for n in 0..keys {
        let key = format!("6f1c2a40-{:04x}-11ee-8c90-{n:012x}", n % 0xffff);
        let Ok(Reservation::Reserved(ticket)) = block_on(dedup.reserve("github", &key, id)) else {
            panic!("fresh key {n} not reserved");
        };
        block_on(ticket.commit()).expect("in-memory commit");
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    println!("rss_bytes={}", crate::server::status_kib(&status, "VmRSS:") * 1024);
    drop(dedup);
}
