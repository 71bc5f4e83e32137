//! The limits that keep one bad sender from hurting the others, each
//! provoked over real sockets: open connections per client address and in
//! total, requests being published at once, and the bounded state of
//! deduplication and per-client rate limiting. (Body and header sizes and
//! slow clients: tests/hostile.rs; quotas: tests/ingest.rs.)

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::gateway::config;
use common::{create_topic, dead_port, unique, Broker, Gateway};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A gateway on `bootstrap` with `ingest` lines in `[ingest]`, `rest` appended, and an unverified source `demo`.
fn gateway(bootstrap: &str, ingest: &str, rest: &str) -> Gateway {
    let topic = unique("limits");
    if std::net::TcpStream::connect(bootstrap).is_ok() {
        create_topic(bootstrap, &topic, 1);
    }
    let source = "[[sources]]\nname = \"demo\"\nverify = \"none\"\ndedup_key = \"header:idempotency-key\"\n";
    Gateway::start(
        &config(bootstrap, &topic, ingest, &format!("{rest}\n{source}")),
        "ingest",
    )
}

/// A connection from `from` (any 127.0.0.0/8 address is loopback on Linux).
async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from.parse().unwrap(), 0)).unwrap();
    socket.connect(to).await.unwrap()
}

/// A client that opened a request and stalls in the middle of its headers.
async fn stalled_from(from: &str, to: SocketAddr) -> TcpStream {
    let mut stream = connect_from(from, to).await;
    stream
        .write_all(b"POST /webhooks/demo HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    stream
}

/// `n` clients from 127.0.0.1 stalled in their headers, once the server accepted them.
async fn stall(n: usize, to: SocketAddr) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(stalled_from("127.0.0.1", to).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    held
}

/// Everything the server sends until it closes the connection (at most `wait`).
async fn read_all(stream: &mut TcpStream, wait: Duration) -> String {
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(wait, stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

fn client_from(from: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(from.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

#[tokio::test]
async fn one_client_address_cannot_hold_more_than_its_connections() {
    let broker = Broker::any();
    let gateway = gateway(
        &broker.bootstrap(),
        "max_connections_per_ip = 3\nheader_timeout = \"2s\"",
        "",
    );
    let addr = gateway.ingest.unwrap();
    let mut held = stall(3, addr).await;
    // The fourth from the same address is answered at once and closed, without its request being read.
    let started = Instant::now();
    let mut fourth = connect_from("127.0.0.1", addr).await;
    let answer = read_all(&mut fourth, Duration::from_secs(3)).await;
    assert!(
        answer.starts_with("HTTP/1.1 429") && answer.contains("too_many_connections"),
        "{answer}"
    );
    assert!(answer.contains("retry-after: 1"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "refused after {:?}",
        started.elapsed()
    );
    // Another client is not affected.
    let other = client_from("127.0.0.2")
        .post(gateway.url("/webhooks/demo"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::ACCEPTED);
    assert!(gateway
        .metrics()
        .await
        .contains("hookgate_connections_refused_total{listener=\"ingest\"} 1"));
    // Once the stalled connections time out, the address is served again.
    for stream in &mut held {
        read_all(stream, Duration::from_secs(5)).await;
    }
    let again = client_from("127.0.0.1")
        .post(gateway.url("/webhooks/demo"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    assert!(gateway.panics().is_empty());
}

#[tokio::test]
async fn refused_connections_give_their_listener_wide_slot_back_at_once() {
    let broker = Broker::any();
    let gateway = gateway(
        &broker.bootstrap(),
        "max_connections = 4\nmax_connections_per_ip = 2\nheader_timeout = \"5s\"",
        "",
    );
    let addr = gateway.ingest.unwrap();
    let _held = stall(2, addr).await;
    // A flood from the same address. Its clients keep their refused
    // connections open, so each refusal lingers as long as it may (1 s).
    let mut flood = Vec::new();
    for _ in 0..60 {
        flood.push(connect_from("127.0.0.1", addr).await);
    }
    // Had each lingering refusal kept a listener-wide slot, this client would
    // wait behind the flood, two connections a second.
    let other = client_from("127.0.0.3")
        .post(gateway.url("/webhooks/demo"))
        .body("{}")
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(
        other.as_ref().is_ok_and(|r| r.status() == StatusCode::ACCEPTED),
        "another client was not served during the flood: {other:?}"
    );
    let refused = read_all(&mut flood[0], Duration::from_secs(3)).await;
    assert!(refused.contains("too_many_connections"), "{refused}");
    assert!(gateway.panics().is_empty());
}

#[tokio::test]
async fn beyond_max_connections_new_connections_wait_for_a_free_slot() {
    let broker = Broker::any();
    let gateway = gateway(
        &broker.bootstrap(),
        "max_connections = 4\nmax_connections_per_ip = 4\nheader_timeout = \"2s\"",
        "",
    );
    let addr = gateway.ingest.unwrap();
    let held = stall(4, addr).await;
    // The fifth waits in the kernel's backlog until the header timeout frees a slot; then it is served.
    let started = Instant::now();
    let fifth = client_from("127.0.0.3")
        .post(gateway.url("/webhooks/demo"))
        .body("{}")
        .send()
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(fifth.status(), StatusCode::ACCEPTED);
    assert!(
        waited > Duration::from_millis(1200) && waited < Duration::from_secs(5),
        "served after {waited:?}"
    );
    drop(held);
    assert!(gateway.panics().is_empty());
}

#[tokio::test]
async fn beyond_max_in_flight_requests_get_503_overloaded_at_once() {
    // Nothing listens on the broker port: publishes wait for the deadline.
    let bootstrap = format!("127.0.0.1:{}", dead_port());
    let gateway = gateway(&bootstrap, "max_in_flight = 2\ndeadline = \"3s\"", "");
    let client = reqwest::Client::new();
    let url = gateway.url("/webhooks/demo");
    let pending: Vec<_> = (0..2)
        .map(|_| tokio::spawn(client.post(&url).body("{}").send()))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let third = client.post(&url).body("{}").send().await.unwrap();
    assert_eq!(third.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "answered after {:?}",
        started.elapsed()
    );
    assert!(third.headers().contains_key("retry-after"));
    let answer: serde_json::Value = third.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "overloaded");
    // The gauge is sampled every second; the two held requests last until the 3 s deadline.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let during = gateway.metrics().await;
    assert!(
        during.lines().any(|line| line == "hookgate_requests_in_flight 2"),
        "{during}"
    );
    for request in pending {
        assert_eq!(
            request.await.unwrap().unwrap().status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    // Answered requests give their slots back (the refused one never held one).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let after = gateway.metrics().await;
    assert!(
        after.lines().any(|line| line == "hookgate_requests_in_flight 0"),
        "{after}"
    );
    assert!(gateway.panics().is_empty());
}

#[tokio::test]
async fn the_dedup_store_forgets_its_oldest_keys_beyond_max_keys() {
    let broker = Broker::any();
    let gateway = gateway(&broker.bootstrap(), "", "[dedup]\nmax_keys = 100\n");
    let client = reqwest::Client::new();
    let url = gateway.url("/webhooks/demo");
    let post = |key: String| client.post(&url).header("idempotency-key", key).body("{}").send();
    for n in 0..300 {
        assert_eq!(post(format!("key-{n}")).await.unwrap().status(), StatusCode::ACCEPTED);
    }
    assert_eq!(
        post("key-299".into()).await.unwrap().status(),
        StatusCode::OK,
        "recent keys are remembered"
    );
    assert_eq!(
        post("key-0".into()).await.unwrap().status(),
        StatusCode::ACCEPTED,
        "the oldest are forgotten"
    );
    // The periodic sweep reports the bound.
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let text = gateway.metrics().await;
        let keys = text
            .lines()
            .find_map(|l| l.strip_prefix("hookgate_dedup_keys "))
            .and_then(|v| v.parse::<f64>().ok());
        if keys.is_some_and(|k| k > 0.0) {
            assert!(keys.unwrap() <= 100.0, "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "no hookgate_dedup_keys gauge:\n{text}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(gateway.panics().is_empty());
}

#[tokio::test]
async fn per_client_rate_limit_state_is_bounded_and_newcomers_wait() {
    let broker = Broker::any();
    let rest = "[rate_limit]\nper_client_ip = { per_second = 1, burst = 5 }\nmax_tracked_clients = 20\n";
    let gateway = gateway(&broker.bootstrap(), "client_ip_header = \"x-forwarded-for\"", rest);
    let client = reqwest::Client::new();
    let url = gateway.url("/webhooks/demo");
    let from = |ip: String| client.post(&url).header("x-forwarded-for", ip).body("{}").send();
    for n in 0..20 {
        assert_eq!(
            from(format!("198.51.100.{n}")).await.unwrap().status(),
            StatusCode::ACCEPTED
        );
    }
    // The table is full of active clients: a newcomer is told to come back, nobody is evicted.
    let newcomer = from("203.0.113.7".into()).await.unwrap();
    assert_eq!(newcomer.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(newcomer.headers().contains_key("retry-after"));
    let answer: serde_json::Value = newcomer.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "rate_limited_client");
    assert_eq!(
        from("198.51.100.0".into()).await.unwrap().status(),
        StatusCode::ACCEPTED,
        "known clients keep their quota"
    );
    assert!(gateway.panics().is_empty());
}
