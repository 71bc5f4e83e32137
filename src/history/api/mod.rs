//! The query API (axum): routes, shared state, and the layers every request
//! goes through (a loopback host required while no token is configured,
//! tokens in URLs refused, duration measured by route template).
//!
//! - `events`: list, one event, raw body.
//! - `stream`: live tail (SSE).
//! - `replay`: publish an event again.
//! - `reconcile`: each reconciled source's last run.
//! - `openapi`: the OpenAPI document.
//! - `host`: the DNS rebinding check of an open API.
//! - `auth`, `params`, `cursor`, `view`, `error`: what the handlers share.

mod auth;
mod cursor;
mod error;
mod events;
mod host;
mod openapi;
mod params;
mod reconcile;
mod replay;
mod stream;
mod view;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use tokio::sync::{watch, Semaphore};

use super::live::LiveFeed;
use super::store::Store;
use crate::config::Config;
use crate::publish::Publisher;
use crate::telemetry::names;

pub use error::ApiError;
pub use openapi::openapi;
pub use params::{DEFAULT_LIMIT, MAX_LIMIT};

use auth::Authenticator;

/// Default time between heartbeat comments on the live tail.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);

/// What the handlers share. Clones are cheap.
#[derive(Clone)]
pub struct ApiState {
    /// The shared parts.
    inner: Arc<Inner>,
    /// Time between heartbeats on the live tail.
    heartbeat: Duration,
}

/// The parts of [`ApiState`].
struct Inner {
    /// The history store.
    store: Store,
    /// Configured tokens.
    auth: Authenticator,
    /// Newly indexed events, for the live tail.
    live: LiveFeed,
    /// Publishes replays.
    publisher: Publisher,
    /// Sources (replay topic and key) and the ingest deadline (replay timeout).
    config: Arc<Config>,
    /// Turns true at shutdown; ends live tails.
    shutdown: watch::Receiver<bool>,
    /// One permit per open live tail (`query.max_streams`).
    streams: Arc<Semaphore>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("store", &self.inner.store)
            .field("auth", &self.inner.auth)
            .finish_non_exhaustive()
    }
}

impl ApiState {
    /// State over `store`, with the tokens and sources of `config`.
    pub fn new(
        store: Store,
        config: Arc<Config>,
        publisher: Publisher,
        live: LiveFeed,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let auth = Authenticator::from_config(&config.query.tokens);
        let streams = Arc::new(Semaphore::new(config.query.max_streams));
        let inner = Inner {
            store,
            auth,
            live,
            publisher,
            config,
            shutdown,
            streams,
        };
        Self {
            inner: Arc::new(inner),
            heartbeat: HEARTBEAT_INTERVAL,
        }
    }

    /// The same state with another heartbeat interval (tests).
    pub fn with_heartbeat(self, heartbeat: Duration) -> Self {
        Self { heartbeat, ..self }
    }

    /// The history store.
    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }
    /// The configured tokens.
    pub(crate) fn auth(&self) -> &Authenticator {
        &self.inner.auth
    }
    /// The live feed.
    pub(crate) fn live(&self) -> &LiveFeed {
        &self.inner.live
    }
    /// The replay publisher.
    pub(crate) fn publisher(&self) -> &Publisher {
        &self.inner.publisher
    }
    /// The configuration (sources, ingest deadline).
    pub(crate) fn config(&self) -> &Config {
        &self.inner.config
    }
    /// Turns true at shutdown.
    pub(crate) fn shutdown(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.clone()
    }
    /// Time between live-tail heartbeats.
    pub(crate) fn heartbeat(&self) -> Duration {
        self.heartbeat
    }
    /// The live-tail slots.
    pub(crate) fn streams(&self) -> Arc<Semaphore> {
        self.inner.streams.clone()
    }
}

/// Every route, by path template; the router is built from this table and
/// the OpenAPI test walks it.
fn routes() -> Vec<(&'static str, MethodRouter<ApiState>)> {
    vec![
        ("/v1/events", get(events::list)),
        ("/v1/events/stream", get(stream::stream)),
        ("/v1/events/{id}", get(events::get)),
        ("/v1/events/{id}/body", get(events::body)),
        ("/v1/events/{id}/replay", post(replay::replay)),
        ("/v1/reconcile", get(reconcile::status)),
        ("/v1/openapi.json", get(openapi::document)),
    ]
}

/// The path templates the router serves.
pub fn route_paths() -> Vec<&'static str> {
    routes().into_iter().map(|(path, _)| path).collect()
}

/// The query API router over `state`.
pub fn router(state: ApiState) -> Router {
    let mut router = Router::new();
    for (path, method_router) in routes() {
        router = router.route(path, method_router);
    }
    router
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn(observe_duration))
        .layer(middleware::from_fn(auth::reject_token_in_url))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            host::require_loopback_host,
        ))
        .with_state(state)
}

/// Records `hookgate_query_duration_seconds{route}` (the template, so the
/// label stays bounded; "unmatched" for everything else).
async fn observe_duration(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    metrics::histogram!(names::QUERY_DURATION, "route" => route).record(started.elapsed().as_secs_f64());
    response.into_response()
}
