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
pub mod encode;
pub mod export;
pub mod logs;
pub mod propagation;
pub mod queue;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use serde_json::Value;

use self::config::{Effective, OtelConfig};
use self::encode::{Kind, SpanHead, Value as Attr};
use self::export::{Endpoint, LogSender, TraceSender};
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
    pub spans: Vec<ChildSpan>,
    /// ns when routing began (end of rewrite).
    router_start: Option<u64>,
    /// The id the `kong.router` span gets (active while routing).
    router_span_id: [u8; 8],
}

/// A span finished before the log phase, kept until the log phase encodes it.
#[derive(Debug, Clone)]
pub struct ChildSpan {
    /// Its id.
    pub span_id: [u8; 8],
    /// Its name.
    pub name: &'static str,
    /// Its kind.
    pub kind: Kind,
    /// Unix ns.
    pub start: u64,
    /// Unix ns.
    pub end: u64,
    /// Status ERROR.
    pub error: bool,
    /// The resolution of a `kong.dns` span.
    pub dns: Option<DnsQuery>,
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

fn internal_span(name: &'static str, span_id: [u8; 8], start: u64, end: u64) -> ChildSpan {
    ChildSpan {
        span_id,
        name,
        kind: Kind::Internal,
        start,
        end,
        error: false,
        dns: None,
    }
}

/// Marks `span_id` as the request's active span: log lines captured from now on carry it.
fn activate(ctx: &RequestContext, span_id: [u8; 8]) {
    if let Some(logs) = &ctx.logs {
        logs.set_active_span(Some(span_id));
    }
}

/// Appends one encoded span whose parent is the `kong` span.
fn write_child(out: &mut BytesMut, state: &TraceState, span: &ChildSpan) {
    let head = SpanHead {
        trace_id: &state.trace_id,
        span_id: &span.span_id,
        parent: Some(&state.root_span_id),
        name: span.name,
        kind: span.kind,
        start: span.start,
        end: span.end,
        error: span.error,
    };
    encode::span(out, &head, |body| {
        let Some(query) = &span.dns else {
            return;
        };
        // The `kong.dns` span of one resolution: on failure an `exception` event.
        body.attribute("dns.record.domain", Attr::Str(&query.domain));
        body.attribute("dns.record.port", Attr::Double(f64::from(query.port)));
        match &query.ip {
            Some(ip) => body.attribute("dns.record.ip", Attr::Str(ip)),
            None => body.event(
                query.end_ns,
                "exception",
                &[(
                    "exception.message",
                    query.error.as_deref().unwrap_or("dns resolution failed"),
                )],
            ),
        }
    });
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
            router_span_id: [0; 8],
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

    fn write_root(out: &mut BytesMut, ctx: &RequestContext, state: &TraceState, end: u64) {
        let route_path = ctx
            .route
            .as_ref()
            .and_then(|r| r.paths.as_ref())
            .and_then(|p| p.first())
            .map_or("", String::as_str);
        let flavor = match ctx.version {
            http::Version::HTTP_10 => "1.0",
            http::Version::HTTP_2 => "2.0",
            _ => "1.1",
        };
        let head = SpanHead {
            trace_id: &state.trace_id,
            span_id: &state.root_span_id,
            parent: state.parent_id.as_ref(),
            name: "kong",
            kind: Kind::Server,
            start: ctx.started_at * 1_000_000,
            end,
            error: false,
        };
        let peer_ip = crate::proxy::context::ip_text(ctx.peer.ip());
        encode::span(out, &head, |b| {
            b.attribute("http.method", Attr::Str(&ctx.method));
            b.attribute(
                "http.url",
                Attr::Concat(&[ctx.scheme, "://", &ctx.host, &ctx.uri]),
            );
            b.attribute("http.host", Attr::Str(&ctx.host));
            b.attribute("http.scheme", Attr::Str(ctx.scheme));
            b.attribute("http.flavor", Attr::Str(flavor));
            b.attribute("http.client_ip", Attr::Str(&ctx.client_ip));
            b.attribute("net.peer.ip", Attr::Str(&peer_ip));
            b.attribute("kong.request.id", Attr::Str(&ctx.request_id));
            b.attribute("http.status_code", Attr::Int(i64::from(ctx.status)));
            b.attribute("http.route", Attr::Str(route_path));
        });
    }

    /// One `kong.balancer` span per try, each ended when the next starts; the last one
    /// has the id injected upstream.
    fn write_balancer(
        out: &mut BytesMut,
        ends: &mut Vec<usize>,
        ctx: &RequestContext,
        state: &TraceState,
        end: u64,
    ) {
        let peer_name = ctx.service.as_ref().map_or("", |s| s.host.as_str());
        let count = ctx.tries.len();
        for (i, t) in ctx.tries.iter().enumerate() {
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
            let head = SpanHead {
                trace_id: &state.trace_id,
                span_id: &id,
                parent: Some(&state.root_span_id),
                name: "kong.balancer",
                kind: Kind::Client,
                start,
                end: span_end.max(start),
                error: t.code.is_some(),
            };
            encode::span(out, &head, |b| {
                b.attribute("try_count", Attr::Double((i + 1) as f64));
                b.attribute("net.peer.ip", Attr::Str(&t.ip));
                b.attribute("net.peer.port", Attr::Double(f64::from(t.port)));
                b.attribute("net.peer.name", Attr::Str(peer_name));
                if let Some(code) = t.code {
                    b.attribute("http.status_code", Attr::Int(i64::from(code)));
                }
            });
            ends.push(out.len());
        }
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
            if tracing_on(ctx) {
                // Routing runs next: the router span is the active one until access.
                let active = if instrumented(ctx, "router") {
                    state.router_span_id = span_id();
                    state.router_span_id
                } else {
                    state.root_span_id
                };
                activate(ctx, active);
            }
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
                let span = internal_span("kong.router", state.router_span_id, router_start, start);
                state.spans.push(span);
            }
        }
        let tracing = tracing_on(ctx);
        let access = (tracing && instrumented(ctx, "plugin_access")).then(span_id);
        if tracing {
            activate(ctx, access.unwrap_or(state.root_span_id));
        }
        self.propagate(ctx, &mut state);
        if let Some(id) = access {
            let span = internal_span("kong.access.plugin.opentelemetry", id, start, now_ns());
            state.spans.push(span);
        }
        if tracing {
            activate(ctx, state.root_span_id);
        }
        ctx.trace = Some(Box::new(state));
        None
    }

    fn header_filter(&self, ctx: &mut RequestContext, headers: &mut http::HeaderMap) {
        let start = now_ns();
        let tracing = tracing_on(ctx);
        let on = tracing && instrumented(ctx, "plugin_header_filter");
        let dns = instrumented(ctx, "dns_query");
        let queries = std::mem::take(&mut ctx.dns_queries);
        let header_filter = on.then(span_id);
        if let (Some(id), Some(logs)) = (header_filter, &ctx.logs) {
            logs.set_active_span(Some(id));
        }
        let logs = &ctx.logs;
        let Some(state) = ctx.trace.as_mut() else {
            return;
        };
        if dns {
            // The balancer's resolutions ran between access and header_filter.
            for query in queries {
                state.spans.push(ChildSpan {
                    span_id: span_id(),
                    name: "kong.dns",
                    kind: Kind::Client,
                    start: query.start_ns,
                    end: query.end_ns,
                    error: query.ip.is_none(),
                    dns: Some(query),
                });
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
        if let Some(id) = header_filter {
            let span = internal_span(
                "kong.header_filter.plugin.opentelemetry",
                id,
                start,
                now_ns(),
            );
            state.spans.push(span);
        }
        if let (true, Some(logs)) = (tracing, logs) {
            logs.set_active_span(Some(state.root_span_id));
        }
    }

    fn log(&self, ctx: &RequestContext) {
        self.export_spans(ctx);
        self.export_logs(ctx);
    }
}

impl OpenTelemetry {
    /// Encodes the request's spans into one buffer and queues each as an entry (Kong queues
    /// spans one by one).
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
        let count = state.spans.len() + 2 + ctx.tries.len();
        let mut out = BytesMut::with_capacity(256 * count);
        let mut ends = Vec::with_capacity(count);
        Self::write_root(&mut out, ctx, state, end);
        ends.push(out.len());
        if let Some(router_start) = state.router_start {
            if instrumented(ctx, "router") {
                // Access never ran: the router span ends where Kong's processing did.
                let mut span = internal_span(
                    "kong.router",
                    state.router_span_id,
                    router_start,
                    end.min((ctx.started_at + ctx.latencies.kong) * 1_000_000)
                        .max(router_start),
                );
                span.error = ctx.route.is_none();
                write_child(&mut out, state, &span);
                ends.push(out.len());
            }
        }
        for span in &state.spans {
            write_child(&mut out, state, span);
            ends.push(out.len());
        }
        if instrumented(ctx, "balancer") {
            Self::write_balancer(&mut out, &mut ends, ctx, state, end);
        }
        let all: Bytes = out.freeze();
        let mut from = 0;
        let entries = ends
            .into_iter()
            .map(|to| {
                let entry = all.slice(from..to);
                from = to;
                entry
            })
            .collect();
        queue.push_all(entries);
    }
}
