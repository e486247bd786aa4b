//! Realistic OTLP requests whose items carry unique ids, so the sink can tell losses from
//! duplicates. Span: 10 attributes with Kong's key names, 325 bytes encoded (the tool prints
//! `bytes/item`). Ids: every item gets a global
//! sequence number (span id / log span id / data point start time).
//!
//! Everything that varies with the id has a fixed width (8-byte ids, fixed64 times and
//! values, a 16-hex-digit `request.id`), so [`crate::template`] can send these requests by
//! patching one encoded copy in place.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Metric, NumberDataPoint, ResourceMetrics,
    ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};

/// Span and log times start here (ns since the epoch).
pub(crate) const EPOCH_NS: u64 = 1_700_000_000_000_000_000;
/// Span start times advance this much per id.
pub(crate) const SPAN_STEP_NS: u64 = 1000;
/// Every span lasts this long.
pub(crate) const SPAN_DURATION_NS: u64 = 1_500_000;
/// The attribute carrying the id as 16 hex digits.
pub(crate) const REQUEST_ID: &str = "request.id";

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn s(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.to_owned())
}

fn resource() -> Resource {
    Resource {
        attributes: vec![
            kv("service.name", s("kong")),
            kv("service.instance.id", s("kong-7d9f8-x2x4p")),
        ],
        ..Default::default()
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "kong-internal".to_owned(),
        version: "0.1.0".to_owned(),
        ..Default::default()
    }
}

/// Ten attributes as Kong's spans carry them.
fn span_attributes(seq: u64) -> Vec<KeyValue> {
    vec![
        kv("http.method", s("GET")),
        kv("http.route", s("/api/orders")),
        kv("http.status_code", any_value::Value::IntValue(200)),
        kv("http.flavor", s("1.1")),
        kv("net.peer.ip", s("10.0.3.7")),
        kv("kong.service.name", s("orders")),
        kv("kong.route.name", s("orders-route")),
        kv("kong.consumer", s("acme")),
        kv("retries", any_value::Value::IntValue(0)),
        kv(REQUEST_ID, s(&format!("{seq:016x}"))),
    ]
}

/// A traces request of `items` spans, ids `first..first+items`.
pub(crate) fn traces(first: u64, items: usize) -> ExportTraceServiceRequest {
    let spans = (0..items as u64)
        .map(|i| {
            let seq = first + i;
            let start = EPOCH_NS + seq * SPAN_STEP_NS;
            Span {
                trace_id: [&seq.to_be_bytes()[..], &[7u8; 8]].concat(),
                span_id: seq.to_be_bytes().to_vec(),
                name: "kong".to_owned(),
                kind: span::SpanKind::Server as i32,
                start_time_unix_nano: start,
                end_time_unix_nano: start + SPAN_DURATION_NS,
                attributes: span_attributes(seq),
                status: Some(Status::default()),
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource()),
            scope_spans: vec![ScopeSpans {
                scope: Some(scope()),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A metrics request of `items` sum data points (one metric), ids in `start_time_unix_nano`.
pub(crate) fn metrics(first: u64, items: usize) -> ExportMetricsServiceRequest {
    let data_points = (0..items as u64)
        .map(|i| {
            let seq = first + i;
            NumberDataPoint {
                attributes: span_attributes(seq),
                start_time_unix_nano: seq,
                time_unix_nano: EPOCH_NS,
                value: Some(number_data_point::Value::AsInt(seq as i64)),
                ..Default::default()
            }
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource()),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope()),
                metrics: vec![Metric {
                    name: "kong_http_requests".to_owned(),
                    data: Some(metric::Data::Sum(Sum {
                        data_points,
                        aggregation_temporality: AggregationTemporality::Cumulative as i32,
                        is_monotonic: true,
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A logs request of `items` records, ids in `span_id`; bodies like Kong's tcp-log lines.
pub(crate) fn logs(first: u64, items: usize) -> ExportLogsServiceRequest {
    let log_records = (0..items as u64)
        .map(|i| {
            let seq = first + i;
            LogRecord {
                time_unix_nano: EPOCH_NS + seq,
                severity_number: 9,
                severity_text: "INFO".to_owned(),
                body: Some(AnyValue {
                    value: Some(s(
                        r#"{"request":{"method":"GET","uri":"/api/orders"},"response":{"status":200},"latencies":{"kong":1,"proxy":12}}"#,
                    )),
                }),
                attributes: span_attributes(seq),
                span_id: seq.to_be_bytes().to_vec(),
                ..Default::default()
            }
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource()),
            scope_logs: vec![ScopeLogs {
                scope: Some(scope()),
                log_records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}
