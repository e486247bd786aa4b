//! Exporters: components that send data out of the collector.

pub mod debug;
