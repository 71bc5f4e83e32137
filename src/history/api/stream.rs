//! `GET /v1/events/stream`: the live tail as server-sent events. Each newly
//! indexed event that passes the filters is sent as `event: webhook` (id:
//! the event id, data: the list item JSON). A client too slow for the
//! bounded live feed gets `event: lagged` with `{"skipped": n}` instead of
//! the events it missed; nothing is buffered for it beyond the feed's
//! bound. Heartbeat comments keep idle connections open through proxies.
//! At most `query.max_streams` streams are open at once (503
//! `too_many_streams` beyond). Streams end when the server shuts down.
//!
//! With `include=body` each event also carries its body (`body_encoding`
//! "utf8" or "base64", `body`), read from the store, up to
//! [`STREAM_BODY_LIMIT`] bytes; a larger body is left out with
//! `"body_omitted": "too_large"` (fetch it by id).

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{future, stream, StreamExt as _};
use serde_json::json;
use tokio::sync::OwnedSemaphorePermit;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;

use super::error::ApiError;
use super::view::{body_text, StreamView, SummaryView};
use super::{params, ApiState};
use crate::config::Scope;
use crate::history::shutdown_requested;
use crate::history::store::{EventFilter, EventSummary, Store};
use crate::telemetry::names;

/// Largest body a live tail with `include=body` carries.
pub(crate) const STREAM_BODY_LIMIT: i64 = 64 * 1024;

/// An open stream: holds one of the `query.max_streams` slots and counts in
/// `hookgate_stream_clients` for as long as it lives.
struct OpenStream {
    /// The stream's slot.
    _slot: OwnedSemaphorePermit,
}

impl OpenStream {
    /// Takes a slot, or 503 `too_many_streams` when none is free.
    fn open(state: &ApiState) -> Result<Self, ApiError> {
        let slot = state
            .streams()
            .try_acquire_owned()
            .map_err(|_| ApiError::TooManyStreams)?;
        metrics::gauge!(names::STREAM_CLIENTS).increment(1.0);
        Ok(OpenStream { _slot: slot })
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
    let request = params::parse_stream(&uri)?;
    let filter = request.filter.resolve(&grant)?;
    let open = OpenStream::open(&state)?;
    let receiver = state.live().subscribe();
    let bodies = request.include_body.then(|| state.store().clone());
    let filter = Arc::new(filter);
    let events = BroadcastStream::new(receiver).filter_map(move |item| {
        let _counted = &open;
        let (filter, bodies) = (filter.clone(), bodies.clone());
        async move { to_sse(item, &filter, bodies.as_ref()).await }
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

/// The SSE event for one feed item, or none when the filter drops it;
/// with `bodies`, the event's body is read from that store.
async fn to_sse(
    item: Result<Arc<EventSummary>, BroadcastStreamRecvError>,
    filter: &EventFilter,
    bodies: Option<&Store>,
) -> Option<Event> {
    match item {
        Ok(event) if filter.matches(&event) => {
            let webhook = Event::default().event("webhook");
            // The indexer stores only UUID ids; a row from before it checked
            // them must not make the SSE encoder panic (it refuses CR, LF and NUL).
            let webhook = if event.id.contains(['\r', '\n', '\0']) {
                webhook
            } else {
                webhook.id(event.id.clone())
            };
            match bodies {
                None => webhook.json_data(SummaryView::from(&*event)).ok(),
                Some(store) => webhook.json_data(with_body(store, &event).await).ok(),
            }
        }
        Ok(_) => None,
        Err(BroadcastStreamRecvError::Lagged(skipped)) => Some(
            Event::default()
                .event("lagged")
                .data(json!({ "skipped": skipped }).to_string()),
        ),
    }
}

/// The stream view of `event` with its body, or the reason it is left out.
async fn with_body<'a>(store: &Store, event: &'a EventSummary) -> StreamView<'a> {
    let mut view = StreamView {
        summary: SummaryView::from(event),
        body_encoding: None,
        body: None,
        body_omitted: None,
    };
    if event.body_size > STREAM_BODY_LIMIT {
        view.body_omitted = Some("too_large");
        return view;
    }
    match store.get(&event.id).await {
        Ok(Some(record)) => {
            let (encoding, body) = body_text(&record.body);
            view.body_encoding = Some(encoding);
            view.body = Some(body);
        }
        Ok(None) => view.body_omitted = Some("not_found"),
        Err(error) => {
            tracing::warn!(%error, id = %event.id, "live tail cannot read a body");
            view.body_omitted = Some("unavailable");
        }
    }
    view
}
