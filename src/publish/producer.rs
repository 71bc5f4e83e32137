//! Building the idempotent, acks=all producer and the client context that
//! notices fatal errors so the publisher can report unhealthy and rebuild.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, ProducerContext};

/// Where the Kafka cluster is and how to talk to it (security and tuning options included).
#[derive(Clone)]
pub struct KafkaEndpoint {
    /// Bootstrap servers, `host:port` comma-separated.
    pub bootstrap: String,
    /// librdkafka properties from `[kafka.options]` (already checked by config validation).
    pub options: BTreeMap<String, String>,
}

impl std::fmt::Debug for KafkaEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Options may hold sasl.password or ssl.key.password: print their names only.
        f.debug_struct("KafkaEndpoint")
            .field("bootstrap", &self.bootstrap)
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl KafkaEndpoint {
    /// A client configuration with the bootstrap servers and the pass-through options.
    /// Producer-only options are ignored by consumers with a librdkafka notice.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        config.set("client.id", "hookgate");
        config.set_log_level(RDKafkaLogLevel::Warning);
        for (name, value) in &self.options {
            config.set(name, value);
        }
        config
    }
}

/// Client context of the producer: routes librdkafka logs to tracing and
/// records fatal errors (after which the producer can never deliver again).
#[derive(Debug, Clone, Default)]
pub struct GuardContext {
    /// Set once librdkafka raised a fatal error on this producer.
    fatal: Arc<AtomicBool>,
}

impl GuardContext {
    /// True once this producer hit a fatal error.
    pub fn is_fatal(&self) -> bool {
        self.fatal.load(Ordering::Acquire)
    }
}

impl ClientContext for GuardContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        crate::telemetry::librdkafka::log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) {
            self.fatal.store(true, Ordering::Release);
            tracing::error!(target: "librdkafka", %reason, "fatal producer error: the producer will be rebuilt");
        } else {
            tracing::warn!(target: "librdkafka", %error, %reason, "kafka client error");
        }
    }
}

impl ProducerContext for GuardContext {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

/// The producer type every publish goes through.
pub(super) type GuardedProducer = FutureProducer<GuardContext>;

/// Producer settings that carry the delivery guarantee. `message_timeout`
/// is how long librdkafka keeps trying before it reports a failure.
pub fn producer_config(endpoint: &KafkaEndpoint, message_timeout: Duration) -> ClientConfig {
    let mut config = ClientConfig::new();
    // Tunables first, so the pass-through options can change them.
    config.set("linger.ms", "5");
    config.set("queue.buffering.max.messages", "100000");
    config.set("socket.keepalive.enable", "true");
    // librdkafka's default backoff grows to 10 s, longer than the ingest deadline:
    // after a broker outage senders would get 503s for seconds after it is back.
    config.set("reconnect.backoff.max.ms", "1000");
    for (name, value) in endpoint.client_config().config_map() {
        config.set(name, value);
    }
    // The guarantee last: validation already refused options that change these.
    config.set("acks", "all");
    config.set("enable.idempotence", "true");
    config.set("message.timeout.ms", message_timeout.as_millis().max(1000).to_string());
    config
}

/// Creates a producer with its own context.
pub(super) fn build_producer(
    endpoint: &KafkaEndpoint,
    message_timeout: Duration,
) -> Result<(GuardedProducer, GuardContext), KafkaError> {
    let context = GuardContext::default();
    let producer = producer_config(endpoint, message_timeout).create_with_context(context.clone())?;
    Ok((producer, context))
}
