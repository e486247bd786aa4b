//! Integration tests of `otelpipe-gateway`: real sockets on 127.0.0.1, real upstreams.

mod admin;
mod cli;
mod health;
mod limits;
mod opentelemetry;
mod otel_logs;
mod prometheus;
mod proxy;
mod shutdown;
mod status;
mod support;
mod tcp_log;
mod tls;
