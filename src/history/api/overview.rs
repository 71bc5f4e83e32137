//! What the console asks first: `GET /v1/whoami` (what the presented token
//! may do) and `GET /v1/sources/counts` (events per source over the last
//! hour, or since `since`; every configured source the token may see is
//! listed, with 0 when it received nothing).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::error::ApiError;
use super::view::rfc3339;
use super::{params, ApiState};
use crate::config::Scope;
use crate::history::now_micros;

/// The window of `GET /v1/sources/counts` without `since`.
const DEFAULT_WINDOW_MICROS: i64 = 3600 * 1_000_000;

/// `GET /v1/whoami`: `{"scopes": [...], "sources": [...] | null}`.
pub(crate) async fn whoami(State(state): State<ApiState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let grant = state.auth().authorize(&headers, Scope::Read)?;
    // The replay scope is reported as a replay would be authorised (never on an open API).
    let replay = state.auth().authorize(&headers, Scope::Replay).is_ok();
    let scopes: Vec<&str> = std::iter::once("read").chain(replay.then_some("replay")).collect();
    let sources = grant.visible_sources(None)?;
    Ok(Json(json!({ "scopes": scopes, "sources": sources })).into_response())
}

/// `GET /v1/sources/counts`: `{"since": ..., "counts": {"<source>": n}}`.
pub(crate) async fn counts(State(state): State<ApiState>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let grant = state.auth().authorize(&headers, Scope::Read)?;
    let since = params::parse_since(&uri)?.unwrap_or_else(|| now_micros() - DEFAULT_WINDOW_MICROS);
    let visible = grant.visible_sources(None)?;
    let may_see = |source: &str| visible.as_ref().is_none_or(|v| v.iter().any(|s| s == source));
    let mut counts: BTreeMap<String, u64> = state
        .config()
        .sources
        .iter()
        .filter(|s| may_see(&s.name))
        .map(|s| (s.name.clone(), 0))
        .collect();
    for (source, n) in state.store().count_by_source(since).await? {
        if may_see(&source) {
            counts.insert(source, n);
        }
    }
    Ok(Json(json!({ "since": rfc3339(since), "counts": counts })).into_response())
}
