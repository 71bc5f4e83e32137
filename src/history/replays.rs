//! Replaying stored events to Kafka: one event (`POST /v1/events/{id}/replay`)
//! and bulk replay jobs (`POST /v1/replays`).
//!
//! A replay rebuilds the original envelope from the store, marks it as a
//! replay (envelope field and `hookgate-replay: true` record header) and
//! publishes it with the same id to the topic the event was first written to
//! (its route's; or a job's allow-listed `topic`), keyed and formatted
//! (envelope or CloudEvent) as the source is configured now.
//!
//! Jobs run in the background of every query replica: [`run_jobs`] takes
//! the lease of a running job in the store, publishes its events oldest
//! first at the job's rate, one at a time, and after each acknowledgement
//! records the position reached (which extends the lease). A replica killed
//! mid-job stops renewing; once the lease has expired ([`JOB_LEASE`])
//! another replica, or the same one restarted, continues after the recorded
//! position. Delivery is at least once: the one event whose acknowledgement
//! had not been recorded when the replica died is published again.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use super::store::{EventRecord, Order, Position, ReplayJob, Store, StoreError};
use super::{now_micros, shutdown_requested};
use crate::config::{Config, RecordFormat};
use crate::envelope::{body_location, record_key, BodyRef};
use crate::publish::{Ack, PublishError, Publisher};
use crate::telemetry::names;

/// How long a job stays with a replica that stopped recording progress.
pub const JOB_LEASE: Duration = Duration::from_secs(10);
/// How often an idle replica looks for a job (a new job wakes it at once).
const POLL: Duration = Duration::from_secs(2);
/// Events read from the store at a time.
const PAGE: u32 = 100;

/// Why an event could not be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The stored headers cannot be decoded back into bytes.
    #[error("stored headers of {0} are unreadable")]
    Unreadable(String),
    /// The event's body was kept out of its record and the store no longer has it.
    #[error("the stored body of {0} is gone")]
    BodyMissing(String),
    /// The store could not be read for the body's reference.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The broker did not acknowledge.
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// Publishes `event` again as a replay, to `topic` or where its source publishes now.
pub async fn republish(
    store: &Store,
    publisher: &Publisher,
    config: &Config,
    event: &EventRecord,
    topic: Option<&str>,
) -> Result<Ack, ReplayError> {
    let mut envelope = event
        .to_envelope()
        .map_err(|_| ReplayError::Unreadable(event.summary.id.clone()))?;
    envelope.replay = true;
    if event.body_stored_apart() {
        envelope.body_ref = Some(body_ref(store, &event.summary.id).await?);
    }
    let (own_topic, key, format) = destination(config, event);
    let topic = topic.unwrap_or(&own_topic);
    let ack = publisher
        .publish_event(&envelope, topic, key.as_deref(), format, config.ingest.deadline)
        .await?;
    tracing::info!(id = %event.summary.id, topic = %ack.topic, partition = ack.partition, offset = ack.offset, "event replayed");
    Ok(ack)
}

/// The reference to a body kept out of the record (claim check), as ingest
/// wrote it: a replay is published as the event was, the body staying in the store.
async fn body_ref(store: &Store, id: &str) -> Result<BodyRef, ReplayError> {
    let digest = store
        .body_digest(id)
        .await?
        .ok_or_else(|| ReplayError::BodyMissing(id.to_owned()))?;
    Ok(BodyRef {
        length: digest.length,
        sha256: digest.sha256.into(),
        location: body_location(id),
    })
}

/// Topic, record key and format of a replay: the topic the event was read
/// from (where ingest routed it), key and format as the source is
/// configured now, or the id as key and an envelope when the source is gone.
fn destination(config: &Config, event: &EventRecord) -> (String, Option<Vec<u8>>, RecordFormat) {
    let summary = &event.summary;
    let topic = summary.provenance.topic.clone();
    let Some(source) = config.sources.iter().find(|s| s.name == summary.source) else {
        return (topic, Some(summary.id.as_bytes().to_vec()), RecordFormat::Envelope);
    };
    let dedup_key = summary.dedup_key.as_deref().unwrap_or_default();
    let key = record_key(&source.key, &summary.id, dedup_key).map(<[u8]>::to_vec);
    (topic, key, source.record_format)
}

/// What a job runner needs.
#[derive(Clone)]
pub struct JobRunner {
    /// The store holding jobs and events.
    pub store: Store,
    /// Publishes the replays.
    pub publisher: Publisher,
    /// Sources (topic, key) and the ingest deadline.
    pub config: Arc<Config>,
    /// Rung when a job is created.
    pub wakeup: Arc<Notify>,
    /// This replica's name in leases.
    pub owner: String,
}

impl std::fmt::Debug for JobRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobRunner")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

/// Runs jobs until shutdown: claims one, works it to the end (or until the
/// lease is lost or shutdown), then looks for the next.
pub async fn run_jobs(runner: JobRunner, mut shutdown: watch::Receiver<bool>) {
    loop {
        let now = now_micros();
        match runner.store.claim_job(&runner.owner, now, now + lease_micros()).await {
            Ok(Some(job)) => {
                tracing::info!(job = %job.id, matched = job.matched, published = job.published, "replay job taken");
                if let Err(error) = runner.work(&job, &mut shutdown).await {
                    tracing::warn!(job = %job.id, %error, "replay job interrupted; it resumes when its lease expires");
                }
                continue;
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "cannot look for replay jobs"),
        }
        tokio::select! {
            () = runner.wakeup.notified() => {}
            () = tokio::time::sleep(POLL) => {}
            () = shutdown_requested(&mut shutdown) => return,
        }
    }
}

fn lease_micros() -> i64 {
    i64::try_from(JOB_LEASE.as_micros()).unwrap_or(i64::MAX)
}

impl JobRunner {
    /// Publishes the job's remaining events; returns when done, when the
    /// lease is lost, or at shutdown (the lease then handed back).
    async fn work(&self, job: &ReplayJob, shutdown: &mut watch::Receiver<bool>) -> Result<(), StoreError> {
        let interval = Duration::from_secs_f64(1.0 / f64::from(job.rate.max(1)));
        let mut next_send = Instant::now();
        let mut after = job.after.clone();
        loop {
            let page = self
                .store
                .scan(&job.filter, Order::OldestFirst, after.as_ref(), PAGE)
                .await?;
            if page.is_empty() {
                return self.store.finish_job(&job.id, &self.owner, now_micros()).await;
            }
            for event in &page {
                tokio::select! {
                    () = tokio::time::sleep_until(next_send) => {}
                    () = shutdown_requested(shutdown) => return self.store.release_job(&job.id, &self.owner).await,
                }
                next_send = Instant::now() + interval;
                let published = self.replay_one(job, event).await;
                let position = Position::from(&event.summary);
                let now = now_micros();
                let still_ours = self
                    .store
                    .job_progress(&job.id, &self.owner, &position, published, (now, now + lease_micros()))
                    .await?;
                if !still_ours {
                    tracing::warn!(job = %job.id, "replay job lease lost to another replica; stopping here");
                    return Ok(());
                }
                after = Some(position);
            }
        }
    }

    /// Publishes one event of a job; true when acknowledged.
    async fn replay_one(&self, job: &ReplayJob, event: &EventRecord) -> bool {
        let result = republish(&self.store, &self.publisher, &self.config, event, job.topic.as_deref()).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(ReplayError::Publish(error)) => error.code(),
            Err(ReplayError::Unreadable(_) | ReplayError::BodyMissing(_)) => "error",
            Err(ReplayError::Store(_)) => "store_unavailable",
        };
        metrics::counter!(names::REPLAYS, "result" => outcome).increment(1);
        if let Err(error) = &result {
            tracing::warn!(job = %job.id, id = %event.summary.id, %error, "replay job could not publish an event");
        }
        result.is_ok()
    }
}
