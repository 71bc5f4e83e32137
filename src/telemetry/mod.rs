//! Telemetry: metric names, the Prometheus recorder, the metrics and health
//! listener, and logging set-up.

mod health;
mod ingest;
pub mod librdkafka;
pub mod names;
mod recorder;

pub(crate) use health::LISTENER_LIMITS as METRICS_LISTENER_LIMITS;
pub use health::{router, serve as serve_metrics, Readiness};
pub use ingest::{requests_in_flight, SourceMetrics};
pub use recorder::install;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Sends tracing output (and librdkafka's `log` records) to stderr, filtered
/// by `RUST_LOG` (default `info`). Safe to call more than once.
pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
