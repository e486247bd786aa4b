//! The `prometheus` plugin (Kong 3.9, priority 13, log phase): Kong's metric families
//! (spec §7) served at `/metrics` on the Status API and the Admin API.
//!
//! ```yaml
//! plugins:
//! - name: prometheus
//!   config:
//!     status_code_metrics: true
//!     latency_metrics: true
//!     bandwidth_metrics: true
//! ```
//!
//! Counters live in one node-wide store (Kong keeps them in a shared dict per node), each
//! series with a slot per worker shard; a worker resolves a route's series once
//! (`series`), so a request only adds to atomics. Every flag defaults to false, so a bare
//! plugin exports only the node-level gauges.

pub mod health;
pub mod registry;
pub mod series;
#[cfg(test)]
mod tests;

use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use self::registry::{Line, Metrics};
use super::{Factory, Plugin};
use crate::proxy::context::RequestContext;
use crate::state::Shared;

/// The node-wide metrics.
static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::default);

/// The plugin's config (spec §7.1); every flag defaults to false.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusConfig {
    /// Fill the `consumer` label.
    pub per_consumer: bool,
    /// `kong_http_requests_total`.
    pub status_code_metrics: bool,
    /// The three latency histograms.
    pub latency_metrics: bool,
    /// `kong_bandwidth_bytes`.
    pub bandwidth_metrics: bool,
    /// `kong_upstream_target_health`.
    pub upstream_health_metrics: bool,
    /// `kong_ai_llm_*` (no AI plugins here: no effect).
    pub ai_metrics: bool,
    /// Proxy-Wasm metrics (no effect).
    pub wasm_metrics: bool,
}

/// The plugin's factory.
pub struct PrometheusFactory;

fn parse(config: &Value) -> Result<PrometheusConfig, Vec<(String, String)>> {
    serde_json::from_value(config.clone()).map_err(|e| {
        let msg = e.to_string();
        match msg.strip_prefix("unknown field `") {
            Some(rest) => vec![(
                rest.split('`').next().unwrap_or_default().to_owned(),
                "unknown field".to_owned(),
            )],
            None => vec![("@entity".to_owned(), msg)],
        }
    })
}

impl Factory for PrometheusFactory {
    fn name(&self) -> &'static str {
        "prometheus"
    }

    fn check_config(&self, config: &mut Value) -> Result<(), Vec<(String, String)>> {
        let c = parse(config)?;
        if let Ok(v) = serde_json::to_value(c) {
            *config = v;
        }
        Ok(())
    }

    fn build(&self, config: &Value) -> Result<Arc<dyn Plugin>, String> {
        let conf = parse(config).map_err(|p| {
            p.iter()
                .map(|(f, m)| format!("{f}: {m}"))
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        Ok(Arc::new(Prometheus { conf }))
    }
}

/// One plugin instance.
pub struct Prometheus {
    conf: PrometheusConfig,
}

/// Bytes of the request as received (nginx `request_length`): request line, headers and
/// body, measured when the request arrived (before plugins edit the headers).
pub fn request_size(ctx: &RequestContext) -> u64 {
    ctx.request_size
}

/// Bytes sent to the client (nginx `bytes_sent`) as hyper writes an HTTP/1.1 response:
/// status line with the canonical reason, the headers plus the `date`, `connection: close`,
/// `content-length` or `transfer-encoding: chunked` lines hyper adds when absent, then the
/// body with its chunk framing.
pub fn response_size(ctx: &RequestContext) -> u64 {
    let reason = http::StatusCode::from_u16(ctx.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or_default();
    // "HTTP/1.1 200 OK\r\n"
    let line = 13 + reason.len() + 2;
    let h = &ctx.response_headers;
    let mut headers: usize = h.iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if !h.contains_key(http::header::DATE) {
        // "date: Wed, 05 Feb 2025 14:16:56 GMT\r\n"
        headers += 37;
    }
    let client_closes = ctx
        .request_headers
        .get(http::header::CONNECTION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")));
    if client_closes && !h.contains_key(http::header::CONNECTION) {
        // hyper answers a closing client with "connection: close\r\n".
        headers += 19;
    }
    let mut body = ctx.response_body_bytes;
    let chunked = if h.contains_key(http::header::TRANSFER_ENCODING) {
        true
    } else if h.contains_key(http::header::CONTENT_LENGTH) || matches!(ctx.status, 204 | 304) {
        false
    } else if ctx.source == "kong" {
        // A generated body has a known length: "content-length: N\r\n".
        headers += 18 + ctx.response_body_bytes.to_string().len();
        false
    } else {
        // "transfer-encoding: chunked\r\n"
        headers += 28;
        true
    };
    if chunked {
        // Each chunk's size line and trailing CRLF, then the last chunk "0\r\n\r\n".
        body += ctx.response_chunk_framing + 5;
    }
    (line + headers + 2) as u64 + body
}

/// The bytes of a request's line and headers on the wire (`GET /uri HTTP/1.1\r\n`,
/// `name: value\r\n` each, the blank line) plus its `content-length`.
pub fn request_head_size(method: &str, uri: &str, headers: &http::HeaderMap) -> u64 {
    let line = method.len() + 1 + uri.len() + 11;
    let fields: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    let body = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .unwrap_or(0);
    (line + fields + 2) as u64 + body
}

impl Plugin for Prometheus {
    fn name(&self) -> &'static str {
        "prometheus"
    }

    fn priority(&self) -> i32 {
        13
    }

    fn log(&self, ctx: &RequestContext) {
        let Some(route) = &ctx.route else {
            return;
        };
        let c = &self.conf;
        if !(c.status_code_metrics || c.latency_metrics || c.bandwidth_metrics) {
            return;
        }
        let m = &*METRICS;
        series::with(route, ctx.service.as_ref(), |series| {
            if c.status_code_metrics {
                let source = if ctx.source == "upstream" {
                    "service"
                } else {
                    "kong"
                };
                series.request(m, ctx.status, source);
            }
            if c.latency_metrics {
                let l = &ctx.latencies;
                series.latencies(m, l.kong, l.proxy, l.request);
            }
            if c.bandwidth_metrics {
                series.bandwidth(m, request_size(ctx), response_size(ctx));
            }
        });
    }
}

struct FamilyLines {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    lines: Vec<Line>,
}

fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn gauge(text: String) -> Line {
    (text.clone(), text)
}

/// The `/metrics` body (spec §7.3): families in name order, series sorted bytewise.
pub fn render(shared: &Shared) -> String {
    let node = registry::escape(&shared.conf.node_id);
    let c = &shared.counters;
    let accepted = c.accepted.load(Ordering::Relaxed);
    let handled = c.handled.load(Ordering::Relaxed);
    let active = c.active.load(Ordering::Relaxed);
    let requests = c.requests.load(Ordering::Relaxed);
    let connections = [
        ("accepted", accepted),
        ("active", active),
        ("handled", handled),
        ("reading", 0),
        ("total", requests),
        ("waiting", 0),
        ("writing", active),
    ]
    .iter()
    .map(|(state, v)| {
        gauge(format!(
            "kong_nginx_connections_total{{node_id=\"{node}\",subsystem=\"http\",state=\"{state}\"}} {v}"
        ))
    })
    .collect();
    let m = &*METRICS;
    let mut families = vec![
        FamilyLines {
            name: "kong_bandwidth_bytes",
            kind: "counter",
            help: "Total bandwidth (ingress/egress) throughput in bytes",
            lines: registry::counter_lines(
                "kong_bandwidth_bytes",
                &["service", "route", "direction", "workspace", "consumer"],
                &m.bandwidth,
            ),
        },
        FamilyLines {
            name: "kong_datastore_reachable",
            kind: "gauge",
            help: "Datastore reachable from Kong, 0 is unreachable",
            lines: vec![gauge("kong_datastore_reachable 1".to_owned())],
        },
        FamilyLines {
            name: "kong_http_requests_total",
            kind: "counter",
            help: "HTTP status codes per consumer/service/route in Kong",
            lines: registry::counter_lines(
                "kong_http_requests_total",
                &["service", "route", "code", "source", "workspace", "consumer"],
                &m.requests,
            ),
        },
        FamilyLines {
            name: "kong_kong_latency_ms",
            kind: "histogram",
            help: "Latency added by Kong and enabled plugins for each service/route in Kong",
            lines: registry::histogram_lines(
                "kong_kong_latency_ms",
                &["service", "route", "workspace"],
                &m.kong_latency,
            ),
        },
        FamilyLines {
            name: "kong_memory_workers_lua_vms_bytes",
            kind: "gauge",
            help: "Allocated bytes in worker Lua VM",
            lines: vec![gauge(format!(
                "kong_memory_workers_lua_vms_bytes{{node_id=\"{node}\",pid=\"{}\",kong_subsystem=\"http\"}} {}",
                std::process::id(),
                resident_bytes()
            ))],
        },
        FamilyLines {
            name: "kong_nginx_connections_total",
            kind: "gauge",
            help: "Number of connections by subsystem",
            lines: connections,
        },
        FamilyLines {
            name: "kong_nginx_metric_errors_total",
            kind: "counter",
            help: "Number of nginx-lua-prometheus errors",
            lines: vec![gauge("kong_nginx_metric_errors_total 0".to_owned())],
        },
        FamilyLines {
            name: "kong_nginx_requests_total",
            kind: "gauge",
            help: "Number of requests total",
            lines: vec![gauge(format!(
                "kong_nginx_requests_total{{node_id=\"{node}\",subsystem=\"http\"}} {requests}"
            ))],
        },
        FamilyLines {
            name: "kong_nginx_timers",
            kind: "gauge",
            help: "Number of nginx timers",
            lines: vec![
                gauge("kong_nginx_timers{state=\"pending\"} 0".to_owned()),
                gauge("kong_nginx_timers{state=\"running\"} 0".to_owned()),
            ],
        },
        FamilyLines {
            name: "kong_node_info",
            kind: "gauge",
            help: "Kong Node metadata information",
            lines: vec![gauge(format!(
                "kong_node_info{{node_id=\"{node}\",version=\"{}\"}} 1",
                crate::KONG_VERSION
            ))],
        },
        FamilyLines {
            name: "kong_request_latency_ms",
            kind: "histogram",
            help: "Total latency incurred during requests for each service/route in Kong",
            lines: registry::histogram_lines(
                "kong_request_latency_ms",
                &["service", "route", "workspace"],
                &m.request_latency,
            ),
        },
        FamilyLines {
            name: "kong_upstream_target_health",
            kind: "gauge",
            help: "Health status of targets of upstream. States = healthchecks_off|healthy|unhealthy|dns_error, value is 1 when state is populated.",
            lines: if health::enabled(shared) {
                health::lines(shared)
            } else {
                Vec::new()
            },
        },
        FamilyLines {
            name: "kong_upstream_latency_ms",
            kind: "histogram",
            help: "Latency added by upstream response for each service/route in Kong",
            lines: registry::histogram_lines(
                "kong_upstream_latency_ms",
                &["service", "route", "workspace"],
                &m.upstream_latency,
            ),
        },
    ];
    families.sort_by_key(|f| f.name);
    let mut out = String::new();
    for family in &mut families {
        if family.lines.is_empty() {
            continue;
        }
        family.lines.sort_by(|a, b| a.0.cmp(&b.0));
        out.push_str(&format!(
            "# HELP {} {}\n# TYPE {} {}\n",
            family.name, family.help, family.name, family.kind
        ));
        for (_, text) in &family.lines {
            out.push_str(text);
            out.push('\n');
        }
    }
    out
}
