//! The indexer's Kafka client context: librdkafka logs go to `tracing`
//! (target "librdkafka") and partition assignments are logged.

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;

/// Context of the indexer's consumer.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct IndexerContext;

impl ClientContext for IndexerContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        crate::telemetry::librdkafka::log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(target: "librdkafka", %error, %reason, "indexer consumer error");
    }
}

impl ConsumerContext for IndexerContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                tracing::info!(partitions = partitions.count(), "indexer assigned partitions")
            }
            Rebalance::Revoke(partitions) => {
                tracing::info!(partitions = partitions.count(), "indexer partitions revoked")
            }
            Rebalance::Error(error) => tracing::warn!(%error, "indexer rebalance failed"),
        }
    }
}
