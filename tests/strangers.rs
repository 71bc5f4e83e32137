//! Strangers must not spend a sender's capacity (issue 19, item 3), over
//! real sockets against the real broker: a source's quota is charged only
//! once a signature checked out, failed verifications spend a budget of
//! their own per client address, and one address cannot hold more than
//! `ingest.max_in_flight_per_client` requests in flight.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

use common::gateway::config;
use common::webhook::{headers, post, post_signed, signed};
use common::{error_code, unique, Broker, Setup};
use futures::StreamExt;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A quota-limited GitHub source; `ingest` and `rest` lines added to the config.
fn setup(ingest: &str, rest: &str) -> Setup {
    let source = "[[sources]]\nname = \"github\"\nverify = \"github\"\nsecrets = [\"s3cret\"]\n\
                  rate_limit = { per_second = 1, burst = 3 }\n";
    Setup::start(Broker::any(), 1, "ingest", &[], |bootstrap, topic| {
        config(bootstrap, topic, ingest, &format!("{rest}{source}"))
    })
}

fn client_from(from: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(from.parse::<IpAddr>().unwrap())
        .no_proxy()
        .build()
        .unwrap()
}

/// POSTs `body` with `sent` headers from `client`; the status and the error code.
async fn send(
    client: &reqwest::Client,
    url: &str,
    body: &[u8],
    sent: &[(http::HeaderName, http::HeaderValue)],
) -> (u16, String) {
    let mut request = client.post(url).body(body.to_vec());
    for (name, value) in sent {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let answer: serde_json::Value = response.json().await.unwrap_or_default();
    (status, error_code(&answer).to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_unsigned_requests_do_not_turn_away_the_signed_one() {
    let s = setup(
        "",
        "[rate_limit]\nunverified_per_client_ip = { per_second = 1, burst = 20 }\n",
    );
    let url = s.gateway.url("/webhooks/github");
    let client = client_from("127.0.0.1");
    let forged = headers(&[("x-hub-signature-256", &format!("sha256={}", "ab".repeat(32)))]);
    let answers: Vec<(u16, String)> = futures::stream::iter(0..2_000)
        .map(|n| {
            let (client, url, forged) = (client.clone(), url.clone(), forged.clone());
            async move {
                let sent = if n % 2 == 0 { forged } else { Vec::new() };
                send(&client, &url, b"{}", &sent).await
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let unauthorized = answers.iter().filter(|(status, _)| *status == 401).count();
    let limited = answers
        .iter()
        .filter(|(status, code)| *status == 429 && code == "rate_limited_unverified")
        .count();
    assert!(
        (20..=80).contains(&unauthorized),
        "the burst, and what refilled meanwhile: {unauthorized}"
    );
    assert_eq!(unauthorized + limited, 2_000, "only 401 or 429 rate_limited_unverified");
    // The source's quota (burst 3) is untouched: the genuine sender gets through.
    for _ in 0..3 {
        let signed = post_signed(&s.gateway, "github", &unique("b").into_bytes(), &unique("d"), &[]).await;
        assert_eq!(signed.status(), StatusCode::ACCEPTED);
    }
    // And verified requests still spend it.
    let fourth = post_signed(&s.gateway, "github", &unique("b").into_bytes(), &unique("d"), &[]).await;
    assert_eq!(fourth.status(), StatusCode::TOO_MANY_REQUESTS);
    let answer: serde_json::Value = fourth.json().await.unwrap();
    assert_eq!(error_code(&answer), "rate_limited_source");
    // Another address has its own unverified budget.
    let (status, code) = send(&client_from("127.0.0.2"), &url, b"{}", &[]).await;
    assert_eq!((status, code.as_str()), (401, "missing_signature"));
    let metrics = s.gateway.metrics().await;
    assert!(
        metrics.contains("hookgate_rate_limited_total{source=\"github\",scope=\"unverified\"}"),
        "{metrics}"
    );
    assert_eq!(s.records(3, Duration::from_secs(20)).len(), 3);
}

/// A connection from `from` that sent a request head announcing a body it never finishes.
async fn trickling_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from.parse().unwrap(), 0)).unwrap();
    let mut stream = socket.connect(to).await.unwrap();
    let head = "POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"a\":";
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

#[tokio::test]
async fn one_address_cannot_hold_more_than_its_requests_in_flight() {
    let s = setup("max_in_flight_per_client = 2\nbody_timeout = \"3s\"", "");
    let addr = s.gateway.ingest.unwrap();
    let url = s.gateway.url("/webhooks/github");
    let mut held = vec![
        trickling_from("127.0.0.2", addr).await,
        trickling_from("127.0.0.2", addr).await,
    ];
    tokio::time::sleep(Duration::from_millis(300)).await;
    let body = unique("b").into_bytes();
    let sent = signed(&s.gateway, "github", &body, &unique("d"), SystemTime::now());
    let (status, code) = send(&client_from("127.0.0.2"), &url, &body, &sent).await;
    assert_eq!((status, code.as_str()), (429, "client_in_flight_limit"));
    let (status, _) = send(&client_from("127.0.0.3"), &url, &body, &sent).await;
    assert_eq!(status, 202, "other addresses are not affected");
    // The trickling requests run out of body time; their slots come back.
    for stream in &mut held {
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
        assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 408"));
    }
    let body = unique("b").into_bytes();
    let response = post(
        &url,
        &body,
        &signed(&s.gateway, "github", &body, &unique("d"), SystemTime::now()),
    )
    .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let metrics = s.gateway.metrics().await;
    assert!(metrics.contains("scope=\"client_in_flight\"} 1"), "{metrics}");
}
