//! The webhook listener: accepts connections (at most `max_connections`, and
//! at most `max_connections_per_ip` from one client), serves HTTP/1.1 with a
//! header read timeout and bounded headers, and on shutdown stops accepting
//! and lets in-flight requests finish.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::{self, Either};
use futures::FutureExt as _;
use http::{HeaderMap, Request, Response};
use hyper::body::Body;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use super::connections::{refuse, ClientSlot, PerClientConnections};
use super::drain::Drain;
use super::error::{IngestBody, IngestError};
use super::handler::{Ingest, IngestConnection};
use super::sleeps::ConnectionTimer;
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
    let drain = Drain::default();
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
        let state = ingest.connection(peer);
        let service = service_fn(move |request| {
            // Boxed: hyper moves each request's future into its connection's slot,
            // which has gone cold since the connection's previous request; the
            // pipeline's future is most of a kilobyte, a box is a pointer (and
            // mimalloc hands back the block the last request on this thread freed).
            Box::pin(answer(&state, request).map(Ok::<_, Infallible>))
        });
        let connection = builder
            .clone()
            .timer(ConnectionTimer::default())
            .serve_connection(TokioIo::new(stream), service);
        let connection = drain.watch(connection);
        tokio::spawn(async move {
            let _held: (ClientSlot, OwnedSemaphorePermit) = (slot, permit);
            metrics::gauge!(names::CONNECTIONS_OPEN).increment(1.0);
            let _ = connection.await;
            metrics::gauge!(names::CONNECTIONS_OPEN).decrement(1.0);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain_timeout, drain.shutdown())
        .await
        .is_err()
    {
        let open = drain.open_connections();
        tracing::warn!(open, "webhook connections still open after the drain timeout");
    }
}

fn http_builder(limits: &ServerLimits) -> http1::Builder {
    let mut builder = http1::Builder::new();
    // Headers per request stay at hyper's default bound, 100 (431 beyond it):
    // setting it explicitly, even to 100, makes hyper fill its parse array on every request.
    // The timer hyper needs for the header read timeout is set per connection (`ConnectionTimer`).
    builder
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEADER_BYTES)
        // A sender that hangs up mid-request cannot cancel its webhook: the
        // publish runs to the broker's verdict either way (see the handler's
        // `FinishOnDrop`). So hyper need not watch for EOF while the request is
        // being answered, which costs a read call and a fresh read buffer per request.
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

/// Refuses a request head over [`MAX_HEADER_BYTES`]; hands everything else to
/// the pipeline. (A function returning a future rather than an `async fn`,
/// which would hold the request twice and the pipeline's state besides.)
fn answer<B>(
    connection: &Arc<IngestConnection>,
    request: Request<B>,
) -> impl Future<Output = Response<IngestBody>> + 'static
where
    B: Body<Data = Bytes> + Unpin + 'static,
{
    if head_bytes(request.headers()) > MAX_HEADER_BYTES {
        let error = IngestError::HeadersTooLarge {
            limit: MAX_HEADER_BYTES,
        };
        metrics::counter!(names::REQUESTS, "source" => names::UNKNOWN_SOURCE, "outcome" => error.outcome())
            .increment(1);
        let mut response = error.into_response();
        // Whoever sends this much is not a webhook provider: do not keep the connection.
        response
            .headers_mut()
            .insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
        return Either::Left(future::ready(response));
    }
    Either::Right(connection.handle(request))
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
