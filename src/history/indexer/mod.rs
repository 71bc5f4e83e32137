//! The indexer: consumes every configured topic and writes each envelope to
//! the history store. Offsets are committed only after the store write, so a
//! restart resumes where the last committed batch ended and loses nothing;
//! the store's idempotent insert absorbs what is read twice (after a crash,
//! or a replayed record that carries the same id). A record that does not
//! decode, or holds what ingest never writes (`decode`), is counted, logged
//! with its offset and committed past.

mod context;
mod decode;
mod lag;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{Headers as _, Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;

use super::live::LiveFeed;
use super::store::{EventRecord, Provenance, Store, StoreError};
use super::{now_micros, shutdown_requested};
use crate::config::Config;
use crate::publish::KafkaEndpoint;
use crate::telemetry::names;

use context::IndexerContext;
use decode::decode_record;
pub use decode::{decode, DecodeError};

/// Most records written in one transaction.
pub const MAX_BATCH: usize = 500;
/// First wait after a failed store write; doubles up to [`MAX_BACKOFF`].
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// Longest wait between store write attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// What the indexer consumes and how.
#[derive(Debug, Clone)]
pub struct IndexerSettings {
    /// Topics to consume.
    pub topics: Vec<String>,
    /// Kafka consumer group (offsets are committed under it).
    pub group: String,
    /// Events received longer ago than this are not written (retention would
    /// delete them at once); `None` writes everything.
    pub retention: Option<Duration>,
}

impl IndexerSettings {
    /// Topics, group and retention from the configuration.
    pub fn from_config(config: &Config) -> Self {
        Self {
            topics: config.topics(),
            group: config.query.consumer_group.clone(),
            retention: Some(config.query.retention),
        }
    }
}

/// Counts of one indexer run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexerReport {
    /// Records consumed and committed (decoded or not).
    pub records: u64,
    /// Events that were new to the store.
    pub inserted: u64,
    /// Records that did not decode to an envelope.
    pub decode_failures: u64,
    /// Events skipped because they are older than retention.
    pub expired: u64,
}

/// Next offset to commit per (topic, partition).
type Offsets = BTreeMap<(String, i32), i64>;

/// The indexer. [`Indexer::run`] consumes until shutdown.
pub struct Indexer {
    /// The consumer, shared with the lag reporter.
    consumer: Arc<StreamConsumer<IndexerContext>>,
    /// Where events are written.
    store: Store,
    /// Where newly written events are announced (`None`: the store announces them).
    live: Option<LiveFeed>,
    /// Age beyond which events are not written.
    retention: Option<Duration>,
}

impl std::fmt::Debug for Indexer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Indexer")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Indexer {
    /// Creates the consumer (manual commits, earliest offset on first start)
    /// and subscribes. New events go to `live` unless it is `None` (a shared
    /// store announces them to every replica itself).
    pub fn new(
        endpoint: &KafkaEndpoint,
        settings: &IndexerSettings,
        store: Store,
        live: Option<LiveFeed>,
    ) -> Result<Self, KafkaError> {
        let mut config = endpoint.client_config();
        config
            .set("group.id", &settings.group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest");
        let consumer: StreamConsumer<IndexerContext> = config.create_with_context(IndexerContext)?;
        let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        Ok(Self {
            consumer: Arc::new(consumer),
            store,
            live,
            retention: settings.retention,
        })
    }

    /// Consumes and indexes until `shutdown` turns true, then commits what
    /// was written and leaves the consumer group.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> IndexerReport {
        let lag = tokio::spawn(lag::report(self.consumer.clone(), shutdown.clone()));
        let mut report = IndexerReport::default();
        let mut written = Offsets::new();
        self.consume(&mut shutdown, &mut report, &mut written).await;
        let _ = lag.await;
        let consumer = self.consumer;
        // Committing synchronously and closing the consumer both block.
        let _ = tokio::task::spawn_blocking(move || {
            commit(&consumer, &written, CommitMode::Sync);
            drop(consumer);
        })
        .await;
        tracing::info!(?report, "indexer stopped");
        report
    }

    async fn consume(&self, shutdown: &mut watch::Receiver<bool>, report: &mut IndexerReport, written: &mut Offsets) {
        let mut batches = self
            .consumer
            .stream()
            .map(|m| m.map(|m| m.detach()))
            .ready_chunks(MAX_BATCH);
        loop {
            let batch = tokio::select! {
                biased;
                () = shutdown_requested(shutdown) => return,
                batch = batches.next() => match batch { Some(batch) => batch, None => return },
            };
            let Some(offsets) = self.index(batch, shutdown, report).await else {
                return;
            };
            commit(&self.consumer, &offsets, CommitMode::Async);
            written.extend(offsets);
        }
    }

    /// Decodes and writes one batch; returns the offsets to commit, or
    /// `None` when shutdown came while the store was failing.
    async fn index(
        &self,
        batch: Vec<KafkaResult<OwnedMessage>>,
        shutdown: &mut watch::Receiver<bool>,
        report: &mut IndexerReport,
    ) -> Option<Offsets> {
        let now = now_micros();
        let mut seen = IndexerReport::default();
        let mut offsets = Offsets::new();
        let mut records = Vec::new();
        for message in batch {
            let message = match message {
                Ok(message) => message,
                Err(error) => {
                    tracing::warn!(%error, "indexer could not read from kafka");
                    continue;
                }
            };
            offsets.insert((message.topic().to_owned(), message.partition()), message.offset() + 1);
            seen.records += 1;
            match decode_message(&message, now) {
                Ok(record) if self.expired(&record, now) => seen.expired += 1,
                Ok(record) => records.push(record),
                Err(reason) => {
                    seen.decode_failures += 1;
                    decode_failed(&message, &reason);
                }
            }
        }
        let inserted = self.write(&records, shutdown).await?;
        seen.inserted = self.announce(records, &inserted);
        report.records += seen.records;
        report.inserted += seen.inserted;
        report.decode_failures += seen.decode_failures;
        report.expired += seen.expired;
        Some(offsets)
    }

    fn expired(&self, record: &EventRecord, now: i64) -> bool {
        let Some(retention) = self.retention else { return false };
        let retention = i64::try_from(retention.as_micros()).unwrap_or(i64::MAX);
        record.summary.received_at < now.saturating_sub(retention)
    }

    /// Writes until the store accepts, retrying with backoff; `None` on shutdown.
    async fn write(&self, records: &[EventRecord], shutdown: &mut watch::Receiver<bool>) -> Option<Vec<bool>> {
        if records.is_empty() {
            return Some(Vec::new());
        }
        let mut backoff = INITIAL_BACKOFF;
        loop {
            let result = match self.store.insert_batch(records).await {
                Err(error) if !error.is_unavailable() => self.write_singly(records).await,
                other => other,
            };
            match result {
                Ok(inserted) => return Some(inserted),
                Err(error) => tracing::error!(%error, events = records.len(), retry_in = ?backoff,
                    "cannot write to the history store; retrying (offsets stay uncommitted)"),
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = shutdown_requested(shutdown) => return None,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// After a batch failed while the store seemed up: one event at a time,
    /// so that one event the store rejects for good (while it answers
    /// pings) is skipped and logged instead of stopping the indexer.
    async fn write_singly(&self, records: &[EventRecord]) -> Result<Vec<bool>, StoreError> {
        let mut inserted = Vec::with_capacity(records.len());
        for record in records {
            match self.store.insert_batch(std::slice::from_ref(record)).await {
                Ok(new) => inserted.push(new.first().copied().unwrap_or(false)),
                Err(error) if error.is_unavailable() || self.store.ping().await.is_err() => return Err(error),
                Err(error) => {
                    let p = &record.summary.provenance;
                    tracing::error!(%error, id = %record.summary.id, topic = %p.topic, partition = p.partition,
                        offset = p.offset, "the history store rejects this event; skipped");
                    inserted.push(false);
                }
            }
        }
        Ok(inserted)
    }

    /// Counts the new events and hands them to the live tail; returns how many were new.
    fn announce(&self, records: Vec<EventRecord>, inserted: &[bool]) -> u64 {
        let mut new = 0;
        for (record, is_new) in records.into_iter().zip(inserted) {
            if *is_new {
                new += 1;
                let topic = record.summary.provenance.topic.clone();
                metrics::counter!(names::INDEXED_EVENTS, "topic" => topic).increment(1);
                if let Some(live) = &self.live {
                    live.publish(record.summary);
                }
            }
        }
        new
    }
}

/// Decodes a record into a row (see [`decode`]).
fn decode_message(message: &OwnedMessage, now: i64) -> Result<EventRecord, DecodeError> {
    let provenance = Provenance {
        topic: message.topic().to_owned(),
        partition: message.partition(),
        offset: message.offset(),
    };
    let headers: Vec<(&str, &[u8])> = message
        .headers()
        .map(|hs| hs.iter().map(|h| (h.key, h.value.unwrap_or_default())).collect())
        .unwrap_or_default();
    decode_record(message.payload(), &headers, provenance, now)
}

fn decode_failed(message: &OwnedMessage, reason: &DecodeError) {
    metrics::counter!(names::INDEXER_DECODE_FAILURES, "topic" => message.topic().to_owned()).increment(1);
    tracing::warn!(topic = message.topic(), partition = message.partition(), offset = message.offset(), %reason,
        "record is not a hookgate envelope; skipped");
}

/// Commits `offsets` for the partitions still assigned to this consumer
/// (committing a revoked partition could move another member's offset back).
fn commit(consumer: &StreamConsumer<IndexerContext>, offsets: &Offsets, mode: CommitMode) {
    let Ok(assignment) = consumer.assignment() else { return };
    let mut list = TopicPartitionList::new();
    for ((topic, partition), next) in offsets {
        if assignment.find_partition(topic, *partition).is_some() {
            let _ = list.add_partition_offset(topic, *partition, Offset::Offset(*next));
        }
    }
    if list.count() == 0 {
        return;
    }
    if let Err(error) = consumer.commit(&list, mode) {
        tracing::warn!(%error, "indexer offset commit failed; the next commit covers it");
    }
}
