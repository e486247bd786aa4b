//! Hot-path costs per span: protobuf decode, the seed's `attributes` insert, protobuf
//! encode + gzip (what one request costs from the receiver to the otlphttp exporter), and
//! the batch processor's throughput.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use otelpipe::codec::Compression;
use otelpipe::component::{CreateSettings, Host, ProcessorFactory};
use otelpipe::config::ComponentId;
use otelpipe::pipeline::{Batch, Capture, ClientInfo, Signal};
use otelpipe::processors::attributes::{Attributes, Config};
use otelpipe::processors::Processor;
use prost::Message;

const SPANS: usize = 100;

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.to_owned())),
        }),
        ..Default::default()
    }
}

/// A Kong-like request: 100 spans of ~10 attributes.
fn request() -> ExportTraceServiceRequest {
    let spans = (0..SPANS as u64)
        .map(|i| Span {
            trace_id: [i.to_be_bytes(), i.to_le_bytes()].concat(),
            span_id: i.to_be_bytes().to_vec(),
            name: "kong".into(),
            kind: 2,
            start_time_unix_nano: 1_700_000_000_000_000_000 + i,
            end_time_unix_nano: 1_700_000_000_001_000_000 + i,
            attributes: vec![
                kv("http.method", "GET"),
                kv("http.route", "/api/orders"),
                kv("http.status_code", "200"),
                kv("http.flavor", "1.1"),
                kv("net.peer.ip", "10.0.3.7"),
                kv("kong.service.name", "orders"),
                kv("kong.route.name", "orders-route"),
                kv("kong.consumer", "acme"),
                kv("http.scheme", "https"),
                kv("http.host", "api.example.com"),
            ],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "kong")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn seed_attributes() -> Attributes {
    let config: Config = otelpipe::config::decode(
        &yaml_serde::from_str(
            "actions:\n  - key: kong.deployment.name\n    value: kong-ecommerce-deployment\n    action: insert\n",
        )
        .unwrap(),
    )
    .unwrap();
    Attributes::new(&config, Signal::Traces).unwrap()
}

fn hot_path(c: &mut Criterion) {
    let wire = request().encode_to_vec();
    let attributes = seed_attributes();
    let client = ClientInfo::default();
    let mut group = c.benchmark_group("traces");
    group.throughput(Throughput::Elements(SPANS as u64));
    group.bench_function("decode", |b| {
        b.iter(|| ExportTraceServiceRequest::decode(black_box(wire.as_slice())).unwrap())
    });
    group.bench_function("decode_attributes_encode", |b| {
        b.iter(|| {
            let req = ExportTraceServiceRequest::decode(black_box(wire.as_slice())).unwrap();
            let out = attributes
                .process(Batch::Traces(req.resource_spans), &client)
                .unwrap();
            let Batch::Traces(rs) = out else {
                unreachable!()
            };
            black_box(ExportTraceServiceRequest { resource_spans: rs }.encode_to_vec())
        })
    });
    group.bench_function("decode_attributes_encode_gzip", |b| {
        b.iter(|| {
            let req = ExportTraceServiceRequest::decode(black_box(wire.as_slice())).unwrap();
            let out = attributes
                .process(Batch::Traces(req.resource_spans), &client)
                .unwrap();
            let Batch::Traces(rs) = out else {
                unreachable!()
            };
            let body = ExportTraceServiceRequest { resource_spans: rs }.encode_to_vec();
            black_box(Compression::Gzip.compress(&body))
        })
    });
    group.finish();
}

fn batch_processor(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let spans = request().resource_spans;
    let mut group = c.benchmark_group("batch");
    group.throughput(Throughput::Elements(SPANS as u64 * 100));
    group.bench_function("100_requests_of_100_spans", |b| {
        b.iter_batched(
            || {
                let capture = Arc::new(Capture::new());
                let settings = CreateSettings {
                    id: ComponentId::new("batch"),
                    signal: Signal::Traces,
                    pipeline: "traces".into(),
                };
                let node = otelpipe::processors::batch::FACTORY
                    .create(&settings, &yaml_serde::Value::Null, capture.clone())
                    .unwrap();
                (node, capture)
            },
            |(node, capture)| {
                runtime.block_on(async {
                    let (_tx, ready) = tokio::sync::watch::channel(true);
                    let host = Host {
                        ready,
                        shutdown: tokio_util::sync::CancellationToken::new(),
                        extensions: Default::default(),
                    };
                    node.start(&host).await.unwrap();
                    for _ in 0..100 {
                        node.consume(Batch::Traces(spans.clone()), &ClientInfo::default())
                            .await
                            .unwrap();
                    }
                    node.shutdown().await.unwrap();
                    assert_eq!(capture.item_count(), SPANS * 100);
                })
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, hot_path, batch_processor);
criterion_main!(benches);
