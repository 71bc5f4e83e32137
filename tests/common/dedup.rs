//! The dedup stores under test: in process, and on a real Redis
//! (127.0.0.1:6379, or `HOOKGATE_TEST_REDIS`). Every test takes a source name
//! of its own, so parallel runs never share a key.

use std::time::{Duration, Instant};

use hookgate::dedup::{Dedup, Reservation, Ticket};
use uuid::Uuid;

/// The Redis the tests use.
pub fn redis_url() -> String {
    std::env::var("HOOKGATE_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A fresh event id.
pub fn id() -> Uuid {
    Uuid::now_v7()
}

/// A source name no other test (or run) uses.
pub fn source() -> String {
    format!("t{}", Uuid::now_v7().simple())
}

/// A Redis store remembering keys for `window`; reservations lapse after `pending_ttl`.
pub async fn redis(window: Duration, pending_ttl: Duration) -> Dedup {
    Dedup::redis(&redis_url(), window, pending_ttl)
        .await
        .expect("redis at 127.0.0.1:6379")
}

/// Both stores, named, remembering keys for `window` (Redis reservations lapse after a minute).
pub async fn both(window: Duration) -> [(&'static str, Dedup); 2] {
    [
        ("memory", Dedup::in_memory(window, 1000)),
        ("redis", redis(window, Duration::from_secs(60)).await),
    ]
}

/// Reserves `key`, which must be free.
pub async fn reserved(dedup: &Dedup, source: &str, key: &str, id: Uuid) -> Ticket {
    match dedup.reserve(source, key, id).await.unwrap() {
        Reservation::Reserved(ticket) => ticket,
        other => panic!("expected Reserved, got {other:?}"),
    }
}

/// What reserving `key` for a new event finds.
pub async fn outcome(dedup: &Dedup, source: &str, key: &str) -> Reservation {
    dedup.reserve(source, key, id()).await.unwrap()
}

/// Waits until `key` can be reserved again (a dropped Redis ticket releases
/// it in a spawned task; the in-process store at once).
pub async fn released_soon(dedup: &Dedup, source: &str, key: &str) {
    let started = Instant::now();
    loop {
        match outcome(dedup, source, key).await {
            Reservation::Reserved(_) => break,
            Reservation::InFlight if started.elapsed() < Duration::from_secs(5) => {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            other => panic!("{other:?}"),
        }
    }
}
