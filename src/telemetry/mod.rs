//! Telemetry: metric names, the Prometheus recorder, and the health endpoints.

pub mod names;
