//! Admission: which configured source a request names, and whether it may
//! go further: the per-source and per-client quotas, and a slot among the
//! `ingest.max_in_flight` requests being processed. All of it is decided
//! before a byte of the body is read.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::{Method, Request};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::IngestError;
use super::extract::client_ip;
use super::source::Source;
use crate::ratelimit::RateLimiter;
use crate::telemetry::SourceMetrics;

/// A configured source with its metric series.
#[derive(Debug)]
pub(super) struct Route {
    /// The prepared source.
    pub(super) source: Arc<Source>,
    /// Its series, labelled with its name.
    pub(super) metrics: SourceMetrics,
}

/// A request allowed in: who sent it, and its in-flight slot, held until
/// the broker's verdict is settled.
#[derive(Debug)]
pub(super) struct Admitted {
    /// The client's address (the socket peer, or the trusted proxy's header).
    pub(super) client: IpAddr,
    /// The slot among `ingest.max_in_flight`; freed when dropped.
    _slot: OwnedSemaphorePermit,
}

/// The checks a request passes before its body is read.
#[derive(Debug)]
pub(super) struct Gate {
    /// Configured sources by name.
    pub(super) routes: HashMap<String, Arc<Route>>,
    /// Per-source and per-client quotas.
    pub(super) limiter: Arc<RateLimiter>,
    /// Requests being processed; a request finding none free is answered 503 at once.
    pub(super) in_flight: Arc<Semaphore>,
    /// Trusted proxy header carrying the client address.
    pub(super) client_ip_header: Option<String>,
}

impl Gate {
    /// The configured source a request names; only POST is accepted, and GET
    /// for a source whose provider sends a GET handshake (Meta).
    pub(super) fn route<B>(&self, request: &Request<B>) -> Result<Arc<Route>, IngestError> {
        let name = request
            .uri()
            .path()
            .strip_prefix("/webhooks/")
            .ok_or(IngestError::NotFound)?;
        let route = self.routes.get(name).ok_or(IngestError::UnknownSource)?;
        let handshake = request.method() == Method::GET && route.source.verifier.answers_get();
        if request.method() != Method::POST && !handshake {
            return Err(IngestError::MethodNotAllowed);
        }
        Ok(route.clone())
    }

    /// Checks both quotas and takes an in-flight slot.
    pub(super) fn admit<B>(
        &self,
        route: &Route,
        peer: SocketAddr,
        request: &Request<B>,
    ) -> Result<Admitted, IngestError> {
        let client = client_ip(peer, request.headers(), self.client_ip_header.as_deref());
        self.limiter.check(&route.source.name, client).map_err(|limited| {
            route.metrics.rate_limited(limited.scope.as_str());
            IngestError::RateLimited(limited)
        })?;
        let slot = self
            .in_flight
            .clone()
            .try_acquire_owned()
            .map_err(|_| IngestError::Overloaded)?;
        Ok(Admitted { client, _slot: slot })
    }
}
