//! `otelpipe-gateway`: a Kong-compatible API gateway.
//!
//! Modules, in the order a request meets them: [`conf`] (kong.conf and `KONG_*`),
//! [`declarative`] (decK / Kong declarative files), [`router`], [`proxy`] (with the
//! [`plugins`] phases), [`error`] (Kong's error responses), [`admin`] and [`status`] APIs.

pub mod declarative;
pub mod plugins;
pub mod proxy;
pub mod router;

/// The version string Kong reports in `Server` and `Via` (`kong/<version>`).
pub const KONG_VERSION: &str = "3.9.0";
pub mod conf;
pub mod server;
