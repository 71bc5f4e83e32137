//! The metrics listener: `/metrics` (Prometheus text), `/healthz` (the
//! process is alive) and `/readyz` (every dependency this role needs
//! answers). Each dependency's check is exported as
//! `hookgate_dependency_up{dependency}` and the verdict as `hookgate_ready`,
//! evaluated at every scrape, so that an outage that takes every replica
//! out of rotation (and leaves no request to count) still shows.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use futures::future::BoxFuture;
use hyper_util::service::TowerToHyperService;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{Map, Value};
use tokio::net::TcpListener;

use super::names;
use crate::listener::Limits;
use crate::shutdown::Stop;

/// Longest a probe may take before its dependency counts as down (below the
/// 2 s timeout of the Kubernetes readiness probes in deploy/).
const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

/// The metrics listener's connection limits: Prometheus and the kubelet's
/// probes need a handful of connections; a slow or greedy client gets no more.
pub(crate) const LISTENER_LIMITS: Limits = Limits {
    max_connections: 256,
    max_connections_per_ip: 64,
    header_timeout: Duration::from_secs(5),
    drain_timeout: Duration::from_secs(2),
};

/// An async probe: true while its dependency answers.
type Probe = Arc<dyn Fn() -> BoxFuture<'static, bool> + Send + Sync>;

/// One named check of a dependency.
#[derive(Clone)]
struct Check {
    /// The dependency ("broker", "producer", "dedup", "store").
    name: &'static str,
    /// Whether it decides readiness (else it is only reported).
    required: bool,
    /// Asks the dependency.
    probe: Probe,
}

/// What `/readyz` looks at, also exported as `hookgate_ready` and
/// `hookgate_dependency_up{dependency}` at every scrape.
#[derive(Clone, Default)]
pub struct Readiness {
    /// Named checks.
    checks: Vec<Check>,
    /// Set at shutdown so load balancers stop sending before the listener closes.
    draining: Arc<AtomicBool>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.checks.iter().map(|check| check.name))
            .finish()
    }
}

/// The outcome of one evaluation.
struct Evaluation {
    /// Not draining and every required check passed.
    ready: bool,
    /// Whether shutdown has started.
    draining: bool,
    /// Each check with its result.
    results: Vec<(&'static str, bool, bool)>,
}

impl Readiness {
    /// Adds a named check that decides readiness.
    pub fn check<F>(&mut self, name: &'static str, probe: F)
    where
        F: Fn() -> BoxFuture<'static, bool> + Send + Sync + 'static,
    {
        self.add(name, true, Arc::new(probe));
    }

    /// Adds a named check that is reported (in `/readyz` and as
    /// `hookgate_dependency_up`) but does not decide readiness.
    pub fn advise<F>(&mut self, name: &'static str, probe: F)
    where
        F: Fn() -> BoxFuture<'static, bool> + Send + Sync + 'static,
    {
        self.add(name, false, Arc::new(probe));
    }

    fn add(&mut self, name: &'static str, required: bool, probe: Probe) {
        self.checks.push(Check { name, required, probe });
    }

    /// Marks the process as draining: `/readyz` fails from now on.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Runs every probe at once (each bounded by [`PROBE_TIMEOUT`]) and exports the results.
    async fn evaluate(&self) -> Evaluation {
        let probes = self.checks.iter().map(|check| async move {
            let up = tokio::time::timeout(PROBE_TIMEOUT, (check.probe)())
                .await
                .unwrap_or(false);
            (check.name, check.required, up)
        });
        let results = futures::future::join_all(probes).await;
        let draining = self.draining.load(Ordering::Acquire);
        let ready = !draining && results.iter().all(|(_, required, up)| *up || !*required);
        for (name, _, up) in &results {
            metrics::gauge!(names::DEPENDENCY_UP, "dependency" => *name).set(f64::from(u8::from(*up)));
        }
        metrics::gauge!(names::READY).set(f64::from(u8::from(ready)));
        Evaluation {
            ready,
            draining,
            results,
        }
    }
}

impl Evaluation {
    /// `{"ready", "checks": {"draining", <check>: bool...}, "advisory": [<checks that do not decide>]}`.
    fn to_json(&self) -> Value {
        let mut checks = Map::new();
        checks.insert("draining".into(), self.draining.into());
        let mut advisory = Vec::new();
        for (name, required, up) in &self.results {
            checks.insert((*name).into(), (*up).into());
            if !required {
                advisory.push(Value::from(*name));
            }
        }
        serde_json::json!({"ready": self.ready, "checks": checks, "advisory": advisory})
    }
}

/// State of the metrics listener.
#[derive(Clone, Debug)]
struct MetricsState {
    /// Renders the exposition.
    handle: PrometheusHandle,
    /// Readiness checks of this process's roles.
    readiness: Readiness,
}

/// The router of the metrics listener.
pub fn router(handle: PrometheusHandle, readiness: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(MetricsState { handle, readiness })
}

/// Serves [`router`] on `listener` with [`LISTENER_LIMITS`] until `shutdown`.
pub async fn serve(listener: TcpListener, handle: PrometheusHandle, readiness: Readiness, shutdown: Stop) {
    let router = router(handle, readiness);
    let make_service = move |_peer| TowerToHyperService::new(router.clone());
    crate::listener::serve(listener, "metrics", LISTENER_LIMITS, make_service, shutdown).await;
}

/// The exposition, with readiness evaluated just before so that
/// `hookgate_ready` and `hookgate_dependency_up` are as fresh as the scrape.
async fn render(State(state): State<MetricsState>) -> impl IntoResponse {
    state.readiness.evaluate().await;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.handle.render(),
    )
}

async fn ready(State(state): State<MetricsState>) -> impl IntoResponse {
    let evaluation = state.readiness.evaluate().await;
    let status = if evaluation.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(evaluation.to_json()))
}
