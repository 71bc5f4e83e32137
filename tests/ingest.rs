//! Ingest against a real broker: every row of the ingest contract provoked
//! over real HTTP, and every accepted webhook read back from Kafka.

mod common;

use std::time::{Duration, SystemTime};

use common::gateway::{config, label_values};
use common::webhook::{headers, post, post_signed, signed};
use common::{consume_all, unique, Broker, Gateway, Setup};
use reqwest::StatusCode;

const GITHUB_SECRET: &str = "it's a secret to everybody";

fn github_source() -> String {
    format!(
        "[[sources]]\nname = \"github\"\nverify = \"github\"\nsecrets = [\"wrong-old-secret\", \"{GITHUB_SECRET}\"]\n"
    )
}

/// A 3-partition topic on the shared broker and an ingest gateway publishing to it, with `rest` appended to its config.
fn setup(rest: &str) -> Setup {
    Setup::start(Broker::any(), 3, "ingest", &[], |bootstrap, topic| {
        config(bootstrap, topic, "", rest)
    })
}

#[tokio::test]
async fn signed_github_webhook_lands_in_kafka_byte_for_byte() {
    let s = setup(&github_source());
    let body = br#"{"zen":"Design for failure.","hook_id":42}"#;
    let delivery = unique("delivery");
    let mut sent = signed(&s.gateway, "github", body, &delivery, SystemTime::now());
    sent.extend(headers(&[
        ("x-github-event", "ping"),
        ("authorization", "Bearer not-for-kafka"),
    ]));
    let response = post(&s.gateway.url("/webhooks/github?x=1"), body, &sent).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(answer["topic"], s.topic.as_str());

    let records = s.records(1, Duration::from_secs(20));
    assert_eq!(records.len(), 1);
    let record = &records[0];
    let envelope = &record.envelope;
    assert_eq!(envelope.body.as_ref(), body);
    assert_eq!(envelope.id, answer["id"].as_str().unwrap());
    assert_eq!(record.partition as i64, answer["partition"].as_i64().unwrap());
    assert_eq!(record.offset, answer["offset"].as_i64().unwrap());
    assert_eq!(envelope.source, "github");
    assert_eq!(envelope.event_type, "ping");
    assert_eq!(envelope.dedup_key, delivery);
    assert_eq!(envelope.method, "POST");
    assert_eq!(envelope.path, "/webhooks/github");
    assert_eq!(envelope.query, "x=1");
    assert_eq!(envelope.content_type, "application/json");
    assert_eq!(envelope.client_addr, "127.0.0.1");
    assert!(!envelope.replay);
    let verification = envelope.verification.as_ref().unwrap();
    assert_eq!(
        (
            verification.scheme.as_str(),
            verification.verified,
            verification.secret_index
        ),
        ("github", true, 1)
    );
    assert_eq!(envelope.header("x-github-delivery"), Some(delivery.as_bytes()));
    assert_eq!(envelope.header("authorization"), Some(&b"[redacted]"[..]));
    assert_eq!(record.header("hookgate-id"), Some(envelope.id.as_str()));
    assert_eq!(record.header("hookgate-source"), Some("github"));
    assert_eq!(record.header("hookgate-event-type"), Some("ping"));
    assert_eq!(record.key.as_deref(), Some(envelope.id.as_bytes()));
}

/// (source, body, extra headers, expected event type).
type PresetCase = (
    &'static str,
    String,
    &'static [(&'static str, &'static str)],
    &'static str,
);

#[tokio::test]
async fn every_preset_accepts_its_providers_signature() {
    let stripe = "[[sources]]\nname = \"stripe\"\nverify = \"stripe\"\nsecrets = [\"whsec_stripe_test\"]\n";
    let shopify = "[[sources]]\nname = \"shopify\"\nverify = \"shopify\"\nsecrets = [\"shpss_test\"]\n";
    let slack = "[[sources]]\nname = \"slack\"\nverify = \"slack\"\nsecrets = [\"slack-signing-secret\"]\n";
    let standard = "[[sources]]\nname = \"std\"\nverify = \"standard-webhooks\"\nsecrets = [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]\n";
    let hmac = "[[sources]]\nname = \"custom\"\nverify = \"hmac\"\nsecrets = [\"custom-secret\"]\ndedup_key = \"header:x-delivery\"\n\
                [sources.hmac]\nheader = \"x-signature\"\nalgorithm = \"sha512\"\nencoding = \"base64\"\nprefix = \"v=\"\n";
    let s = setup(&[stripe, shopify, slack, standard, hmac].concat());
    let cases: [PresetCase; 5] = [
        (
            "stripe",
            r#"{"id":"evt_1","type":"charge.succeeded"}"#.into(),
            &[],
            "charge.succeeded",
        ),
        (
            "shopify",
            r#"{"id":1}"#.into(),
            &[("x-shopify-topic", "orders/create"), ("x-shopify-webhook-id", "w-1")],
            "orders/create",
        ),
        (
            "slack",
            r#"{"type":"event_callback","event_id":"Ev1","event":{"type":"app_mention"}}"#.into(),
            &[],
            "app_mention",
        ),
        ("std", r#"{"type":"invoice.paid"}"#.into(), &[], "invoice.paid"),
        ("custom", r#"{"n":1}"#.into(), &[("x-delivery", "d-1")], ""),
    ];
    for (source, body, extra, _) in &cases {
        let mut sent = signed(&s.gateway, source, body.as_bytes(), &unique("msg"), SystemTime::now());
        sent.extend(headers(extra));
        let url = s.gateway.url(&format!("/webhooks/{source}"));
        let response = post(&url, body.as_bytes(), &sent).await;
        let status = response.status();
        assert_eq!(
            status,
            StatusCode::ACCEPTED,
            "{source}: {}",
            response.text().await.unwrap()
        );
        // Tampered body: same signature, one byte changed.
        let mut tampered = body.clone().into_bytes();
        tampered[2] ^= 1;
        let response = post(&url, &tampered, &sent).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{source}");
    }
    let records = s.records(cases.len(), Duration::from_secs(20));
    assert_eq!(records.len(), cases.len());
    for (source, body, _, event_type) in &cases {
        let record = records.iter().find(|r| r.envelope.source == *source).unwrap();
        assert_eq!(record.envelope.body.as_ref(), body.as_bytes());
        assert_eq!(record.envelope.event_type, *event_type, "{source}");
        assert!(record.envelope.verification.as_ref().unwrap().verified);
    }
}

#[tokio::test]
async fn slack_url_verification_is_answered_and_not_published() {
    let s = setup("[[sources]]\nname = \"slack\"\nverify = \"slack\"\nsecrets = [\"slack-signing-secret\"]\n");
    let body = br#"{"token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let response = post_signed(&s.gateway, "slack", body, "x", &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        answer["challenge"],
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
    assert!(s.records(0, Duration::from_secs(3)).is_empty());
}

#[tokio::test]
async fn bad_signatures_get_401_with_a_reason_code_and_no_expected_signature() {
    let s = setup(&github_source());
    let body = br#"{"a":1}"#;
    let cases: [(&[(&str, &str)], &str); 3] = [
        (&[], "missing_signature"),
        (&[("x-hub-signature-256", "sha256=nothex!")], "malformed_signature"),
        (
            &[(
                "x-hub-signature-256",
                "sha256=0000000000000000000000000000000000000000000000000000000000000000",
            )],
            "invalid_signature",
        ),
    ];
    for (sent, code) in cases {
        let response = post(&s.gateway.url("/webhooks/github"), body, &headers(sent)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let text = response.text().await.unwrap();
        let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(answer["error"]["code"], code, "{text}");
        let good = signed(&s.gateway, "github", body, "d", SystemTime::now());
        let signature = good.iter().find(|(name, _)| name == "x-hub-signature-256").unwrap();
        let expected = signature.1.to_str().unwrap().trim_start_matches("sha256=");
        assert!(
            !text.contains(expected),
            "the answer must not reveal the expected signature"
        );
    }
    assert!(s.records(0, Duration::from_secs(2)).is_empty());
    let metrics = s.gateway.metrics().await;
    assert!(
        metrics.contains(r#"hookgate_verify_failures_total{source="github",reason="invalid_signature"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn stale_timestamps_are_refused() {
    let s = setup("[[sources]]\nname = \"stripe\"\nverify = \"stripe\"\nsecrets = [\"whsec_x\"]\ntolerance = \"1m\"\n");
    let body = br#"{"id":"evt_old","type":"t"}"#;
    let url = s.gateway.url("/webhooks/stripe");
    let old = SystemTime::now() - Duration::from_secs(3600);
    let response = post(&url, body, &signed(&s.gateway, "stripe", body, "d", old)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "stale_timestamp");
    let future = SystemTime::now() + Duration::from_secs(3600);
    let response = post(&url, body, &signed(&s.gateway, "stripe", body, "d", future)).await;
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "future_timestamp");
}

#[tokio::test]
async fn a_repeated_delivery_gets_200_with_the_original_id_and_is_published_once() {
    let s = setup(&github_source());
    let body = br#"{"action":"opened"}"#;
    let delivery = unique("delivery");
    let first = post_signed(&s.gateway, "github", body, &delivery, &[]).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first: serde_json::Value = first.json().await.unwrap();
    let again = post_signed(&s.gateway, "github", body, &delivery, &[]).await;
    assert_eq!(again.status(), StatusCode::OK);
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["duplicate"], true);
    assert_eq!(s.records(1, Duration::from_secs(10)).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_identical_deliveries_publish_exactly_once() {
    let s = setup(&github_source());
    let body = br#"{"action":"closed"}"#;
    let delivery = unique("delivery");
    let sent = signed(&s.gateway, "github", body, &delivery, SystemTime::now());
    let url = s.gateway.url("/webhooks/github");
    let requests = (0..40).map(|_| post(&url, body, &sent));
    let responses = futures::future::join_all(requests).await;
    let statuses: Vec<u16> = responses.into_iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| [200, 202, 409].contains(s)), "{statuses:?}");
    assert_eq!(s.records(1, Duration::from_secs(10)).len(), 1);
}

#[tokio::test]
async fn unknown_sources_get_404_without_a_new_metric_series() {
    let s = setup(&github_source());
    for path in [
        "/webhooks/nope",
        "/webhooks/..%2f..%2fetc",
        "/webhooks/github/extra",
        "/other",
        "/webhooks/%00",
    ] {
        let response = post(&s.gateway.url(path), b"x", &[]).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let answer: serde_json::Value = response.json().await.unwrap();
        assert!(answer["error"]["code"].is_string());
    }
    let response = reqwest::get(s.gateway.url("/webhooks/github")).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let metrics = s.gateway.metrics().await;
    let sources = label_values(&metrics, "hookgate_requests_total", "source");
    assert_eq!(sources.into_iter().collect::<Vec<_>>(), ["_unknown"]);
}

#[tokio::test]
async fn oversized_bodies_get_413_declared_or_streamed() {
    let s = setup("[[sources]]\nname = \"small\"\nverify = \"none\"\nmax_body_bytes = 1024\n");
    let url = s.gateway.url("/webhooks/small");
    let response = post(&url, &[b'a'; 4096], &[]).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "body_too_large");
    // Chunked, no Content-Length: refused once the streamed bytes pass the limit.
    let chunks = futures::stream::iter((0..64).map(|_| Ok::<_, std::io::Error>(vec![b'b'; 512])));
    let response = reqwest::Client::new()
        .post(&url)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await;
    match response {
        Ok(response) => assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE),
        Err(error) => assert!(error.is_request() || error.is_body(), "{error}"),
    }
    // A fresh connection (each post has its own): the server closes one whose body it refused to read.
    let exact = post(&url, &[b'c'; 1024], &[]).await;
    assert_eq!(exact.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn quotas_answer_429_with_retry_after() {
    let s = setup("[[sources]]\nname = \"limited\"\nverify = \"none\"\nrate_limit = { per_second = 1, burst = 2 }\n");
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let response = post(&s.gateway.url("/webhooks/limited"), b"{}", &[]).await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            let retry: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
            assert!(retry >= 1);
            let answer: serde_json::Value = response.json().await.unwrap();
            assert_eq!(answer["error"]["code"], "rate_limited_source");
            statuses.push(429);
        } else {
            statuses.push(response.status().as_u16());
        }
    }
    assert_eq!(&statuses[..2], [202, 202]);
    assert!(statuses[2..].contains(&429), "{statuses:?}");
}

#[tokio::test]
async fn per_client_ip_quota_applies_across_sources() {
    let rest = "[rate_limit]\nper_client_ip = { per_second = 1, burst = 1 }\n\
                [[sources]]\nname = \"a\"\nverify = \"none\"\n[[sources]]\nname = \"b\"\nverify = \"none\"\n";
    let s = setup(rest);
    let first = post(&s.gateway.url("/webhooks/a"), b"{}", &[]).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let response = post(&s.gateway.url("/webhooks/b"), b"{}", &[]).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "rate_limited_client");
}

#[tokio::test]
async fn a_dead_broker_means_503_within_the_deadline_never_2xx() {
    let bootstrap = format!("127.0.0.1:{}", common::dead_port());
    let rest = "[[sources]]\nname = \"demo\"\nverify = \"none\"\n";
    let text = config(&bootstrap, "webhooks", "deadline = \"2s\"", rest);
    let gateway = Gateway::start(&text, "ingest");
    let started = std::time::Instant::now();
    let response = post(&gateway.url("/webhooks/demo"), b"{}", &[]).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    let answer: serde_json::Value = response.json().await.unwrap();
    assert!(
        ["publish_timeout", "broker_error", "deadline_exceeded"].contains(&answer["error"]["code"].as_str().unwrap()),
        "{answer}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "answered after {:?}",
        started.elapsed()
    );
    let ready = reqwest::get(gateway.metrics_url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn a_sender_that_hangs_up_before_the_answer_still_gets_its_webhook_published_once() {
    use tokio::io::AsyncWriteExt;
    let s = setup("[[sources]]\nname = \"demo\"\nverify = \"none\"\ndedup_key = \"header:x-id\"\n");
    let addr = s.gateway.ingest.unwrap();
    // The whole request, then the connection closed at once, before any answer.
    let mut gone = tokio::net::TcpStream::connect(addr).await.unwrap();
    gone.write_all(b"POST /webhooks/demo HTTP/1.1\r\nhost: x\r\nx-id: hung-up\r\ncontent-length: 2\r\n\r\n{}")
        .await
        .unwrap();
    drop(gone);
    // The hung-up delivery itself reaches the topic. (Waiting for it before the
    // retry also keeps the retry from racing it to the dedup key.)
    let published = s.records(1, Duration::from_secs(15));
    assert_eq!(published.len(), 1, "the hung-up delivery was not published");
    assert_eq!(published[0].envelope.dedup_key, "hung-up");
    // The sender's retry finds it published (200), or still settling (409): never a second 202.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let retry = post(
            &s.gateway.url("/webhooks/demo"),
            b"{}",
            &headers(&[("x-id", "hung-up")]),
        )
        .await;
        match retry.status() {
            StatusCode::OK => break,
            StatusCode::CONFLICT if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            other => panic!("retry answered {other}: {}", retry.text().await.unwrap()),
        }
    }
    let records = s.records(2, Duration::from_secs(5));
    assert_eq!(records.len(), 1, "exactly the hung-up delivery, once");
    assert_eq!(records[0].envelope.dedup_key, "hung-up");
    assert!(s.gateway.panics().is_empty());
}

#[tokio::test]
async fn an_in_flight_duplicate_gets_409_and_a_failed_publish_frees_the_key() {
    // Nothing listens on the broker port, so a publish stays pending until the deadline.
    let bootstrap = format!("127.0.0.1:{}", common::dead_port());
    let text = config(
        &bootstrap,
        "webhooks",
        "deadline = \"3s\"",
        "[[sources]]\nname = \"demo\"\nverify = \"none\"\ndedup_key = \"header:x-id\"\n",
    );
    let gateway = Gateway::start(&text, "ingest");
    let (url, same) = (gateway.url("/webhooks/demo"), headers(&[("x-id", "same")]));
    let first = tokio::spawn({
        let (url, same) = (url.clone(), same.clone());
        async move { post(&url, b"{}", &same).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = post(&url, b"{}", &same).await;
    assert_eq!(second.status(), StatusCode::CONFLICT);
    assert_eq!(second.headers()["retry-after"], "1");
    let answer: serde_json::Value = second.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "duplicate_in_flight");
    let first = first.await.unwrap();
    assert_eq!(first.status(), StatusCode::SERVICE_UNAVAILABLE);
    // The failed publish released the key: the retry is tried again (and fails again: still no broker), not 409.
    let retry = post(&url, b"{}", &same).await;
    assert_eq!(retry.status(), StatusCode::SERVICE_UNAVAILABLE);
    let metrics = gateway.metrics().await;
    assert!(
        metrics.contains(r#"hookgate_duplicates_total{source="demo",state="in_flight"} 1"#),
        "{metrics}"
    );
}

#[test]
fn slow_headers_and_dripped_bodies_are_cut_off() {
    use std::io::{Read, Write};
    let broker = Broker::any();
    let text = config(
        &broker.bootstrap(),
        "webhooks",
        "header_timeout = \"1s\"\nbody_timeout = \"1s\"",
        "[[sources]]\nname = \"demo\"\nverify = \"none\"\n",
    );
    let gateway = Gateway::start(&text, "ingest");
    let addr = gateway.ingest.unwrap();
    // Headers never finished: the connection is closed.
    let mut slow = std::net::TcpStream::connect(addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    slow.write_all(b"POST /webhooks/demo HTTP/1.1\r\nHost: x\r\n").unwrap();
    let mut buffer = Vec::new();
    let _ = slow.read_to_end(&mut buffer);
    let answer = String::from_utf8_lossy(&buffer);
    assert!(buffer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
    // Body announced but dripped: 408.
    let mut drip = std::net::TcpStream::connect(addr).unwrap();
    drip.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    drip.write_all(b"POST /webhooks/demo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"a\":")
        .unwrap();
    let mut buffer = [0u8; 512];
    let read = drip.read(&mut buffer).unwrap();
    let answer = String::from_utf8_lossy(&buffer[..read]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
}

#[tokio::test]
async fn sigterm_finishes_in_flight_requests_and_exits_zero() {
    let Setup {
        broker,
        topic,
        mut gateway,
        ..
    } = setup("[[sources]]\nname = \"demo\"\nverify = \"none\"\n");
    let client = reqwest::Client::new();
    let url = gateway.url("/webhooks/demo");
    let requests: Vec<_> = (0..20)
        .map(|i| tokio::spawn(client.post(&url).body(format!("{{\"n\":{i}}}")).send()))
        .collect();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let status = tokio::task::spawn_blocking(move || {
        let status = gateway.terminate(Duration::from_secs(30));
        (status, gateway.logs())
    });
    let mut accepted = 0;
    for request in requests {
        if let Ok(response) = request.await.unwrap() {
            assert!([202, 503].contains(&response.status().as_u16()));
            accepted += usize::from(response.status() == StatusCode::ACCEPTED);
        }
    }
    let (status, logs) = status.await.unwrap();
    assert!(status.success(), "{status}\n{logs}");
    assert!(logs.contains("producer flushed"), "{logs}");
    let records = consume_all(&broker.bootstrap(), &topic, accepted, Duration::from_secs(10));
    assert!(
        records.len() >= accepted,
        "every 2xx is in the topic: {} < {accepted}",
        records.len()
    );
}

#[test]
fn secrets_never_reach_the_logs() {
    let broker = Broker::any();
    let text = config(&broker.bootstrap(), "webhooks", "", "[[sources]]\nname = \"gh\"\nverify = \"github\"\nsecrets = [\"env:HG_TEST_SECRET\", \"literal-secret-value-123\"]\n");
    let mut gateway = Gateway::start_with_env(&text, "ingest", &[("HG_TEST_SECRET", "env-secret-value-456")]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let _ = reqwest::Client::new()
            .post(gateway.url("/webhooks/gh"))
            .header("x-hub-signature-256", "sha256=00")
            .body("{}")
            .send()
            .await;
    });
    gateway.terminate(Duration::from_secs(20));
    let logs = gateway.logs();
    assert!(
        !logs.contains("env-secret-value-456") && !logs.contains("literal-secret-value-123"),
        "{logs}"
    );
    assert!(
        logs.contains("written literally"),
        "the literal secret draws a warning: {logs}"
    );
}

#[tokio::test]
async fn a_missing_topic_is_reported_at_start_and_answers_503() {
    let broker = Broker::any();
    let topic = unique("never-created");
    let text = config(
        &broker.bootstrap(),
        &topic,
        "deadline = \"2s\"",
        "[[sources]]\nname = \"demo\"\nverify = \"none\"\n",
    );
    let gateway = Gateway::start(&text, "ingest");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !gateway.logs().contains("topics missing") {
        assert!(std::time::Instant::now() < deadline, "{}", gateway.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gateway.logs().contains(&topic));
    let response = post(&gateway.url("/webhooks/demo"), b"{}", &[]).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}
