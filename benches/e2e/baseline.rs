//! The baseline: the least an HTTP-to-Kafka forwarder can do with the same
//! delivery guarantee. hyper HTTP/1.1, one shared rdkafka `FutureProducer`
//! (acks=all, idempotence on, librdkafka's default batching as hookgate uses
//! it), the body as the record value keyed by the delivery id, and the answer
//! only after the broker's ack. No verification, dedup, limits, envelope or metrics.
//!
//! It runs in a child process (the e2e binary started again with
//! `HOOKGATE_E2E_ROLE=baseline`) so its CPU time and RSS can be read apart
//! from the load generator's.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// Runs the forwarder until the parent kills it. Reads `E2E_BROKERS` and
/// `E2E_TOPIC`; prints `listening addr=<addr>` on stdout once it accepts.
pub(crate) fn run() {
    let brokers = std::env::var("E2E_BROKERS").expect("E2E_BROKERS");
    let topic: &'static str = Box::leak(std::env::var("E2E_TOPIC").expect("E2E_TOPIC").into_boxed_str());
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        // The same producer settings hookgate runs with by default.
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "100000")
        .set("message.timeout.ms", "7500")
        .create()
        .expect("producer");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(serve(producer, topic));
}

async fn serve(producer: FutureProducer, topic: &'static str) {
    // The same kernel backlog as hookgate's webhook listener (its default
    // `ingest.max_connections`): each peak round opens its 1024 connections at
    // once, and a connection attempt the kernel drops waits a second for its retry.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind("127.0.0.1:0".parse().expect("address")).expect("bind");
    let listener = socket.listen(10_000).expect("listen");
    println!("listening addr={}", listener.local_addr().expect("local addr"));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let producer = producer.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| forward(producer.clone(), topic, request));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn forward(
    producer: FutureProducer,
    topic: &str,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let Ok(body) = body.collect().await.map(|collected| collected.to_bytes()) else {
        return Ok(answer(StatusCode::BAD_REQUEST, Bytes::new()));
    };
    let key = parts
        .headers
        .get("x-github-delivery")
        .map(|value| value.as_bytes())
        .unwrap_or_default();
    let mut record = FutureRecord::to(topic).payload(&body[..]).key(key);
    if with_headers() {
        record = record.headers(routing_headers(key));
    }
    Ok(match producer.send(record, Duration::from_secs(8)).await {
        Ok(delivery) => {
            let text = format!(
                "{{\"partition\":{},\"offset\":{}}}",
                delivery.partition, delivery.offset
            );
            answer(StatusCode::ACCEPTED, Bytes::from(text))
        }
        Err(_) => answer(StatusCode::SERVICE_UNAVAILABLE, Bytes::new()),
    })
}

/// `E2E_BASELINE_HEADERS=1`: also send four record headers shaped like
/// hookgate's routing headers, to tell their cost on a broker apart from the
/// rest of hookgate's (an attribution aid, off in the benchmark proper).
fn with_headers() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("E2E_BASELINE_HEADERS").is_ok_and(|v| v == "1"))
}

fn routing_headers(key: &[u8]) -> OwnedHeaders {
    let id = std::str::from_utf8(key).unwrap_or_default();
    OwnedHeaders::new_with_capacity(4)
        .insert(Header {
            key: "hookgate-id",
            value: Some("0190c1c2-7b3e-7c4d-8e5f-0a1b2c3d4e5f"),
        })
        .insert(Header {
            key: "hookgate-source",
            value: Some("github"),
        })
        .insert(Header {
            key: "hookgate-schema",
            value: Some("hookgate.v1.WebhookEnvelope"),
        })
        .insert(Header {
            key: "hookgate-event-type",
            value: Some(id),
        })
}

fn answer(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
}
