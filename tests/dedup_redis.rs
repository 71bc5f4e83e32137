//! What only the Redis dedup store has, against a real Redis (127.0.0.1:6379,
//! or `HOOKGATE_TEST_REDIS`): key TTLs, reservations of crashed replicas that
//! lapse, settling futures dropped unpolled, and Redis going away. The
//! contract both stores share is tests/dedup_contract.rs.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::dead_port;
use common::dedup::{id, outcome, redis, redis_url, released_soon, reserved, source};
use hookgate::dedup::{Dedup, DedupError, Reservation};
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

const WINDOW: Duration = Duration::from_secs(60);

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
async fn pending_keys_lapse_and_delivered_keys_live_for_the_window() {
    let (dedup, source) = (redis(WINDOW, Duration::from_secs(60)).await, source());
    let ticket = reserved(&dedup, &source, "k", id()).await;
    assert!((1..=60_000).contains(&pttl(&source, "k").await), "pending keys lapse");
    ticket.commit().await.unwrap();
    assert!(pttl(&source, "k").await > 59_000, "delivered keys live for the window");
}

#[tokio::test]
async fn a_commit_or_release_dropped_unpolled_releases_the_key() {
    let (dedup, source) = (redis(WINDOW, Duration::from_secs(60)).await, source());
    drop(reserved(&dedup, &source, "c", id()).await.commit());
    released_soon(&dedup, &source, "c").await;
    drop(reserved(&dedup, &source, "r", id()).await.release());
    released_soon(&dedup, &source, "r").await;
}

#[tokio::test]
async fn a_crashed_replicas_reservation_lapses_and_cannot_free_a_newer_one() {
    let (dedup, source) = (redis(WINDOW, Duration::from_millis(200)).await, source());
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
    let (dedup, source) = (redis(WINDOW, Duration::from_millis(200)).await, source());
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

#[tokio::test]
async fn healthy_while_redis_answers() {
    let dedup = redis(WINDOW, Duration::from_secs(60)).await;
    assert!(dedup.is_healthy().await);
}

#[tokio::test]
async fn redis_down_at_start_is_unavailable_and_fails_fast() {
    let started = Instant::now();
    let url = format!("redis://127.0.0.1:{}", dead_port());
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
    let url = format!("redis://:hunter2@127.0.0.1:{}", dead_port());
    let error = Dedup::redis(&url, WINDOW, Duration::from_secs(60)).await.unwrap_err();
    assert!(!format!("{error} {error:?}").contains("hunter2"));
    let dedup = redis(WINDOW, Duration::from_secs(60)).await;
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
