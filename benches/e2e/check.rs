//! After the load: every delivery answered 2xx must have its record in the
//! topic. Records are read back from the beginning of every partition and
//! matched by the delivery number carried in the body (hookgate's records
//! are envelopes around the body; the baseline's are the body itself).

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use hookgate::envelope::WebhookEnvelope;

/// The outcome of reading a topic back.
#[derive(Debug)]
pub(crate) struct Readback {
    /// Records read.
    pub(crate) records: u64,
    /// 2xx deliveries without a record.
    pub(crate) missing: u64,
}

/// Reads `topic` until every delivery in `accepted` was seen, the topic stayed
/// quiet for a while, or `timeout` passed. `enveloped`: records are hookgate envelopes.
pub(crate) fn readback(bootstrap: &str, topic: &str, accepted: &[u64], enveloped: bool, timeout: Duration) -> Readback {
    let issued = accepted.iter().max().map_or(0, |n| n + 1) as usize;
    let mut wanted = vec![false; issued];
    for &n in accepted {
        wanted[n as usize] = true;
    }
    let mut missing = accepted.len() as u64;
    let consumer = consumer(bootstrap, topic);
    let deadline = Instant::now() + timeout;
    let mut quiet_since = Instant::now();
    let mut records = 0u64;
    while missing > 0 && Instant::now() < deadline && quiet_since.elapsed() < Duration::from_secs(5) {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else { continue };
        let Ok(message) = message else { continue };
        quiet_since = Instant::now();
        records += 1;
        let payload = message.payload().unwrap_or_default();
        let delivery = if enveloped {
            WebhookEnvelope::from_bytes(payload).ok().and_then(|e| crate::load::delivery_in_body(&e.body))
        } else {
            crate::load::delivery_in_body(payload)
        };
        if let Some(slot) = delivery.and_then(|n| wanted.get_mut(n as usize)) {
            if std::mem::take(slot) {
                missing -= 1;
            }
        }
    }
    Readback { records, missing }
}

fn consumer(bootstrap: &str, topic: &str) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("e2e-readback-{}", uuid::Uuid::now_v7().simple()))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("topic metadata");
    let mut assignment = TopicPartitionList::new();
    for partition in metadata.topics()[0].partitions() {
        assignment.add_partition_offset(topic, partition.id(), Offset::Beginning).expect("partition");
    }
    consumer.assign(&assignment).expect("assign");
    consumer
}
