//! `otelpipe-gateway`: a Kong-compatible API gateway.
//!
//! Modules, in the order a request meets them: [`conf`] (kong.conf and `KONG_*`),
//! [`declarative`] (decK / Kong declarative files), [`state`] (the running configuration,
//! swapped atomically), [`listener`] with [`tls`] (certificates by SNI), [`rejected`]
//! (Kong's 400s for unparsable requests) and [`head_limits`] (nginx's 8 KiB line limits),
//! [`router`], [`proxy`] (with the [`plugins`]
//! phases; upstream TLS, health checks and balancing live there), [`error`]
//! (Kong's error responses), and the [`admin`] and [`status`] APIs. [`server`] starts it all
//! and stops it: listeners stop accepting, open requests finish, then the plugins' export
//! queues are flushed ([`plugins::Plugin::drain`]).
//!
//! How one request travels:
//!
//! ```text
//! listener (hyper, HTTP/1.1 + h2c)
//!   → proxy::handler: RequestContext, Runtime snapshot (one ArcSwap load, no lock)
//!   → rewrite (global plugins) → Router::find → 426/404/503 or access (route's plugins)
//!   → upstream::send: balancer pick, cached DNS, pooled client, timeouts, retries
//!   → Kong's response headers, header_filter → LoggedBody streams the body (body_filter)
//!   → log phase once the last byte is sent (latencies complete in the context)
//! ```
//!
//! Configuration changes (Admin API writes, `POST /config`) build a new
//! [`state::Runtime`] (entities, router, balancers, plugin lists) off the request path and
//! swap it in atomically; requests in flight finish on the snapshot they started with.

pub mod admin;
pub mod conf;
pub mod declarative;
pub mod error;
pub mod head_limits;
pub mod listener;
pub mod observability;
pub mod plugins;
pub mod proxy;
pub mod rejected;
pub mod router;
pub mod server;
pub mod state;
pub mod status;
pub mod tls;

/// The version string Kong reports in `Server` and `Via` (`kong/<version>`).
pub const KONG_VERSION: &str = "3.9.0";
