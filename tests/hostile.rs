//! Hostile input, end to end against the real binary: slow and dripping
//! clients, oversized bodies and headers, malformed and replayed signatures,
//! bodies that are not JSON, odd `{source}` paths, and forged query API
//! parameters. Whatever comes in, hookgate must not panic, must not leak a
//! secret or a token, must not grow a metric series per input, and must
//! keep serving everyone else.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime};

use common::gateway::{config, label_values};
use common::webhook::{self, headers, post_signed, signed};
use common::{unique, Broker, Setup};
use http::{HeaderName, HeaderValue};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every secret and token the tests configure: none may appear in a log or an answer.
const SECRETS: [&str; 7] = [
    "gh-secret-6f1d0c",
    "whsec_stripe_secret_9a7e",
    "shopify-secret-41b2",
    "slack-secret-77c0",
    "whsec_c3RkLXNlY3JldC1rZXktbWF0ZXJpYWw=",
    "hmac-secret-d3a9",
    "query-admin-token-5e5e",
];

/// One source per preset, all with literal secrets from [`SECRETS`].
fn sources() -> String {
    let [github, stripe, shopify, slack, standard, hmac, _] = SECRETS;
    format!(
        "[[sources]]\nname = \"github\"\nverify = \"github\"\nsecrets = [\"{github}\"]\n\
         [[sources]]\nname = \"stripe\"\nverify = \"stripe\"\nsecrets = [\"{stripe}\"]\n\
         [[sources]]\nname = \"shopify\"\nverify = \"shopify\"\nsecrets = [\"{shopify}\"]\n\
         [[sources]]\nname = \"slack\"\nverify = \"slack\"\nsecrets = [\"{slack}\"]\n\
         [[sources]]\nname = \"std\"\nverify = \"standard-webhooks\"\nsecrets = [\"{standard}\"]\n\
         [[sources]]\nname = \"custom\"\nverify = \"hmac\"\nsecrets = [\"{hmac}\"]\ndedup_key = \"header:x-delivery\"\n\
         [sources.hmac]\nheader = \"x-signature\"\nprefix = \"sha256=\"\nsigned = \"{{header:x-ts}}.{{body}}\"\ntimestamp_header = \"x-ts\"\n\
         [[sources]]\nname = \"json\"\nverify = \"none\"\ndedup_key = \"json:/id\"\nevent_type = \"json:/type\"\n\
         [[sources]]\nname = \"demo\"\nverify = \"none\"\ndedup_key = \"header:idempotency-key\"\n"
    )
}

/// A gateway of `role` on the shared broker with `ingest` lines in `[ingest]` and `rest` appended.
fn setup(role: &str, ingest: &str, rest: &str) -> Setup {
    let env = [("HG_ADMIN_TOKEN", SECRETS[6]), ("HG_A_TOKEN", "query-a-token-0b0b")];
    Setup::start(Broker::any(), 1, role, &env, |bootstrap, topic| {
        config(bootstrap, topic, ingest, &format!("{rest}\n{}", sources()))
    })
}

/// POSTs `body` with `headers` to the gateway's source `source`: the status and the answer's text.
async fn post(s: &Setup, source: &str, body: &[u8], headers: &[(HeaderName, HeaderValue)]) -> (StatusCode, String) {
    let response = webhook::post(&s.gateway.url(&format!("/webhooks/{source}")), body, headers).await;
    (response.status(), response.text().await.unwrap())
}

/// No panic, no secret in the log.
fn assert_clean(s: &Setup) {
    let logs = s.gateway.logs();
    assert!(s.gateway.panics().is_empty(), "panicked: {:?}", s.gateway.panics());
    for secret in SECRETS {
        assert!(!logs.contains(secret), "the log shows a secret:\n{logs}");
    }
}

fn error_code(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn assert_no_secret(text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "an answer shows a secret: {text}");
    }
}

/// Writes `request` on a fresh connection and reads until the server closes it or `wait` passes.
fn raw(addr: SocketAddr, request: &[u8], wait: Duration) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(wait)).unwrap();
    // The server may answer and close before reading everything: a failed write is fine.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// How a slow client behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slow {
    /// Connects and sends nothing.
    Idle,
    /// Sends the request line, then one header byte every 200 ms.
    Headers,
    /// Sends complete headers announcing 1000 bytes, then one body byte every 200 ms.
    Body,
}

/// Plays a slow client until the server closes the connection (or 15 s pass);
/// returns how long the connection lived and what the server sent.
async fn slow_client(addr: SocketAddr, kind: Slow) -> (Duration, String) {
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let opening: &[u8] = match kind {
        Slow::Idle => b"",
        Slow::Headers => b"POST /webhooks/demo HTTP/1.1\r\nHost: x\r\nX-Slow: ",
        Slow::Body => b"POST /webhooks/demo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{",
    };
    stream.write_all(opening).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    let mut drip = tokio::time::interval(Duration::from_millis(200));
    while started.elapsed() < Duration::from_secs(15) {
        tokio::select! {
            read = stream.read(&mut buffer) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            },
            _ = drip.tick() => {
                if kind != Slow::Idle && stream.write_all(b"a").await.is_err() {
                    break;
                }
            }
        }
    }
    (started.elapsed(), String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_and_dripped_bodies_are_cut_off_while_others_are_served() {
    let s = setup(
        "ingest",
        "header_timeout = \"1s\"\nbody_timeout = \"1s\"\nmax_connections_per_ip = 1000",
        "",
    );
    let addr = s.gateway.ingest.unwrap();
    // Settle the process's own descriptors (producer sockets, runtime) first.
    assert_eq!(post(&s, "demo", b"{}", &[]).await.0, StatusCode::ACCEPTED);
    let fds_before = s.gateway.open_fds();
    let kinds = [(Slow::Idle, 60), (Slow::Headers, 120), (Slow::Body, 60)];
    let clients: Vec<_> = kinds
        .iter()
        .flat_map(|(kind, n)| (0..*n).map(move |_| *kind))
        .map(|kind| tokio::spawn(async move { (kind, slow_client(addr, kind).await) }))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let open_during = s.gateway.open_fds();
    // Everyone else is served meanwhile, promptly.
    for n in 0..20 {
        let started = Instant::now();
        let (status, body) = post(&s, "demo", format!("{{\"n\":{n}}}").as_bytes(), &[]).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a normal request waited {:?}",
            started.elapsed()
        );
    }
    for client in clients {
        let (kind, (lived, answer)) = client.await.unwrap();
        assert!(lived < Duration::from_secs(4), "{kind:?} connection lived {lived:?}");
        match kind {
            Slow::Body => assert!(
                answer.starts_with("HTTP/1.1 408") && answer.contains("body_timeout"),
                "{answer}"
            ),
            _ => assert!(
                answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
                "{kind:?}: {answer}"
            ),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.gateway.open_fds() > fds_before + 4 {
        assert!(
            Instant::now() < deadline,
            "descriptors: {fds_before} before, {} after",
            s.gateway.open_fds()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "descriptors: {fds_before} before, {open_during} with 240 slow clients, {} after",
        s.gateway.open_fds()
    );
    assert_clean(&s);
}

#[test]
fn oversized_and_malformed_framing_is_refused_without_buffering() {
    let s = setup("ingest", "max_body_bytes = 1024\nbody_timeout = \"2s\"", "");
    let addr = s.gateway.ingest.unwrap();
    let wait = Duration::from_secs(5);
    // A declared length far beyond the limit is refused before any body byte is read.
    let huge = raw(
        addr,
        b"POST /webhooks/demo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000000000\r\n\r\n",
        wait,
    );
    assert!(
        huge.starts_with("HTTP/1.1 413") && huge.contains("body_too_large"),
        "{huge}"
    );
    // A length that does not fit in 64 bits, a negative one, two different ones: 400.
    for length in ["99999999999999999999999999", "-1", "10, 20", "0x10"] {
        let request = format!("POST /webhooks/demo HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n");
        let answer = raw(addr, request.as_bytes(), wait);
        assert!(answer.starts_with("HTTP/1.1 400"), "Content-Length {length}: {answer}");
    }
    // An absurd chunk size allocates nothing: the bytes that follow are counted as they stream in.
    let mut chunked =
        b"POST /webhooks/demo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFF\r\n".to_vec();
    chunked.extend_from_slice(&[b'a'; 4096]);
    let answer = raw(addr, &chunked, wait);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // ... and when they stop coming, the body timeout ends it.
    let stalled = raw(
        addr,
        b"POST /webhooks/demo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFF\r\nabc",
        wait + wait,
    );
    assert!(stalled.starts_with("HTTP/1.1 408"), "{stalled}");
    // Both Content-Length and Transfer-Encoding: the body is read as chunked (RFC 9112) and the
    // connection closed after the answer, so what hides behind the chunked body is never served.
    let smuggle = raw(
        addr,
        b"POST /webhooks/demo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nPOST /webhooks/demo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
        wait,
    );
    assert_eq!(smuggle.matches("HTTP/1.1 ").count(), 1, "one answer only: {smuggle}");
    assert!(smuggle.contains("connection: close"), "{smuggle}");
    assert_clean(&s);
}

#[test]
fn huge_header_counts_and_sizes_get_431_or_a_closed_connection() {
    let s = setup("ingest", "", "");
    let addr = s.gateway.ingest.unwrap();
    let wait = Duration::from_secs(5);
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let big = format!("X-Big: {}\r\n", "a".repeat(65 * 1024));
    let huge = format!("X-Huge: {}\r\n", "a".repeat(1024 * 1024));
    let wide: String = (0..90).map(|i| format!("X-W{i}: {}\r\n", "b".repeat(740))).collect();
    let cases = [
        ("150 headers", many),
        ("a 65 KiB header", big),
        ("a 1 MiB header", huge),
        ("90 headers of 740 bytes", wide),
    ];
    for (what, headers) in cases {
        let request = format!("POST /webhooks/demo HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: 2\r\n\r\n{{}}");
        let answer = raw(addr, request.as_bytes(), wait);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
            "{what}: {}",
            &answer[..answer.len().min(200)]
        );
    }
    // Just under the limits is fine.
    let fine: String = (0..90).map(|i| format!("X-F{i}: {}\r\n", "c".repeat(700))).collect();
    let request =
        format!("POST /webhooks/demo HTTP/1.1\r\nHost: x\r\n{fine}Connection: close\r\nContent-Length: 2\r\n\r\n{{}}");
    let answer = raw(addr, request.as_bytes(), wait);
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    assert_clean(&s);
}

#[tokio::test]
async fn malformed_signature_headers_of_every_preset_get_401_and_reveal_nothing() {
    // Some 180 failures from one address: beyond the default budget of failed
    // verifications (429 rate_limited_unverified, tests/strangers.rs).
    let budget = "[rate_limit]\nunverified_per_client_ip = { per_second = 1000, burst = 1000 }\n";
    let s = setup("ingest", "", budget);
    let now = SystemTime::now();
    let body = br#"{"id":"evt_1","type":"t","event_id":"Ev1","event":{"type":"x"}}"#;
    let ts = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let garbage = [
        "",
        " ",
        "sha256=",
        "sha256=zz",
        "v0=",
        "v1,",
        "v1,!!!!",
        "t=,v1=",
        "t=abc,v1=00",
        "t=1,v1=00,v1=00,v1=00",
        "=====",
        "sha256=00000000000000000000000000000000000000000000000000000000000000000000",
        "\t",
        "v1a,AAAA",
        "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t,u,v,w,x,y,z",
    ];
    let long = "v1,".to_owned() + &"A".repeat(8000);
    // (source, its signature header, the other headers its scheme needs)
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, String)>);
    let cases: [Case<'_>; 6] = [
        ("github", "x-hub-signature-256", vec![]),
        ("stripe", "stripe-signature", vec![]),
        ("shopify", "x-shopify-hmac-sha256", vec![]),
        (
            "slack",
            "x-slack-signature",
            vec![("x-slack-request-timestamp", ts.clone())],
        ),
        (
            "std",
            "webhook-signature",
            vec![("webhook-id", "msg_1".into()), ("webhook-timestamp", ts.clone())],
        ),
        (
            "custom",
            "x-signature",
            vec![("x-ts", ts.clone()), ("x-delivery", "d1".into())],
        ),
    ];
    let codes = [
        "missing_signature",
        "malformed_signature",
        "invalid_signature",
        "missing_timestamp",
        "malformed_timestamp",
    ];
    for (source, header, extra) in &cases {
        let genuine = signed(&s.gateway, source, body, "evt_1", now);
        let expected: Vec<String> = genuine.iter().map(|(_, v)| v.to_str().unwrap().to_owned()).collect();
        for value in garbage.iter().copied().chain([long.as_str()]) {
            let mut sent: Vec<(&str, &str)> = extra.iter().map(|(n, v)| (*n, v.as_str())).collect();
            sent.push((header, value));
            let (status, answer) = post(&s, source, body, &headers(&sent)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{source} {value:?}: {answer}");
            assert!(
                codes.contains(&error_code(&answer).as_str()),
                "{source} {value:?}: {answer}"
            );
            assert_no_secret(&answer);
            for signature in &expected {
                assert!(
                    signature.len() < 12 || !answer.contains(signature.as_str()),
                    "{source}: the answer reveals the signature"
                );
            }
        }
    }
    // Garbage timestamps where a scheme signs one.
    for stamp in ["", "abc", "-5", "1e9", "99999999999999999999", "1.5", " 1"] {
        for (source, header) in [
            ("slack", "x-slack-request-timestamp"),
            ("std", "webhook-timestamp"),
            ("custom", "x-ts"),
        ] {
            let mut sent = signed(&s.gateway, source, body, "evt_1", now);
            sent.retain(|(name, _)| name != header);
            sent.extend(headers(&[(header, stamp)]));
            let (status, answer) = post(&s, source, body, &sent).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{source} {stamp:?}: {answer}");
            assert!(
                error_code(&answer).ends_with("_timestamp") || error_code(&answer) == "invalid_signature",
                "{answer}"
            );
        }
    }
    let metrics = s.gateway.metrics().await;
    let reasons = label_values(&metrics, "hookgate_verify_failures_total", "reason");
    assert!(
        reasons
            .iter()
            .all(|r| codes.contains(&r.as_str()) || r.ends_with("_timestamp")),
        "{reasons:?}"
    );
    assert_clean(&s);
}

#[tokio::test]
async fn stale_and_future_timestamps_are_refused_by_every_timestamped_preset() {
    let s = setup("ingest", "", "");
    let body = br#"{"id":"evt_old","type":"t"}"#;
    let hour = Duration::from_secs(3600);
    for source in ["stripe", "slack", "std", "custom"] {
        for (when, code) in [
            (SystemTime::now() - hour, "stale_timestamp"),
            (SystemTime::now() + hour, "future_timestamp"),
        ] {
            let headers = signed(&s.gateway, source, body, &unique("d"), when);
            let (status, answer) = post(&s, source, body, &headers).await;
            assert_eq!(
                (status, error_code(&answer).as_str()),
                (StatusCode::UNAUTHORIZED, code),
                "{source}: {answer}"
            );
        }
    }
    assert!(s.records(0, Duration::from_secs(2)).is_empty());
    assert_clean(&s);
}

#[tokio::test]
async fn replayed_deliveries_are_published_once_or_refused_as_stale() {
    let s = setup("ingest", "", "");
    let body = br#"{"id":"evt_replayed","type":"charge.succeeded"}"#;
    // A captured genuine request, replayed verbatim within the window: one record, the same id every time.
    for source in ["github", "stripe", "std", "shopify"] {
        let mut sent = signed(&s.gateway, source, body, &unique("delivery"), SystemTime::now());
        if source == "shopify" {
            sent.extend(headers(&[("x-shopify-webhook-id", &unique("shop"))]));
        }
        let (status, first) = post(&s, source, body, &sent).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{source}: {first}");
        let id = serde_json::from_str::<serde_json::Value>(&first).unwrap()["id"].clone();
        for _ in 0..5 {
            let (status, again) = post(&s, source, body, &sent).await;
            let again: serde_json::Value = serde_json::from_str(&again).unwrap();
            assert_eq!(
                (status, &again["id"], &again["duplicate"]),
                (StatusCode::OK, &id, &serde_json::json!(true)),
                "{source}"
            );
        }
    }
    let records = s.records(4, Duration::from_secs(10));
    assert_eq!(records.len(), 4, "each replayed delivery is in the topic once");
    assert_clean(&s);
}

#[tokio::test]
async fn a_replay_outside_the_tolerance_is_stale() {
    let rest =
        "[[sources]]\nname = \"strict\"\nverify = \"stripe\"\nsecrets = [\"whsec_strict\"]\ntolerance = \"1s\"\n";
    let s = setup("ingest", "", rest);
    let body = br#"{"id":"evt_late","type":"t"}"#;
    let headers = signed(&s.gateway, "strict", body, "d", SystemTime::now());
    assert_eq!(post(&s, "strict", body, &headers).await.0, StatusCode::ACCEPTED);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, answer) = post(&s, "strict", body, &headers).await;
    assert_eq!(
        (status, error_code(&answer).as_str()),
        (StatusCode::UNAUTHORIZED, "stale_timestamp"),
        "{answer}"
    );
    assert_clean(&s);
}

#[tokio::test]
async fn bodies_that_are_not_json_are_published_byte_for_byte_without_a_key() {
    let s = setup("ingest", "", "");
    let nested = "[".repeat(200_000);
    let bodies: Vec<Vec<u8>> = vec![
        b"\xff\xfe\xfd not utf-8 \xc3\x28".to_vec(),
        b"{\"id\": \"unterminated".to_vec(),
        nested.into_bytes(),
        br#"{"id":{"nested":"object"},"type":["array"]}"#.to_vec(),
        br#"{"id":1e400,"type":null}"#.to_vec(),
        format!("{{\"id\":\"{}\"}}", "k".repeat(10_000)).into_bytes(),
        Vec::new(),
    ];
    for body in &bodies {
        let (status, answer) = post(&s, "json", body, &[]).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    }
    // A signed Stripe event whose body is not JSON: verified, then published without a dedup key.
    let response = post_signed(&s.gateway, "stripe", b"\xff\x00 binary", "d", &[]).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let records = s.records(bodies.len() + 1, Duration::from_secs(15));
    assert_eq!(records.len(), bodies.len() + 1);
    for body in &bodies {
        let record = records
            .iter()
            .find(|r| r.envelope.body.as_ref() == body.as_slice())
            .expect("published byte for byte");
        assert!(record.envelope.dedup_key.len() <= 256, "keys are bounded");
    }
    let long_body = &bodies[5];
    let long_key = records
        .iter()
        .find(|r| r.envelope.body.as_ref() == long_body.as_slice())
        .unwrap();
    let digest = <sha2::Sha256 as sha2::Digest>::digest("k".repeat(10_000).as_bytes());
    assert_eq!(
        long_key.envelope.dedup_key,
        format!("sha256:{}", const_hex::encode(digest)),
        "the long id is used, hashed whole"
    );
    let metrics = s.gateway.metrics().await;
    assert!(
        metrics.contains(r#"hookgate_dedup_key_missing_total{source="json"} 6"#),
        "{metrics}"
    );
    assert_clean(&s);
}

#[tokio::test]
async fn odd_source_paths_get_404_and_no_new_metric_series() {
    let s = setup("ingest", "", "");
    let addr = s.gateway.ingest.unwrap();
    let wait = Duration::from_secs(5);
    // Sent as raw bytes: an HTTP client library would normalise some of them away.
    let mut targets: Vec<String> = [
        "/webhooks/../webhooks/github",
        "/webhooks/./github",
        "/webhooks/%2e%2e/github",
        "/webhooks/github%00",
        "/webhooks/GitHub",
        "/webhooks/github/",
        "/webhooks//github",
        "/webhooks/github%2F..%2F..",
        "/webhooks/%F0%9F%92%A9",
        "/webhooks/gith%75b",
        "/webhooks/github;x=1",
        "/webhooks/%",
        "/webhooks/%ZZ",
        "/webhooks",
        "/",
        "/metrics",
        "/webhooks/github/../../etc/passwd",
        "*",
        "http://evil.example/webhooks/nope",
        "webhooks/github",
        "/webhooks/\x7f",
        "/webhooks/\u{e9}t\u{e9}",
    ]
    .iter()
    .map(|p| p.to_string())
    .collect();
    targets.extend((0..300).map(|n| format!("/webhooks/{}", unique(&format!("random{n}")))));
    targets.push(format!("/webhooks/{}", "a".repeat(6000)));
    for target in &targets {
        let request =
            format!("POST {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{{}}");
        let answer = raw(addr, request.as_bytes(), wait);
        let status = answer.get(9..12).unwrap_or_default();
        assert!(
            answer.is_empty() || ["404", "400", "414", "431"].contains(&status),
            "{target}: {answer}"
        );
    }
    let metrics = s.gateway.metrics().await;
    for name in [
        "hookgate_requests_total",
        "hookgate_verify_failures_total",
        "hookgate_request_body_bytes_bucket",
    ] {
        let labels = label_values(&metrics, name, "source");
        let configured = [
            "github", "stripe", "shopify", "slack", "std", "custom", "json", "demo", "_unknown",
        ];
        assert!(
            labels.iter().all(|l| configured.contains(&l.as_str())),
            "{name}: {labels:?}"
        );
    }
    assert_clean(&s);
}
