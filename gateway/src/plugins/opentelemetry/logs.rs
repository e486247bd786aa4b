//! The plugin's log records (Kong/kong:kong/plugins/opentelemetry/logs.lua, spec §8.8): the
//! captured lines of [`crate::observability::logs`] as OTLP `LogRecord`s.
//!
//! Attributes follow Kong's names. Kong fills `introspection.*` from Lua's `debug.getinfo` of
//! the logging call; here they describe the Rust call site: `introspection.source` is
//! `@<file>`, `introspection.current.line` its line, `introspection.name` the module,
//! `introspection.namewhat` empty and `introspection.what` `Rust`.

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;

use super::export::{double_kv, string_kv};
use crate::observability::logs::Record;

/// The trace context of the request a record was logged in.
#[derive(Debug, Clone, Copy)]
pub struct TraceContext {
    /// The request's (possibly extracted) trace id.
    pub trace_id: [u8; 16],
    /// The `kong` span, for lines logged before a span was active; `None` when tracing is
    /// off.
    pub span_id: Option<[u8; 8]>,
    /// W3C trace flags (sampled bit).
    pub flags: u32,
}

/// The request a record was logged in.
#[derive(Debug, Clone, Copy)]
pub struct RequestScope<'a> {
    /// Kong's request id.
    pub request_id: &'a str,
    /// Trace context when the plugin's access phase ran.
    pub trace: Option<TraceContext>,
}

/// One OTLP record; `request` is `None` for worker-scoped lines.
pub fn log_record(record: Record, request: Option<RequestScope<'_>>) -> LogRecord {
    let mut attributes = Vec::with_capacity(6);
    if let Some(r) = &request {
        attributes.push(string_kv("request.id", r.request_id));
    }
    attributes.extend([
        double_kv("introspection.current.line", f64::from(record.line)),
        string_kv("introspection.name", record.target),
        string_kv("introspection.namewhat", ""),
        string_kv("introspection.source", &format!("@{}", record.file)),
        string_kv("introspection.what", "Rust"),
    ]);
    let trace = request.and_then(|r| r.trace);
    LogRecord {
        time_unix_nano: record.time_unix_nano,
        observed_time_unix_nano: record.time_unix_nano,
        severity_number: record.severity.number(),
        severity_text: record.severity.text().to_owned(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(record.body)),
        }),
        attributes,
        flags: trace.map_or(0, |t| t.flags),
        trace_id: trace.map(|t| t.trace_id.to_vec()).unwrap_or_default(),
        // The span active when the line was logged (Kong's `kong.tracing.active_span()`).
        span_id: trace
            .and_then(|t| t.span_id.map(|root| record.span_id.unwrap_or(root)))
            .map(|s| s.to_vec())
            .unwrap_or_default(),
        ..LogRecord::default()
    }
}
