//! Typed views of stored entities, as the router and proxy use them.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::{Config, Entity, Kind};

/// A `{"id": …}` reference.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ForeignKey {
    /// The referenced entity's id.
    pub id: String,
}

/// A service (Kong/kong:kong/db/schema/entities/services.lua).
#[derive(Debug, Clone, Deserialize)]
pub struct Service {
    /// Id.
    pub id: String,
    /// Name.
    pub name: Option<String>,
    /// `http`, `https`, …
    pub protocol: String,
    /// Upstream host name, IP, or the name of an upstream entity.
    pub host: String,
    /// Upstream port.
    pub port: u16,
    /// Base path.
    pub path: Option<String>,
    /// Additional tries after a connection failure.
    pub retries: u32,
    /// Connect timeout, ms.
    pub connect_timeout: u64,
    /// Write timeout, ms.
    pub write_timeout: u64,
    /// Read timeout, ms.
    pub read_timeout: u64,
    /// Disabled services take their routes out of the router.
    pub enabled: bool,
    /// Verify the upstream certificate (`null`: not verified, as nginx's
    /// `proxy_ssl_verify off`).
    pub tls_verify: Option<bool>,
    /// Tags (decK `select_tags` included).
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Unix seconds of creation.
    #[serde(default)]
    pub created_at: Option<i64>,
    /// Unix seconds of the last update.
    #[serde(default)]
    pub updated_at: Option<i64>,
    /// Most intermediate certificates allowed when verifying (`null`: kong.conf
    /// `lua_ssl_verify_depth`).
    #[serde(default)]
    pub tls_verify_depth: Option<u32>,
    /// Ids of the ca_certificates entities to trust (`null`: kong.conf
    /// `lua_ssl_trusted_certificate`).
    #[serde(default)]
    pub ca_certificates: Option<Vec<String>>,
    /// Certificate presented to the upstream (mutual TLS).
    #[serde(default)]
    pub client_certificate: Option<ForeignKey>,
}

/// A route (Kong/kong:kong/db/schema/entities/routes.lua).
#[derive(Debug, Clone, Deserialize)]
pub struct Route {
    /// Id.
    pub id: String,
    /// Name.
    pub name: Option<String>,
    /// Protocols the route accepts.
    pub protocols: Vec<String>,
    /// Methods.
    pub methods: Option<Vec<String>>,
    /// Hosts, with optional wildcard and port.
    pub hosts: Option<Vec<String>>,
    /// Prefix or `~` regex paths.
    pub paths: Option<Vec<String>>,
    /// Header name → accepted values.
    pub headers: Option<BTreeMap<String, Vec<String>>>,
    /// SNIs.
    pub snis: Option<Vec<String>>,
    /// Strip the matched path before proxying.
    pub strip_path: bool,
    /// Send the client's Host upstream.
    pub preserve_host: bool,
    /// Priority among regex routes.
    pub regex_priority: i64,
    /// `v0` or `v1` (both behave as v0 under traditional_compatible).
    pub path_handling: String,
    /// Status of the answer to a plain-http request on an https-only route.
    pub https_redirect_status_code: u16,
    /// The service.
    pub service: Option<ForeignKey>,
    /// Buffer the request body before proxying.
    #[serde(default)]
    pub request_buffering: Option<bool>,
    /// Buffer the response body before sending it.
    #[serde(default)]
    pub response_buffering: Option<bool>,
    /// Tags (decK `select_tags` included).
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Unix seconds of creation.
    #[serde(default)]
    pub created_at: Option<i64>,
    /// Unix seconds of the last update.
    #[serde(default)]
    pub updated_at: Option<i64>,
}

/// A plugin instance.
#[derive(Debug, Clone, Deserialize)]
pub struct Plugin {
    /// Id.
    pub id: String,
    /// Plugin name.
    pub name: String,
    /// Instance name.
    pub instance_name: Option<String>,
    /// Plugin config (plugin schema defaults filled).
    pub config: Value,
    /// Whether the plugin runs.
    pub enabled: bool,
    /// Protocols the plugin runs for.
    pub protocols: Vec<String>,
    /// Route scope.
    pub route: Option<ForeignKey>,
    /// Service scope.
    pub service: Option<ForeignKey>,
    /// Consumer scope.
    pub consumer: Option<ForeignKey>,
}

/// An upstream (load-balancing pool).
#[derive(Debug, Clone, Deserialize)]
pub struct Upstream {
    /// Id.
    pub id: String,
    /// Virtual host name services use as `host`.
    pub name: String,
    /// Balancing algorithm.
    pub algorithm: String,
    /// What consistent hashing hashes: `none`, `consumer`, `ip`, `header`, `cookie`, `path`,
    /// `query_arg`, `uri_capture`.
    pub hash_on: String,
    /// What to hash when `hash_on` yields nothing.
    pub hash_fallback: String,
    /// Header for `hash_on: header`.
    pub hash_on_header: Option<String>,
    /// Header for `hash_fallback: header`.
    pub hash_fallback_header: Option<String>,
    /// Cookie for `hash_on: cookie`.
    pub hash_on_cookie: Option<String>,
    /// Query argument for `hash_on: query_arg`.
    pub hash_on_query_arg: Option<String>,
    /// Query argument for `hash_fallback: query_arg`.
    pub hash_fallback_query_arg: Option<String>,
    /// Capture name for `hash_on: uri_capture`.
    pub hash_on_uri_capture: Option<String>,
    /// Capture name for `hash_fallback: uri_capture`.
    pub hash_fallback_uri_capture: Option<String>,
    /// Host header override.
    pub host_header: Option<String>,
    /// Active and passive health checks.
    #[serde(default)]
    pub healthchecks: Healthchecks,
}

/// `healthchecks` of an upstream (Kong/kong:kong/db/schema/entities/upstreams.lua).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Healthchecks {
    /// Probes the gateway sends.
    pub active: ActiveChecks,
    /// Verdicts from proxied traffic.
    pub passive: PassiveChecks,
    /// Percentage of healthy weight below which the whole upstream counts as unhealthy.
    pub threshold: f64,
}

/// `healthchecks.active`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ActiveChecks {
    /// `http`, `https`, `tcp`, `grpc` or `grpcs`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Probe timeout, seconds.
    pub timeout: f64,
    /// Path probed.
    pub http_path: String,
    /// Verify the target's certificate on `https` probes.
    pub https_verify_certificate: bool,
    /// SNI of `https` probes (default: the target host).
    pub https_sni: Option<String>,
    /// Extra probe headers: name → values.
    pub headers: Option<BTreeMap<String, Vec<String>>>,
    /// Probing of healthy targets.
    pub healthy: Healthy,
    /// Probing of unhealthy targets.
    pub unhealthy: Unhealthy,
}

impl Default for ActiveChecks {
    fn default() -> Self {
        Self {
            kind: "http".into(),
            timeout: 1.0,
            http_path: "/".into(),
            https_verify_certificate: true,
            https_sni: None,
            headers: None,
            healthy: Healthy {
                http_statuses: vec![200, 302],
                ..Healthy::default()
            },
            unhealthy: Unhealthy {
                http_statuses: vec![429, 404, 500, 501, 502, 503, 504, 505],
                ..Unhealthy::default()
            },
        }
    }
}

/// `healthchecks.passive`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PassiveChecks {
    /// `http`, `https`, `tcp`, `grpc` or `grpcs`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Successes.
    pub healthy: Healthy,
    /// Failures.
    pub unhealthy: Unhealthy,
}

impl Default for PassiveChecks {
    fn default() -> Self {
        Self {
            kind: "http".into(),
            healthy: Healthy {
                http_statuses: vec![
                    200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305,
                    306, 307, 308,
                ],
                ..Healthy::default()
            },
            unhealthy: Unhealthy {
                http_statuses: vec![429, 500, 503],
                ..Unhealthy::default()
            },
        }
    }
}

/// The `healthy` half of a check.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Healthy {
    /// Seconds between probes of healthy targets (active only; 0 = none).
    pub interval: f64,
    /// Statuses that count as a success.
    pub http_statuses: Vec<u16>,
    /// Successes that make a target healthy (0 = never).
    pub successes: u32,
}

/// The `unhealthy` half of a check.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Unhealthy {
    /// Seconds between probes of unhealthy targets (active only; 0 = none).
    pub interval: f64,
    /// Statuses that count as an HTTP failure.
    pub http_statuses: Vec<u16>,
    /// TCP failures that make a target unhealthy (0 = never).
    pub tcp_failures: u32,
    /// Timeouts that make a target unhealthy (0 = never).
    pub timeouts: u32,
    /// HTTP failures that make a target unhealthy (0 = never).
    pub http_failures: u32,
}

/// A certificate with its key (certificates.lua); snis point at it.
#[derive(Debug, Clone, Deserialize)]
pub struct Certificate {
    /// Id.
    pub id: String,
    /// PEM chain.
    pub cert: String,
    /// PEM private key.
    pub key: String,
    /// Alternate PEM chain (other key type).
    #[serde(default)]
    pub cert_alt: Option<String>,
    /// Alternate PEM key.
    #[serde(default)]
    pub key_alt: Option<String>,
}

/// A server name mapped to a certificate (snis.lua).
#[derive(Debug, Clone, Deserialize)]
pub struct Sni {
    /// Id.
    pub id: String,
    /// Server name: exact, `*.example.com`, `example.*`, or `*`.
    pub name: String,
    /// The certificate.
    pub certificate: ForeignKey,
}

/// A trusted CA certificate (ca_certificates.lua).
#[derive(Debug, Clone, Deserialize)]
pub struct CaCertificate {
    /// Id.
    pub id: String,
    /// PEM certificate.
    pub cert: String,
}

/// A target of an upstream.
#[derive(Debug, Clone, Deserialize)]
pub struct Target {
    /// Id.
    pub id: String,
    /// Upstream it belongs to.
    pub upstream: ForeignKey,
    /// `host:port`.
    pub target: String,
    /// Weight (0 = disabled).
    pub weight: u32,
}

fn typed<T: serde::de::DeserializeOwned>(entities: &[Entity]) -> Vec<T> {
    entities
        .iter()
        .filter_map(|e| serde_json::from_value(Value::Object(e.clone())).ok())
        .collect()
}

/// Every entity the proxy needs, typed.
#[derive(Debug, Clone, Default)]
pub struct Model {
    /// Services.
    pub services: Vec<Service>,
    /// Routes.
    pub routes: Vec<Route>,
    /// Plugins.
    pub plugins: Vec<Plugin>,
    /// Upstreams.
    pub upstreams: Vec<Upstream>,
    /// Targets.
    pub targets: Vec<Target>,
    /// Certificates.
    pub certificates: Vec<Certificate>,
    /// SNIs.
    pub snis: Vec<Sni>,
    /// CA certificates.
    pub ca_certificates: Vec<CaCertificate>,
}

impl Model {
    /// Typed views of `config`'s entities.
    pub fn of(config: &Config) -> Self {
        Self {
            services: typed(config.get(Kind::Services)),
            routes: typed(config.get(Kind::Routes)),
            plugins: typed(config.get(Kind::Plugins)),
            upstreams: typed(config.get(Kind::Upstreams)),
            targets: typed(config.get(Kind::Targets)),
            certificates: typed(config.get(Kind::Certificates)),
            snis: typed(config.get(Kind::Snis)),
            ca_certificates: typed(config.get(Kind::CaCertificates)),
        }
    }
}
