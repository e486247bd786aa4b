//! Exporters: components that send data out of the collector.

pub mod debug;
pub mod otlp;
pub mod otlphttp;
pub mod prometheus;
pub mod queue;
