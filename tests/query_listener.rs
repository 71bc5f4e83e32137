//! The query API and metrics listeners under attack, as the webhook listener
//! has always been: headers that never finish, one address opening every
//! connection, more live tails than allowed, and a web page that reaches an
//! open (token-less) API through DNS rebinding.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::gateway::config;
use common::history::{get_json, SseReader};
use common::webhook::post;
use common::{error_code, unique, wait_until, Broker, Setup};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const WAIT: Duration = Duration::from_secs(30);
const SOURCE: &str = "[[sources]]\nname = \"a\"\nverify = \"none\"\n";

/// A gateway of `role` with an open query API (no tokens) and `query` lines added to `[query]`.
fn gateway(role: &str, query: &str) -> Setup {
    let group = unique("query-listener");
    Setup::start(Broker::any(), 1, role, &[], |bootstrap, topic| {
        config(bootstrap, topic, "", SOURCE).replace(
            "[query]\n",
            &format!("[query]\nconsumer_group = \"{group}\"\n{query}\n"),
        )
    })
}

async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from.parse().unwrap(), 0)).unwrap();
    socket.connect(to).await.unwrap()
}

/// A client that starts a request and never finishes its headers.
async fn stalled_from(from: &str, to: SocketAddr) -> TcpStream {
    let mut stream = connect_from(from, to).await;
    stream
        .write_all(b"GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    stream
}

/// Everything the server sends until it closes the connection; panics when it keeps it open past `WAIT`.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

fn client_from(from: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(from.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

#[tokio::test]
async fn headers_that_never_finish_are_cut_off_on_the_query_and_metrics_listeners() {
    let setup = gateway("query", "");
    let gateway = &setup.gateway;
    for addr in [gateway.query.unwrap(), gateway.metrics] {
        let mut slow = stalled_from("127.0.0.1", addr).await;
        // Served meanwhile, and closed once query.header_timeout (5 s) passed.
        let (status, _) = get_json(&gateway.query_url("/v1/events"), None).await;
        assert_eq!(status, StatusCode::OK);
        let answer = read_until_closed(&mut slow).await;
        assert!(!answer.contains("200 OK"), "{addr}: {answer}");
    }
    assert!(gateway.panics().is_empty(), "{:?}", gateway.panics());
}

#[tokio::test]
async fn one_address_cannot_take_every_query_connection() {
    // The default query.max_connections_per_ip.
    const PER_ADDRESS: usize = 64;
    let setup = gateway("query", "");
    let gateway = &setup.gateway;
    let addr = gateway.query.unwrap();
    let mut held = Vec::new();
    for _ in 0..PER_ADDRESS {
        held.push(stalled_from("127.0.0.1", addr).await);
    }
    let mut one_more = connect_from("127.0.0.1", addr).await;
    let answer = read_until_closed(&mut one_more).await;
    assert!(
        answer.starts_with("HTTP/1.1 429") && answer.contains("too_many_connections"),
        "{answer}"
    );
    let other = client_from("127.0.0.2")
        .get(gateway.query_url("/v1/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);
    let metrics = gateway.metrics().await;
    assert!(
        metrics.contains("hookgate_connections_refused_total{listener=\"query\"} 1"),
        "{metrics}"
    );
    drop(held);
}

#[tokio::test]
async fn live_tails_beyond_max_streams_get_503_too_many_streams() {
    let setup = gateway("query", "max_streams = 2");
    let gateway = &setup.gateway;
    let url = gateway.query_url("/v1/events/stream");
    let first = SseReader::open(&url, "unused").await;
    let _second = SseReader::open(&url, "unused").await;
    let third = reqwest::get(&url).await.unwrap();
    assert_eq!(third.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(third.headers().contains_key("retry-after"));
    let body: Value = third.json().await.unwrap();
    assert_eq!(error_code(&body), "too_many_streams");
    // A closed stream gives its slot back (noticed at its next write at the latest).
    drop(first);
    wait_until(WAIT, "a free stream slot", || async {
        reqwest::get(&url).await.unwrap().status() == StatusCode::OK
    })
    .await;
    assert!(gateway.panics().is_empty(), "{:?}", gateway.panics());
}

/// GETs `path` of the query API with the `Host` header set to `host`.
async fn get_as(setup: &Setup, path: &str, host: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(setup.gateway.query_url(path))
        .header(reqwest::header::HOST, host)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap_or_default())
}

#[tokio::test]
async fn an_open_api_answers_loopback_host_names_only_and_never_replays() {
    let setup = gateway("all", "");
    let gateway = &setup.gateway;
    let accepted = post(&gateway.url("/webhooks/a"), b"{}", &[]).await;
    let id = accepted.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_until(WAIT, "the event indexed", || async {
        get_json(&gateway.query_url(&format!("/v1/events/{id}")), None).await.0 == StatusCode::OK
    })
    .await;
    let port = gateway.query.unwrap().port();
    for host in [
        "evil.example",
        &format!("evil.example:{port}"),
        "localhost.evil.example",
        "10.0.0.1",
    ] {
        for path in ["/v1/events", "/v1/events/stream", "/v1/openapi.json"] {
            let (status, body) = get_as(&setup, path, host).await;
            assert_eq!(
                (status, error_code(&body)),
                (StatusCode::FORBIDDEN, "host_not_allowed"),
                "{host} {path}: {body}"
            );
        }
    }
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ] {
        let (status, body) = get_as(&setup, "/v1/events", &host).await;
        assert_eq!(status, StatusCode::OK, "{host}: {body}");
    }
    let replay = reqwest::Client::new()
        .post(gateway.query_url(&format!("/v1/events/{id}/replay")))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::FORBIDDEN);
    let body: Value = replay.json().await.unwrap();
    assert_eq!(error_code(&body), "forbidden", "{body}");
    let records = setup.records(1, Duration::from_secs(5));
    assert_eq!(records.len(), 1, "nothing was replayed");
}
