//! The load generator both servers get: signed ~1 KiB GitHub deliveries with
//! unique delivery ids over keep-alive HTTP/1.1 connections (hyper client).
//!
//! - open loop: requests are due at fixed intervals whatever the server does,
//!   and latency counts from the moment a request was due, so time spent
//!   queueing behind a slow server is not hidden (no coordinated omission);
//! - closed loop: a fixed number of connections each send the next request
//!   as soon as the previous answer arrives; the rate reached is the peak.
//!
//! Every loop is bounded in count and in time.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{handshake, SendRequest};
use hyper_util::rt::TokioIo;
use memchr::memmem::Finder;
use tokio::sync::Semaphore;

use hookgate::verify::Verifier;

/// Size of every request body.
pub(crate) const BODY_BYTES: usize = 1024;
/// Longest wait for one answer; beyond it the request counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections older than this are not reused (hookgate closes them after 5 s).
const MAX_IDLE: Duration = Duration::from_secs(2);
/// Most requests one open-loop phase may have outstanding (its connection bound).
const OPEN_LOOP_CONNECTIONS: usize = 512;

/// A delivery answered 2xx, and the partition and offset the answer named.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Acked {
    /// Delivery number.
    pub(crate) delivery: u64,
    /// Partition in the answer.
    pub(crate) partition: i32,
    /// Offset in the answer (-1: acknowledged without an offset).
    pub(crate) offset: i64,
}

/// An answer: status and body.
type Answer = (StatusCode, Bytes);

/// What one phase measured.
#[derive(Debug, Default)]
pub(crate) struct Phase {
    /// Latency of every answered request, microseconds.
    pub(crate) latencies: Vec<u32>,
    /// Answers by status code.
    pub(crate) statuses: BTreeMap<u16, u64>,
    /// The first body of each non-2xx status, for the log.
    pub(crate) samples: BTreeMap<u16, Bytes>,
    /// Requests that got no answer (connection error or timeout).
    pub(crate) failed: u64,
    /// Deliveries answered with a 2xx, with where the answer says the record went.
    pub(crate) accepted: Vec<Acked>,
    /// Wall time from the first request to the last answer.
    pub(crate) elapsed: Duration,
}

impl Phase {
    /// Requests answered 2xx.
    pub(crate) fn ok(&self) -> u64 {
        self.accepted.len() as u64
    }

    /// 2xx answers per second.
    pub(crate) fn rate(&self) -> f64 {
        self.ok() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Latency at quantile `q` (0..=1), milliseconds.
    pub(crate) fn quantile_ms(&mut self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        self.latencies.sort_unstable();
        let rank = ((q * self.latencies.len() as f64).ceil() as usize).clamp(1, self.latencies.len());
        f64::from(self.latencies[rank - 1]) / 1000.0
    }

    /// Answers that were not 2xx, and requests without an answer.
    pub(crate) fn errors(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(s, _)| !(200..300).contains(*s))
            .map(|(_, n)| n)
            .sum::<u64>()
            + self.failed
    }

    /// Adds another phase's answers and time to this one (rounds of one server pooled).
    pub(crate) fn absorb(&mut self, other: Phase) {
        self.latencies.extend_from_slice(&other.latencies);
        for (status, count) in other.statuses {
            *self.statuses.entry(status).or_default() += count;
        }
        for (status, body) in other.samples {
            self.samples.entry(status).or_insert(body);
        }
        self.failed += other.failed;
        self.accepted.extend_from_slice(&other.accepted);
        self.elapsed += other.elapsed;
    }

    fn record(&mut self, delivery: u64, started: Instant, outcome: Option<Answer>) {
        match outcome {
            Some((status, body)) => {
                self.latencies
                    .push(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX));
                *self.statuses.entry(status.as_u16()).or_default() += 1;
                if !status.is_success() {
                    self.samples.entry(status.as_u16()).or_insert(body);
                } else {
                    let partition = json_number(&body, &PARTITION_KEY).unwrap_or(-1) as i32;
                    let offset = json_number(&body, &OFFSET_KEY).unwrap_or(-1);
                    self.accepted.push(Acked {
                        delivery,
                        partition,
                        offset,
                    });
                }
            }
            None => self.failed += 1,
        }
    }
}

/// Signed deliveries for one server, numbered from 0.
pub(crate) struct Deliveries {
    /// Signs like GitHub does.
    signer: Verifier,
    /// The next delivery number.
    next: AtomicU64,
}

impl Deliveries {
    /// Deliveries signed for the benchmark's GitHub source.
    pub(crate) fn new() -> Deliveries {
        // The source hookgate runs, with its secret written in instead of read from the environment.
        let config = crate::server::hookgate_config("127.0.0.1:9", "unused")
            .replace("env:E2E_GITHUB_SECRET", crate::server::GITHUB_SECRET);
        let mut config = hookgate::config::Config::from_toml(&config).expect("bench config parses");
        let source = config.sources.remove(0);
        Deliveries {
            signer: Verifier::from_source(&source).expect("signer"),
            next: AtomicU64::new(0),
        }
    }

    /// Deliveries handed out so far.
    pub(crate) fn issued(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }

    /// The next delivery: its number and the request.
    fn next(&self, host: &str) -> (u64, Request<Full<Bytes>>) {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let delivery = delivery_id(n);
        let body = body(&delivery);
        let mut request = Request::post("/webhooks/github")
            .header("host", host)
            .header("user-agent", "GitHub-Hookshot/e2e")
            .header("content-type", "application/json")
            .header("x-github-event", "push")
            .header("x-github-hook-id", "441234567")
            .body(Full::new(Bytes::new()))
            .expect("request");
        for (name, value) in self.signer.sign(&body, &delivery, SystemTime::now()).expect("signs") {
            request.headers_mut().insert(name, value);
        }
        *request.body_mut() = Full::new(Bytes::from(body));
        (n, request)
    }
}

/// The delivery id (`X-GitHub-Delivery`) of delivery `n`.
pub(crate) fn delivery_id(n: u64) -> String {
    format!("e2e-{n:012}")
}

/// A ~1 KiB JSON push event whose first field is the delivery id.
fn body(delivery: &str) -> Vec<u8> {
    let head =
        format!(r#"{{"id":"{delivery}","ref":"refs/heads/main","repository":{{"full_name":"octo/hello"}},"commits":""#);
    let mut body = head.into_bytes();
    body.resize(BODY_BYTES - 2, b'c');
    body.extend_from_slice(b"\"}");
    body
}

/// The delivery number in a body made by [`body`].
pub(crate) fn delivery_in_body(body: &[u8]) -> Option<u64> {
    let rest = body.strip_prefix(br#"{"id":"e2e-"#)?;
    let digits = &rest[..rest.iter().position(|b| *b == b'"')?];
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Finds `"partition":` in an answer.
static PARTITION_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(br#""partition":"#));
/// Finds `"offset":` in an answer.
static OFFSET_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(br#""offset":"#));

/// The integer after `key` (`"name":`) in a flat JSON object (both servers
/// answer `{..,"partition":P,"offset":O}`). A prepared SIMD search, so the
/// generator's work per answer (CPU the servers share the machine with)
/// does not depend on how far into its answer a server puts the field: a
/// byte-by-byte window search cost 0.76 µs per hookgate answer and 0.34 µs
/// per baseline answer, 90 ns each this way.
fn json_number(body: &[u8], key: &Finder<'_>) -> Option<i64> {
    let at = key.find(body)? + key.needle().len();
    let rest = &body[at..];
    let end = rest
        .iter()
        .position(|b| !(b.is_ascii_digit() || *b == b'-'))
        .unwrap_or(rest.len());
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

/// Keep-alive connections to one server.
pub(crate) struct Client {
    /// The server.
    addr: SocketAddr,
    /// `Host` header value.
    host: String,
    /// Idle connections.
    idle: Mutex<Vec<(SendRequest<Full<Bytes>>, Instant)>>,
    /// What the requests carry.
    deliveries: Arc<Deliveries>,
}

impl Client {
    /// A client of the server at `addr`.
    pub(crate) fn new(addr: SocketAddr, deliveries: Arc<Deliveries>) -> Arc<Client> {
        Arc::new(Client {
            addr,
            host: addr.to_string(),
            idle: Mutex::new(Vec::new()),
            deliveries,
        })
    }

    /// The next delivery: its number and its request.
    fn prepare(&self) -> (u64, Request<Full<Bytes>>) {
        self.deliveries.next(&self.host)
    }

    /// Sends a request and reads the answer; `None` without an answer in time.
    async fn exchange(&self, request: Request<Full<Bytes>>) -> Option<Answer> {
        tokio::time::timeout(REQUEST_TIMEOUT, self.send(request))
            .await
            .ok()
            .flatten()
    }

    async fn send(&self, request: Request<Full<Bytes>>) -> Option<Answer> {
        let mut connection = match self.checkout() {
            Some(connection) => connection,
            None => self.connect().await?,
        };
        connection.ready().await.ok()?;
        let response = connection.send_request(request).await.ok()?;
        let status = response.status();
        let body = response.into_body().collect().await.ok()?.to_bytes();
        self.idle.lock().unwrap().push((connection, Instant::now()));
        Some((status, body))
    }

    /// An idle connection that is still open and was used recently: servers
    /// close idle keep-alive connections (hookgate after its header timeout),
    /// and a request sent on one being closed would count as a failure.
    fn checkout(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().unwrap();
        while let Some((connection, since)) = idle.pop() {
            if !connection.is_closed() && since.elapsed() < MAX_IDLE {
                return Some(connection);
            }
        }
        None
    }

    async fn connect(&self) -> Option<SendRequest<Full<Bytes>>> {
        let stream = tokio::net::TcpStream::connect(self.addr).await.ok()?;
        stream.set_nodelay(true).ok()?;
        let (sender, connection) = handshake(TokioIo::new(stream)).await.ok()?;
        tokio::spawn(connection);
        Some(sender)
    }

    /// Closes the idle connections.
    pub(crate) fn close(&self) {
        self.idle.lock().unwrap().clear();
    }
}

/// `connections` senders each sending back to back for `duration`.
pub(crate) async fn closed_loop(client: &Arc<Client>, connections: usize, duration: Duration) -> Phase {
    let started = Instant::now();
    let deadline = started + duration;
    let phase = Arc::new(Mutex::new(Phase::default()));
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (client, phase) = (client.clone(), phase.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let (n, request) = client.prepare();
                    let sent = Instant::now();
                    let status = client.exchange(request).await;
                    phase.lock().unwrap().record(n, sent, status);
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
    finish(phase, started)
}

/// `rate` requests per second for `duration`, due at fixed intervals.
pub(crate) async fn open_loop(client: &Arc<Client>, rate: f64, duration: Duration) -> Phase {
    let total = (rate * duration.as_secs_f64()).round().max(1.0) as u64;
    let bound = Arc::new(Semaphore::new(OPEN_LOOP_CONNECTIONS));
    let phase = Arc::new(Mutex::new(Phase::default()));
    let started = Instant::now();
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }
        let (client, phase, bound) = (client.clone(), phase.clone(), bound.clone());
        requests.spawn(async move {
            let (n, request) = client.prepare();
            // Waiting for a free connection counts: latency runs from `due`.
            let Ok(_permit) = bound.acquire().await else { return };
            let status = client.exchange(request).await;
            phase.lock().unwrap().record(n, due, status);
        });
    }
    let drained = tokio::time::timeout(REQUEST_TIMEOUT * 2, async {
        while requests.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        let left = requests.len() as u64;
        requests.abort_all();
        phase.lock().unwrap().failed += left;
    }
    finish(phase, started)
}

fn finish(phase: Arc<Mutex<Phase>>, started: Instant) -> Phase {
    let mut phase = std::mem::take(&mut *phase.lock().unwrap());
    phase.elapsed = started.elapsed();
    phase
}
