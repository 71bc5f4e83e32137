//! The webhook listener: accepts connections (at most `max_connections`, and
//! at most `max_connections_per_ip` from one client), serves HTTP/1.1 with a
//! header read timeout, and on shutdown stops accepting and lets in-flight
//! requests finish.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use super::connections::{refuse, PerClientConnections};
use super::handler::Ingest;
use crate::telemetry::names;

/// Most request headers accepted on one request.
const MAX_HEADERS: usize = 100;
/// Largest buffer for request headers.
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
pub async fn serve(listener: TcpListener, ingest: Arc<Ingest>, limits: ServerLimits, mut shutdown: watch::Receiver<bool>) {
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let per_client = PerClientConnections::new(limits.max_connections_per_ip);
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_headers(MAX_HEADERS)
        .max_buf_size(MAX_HEADER_BYTES)
        .keep_alive(true);
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.expect("the connection semaphore is never closed"),
            _ = crate::shutdown::stopped(&mut shutdown) => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = crate::shutdown::stopped(&mut shutdown) => break,
        };
        let _ = stream.set_nodelay(true);
        let Some(client_slot) = per_client.try_acquire(peer.ip()) else {
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
            async move { Ok::<_, Infallible>(ingest.handle(request, peer).await) }
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            metrics::gauge!(names::CONNECTIONS_OPEN).increment(1.0);
            let _ = connection.await;
            metrics::gauge!(names::CONNECTIONS_OPEN).decrement(1.0);
            drop((client_slot, permit));
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown()).await.is_err() {
        tracing::warn!("some webhook connections were still open after the drain timeout");
    }
}
