//! `GET /v1/events` (filtered, newest first, keyset pages),
//! `GET /v1/events/{id}` (everything about one event) and
//! `GET /v1/events/{id}/body` (the raw body with its original content type).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::auth::Grant;
use super::error::ApiError;
use super::view::{DetailView, SummaryView};
use super::{cursor, params, ApiState};
use crate::config::Scope;
use crate::history::store::{EventRecord, Position};

/// `GET /v1/events`: `{"events": [...], "next_cursor": "..." | null}`.
pub(crate) async fn list(State(state): State<ApiState>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let grant = state.auth().authorize(&headers, Scope::Read)?;
    let request = params::parse_list(&uri)?;
    let filter = request.filter.resolve(&grant)?;
    let after = request
        .cursor
        .as_deref()
        .map(|c| cursor::decode(c, &filter))
        .transpose()?;
    let limit = request.limit as usize;
    // One more than asked tells whether another page exists.
    let mut events = state.store().list(&filter, after.as_ref(), request.limit + 1).await?;
    let next_cursor = if events.len() > limit {
        events.truncate(limit);
        events.last().map(|last| cursor::encode(&Position::from(last), &filter))
    } else {
        None
    };
    let views: Vec<SummaryView<'_>> = events.iter().map(SummaryView::from).collect();
    Ok(Json(json!({ "events": views, "next_cursor": next_cursor })).into_response())
}

/// `GET /v1/events/{id}`.
pub(crate) async fn get(
    State(state): State<ApiState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let grant = state.auth().authorize(&headers, Scope::Read)?;
    let event = with_body(&state, find(&state, &grant, id).await?).await?;
    Ok(Json(DetailView::from(&event)).into_response())
}

/// `GET /v1/events/{id}/body`.
pub(crate) async fn body(
    State(state): State<ApiState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let grant = state.auth().authorize(&headers, Scope::Read)?;
    let event = with_body(&state, find(&state, &grant, id).await?).await?;
    let content_type = HeaderValue::from_str(&event.summary.content_type)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let headers = [
        (header::CONTENT_TYPE, content_type),
        // The body is whatever a sender posted: never let a browser run it.
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox")),
    ];
    Ok((headers, event.body).into_response())
}

/// The event with its body: a body kept out of the Kafka record is read from the store's bodies.
async fn with_body(state: &ApiState, mut event: EventRecord) -> Result<EventRecord, ApiError> {
    if event.body_stored_apart() {
        event.body = state
            .store()
            .body(&event.summary.id)
            .await?
            .ok_or(ApiError::BodyNotFound)?;
    }
    Ok(event)
}

/// The event `id`, if it exists and the token may see its source.
pub(crate) async fn find(
    state: &ApiState,
    grant: &Grant,
    id: Result<Path<String>, PathRejection>,
) -> Result<EventRecord, ApiError> {
    let Ok(Path(id)) = id else {
        return Err(ApiError::EventNotFound);
    };
    let event = state.store().get(&id).await?.ok_or(ApiError::EventNotFound)?;
    grant.check_source(&event.summary.source)?;
    Ok(event)
}
