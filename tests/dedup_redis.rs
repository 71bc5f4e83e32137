//! The Redis dedup store against a real Redis (127.0.0.1:6379, or
//! `HOOKGATE_TEST_REDIS`). Every test uses its own source name, so parallel
//! runs never share a key.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hookgate::dedup::{Dedup, DedupError, Reservation, Ticket};
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use uuid::Uuid;

const WINDOW: Duration = Duration::from_secs(60);

fn redis_url() -> String {
    std::env::var("HOOKGATE_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn id() -> Uuid {
    Uuid::now_v7()
}

/// A source name no other test (or run) uses.
fn source() -> String {
    format!("t{}", Uuid::now_v7().simple())
}

async fn connect(window: Duration, pending_ttl: Duration) -> Dedup {
    Dedup::redis(&redis_url(), window, pending_ttl)
        .await
        .expect("redis at 127.0.0.1:6379")
}

async fn reserved(dedup: &Dedup, source: &str, key: &str, id: Uuid) -> Ticket {
    match dedup.reserve(source, key, id).await.unwrap() {
        Reservation::Reserved(ticket) => ticket,
        other => panic!("expected Reserved, got {other:?}"),
    }
}

async fn outcome(dedup: &Dedup, source: &str, key: &str) -> Reservation {
    dedup.reserve(source, key, id()).await.unwrap()
}

async fn pttl(source: &str, key: &str) -> i64 {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("PTTL")
        .arg(format!("hg:dedup:{source}:{key}"))
        .query_async(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn miss_then_hit_reports_the_original_id() {
    let (dedup, source) = (connect(WINDOW, Duration::from_secs(60)).await, source());
    let first = id();
    let ticket = reserved(&dedup, &source, "k", first).await;
    assert!((1..=60_000).contains(&pttl(&source, "k").await), "pending keys lapse");
    ticket.commit().await.unwrap();
    assert!(pttl(&source, "k").await > 59_000, "delivered keys live for the window");
    match outcome(&dedup, &source, "k").await {
        Reservation::Duplicate { id } => assert_eq!(id, first.to_string()),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn in_flight_until_released() {
    let (dedup, source) = (connect(WINDOW, Duration::from_secs(60)).await, source());
    let ticket = reserved(&dedup, &source, "k", id()).await;
    assert!(matches!(outcome(&dedup, &source, "k").await, Reservation::InFlight));
    ticket.release().await;
    reserved(&dedup, &source, "k", id()).await.commit().await.unwrap();
}

/// Waits until `key` can be reserved again (a dropped ticket releases it in a spawned task).
async fn released_soon(dedup: &Dedup, source: &str, key: &str) {
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

#[tokio::test]
async fn dropping_a_ticket_releases_the_key() {
    let (dedup, source) = (connect(WINDOW, Duration::from_secs(60)).await, source());
    drop(reserved(&dedup, &source, "k", id()).await);
    released_soon(&dedup, &source, "k").await;
}

#[tokio::test]
async fn a_commit_or_release_dropped_unpolled_releases_the_key() {
    let (dedup, source) = (connect(WINDOW, Duration::from_secs(60)).await, source());
    drop(reserved(&dedup, &source, "c", id()).await.commit());
    released_soon(&dedup, &source, "c").await;
    drop(reserved(&dedup, &source, "r", id()).await.release());
    released_soon(&dedup, &source, "r").await;
}

#[tokio::test]
async fn keys_are_namespaced_per_source() {
    let dedup = connect(WINDOW, Duration::from_secs(60)).await;
    let (a, b) = (source(), source());
    reserved(&dedup, &a, "k", id()).await.commit().await.unwrap();
    reserved(&dedup, &b, "k", id()).await.commit().await.unwrap();
}

#[tokio::test]
async fn keys_expire_after_the_window() {
    let (dedup, source) = (
        connect(Duration::from_millis(200), Duration::from_secs(60)).await,
        source(),
    );
    reserved(&dedup, &source, "k", id()).await.commit().await.unwrap();
    assert!(matches!(
        outcome(&dedup, &source, "k").await,
        Reservation::Duplicate { .. }
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _fresh = reserved(&dedup, &source, "k", id()).await;
}

#[tokio::test]
async fn a_crashed_replicas_reservation_lapses_and_cannot_free_a_newer_one() {
    let (dedup, source) = (connect(WINDOW, Duration::from_millis(200)).await, source());
    // A replica that dies never settles its ticket.
    let stale = reserved(&dedup, &source, "k", id()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let current = reserved(&dedup, &source, "k", id()).await;
    stale.release().await;
    assert!(matches!(outcome(&dedup, &source, "k").await, Reservation::InFlight));
    current.commit().await.unwrap();
}

#[tokio::test]
async fn a_late_commit_does_not_replace_the_first() {
    let (dedup, source) = (connect(WINDOW, Duration::from_millis(200)).await, source());
    let (first_id, second_id) = (id(), id());
    let slow = reserved(&dedup, &source, "k", first_id).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    reserved(&dedup, &source, "k", second_id).await.commit().await.unwrap();
    slow.commit().await.unwrap();
    match outcome(&dedup, &source, "k").await {
        Reservation::Duplicate { id } => assert_eq!(id, second_id.to_string()),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_reserves_yield_exactly_one_reservation() {
    let (dedup, source) = (connect(WINDOW, Duration::from_secs(60)).await, source());
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
    assert_eq!((reserved, in_flight), (1, 99));
}

#[tokio::test]
async fn healthy_while_redis_answers() {
    let dedup = connect(WINDOW, Duration::from_secs(60)).await;
    assert!(dedup.is_healthy().await);
}

/// A loopback port nothing listens on.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn redis_down_at_start_is_unavailable_and_fails_fast() {
    let started = Instant::now();
    let url = format!("redis://127.0.0.1:{}", closed_port().await);
    let error = Dedup::redis(&url, WINDOW, Duration::from_secs(60)).await.unwrap_err();
    assert!(matches!(error, DedupError::Unavailable(_)), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn passwords_stay_out_of_errors_and_debug() {
    let url = format!("redis://:hunter2@127.0.0.1:{}", closed_port().await);
    let error = Dedup::redis(&url, WINDOW, Duration::from_secs(60)).await.unwrap_err();
    assert!(!format!("{error} {error:?}").contains("hunter2"));
    let dedup = connect(WINDOW, Duration::from_secs(60)).await;
    assert!(format!("{dedup:?}").contains("127.0.0.1:6379"), "{dedup:?}");
}

/// A TCP relay to Redis that can be cut, to take Redis away from a connected store.
struct Relay {
    /// Where clients connect.
    port: u16,
    /// The accept loop and every relayed connection.
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Relay {
    async fn start() -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tasks = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::clone(&tasks);
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let relay = tokio::spawn(async move {
                    let mut server = TcpStream::connect("127.0.0.1:6379").await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
                accepted.lock().push(relay.abort_handle());
            }
        });
        tasks.lock().push(accept.abort_handle());
        Relay { port, tasks }
    }

    fn cut(&self) {
        for task in self.tasks.lock().drain(..) {
            task.abort();
        }
    }
}

#[tokio::test]
async fn redis_lost_after_start_is_unavailable_within_the_call_timeout() {
    let relay = Relay::start().await;
    let url = format!("redis://127.0.0.1:{}", relay.port);
    let (dedup, source) = (
        Dedup::redis(&url, WINDOW, Duration::from_secs(60)).await.unwrap(),
        source(),
    );
    reserved(&dedup, &source, "k", id()).await.commit().await.unwrap();
    relay.cut();
    let started = Instant::now();
    let error = dedup.reserve(&source, "other", id()).await.unwrap_err();
    assert!(matches!(error, DedupError::Unavailable(_)), "{error:?}");
    assert!(!dedup.is_healthy().await);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}
