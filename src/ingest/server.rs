//! The webhook listener: accepts connections (at most `max_connections`, and
//! at most `max_connections_per_ip` from one client), serves HTTP/1.1 with a
//! header read timeout and bounded headers, and on shutdown stops accepting
//! and lets in-flight requests finish (hyper-util's graceful shutdown).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use hyper::body::Body;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

use super::answer::IngestBody;
use super::connections::{refuse, PerClientConnections};
use super::error::IngestError;
use super::pipeline::Ingest;
use crate::telemetry::names;

/// Largest request head (header names and values). hyper's read buffer is
/// capped at this size too, but may take in up to about twice as much before
/// it notices, so the exact bound is checked once the head is parsed.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Connection-level limits of the listener.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Most open connections.
    pub max_connections: usize,
    /// Most open connections from one client address (IPv4, or IPv6 /64).
    pub max_connections_per_ip: usize,
    /// Time a client has to send the request headers.
    pub header_timeout: Duration,
    /// How long shutdown waits for in-flight requests.
    pub drain_timeout: Duration,
}

/// Serves webhooks on `listener` until `shutdown` turns true, then drains.
pub async fn serve(
    listener: TcpListener,
    ingest: Arc<Ingest>,
    limits: ServerLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let per_client = PerClientConnections::new(limits.max_connections_per_ip);
    let graceful = GracefulShutdown::new();
    let builder = http_builder(&limits);
    tokio::spawn(ingest.clone().report_in_flight(shutdown.clone()));
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.expect("the connection semaphore is never closed"),
            _ = crate::shutdown::stopped(&mut shutdown) => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = accept(&listener) => accepted,
            _ = crate::shutdown::stopped(&mut shutdown) => break,
        };
        let _ = stream.set_nodelay(true);
        let Some(slot) = per_client.try_acquire(peer.ip()) else {
            metrics::counter!(names::CONNECTIONS_REFUSED).increment(1);
            tokio::spawn(async move {
                refuse(stream).await;
                drop(permit);
            });
            continue;
        };
        let ingest = ingest.clone();
        let service = service_fn(move |request| {
            let ingest = ingest.clone();
            // Boxed: hyper moves each request's future into its connection's
            // slot, and the pipeline's future is kilobytes; a box is a pointer.
            Box::pin(async move { Ok::<_, Infallible>(answer(ingest, peer, request).await) })
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _held = (slot, permit);
            metrics::gauge!(names::CONNECTIONS_OPEN).increment(1.0);
            let _ = connection.await;
            metrics::gauge!(names::CONNECTIONS_OPEN).decrement(1.0);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("webhook connections still open after the drain timeout");
    }
}

fn http_builder(limits: &ServerLimits) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEADER_BYTES)
        // A client that shuts down its side after sending still gets its answer.
        .half_close(true)
        .keep_alive(true);
    builder
}

/// The next connection; errors (out of file descriptors and the like) back off instead of spinning.
async fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
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
