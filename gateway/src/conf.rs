//! kong.conf and `KONG_*` environment variables (Kong/kong:kong/templates/kong_defaults.lua).
//!
//! Every key `some_key` can be set in a kong.conf file (`some_key = value`, `#` comments) or
//! with `KONG_SOME_KEY` (case-insensitive); the environment wins over the file. Arrays are
//! comma-separated.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

/// Defaults of the keys this gateway reads. The status API listens on 8100 as Kong's Helm
/// chart exposes it.
const DEFAULTS: &[(&str, &str)] = &[
    (
        "proxy_listen",
        "0.0.0.0:8000 reuseport backlog=16384, 0.0.0.0:8443 http2 ssl reuseport backlog=16384",
    ),
    (
        "admin_listen",
        "127.0.0.1:8001 reuseport backlog=16384, 127.0.0.1:8444 http2 ssl reuseport backlog=16384",
    ),
    ("status_listen", "0.0.0.0:8100 reuseport backlog=16384"),
    ("database", "off"),
    ("declarative_config", ""),
    ("declarative_config_string", ""),
    ("tracing_instrumentations", "off"),
    ("tracing_sampling_rate", "0.01"),
    (
        "headers",
        "server_tokens, latency_tokens, x-kong-request-id",
    ),
    ("headers_upstream", "x-kong-request-id"),
    ("trusted_ips", ""),
    ("real_ip_header", "X-Real-IP"),
    ("real_ip_recursive", "off"),
    ("error_default_type", "text/plain"),
    ("log_level", "notice"),
    ("router_flavor", "traditional_compatible"),
    ("untrusted_lua", "sandbox"),
    ("node_id", ""),
    ("nginx_worker_processes", "auto"),
    ("server_version", crate::KONG_VERSION),
    ("ssl_cert", ""),
    ("ssl_cert_key", ""),
    ("lua_ssl_trusted_certificate", "system"),
    ("lua_ssl_verify_depth", "1"),
    ("nginx_proxy_client_header_timeout", ""),
    ("nginx_http_client_header_timeout", "60s"),
];

/// Deprecated names and the key they set.
const ALIASES: &[(&str, &str)] = &[
    ("opentelemetry_tracing", "tracing_instrumentations"),
    (
        "opentelemetry_tracing_sampling_rate",
        "tracing_sampling_rate",
    ),
];

const INSTRUMENTATIONS: &[&str] = &[
    "off",
    "all",
    "request",
    "db_query",
    "dns_query",
    "router",
    "http_client",
    "balancer",
    "plugin_rewrite",
    "plugin_access",
    "plugin_header_filter",
];

const HEADER_TOKENS: &[&str] = &[
    "off",
    "server_tokens",
    "latency_tokens",
    "server",
    "via",
    "x-kong-proxy-latency",
    "x-kong-response-latency",
    "x-kong-admin-latency",
    "x-kong-upstream-latency",
    "x-kong-upstream-status",
    "x-kong-request-id",
];

/// A kong.conf problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A key has a value Kong rejects.
    #[error("{key}: {message}")]
    Invalid {
        /// The kong.conf key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// One `*_listen` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// Address to bind.
    pub addr: SocketAddr,
    /// `ssl` flag.
    pub ssl: bool,
    /// `http2` flag.
    pub http2: bool,
}

/// The settings the gateway uses.
#[derive(Debug, Clone)]
pub struct KongConf {
    /// Proxy listeners (`off` → none).
    pub proxy_listen: Vec<Listen>,
    /// Admin API listeners.
    pub admin_listen: Vec<Listen>,
    /// Status API listeners.
    pub status_listen: Vec<Listen>,
    /// `database` (`off` = DB-less).
    pub database: String,
    /// Declarative file path.
    pub declarative_config: Option<String>,
    /// Declarative document given inline.
    pub declarative_config_string: Option<String>,
    /// Enabled tracing instrumentations (empty when `off`).
    pub tracing_instrumentations: Vec<String>,
    /// Global tracing sampling rate.
    pub tracing_sampling_rate: f64,
    /// Response headers Kong adds (`headers`), lowercased tokens.
    pub headers: Vec<String>,
    /// Request headers Kong adds upstream.
    pub headers_upstream: Vec<String>,
    /// Trusted client addresses / CIDRs.
    pub trusted_ips: Vec<String>,
    /// Header carrying the real client IP.
    pub real_ip_header: String,
    /// Recursive real-IP lookup.
    pub real_ip_recursive: bool,
    /// Media type of nginx-level errors without Accept/Content-Type.
    pub error_default_type: String,
    /// Log level.
    pub log_level: String,
    /// `sandbox`, `on` or `off`.
    pub untrusted_lua: String,
    /// Node id (generated when unset).
    pub node_id: String,
    /// Worker threads (`auto` = number of CPUs).
    pub worker_threads: Option<usize>,
    /// The version in `Server: kong/<v>` and `Via: 1.1 kong/<v>` (`server_version`, an
    /// otelpipe key; e.g. `3.9.0.0-enterprise-edition` to look like an EE image).
    pub server_version: String,
    /// Default server certificate of `ssl` proxy listeners (PEM or path; unset: generated).
    pub ssl_cert: Option<String>,
    /// Key of `ssl_cert`.
    pub ssl_cert_key: Option<String>,
    /// CA certificates trusted for upstreams with `tls_verify` and no `ca_certificates`:
    /// `system` (the system store) and/or PEM files, comma-separated.
    pub lua_ssl_trusted_certificate: Vec<String>,
    /// Most intermediates allowed in a verified upstream chain when the service sets no
    /// `tls_verify_depth`.
    pub lua_ssl_verify_depth: u32,
    /// How long a client may take to send a request head before the connection is closed
    /// (nginx's `client_header_timeout`, set with `nginx_proxy_client_header_timeout` or
    /// `nginx_http_client_header_timeout`; default 60s). Applies to every listener.
    pub client_header_timeout: Duration,
}

/// Parses kong.conf text into key → value (comments and blank lines dropped).
pub fn parse_file_text(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let line = strip_comment(line);
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        out.insert(key.trim().to_lowercase(), value.trim().to_owned());
    }
    out
}

fn strip_comment(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'#') => {
                out.push('#');
                chars.next();
            }
            '#' => break,
            _ => out.push(c),
        }
    }
    out
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn bool_value(key: &str, value: &str) -> Result<bool, ConfError> {
    match value.to_lowercase().as_str() {
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        _ => Err(invalid(key, format!("invalid boolean value: '{value}'"))),
    }
}

fn invalid(key: &str, message: String) -> ConfError {
    ConfError::Invalid {
        key: key.to_owned(),
        message,
    }
}

/// Parses an nginx time value: a number with an optional unit (`ms`, `s`, `m`, `h`, `d`),
/// several of them summed (`1m30s`); a bare number is seconds.
fn nginx_time(value: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = value.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let number: u64 = rest.get(..digits)?.parse().ok()?;
        rest = &rest[digits..];
        let unit = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let millis = match &rest[..unit] {
            "ms" => 1,
            "" | "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return None,
        };
        rest = &rest[unit..];
        total = total.checked_add(Duration::from_millis(number.checked_mul(millis)?))?;
    }
    Some(total)
}

/// Parses a `*_listen` value (`addr:port [ssl] [http2] …`, or `off`).
pub fn parse_listen(key: &str, value: &str) -> Result<Vec<Listen>, ConfError> {
    if value.trim() == "off" {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in list(value) {
        let mut words = entry.split_whitespace();
        let addr = words.next().unwrap_or_default();
        let addr = addr.replacen("*:", "0.0.0.0:", 1);
        let addr: SocketAddr = addr
            .parse()
            .map_err(|_| invalid(key, format!("invalid {key} value: {entry}")))?;
        let flags: Vec<&str> = words.collect();
        out.push(Listen {
            addr,
            ssl: flags.contains(&"ssl"),
            http2: flags.contains(&"http2"),
        });
    }
    Ok(out)
}

impl KongConf {
    /// Settings from an optional kong.conf text and the environment (`KONG_*`).
    pub fn load(
        file_text: Option<&str>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfError> {
        let mut values: HashMap<String, String> = DEFAULTS
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let set = |key: String, value: String, values: &mut HashMap<String, String>| {
            let key = ALIASES
                .iter()
                .find(|(alias, _)| *alias == key)
                .map_or(key, |(_, real)| (*real).to_owned());
            values.insert(key, value);
        };
        if let Some(text) = file_text {
            for (k, v) in parse_file_text(text) {
                set(k, v, &mut values);
            }
        }
        for (k, v) in env {
            if let Some(key) = k
                .get(..5)
                .filter(|p| p.eq_ignore_ascii_case("KONG_"))
                .map(|_| k[5..].to_lowercase())
            {
                set(key, v, &mut values);
            }
        }
        Self::from_values(&values)
    }

    /// Loads kong.conf from `path` (if any) and the process environment.
    pub fn from_env_and_file(path: Option<&str>) -> Result<Self, ConfError> {
        let text = match path {
            Some(p) => Some(
                std::fs::read_to_string(p).map_err(|source| ConfError::Read {
                    path: p.to_owned(),
                    source,
                })?,
            ),
            None => None,
        };
        Self::load(text.as_deref(), std::env::vars())
    }

    fn from_values(v: &HashMap<String, String>) -> Result<Self, ConfError> {
        let get = |k: &str| v.get(k).map(String::as_str).unwrap_or_default();
        let non_empty = |k: &str| Some(get(k).to_owned()).filter(|s| !s.is_empty());
        let instrumentations = list(get("tracing_instrumentations"));
        for i in &instrumentations {
            if !INSTRUMENTATIONS.contains(&i.as_str()) {
                return Err(invalid(
                    "tracing_instrumentations",
                    format!("invalid tracing type: {i}"),
                ));
            }
        }
        if instrumentations.len() > 1 && instrumentations.iter().any(|i| i == "off") {
            return Err(invalid(
                "tracing_instrumentations",
                "invalid tracing type: off (off cannot be combined with other types)".into(),
            ));
        }
        let rate: f64 = get("tracing_sampling_rate")
            .parse()
            .map_err(|_| invalid("tracing_sampling_rate", "must be a number".into()))?;
        if !(0.0..=1.0).contains(&rate) {
            return Err(invalid(
                "tracing_sampling_rate",
                "must be between 0 and 1".into(),
            ));
        }
        let headers: Vec<String> = list(get("headers"))
            .iter()
            .map(|h| h.to_lowercase())
            .collect();
        for h in &headers {
            if !HEADER_TOKENS.contains(&h.as_str()) {
                return Err(invalid("headers", format!("invalid header value: {h}")));
            }
        }
        let log_level = get("log_level").to_lowercase();
        let levels = [
            "debug", "info", "notice", "warn", "error", "crit", "alert", "emerg",
        ];
        if !levels.contains(&log_level.as_str()) {
            return Err(invalid(
                "log_level",
                format!("must be one of: {}", levels.join(", ")),
            ));
        }
        let untrusted_lua = get("untrusted_lua").to_lowercase();
        if !["on", "off", "sandbox"].contains(&untrusted_lua.as_str()) {
            return Err(invalid(
                "untrusted_lua",
                "must be one of: on, off, sandbox".into(),
            ));
        }
        let workers = get("nginx_worker_processes");
        let worker_threads = if workers == "auto" {
            None
        } else {
            Some(
                workers
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        invalid(
                            "nginx_worker_processes",
                            "must be 'auto' or a positive integer".into(),
                        )
                    })?,
            )
        };
        let header_timeout_key = if get("nginx_proxy_client_header_timeout").is_empty() {
            "nginx_http_client_header_timeout"
        } else {
            "nginx_proxy_client_header_timeout"
        };
        let client_header_timeout = nginx_time(get(header_timeout_key))
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                invalid(
                    header_timeout_key,
                    format!(
                        "invalid time value: '{}' (e.g. 60s, 500ms, 1m)",
                        get(header_timeout_key)
                    ),
                )
            })?;
        Ok(Self {
            client_header_timeout,
            proxy_listen: parse_listen("proxy_listen", get("proxy_listen"))?,
            admin_listen: parse_listen("admin_listen", get("admin_listen"))?,
            status_listen: parse_listen("status_listen", get("status_listen"))?,
            database: get("database").to_owned(),
            declarative_config: non_empty("declarative_config"),
            declarative_config_string: non_empty("declarative_config_string"),
            tracing_instrumentations: instrumentations
                .into_iter()
                .filter(|i| i != "off")
                .collect(),
            tracing_sampling_rate: rate,
            headers: if headers.iter().any(|h| h == "off") {
                Vec::new()
            } else {
                headers
            },
            headers_upstream: list(get("headers_upstream"))
                .iter()
                .map(|h| h.to_lowercase())
                .filter(|h| h != "off")
                .collect(),
            trusted_ips: list(get("trusted_ips")),
            real_ip_header: get("real_ip_header").to_owned(),
            real_ip_recursive: bool_value("real_ip_recursive", get("real_ip_recursive"))?,
            error_default_type: get("error_default_type").to_owned(),
            log_level,
            untrusted_lua,
            node_id: non_empty("node_id").unwrap_or_else(crate::declarative::ids::random_id),
            worker_threads,
            server_version: get("server_version").to_owned(),
            ssl_cert: non_empty("ssl_cert"),
            ssl_cert_key: non_empty("ssl_cert_key"),
            lua_ssl_trusted_certificate: list(get("lua_ssl_trusted_certificate")),
            lua_ssl_verify_depth: get("lua_ssl_verify_depth").parse().map_err(|_| {
                invalid(
                    "lua_ssl_verify_depth",
                    "must be a non-negative integer".into(),
                )
            })?,
        })
    }

    /// Whether response header token `name` (or its group) is enabled in `headers`.
    pub fn header_enabled(&self, name: &str) -> bool {
        let group = match name {
            "server" | "via" => "server_tokens",
            "x-kong-proxy-latency"
            | "x-kong-response-latency"
            | "x-kong-admin-latency"
            | "x-kong-upstream-latency" => "latency_tokens",
            _ => "",
        };
        self.headers.iter().any(|h| h == name || h == group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_are_kongs() {
        let c = KongConf::load(None, env(&[])).unwrap();
        assert_eq!(c.proxy_listen[0].addr, "0.0.0.0:8000".parse().unwrap());
        assert!(c.proxy_listen[1].ssl);
        assert_eq!(c.admin_listen[0].addr, "127.0.0.1:8001".parse().unwrap());
        assert_eq!(c.status_listen[0].addr.port(), 8100);
        assert!(c.tracing_instrumentations.is_empty());
        assert_eq!(c.tracing_sampling_rate, 0.01);
        assert!(c.header_enabled("server") && c.header_enabled("x-kong-upstream-latency"));
        assert!(!c.header_enabled("x-kong-upstream-status"));
        assert_eq!(c.headers_upstream, vec!["x-kong-request-id"]);
        assert_eq!(c.node_id.len(), 36);
        assert_eq!(c.lua_ssl_trusted_certificate, vec!["system"]);
        assert_eq!(c.lua_ssl_verify_depth, 1);
        assert!(c.ssl_cert.is_none() && c.ssl_cert_key.is_none());
    }

    #[test]
    fn env_overrides_file_and_aliases_apply() {
        let file = "tracing_instrumentations = request # comment\nlog_level = debug\nopentelemetry_tracing_sampling_rate = 0.5\n";
        let c = KongConf::load(
            Some(file),
            env(&[
                ("KONG_TRACING_INSTRUMENTATIONS", "all"),
                ("kong_proxy_listen", "127.0.0.1:0"),
                ("KONG_NGINX_WORKER_PROCESSES", "2"),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.tracing_instrumentations, vec!["all"]);
        assert_eq!(c.tracing_sampling_rate, 0.5);
        assert_eq!(c.log_level, "debug");
        assert_eq!(c.proxy_listen.len(), 1);
        assert_eq!(c.worker_threads, Some(2));
    }

    #[test]
    fn rejects_bad_values_naming_the_key() {
        for (k, v) in [
            ("KONG_TRACING_INSTRUMENTATIONS", "off,all"),
            ("KONG_TRACING_SAMPLING_RATE", "2"),
            ("KONG_HEADERS", "nope"),
            ("KONG_ADMIN_LISTEN", "nowhere"),
            ("KONG_LOG_LEVEL", "loud"),
        ] {
            let err = KongConf::load(None, env(&[(k, v)]))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(&k[5..].to_lowercase()), "{err}");
        }
    }

    #[test]
    fn headers_off_disables_all() {
        let c = KongConf::load(None, env(&[("KONG_HEADERS", "off")])).unwrap();
        assert!(!c.header_enabled("server"));
    }

    #[test]
    fn client_header_timeout_reads_nginx_time_values() {
        let conf = KongConf::load(None, env(&[])).unwrap();
        assert_eq!(conf.client_header_timeout, Duration::from_secs(60));
        for (value, expected) in [
            ("5s", Duration::from_secs(5)),
            ("7", Duration::from_secs(7)),
            ("250ms", Duration::from_millis(250)),
            ("1m30s", Duration::from_secs(90)),
        ] {
            let conf = KongConf::load(
                None,
                env(&[("KONG_NGINX_PROXY_CLIENT_HEADER_TIMEOUT", value)]),
            )
            .unwrap();
            assert_eq!(conf.client_header_timeout, expected, "{value}");
        }
        let conf =
            KongConf::load(Some("nginx_http_client_header_timeout = 2s\n"), env(&[])).unwrap();
        assert_eq!(conf.client_header_timeout, Duration::from_secs(2));
        for bad in ["0", "soon", "5 s", "-1s", "99999999999999999999d"] {
            let err = KongConf::load(
                None,
                env(&[("KONG_NGINX_PROXY_CLIENT_HEADER_TIMEOUT", bad)]),
            )
            .unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("nginx_proxy_client_header_timeout: invalid time value"),
                "{err}"
            );
        }
    }
}
