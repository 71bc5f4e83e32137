//! After the load: every delivery answered 2xx must have its record in the
//! topic. Each partition is read back from its low to its high watermark,
//! and records are matched by the delivery number carried in the body
//! (hookgate's records are envelopes around the body; the baseline's are the
//! body itself).
//!
//! The mock cluster keeps only the last ~5 MB of each partition (librdkafka's
//! mock retention, not configurable): a 2xx whose answer names an offset
//! below the partition's low watermark was trimmed and cannot be checked; it
//! is counted apart. Tansu keeps everything, so there every 2xx is checked.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::load::Acked;
use hookgate::envelope::WebhookEnvelope;

/// The outcome of reading a topic back.
#[derive(Debug, Default)]
pub(crate) struct Readback {
    /// Records read.
    pub(crate) records: u64,
    /// 2xx deliveries found in the topic.
    pub(crate) found: u64,
    /// 2xx deliveries whose offset the broker's retention already dropped.
    pub(crate) trimmed: u64,
    /// 2xx deliveries that should be in the topic and are not.
    pub(crate) missing: u64,
    /// 2xx answers naming an offset at or past the partition's end, or one another 2xx named too.
    pub(crate) bad_offsets: u64,
    /// False when the topic could not be read to its end in time (then `missing` counts unread records).
    pub(crate) complete: bool,
}

/// The partitions of a topic and their low and high watermarks, read before
/// anything is fetched (a busy broker answers these small requests first).
#[derive(Debug, Clone)]
pub(crate) struct Marks {
    partitions: Vec<i32>,
    low: Vec<i64>,
    high: Vec<i64>,
}

/// The watermarks of every partition of `topic`.
pub(crate) fn watermarks(bootstrap: &str, topic: &str) -> Result<Marks, KafkaError> {
    let consumer = consumer(bootstrap)?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(30))?;
    let partitions: Vec<i32> = metadata.topics()[0].partitions().iter().map(|p| p.id()).collect();
    let span = partitions.iter().map(|&p| p as usize + 1).max().unwrap_or(0);
    let mut marks = Marks {
        partitions,
        low: vec![0; span],
        high: vec![0; span],
    };
    for &p in &marks.partitions {
        let (low, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(30))?;
        (marks.low[p as usize], marks.high[p as usize]) = (low, high);
    }
    Ok(marks)
}

/// Reads `topic` back from its low to its high watermarks (at most `timeout`)
/// and checks every delivery in `accepted`. `enveloped`: records are hookgate envelopes.
pub(crate) fn readback(
    bootstrap: &str,
    topic: &str,
    marks: &Marks,
    accepted: &[Acked],
    enveloped: bool,
    timeout: Duration,
) -> Result<Readback, KafkaError> {
    let Marks { partitions, low, high } = marks;
    let consumer = consumer(bootstrap)?;
    let mut assignment = TopicPartitionList::new();
    for &p in partitions {
        assignment.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;

    let issued = accepted.iter().map(|a| a.delivery + 1).max().unwrap_or(0) as usize;
    let mut seen = vec![false; issued];
    let mut next = low.clone();
    let mut result = Readback::default();
    let deadline = Instant::now() + timeout;
    let mut progress = Instant::now();
    while partitions.iter().any(|&p| next[p as usize] < high[p as usize]) && Instant::now() < deadline {
        if progress.elapsed() > Duration::from_secs(10) {
            eprintln!("e2e: {topic}: {} records read back so far", result.records);
            progress = Instant::now();
        }
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        result.records += 1;
        let p = message.partition() as usize;
        next[p] = next[p].max(message.offset() + 1);
        let payload = message.payload().unwrap_or_default();
        let delivery = if enveloped {
            WebhookEnvelope::from_bytes(payload)
                .ok()
                .and_then(|e| crate::load::delivery_in_body(&e.body))
        } else {
            crate::load::delivery_in_body(payload)
        };
        if let Some(slot) = delivery.and_then(|n| seen.get_mut(n as usize)) {
            *slot = true;
        }
    }
    result.complete = partitions.iter().all(|&p| next[p as usize] >= high[p as usize]);
    result.bad_offsets = bad_offsets(accepted, high);
    for acked in accepted {
        let floor = usize::try_from(acked.partition)
            .ok()
            .and_then(|p| low.get(p))
            .copied()
            .unwrap_or(0);
        if seen[acked.delivery as usize] {
            result.found += 1;
        } else if floor > 0 && acked.offset < floor {
            result.trimmed += 1;
        } else {
            result.missing += 1;
        }
    }
    Ok(result)
}

/// Answers whose (partition, offset) lies past the partition's end or repeats
/// another answer's: each acknowledged write has an offset of its own.
/// Offset -1 (a retried duplicate acknowledged without one) is not checked.
fn bad_offsets(accepted: &[Acked], high: &[i64]) -> u64 {
    let mut seen = std::collections::HashSet::with_capacity(accepted.len());
    let mut bad = 0;
    for acked in accepted.iter().filter(|a| a.offset >= 0) {
        let end = usize::try_from(acked.partition)
            .ok()
            .and_then(|p| high.get(p))
            .copied()
            .unwrap_or(0);
        if acked.offset >= end || !seen.insert((acked.partition, acked.offset)) {
            bad += 1;
        }
    }
    bad
}

fn consumer(bootstrap: &str) -> Result<BaseConsumer, KafkaError> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("e2e-readback-{}", uuid::Uuid::now_v7().simple()))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        // Large fetches: Tansu's sqlite storage answers each fetch slowly, whatever its size.
        .set("fetch.max.bytes", "104857600")
        .set("max.partition.fetch.bytes", "104857600")
        .set("receive.message.max.bytes", "209715200")
        .create()
}
