//! `GET /v1/events/stream`: the live tail as server-sent events. Each newly
//! indexed event that passes the filters is sent as `event: webhook` (id:
//! the event id, data: the list item JSON). A client too slow for the
//! bounded live feed gets `event: lagged` with `{"skipped": n}` instead of
//! the events it missed; nothing is buffered for it beyond the feed's
//! bound. Heartbeat comments keep idle connections open through proxies.
//! Streams end when the server shuts down.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{future, stream, StreamExt as _};
use serde_json::json;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;

use super::error::ApiError;
use super::view::SummaryView;
use super::{params, ApiState};
use crate::config::Scope;
use crate::history::shutdown_requested;
use crate::history::store::{EventFilter, EventSummary};
use crate::telemetry::names;

/// Counts an open stream in `hookgate_stream_clients` for as long as it lives.
struct OpenStream;

impl OpenStream {
    fn new() -> Self {
        metrics::gauge!(names::STREAM_CLIENTS).increment(1.0);
        OpenStream
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        metrics::gauge!(names::STREAM_CLIENTS).decrement(1.0);
    }
}

/// `GET /v1/events/stream`.
pub(crate) async fn stream(State(state): State<ApiState>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let grant = state.auth().authorize(&headers, Scope::Read)?;
    let filter = params::parse_stream(&uri)?.resolve(&grant)?;
    let receiver = state.live().subscribe();
    let open = OpenStream::new();
    let events = BroadcastStream::new(receiver).filter_map(move |item| {
        let _counted = &open;
        future::ready(to_sse(item, &filter))
    });
    // A first comment gets the response headers out at once: the client then
    // knows it is subscribed.
    let opening = stream::once(future::ready(Event::default().comment("connected")));
    let mut shutdown = state.shutdown();
    let ended = async move { shutdown_requested(&mut shutdown).await };
    let body = opening.chain(events).map(Ok::<_, Infallible>).take_until(ended);
    let keep_alive = KeepAlive::new().interval(state.heartbeat()).text("heartbeat");
    Ok(Sse::new(body).keep_alive(keep_alive).into_response())
}

/// The SSE event for one feed item, or none when the filter drops it.
fn to_sse(item: Result<Arc<EventSummary>, BroadcastStreamRecvError>, filter: &EventFilter) -> Option<Event> {
    match item {
        Ok(event) if filter.matches(&event) => Event::default()
            .event("webhook")
            .id(event.id.clone())
            .json_data(SummaryView::from(&*event))
            .ok(),
        Ok(_) => None,
        Err(BroadcastStreamRecvError::Lagged(skipped)) => Some(
            Event::default()
                .event("lagged")
                .data(json!({ "skipped": skipped }).to_string()),
        ),
    }
}
