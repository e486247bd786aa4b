//! Integration tests of `otelpipe-gateway`: real sockets on 127.0.0.1, real upstreams.

mod admin;
mod bounds;
mod cli;
mod health;
mod limits;
mod opentelemetry;
mod otel_logs;
mod prometheus;
mod properties;
mod proxy;
mod shutdown;
mod status;
mod support;
mod tcp_log;
mod tls;
