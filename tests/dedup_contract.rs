//! The dedup contract, run against both stores through the public
//! interface: the in-process one and Redis (127.0.0.1:6379, or
//! `HOOKGATE_TEST_REDIS`). Reserve, commit, release, duplicates, in-flight
//! keys, expiry and concurrent reservations behave alike in both. What only
//! one store has lives beside it: eviction and memory in src/dedup/tests.rs,
//! pending TTLs and outages in tests/dedup_redis.rs.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::dedup::{both, id, outcome, released_soon, reserved, source};
use hookgate::dedup::Reservation;

const WINDOW: Duration = Duration::from_secs(60);

#[tokio::test]
async fn miss_then_hit_reports_the_original_id() {
    for (kind, dedup) in both(WINDOW).await {
        let (source, first) = (source(), id());
        reserved(&dedup, &source, "k", first).await.commit().await.unwrap();
        match outcome(&dedup, &source, "k").await {
            Reservation::Duplicate { id } => assert_eq!(id, first.to_string(), "{kind}"),
            other => panic!("{kind}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn in_flight_until_released() {
    for (kind, dedup) in both(WINDOW).await {
        let source = source();
        let ticket = reserved(&dedup, &source, "k", id()).await;
        assert!(
            matches!(outcome(&dedup, &source, "k").await, Reservation::InFlight),
            "{kind}"
        );
        ticket.release().await;
        reserved(&dedup, &source, "k", id()).await.commit().await.unwrap();
    }
}

#[tokio::test]
async fn dropping_a_ticket_releases_the_key() {
    for (kind, dedup) in both(WINDOW).await {
        let source = source();
        drop(reserved(&dedup, &source, "k", id()).await);
        if kind == "memory" {
            // In process the key is free at once; Redis frees it in a spawned task.
            let _again = reserved(&dedup, &source, "k", id()).await;
        } else {
            released_soon(&dedup, &source, "k").await;
        }
    }
}

#[tokio::test]
async fn keys_are_namespaced_per_source() {
    for (_, dedup) in both(WINDOW).await {
        let (a, b) = (source(), source());
        reserved(&dedup, &a, "k", id()).await.commit().await.unwrap();
        reserved(&dedup, &b, "k", id()).await.commit().await.unwrap();
    }
}

/// Ingest keeps the fingerprints of replayable signatures in the scope
/// `<source>#signature` ('#' is not allowed in source names): a fingerprint
/// and a delivery key of the same text never meet, and the fingerprint
/// reports the original event like any key.
#[tokio::test]
async fn a_signature_scope_is_a_namespace_of_its_own() {
    for (kind, dedup) in both(WINDOW).await {
        let source = source();
        let scope = format!("{source}#signature");
        let fingerprint = "9f".repeat(32);
        let first = id();
        reserved(&dedup, &source, &fingerprint, id())
            .await
            .commit()
            .await
            .unwrap();
        reserved(&dedup, &scope, &fingerprint, first)
            .await
            .commit()
            .await
            .unwrap();
        match outcome(&dedup, &scope, &fingerprint).await {
            Reservation::Duplicate { id } => assert_eq!(id, first.to_string(), "{kind}"),
            other => panic!("{kind}: {other:?}"),
        }
        // `a#signature` + `b` and `a` + `#signature:b` stay apart too (Redis joins with ':').
        reserved(&dedup, &source, &format!("#signature:{fingerprint}"), id())
            .await
            .commit()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn keys_expire_after_the_window() {
    for (kind, dedup) in both(Duration::from_millis(200)).await {
        let source = source();
        reserved(&dedup, &source, "k", id()).await.commit().await.unwrap();
        assert!(
            matches!(outcome(&dedup, &source, "k").await, Reservation::Duplicate { .. }),
            "{kind}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _fresh = reserved(&dedup, &source, "k", id()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_reserves_yield_exactly_one_reservation() {
    for (kind, dedup) in both(WINDOW).await {
        let source = source();
        let barrier = Arc::new(tokio::sync::Barrier::new(100));
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let (dedup, barrier, source) = (dedup.clone(), Arc::clone(&barrier), source.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    dedup.reserve(&source, "same", id()).await.unwrap()
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
        assert_eq!((reserved, in_flight), (1, 99), "{kind}");
    }
}
