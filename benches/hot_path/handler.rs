//! The whole pipeline without the network: `Ingest::handle` on in-memory
//! requests (signed 1 KiB GitHub deliveries) against the embedded mock
//! cluster, with metrics recorded as in production.
//!
//! - `publish_one`: one request at a time, each waiting for its ack
//!   (`linger.ms = 0`, so this is the pipeline's latency on an idle gateway);
//! - `publish_64`: 64 requests at once (throughput per request);
//! - `duplicate`: a delivery already acked, answered 200 without Kafka: the
//!   pipeline's own cost (route, quota, body, HMAC, dedup, response).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput};
use hookgate::config::Config;
use hookgate::dedup::Dedup;
use hookgate::ingest::{prepare_sources, Ingest};
use hookgate::publish::{EmbeddedBroker, KafkaEndpoint, Publisher};
use hookgate::ratelimit::RateLimiter;
use hookgate::verify::Verifier;
use http::{Request, StatusCode};
use http_body_util::Full;

use crate::fixtures::json_body;

const CONFIG: &str = r#"
[kafka]
topic = "bench"
[kafka.options]
"linger.ms" = "0"
[rate_limit]
per_client_ip = { per_second = 1000000000, burst = 1000000000 }
[[sources]]
name = "github"
verify = "github"
secrets = ["github-secret-key-material"]
rate_limit = { per_second = 1000000000, burst = 1000000000 }
"#;

/// Concurrent requests of `publish_64`.
const BATCH: usize = 64;

/// A gateway's request state and what signs requests for it.
struct Bench {
    ingest: Arc<Ingest>,
    signer: Verifier,
    next: AtomicU64,
    peer: SocketAddr,
}

impl Bench {
    /// The gateway's answer to `request`, as if it came from the bench's client.
    fn handle(
        &self,
        request: Request<Full<Bytes>>,
    ) -> impl std::future::Future<Output = http::Response<hookgate::ingest::IngestBody>> {
        self.ingest.clone().handle(self.peer, request)
    }

    /// A signed delivery with a fresh (or the given) delivery id.
    fn request(&self, delivery: Option<&str>) -> Request<Full<Bytes>> {
        let fresh = format!("bench-{}", self.next.fetch_add(1, Ordering::Relaxed));
        let delivery = delivery.unwrap_or(&fresh);
        let body = json_body(1024, delivery);
        let mut request = Request::post("/webhooks/github")
            .header("content-type", "application/json")
            .header("content-length", body.len())
            .header("user-agent", "GitHub-Hookshot/bench")
            .header("x-github-event", "push")
            .body(Full::new(Bytes::new()))
            .expect("request");
        for (name, value) in self.signer.sign(&body, delivery, SystemTime::now()).expect("signs") {
            request.headers_mut().insert(name, value);
        }
        *request.body_mut() = Full::new(Bytes::from(body));
        request
    }
}

pub(crate) fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut config = Config::from_toml(CONFIG).expect("bench config parses");
    let broker = EmbeddedBroker::start(&config.topics(), 3).expect("mock cluster");
    config.kafka.brokers = Some(broker.bootstrap_servers().to_owned());
    let bench = runtime.block_on(async {
        hookgate::telemetry::install();
        let endpoint = KafkaEndpoint {
            bootstrap: broker.bootstrap_servers().to_owned(),
            options: config.kafka.options.clone(),
        };
        let publisher = Publisher::new(endpoint, Duration::from_secs(5)).expect("producer");
        let sources = prepare_sources(&config).expect("sources");
        let limiter = Arc::new(RateLimiter::new(&config));
        let dedup = Dedup::in_memory(config.dedup.window, config.dedup.max_keys);
        let signer = Verifier::from_source(&config.sources[0]).expect("signer");
        let ingest = Arc::new(Ingest::new(&config, sources, limiter, dedup, publisher));
        let peer = "192.0.2.1:40000".parse().unwrap();
        Bench {
            ingest,
            signer,
            next: AtomicU64::new(0),
            peer,
        }
    });
    // Warm the producer (metadata, idempotence handshake) and hold one acked delivery.
    let status = runtime.block_on(bench.handle(bench.request(Some("held")))).status();
    assert_eq!(status, StatusCode::ACCEPTED);

    let mut group = c.benchmark_group("handler");
    group.throughput(Throughput::Elements(1));
    group.bench_function("publish_one", |b| {
        b.to_async(&runtime).iter_batched(
            || bench.request(None),
            |request| async { expect(bench.handle(request).await.status(), StatusCode::ACCEPTED) },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("duplicate", |b| {
        b.to_async(&runtime).iter_batched(
            || bench.request(Some("held")),
            |request| async { expect(bench.handle(request).await.status(), StatusCode::OK) },
            BatchSize::SmallInput,
        )
    });
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("publish_64", |b| {
        b.to_async(&runtime).iter_batched(
            || (0..BATCH).map(|_| bench.request(None)).collect::<Vec<_>>(),
            |requests| async {
                let handles = requests.into_iter().map(|request| tokio::spawn(bench.handle(request)));
                for handle in handles.collect::<Vec<_>>() {
                    expect(handle.await.expect("handler task").status(), StatusCode::ACCEPTED);
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
    drop(bench);
    drop(broker);
}

fn expect(status: StatusCode, wanted: StatusCode) {
    assert_eq!(status, wanted);
}
