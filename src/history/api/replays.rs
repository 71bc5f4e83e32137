//! Bulk replay jobs over HTTP (`replay` scope):
//!
//! - `POST /v1/replays` with a JSON body holding the list's filters
//!   (`source`, `type`, `since`, `until`, `dedup_key`, `verified`, `json`
//!   as an array of `<pointer>:<value>`, `q`) and optionally `dry_run`,
//!   `topic` (one of `query.replay_topics`) and `rate` (events/s). A dry run
//!   answers 200 with the count of matching events; otherwise the job is
//!   stored (its `until` pinned to now, the token's source restriction
//!   applied) and 202 answers its id, with `Location: /v1/replays/{id}`.
//! - `GET /v1/replays/{id}`: the job's state and progress.
//!
//! The jobs run in the background (`history::replays`).

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::auth::Grant;
use super::error::ApiError;
use super::view::rfc3339;
use super::{params, ApiState};
use crate::config::{Scope, MAX_REPLAY_RATE};
use crate::history::now_micros;
use crate::history::store::{JobState, ReplayJob};

/// The body of `POST /v1/replays`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ReplayRequest {
    /// Only this source.
    source: Option<String>,
    /// Only this event type.
    #[serde(rename = "type")]
    event_type: Option<String>,
    /// RFC 3339 lower bound.
    since: Option<String>,
    /// RFC 3339 upper bound (exclusive).
    until: Option<String>,
    /// Deduplication key.
    dedup_key: Option<String>,
    /// Verification outcome.
    verified: Option<bool>,
    /// `<pointer>:<value>` conditions, all of which must match.
    json: Vec<String>,
    /// Word or phrase in the body.
    q: Option<String>,
    /// Count only.
    dry_run: bool,
    /// Topic to publish to instead of each source's own.
    topic: Option<String>,
    /// Events per second.
    rate: Option<u32>,
}

impl ReplayRequest {
    /// The filters as the list route's parameters.
    fn pairs(&self) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        let mut add = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                pairs.push((name.to_owned(), value));
            }
        };
        add("source", self.source.clone());
        add("type", self.event_type.clone());
        add("since", self.since.clone());
        add("until", self.until.clone());
        add("dedup_key", self.dedup_key.clone());
        add("verified", self.verified.map(|v| v.to_string()));
        add("q", self.q.clone());
        pairs.extend(self.json.iter().map(|j| ("json".to_owned(), j.clone())));
        pairs
    }
}

/// `POST /v1/replays`.
pub(crate) async fn create(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Json<ReplayRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let grant = state.auth().authorize(&headers, Scope::Replay)?;
    let Json(request) = body.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    let mut filter = params::parse_pairs(request.pairs())?.resolve(&grant)?;
    let now = now_micros();
    // Events indexed after the job starts are not part of it.
    filter.until = Some(filter.until.map_or(now, |until| until.min(now)));
    let rate = request.rate.unwrap_or(state.config().query.replay_rate);
    if !(1..=MAX_REPLAY_RATE).contains(&rate) {
        return Err(ApiError::InvalidRequest(format!(
            "`rate` must be from 1 to {MAX_REPLAY_RATE} events per second"
        )));
    }
    if let Some(topic) = &request.topic {
        if !state.config().query.replay_topics.contains(topic) {
            return Err(ApiError::TopicNotAllowed(topic.clone()));
        }
    }
    let matched = state.store().count(&filter).await?;
    if request.dry_run {
        return Ok(Json(json!({ "dry_run": true, "matched": matched })).into_response());
    }
    let job = ReplayJob {
        id: uuid::Uuid::now_v7().to_string(),
        state: JobState::Running,
        filter,
        topic: request.topic,
        rate,
        matched,
        published: 0,
        failed: 0,
        after: None,
        created_at: now,
        updated_at: now,
    };
    state.store().create_job(&job).await?;
    state.jobs_wakeup().notify_one();
    tracing::info!(job = %job.id, matched, rate, "replay job created");
    let location = format!("/v1/replays/{}", job.id);
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(view(&job))).into_response())
}

/// `GET /v1/replays/{id}`.
pub(crate) async fn progress(
    State(state): State<ApiState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let grant = state.auth().authorize(&headers, Scope::Replay)?;
    let Ok(Path(id)) = id else {
        return Err(ApiError::JobNotFound);
    };
    let job = state.store().job(&id).await?.ok_or(ApiError::JobNotFound)?;
    if !visible(&grant, &job) {
        return Err(ApiError::JobNotFound);
    }
    Ok(Json(view(&job)).into_response())
}

/// A restricted token sees only jobs confined to its sources.
fn visible(grant: &Grant, job: &ReplayJob) -> bool {
    match (grant.visible_sources(None), &job.filter.sources) {
        (Ok(None), _) => true,
        (Ok(Some(allowed)), Some(sources)) => sources.iter().all(|s| allowed.contains(s)),
        _ => false,
    }
}

/// A job as JSON.
fn view(job: &ReplayJob) -> serde_json::Value {
    json!({
        "id": job.id,
        "state": job.state,
        "matched": job.matched,
        "published": job.published,
        "failed": job.failed,
        "remaining": job.matched.saturating_sub(job.published + job.failed),
        "topic": job.topic,
        "rate": job.rate,
        "created_at": rfc3339(job.created_at),
        "updated_at": rfc3339(job.updated_at),
    })
}
