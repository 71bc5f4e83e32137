//! `POST /v1/events/{id}/replay`: publishes the stored event again (see
//! `history::replays`: same id, marked as a replay, to the topic the event
//! was first written to, keyed and formatted as the source is configured now). 202 only once the broker has acknowledged;
//! 503 with `Retry-After` and the publish error's code otherwise. The
//! indexer sees the replayed record, but the id is already stored: still
//! one row. An event whose body was kept out of its record (claim check)
//! is replayed as it was published: with the reference.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::error::ApiError;
use super::{events, ApiState};
use crate::config::Scope;
use crate::history::replays::{republish, ReplayError};
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
    let ack = republish(state.store(), state.publisher(), state.config(), &event, None)
        .await
        .map_err(|error| match error {
            ReplayError::Publish(error) => ApiError::Publish(error),
            ReplayError::Unreadable(detail) => ApiError::Internal(detail),
            ReplayError::BodyMissing(_) => ApiError::BodyNotFound,
            ReplayError::Store(error) => ApiError::Store(error),
        })?;
    let body = json!({
        "id": event.summary.id,
        "topic": ack.topic,
        "partition": ack.partition,
        "offset": ack.offset,
        "replay": true,
    });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}
