//! Connectors.

pub mod spanmetrics;
