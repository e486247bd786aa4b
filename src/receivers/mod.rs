//! Receivers: components that take data in from the outside and hand it to pipelines.

pub mod otlp;
pub mod prometheus;
pub mod stanza;
pub mod status;
pub mod tcplog;
pub mod udplog;
