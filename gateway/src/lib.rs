//! `otelpipe-gateway`: a Kong-compatible API gateway.
//!
//! Modules, in the order a request meets them: [`conf`] (kong.conf and `KONG_*`),
//! [`declarative`] (decK / Kong declarative files), [`state`] (the running configuration,
//! swapped atomically), [`router`], [`proxy`] (with the [`plugins`] phases), [`error`]
//! (Kong's error responses), and the [`admin`] and [`status`] APIs. [`server`] starts it all.

pub mod admin;
pub mod conf;
pub mod declarative;
pub mod error;
pub mod listener;
pub mod plugins;
pub mod proxy;
pub mod router;
pub mod server;
pub mod state;
pub mod status;

/// The version string Kong reports in `Server` and `Via` (`kong/<version>`).
pub const KONG_VERSION: &str = "3.9.0";
