//! `POST /v1/events/{id}/replay`: rebuilds the original envelope from the
//! store (the row keeps every envelope field losslessly), marks it as a
//! replay (envelope field and `hookgate-replay: true` record header) and
//! publishes it with the same id to the source's topic and key as
//! configured now. 202 only once the broker has acknowledged; 503 with
//! `Retry-After` and the publish error's code otherwise. The indexer sees
//! the replayed record, but the id is already stored: still one row.
//! An event whose body was kept out of its record (claim check) is replayed
//! as it was published: with the reference, the body staying in the store.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::error::ApiError;
use super::{events, ApiState};
use crate::config::{Config, Scope};
use crate::envelope::{body_location, record_key, BodyRef};
use crate::history::store::EventRecord;
use crate::telemetry::names;

/// `POST /v1/events/{id}/replay`.
pub(crate) async fn replay(
    State(state): State<ApiState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let grant = state.auth().authorize(&headers, Scope::Replay)?;
    let result = publish(&state, events::find(&state, &grant, id).await).await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(ApiError::Publish(error)) => error.code(),
        Err(ApiError::EventNotFound) => "not_found",
        Err(ApiError::Forbidden(_)) => "forbidden",
        Err(_) => "error",
    };
    metrics::counter!(names::REPLAYS, "result" => outcome).increment(1);
    result
}

async fn publish(state: &ApiState, event: Result<EventRecord, ApiError>) -> Result<Response, ApiError> {
    let event = event?;
    let mut envelope = event
        .to_envelope()
        .map_err(|e| ApiError::Internal(format!("stored headers of {}: {e}", event.summary.id)))?;
    envelope.replay = true;
    if event.body_stored_apart() {
        envelope.body_ref = Some(body_ref(state, &event.summary.id).await?);
    }
    let config = state.config();
    let (topic, key) = destination(config, &event);
    let ack = state
        .publisher()
        .publish_envelope(&envelope, &topic, key.as_deref(), config.ingest.deadline)
        .await
        .map_err(ApiError::Publish)?;
    tracing::info!(id = %event.summary.id, topic = %ack.topic, partition = ack.partition, offset = ack.offset, "event replayed");
    let body = json!({
        "id": event.summary.id,
        "topic": ack.topic,
        "partition": ack.partition,
        "offset": ack.offset,
        "replay": true,
    });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// The reference to a body kept out of the record, as ingest wrote it.
async fn body_ref(state: &ApiState, id: &str) -> Result<BodyRef, ApiError> {
    let digest = state.store().body_digest(id).await?.ok_or(ApiError::BodyNotFound)?;
    Ok(BodyRef {
        length: digest.length,
        sha256: digest.sha256.into(),
        location: body_location(id),
    })
}

/// Topic and record key of a replay: as the source is configured now, or
/// where the event was read with its id as key when the source is gone.
fn destination(config: &Config, event: &EventRecord) -> (String, Option<Vec<u8>>) {
    let summary = &event.summary;
    let Some(source) = config.sources.iter().find(|s| s.name == summary.source) else {
        return (summary.provenance.topic.clone(), Some(summary.id.as_bytes().to_vec()));
    };
    let dedup_key = summary.dedup_key.as_deref().unwrap_or_default();
    let key = record_key(&source.key, &summary.id, dedup_key).map(<[u8]>::to_vec);
    (config.topic_for(source).to_owned(), key)
}
