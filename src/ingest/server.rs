//! The webhook listener: the shared accept loop (`crate::listener`: connection
//! limits, HTTP/1.1, header timeout, graceful shutdown) serving the ingest
//! pipeline, with the request head checked against its exact bound.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use hyper::body::Body;
use hyper::service::service_fn;
use tokio::net::TcpListener;

use super::answer::IngestBody;
use super::error::IngestError;
use super::pipeline::Ingest;
use crate::listener::{self, Limits, MAX_HEADER_BYTES};
use crate::shutdown::Stop;
use crate::telemetry::names;

/// Serves webhooks on `listener` until `shutdown` turns true, then drains.
pub async fn serve(listener: TcpListener, ingest: Arc<Ingest>, limits: Limits, shutdown: Stop) {
    tokio::spawn(ingest.clone().report_in_flight(shutdown.clone()));
    let make_service = move |peer: SocketAddr| {
        let ingest = ingest.clone();
        service_fn(move |request| {
            let ingest = ingest.clone();
            // Boxed: hyper moves each request's future into its connection's
            // slot, and the pipeline's future is kilobytes; a box is a pointer.
            Box::pin(async move { Ok::<_, Infallible>(answer(ingest, peer, request).await) })
        })
    };
    listener::serve(listener, "ingest", limits, make_service, shutdown).await;
}

/// Refuses a request head over [`MAX_HEADER_BYTES`]; hands everything else to the pipeline.
async fn answer<B>(ingest: Arc<Ingest>, peer: SocketAddr, request: Request<B>) -> Response<IngestBody>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if head_bytes(request.headers()) <= MAX_HEADER_BYTES {
        return ingest.handle(peer, request).await;
    }
    let error = IngestError::HeadersTooLarge {
        limit: MAX_HEADER_BYTES,
    };
    metrics::counter!(names::REQUESTS, "source" => names::UNKNOWN_SOURCE, "outcome" => error.outcome()).increment(1);
    let mut response = error.into_response();
    // Whoever sends this much is not a webhook provider: do not keep the connection.
    response
        .headers_mut()
        .insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
    response
}

/// Bytes the headers took on the wire (name, ": ", value, CRLF).
fn head_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_bytes_counts_names_values_and_separators() {
        let mut headers = HeaderMap::new();
        headers.insert("x-a", "bc".parse().unwrap());
        headers.append("x-a", "d".parse().unwrap());
        assert_eq!(head_bytes(&headers), (3 + 2 + 4) + (3 + 1 + 4));
    }
}
