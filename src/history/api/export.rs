//! `GET /v1/events/export`: every event matching the filters (those of the
//! list, body searches included; no `limit` or `cursor`) as NDJSON, one
//! line per event in the shape of `GET /v1/events/{id}`, newest first. The
//! store is read in keyset pages of [`EXPORT_PAGE`] events and each page is
//! written out before the next is read, so memory stays bounded by one
//! page whatever the export's size. The first page is read before the
//! answer starts, so an unreachable store is still a 503; a failure later
//! cuts the response short (the chunked body ends without its terminator,
//! which HTTP clients report as an incomplete transfer).

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use futures::stream;

use super::error::ApiError;
use super::view::DetailView;
use super::{params, ApiState};
use crate::config::Scope;
use crate::history::store::{EventFilter, EventRecord, Order, Position, Store, StoreError};

/// Events read from the store per page.
pub const EXPORT_PAGE: u32 = 64;

/// `GET /v1/events/export`.
pub(crate) async fn export(State(state): State<ApiState>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let grant = state.auth().authorize(&headers, Scope::Read)?;
    let filter = params::parse_export(&uri)?.resolve(&grant)?;
    let store = state.store().clone();
    let first = store.scan(&filter, Order::NewestFirst, None, EXPORT_PAGE).await?;
    let pages = Pages {
        store,
        filter,
        page: Some(first),
        after: None,
    };
    let body = Body::from_stream(stream::unfold(pages, Pages::next));
    let headers = [(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"))];
    Ok((headers, body).into_response())
}

/// Where an export stands.
struct Pages {
    /// The store read from.
    store: Store,
    /// The resolved filter.
    filter: EventFilter,
    /// A page read but not written yet.
    page: Option<Vec<EventRecord>>,
    /// The last event written; `None` before the first page.
    after: Option<Position>,
}

impl Pages {
    /// The next page as NDJSON, or the end.
    async fn next(mut self) -> Option<(Result<Bytes, StoreError>, Pages)> {
        let page = match self.page.take() {
            Some(page) => page,
            // An empty `after` here means the previous page was the last.
            None => {
                let after = self.after.as_ref()?;
                match self
                    .store
                    .scan(&self.filter, Order::NewestFirst, Some(after), EXPORT_PAGE)
                    .await
                {
                    Ok(page) => page,
                    Err(error) => {
                        tracing::warn!(%error, "export cut short by a store failure");
                        self.after = None;
                        return Some((Err(error), self));
                    }
                }
            }
        };
        if page.is_empty() {
            return None;
        }
        let full = page.len() == EXPORT_PAGE as usize;
        self.after = full.then(|| page.last().map(|e| Position::from(&e.summary))).flatten();
        Some((Ok(ndjson(&page)), self))
    }
}

/// One line per event.
fn ndjson(page: &[EventRecord]) -> Bytes {
    let mut out = Vec::new();
    for event in page {
        // A view of owned strings and numbers always serialises.
        if serde_json::to_writer(&mut out, &DetailView::from(event)).is_ok() {
            out.push(b'\n');
        }
    }
    Bytes::from(out)
}
