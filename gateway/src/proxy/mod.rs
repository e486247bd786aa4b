//! The proxy: downstream HTTP/1.1 and HTTP/2, routing, upstream calls, Kong's headers.

pub mod context;
