//! The `opentelemetry` plugin (Kong 3.9, priority 14): spans of each request exported as
//! OTLP/HTTP protobuf through a bounded queue, and trace-context propagation.
//!
//! ```yaml
//! plugins:
//! - name: opentelemetry
//!   config:
//!     traces_endpoint: http://collector:4318/v1/traces
//!     propagation:
//!       default_format: w3c
//!       inject: [w3c]
//!     resource_attributes:
//!       service.name: kong-otel
//! ```
//!
//! Spans exist only when kong.conf `tracing_instrumentations` is not `off`; they are sampled
//! by `sampling_rate` (else `tracing_sampling_rate`) on the trace id (spec §8.4). Emitted:
//! `kong` (SERVER), `kong.router`, `kong.access.plugin.opentelemetry`,
//! `kong.header_filter.plugin.opentelemetry` (INTERNAL), `kong.dns` (CLIENT) per resolution of
//! a host-name upstream (`dns_query`) and one `kong.balancer` (CLIENT) per upstream try. The upstream receives the `kong.balancer` span id.
//!
//! With `logs_endpoint`, the gateway's own log lines at or above kong.conf `log_level` are
//! exported as OTLP log records ([`logs`]): those logged while handling a request carry
//! `request.id` and the request's trace context, the others (background tasks) do not. The
//! logs queue drops new records when full.

pub mod config;
pub mod export;
pub mod logs;
pub mod propagation;
pub mod queue;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use opentelemetry_proto::tonic::trace::v1::span::Event;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{Span, Status};
use serde_json::Value;

use self::config::{Effective, OtelConfig};
use self::export::{double_kv, int_kv, string_kv, Endpoint, LogSender, TraceSender};
use self::propagation::Outgoing;
use self::queue::Queue;
use super::{Exit, Factory, Plugin};
use crate::observability::logs::{self as capture, Severity};
use crate::proxy::context::{DnsQuery, RequestContext};

/// The plugin's factory.
pub struct OpenTelemetryFactory;

impl Factory for OpenTelemetryFactory {
    fn name(&self) -> &'static str {
        "opentelemetry"
    }

    fn check_config(&self, config: &mut Value) -> Result<(), Vec<(String, String)>> {
        config::check(config)
    }

    fn build(&self, config: &Value) -> Result<Arc<dyn Plugin>, String> {
        let conf = config::parse(config).map_err(|problems| {
            problems
                .iter()
                .map(|(f, m)| format!("{f}: {m}"))
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        Ok(Arc::new(OpenTelemetry::new(conf)))
    }
}

/// The trace state of one request, kept in the request context between phases.
#[derive(Debug, Clone)]
pub struct TraceState {
    /// Trace id (extracted or new).
    pub trace_id: [u8; 16],
    /// The `kong` span id.
    pub root_span_id: [u8; 8],
    /// The `kong` span's parent (incoming span id).
    pub parent_id: Option<[u8; 8]>,
    /// The pre-allocated id of the final `kong.balancer` span.
    pub balancer_span_id: Option<[u8; 8]>,
    /// Sampling decision.
    pub sampled: bool,
    /// Finished child spans, in creation order.
    pub spans: Vec<Span>,
    /// ns when routing began (end of rewrite).
    router_start: Option<u64>,
}

/// One plugin instance.
pub struct OpenTelemetry {
    conf: OtelConfig,
    effective: Effective,
    queue: Option<Arc<Queue<TraceSender>>>,
    logs_queue: Option<Arc<Queue<LogSender>>>,
    /// Keeps log capture on while this instance exports logs.
    _capture: Option<capture::Enabled>,
}

impl Drop for OpenTelemetry {
    fn drop(&mut self) {
        if let Some(q) = &self.queue {
            q.close();
        }
        if let Some(q) = &self.logs_queue {
            q.close();
        }
    }
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn span_id() -> [u8; 8] {
    loop {
        let id: [u8; 8] = rand::random();
        if id != [0; 8] {
            return id;
        }
    }
}

/// Kong's probability sampler: the first 8 trace-id bytes as a little-endian u64 < rate × 2^64.
pub fn sample(trace_id: &[u8; 16], rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    if rate <= 0.0 {
        return false;
    }
    let mut first = [0u8; 8];
    first.copy_from_slice(&trace_id[..8]);
    (u64::from_le_bytes(first) as f64) < rate * 2f64.powi(64)
}

/// Whether kong.conf enables an instrumentation (`all` enables every one).
fn instrumented(ctx: &RequestContext, name: &str) -> bool {
    ctx.conf.as_ref().is_some_and(|c| {
        c.tracing_instrumentations
            .iter()
            .any(|i| i == "all" || i == name)
    })
}

fn tracing_on(ctx: &RequestContext) -> bool {
    ctx.conf
        .as_ref()
        .is_some_and(|c| !c.tracing_instrumentations.is_empty())
}

fn internal_span(state: &TraceState, name: &str, start: u64, end: u64) -> Span {
    Span {
        trace_id: state.trace_id.to_vec(),
        span_id: span_id().to_vec(),
        parent_span_id: state.root_span_id.to_vec(),
        name: name.to_owned(),
        kind: SpanKind::Internal as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        status: Some(Status::default()),
        ..Span::default()
    }
}

/// The `kong.dns` span of one resolution (CLIENT; on failure ERROR with an `exception`
/// event).
fn dns_span(state: &TraceState, query: &DnsQuery) -> Span {
    let mut span = internal_span(state, "kong.dns", query.start_ns, query.end_ns);
    span.kind = SpanKind::Client as i32;
    span.attributes = vec![
        string_kv("dns.record.domain", &query.domain),
        double_kv("dns.record.port", f64::from(query.port)),
    ];
    match (&query.ip, &query.error) {
        (Some(ip), _) => span.attributes.push(string_kv("dns.record.ip", ip)),
        (None, error) => {
            span.status = Some(Status {
                code: StatusCode::Error as i32,
                ..Status::default()
            });
            span.events.push(Event {
                time_unix_nano: query.end_ns,
                name: "exception".to_owned(),
                attributes: vec![string_kv(
                    "exception.message",
                    error.as_deref().unwrap_or("dns resolution failed"),
                )],
                ..Event::default()
            });
        }
    }
    span
}

impl OpenTelemetry {
    fn endpoint(conf: &OtelConfig, field: &str, url: &str) -> Option<Endpoint> {
        let uri = url
            .parse::<http::Uri>()
            .ok()
            .filter(|u| u.scheme_str() == Some("http") && u.host().is_some());
        if uri.is_none() {
            tracing::error!(
                "opentelemetry: {field} {url} is not an http:// URL; nothing is exported there"
            );
        }
        let headers: Vec<(String, String)> = conf
            .headers
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let attrs = conf
            .resource_attributes
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Some(Endpoint::new(
            uri?,
            &headers,
            attrs,
            conf.connect_timeout,
            conf.send_timeout,
            conf.read_timeout,
        ))
    }

    fn new(conf: OtelConfig) -> Self {
        let queue = conf
            .traces_url()
            .and_then(|url| Self::endpoint(&conf, "traces_endpoint", url))
            .map(|endpoint| {
                Queue::new(
                    "opentelemetry:traces".to_owned(),
                    conf.queue.clone(),
                    TraceSender(endpoint),
                )
            });
        let logs_queue = conf
            .logs_endpoint
            .as_deref()
            .and_then(|url| Self::endpoint(&conf, "logs_endpoint", url))
            .map(|endpoint| {
                Queue::new(
                    "opentelemetry:logs".to_owned(),
                    conf.queue.clone(),
                    LogSender(endpoint),
                )
            });
        Self {
            effective: conf.effective(),
            _capture: logs_queue.is_some().then(capture::Enabled::acquire),
            conf,
            queue,
            logs_queue,
        }
    }

    /// The instance's span export queue (for tests and own metrics).
    pub fn queue(&self) -> Option<&Arc<Queue<TraceSender>>> {
        self.queue.as_ref()
    }

    /// The instance's log export queue (for tests and own metrics).
    pub fn logs_queue(&self) -> Option<&Arc<Queue<LogSender>>> {
        self.logs_queue.as_ref()
    }

    /// Queues the worker lines and this request's lines at or above kong.conf `log_level`.
    fn export_logs(&self, ctx: &RequestContext) {
        let Some(queue) = &self.logs_queue else {
            return;
        };
        let request = ctx.logs.as_ref().map(|l| l.take()).unwrap_or_default();
        let worker = capture::take_worker();
        if request.is_empty() && worker.is_empty() {
            return;
        }
        let level = ctx.conf.as_ref().map_or("notice", |c| c.log_level.as_str());
        let threshold = Severity::from_log_level(level);
        if let Some(conf) = &ctx.conf {
            queue.sender().0.init_resource(&conf.node_id);
        }
        let trace = ctx.trace.as_deref().map(|state| logs::TraceContext {
            trace_id: state.trace_id,
            span_id: tracing_on(ctx).then_some(state.root_span_id),
            flags: u32::from(state.sampled),
        });
        let scope = logs::RequestScope {
            request_id: &ctx.request_id,
            trace,
        };
        let records = worker
            .into_iter()
            .filter(|r| r.severity >= threshold)
            .map(|r| logs::log_record(r, None))
            .chain(
                request
                    .into_iter()
                    .filter(|r| r.severity >= threshold)
                    .map(|r| logs::log_record(r, Some(scope))),
            )
            .collect();
        queue.push_while_room(records);
    }

    fn fresh_state(&self, ctx: &RequestContext) -> TraceState {
        let trace_id: [u8; 16] = rand::random();
        let rate = ctx.conf.as_ref().map_or(0.0, |c| c.tracing_sampling_rate);
        TraceState {
            trace_id,
            root_span_id: span_id(),
            parent_id: None,
            balancer_span_id: None,
            sampled: tracing_on(ctx) && sample(&trace_id, rate),
            spans: Vec::new(),
            router_start: None,
        }
    }

    fn propagate(&self, ctx: &mut RequestContext, state: &mut TraceState) {
        let extracted = propagation::extract(&ctx.request_headers, &self.effective.extract);
        if let Some(e) = &extracted {
            if let Some(t) = e.trace_id {
                state.trace_id = t;
            }
            if let Some(s) = e.span_id {
                state.parent_id = Some(s);
            }
        }
        let rate = self
            .conf
            .sampling_rate
            .or_else(|| ctx.conf.as_ref().map(|c| c.tracing_sampling_rate))
            .unwrap_or(0.01);
        state.sampled = tracing_on(ctx)
            && extracted.as_ref().and_then(|e| e.sampled) != Some(false)
            && sample(&state.trace_id, rate);
        for name in &self.effective.clear {
            ctx.request_headers.remove(name.as_str());
        }
        let balancer = (tracing_on(ctx) && instrumented(ctx, "balancer")).then(span_id);
        state.balancer_span_id = balancer;
        let outgoing = Outgoing {
            trace_id: state.trace_id,
            trace_id_len: extracted
                .as_ref()
                .filter(|e| e.trace_id.is_some())
                .map(|e| e.trace_id_len),
            span_id: balancer.unwrap_or(state.root_span_id),
            parent_id: if balancer.is_some() {
                Some(state.root_span_id)
            } else {
                state.parent_id
            },
            sampled: state.sampled,
            debug: extracted.as_ref().is_some_and(|e| e.debug),
        };
        let baggage = extracted
            .as_ref()
            .map(|e| e.baggage.as_slice())
            .unwrap_or_default();
        for injector in &self.effective.inject {
            let format = if injector == "preserve" {
                match &extracted {
                    Some(e) if e.format == "b3" && e.single => "b3-single",
                    Some(e) => e.format,
                    None => self.effective.default_format.as_str(),
                }
            } else {
                injector.as_str()
            };
            if let Some(id) =
                propagation::inject(&mut ctx.request_headers, format, &outgoing, baggage)
            {
                let key = propagation::log_key(format);
                match ctx.trace_ids.iter_mut().find(|(k, _)| *k == key) {
                    Some(slot) => slot.1 = id,
                    None => ctx.trace_ids.push((key, id)),
                }
            }
        }
    }

    fn root_span(ctx: &RequestContext, state: &TraceState, end: u64) -> Span {
        let host = &ctx.host;
        let route_path = ctx
            .route
            .as_ref()
            .and_then(|r| r.paths.as_ref())
            .and_then(|p| p.first().cloned())
            .unwrap_or_default();
        let flavor = match ctx.version {
            http::Version::HTTP_10 => "1.0",
            http::Version::HTTP_2 => "2.0",
            _ => "1.1",
        };
        Span {
            trace_id: state.trace_id.to_vec(),
            span_id: state.root_span_id.to_vec(),
            parent_span_id: state.parent_id.map(|p| p.to_vec()).unwrap_or_default(),
            name: "kong".to_owned(),
            kind: SpanKind::Server as i32,
            start_time_unix_nano: ctx.started_at * 1_000_000,
            end_time_unix_nano: end,
            attributes: vec![
                string_kv("http.method", &ctx.method),
                string_kv("http.url", &format!("{}://{host}{}", ctx.scheme, ctx.uri)),
                string_kv("http.host", host),
                string_kv("http.scheme", ctx.scheme),
                string_kv("http.flavor", flavor),
                string_kv("http.client_ip", &ctx.client_ip),
                string_kv("net.peer.ip", &ctx.peer.ip().to_string()),
                string_kv("kong.request.id", &ctx.request_id),
                int_kv("http.status_code", i64::from(ctx.status)),
                string_kv("http.route", &route_path),
            ],
            status: Some(Status::default()),
            ..Span::default()
        }
    }

    fn balancer_spans(ctx: &RequestContext, state: &TraceState, end: u64) -> Vec<Span> {
        let peer_name = ctx
            .service
            .as_ref()
            .map(|s| s.host.clone())
            .unwrap_or_default();
        let count = ctx.tries.len();
        ctx.tries
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let last = i + 1 == count;
                let id = match state.balancer_span_id {
                    Some(id) if last => id,
                    _ => span_id(),
                };
                let start = t.balancer_start * 1_000_000;
                let span_end = if last {
                    end
                } else {
                    ctx.tries[i + 1].balancer_start * 1_000_000
                };
                let mut attributes = vec![
                    double_kv("try_count", (i + 1) as f64),
                    string_kv("net.peer.ip", &t.ip),
                    double_kv("net.peer.port", f64::from(t.port)),
                    string_kv("net.peer.name", &peer_name),
                ];
                let mut status = Status::default();
                if let Some(code) = t.code {
                    attributes.push(int_kv("http.status_code", i64::from(code)));
                    status.code = StatusCode::Error as i32;
                }
                Span {
                    trace_id: state.trace_id.to_vec(),
                    span_id: id.to_vec(),
                    parent_span_id: state.root_span_id.to_vec(),
                    name: "kong.balancer".to_owned(),
                    kind: SpanKind::Client as i32,
                    start_time_unix_nano: start,
                    end_time_unix_nano: span_end.max(start),
                    attributes,
                    status: Some(status),
                    ..Span::default()
                }
            })
            .collect()
    }
}

impl Plugin for OpenTelemetry {
    fn name(&self) -> &'static str {
        "opentelemetry"
    }

    fn drain(&self) -> Option<crate::plugins::Drain> {
        if self.queue.is_none() && self.logs_queue.is_none() {
            return None;
        }
        let (traces, logs) = (self.queue.clone(), self.logs_queue.clone());
        Some(Box::pin(async move {
            let traces = async {
                if let Some(q) = traces {
                    q.drain().await;
                }
            };
            let logs = async {
                if let Some(q) = logs {
                    q.drain().await;
                }
            };
            tokio::join!(traces, logs);
        }))
    }

    fn priority(&self) -> i32 {
        14
    }

    fn rewrite(&self, ctx: &mut RequestContext) -> Option<Exit> {
        if ctx.trace.is_none() {
            let mut state = self.fresh_state(ctx);
            state.router_start = Some(now_ns());
            ctx.trace = Some(Box::new(state));
        }
        None
    }

    fn access(&self, ctx: &mut RequestContext) -> Option<Exit> {
        let start = now_ns();
        let mut state = match ctx.trace.take() {
            Some(s) => *s,
            None => self.fresh_state(ctx),
        };
        if let Some(router_start) = state.router_start.take() {
            if instrumented(ctx, "router") {
                let span = internal_span(&state, "kong.router", router_start, start);
                state.spans.push(span);
            }
        }
        self.propagate(ctx, &mut state);
        if instrumented(ctx, "plugin_access") {
            let span = internal_span(&state, "kong.access.plugin.opentelemetry", start, now_ns());
            state.spans.push(span);
        }
        ctx.trace = Some(Box::new(state));
        None
    }

    fn header_filter(&self, ctx: &mut RequestContext, headers: &mut http::HeaderMap) {
        let start = now_ns();
        let on = instrumented(ctx, "plugin_header_filter");
        let dns = instrumented(ctx, "dns_query");
        let queries = std::mem::take(&mut ctx.dns_queries);
        let Some(state) = ctx.trace.as_mut() else {
            return;
        };
        if dns {
            // The balancer's resolutions ran between access and header_filter.
            for query in &queries {
                let span = dns_span(state, query);
                state.spans.push(span);
            }
        }
        if let Some(name) = &self.conf.http_response_header_for_traceid {
            if let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_str(&propagation::hex(&state.trace_id)),
            ) {
                headers.insert(n, v);
            }
        }
        if on {
            let span = internal_span(
                state,
                "kong.header_filter.plugin.opentelemetry",
                start,
                now_ns(),
            );
            state.spans.push(span);
        }
    }

    fn log(&self, ctx: &RequestContext) {
        self.export_spans(ctx);
        self.export_logs(ctx);
    }
}

impl OpenTelemetry {
    fn export_spans(&self, ctx: &RequestContext) {
        let (Some(queue), Some(state)) = (&self.queue, ctx.trace.as_deref()) else {
            return;
        };
        if !state.sampled || !tracing_on(ctx) {
            return;
        }
        let end = now_ns();
        if let Some(conf) = &ctx.conf {
            queue.sender().0.init_resource(&conf.node_id);
        }
        let mut spans = Vec::with_capacity(state.spans.len() + 1 + ctx.tries.len());
        spans.push(Self::root_span(ctx, state, end));
        spans.extend(state.spans.iter().cloned());
        if let Some(router_start) = state.router_start {
            if instrumented(ctx, "router") {
                let mut span = internal_span(
                    state,
                    "kong.router",
                    router_start,
                    end.min((ctx.started_at + ctx.latencies.kong) * 1_000_000)
                        .max(router_start),
                );
                if ctx.route.is_none() {
                    span.status = Some(Status {
                        code: StatusCode::Error as i32,
                        ..Status::default()
                    });
                }
                spans.insert(1, span);
            }
        }
        if instrumented(ctx, "balancer") {
            spans.extend(Self::balancer_spans(ctx, state, end));
        }
        queue.push_all(spans);
    }
}
