use std::net::SocketAddr;

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

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

fn processor(yaml: &str, signal: Signal) -> Attributes {
    let config: Config = decode(&yaml_serde::from_str(yaml).unwrap()).unwrap();
    Attributes::new(&config, signal).unwrap()
}

fn error(yaml: &str) -> String {
    FACTORY
        .validate(&yaml_serde::from_str(yaml).unwrap())
        .unwrap_err()
        .to_string()
}

fn traces(service: &str, spans: Vec<Span>) -> Batch {
    Batch::Traces(vec![ResourceSpans {
        resource: Some(Resource {
            attributes: vec![kv("service.name", s(service))],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            scope: Some(InstrumentationScope {
                name: "kong-internal".into(),
                version: "3.9".into(),
                ..Default::default()
            }),
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }])
}

fn span(name: &str, attrs: Vec<KeyValue>) -> Span {
    Span {
        name: name.into(),
        kind: 2,
        attributes: attrs,
        ..Default::default()
    }
}

fn span_attrs(batch: &Batch) -> Vec<Vec<KeyValue>> {
    let Batch::Traces(rs) = batch else {
        panic!("traces")
    };
    rs.iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| s.attributes.clone())
        .collect()
}

fn get<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()
}

#[test]
fn seed_insert_adds_to_every_span_with_the_yaml_type() {
    let p = processor(
        "actions:\n  - key: kong.deployment.name\n    value: kong-ecommerce-deployment\n    action: insert\n  - key: n\n    value: 7\n    action: INSERT\n  - key: b\n    value: true\n    action: insert\n",
        Signal::Traces,
    );
    let batch = traces(
        "kong",
        vec![
            span("a", vec![]),
            span("b", vec![kv("kong.deployment.name", s("kept"))]),
        ],
    );
    let out = p.process(batch, &ClientInfo::default()).unwrap();
    let attrs = span_attrs(&out);
    assert_eq!(
        get(&attrs[0], "kong.deployment.name"),
        Some(&s("kong-ecommerce-deployment"))
    );
    assert_eq!(
        get(&attrs[1], "kong.deployment.name"),
        Some(&s("kept")),
        "insert never overwrites"
    );
    assert_eq!(get(&attrs[0], "n"), Some(&any_value::Value::IntValue(7)));
    assert_eq!(
        get(&attrs[0], "b"),
        Some(&any_value::Value::BoolValue(true))
    );
}

#[test]
fn update_upsert_delete_and_from_attribute() {
    let p = processor(
        "actions:
  - {key: a, value: new, action: update}
  - {key: missing, value: x, action: update}
  - {key: c, from_attribute: a, action: upsert}
  - {key: secret, action: delete}
  - {pattern: ^tmp\\., action: delete}
",
        Signal::Traces,
    );
    let batch = traces(
        "kong",
        vec![span(
            "x",
            vec![
                kv("a", s("old")),
                kv("secret", s("x")),
                kv("tmp.1", s("y")),
                kv("keep", s("z")),
            ],
        )],
    );
    let attrs = &span_attrs(&p.process(batch, &ClientInfo::default()).unwrap())[0];
    let keys: Vec<&str> = attrs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["a", "keep", "c"]);
    assert_eq!(get(attrs, "a"), Some(&s("new")));
    assert_eq!(get(attrs, "c"), Some(&s("new")));
}

#[test]
fn hash_is_sha256_of_the_typed_bytes() {
    let p = processor("actions:\n  - {key: user, action: hash}\n  - {key: n, action: hash}\n  - {key: m, action: hash}\n", Signal::Traces);
    let batch = traces(
        "kong",
        vec![span(
            "x",
            vec![
                kv("user", s("alice")),
                kv("n", any_value::Value::IntValue(1)),
                kv("m", any_value::Value::KvlistValue(Default::default())),
            ],
        )],
    );
    let attrs = &span_attrs(&p.process(batch, &ClientInfo::default()).unwrap())[0];
    // sha256("alice")
    assert_eq!(
        get(attrs, "user"),
        Some(&s(
            "2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90"
        ))
    );
    // sha256 of 1 as 8 little-endian bytes
    assert_eq!(
        get(attrs, "n"),
        Some(&s(
            "7c9fa136d4413fa6173637e883b6998d32e1d675f88cddff9dcbcf331820f4b8"
        ))
    );
    assert_eq!(get(attrs, "m"), Some(&s("")));
}

#[test]
fn extract_and_convert() {
    let p = processor(
        "actions:
  - {key: url, pattern: '^/api/(?P<api>[a-z]+)/(?P<id>[0-9]+)$', action: extract}
  - {key: id, action: convert, converted_type: int}
  - {key: ratio, action: convert, converted_type: double}
  - {key: flag, action: convert, converted_type: string}
  - {key: bad, action: convert, converted_type: int}
",
        Signal::Traces,
    );
    let batch = traces(
        "kong",
        vec![span(
            "x",
            vec![
                kv("url", s("/api/orders/42")),
                kv("ratio", s("0.25")),
                kv("flag", any_value::Value::BoolValue(false)),
                kv("bad", s("x1")),
            ],
        )],
    );
    let attrs = &span_attrs(&p.process(batch, &ClientInfo::default()).unwrap())[0];
    assert_eq!(get(attrs, "api"), Some(&s("orders")));
    assert_eq!(get(attrs, "id"), Some(&any_value::Value::IntValue(42)));
    assert_eq!(
        get(attrs, "ratio"),
        Some(&any_value::Value::DoubleValue(0.25))
    );
    assert_eq!(get(attrs, "flag"), Some(&s("false")));
    assert_eq!(
        get(attrs, "bad"),
        Some(&s("x1")),
        "a failed conversion leaves the value"
    );
    assert_eq!(get(attrs, "url"), Some(&s("/api/orders/42")));
}

#[test]
fn from_context_reads_the_client() {
    let p = processor(
        "actions:\n  - {key: peer, from_context: client.address, action: insert}\n  - {key: tenant, from_context: metadata.x-tenant, action: insert}\n",
        Signal::Logs,
    );
    let client = ClientInfo {
        addr: Some("10.1.2.3:5555".parse::<SocketAddr>().unwrap()),
        metadata: std::sync::Arc::new(vec![
            ("x-tenant".into(), "a".into()),
            ("x-tenant".into(), "b".into()),
        ]),
    };
    let batch = Batch::Logs(vec![ResourceLogs {
        scope_logs: vec![ScopeLogs {
            log_records: vec![LogRecord::default()],
            ..Default::default()
        }],
        ..Default::default()
    }]);
    let Batch::Logs(out) = p.process(batch, &client).unwrap() else {
        panic!()
    };
    let attrs = &out[0].scope_logs[0].log_records[0].attributes;
    assert_eq!(get(attrs, "peer"), Some(&s("10.1.2.3")));
    assert_eq!(get(attrs, "tenant"), Some(&s("a;b")));
}

#[test]
fn metrics_data_points_of_every_type_get_the_action() {
    let p = processor("actions:\n  - {key: k, value: v, action: insert}\ninclude:\n  match_type: regexp\n  metric_names: ['^kong_']\n", Signal::Metrics);
    let metric = |name: &str, data| Metric {
        name: name.into(),
        data: Some(data),
        ..Default::default()
    };
    let batch = Batch::Metrics(vec![ResourceMetrics {
        scope_metrics: vec![ScopeMetrics {
            metrics: vec![
                metric(
                    "kong_requests",
                    metric::Data::Sum(Sum {
                        data_points: vec![NumberDataPoint::default(); 2],
                        ..Default::default()
                    }),
                ),
                metric(
                    "kong_latency",
                    metric::Data::Histogram(Histogram {
                        data_points: vec![HistogramDataPoint::default()],
                        ..Default::default()
                    }),
                ),
                metric(
                    "other",
                    metric::Data::Sum(Sum {
                        data_points: vec![NumberDataPoint::default()],
                        ..Default::default()
                    }),
                ),
            ],
            ..Default::default()
        }],
        ..Default::default()
    }]);
    let Batch::Metrics(out) = p.process(batch, &ClientInfo::default()).unwrap() else {
        panic!()
    };
    let ms = &out[0].scope_metrics[0].metrics;
    let Some(metric::Data::Sum(sum)) = &ms[0].data else {
        panic!()
    };
    assert!(sum
        .data_points
        .iter()
        .all(|p| get(&p.attributes, "k") == Some(&s("v"))));
    let Some(metric::Data::Histogram(h)) = &ms[1].data else {
        panic!()
    };
    assert_eq!(get(&h.data_points[0].attributes, "k"), Some(&s("v")));
    let Some(metric::Data::Sum(other)) = &ms[2].data else {
        panic!()
    };
    assert!(other.data_points[0].attributes.is_empty(), "not included");
}

#[test]
fn include_and_exclude_on_spans() {
    let p = processor(
        "actions:\n  - {key: hit, value: 1, action: insert}
include:
  match_type: strict
  services: [kong]
  span_kinds: [SPAN_KIND_SERVER]
  libraries: [{name: kong-internal}]
exclude:
  match_type: regexp
  span_names: ['^health', '^GET /x$']
  attributes: [{key: http.route, value: '^/internal'}]
",
        Signal::Traces,
    );
    let batch = traces(
        "kong",
        vec![
            span("GET /orders", vec![]),
            span("healthcheck", vec![kv("http.route", s("/internal/health"))]),
            // Excluded only when every exclude criterion matches: this name does, the
            // route does not.
            span("GET /x", vec![kv("http.route", s("/public/x"))]),
        ],
    );
    let hits: Vec<bool> = span_attrs(&p.process(batch, &ClientInfo::default()).unwrap())
        .iter()
        .map(|a| get(a, "hit").is_some())
        .collect();
    assert_eq!(hits, [true, false, true]);
    let other_service = traces("shop", vec![span("GET /orders", vec![])]);
    let out = p.process(other_service, &ClientInfo::default()).unwrap();
    assert!(get(&span_attrs(&out)[0], "hit").is_none());
}

#[test]
fn validation_messages() {
    assert_eq!(error("{}"), "missing required field \"actions\"");
    assert!(error("actions: [{key: a, action: insert}]").ends_with("Either field \"value\", \"from_attribute\" or \"from_context\" setting must be specified for 0-th action"));
    assert!(
        error("actions: [{key: a, value: 1, from_attribute: b, action: insert}]")
            .contains("multiple value sources")
    );
    assert!(
        error("actions: [{key: a, action: explode}]").contains("unsupported action \"explode\"")
    );
    assert!(
        error("actions: [{key: a, pattern: '(\\d+)', action: extract}]")
            .contains("named subexpression")
    );
    assert!(
        error("actions: [{key: a, value: 1, pattern: x, action: upsert}]")
            .contains("does not use the \"pattern\" field")
    );
    assert!(
        error("actions: [{key: a, action: convert, converted_type: float}]")
            .contains("converted_type int, double or string")
    );
    assert!(error("actions: [{key: a, value: 1, action: insert}]\ninclude: {match_type: fuzzy, services: [x]}").contains("unrecognized match_type: 'fuzzy'"));
    let e = error("actions: [{key: a, action: delete}, {action: delete}]");
    assert!(e.starts_with("actions::1: "), "{e}");
}
