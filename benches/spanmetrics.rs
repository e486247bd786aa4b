//! spanmetrics aggregation throughput: Kong-like spans through the seed's connector config
//! (three extra dimensions, `status.code` excluded), one lock per batch as the connector
//! takes it, with explicit and exponential duration histograms.

use std::hint::black_box;
use std::sync::Mutex;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use otelpipe::config::decode;
use otelpipe::connectors::spanmetrics::{Aggregator, Config};

const SPANS: usize = 100;
const T0: u64 = 1_700_000_000_000_000_000;

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.to_owned())),
        }),
        ..Default::default()
    }
}

/// 100 spans over 5 routes and 2 status codes, durations spread over the buckets.
fn batch() -> Vec<ResourceSpans> {
    let spans = (0..SPANS as u64)
        .map(|i| Span {
            trace_id: [i.to_be_bytes(), i.to_le_bytes()].concat(),
            span_id: i.to_be_bytes().to_vec(),
            name: "kong".into(),
            kind: 2,
            start_time_unix_nano: T0,
            end_time_unix_nano: T0 + (i * 7 % 100 + 1) * 1_000_000,
            attributes: vec![
                kv("http.method", "GET"),
                kv("http.route", &format!("/api/route-{}", i % 5)),
                kv("http.status_code", if i % 10 == 0 { "503" } else { "200" }),
                kv("http.flavor", "1.1"),
                kv("net.peer.ip", "10.0.3.7"),
                kv("kong.service.name", "orders"),
                kv("kong.route.name", "orders-route"),
                kv("kong.consumer", "acme"),
            ],
            ..Default::default()
        })
        .collect();
    vec![ResourceSpans {
        resource: Some(Resource {
            attributes: vec![kv("service.name", "kong"), kv("host.name", "gw-1")],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }]
}

const SEED: &str = "dimensions:
  - name: http.method
    default: GET
  - name: http.status_code
  - name: http.route
exclude_dimensions:
  - status.code
metrics_flush_interval: 15s
";

fn aggregation(c: &mut Criterion) {
    let batch = batch();
    let mut group = c.benchmark_group("spanmetrics");
    group.throughput(Throughput::Elements(SPANS as u64));
    for (name, extra) in [
        ("seed_explicit", ""),
        (
            "seed_exponential",
            "histogram:\n  exponential:\n    max_size: 160\n",
        ),
    ] {
        let raw: yaml_serde::Value = yaml_serde::from_str(&format!("{SEED}{extra}")).unwrap();
        let config: Config = decode(&raw).unwrap();
        config.validate().unwrap();
        let state = Mutex::new(Aggregator::new(&config));
        group.bench_function(name, |b| {
            b.iter(|| {
                state.lock().unwrap().aggregate(black_box(&batch), T0);
            });
        });
    }
    group.finish();
}

criterion_group!(benches, aggregation);
criterion_main!(benches);
