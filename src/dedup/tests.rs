//! Tests of the in-process store through the public interface. The Redis
//! store has the same cases in `tests/dedup_redis.rs` against a real server.

use super::*;

fn id() -> Uuid {
    Uuid::now_v7()
}

fn store() -> Dedup {
    Dedup::in_memory(Duration::from_secs(60), 1000)
}

async fn reserved(dedup: &Dedup, source: &str, key: &str, id: Uuid) -> Ticket {
    match dedup.reserve(source, key, id).await.unwrap() {
        Reservation::Reserved(ticket) => ticket,
        other => panic!("expected Reserved, got {other:?}"),
    }
}

#[tokio::test]
async fn miss_then_hit_reports_the_original_id() {
    let dedup = store();
    let first = id();
    reserved(&dedup, "s", "k", first).await.commit().await.unwrap();
    match dedup.reserve("s", "k", id()).await.unwrap() {
        Reservation::Duplicate { id } => assert_eq!(id, first.to_string()),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn in_flight_until_settled() {
    let dedup = store();
    let ticket = reserved(&dedup, "s", "k", id()).await;
    assert!(matches!(
        dedup.reserve("s", "k", id()).await.unwrap(),
        Reservation::InFlight
    ));
    ticket.release().await;
    reserved(&dedup, "s", "k", id()).await.commit().await.unwrap();
}

#[tokio::test]
async fn dropping_a_ticket_releases_the_key() {
    let dedup = store();
    drop(reserved(&dedup, "s", "k", id()).await);
    let _again = reserved(&dedup, "s", "k", id()).await;
}

#[tokio::test]
async fn keys_are_namespaced_per_source() {
    let dedup = store();
    reserved(&dedup, "a", "k", id()).await.commit().await.unwrap();
    reserved(&dedup, "b", "k", id()).await.commit().await.unwrap();
}

#[tokio::test]
async fn keys_expire_after_the_window() {
    let dedup = Dedup::in_memory(Duration::from_millis(50), 1000);
    reserved(&dedup, "s", "k", id()).await.commit().await.unwrap();
    assert!(matches!(
        dedup.reserve("s", "k", id()).await.unwrap(),
        Reservation::Duplicate { .. }
    ));
    tokio::time::sleep(Duration::from_millis(80)).await;
    let _fresh = reserved(&dedup, "s", "k", id()).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_reserves_yield_exactly_one_reservation() {
    let dedup = store();
    let barrier = Arc::new(tokio::sync::Barrier::new(100));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (dedup, barrier) = (dedup.clone(), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                dedup.reserve("s", "same", id()).await.unwrap()
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    let reserved = outcomes
        .iter()
        .filter(|r| matches!(r, Reservation::Reserved(_)))
        .count();
    let in_flight = outcomes.iter().filter(|r| matches!(r, Reservation::InFlight)).count();
    assert_eq!((reserved, in_flight), (1, 99));
}

#[tokio::test]
async fn memory_store_is_always_healthy_and_connects_without_redis() {
    let dedup = Dedup::connect(&DedupConfig::default()).await.unwrap();
    assert!(dedup.is_healthy().await);
    assert!(format!("{dedup:?}").contains("MemoryStore"));
}
