//! `GET /v1/reconcile` (read scope): per source with `[sources.reconcile]`
//! (those the token may see), its settings and the report of its last run,
//! whichever replica ran it (reports live in the history store).

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;
use super::ApiState;
use crate::config::Scope;

/// `GET /v1/reconcile`: `{"sources": [{"source", "provider", ..., "last_run": {...} | null}]}`.
pub(crate) async fn status(State(state): State<ApiState>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let grant = state.auth().authorize(&headers, Scope::Read)?;
    if let Some(name) = uri.query().and_then(|q| q.split('&').find(|p| !p.is_empty())) {
        let name = name.split('=').next().unwrap_or_default();
        return Err(ApiError::UnknownParameter(name.to_owned()));
    }
    let runs = state.store().reconcile_runs().await?;
    let visible = grant.visible_sources(None)?;
    let sources: Vec<Value> = crate::reconcile::reconciled_sources(state.config())
        .filter(|s| visible.as_ref().is_none_or(|v| v.contains(&s.name)))
        .map(|source| {
            let settings = source.reconcile.as_ref().expect("filtered on reconcile");
            let last_run = runs
                .iter()
                .find(|(name, _)| *name == source.name)
                .and_then(|(_, report)| serde_json::from_str::<Value>(report).ok());
            json!({
                "source": source.name,
                "provider": source.verify.as_str(),
                "api": settings.api_for(source.verify),
                "hook": settings.hook,
                "interval_seconds": settings.interval.as_secs(),
                "lookback_seconds": settings.lookback.as_secs(),
                "dry_run": settings.dry_run,
                "last_run": last_run,
            })
        })
        .collect();
    Ok(Json(json!({ "sources": sources })).into_response())
}
