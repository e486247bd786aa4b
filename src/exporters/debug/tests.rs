use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

use super::format::{detailed, go_time, normal, summary, typed};
use super::*;

fn kv(k: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn s(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

fn spans() -> Batch {
    Batch::Traces(vec![ResourceSpans {
        resource: Some(Resource {
            attributes: vec![kv("service.name", s("kong"))],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans: vec![Span {
                trace_id: hex::decode("3bde5d3ee82303571bba6e1136781fe4").unwrap(),
                span_id: hex::decode("2cf3ef2899aba35c").unwrap(),
                name: "GET /orders".into(),
                kind: 2,
                start_time_unix_nano: 1_699_678_143_509_369_393,
                end_time_unix_nano: 1_699_678_143_509_493_770,
                attributes: vec![
                    kv("http.method", s("GET")),
                    kv("n", any_value::Value::IntValue(3)),
                ],
                status: Some(Status::default()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }])
}

#[test]
fn basic_summary_counts() {
    assert_eq!(
        summary(&spans()),
        ("Traces", "\"resource spans\": 1, \"spans\": 1".to_owned())
    );
}

#[test]
fn normal_prints_one_line_per_span() {
    assert_eq!(
        normal(&spans()),
        "GET /orders 3bde5d3ee82303571bba6e1136781fe4 2cf3ef2899aba35c http.method=GET n=3\n"
    );
}

#[test]
fn detailed_span_layout() {
    let expected = "ResourceSpans #0
Resource SchemaURL: 
Resource attributes:
     -> service.name: Str(kong)
ScopeSpans #0
ScopeSpans SchemaURL: 
InstrumentationScope  
Span #0
    Trace ID       : 3bde5d3ee82303571bba6e1136781fe4
    Parent ID      : 
    ID             : 2cf3ef2899aba35c
    Name           : GET /orders
    Kind           : Server
    Start time     : 2023-11-11 04:49:03.509369393 +0000 UTC
    End time       : 2023-11-11 04:49:03.50949377 +0000 UTC
    Status code    : Unset
    Status message : 
Attributes:
     -> http.method: Str(GET)
     -> n: Int(3)
";
    assert_eq!(detailed(&spans()), expected);
}

#[test]
fn detailed_log_and_value_rendering() {
    let body = kv(
        "request",
        any_value::Value::KvlistValue(KeyValueList {
            values: vec![kv("method", s("GET"))],
        }),
    );
    let batch = Batch::Logs(vec![ResourceLogs {
        scope_logs: vec![ScopeLogs {
            log_records: vec![LogRecord {
                body: Some(AnyValue {
                    value: Some(s("{\"a\":1}")),
                }),
                attributes: vec![
                    body,
                    kv(
                        "started_at",
                        any_value::Value::DoubleValue(1_700_000_000_123.0),
                    ),
                ],
                severity_number: 10,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }]);
    let text = detailed(&batch);
    assert!(text.starts_with("ResourceLog #0\n"), "{text}");
    assert!(
        text.contains("Timestamp: 1970-01-01 00:00:00 +0000 UTC\n"),
        "{text}"
    );
    assert!(text.contains("SeverityNumber: Info2(10)\n"), "{text}");
    assert!(text.contains("Body: Str({\"a\":1})\n"), "{text}");
    assert!(
        text.contains("     -> request: Map({\"method\":\"GET\"})\n"),
        "{text}"
    );
    assert!(
        text.contains("     -> started_at: Double(1700000000123)\n"),
        "{text}"
    );
    assert!(
        text.ends_with("Trace ID: \nSpan ID: \nFlags: 0\n"),
        "{text}"
    );
    let slice = AnyValue {
        value: Some(any_value::Value::ArrayValue(ArrayValue {
            values: vec![AnyValue {
                value: Some(any_value::Value::DoubleValue(0.5)),
            }],
        })),
    };
    assert_eq!(typed(Some(&slice)), "Slice([0.5])");
    assert_eq!(typed(None), "Empty()");
}

#[test]
fn detailed_metrics() {
    let batch = Batch::Metrics(vec![ResourceMetrics {
        scope_metrics: vec![ScopeMetrics {
            metrics: vec![
                Metric {
                    name: "kong_http_requests_total".into(),
                    data: Some(metric::Data::Sum(Sum {
                        data_points: vec![NumberDataPoint {
                            attributes: vec![kv("code", s("200"))],
                            value: Some(number_data_point::Value::AsDouble(3.0)),
                            ..Default::default()
                        }],
                        aggregation_temporality: AggregationTemporality::Delta as i32,
                        is_monotonic: true,
                    })),
                    ..Default::default()
                },
                Metric {
                    name: "latency".into(),
                    data: Some(metric::Data::Histogram(Histogram {
                        data_points: vec![HistogramDataPoint {
                            count: 3,
                            sum: Some(7.5),
                            explicit_bounds: vec![1.0, 5.0],
                            bucket_counts: vec![1, 1, 1],
                            ..Default::default()
                        }],
                        aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    })),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }],
        ..Default::default()
    }]);
    let text = detailed(&batch);
    assert!(text.contains("     -> DataType: Sum\n     -> IsMonotonic: true\n     -> AggregationTemporality: Delta\nNumberDataPoints #0\nData point attributes:\n     -> code: Str(200)\n"), "{text}");
    assert!(text.contains("Value: 3.000000\n"), "{text}");
    assert!(text.contains("Count: 3\nSum: 7.500000\nExplicitBounds #0: 1.000000\nExplicitBounds #1: 5.000000\nBuckets #0, Count: 1\n"), "{text}");
    assert_eq!(
        normal(&batch),
        "kong_http_requests_total{code=200} 3\nlatency{} count=3 sum=7.5 le1=1 le5=1 1\n"
    );
}

#[test]
fn go_time_trims_fraction() {
    assert_eq!(go_time(0), "1970-01-01 00:00:00 +0000 UTC");
    assert_eq!(go_time(1_500_000_000), "1970-01-01 00:00:01.5 +0000 UTC");
}

#[test]
fn config_rules() {
    let raw: RawConfig = yaml_serde::from_str("verbosity: Detailed").unwrap();
    assert!(FACTORY.validate(&raw).is_ok());
    let raw: RawConfig = yaml_serde::from_str("verbosity: loud").unwrap();
    assert_eq!(
        FACTORY.validate(&raw).unwrap_err().to_string(),
        "verbosity: verbosity level \"loud\" is not supported"
    );
}

#[test]
fn sampling_keeps_initial_then_every_nth() {
    let d = Debug {
        verbosity: Verbosity::Basic,
        name: "debug".into(),
        initial: 2,
        thereafter: 3,
        internal: true,
        window: AtomicU64::new(0),
        seen: AtomicU64::new(0),
    };
    let pattern: Vec<bool> = (0..8).map(|_| d.sampled_at(100)).collect();
    assert_eq!(
        pattern,
        [true, true, false, false, true, false, false, true]
    );
    // A new second starts over.
    assert!(d.sampled_at(101));
}
