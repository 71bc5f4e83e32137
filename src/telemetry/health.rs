//! The metrics listener: `/metrics` (Prometheus text), `/healthz` (the
//! process is alive) and `/readyz` (every dependency of this role answers).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use futures::future::BoxFuture;
use metrics_exporter_prometheus::PrometheusHandle;

/// One readiness check: a name and an async probe.
type Check = (&'static str, Arc<dyn Fn() -> BoxFuture<'static, bool> + Send + Sync>);

/// What `/readyz` looks at.
#[derive(Clone, Default)]
pub struct Readiness {
    /// Named checks; all must pass.
    checks: Vec<Check>,
    /// Set at shutdown so load balancers stop sending before the listener closes.
    draining: Arc<AtomicBool>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.checks.iter().map(|(name, _)| name))
            .finish()
    }
}

impl Readiness {
    /// Adds a named check.
    pub fn check<F>(&mut self, name: &'static str, probe: F)
    where
        F: Fn() -> BoxFuture<'static, bool> + Send + Sync + 'static,
    {
        self.checks.push((name, Arc::new(probe)));
    }

    /// Marks the process as draining: `/readyz` fails from now on.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    async fn evaluate(&self) -> (bool, serde_json::Map<String, serde_json::Value>) {
        let mut report = serde_json::Map::new();
        let mut ready = !self.draining.load(Ordering::Acquire);
        report.insert("draining".into(), (!ready).into());
        for (name, probe) in &self.checks {
            let ok = probe().await;
            ready &= ok;
            report.insert((*name).into(), ok.into());
        }
        (ready, report)
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

async fn render(State(state): State<MetricsState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.handle.render(),
    )
}

async fn ready(State(state): State<MetricsState>) -> impl IntoResponse {
    let (ready, checks) = state.readiness.evaluate().await;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(serde_json::json!({"ready": ready, "checks": checks})))
}
