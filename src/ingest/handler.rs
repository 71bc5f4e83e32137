//! The webhook request pipeline: route, rate-limit, read the body, verify,
//! deduplicate, wrap in an envelope, publish, and answer only after the ack.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, Method, Request, Response, StatusCode};
use hyper::body::Body;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::body::read_limited;
use super::error::{json_response, IngestBody, IngestError};
use super::extract::{client_ip, extract, LazyJson};
use super::source::{Source, Sources};
use crate::config::{Config, RecordKey};
use crate::dedup::{Dedup, Reservation, Ticket};
use crate::envelope::{new_event_id, Header, Verification, WebhookEnvelope};
use crate::publish::{Ack, Publisher};
use crate::ratelimit::RateLimiter;
use crate::telemetry::names;
use crate::verify::{slack_url_verification_challenge, Verified};

/// Value that replaces redacted header values in the envelope.
const REDACTED: &[u8] = b"[redacted]";

/// How a request was accepted.
#[derive(Debug)]
enum Accepted {
    /// Published and acknowledged by the broker.
    Published { id: String, ack: Ack },
    /// Already published earlier under `id`.
    Duplicate { id: String },
    /// Slack's url_verification handshake, answered without publishing.
    Challenge(String),
}

/// The shared state of the webhook listener.
#[derive(Debug)]
pub struct Ingest {
    /// Configured sources by name.
    sources: Sources,
    /// Per-source and per-client quotas.
    limiter: Arc<RateLimiter>,
    /// Delivery-key store.
    dedup: Dedup,
    /// The shared Kafka producer.
    publisher: Publisher,
    /// Bounds the requests being published at once.
    in_flight: Arc<Semaphore>,
    /// Time from request headers to answer.
    deadline: Duration,
    /// Time allowed for the body.
    body_timeout: Duration,
    /// Trusted proxy header carrying the client address.
    client_ip_header: Option<String>,
    /// Header names whose values are not copied into envelopes.
    redact: HashSet<HeaderName>,
}

impl Ingest {
    /// Builds the listener state from a validated configuration.
    pub fn new(config: &Config, sources: Sources, limiter: Arc<RateLimiter>, dedup: Dedup, publisher: Publisher) -> Self {
        let redact = config.ingest.redact_headers.iter().filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok()).collect();
        Self {
            sources,
            limiter,
            dedup,
            publisher,
            in_flight: Arc::new(Semaphore::new(config.ingest.max_in_flight)),
            deadline: config.ingest.deadline,
            body_timeout: config.ingest.body_timeout,
            client_ip_header: config.ingest.client_ip_header.clone(),
            redact,
        }
    }

    /// Handles one request and always produces an answer.
    /// Generic over the body so benchmarks and tests can drive it without a socket.
    pub async fn handle<B>(self: Arc<Self>, request: Request<B>, peer: SocketAddr) -> Response<IngestBody>
    where
        B: Body<Data = Bytes> + Unpin,
    {
        let started = Instant::now();
        metrics::gauge!(names::REQUESTS_IN_FLIGHT).increment(1.0);
        let source = self.route(&request);
        let label = source.as_ref().map_or(names::UNKNOWN_SOURCE, |s| s.name.as_str()).to_owned();
        let result = match source {
            Ok(source) => self.process(source, request, peer, started + self.deadline).await,
            Err(error) => Err(error),
        };
        metrics::gauge!(names::REQUESTS_IN_FLIGHT).decrement(1.0);
        let (outcome, response) = match result {
            Ok(accepted) => accepted_response(accepted),
            Err(error) => (error.outcome(), error.into_response()),
        };
        metrics::counter!(names::REQUESTS, "source" => label, "outcome" => outcome).increment(1);
        response
    }

    fn route<B>(&self, request: &Request<B>) -> Result<Arc<Source>, IngestError> {
        let name = request.uri().path().strip_prefix("/webhooks/").ok_or(IngestError::NotFound)?;
        let source = self.sources.get(name).ok_or(IngestError::UnknownSource)?;
        if request.method() != Method::POST {
            return Err(IngestError::MethodNotAllowed);
        }
        Ok(source.clone())
    }

    async fn process<B>(
        &self,
        source: Arc<Source>,
        request: Request<B>,
        peer: SocketAddr,
        deadline: Instant,
    ) -> Result<Accepted, IngestError>
    where
        B: Body<Data = Bytes> + Unpin,
    {
        let client = client_ip(peer, request.headers(), self.client_ip_header.as_deref());
        self.limiter.check(&source.name, client).map_err(|limited| {
            metrics::counter!(names::RATE_LIMITED, "source" => source.name.clone(), "scope" => limited.scope.as_str()).increment(1);
            IngestError::RateLimited(limited)
        })?;
        let permit = self.in_flight.clone().try_acquire_owned().map_err(|_| IngestError::Overloaded)?;
        let (parts, body) = request.into_parts();
        let body_time = self.body_timeout.min(deadline.saturating_duration_since(Instant::now()));
        let body = read_limited(&parts.headers, body, source.max_body, body_time).await?;
        let verified = source.verifier.verify(&parts.headers, &body, SystemTime::now()).map_err(|reason| {
            metrics::counter!(names::VERIFY_FAILURES, "source" => source.name.clone(), "reason" => reason.code()).increment(1);
            IngestError::Unauthorized(reason)
        })?;
        if source.answers_slack_challenge {
            if let Some(challenge) = slack_url_verification_challenge(&body) {
                return Ok(Accepted::Challenge(challenge));
            }
        }
        metrics::histogram!(names::REQUEST_BODY_BYTES, "source" => source.name.clone()).record(body.len() as f64);
        let envelope = self.envelope(&source, &parts, body, client, verified);
        self.deduplicate_and_publish(source, envelope, permit, deadline).await
    }

    fn envelope(&self, source: &Source, parts: &http::request::Parts, body: Bytes, client: std::net::IpAddr, verified: Verified) -> WebhookEnvelope {
        let mut json = LazyJson::new(&body);
        let dedup_key = extract(&source.dedup_key, &parts.headers, &mut json);
        let event_type = extract(&source.event_type, &parts.headers, &mut json);
        if dedup_key.is_none() && source.dedup_key != crate::config::KeySpec::None {
            metrics::counter!(names::DEDUP_KEY_MISSING, "source" => source.name.clone()).increment(1);
        }
        WebhookEnvelope {
            id: new_event_id().to_string(),
            source: source.name.clone(),
            event_type: event_type.unwrap_or_default(),
            received_at_unix_micros: unix_micros(SystemTime::now()),
            method: parts.method.as_str().to_owned(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or_default().to_owned(),
            headers: self.envelope_headers(&parts.headers),
            content_type: header_text(&parts.headers, http::header::CONTENT_TYPE),
            dedup_key: dedup_key.unwrap_or_default(),
            verification: Some(Verification {
                scheme: source.verifier.scheme().to_owned(),
                verified: verified.verified,
                secret_index: verified.secret_index,
            }),
            client_addr: client.to_string(),
            replay: false,
            body,
        }
    }

    fn envelope_headers(&self, headers: &HeaderMap) -> Vec<Header> {
        headers
            .iter()
            .map(|(name, value)| Header {
                name: name.as_str().to_owned(),
                value: if self.redact.contains(name) {
                    Bytes::from_static(REDACTED)
                } else {
                    Bytes::copy_from_slice(value.as_bytes())
                },
            })
            .collect()
    }

    async fn deduplicate_and_publish(
        &self,
        source: Arc<Source>,
        envelope: WebhookEnvelope,
        permit: OwnedSemaphorePermit,
        deadline: Instant,
    ) -> Result<Accepted, IngestError> {
        let ticket = if envelope.dedup_key.is_empty() {
            None
        } else {
            match self.dedup.reserve(&source.name, &envelope.dedup_key, &envelope.id).await {
                Ok(Reservation::Reserved(ticket)) => Some(ticket),
                Ok(Reservation::Duplicate { id }) => {
                    metrics::counter!(names::DUPLICATES, "source" => source.name.clone(), "state" => "acked").increment(1);
                    return Ok(Accepted::Duplicate { id });
                }
                Ok(Reservation::InFlight) => {
                    metrics::counter!(names::DUPLICATES, "source" => source.name.clone(), "state" => "in_flight").increment(1);
                    return Err(IngestError::InFlight);
                }
                Err(error) => return Err(IngestError::DedupUnavailable(error)),
            }
        };
        // Publishing runs in its own task: if the sender hangs up, the
        // broker's verdict is still awaited and the dedup key settled.
        let publisher = self.publisher.clone();
        let task = tokio::spawn(publish_and_settle(publisher, source, envelope, ticket, permit, deadline));
        task.await.unwrap_or(Err(IngestError::DeadlineExceeded))
    }
}

async fn publish_and_settle(
    publisher: Publisher,
    source: Arc<Source>,
    envelope: WebhookEnvelope,
    ticket: Option<Ticket>,
    _permit: OwnedSemaphorePermit,
    deadline: Instant,
) -> Result<Accepted, IngestError> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        release(ticket).await;
        return Err(IngestError::DeadlineExceeded);
    }
    let key = match source.record_key {
        RecordKey::Id => Some(envelope.id.as_bytes()),
        RecordKey::DedupKey if !envelope.dedup_key.is_empty() => Some(envelope.dedup_key.as_bytes()),
        RecordKey::DedupKey => Some(envelope.id.as_bytes()),
        RecordKey::None => None,
    };
    let started = Instant::now();
    let result = publisher.publish_envelope(&envelope, &source.topic, key, remaining).await;
    match result {
        Ok(ack) => {
            metrics::histogram!(names::PUBLISH_DURATION, "source" => source.name.clone()).record(started.elapsed().as_secs_f64());
            if let Some(ticket) = ticket {
                if let Err(error) = ticket.commit().await {
                    tracing::warn!(source = %source.name, id = %envelope.id, %error, "event published but its dedup key could not be stored");
                }
            }
            Ok(Accepted::Published { id: envelope.id, ack })
        }
        Err(error) => {
            metrics::counter!(names::PUBLISH_FAILURES, "source" => source.name.clone(), "reason" => error.code()).increment(1);
            tracing::warn!(source = %source.name, id = %envelope.id, %error, "publish failed; answering 503");
            release(ticket).await;
            Err(IngestError::Publish(error))
        }
    }
}

async fn release(ticket: Option<Ticket>) {
    if let Some(ticket) = ticket {
        ticket.release().await;
    }
}

fn accepted_response(accepted: Accepted) -> (&'static str, Response<IngestBody>) {
    match accepted {
        Accepted::Published { id, ack } => {
            let body = serde_json::json!({"id": id, "topic": ack.topic, "partition": ack.partition, "offset": ack.offset});
            ("accepted", json_response(StatusCode::ACCEPTED, &body))
        }
        Accepted::Duplicate { id } => ("duplicate", json_response(StatusCode::OK, &serde_json::json!({"id": id, "duplicate": true}))),
        Accepted::Challenge(challenge) => ("challenge", json_response(StatusCode::OK, &serde_json::json!({"challenge": challenge}))),
    }
}

fn header_text(headers: &HeaderMap, name: HeaderName) -> String {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

fn unix_micros(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX)).unwrap_or(0)
}
