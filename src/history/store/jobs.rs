//! Bulk replay jobs as the store keeps them (table `replay_jobs`): the
//! job's filter, target, rate and progress, and the lease by which one
//! query replica at a time works on it. Progress is recorded after every
//! acknowledged event together with the position reached, so a replica
//! that takes over a job (after the lease of a killed one expired)
//! continues where the last acknowledged event left it.

use serde::{Deserialize, Serialize};

use super::{observe, EventFilter, JsonMatch, JsonPointer, Position, Store, StoreError};

/// Runs `$body` with `$pool` bound to the store's connection pool, whichever the dialect.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            Store::Sqlite(s) => {
                let $pool = &s.pool;
                $body
            }
            Store::Postgres(s) => {
                let $pool = &s.pool;
                $body
            }
        }
    };
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Events remain to be published.
    Running,
    /// Every matching event was attempted.
    Done,
}

impl JobState {
    fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Done => "done",
        }
    }
}

/// A bulk replay job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayJob {
    /// Job id (UUIDv7).
    pub id: String,
    /// Where it stands.
    pub state: JobState,
    /// The events it replays (token restrictions applied, `until` pinned to its creation).
    pub filter: EventFilter,
    /// Topic to publish to instead of each source's own.
    pub topic: Option<String>,
    /// Events per second.
    pub rate: u32,
    /// Events that matched when the job was created.
    pub matched: u64,
    /// Events published and acknowledged.
    pub published: u64,
    /// Events that could not be published.
    pub failed: u64,
    /// The last event attempted, oldest-first order.
    pub after: Option<Position>,
    /// Created, µs since the epoch.
    pub created_at: i64,
    /// Last progress, µs since the epoch.
    pub updated_at: i64,
}

/// The filter in the store's JSON column.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredFilter {
    /// Allowed sources.
    sources: Option<Vec<String>>,
    /// Event type.
    event_type: Option<String>,
    /// Lower bound, µs.
    since: Option<i64>,
    /// Upper bound, µs.
    until: Option<i64>,
    /// Dedup key.
    dedup_key: Option<String>,
    /// Verification outcome.
    verified: Option<bool>,
    /// (pointer, value) pairs.
    json: Vec<(String, String)>,
    /// Words or phrase.
    text: Option<String>,
}

fn filter_json(filter: &EventFilter) -> String {
    let stored = StoredFilter {
        sources: filter.sources.clone(),
        event_type: filter.event_type.clone(),
        since: filter.since,
        until: filter.until,
        dedup_key: filter.dedup_key.clone(),
        verified: filter.verified,
        json: filter
            .json
            .iter()
            .map(|j| (j.pointer.to_string(), j.value.clone()))
            .collect(),
        text: filter.text.clone(),
    };
    serde_json::to_string(&stored).unwrap_or_default()
}

fn filter_from_json(id: &str, text: &str) -> Result<EventFilter, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        id: id.to_owned(),
        reason,
    };
    let stored: StoredFilter = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
    let json = stored
        .json
        .into_iter()
        .map(|(pointer, value)| {
            let pointer = JsonPointer::parse(&pointer).map_err(|e| corrupt(e.to_string()))?;
            Ok(JsonMatch { pointer, value })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(EventFilter {
        sources: stored.sources,
        event_type: stored.event_type,
        since: stored.since,
        until: stored.until,
        dedup_key: stored.dedup_key,
        verified: stored.verified,
        json,
        text: stored.text,
    })
}

/// A `replay_jobs` row.
#[derive(Debug, sqlx::FromRow)]
struct JobRow {
    id: String,
    state: String,
    filter: String,
    topic: Option<String>,
    rate: i64,
    matched: i64,
    published: i64,
    failed: i64,
    after_at: Option<i64>,
    after_id: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<JobRow> for ReplayJob {
    type Error = StoreError;

    fn try_from(row: JobRow) -> Result<Self, StoreError> {
        let filter = filter_from_json(&row.id, &row.filter)?;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(ReplayJob {
            state: if row.state == "done" {
                JobState::Done
            } else {
                JobState::Running
            },
            filter,
            topic: row.topic,
            rate: u32::try_from(row.rate).unwrap_or(1),
            matched: count(row.matched),
            published: count(row.published),
            failed: count(row.failed),
            after: row
                .after_at
                .zip(row.after_id)
                .map(|(received_at, id)| Position { received_at, id }),
            created_at: row.created_at,
            updated_at: row.updated_at,
            id: row.id,
        })
    }
}

const JOB_COLUMNS: &str =
    "id, state, filter, topic, rate, matched, published, failed, after_at, after_id, created_at, updated_at";

impl Store {
    /// Stores a new job (its lease free, so any replica may start it).
    pub async fn create_job(&self, job: &ReplayJob) -> Result<(), StoreError> {
        let sql = "INSERT INTO replay_jobs (id, state, filter, topic, rate, matched, published, failed, \
                   lease_until, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 0, 0, 0, $7, $7)";
        let result = with_pool!(self, pool => sqlx::query(sql)
            .bind(&job.id)
            .bind(job.state.as_str())
            .bind(filter_json(&job.filter))
            .bind(job.topic.as_deref())
            .bind(i64::from(job.rate))
            .bind(i64::try_from(job.matched).unwrap_or(i64::MAX))
            .bind(job.created_at)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()));
        observe("job", result.map(drop).map_err(StoreError::from))
    }

    /// One job by id.
    pub async fn job(&self, id: &str) -> Result<Option<ReplayJob>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM replay_jobs WHERE id = $1");
        let row = with_pool!(self, pool => sqlx::query_as::<_, JobRow>(&sql).bind(id).fetch_optional(pool).await);
        observe(
            "job",
            row.map_err(StoreError::from)
                .and_then(|r| r.map(ReplayJob::try_from).transpose()),
        )
    }

    /// Takes the lease of the oldest running job whose lease expired before
    /// `now` for `owner` until `lease_until`; `None` when there is none.
    pub async fn claim_job(&self, owner: &str, now: i64, lease_until: i64) -> Result<Option<ReplayJob>, StoreError> {
        let pick = format!(
            "SELECT {JOB_COLUMNS} FROM replay_jobs WHERE state = 'running' AND lease_until < $1 \
             ORDER BY created_at LIMIT 1"
        );
        let take = "UPDATE replay_jobs SET lease_owner = $1, lease_until = $2 WHERE id = $3 AND lease_until < $4";
        let result: Result<Option<JobRow>, sqlx::Error> = with_pool!(self, pool => async {
            let Some(row) = sqlx::query_as::<_, JobRow>(&pick).bind(now).fetch_optional(pool).await? else {
                return Ok(None);
            };
            let taken = sqlx::query(take).bind(owner).bind(lease_until).bind(&row.id).bind(now).execute(pool).await?;
            // Another replica may have taken it between the two statements.
            Ok((taken.rows_affected() == 1).then_some(row))
        }
        .await);
        observe(
            "job",
            result
                .map_err(StoreError::from)
                .and_then(|r| r.map(ReplayJob::try_from).transpose()),
        )
    }

    /// Records progress of `owner`'s job: one more event attempted
    /// (`published` or failed) at `after`, and the lease extended. False
    /// when the lease is no longer `owner`'s (then it must stop).
    pub async fn job_progress(
        &self,
        job: &str,
        owner: &str,
        after: &Position,
        published: bool,
        (now, lease_until): (i64, i64),
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE replay_jobs SET published = published + $1, failed = failed + $2, after_at = $3, \
                   after_id = $4, lease_until = $5, updated_at = $6 WHERE id = $7 AND lease_owner = $8";
        let (p, f) = if published { (1_i64, 0_i64) } else { (0, 1) };
        let result = with_pool!(self, pool => sqlx::query(sql)
            .bind(p).bind(f).bind(after.received_at).bind(&after.id).bind(lease_until).bind(now)
            .bind(job).bind(owner)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()));
        observe("job", result.map(|rows| rows == 1).map_err(StoreError::from))
    }

    /// Marks `owner`'s job done and frees its lease.
    pub async fn finish_job(&self, job: &str, owner: &str, now: i64) -> Result<(), StoreError> {
        let sql = "UPDATE replay_jobs SET state = 'done', lease_owner = NULL, lease_until = 0, updated_at = $1 \
                   WHERE id = $2 AND lease_owner = $3";
        let result = with_pool!(self, pool => sqlx::query(sql).bind(now).bind(job).bind(owner).execute(pool).await
            .map(|done| done.rows_affected()));
        observe("job", result.map(drop).map_err(StoreError::from))
    }

    /// Hands `owner`'s job back (at shutdown): another replica may take it at once.
    pub async fn release_job(&self, job: &str, owner: &str) -> Result<(), StoreError> {
        let sql = "UPDATE replay_jobs SET lease_owner = NULL, lease_until = 0 WHERE id = $1 AND lease_owner = $2";
        let result = with_pool!(self, pool => sqlx::query(sql).bind(job).bind(owner).execute(pool).await
            .map(|done| done.rows_affected()));
        observe("job", result.map(drop).map_err(StoreError::from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_round_trip_through_their_json() {
        let filter = EventFilter {
            sources: Some(vec!["stripe".into()]),
            until: Some(5),
            json: vec![JsonMatch {
                pointer: JsonPointer::parse("/data/object/customer").unwrap(),
                value: "cus_1".into(),
            }],
            text: Some("refund".into()),
            ..Default::default()
        };
        assert_eq!(filter_from_json("j", &filter_json(&filter)).unwrap(), filter);
        assert!(matches!(filter_from_json("j", "{}"), Err(StoreError::Corrupt { .. })));
    }
}
