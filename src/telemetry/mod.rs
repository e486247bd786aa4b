//! The collector's own telemetry: metric names and the events that count and log.

pub mod names;
