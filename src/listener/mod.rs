//! The accept loop every hookgate listener runs (webhooks, query API,
//! metrics): at most `max_connections` open connections (more wait in the
//! kernel backlog), at most `max_connections_per_ip` from one client address
//! (more are answered 429 and closed), HTTP/1.1 with a header read timeout and
//! a bounded request head, and on shutdown no new connections while the open
//! ones finish (hyper-util's graceful shutdown, bounded by a drain timeout).
//!
//! - `clients`: slots per client address (open connections here, requests
//!   in flight in ingest) and the refusal of a connection beyond them.

mod clients;

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::HttpService;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use metrics::{Counter, Gauge};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::shutdown::Stop;
use crate::telemetry::names;

use clients::Refusals;
pub(crate) use clients::{ClientSlot, PerClientSlots, MAX_LINGERING};

/// Largest request head (header names and values) hyper buffers. It may take
/// in up to about twice as much before it notices; a listener that needs the
/// exact bound checks the parsed head against this value too.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Connection-level limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most open connections.
    pub max_connections: usize,
    /// Most open connections from one client address (IPv4, or IPv6 /64).
    pub max_connections_per_ip: usize,
    /// Time a client has to send the request headers (also the longest idle keep-alive).
    pub header_timeout: Duration,
    /// How long shutdown waits for the connections still open.
    pub drain_timeout: Duration,
}

/// The listener's connection metrics, labelled with its name once.
struct ConnectionMetrics {
    /// `hookgate_connections_open{listener}`.
    open: Gauge,
    /// `hookgate_connections_refused_total{listener}`.
    refused: Counter,
}

impl ConnectionMetrics {
    fn new(name: &'static str) -> Self {
        Self {
            open: metrics::gauge!(names::CONNECTIONS_OPEN, "listener" => name),
            refused: metrics::counter!(names::CONNECTIONS_REFUSED, "listener" => name),
        }
    }
}

/// Serves HTTP/1.1 on `listener` until `shutdown` turns true, then drains.
/// `make_service` builds the service of each accepted connection from the
/// client's address; `name` labels the metrics and log lines ("ingest", "query", "metrics").
pub async fn serve<M, S>(
    listener: TcpListener,
    name: &'static str,
    limits: Limits,
    mut make_service: M,
    mut shutdown: Stop,
) where
    M: FnMut(SocketAddr) -> S,
    S: HttpService<Incoming> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    S::ResBody: Send + 'static,
    <S::ResBody as Body>::Data: Send,
    <S::ResBody as Body>::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let per_client = PerClientSlots::new(limits.max_connections_per_ip);
    let refusals = Refusals::default();
    let metrics = ConnectionMetrics::new(name);
    let graceful = GracefulShutdown::new();
    let builder = http_builder(&limits);
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.expect("the connection semaphore is never closed"),
            _ = crate::shutdown::stopped(&mut shutdown) => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = accept(&listener, name) => accepted,
            _ = crate::shutdown::stopped(&mut shutdown) => break,
        };
        let _ = stream.set_nodelay(true);
        let Some(slot) = per_client.try_acquire(peer.ip()) else {
            // The refusal does not hold a listener-wide slot: a client over its
            // own limit cannot take the others' connections while it is answered.
            drop(permit);
            metrics.refused.increment(1);
            refusals.refuse(stream);
            continue;
        };
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), make_service(peer)));
        let open = metrics.open.clone();
        tokio::spawn(async move {
            let _held = (slot, permit);
            open.increment(1.0);
            let _ = connection.await;
            open.decrement(1.0);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(listener = name, "connections still open after the drain timeout");
    }
}

fn http_builder(limits: &Limits) -> http1::Builder {
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
async fn accept(listener: &TcpListener, name: &'static str) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(error) => {
                tracing::warn!(listener = name, %error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests;
