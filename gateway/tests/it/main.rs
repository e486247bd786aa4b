//! Integration tests of `otelpipe-gateway`: real sockets on 127.0.0.1, real upstreams.

mod admin;
mod cli;
mod opentelemetry;
mod prometheus;
mod properties;
mod proxy;
mod status;
mod support;
mod tcp_log;
