//! What only the in-process store has: its bound on keys and its health.
//! The contract both stores share (reserve, commit, release, duplicates,
//! in-flight keys, expiry, concurrency) runs against both in
//! `tests/dedup_contract.rs`.

use super::*;

fn id() -> Uuid {
    Uuid::now_v7()
}

async fn reserved(dedup: &Dedup, source: &str, key: &str, id: Uuid) -> Ticket {
    match dedup.reserve(source, key, id).await.unwrap() {
        Reservation::Reserved(ticket) => ticket,
        other => panic!("expected Reserved, got {other:?}"),
    }
}

#[tokio::test]
async fn oldest_keys_are_evicted_beyond_max_keys() {
    let dedup = Dedup::in_memory(Duration::from_secs(60), 3);
    for key in ["k1", "k2", "k3", "k4"] {
        reserved(&dedup, "s", key, id()).await.commit().await.unwrap();
    }
    let _k1 = reserved(&dedup, "s", "k1", id()).await;
    assert!(matches!(
        dedup.reserve("s", "k4", id()).await.unwrap(),
        Reservation::Duplicate { .. }
    ));
}

#[tokio::test]
async fn memory_store_is_always_healthy_and_connects_without_redis() {
    let dedup = Dedup::connect(&DedupConfig::default()).await.unwrap();
    assert!(dedup.is_healthy().await);
    assert!(format!("{dedup:?}").contains("MemoryStore"));
}
