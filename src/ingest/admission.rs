//! Admission: which configured source a request names, and whether it may
//! go further: a slot among the `ingest.max_in_flight_per_client` requests
//! of its client address and among the `ingest.max_in_flight` requests being
//! processed, decided before a byte of the body is read. Quotas are charged
//! once the signature was checked ([`Gate::charge`], [`Gate::refuse`]):
//! unsigned requests cannot drain the quota of the genuine sender. Only an
//! unverified source (`verify = "none"`), which has nothing to check, is
//! charged at admission.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::{Method, Request};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::IngestError;
use super::extract::client_ip;
use super::source::Source;
use crate::listener::{ClientSlot, PerClientSlots};
use crate::ratelimit::RateLimiter;
use crate::telemetry::SourceMetrics;
use crate::verify::VerifyError;

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
    /// The slot among the client's `ingest.max_in_flight_per_client`; freed when dropped.
    _client_slot: ClientSlot,
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
    /// Requests being processed per client address; beyond the bound a 429 at once.
    pub(super) per_client: Arc<PerClientSlots>,
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

    /// Takes the client's and the listener's in-flight slots (charging the
    /// quotas first for an unverified source).
    pub(super) fn admit<B>(
        &self,
        route: &Route,
        peer: SocketAddr,
        request: &Request<B>,
    ) -> Result<Admitted, IngestError> {
        let client = client_ip(peer, request.headers(), self.client_ip_header.as_deref());
        if route.source.verifier.is_unverified() {
            self.charge(route, client)?;
        }
        let client_slot = self.per_client.try_acquire(client).ok_or_else(|| {
            route.metrics.rate_limited("client_in_flight");
            IngestError::ClientBusy
        })?;
        let slot = self
            .in_flight
            .clone()
            .try_acquire_owned()
            .map_err(|_| IngestError::Overloaded)?;
        Ok(Admitted {
            client,
            _slot: slot,
            _client_slot: client_slot,
        })
    }

    /// Charges a request that passed verification to the client's and the
    /// source's quotas (an unverified source's were charged at admission).
    pub(super) fn charge_verified(&self, route: &Route, client: IpAddr) -> Result<(), IngestError> {
        if route.source.verifier.is_unverified() {
            return Ok(());
        }
        self.charge(route, client)
    }

    /// Checks the client's and the source's quotas.
    fn charge(&self, route: &Route, client: IpAddr) -> Result<(), IngestError> {
        self.limiter.check(&route.source.name, client).map_err(|limited| {
            route.metrics.rate_limited(limited.scope.as_str());
            IngestError::RateLimited(limited)
        })
    }

    /// The answer to a request that failed verification for `reason`: 401,
    /// or 429 once its client address spent its unverified budget.
    pub(super) fn refuse(&self, route: &Route, client: IpAddr, reason: VerifyError) -> IngestError {
        match self.limiter.check_unverified(client) {
            Ok(()) => IngestError::Unauthorized(reason),
            Err(limited) => {
                route.metrics.rate_limited(limited.scope.as_str());
                IngestError::RateLimited(limited)
            }
        }
    }
}
