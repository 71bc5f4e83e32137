//! The webhook request pipeline: route, rate-limit, read the body, verify,
//! deduplicate, wrap in an envelope, publish, and answer only after the ack.
//!
//! The hot path is kept lean (README "Performance"): metric handles are
//! looked up once per source, the envelope is encoded straight from the
//! request into the record value, answers are serialised without a JSON
//! tree, and the publish runs inside the request's own task, moved to a task
//! of its own only when the sender hangs up before the broker answered.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use crossbeam_utils::CachePadded;
use futures::future::{self, Either};
use futures::FutureExt as _;
use http::request::Parts;
use http::{HeaderMap, HeaderName, Method, Request, Response, StatusCode};
use hyper::body::Body;
use serde::Serialize;
use tokio::sync::watch;
use uuid::Uuid;

use super::body::read_limited;
use super::error::{json_response, json_text_response, IngestBody, IngestError};
use super::extract::{client_ip, extract, LazyJson};
use super::sleeps::{RecycledSleep, SleepSlot};
use super::source::{Source, Sources};
use crate::config::{Config, KeySpec, RecordKey};
use crate::dedup::{Dedup, Reservation, Ticket};
use crate::envelope::{new_event_id_at, EnvelopeRef, RecordHeaders, VerificationRef};
use crate::publish::{OutgoingRecord, PendingAck, PublishError, Publisher};
use crate::ratelimit::RateLimiter;
use crate::telemetry::{names, SourceMetrics};
use crate::verify::{slack_url_verification_challenge, Verified};

/// Longest text form of an IP address (IPv4-mapped IPv6 is 45 characters).
const IP_TEXT_MAX: usize = 48;
/// Largest envelope buffer a thread keeps between requests.
const MAX_KEPT_PAYLOAD_BUFFER: usize = 256 * 1024;
/// How often `hookgate_requests_in_flight` is sampled.
const IN_FLIGHT_SAMPLE_EVERY: Duration = Duration::from_secs(1);

thread_local! {
    /// Where envelopes are encoded before the producer copies them.
    static PAYLOAD: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// How a request was accepted.
#[derive(Debug)]
enum Accepted {
    /// Published and acknowledged by the broker at this partition and offset.
    Published { id: Uuid, partition: i32, offset: i64 },
    /// Already published earlier under `id`.
    Duplicate { id: String },
    /// Slack's url_verification handshake, answered without publishing.
    Challenge(String),
}

/// A configured source with its metric handles.
#[derive(Debug)]
struct Route {
    /// The prepared source.
    source: Arc<Source>,
    /// Its series, labelled with its name.
    metrics: SourceMetrics,
    /// Its topic as a JSON string (quoted and escaped), for the answers.
    topic_json: String,
}

/// What the pipeline took from a request on its way to Kafka: header
/// values are borrowed from the request, values from a JSON body owned.
#[derive(Debug)]
struct Delivery<'a> {
    /// The gateway-assigned event id.
    id: Uuid,
    /// The dedup key, when the source has one and the request carried it.
    dedup_key: Option<Cow<'a, str>>,
    /// The event type, when known.
    event_type: Option<Cow<'a, str>>,
    /// When the request was received (its body read), microseconds since the Unix epoch.
    received_at_unix_micros: i64,
}

/// The shared state of the webhook listener.
#[derive(Debug)]
pub struct Ingest {
    /// Configured sources with their metric handles; requests name them by index.
    routes: Vec<Route>,
    /// Indexes into `routes` by source name (foldhash: the names are fixed at
    /// start, so SipHash's flooding defence buys nothing here).
    route_index: HashMap<String, usize, foldhash::fast::FixedState>,
    /// Series of requests naming no configured source.
    unknown: SourceMetrics,
    /// Per-source and per-client quotas.
    limiter: Arc<RateLimiter>,
    /// Delivery-key store.
    dedup: Dedup,
    /// The shared Kafka producer.
    publisher: Publisher,
    /// Requests past the quotas and not yet answered (see [`Admitted`]); on a
    /// cache line of its own, so that counting does not evict the read-mostly
    /// fields beside it from the other threads' caches.
    in_flight: CachePadded<AtomicUsize>,
    /// Their bound, `ingest.max_in_flight`.
    max_in_flight: usize,
    /// Time from request headers to answer.
    deadline: Duration,
    /// Time allowed for the body.
    body_timeout: Duration,
    /// Trusted proxy header carrying the client address.
    client_ip_header: Option<String>,
    /// Header names whose values are not copied into envelopes (a handful: a list beats a hash).
    redact: Vec<HeaderName>,
}

impl Ingest {
    /// Builds the listener state from a validated configuration. Metric
    /// handles bind to the recorder installed at this point.
    pub fn new(
        config: &Config,
        sources: Sources,
        limiter: Arc<RateLimiter>,
        dedup: Dedup,
        publisher: Publisher,
    ) -> Self {
        let mut redact: Vec<HeaderName> = config
            .ingest
            .redact_headers
            .iter()
            .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
            .collect();
        redact.dedup();
        let mut routes = Vec::new();
        let mut route_index = HashMap::default();
        for (name, source) in sources {
            route_index.insert(name, routes.len());
            routes.push(Route {
                metrics: SourceMetrics::new(&source.name),
                topic_json: serde_json::to_string(&source.topic).unwrap_or_default(),
                source,
            });
        }
        Self {
            routes,
            route_index,
            unknown: SourceMetrics::new(names::UNKNOWN_SOURCE),
            limiter,
            dedup,
            publisher,
            in_flight: CachePadded::new(AtomicUsize::new(0)),
            max_in_flight: config.ingest.max_in_flight,
            deadline: config.ingest.deadline,
            body_timeout: config.ingest.body_timeout,
            client_ip_header: config.ingest.client_ip_header.clone(),
            redact,
        }
    }

    /// The state one connection's requests share: a request holds a reference
    /// to its connection's state rather than to the listener's (and its
    /// source's), so that counting references does not bounce a cache line
    /// between the threads serving requests, which each such count costs
    /// when it is shared by all connections.
    pub fn connection(self: &Arc<Self>, peer: SocketAddr) -> Arc<IngestConnection> {
        Arc::new(IngestConnection {
            ingest: self.clone(),
            peer,
            ack_sleeps: SleepSlot::new(),
        })
    }

    /// Requests holding an in-flight slot: past the quotas, body being read or record being published.
    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Sets `hookgate_requests_in_flight` every second until `shutdown`:
    /// sampled from the in-flight bound rather than counted on every request,
    /// which would make each request update one more atomic shared by all threads.
    pub async fn report_in_flight(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let gauge = crate::telemetry::requests_in_flight();
        let mut tick = tokio::time::interval(IN_FLIGHT_SAMPLE_EVERY);
        loop {
            gauge.set(self.in_flight() as f64);
            tokio::select! {
                _ = tick.tick() => {}
                _ = crate::shutdown::stopped(&mut shutdown) => return,
            }
        }
    }

    /// The index of the configured source a request names.
    fn route<B>(&self, request: &Request<B>) -> Result<usize, IngestError> {
        let name = request
            .uri()
            .path()
            .strip_prefix("/webhooks/")
            .ok_or(IngestError::NotFound)?;
        let route = *self.route_index.get(name).ok_or(IngestError::UnknownSource)?;
        if request.method() != Method::POST {
            return Err(IngestError::MethodNotAllowed);
        }
        Ok(route)
    }

    /// Encodes the envelope and hands it to the producer, which copies it: the
    /// encoding buffer is one per thread, reused from request to request.
    fn enqueue(
        &self,
        source: &Source,
        parts: &Parts,
        body: &[u8],
        client: IpAddr,
        verified: Verified,
        delivery: &Delivery<'_>,
    ) -> Result<PendingAck, PublishError> {
        let mut id = Uuid::encode_buffer();
        let id: &str = delivery.id.hyphenated().encode_lower(&mut id);
        let dedup_key = delivery.dedup_key.as_deref().unwrap_or_default();
        let key = match source.record_key {
            RecordKey::Id => Some(id.as_bytes()),
            RecordKey::DedupKey if !dedup_key.is_empty() => Some(dedup_key.as_bytes()),
            RecordKey::DedupKey => Some(id.as_bytes()),
            RecordKey::None => None,
        };
        let headers = RecordHeaders::new(
            id,
            &source.name,
            delivery.event_type.as_deref().unwrap_or_default(),
            false,
        );
        PAYLOAD.with(|buffer| {
            let mut payload = buffer.borrow_mut();
            payload.clear();
            let mut addr = [0u8; IP_TEXT_MAX];
            let client = ip_text(client, &mut addr);
            self.envelope(source, parts, body, client, verified, delivery, id)
                .encode_into(&mut payload);
            let record = OutgoingRecord {
                topic: &source.topic,
                key,
                payload: &payload,
                headers: headers.as_slice(),
            };
            let pending = self.publisher.enqueue(record);
            if payload.capacity() > MAX_KEPT_PAYLOAD_BUFFER {
                *payload = Vec::new();
            }
            pending
        })
    }

    /// The event id, dedup key and event type of a request.
    fn delivery<'a>(
        source: &Source,
        metrics: &SourceMetrics,
        headers: &'a HeaderMap,
        body: &[u8],
        received: SystemTime,
    ) -> Delivery<'a> {
        let mut json = LazyJson::new(body);
        let dedup_key = extract(&source.dedup_key, headers, &mut json);
        let event_type = extract(&source.event_type, headers, &mut json);
        if dedup_key.is_none() && source.dedup_key != KeySpec::None {
            metrics.dedup_key_missing();
        }
        Delivery {
            id: new_event_id_at(received),
            dedup_key,
            event_type,
            received_at_unix_micros: unix_micros(received),
        }
    }

    /// Reserves the dedup key: `Ok(Ok(ticket))` to publish (no ticket without
    /// a key), `Ok(Err(answer))` for a duplicate of an acked event.
    async fn reserve(
        &self,
        route: &Route,
        delivery: &Delivery<'_>,
    ) -> Result<Result<Option<Ticket>, Accepted>, IngestError> {
        let Some(key) = &delivery.dedup_key else {
            return Ok(Ok(None));
        };
        match self.dedup.reserve(&route.source.name, key, delivery.id).await {
            Ok(Reservation::Reserved(ticket)) => Ok(Ok(Some(ticket))),
            Ok(Reservation::Duplicate { id }) => {
                route.metrics.duplicate("acked");
                Ok(Err(Accepted::Duplicate { id }))
            }
            Ok(Reservation::InFlight) => {
                route.metrics.duplicate("in_flight");
                Err(IngestError::InFlight)
            }
            Err(error) => Err(IngestError::DedupUnavailable(error)),
        }
    }

    /// The envelope, borrowing the request.
    #[allow(clippy::too_many_arguments)]
    fn envelope<'a>(
        &'a self,
        source: &'a Source,
        parts: &'a Parts,
        body: &'a [u8],
        client: &'a str,
        verified: Verified,
        delivery: &'a Delivery<'a>,
        id: &'a str,
    ) -> EnvelopeRef<'a> {
        EnvelopeRef {
            id,
            source: &source.name,
            event_type: delivery.event_type.as_deref().unwrap_or_default(),
            received_at_unix_micros: delivery.received_at_unix_micros,
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or_default(),
            headers: &parts.headers,
            redact: &self.redact,
            content_type: header_text(&parts.headers, http::header::CONTENT_TYPE),
            body,
            dedup_key: delivery.dedup_key.as_deref().unwrap_or_default(),
            verification: Some(VerificationRef {
                scheme: source.verifier.scheme(),
                verified: verified.verified,
                secret_index: verified.secret_index,
            }),
            client_addr: client,
            replay: false,
        }
    }
}

/// One webhook connection's share of the listener ([`Ingest::connection`]).
#[derive(Debug)]
pub struct IngestConnection {
    /// The listener.
    ingest: Arc<Ingest>,
    /// The client's socket address.
    peer: SocketAddr,
    /// The connection's ack sleeps (its request-head sleeps come with its
    /// `ConnectionTimer`), reused request after request.
    ack_sleeps: Arc<SleepSlot>,
}

impl IngestConnection {
    /// Handles one request and always produces an answer.
    /// Generic over the body so benchmarks and tests can drive it without a socket.
    ///
    /// The pipeline's functions return futures built from `async move`
    /// blocks instead of being `async fn`s: an `async fn` keeps its arguments
    /// twice in its state (once as passed, once as bound) and an enclosing
    /// future holds its callee's whole state, so each request's future was
    /// 3.1 KiB, copied whole when boxed; built this way it is 0.8 KiB
    /// (`-Zprint-type-sizes`).
    pub fn handle<B>(self: &Arc<Self>, request: Request<B>) -> impl Future<Output = Response<IngestBody>> + 'static
    where
        B: Body<Data = Bytes> + Unpin + 'static,
    {
        let started = Instant::now();
        let ingest = &self.ingest;
        let route = match ingest.route(&request) {
            Ok(route) => route,
            Err(error) => return Either::Left(future::ready(answer(&ingest.unknown, "", Err(error)))),
        };
        let deadline = started + ingest.deadline;
        let answering = self.clone();
        Either::Right(self.clone().process(route, request, deadline).map(move |result| {
            let route = &answering.ingest.routes[route];
            answer(&route.metrics, &route.topic_json, result)
        }))
    }

    /// The quotas and the in-flight bound, checked before anything is read;
    /// then the rest of the pipeline.
    fn process<B>(
        self: Arc<Self>,
        route: usize,
        request: Request<B>,
        deadline: Instant,
    ) -> impl Future<Output = Result<Accepted, IngestError>> + 'static
    where
        B: Body<Data = Bytes> + Unpin + 'static,
    {
        match self.admit(route, &request) {
            Ok((client, admitted)) => {
                let (parts, body) = request.into_parts();
                Either::Left(pipeline(admitted, route, parts, body, client, deadline))
            }
            Err(error) => Either::Right(future::ready(Err(error))),
        }
    }

    /// Checks the per-source and per-client quotas and takes an in-flight slot;
    /// returns the client's address with the slot.
    fn admit<B>(self: Arc<Self>, route: usize, request: &Request<B>) -> Result<(IpAddr, Admitted), IngestError> {
        let ingest = &*self.ingest;
        let route = &ingest.routes[route];
        let client = client_ip(self.peer, request.headers(), ingest.client_ip_header.as_deref());
        ingest.limiter.check(&route.source.name, client).map_err(|limited| {
            route.metrics.rate_limited(limited.scope.as_str());
            IngestError::RateLimited(limited)
        })?;
        let admitted = Admitted::take(self).ok_or(IngestError::Overloaded)?;
        Ok((client, admitted))
    }
}

/// Reads and verifies the body, reserves the dedup key, publishes and
/// waits for the broker's verdict; the in-flight slot is held until then.
#[allow(clippy::manual_async_fn)] // on purpose: see `IngestConnection::handle`
fn pipeline<B>(
    admitted: Admitted,
    route_index: usize,
    parts: Parts,
    body: B,
    client: IpAddr,
    deadline: Instant,
) -> impl Future<Output = Result<Accepted, IngestError>> + 'static
where
    B: Body<Data = Bytes> + Unpin + 'static,
{
    async move {
        let ingest = admitted.ingest();
        let route = &ingest.routes[route_index];
        let (source, metrics) = (&route.source, &route.metrics);
        // `body_timeout` from the request's start, but never past its deadline
        // (computed without reading the clock again: the request started a moment ago).
        let body_deadline = deadline - ingest.deadline.saturating_sub(ingest.body_timeout);
        let body = read_limited(body, source.max_body, body_deadline).await?;
        let received = SystemTime::now();
        let verified = source
            .verifier
            .verify(&parts.headers, &body, received)
            .map_err(|reason| {
                metrics.verify_failure(reason.code());
                IngestError::Unauthorized(reason)
            })?;
        if source.answers_slack_challenge {
            if let Some(challenge) = slack_url_verification_challenge(&body) {
                return Ok(Accepted::Challenge(challenge));
            }
        }
        metrics.body_bytes(body.len());
        let delivery = Ingest::delivery(source, metrics, &parts.headers, &body, received);
        let ticket = match ingest.reserve(route, &delivery).await? {
            Ok(ticket) => ticket,
            Err(duplicate) => return Ok(duplicate),
        };
        let started = Instant::now();
        if started >= deadline {
            release(ticket).await;
            return Err(IngestError::DeadlineExceeded);
        }
        let pending = match ingest.enqueue(source, &parts, &body, client, verified, &delivery) {
            Ok(pending) => pending,
            Err(error) => return Err(publish_failed(route, delivery.id, ticket, error).await),
        };
        // The producer copied the record. Freeing the request (and the values
        // borrowed from it) before the wait lets hyper reuse this connection's
        // read buffer for the next request.
        let id = delivery.id;
        drop(delivery);
        drop((parts, body));
        // Waiting must finish even if the sender hangs up, so that the dedup
        // key is settled with the broker's verdict: see `FinishOnDrop`.
        let ack_deadline = admitted.connection.ack_sleeps.sleep_until(deadline);
        FinishOnDrop::new(settle(
            pending,
            route_index,
            id,
            ticket,
            admitted,
            ack_deadline,
            started,
        ))
        .await
    }
}

/// Waits for the broker's verdict (until `ack_deadline` ends), then commits
/// the dedup key (acked) or releases it; the in-flight slot is held until then.
#[allow(clippy::manual_async_fn)] // on purpose: see `IngestConnection::handle`
fn settle(
    pending: PendingAck,
    route_index: usize,
    id: Uuid,
    ticket: Option<Ticket>,
    admitted: Admitted,
    ack_deadline: RecycledSleep,
    started: Instant,
) -> impl Future<Output = Result<Accepted, IngestError>> + Send + 'static {
    async move {
        let ingest = admitted.ingest();
        let route = &ingest.routes[route_index];
        let verdict = ingest.publisher.verdict(pending, ack_deadline).await;
        let result = match verdict {
            Ok((partition, offset)) => {
                route.metrics.publish_duration(started.elapsed().as_secs_f64());
                if let Some(ticket) = ticket {
                    if let Err(error) = ticket.commit().await {
                        let source = &route.source.name;
                        tracing::warn!(%source, %id, %error, "event published but its dedup key could not be stored");
                    }
                }
                Ok(Accepted::Published { id, partition, offset })
            }
            Err(error) => Err(publish_failed(route, id, ticket, error).await),
        };
        drop(admitted);
        result
    }
}

/// Counts and logs a publish that was not acknowledged at once, and frees its
/// dedup key; the future (small: no `async fn` state) ends with the error to answer.
fn publish_failed(
    route: &Route,
    id: Uuid,
    ticket: Option<Ticket>,
    error: PublishError,
) -> impl Future<Output = IngestError> + Send + 'static {
    route.metrics.publish_failure(error.code());
    let source = &route.source.name;
    tracing::warn!(%source, %id, %error, "publish failed; answering 503");
    let error = IngestError::Publish(error);
    release(ticket).map(move |()| error)
}

/// Frees a dedup key, if there is one.
fn release(ticket: Option<Ticket>) -> impl Future<Output = ()> + Send + 'static {
    match ticket {
        Some(ticket) => Either::Left(ticket.release()),
        None => Either::Right(future::ready(())),
    }
}

/// Counts the request's outcome in `metrics` and turns the result into the
/// answer; `topic_json` is the source's topic, as a JSON string.
fn answer(metrics: &SourceMetrics, topic_json: &str, result: Result<Accepted, IngestError>) -> Response<IngestBody> {
    let (outcome, response) = match result {
        Ok(accepted) => accepted_response(accepted, topic_json),
        Err(error) => (error.outcome(), error.into_response()),
    };
    metrics.request(outcome);
    response
}

/// An in-flight slot of the listener, given back when dropped. A counter
/// rather than a `tokio::sync::Semaphore`: nothing ever waits for a slot
/// (a request over the bound is answered 503 at once), and a semaphore takes
/// its waiters' lock on every release.
struct Admitted {
    /// The connection whose request holds the slot (of its listener).
    connection: Arc<IngestConnection>,
}

impl Admitted {
    /// Takes a slot of the connection's listener, or `None` when
    /// `ingest.max_in_flight` are taken.
    fn take(connection: Arc<IngestConnection>) -> Option<Self> {
        let ingest = &connection.ingest;
        let taken = ingest.in_flight.fetch_add(1, Ordering::Acquire);
        if taken >= ingest.max_in_flight {
            ingest.in_flight.fetch_sub(1, Ordering::Release);
            return None;
        }
        Some(Self { connection })
    }

    /// The listener whose slot this is.
    fn ingest(&self) -> &Ingest {
        &self.connection.ingest
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.ingest().in_flight.fetch_sub(1, Ordering::Release);
    }
}

/// A future polled inside the request's task that, when dropped before it
/// completed (the sender hung up, so hyper dropped the request future), is
/// moved to a task of its own and still runs to the end. Same guarantee as
/// spawning every publish, without a task (allocation, scheduling, a wake-up
/// across threads) per request.
struct FinishOnDrop<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    /// The future; `None` once it completed.
    future: Option<Pin<Box<F>>>,
}

impl<F> FinishOnDrop<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn new(future: F) -> Self {
        Self {
            future: Some(Box::pin(future)),
        }
    }
}

impl<F> Future for FinishOnDrop<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let future = self.future.as_mut().expect("FinishOnDrop polled after completion");
        let output = ready!(future.as_mut().poll(cx));
        self.future = None;
        Poll::Ready(output)
    }
}

impl<F> Drop for FinishOnDrop<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn drop(&mut self) {
        if let Some(future) = self.future.take() {
            // Without a runtime (it is shutting down) the future is dropped, which releases its dedup key.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(future);
            }
        }
    }
}

/// `{"id","offset","partition","topic"}` (keys in the order serde_json has
/// always written them), written directly: an event id and two integers need
/// no escaping, and the topic comes escaped already.
fn published_answer(id: &str, offset: i64, partition: i32, topic_json: &str) -> Vec<u8> {
    let (mut offset_text, mut partition_text) = (itoa::Buffer::new(), itoa::Buffer::new());
    let parts = [
        "{\"id\":\"",
        id,
        "\",\"offset\":",
        offset_text.format(offset),
        ",\"partition\":",
        partition_text.format(partition),
        ",\"topic\":",
        topic_json,
        "}",
    ];
    let mut text = Vec::with_capacity(parts.iter().map(|part| part.len()).sum());
    for part in parts {
        text.extend_from_slice(part.as_bytes());
    }
    text
}

/// `{"duplicate": true, "id"}`.
#[derive(Serialize)]
struct DuplicateAnswer<'a> {
    duplicate: bool,
    id: &'a str,
}

/// `{"challenge"}`.
#[derive(Serialize)]
struct ChallengeAnswer<'a> {
    challenge: &'a str,
}

fn accepted_response(accepted: Accepted, topic_json: &str) -> (&'static str, Response<IngestBody>) {
    match accepted {
        Accepted::Published { id, partition, offset } => {
            let mut text = Uuid::encode_buffer();
            let id = id.hyphenated().encode_lower(&mut text);
            let body = published_answer(id, offset, partition, topic_json);
            ("accepted", json_text_response(StatusCode::ACCEPTED, body))
        }
        Accepted::Duplicate { id } => (
            "duplicate",
            json_response(
                StatusCode::OK,
                &DuplicateAnswer {
                    duplicate: true,
                    id: &id,
                },
            ),
        ),
        Accepted::Challenge(challenge) => (
            "challenge",
            json_response(StatusCode::OK, &ChallengeAnswer { challenge: &challenge }),
        ),
    }
}

fn header_text(headers: &HeaderMap, name: HeaderName) -> &str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

/// The text form of `ip`, written into `buf`: IPv4 octet by octet (a tenth
/// of what the formatting machinery costs per request), IPv6 by `Display`.
fn ip_text(ip: IpAddr, buf: &mut [u8; IP_TEXT_MAX]) -> &str {
    let len = match ip {
        IpAddr::V4(v4) => {
            let mut len = 0;
            for (n, octet) in v4.octets().into_iter().enumerate() {
                if n > 0 {
                    buf[len] = b'.';
                    len += 1;
                }
                let mut digits = itoa::Buffer::new();
                let digits = digits.format(octet).as_bytes();
                buf[len..len + digits.len()].copy_from_slice(digits);
                len += digits.len();
            }
            len
        }
        IpAddr::V6(v6) => {
            let mut cursor = std::io::Cursor::new(&mut buf[..]);
            let _ = write!(cursor, "{v6}");
            cursor.position() as usize
        }
    };
    std::str::from_utf8(&buf[..len]).unwrap_or_default()
}

fn unix_micros(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_keep_the_key_order_of_the_json_values_they_replace() {
        let topic_json = serde_json::to_string("t\"x\\").unwrap();
        for (offset, partition) in [(-1, 2), (i64::MAX, i32::MAX), (0, 0)] {
            let published = published_answer("i", offset, partition, &topic_json);
            let expected = serde_json::json!({"id": "i", "topic": "t\"x\\", "partition": partition, "offset": offset});
            assert_eq!(String::from_utf8(published).unwrap(), expected.to_string());
        }
        let duplicate = DuplicateAnswer {
            duplicate: true,
            id: "i",
        };
        assert_eq!(
            serde_json::to_string(&duplicate).unwrap(),
            serde_json::json!({"id": "i", "duplicate": true}).to_string()
        );
    }

    #[test]
    fn ip_text_fits_every_address() {
        let mut buf = [0u8; IP_TEXT_MAX];
        let widest: IpAddr = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255".parse().unwrap();
        assert_eq!(ip_text(widest, &mut buf), widest.to_string());
        for v4 in ["192.0.2.1", "0.0.0.0", "255.255.255.255", "10.20.0.199"] {
            assert_eq!(ip_text(v4.parse().unwrap(), &mut buf), v4);
        }
    }

    #[tokio::test]
    async fn finish_on_drop_completes_a_dropped_future() {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let future = FinishOnDrop::new(async move {
            let _ = go_rx.await;
            let _ = done_tx.send(());
        });
        // Poll once (pending), then drop it as hyper drops the request future of a closed connection.
        assert!(tokio::time::timeout(Duration::from_millis(10), future).await.is_err());
        go_tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), done_rx)
            .await
            .expect("finished in its own task")
            .unwrap();
    }
}
