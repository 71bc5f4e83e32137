//! The webhook request pipeline, top to bottom: admit, read the body, verify,
//! charge the quotas, deduplicate, wrap in an envelope, publish, and answer only after the
//! broker's verdict. One deadline (`ingest.deadline`, from the moment the
//! request head arrived) bounds it all.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::request::Parts;
use http::{Request, Response};
use hyper::body::Body;
use tokio::sync::{watch, Semaphore};
use uuid::Uuid;

use super::admission::{Admitted, Gate, Route};
use super::answer::{answer, Accepted, IngestBody};
use super::body::read_limited;
use super::claim;
use super::claims::{self, Claims, KeyState};
use super::delivery::{unix_micros, Delivery};
use super::error::IngestError;
use super::finish::FinishOnDrop;
use super::source::{Source, Sources};
use crate::config::Config;
use crate::dedup::Dedup;
use crate::envelope::{record_key, BodyRef};
use crate::history::Store;
use crate::listener::PerClientSlots;
use crate::publish::{PendingAck, PublishError, Publisher};
use crate::ratelimit::RateLimiter;
use crate::telemetry::{names, SourceMetrics};
use crate::verify::{Checked, RequestHead, Verified};

/// How often `hookgate_requests_in_flight` is sampled.
const IN_FLIGHT_SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// The shared state of the webhook listener.
#[derive(Debug)]
pub struct Ingest {
    /// Routes, quotas and the in-flight bound.
    gate: Gate,
    /// Series of requests naming no configured source.
    unknown: SourceMetrics,
    /// Delivery-key store.
    dedup: Dedup,
    /// The shared Kafka producer.
    publisher: Publisher,
    /// `ingest.max_in_flight`.
    max_in_flight: usize,
    /// Time from request head to answer.
    deadline: Duration,
    /// Time allowed for the body (within the deadline).
    body_timeout: Duration,
    /// Where bodies above a source's `large_bodies` threshold go; set when a source has one.
    bodies: Option<Store>,
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
        let routes: HashMap<String, Arc<Route>> = sources
            .into_iter()
            .map(|(name, source)| {
                let metrics = SourceMetrics::new(&source.name);
                (name, Arc::new(Route { source, metrics }))
            })
            .collect();
        Self {
            gate: Gate {
                routes,
                limiter,
                in_flight: Arc::new(Semaphore::new(config.ingest.max_in_flight)),
                per_client: PerClientSlots::new(config.ingest.max_in_flight_per_client),
                client_ip_header: config.ingest.client_ip_header.clone(),
            },
            unknown: SourceMetrics::new(names::UNKNOWN_SOURCE),
            dedup,
            publisher,
            max_in_flight: config.ingest.max_in_flight,
            deadline: config.ingest.deadline,
            body_timeout: config.ingest.body_timeout,
            bodies: None,
        }
    }

    /// The history store that takes the bodies of sources with `large_bodies`.
    pub fn with_body_store(mut self, store: Store) -> Self {
        self.bodies = Some(store);
        self
    }

    /// Sets `hookgate_requests_in_flight` every second until `shutdown`.
    pub async fn report_in_flight(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let gauge = crate::telemetry::requests_in_flight();
        let mut tick = tokio::time::interval(IN_FLIGHT_SAMPLE_EVERY);
        loop {
            let busy = self.max_in_flight - self.gate.in_flight.available_permits();
            gauge.set(busy as f64);
            tokio::select! {
                _ = tick.tick() => {}
                _ = crate::shutdown::stopped(&mut shutdown) => return,
            }
        }
    }

    /// Handles one webhook request from `peer` and always produces an answer.
    /// Generic over the body so benchmarks and tests can drive it without a socket.
    pub async fn handle<B>(self: Arc<Self>, peer: SocketAddr, request: Request<B>) -> Response<IngestBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let deadline = Instant::now() + self.deadline;
        let route = match self.gate.route(&request) {
            Ok(route) => route,
            Err(error) => return answer(&self.unknown, Err(error)),
        };
        let result = match self.gate.admit(&route, peer, &request) {
            Ok(admitted) => self.process(&route, admitted, request, deadline).await,
            Err(error) => Err(error),
        };
        let challenge = match &result {
            Err(IngestError::Unauthorized(_)) => route.source.verifier.challenge(),
            _ => None,
        };
        let mut response = answer(&route.metrics, result);
        if let Some(challenge) = challenge {
            let value = http::HeaderValue::from_static(challenge);
            response.headers_mut().insert(http::header::WWW_AUTHENTICATE, value);
        }
        response
    }

    /// Everything after admission, in order.
    async fn process<B>(
        self: Arc<Self>,
        route: &Arc<Route>,
        admitted: Admitted,
        request: Request<B>,
        deadline: Instant,
    ) -> Result<Accepted, IngestError>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = request.into_parts();
        let source = &route.source;
        let body_deadline = deadline.min(Instant::now() + self.body_timeout);
        let body = read_limited(body, source.max_body, body_deadline).await?;
        let received = SystemTime::now();
        let verified = match self.check(route, &parts, &body, received, admitted.client)? {
            Checked::Deliver(verified) => verified,
            Checked::Answer(reply) => return Ok(Accepted::Handshake(reply)),
        };
        route.metrics.body_bytes(body.len());
        let mut delivery = Delivery::new(source, &parts.headers, &body, received)?;
        if delivery.lacks_dedup_key(source) {
            route.metrics.dedup_key_missing();
        }
        let claims = match claims::reserve(&self.dedup, route, &delivery, &parts.headers).await? {
            KeyState::Fresh(claims) => claims,
            KeyState::Delivered(id) => return Ok(Accepted::Duplicate { id }),
        };
        if Instant::now() >= deadline {
            claims.release().await;
            return Err(IngestError::DeadlineExceeded);
        }
        match self.claim_check(source, &delivery, &body, deadline).await {
            Ok(body_ref) => delivery.body_ref = body_ref,
            Err(error) => {
                claims.release().await;
                return Err(error);
            }
        }
        let id = delivery.id;
        let pending = match self.enqueue(route, delivery, parts, body, admitted.client, verified) {
            Ok(pending) => pending,
            Err(error) => return Err(publish_failed(route, id, claims, error).await),
        };
        let settling = settle(self, route.clone(), id, pending, claims, deadline, admitted);
        FinishOnDrop::new(settling).await
    }

    /// Checks the request's signature (or credential), and whether it is a
    /// handshake to answer, then charges the quotas: a verified request the
    /// client's and the source's, a refused one (counted by its reason) the
    /// client's unverified budget.
    fn check(
        &self,
        route: &Route,
        parts: &Parts,
        body: &[u8],
        received: SystemTime,
        client: IpAddr,
    ) -> Result<Checked, IngestError> {
        let checked = route.source.verifier.check(RequestHead::of(parts), body, received);
        match checked {
            Ok(checked) => {
                self.gate.charge_verified(route, client)?;
                Ok(checked)
            }
            Err(reason) => {
                route.metrics.verify_failure(reason.code());
                Err(self.gate.refuse(route, client, reason))
            }
        }
    }

    /// Writes a body above the source's `large_bodies` threshold to the
    /// history store and returns the reference the record carries instead.
    async fn claim_check(
        &self,
        source: &Source,
        delivery: &Delivery,
        body: &Bytes,
        deadline: Instant,
    ) -> Result<Option<BodyRef>, IngestError> {
        let (Some(above), Some(store)) = (source.large_bodies_above, &self.bodies) else {
            return Ok(None);
        };
        if body.len() as u64 <= above {
            return Ok(None);
        }
        let id = delivery.id.hyphenated().to_string();
        let received_at = unix_micros(delivery.received);
        claim::stash(store, &source.name, &id, received_at, body.clone(), deadline)
            .await
            .map(Some)
    }

    /// Wraps the request in its envelope and hands it to the producer, which
    /// copies it. The request is gone when this returns, so hyper can reuse
    /// the connection's read buffer while the broker's verdict is awaited.
    fn enqueue(
        &self,
        route: &Route,
        delivery: Delivery,
        parts: Parts,
        body: Bytes,
        client: IpAddr,
        verified: Verified,
    ) -> Result<PendingAck, PublishError> {
        let source = &route.source;
        let mut id = Uuid::encode_buffer();
        let id = delivery.id.hyphenated().encode_lower(&mut id);
        let client_addr = client.to_string();
        let envelope = delivery.envelope(id, source, &parts, &body, &client_addr, verified);
        let key = record_key(&source.record_key, envelope.id, envelope.dedup_key);
        let topic = source.topic_for(envelope.event_type);
        self.publisher
            .enqueue_received(&envelope, topic, key, source.record_format)
    }
}

/// Waits for the broker's verdict until `deadline`, then commits the dedup
/// claims (acked) or releases them; the in-flight slots are held until then.
/// Runs to the end even when the sender hangs up (`FinishOnDrop`).
async fn settle(
    ingest: Arc<Ingest>,
    route: Arc<Route>,
    id: Uuid,
    pending: PendingAck,
    claims: Claims,
    deadline: Instant,
    _admitted: Admitted,
) -> Result<Accepted, IngestError> {
    let started = Instant::now();
    match ingest.publisher.verdict(pending, deadline).await {
        Ok(ack) => {
            route.metrics.publish_duration(started.elapsed().as_secs_f64());
            claims.commit(&route, id).await;
            Ok(Accepted::Published {
                id,
                topic: ack.topic,
                partition: ack.partition,
                offset: ack.offset,
            })
        }
        Err(error) => Err(publish_failed(&route, id, claims, error).await),
    }
}

/// Counts and logs a publish that was not acknowledged, frees its dedup
/// claims, and returns the error to answer.
async fn publish_failed(route: &Route, id: Uuid, claims: Claims, error: PublishError) -> IngestError {
    route.metrics.publish_failure(error.code());
    let source = &route.source.name;
    claims.release().await;
    match error {
        PublishError::TooLarge(detail) => {
            tracing::info!(%source, %id, %detail, "record too large for Kafka; answering 413");
            IngestError::RecordTooLarge(detail)
        }
        error => {
            tracing::warn!(%source, %id, %error, "publish failed; answering 503");
            IngestError::Publish(error)
        }
    }
}
