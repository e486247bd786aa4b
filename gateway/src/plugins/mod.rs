//! The plugin interface: one trait with Kong's phases, and the registry of plugins.
//!
//! ```text
//!  client request
//!      │
//!  rewrite        (global plugins only: runs before routing)
//!      │  router
//!  access         (plugins chosen for the route/service/consumer; may answer directly)
//!      │  balancer → upstream
//!  header_filter  (response headers, before they go to the client)
//!      │
//!  body_filter    (each response body chunk)
//!      │
//!  log            (after the last byte; reads the request context)
//! ```
//!
//! Within a phase plugins run by priority, highest first (opentelemetry 14, prometheus 13,
//! tcp-log 7). When no route matched, global plugins still run header_filter, body_filter
//! and log for the 404.

pub mod opentelemetry;
pub mod prometheus;
pub mod tcp_log;

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use crate::proxy::context::RequestContext;

/// The plugin instances that run for one request, by priority (highest first).
pub type PluginList = Arc<[Arc<dyn Plugin>]>;

/// What [`Plugin::drain`] returns.
pub type Drain = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>;

/// A response a plugin produces instead of proxying (Kong's `kong.response.exit`).
#[derive(Debug, Clone)]
pub struct Exit {
    /// Status code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Bytes,
}

/// One configured plugin instance. Every phase is optional.
pub trait Plugin: Send + Sync {
    /// The plugin's name (`opentelemetry`).
    fn name(&self) -> &'static str;

    /// Kong's `PRIORITY`; higher runs first.
    fn priority(&self) -> i32;

    /// Before routing (global instances only).
    fn rewrite(&self, _ctx: &mut RequestContext) -> Option<Exit> {
        None
    }

    /// After routing, before the upstream is contacted.
    fn access(&self, _ctx: &mut RequestContext) -> Option<Exit> {
        None
    }

    /// Response headers, before they are sent.
    fn header_filter(&self, _ctx: &mut RequestContext, _headers: &mut http::HeaderMap) {}

    /// One response body chunk.
    fn body_filter(&self, _ctx: &mut RequestContext, _chunk: &mut Bytes) {}

    /// After the response is complete.
    fn log(&self, _ctx: &RequestContext) {}

    /// When the gateway stops: a future that sends what the instance still holds (export
    /// queues, sends in flight) and resolves once delivered or given up; `None` when it holds
    /// nothing.
    fn drain(&self) -> Option<Drain> {
        None
    }
}

/// Builds plugin instances from their stored `config`.
pub trait Factory: Send + Sync {
    /// The plugin's name.
    fn name(&self) -> &'static str;

    /// Checks `config` and fills the schema's defaults; `(field, message)` per problem.
    fn check_config(&self, config: &mut Value) -> Result<(), Vec<(String, String)>>;

    /// Builds an instance.
    fn build(&self, config: &Value) -> Result<Arc<dyn Plugin>, String>;
}

/// The plugins this gateway implements, one line each.
pub fn registry() -> Vec<&'static dyn Factory> {
    vec![
        &opentelemetry::OpenTelemetryFactory,
        &prometheus::PrometheusFactory,
        &tcp_log::TcpLogFactory,
    ]
}

/// The plugins bundled with Kong 3.9 (Kong/kong:kong/constants.lua `BUNDLED_PLUGINS`).
/// Configurations naming them load; the ones not implemented here are inert.
pub const BUNDLED: &[&str] = &[
    "acl",
    "acme",
    "ai-prompt-decorator",
    "ai-prompt-guard",
    "ai-prompt-template",
    "ai-proxy",
    "ai-request-transformer",
    "ai-response-transformer",
    "aws-lambda",
    "azure-functions",
    "basic-auth",
    "bot-detection",
    "correlation-id",
    "cors",
    "datadog",
    "file-log",
    "grpc-gateway",
    "grpc-web",
    "hmac-auth",
    "http-log",
    "ip-restriction",
    "jwt",
    "key-auth",
    "ldap-auth",
    "loggly",
    "oauth2",
    "opentelemetry",
    "post-function",
    "pre-function",
    "prometheus",
    "proxy-cache",
    "rate-limiting",
    "redirect",
    "request-size-limiting",
    "request-termination",
    "request-transformer",
    "response-ratelimiting",
    "response-transformer",
    "session",
    "standard-webhooks",
    "statsd",
    "syslog",
    "tcp-log",
    "udp-log",
    "zipkin",
];

/// Whether a plugin name is implemented here or bundled with Kong.
pub fn is_known(name: &str) -> bool {
    BUNDLED.contains(&name) || registry().iter().any(|f| f.name() == name)
}

/// Whether a plugin name is implemented here.
pub fn is_implemented(name: &str) -> bool {
    registry().iter().any(|f| f.name() == name)
}

/// Checks a plugin's config with its schema when the plugin is implemented here.
pub fn check_config(name: &str, config: &mut Value) -> Result<(), Vec<(String, String)>> {
    match registry().into_iter().find(|f| f.name() == name) {
        Some(factory) => factory.check_config(config),
        None => Ok(()),
    }
}
