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

mod redaction {
    use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
    use opentelemetry_proto::tonic::metrics::v1::{Exemplar, Gauge};
    use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};

    use super::super::redact::is_secret;
    use super::*;

    const SECRET: &str = "s3cr3t-value";

    fn map(entries: Vec<KeyValue>) -> any_value::Value {
        any_value::Value::KvlistValue(KeyValueList { values: entries })
    }

    #[test]
    fn secret_keys_match_ignoring_case_and_after_header_prefixes() {
        for key in [
            "authorization",
            "Authorization",
            "PROXY-AUTHORIZATION",
            "Cookie",
            "set-cookie",
            "X-Api-Key",
            "api-key",
            "api_token",
            "x-auth-token",
            "password",
            "Passwd",
            "secret",
            "token",
            "http.request.header.authorization",
            "HTTP.Request.Header.X-API-KEY",
            "http.response.header.set-cookie",
        ] {
            assert!(is_secret(key), "{key} is a credential");
        }
        for key in [
            "http.method",
            "tokens",
            "author",
            "http.request.header.content-type",
            "http.request.header.",
            "http.request.header",
            "request.header.authorization",
            "",
            "é.request.header.authorizatio\u{e9}",
        ] {
            assert!(!is_secret(key), "{key} is not a credential");
        }
    }

    fn secret_spans() -> Batch {
        let mut batch = spans();
        let Batch::Traces(rs) = &mut batch else {
            unreachable!()
        };
        let r = &mut rs[0];
        if let Some(resource) = r.resource.as_mut() {
            resource.attributes.push(kv("Authorization", s(SECRET)));
        }
        let scope = &mut r.scope_spans[0];
        scope.scope = Some(InstrumentationScope {
            name: "kong".into(),
            attributes: vec![kv("api_token", any_value::Value::IntValue(12345678))],
            ..Default::default()
        });
        let span = &mut scope.spans[0];
        span.attributes.push(kv(
            "http.request.header.authorization",
            any_value::Value::ArrayValue(ArrayValue {
                values: vec![AnyValue {
                    value: Some(s(SECRET)),
                }],
            }),
        ));
        span.attributes.push(kv(
            "request",
            map(vec![kv("cookie", s(SECRET)), kv("path", s("/orders"))]),
        ));
        span.events.push(Event {
            name: "login".into(),
            attributes: vec![kv("password", s(SECRET)), kv("user", s("ann"))],
            ..Default::default()
        });
        span.links.push(Link {
            attributes: vec![kv("X-Auth-Token", s(SECRET))],
            ..Default::default()
        });
        batch
    }

    #[test]
    fn detailed_traces_print_no_credential() {
        let out = detailed(&secret_spans());
        assert!(!out.contains(SECRET), "{out}");
        assert!(!out.contains("12345678"), "{out}");
        for line in [
            "     -> service.name: Str(kong)\n",
            "     -> Authorization: Str([REDACTED])\n",
            "     -> api_token: Int([REDACTED])\n",
            "     -> http.method: Str(GET)\n",
            "     -> http.request.header.authorization: Slice([REDACTED])\n",
            "     -> request: Map({\"cookie\":\"[REDACTED]\",\"path\":\"/orders\"})\n",
            "          -> password: Str([REDACTED])\n",
            "          -> user: Str(ann)\n",
            "          -> X-Auth-Token: Str([REDACTED])\n",
        ] {
            assert!(out.contains(line), "missing {line:?} in\n{out}");
        }
    }

    #[test]
    fn normal_traces_print_no_credential() {
        let out = normal(&secret_spans());
        assert!(!out.contains(SECRET), "{out}");
        assert!(
            out.contains(" http.request.header.authorization=[REDACTED] "),
            "{out}"
        );
        assert!(out.contains(" http.method=GET "), "{out}");
    }

    fn secret_logs() -> Batch {
        let headers = map(vec![kv("accept", s("*/*")), kv("authorization", s(SECRET))]);
        let body = map(vec![kv(
            "request",
            map(vec![kv("headers", headers), kv("method", s("GET"))]),
        )]);
        Batch::Logs(vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    body: Some(AnyValue { value: Some(body) }),
                    attributes: vec![kv("x-api-key", s(SECRET)), kv("route", s("orders"))],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }])
    }

    #[test]
    fn log_bodies_that_are_maps_are_redacted_at_any_depth() {
        let out = detailed(&secret_logs());
        assert!(!out.contains(SECRET), "{out}");
        assert!(
            out.contains(
                "Body: Map({\"request\":{\"headers\":{\"accept\":\"*/*\",\"authorization\":\"[REDACTED]\"},\"method\":\"GET\"}})\n"
            ),
            "{out}"
        );
        assert!(
            out.contains("     -> x-api-key: Str([REDACTED])\n"),
            "{out}"
        );
        assert!(out.contains("     -> route: Str(orders)\n"), "{out}");

        let out = normal(&secret_logs());
        assert!(!out.contains(SECRET), "{out}");
        assert!(out.contains("x-api-key=[REDACTED] route=orders"), "{out}");
        assert!(out.contains("\"authorization\":\"[REDACTED]\""), "{out}");
    }

    #[test]
    fn data_point_and_exemplar_attributes_are_redacted() {
        let point = NumberDataPoint {
            attributes: vec![kv("token", s(SECRET)), kv("code", s("200"))],
            value: Some(number_data_point::Value::AsInt(1)),
            exemplars: vec![Exemplar {
                filtered_attributes: vec![kv("Secret", s(SECRET))],
                ..Default::default()
            }],
            ..Default::default()
        };
        let batch = Batch::Metrics(vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "requests".into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: vec![point],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }]);
        let out = detailed(&batch);
        assert!(!out.contains(SECRET), "{out}");
        assert!(out.contains("     -> token: Str([REDACTED])\n"), "{out}");
        assert!(out.contains("     -> code: Str(200)\n"), "{out}");
        assert!(
            out.contains("          -> Secret: Str([REDACTED])\n"),
            "{out}"
        );
        let out = normal(&batch);
        assert!(!out.contains(SECRET), "{out}");
        assert!(
            out.contains("requests{token=[REDACTED],code=200} 1"),
            "{out}"
        );
    }

    #[test]
    fn values_without_credentials_print_unchanged() {
        let value = AnyValue {
            value: Some(map(vec![kv("path", s("/orders"))])),
        };
        assert_eq!(super::super::redact::scrubbed(Some(&value)), None);
        assert_eq!(typed(Some(&value)), "Map({\"path\":\"/orders\"})");
    }
}
