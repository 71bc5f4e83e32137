//! The topic the benchmark reads: librdkafka's mock cluster in this process
//! (hookgate's embedded broker), filled with the deliveries as ingest
//! publishes them, then read by a bare consumer and by the indexer.
//!
//! Why the mock cluster: it serves fetches fastest of the brokers at hand
//! (Tansu 0.6 serves about 12k records/s from memory storage and 70/s from
//! sqlite), so the reading side is the indexer's and the bare consumer's own
//! work, not the broker's. It keeps at most ~5 MB and 100,000 records per
//! partition, so the topic gets enough partitions to hold every delivery,
//! and the fill checks that no partition was trimmed.

use std::time::{Duration, Instant};

use futures::StreamExt as _;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::deliveries::Deliveries;
use hookgate::publish::{EmbeddedBroker, KafkaEndpoint};

/// The topic's name.
pub(crate) const TOPIC: &str = "webhooks";
/// Largest share of the mock's per-partition limit (~5 MB) a partition gets.
const PARTITION_BYTES: u64 = 2_500_000;
/// Bytes of one record, about (envelope of a 1 KiB body, headers, key).
const RECORD_BYTES: u64 = 1_600;
/// How long a phase may wait for the broker.
const WAIT: Duration = Duration::from_secs(30);

/// The partition of delivery `i` of `count`: contiguous ranges, so that
/// the producer fills whole batches (the mock cluster serves one record
/// batch per partition and fetch; round-robin filling made batches of a few
/// records and the bare consumer crawl).
pub(crate) fn partition_of(i: u64, count: u64, partitions: i32) -> i32 {
    let per_partition = count.div_ceil(partitions as u64);
    (i / per_partition) as i32
}

/// The mock cluster with the filled topic.
pub(crate) struct Topic {
    /// Keeps the cluster alive.
    _broker: EmbeddedBroker,
    /// Bootstrap servers.
    pub(crate) bootstrap: String,
    /// Partitions of the topic.
    pub(crate) partitions: i32,
}

impl Topic {
    /// Partitions enough for `count` records at [`PARTITION_BYTES`] each (at least 8).
    pub(crate) fn partitions_for(count: u64) -> i32 {
        let needed = (count * RECORD_BYTES).div_ceil(PARTITION_BYTES);
        needed.max(8) as i32
    }

    /// Starts the cluster and creates the topic.
    pub(crate) fn start(partitions: i32) -> Topic {
        let broker = EmbeddedBroker::start(&[TOPIC.to_owned()], partitions).expect("mock cluster");
        let bootstrap = broker.bootstrap_servers().to_owned();
        Topic {
            _broker: broker,
            bootstrap,
            partitions,
        }
    }

    /// The endpoint the indexer and consumers use.
    pub(crate) fn endpoint(&self) -> KafkaEndpoint {
        KafkaEndpoint {
            bootstrap: self.bootstrap.clone(),
            options: Default::default(),
        }
    }

    /// Publishes every delivery as ingest does (envelope value, id key,
    /// routing headers), round-robin over the partitions; returns the time taken.
    pub(crate) fn fill(&self, deliveries: &Deliveries) -> Duration {
        let started = Instant::now();
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("linger.ms", "20")
            .set("queue.buffering.max.messages", "200000")
            .set("enable.idempotence", "true")
            .create()
            .expect("producer");
        for i in 0..deliveries.count {
            let envelope = deliveries.envelope(i);
            let value = envelope.to_bytes();
            let mut headers = rdkafka::message::OwnedHeaders::new();
            for (name, value) in envelope.record_headers() {
                headers = headers.insert(rdkafka::message::Header {
                    key: name,
                    value: Some(value),
                });
            }
            let partition = partition_of(i, deliveries.count, self.partitions);
            let mut record = BaseRecord::to(TOPIC)
                .key(envelope.id.as_bytes())
                .payload(&value)
                .partition(partition)
                .headers(headers);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        producer.poll(Duration::from_millis(10));
                    }
                    Err((error, _)) => panic!("cannot produce: {error}"),
                }
            }
            producer.poll(Duration::ZERO);
        }
        producer.flush(Duration::from_secs(120)).expect("every delivery acked");
        started.elapsed()
    }

    /// Per partition, the high watermark; panics when the mock's retention trimmed any.
    pub(crate) fn ends(&self) -> Vec<i64> {
        let consumer: BaseConsumer = self.client("history-bench-marks").create().expect("consumer");
        (0..self.partitions)
            .map(|p| {
                let (low, high) = consumer.fetch_watermarks(TOPIC, p, WAIT).expect("watermarks");
                assert_eq!(
                    low, 0,
                    "partition {p} was trimmed by the mock's retention: use more partitions"
                );
                high
            })
            .collect()
    }

    /// A consumer configuration in `group`.
    fn client(&self, group: &str) -> ClientConfig {
        let mut config = self.endpoint().client_config();
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest");
        config
    }

    /// A bare consumer (the indexer's consumer settings, no store) reads
    /// every record and touches its value; returns the time from subscribe to the last record.
    pub(crate) async fn bare_read(&self, group: &str, total: u64) -> Duration {
        let consumer: StreamConsumer = self.client(group).create().expect("consumer");
        let started = Instant::now();
        consumer.subscribe(&[TOPIC]).expect("subscribe");
        let mut stream = consumer.stream();
        let (mut read, mut bytes) = (0u64, 0u64);
        while read < total {
            let message = tokio::time::timeout(WAIT, stream.next())
                .await
                .expect("records keep coming")
                .expect("stream open")
                .expect("record");
            bytes += message.payload().map_or(0, |p| p.len() as u64);
            read += 1;
        }
        let elapsed = started.elapsed();
        assert!(bytes > 0);
        elapsed
    }

    /// Waits until `group` has committed every partition's end; returns when it saw that.
    pub(crate) async fn committed_to_end(
        &self,
        group: &str,
        ends: &[i64],
        started: Instant,
        deadline: Duration,
    ) -> Duration {
        let consumer: BaseConsumer = self.client(group).create().expect("consumer");
        let mut partitions = TopicPartitionList::new();
        for p in 0..self.partitions {
            partitions.add_partition(TOPIC, p);
        }
        loop {
            let committed = tokio::task::block_in_place(|| consumer.committed_offsets(partitions.clone(), WAIT))
                .expect("committed offsets");
            let done = committed.elements().iter().all(|e| match e.offset() {
                Offset::Offset(o) => o >= ends[e.partition() as usize],
                _ => ends[e.partition() as usize] == 0,
            });
            if done {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < deadline,
                "the indexer did not catch up within {deadline:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
