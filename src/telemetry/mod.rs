//! The collector's own telemetry: metric names, the own-metrics endpoint, and logging.

pub mod logging;
pub mod names;
pub mod own_metrics;
