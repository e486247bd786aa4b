//! The proxy: downstream HTTP/1.1 and HTTP/2, routing, upstream calls, Kong's headers.
//!
//! Each request gets a [`context::RequestContext`]; [`handler::handle`] runs Kong's phases
//! around the router and the upstream call ([`upstream::send`]); the response body streams
//! through [`body::LoggedBody`], which runs the log phase after the last byte.

pub mod balancer;
pub mod body;
pub mod context;
pub mod dns;
pub mod h1;
pub mod handler;
pub mod headers;
pub mod health;
pub mod tls;
pub mod upstream;
pub mod websocket;
pub mod write_timeout;
