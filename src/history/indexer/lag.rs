//! Indexer lag: for each assigned partition, records between the indexer's
//! position and the high watermark, published as
//! `hookgate_indexer_lag_records{topic, partition}` every few seconds. The
//! watermark requests block, so they run on the blocking pool.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;

use crate::history::shutdown_requested;
use crate::telemetry::names;

/// How often lag is measured.
const LAG_INTERVAL: Duration = Duration::from_secs(5);
/// Longest wait for one partition's watermarks.
const WATERMARK_TIMEOUT: Duration = Duration::from_secs(2);

/// Lag of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PartitionLag {
    /// Topic name (a configured topic).
    topic: String,
    /// Partition number.
    partition: i32,
    /// Records not yet indexed.
    records: i64,
}

/// Measures and publishes lag until shutdown.
pub(super) async fn report<C: ConsumerContext + 'static>(
    consumer: Arc<StreamConsumer<C>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(LAG_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reported: BTreeSet<(String, i32)> = BTreeSet::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown_requested(&mut shutdown) => return,
        }
        let measured = consumer.clone();
        let Ok(lags) = tokio::task::spawn_blocking(move || measure(&measured)).await else {
            continue;
        };
        let current: BTreeSet<(String, i32)> = lags.iter().map(|l| (l.topic.clone(), l.partition)).collect();
        for (topic, partition) in reported.difference(&current) {
            // Revoked partitions: another replica reports them now.
            metrics::gauge!(names::INDEXER_LAG, "topic" => topic.clone(), "partition" => partition.to_string())
                .set(0.0);
        }
        for lag in lags {
            let gauge =
                metrics::gauge!(names::INDEXER_LAG, "topic" => lag.topic, "partition" => lag.partition.to_string());
            gauge.set(lag.records as f64);
        }
        reported = current;
    }
}

/// Lag of every assigned partition. A partition not read from yet counts
/// from its committed offset, or from its low watermark without one.
fn measure<C: ConsumerContext>(consumer: &StreamConsumer<C>) -> Vec<PartitionLag> {
    let Ok(positions) = consumer.position() else {
        return Vec::new();
    };
    let unread = unread_partitions(&positions);
    let committed = if unread.count() > 0 {
        consumer.committed_offsets(unread, WATERMARK_TIMEOUT).ok()
    } else {
        None
    };
    let mut lags = Vec::new();
    for element in positions.elements() {
        let (topic, partition) = (element.topic(), element.partition());
        let Ok((low, high)) = consumer.fetch_watermarks(topic, partition, WATERMARK_TIMEOUT) else {
            continue;
        };
        let from_committed = committed
            .as_ref()
            .and_then(|c| c.find_partition(topic, partition))
            .map(|e| e.offset());
        let at = match (element.offset(), from_committed) {
            (Offset::Offset(at), _) | (_, Some(Offset::Offset(at))) => at,
            _ => low,
        };
        lags.push(PartitionLag {
            topic: topic.to_owned(),
            partition,
            records: (high - at).max(0),
        });
    }
    lags
}

/// The partitions whose position is not known yet.
fn unread_partitions(positions: &TopicPartitionList) -> TopicPartitionList {
    let mut unread = TopicPartitionList::new();
    for element in positions.elements() {
        if !matches!(element.offset(), Offset::Offset(_)) {
            unread.add_partition(element.topic(), element.partition());
        }
    }
    unread
}
