//! Integration tests: real sockets on 127.0.0.1, real clients, the real binary.
//! One test binary, so support code compiles once.

mod support;

mod cli;
mod collector;
mod delivery;
mod demo;
mod examples;
mod pipeline;
mod prometheus;
mod prometheus_export;
mod queue_bytes;
mod security;
mod seeds;
mod spanmetrics;
mod syslog;
mod tcplog;
mod tls_clients;
