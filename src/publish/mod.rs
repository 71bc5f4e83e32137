//! Publishing to Kafka: one shared idempotent producer (acks=all), answers
//! that distinguish "acked" from every way of not being acked, readiness
//! (broker reachable, producer usable) and rebuilding after a fatal error.

mod embedded;
mod options;
mod producer;
mod registry;
mod size;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureRecord, Producer};
use serde::Serialize;

use crate::config::RecordFormat;
use crate::envelope::{cloudevents, framing, EnvelopeRef, WebhookEnvelope};
use crate::telemetry::names;

pub use embedded::{EmbeddedBroker, EmbeddedError};
pub use options::{option_issues, rejected_options};
pub use producer::{producer_config, GuardContext, KafkaEndpoint};
pub use registry::{register_schemas, subject, RegistryError, SchemaIds};
pub use size::{message_max_bytes, record_size, DEFAULT_MESSAGE_MAX_BYTES, MESSAGE_MAX_BYTES, MESSAGE_MAX_BYTES_RANGE};

use producer::{build_producer, GuardedProducer};

/// Where the broker put an acknowledged record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ack {
    /// Topic written to.
    pub topic: String,
    /// Partition written to.
    pub partition: i32,
    /// Offset of the record; -1 when the broker acknowledged a retried
    /// duplicate without reporting where the first copy went.
    pub offset: i64,
}

/// Every way a record can fail to be acknowledged. All of them mean 503.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The producer's local queue is full: the broker is not keeping up.
    #[error("the producer queue is full")]
    QueueFull,
    /// No verdict from the broker before the deadline (it may still arrive).
    #[error("the broker did not acknowledge in time")]
    Timeout,
    /// The broker refused or the delivery failed for good.
    #[error("the broker did not accept the record: {0}")]
    Broker(String),
    /// The producer hit a fatal error; it is being rebuilt.
    #[error("the producer hit a fatal error and is being rebuilt")]
    Fatal,
    /// The record is larger than the producer's `message.max.bytes` (checked
    /// before it is handed over) or than the broker accepts: no retry can
    /// succeed. The only one of these errors that is not a 503.
    #[error("{0}")]
    TooLarge(String),
}

impl PublishError {
    /// Stable code for responses and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            PublishError::QueueFull => "queue_full",
            PublishError::Timeout => "publish_timeout",
            PublishError::Broker(_) => "broker_error",
            PublishError::Fatal => "producer_fatal",
            PublishError::TooLarge(_) => "body_too_large",
        }
    }

    /// True when retrying the same record can succeed (every error but [`PublishError::TooLarge`]).
    pub fn is_retryable(&self) -> bool {
        !matches!(self, PublishError::TooLarge(_))
    }
}

/// One record to publish.
#[derive(Debug, Clone, Copy)]
pub struct OutgoingRecord<'a> {
    /// Destination topic.
    pub topic: &'a str,
    /// Record key; `None` lets the partitioner choose.
    pub key: Option<&'a [u8]>,
    /// Record value.
    pub payload: &'a [u8],
    /// Record headers.
    pub headers: &'a [(&'a str, &'a str)],
}

/// A record handed to the producer, awaiting the broker's verdict
/// ([`Publisher::verdict`]).
pub struct PendingAck {
    /// The topic it was sent to.
    topic: String,
    /// The generation of the producer that took the record.
    generation: u64,
    /// Resolves with librdkafka's delivery report.
    delivery: DeliveryFuture,
}

impl std::fmt::Debug for PendingAck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingAck")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

/// The producer currently in use and its context.
struct Slot {
    /// The shared producer (cheap to clone, one librdkafka handle).
    producer: GuardedProducer,
    /// Knows whether this producer hit a fatal error.
    context: GuardContext,
    /// Producers built before this one (each rebuild replaces a fatal one).
    generation: u64,
}

impl Slot {
    /// True once librdkafka raised a fatal error on this producer (seen by the
    /// error callback, or read from the client when the callback has not run yet).
    fn is_fatal(&self) -> bool {
        self.context.is_fatal() || self.producer.client().fatal_error().is_some()
    }
}

/// State shared by every clone of a [`Publisher`].
struct Shared {
    /// Cluster address and options, for rebuilding.
    endpoint: KafkaEndpoint,
    /// How long librdkafka keeps trying one record.
    message_timeout: Duration,
    /// The live producer; swapped after a fatal error.
    slot: ArcSwap<Slot>,
    /// Serialises rebuilds.
    rebuilding: tokio::sync::Mutex<()>,
    /// Result of the last metadata request.
    broker_reachable: AtomicBool,
    /// Schema registry ids by topic, once registered: envelopes to these topics are framed.
    schema_ids: OnceLock<SchemaIds>,
    /// The producer's `message.max.bytes`: larger records are refused before they are handed over.
    max_record_bytes: u64,
}

/// The shared Kafka publisher. Clones share one producer.
#[derive(Clone)]
pub struct Publisher {
    /// Producer, endpoint and health.
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("endpoint", &self.shared.endpoint)
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// Creates the producer. `message_timeout` should be below the ingest
    /// deadline so librdkafka's verdict arrives before the sender's answer is due.
    pub fn new(endpoint: KafkaEndpoint, message_timeout: Duration) -> Result<Self, KafkaError> {
        let (producer, context) = build_producer(&endpoint, message_timeout)?;
        let max_record_bytes = message_max_bytes(&endpoint.options);
        let shared = Shared {
            endpoint,
            message_timeout,
            slot: ArcSwap::from_pointee(Slot {
                producer,
                context,
                generation: 0,
            }),
            rebuilding: tokio::sync::Mutex::new(()),
            broker_reachable: AtomicBool::new(false),
            schema_ids: OnceLock::new(),
            max_record_bytes,
        };
        metrics::gauge!(names::KAFKA_PRODUCER_HEALTHY).set(1.0);
        Ok(Self {
            shared: Arc::new(shared),
        })
    }

    /// The cluster this publisher writes to.
    pub fn endpoint(&self) -> &KafkaEndpoint {
        &self.shared.endpoint
    }

    /// The largest record the producer takes (`message.max.bytes`, as librdkafka counts it: [`record_size`]).
    pub fn max_record_bytes(&self) -> u64 {
        self.shared.max_record_bytes
    }

    /// Publishes one record and waits for the broker's acknowledgement, at most `timeout`.
    pub async fn publish(&self, record: OutgoingRecord<'_>, timeout: Duration) -> Result<Ack, PublishError> {
        let pending = self.enqueue(record)?;
        self.verdict(pending, Instant::now() + timeout).await
    }

    /// Hands one record to the producer without waiting: librdkafka copies
    /// it, so the caller's buffers are free again when this returns. The
    /// broker's verdict comes from [`Publisher::verdict`]. A producer that hit
    /// a fatal error refuses the record (librdkafka checks before taking it),
    /// which `classify` turns into [`PublishError::Fatal`] and a rebuild.
    pub fn enqueue(&self, record: OutgoingRecord<'_>) -> Result<PendingAck, PublishError> {
        let size = record_size(record.key, record.payload.len(), record.headers);
        if size > self.shared.max_record_bytes {
            return Err(PublishError::TooLarge(format!(
                "the record would be {size} bytes, over the producer's message.max.bytes ({})",
                self.shared.max_record_bytes
            )));
        }
        let slot = self.shared.slot.load();
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
        for (key, value) in record.headers {
            headers = headers.insert(Header {
                key,
                value: Some(*value),
            });
        }
        let mut future_record = FutureRecord::<[u8], [u8]>::to(record.topic)
            .payload(record.payload)
            .headers(headers);
        if let Some(key) = record.key {
            future_record = future_record.key(key);
        }
        match slot.producer.send_result(future_record) {
            Ok(delivery) => Ok(PendingAck {
                topic: record.topic.to_owned(),
                generation: slot.generation,
                delivery,
            }),
            Err((error, _)) => Err(self.classify(&slot, &error)),
        }
    }

    /// Waits for the broker's acknowledgement of a record this publisher
    /// enqueued, until `deadline`. The offset is -1 when the broker
    /// acknowledged a retried duplicate without one. After a timeout the
    /// record may still be written: librdkafka keeps trying until its own
    /// message timeout.
    pub async fn verdict(&self, pending: PendingAck, deadline: Instant) -> Result<Ack, PublishError> {
        let PendingAck {
            topic,
            generation,
            delivery,
        } = pending;
        let report = tokio::time::timeout_at(deadline.into(), delivery)
            .await
            .map_err(|_| PublishError::Timeout)?;
        let error = match report {
            Ok(Ok(delivery)) => {
                return Ok(Ack {
                    topic,
                    partition: delivery.partition,
                    offset: delivery.offset,
                })
            }
            Ok(Err((error, _))) => Some(error),
            Err(_canceled) => None,
        };
        let slot = self.shared.slot.load();
        if slot.generation != generation {
            // The producer that took the record hit a fatal error and has been
            // replaced since (dropping it failed what it still held).
            return Err(PublishError::Fatal);
        }
        match error {
            Some(error) => Err(self.classify(&slot, &error)),
            None => Err(PublishError::Broker("delivery report lost".into())),
        }
    }

    /// Frames envelopes for the schema registry from now on: those written
    /// to a topic of `ids` carry its schema id. Set once, at start-up.
    pub fn use_schema_ids(&self, ids: SchemaIds) {
        if self.shared.schema_ids.set(ids).is_err() {
            tracing::warn!("schema ids were already set; keeping the first");
        }
    }

    /// The registered schema id of envelopes written to `topic`, if any.
    pub fn schema_id(&self, topic: &str) -> Option<u32> {
        self.shared.schema_ids.get()?.get(topic).copied()
    }

    /// Hands an event to the producer in `format`: the envelope (framed when
    /// the topic has a schema id) with hookgate's routing headers, or a
    /// CloudEvent whose value is the body. See [`Publisher::enqueue`].
    pub fn enqueue_event(
        &self,
        envelope: &WebhookEnvelope,
        topic: &str,
        key: Option<&[u8]>,
        format: RecordFormat,
    ) -> Result<PendingAck, PublishError> {
        match format {
            RecordFormat::Envelope => {
                let payload = match self.schema_id(topic) {
                    Some(id) => framing::frame(envelope, id),
                    None => envelope.to_bytes(),
                };
                let headers = envelope.record_headers();
                self.enqueue(OutgoingRecord {
                    topic,
                    key,
                    payload: &payload,
                    headers: &headers,
                })
            }
            RecordFormat::Cloudevents => {
                let owned = cloudevents::headers(envelope);
                let headers: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
                self.enqueue(OutgoingRecord {
                    topic,
                    key,
                    payload: &envelope.body,
                    headers: &headers,
                })
            }
        }
    }

    /// Hands a received request's envelope to the producer in `format`, as
    /// [`Publisher::enqueue_event`] does with an owned one.
    pub fn enqueue_received(
        &self,
        envelope: &EnvelopeRef<'_>,
        topic: &str,
        key: Option<&[u8]>,
        format: RecordFormat,
    ) -> Result<PendingAck, PublishError> {
        match format {
            RecordFormat::Envelope => self.enqueue(OutgoingRecord {
                topic,
                key,
                payload: &envelope.encode(self.schema_id(topic)),
                headers: &envelope.record_headers(),
            }),
            RecordFormat::Cloudevents => self.enqueue_event(&envelope.to_envelope(), topic, key, format),
        }
    }

    /// Publishes an envelope with its routing headers.
    pub async fn publish_envelope(
        &self,
        envelope: &WebhookEnvelope,
        topic: &str,
        key: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Ack, PublishError> {
        self.publish_event(envelope, topic, key, RecordFormat::Envelope, timeout)
            .await
    }

    /// Publishes an event in `format` (see [`Publisher::enqueue_event`]).
    pub async fn publish_event(
        &self,
        envelope: &WebhookEnvelope,
        topic: &str,
        key: Option<&[u8]>,
        format: RecordFormat,
        timeout: Duration,
    ) -> Result<Ack, PublishError> {
        let pending = self.enqueue_event(envelope, topic, key, format)?;
        self.verdict(pending, Instant::now() + timeout).await
    }

    fn classify(&self, slot: &Slot, error: &KafkaError) -> PublishError {
        let code = error.rdkafka_error_code();
        if slot.is_fatal() || code == Some(RDKafkaErrorCode::Fatal) {
            self.schedule_rebuild();
            return PublishError::Fatal;
        }
        match code {
            Some(RDKafkaErrorCode::QueueFull) => PublishError::QueueFull,
            Some(RDKafkaErrorCode::MessageTimedOut) => PublishError::Timeout,
            Some(RDKafkaErrorCode::MessageSizeTooLarge) => {
                PublishError::TooLarge("the record is larger than the Kafka cluster accepts".into())
            }
            _ => PublishError::Broker(error.to_string()),
        }
    }

    /// True while the producer has not hit a fatal error.
    pub fn producer_healthy(&self) -> bool {
        !self.shared.slot.load().is_fatal()
    }

    /// True when the last metadata request reached a broker.
    pub fn broker_reachable(&self) -> bool {
        self.shared.broker_reachable.load(Ordering::Acquire)
    }

    /// Asks the cluster for metadata (blocking call, run off the runtime) and records the result.
    pub async fn probe_broker(&self, timeout: Duration) -> bool {
        let producer = self.shared.slot.load().producer.clone();
        let reachable = tokio::task::spawn_blocking(move || producer.client().fetch_metadata(None, timeout).is_ok())
            .await
            .unwrap_or(false);
        self.shared.broker_reachable.store(reachable, Ordering::Release);
        reachable
    }

    /// Records awaiting a broker verdict in the producer.
    pub fn queue_depth(&self) -> i32 {
        self.shared.slot.load().producer.in_flight_count()
    }

    fn schedule_rebuild(&self) {
        metrics::gauge!(names::KAFKA_PRODUCER_HEALTHY).set(0.0);
        let publisher = self.clone();
        tokio::spawn(async move { publisher.rebuild().await });
    }

    /// Replaces a producer that hit a fatal error with a new one.
    pub async fn rebuild(&self) {
        let _guard = self.shared.rebuilding.lock().await;
        if !self.shared.slot.load().is_fatal() {
            return;
        }
        match build_producer(&self.shared.endpoint, self.shared.message_timeout) {
            Ok((producer, context)) => {
                let generation = self.shared.slot.load().generation + 1;
                self.shared.slot.store(Arc::new(Slot {
                    producer,
                    context,
                    generation,
                }));
                metrics::counter!(names::KAFKA_PRODUCER_REBUILDS).increment(1);
                metrics::gauge!(names::KAFKA_PRODUCER_HEALTHY).set(1.0);
                tracing::warn!("kafka producer rebuilt after a fatal error");
            }
            Err(error) => tracing::error!(%error, "cannot rebuild the kafka producer; will retry"),
        }
    }

    /// Keeps readiness and queue metrics fresh, and rebuilds a fatal producer, until `shutdown`.
    pub async fn supervise(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut last_probe: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            metrics::gauge!(names::KAFKA_QUEUE_MESSAGES).set(f64::from(self.queue_depth()));
            if !self.producer_healthy() {
                self.rebuild().await;
            }
            if last_probe.is_none_or(|at| at.elapsed() >= Duration::from_secs(5)) {
                self.probe_broker(Duration::from_secs(2)).await;
                last_probe = Some(Instant::now());
            }
        }
    }

    /// Waits until every queued record got its verdict, at most `timeout`.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let producer = self.shared.slot.load().producer.clone();
        tokio::task::spawn_blocking(move || producer.flush(timeout).is_ok())
            .await
            .unwrap_or(false)
    }

    /// Raises a fatal error in the live producer, as librdkafka would.
    /// For fault tests of readiness and rebuilding only.
    #[doc(hidden)]
    pub fn inject_fatal_error(&self) {
        let slot = self.shared.slot.load();
        fault::trigger_fatal(&slot.producer);
    }
}

#[allow(unsafe_code)]
mod fault {
    //! The one call into librdkafka's C API that rust-rdkafka does not wrap.
    use rdkafka::producer::Producer;

    pub(super) fn trigger_fatal(producer: &super::GuardedProducer) {
        let reason = c"injected by hookgate fault test";
        // SAFETY: the handle is alive for the duration of the call (we hold a
        // reference to its producer) and `reason` is a NUL-terminated string.
        unsafe {
            rdkafka::bindings::rd_kafka_test_fatal_error(
                producer.client().native_ptr(),
                rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                reason.as_ptr(),
            );
        }
    }
}
