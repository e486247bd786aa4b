//! The Kong spanmetrics seed through the real binary: Rust SDK spans with known durations
//! in over OTLP/gRPC, the seed's connector config unchanged, R.E.D. metrics out over
//! otlphttp to a sink.

use std::time::{Duration, SystemTime};

use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer, TracerProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue as ProtoKeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point, ResourceMetrics};
use otelpipe::pipeline::Batch;

use crate::support::process::{free_port, Collector};
use crate::support::sink::Sink;

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/seeds")
        .join(name)
}

fn value<'a>(attrs: &'a [ProtoKeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn text<'a>(attrs: &'a [ProtoKeyValue], key: &str) -> Option<&'a str> {
    match value(attrs, key) {
        Some(any_value::Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

/// Emits spans with exact start and end times through the SDK's batch exporter.
fn send_spans(grpc: u16) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(format!("http://127.0.0.1:{grpc}"))
            .build()
            .unwrap();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name("kong")
                    .build(),
            )
            .with_batch_exporter(exporter)
            .build();
        let tracer = provider.tracer("kong");
        let t0 = SystemTime::now() - Duration::from_secs(5);
        let get = |ms: u64| {
            let mut span = tracer
                .span_builder("GET /orders")
                .with_kind(SpanKind::Server)
                .with_start_time(t0)
                .with_attributes([
                    KeyValue::new("http.status_code", 200),
                    KeyValue::new("http.route", "/orders"),
                ])
                .start(&tracer);
            span.end_with_timestamp(t0 + Duration::from_millis(ms));
        };
        get(3);
        get(3);
        get(30);
        let mut pay = tracer
            .span_builder("POST /pay")
            .with_kind(SpanKind::Client)
            .with_start_time(t0)
            .with_attributes([
                KeyValue::new("http.method", "POST"),
                KeyValue::new("http.route", "/pay"),
            ])
            .start(&tracer);
        pay.set_status(Status::error("card declined"));
        pay.end_with_timestamp(t0 + Duration::from_millis(700));
        provider.force_flush().unwrap();
        provider.shutdown().unwrap();
    });
}

/// The seed's spanmetrics fragment merged, unchanged, over a user's config: the calls and
/// duration points arrive with the seed's dimensions (`status.code` excluded, `http.method`
/// defaulting to GET, `http.status_code` kept as an Int) and exact counts and buckets. The
/// flush interval is 15 s; stopping the collector flushes what it holds.
#[test]
fn kong_seed_turns_sdk_spans_into_calls_and_duration() {
    let sink = Sink::http();
    let grpc = free_port();
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.yaml");
    std::fs::write(
        &base,
        format!(
            "receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
exporters:
  otlphttp:
    endpoint: http://{}
service:
  telemetry:
    metrics:
      level: none
",
            sink.addr
        ),
    )
    .unwrap();
    let fragment = fixture("003-kong-spanmetrics.yaml");
    let collector = Collector::start_merged(&[&base, &fragment], &[], grpc);

    send_spans(grpc);
    let (code, _, stderr) = collector.terminate();
    assert_eq!(code, Some(0), "{stderr}");

    let received = sink.received();
    assert!(!received.is_empty(), "no metrics arrived: {stderr}");
    assert!(received.iter().all(|r| r.path == "/v1/metrics"));
    let resources: Vec<ResourceMetrics> = received
        .into_iter()
        .flat_map(|r| match r.batch {
            Batch::Metrics(rm) => rm,
            other => panic!("not metrics: {other:?}"),
        })
        .collect();
    assert_eq!(resources.len(), 1, "one resource: {resources:?}");
    let rm = &resources[0];
    let resource = rm.resource.as_ref().unwrap();
    assert_eq!(text(&resource.attributes, "service.name"), Some("kong"));
    assert_eq!(
        text(&resource.attributes, "telemetry.sdk.language"),
        Some("rust"),
        "the spans' full resource is copied"
    );
    let scope = &rm.scope_metrics[0];
    assert_eq!(scope.scope.as_ref().unwrap().name, "spanmetricsconnector");

    let calls = scope
        .metrics
        .iter()
        .find(|m| m.name == "traces.span.metrics.calls")
        .expect("calls metric");
    let Some(metric::Data::Sum(sum)) = &calls.data else {
        panic!("calls is not a sum: {calls:?}");
    };
    assert!(sum.is_monotonic);
    assert_eq!(sum.aggregation_temporality, 2);
    assert_eq!(sum.data_points.len(), 2);
    let get = sum
        .data_points
        .iter()
        .find(|p| text(&p.attributes, "span.name") == Some("GET /orders"))
        .unwrap();
    let keys: Vec<&str> = get.attributes.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "service.name",
            "span.name",
            "span.kind",
            "http.method",
            "http.status_code",
            "http.route"
        ]
    );
    assert_eq!(get.value, Some(number_data_point::Value::AsInt(3)));
    assert_eq!(text(&get.attributes, "span.kind"), Some("SPAN_KIND_SERVER"));
    assert_eq!(text(&get.attributes, "http.method"), Some("GET"));
    assert_eq!(
        value(&get.attributes, "http.status_code"),
        Some(&any_value::Value::IntValue(200))
    );
    let pay = sum
        .data_points
        .iter()
        .find(|p| text(&p.attributes, "span.name") == Some("POST /pay"))
        .unwrap();
    assert_eq!(pay.value, Some(number_data_point::Value::AsInt(1)));
    assert_eq!(text(&pay.attributes, "span.kind"), Some("SPAN_KIND_CLIENT"));
    assert_eq!(text(&pay.attributes, "http.method"), Some("POST"));
    assert_eq!(value(&pay.attributes, "http.status_code"), None);
    assert_eq!(value(&pay.attributes, "status.code"), None, "excluded");

    let duration = scope
        .metrics
        .iter()
        .find(|m| m.name == "traces.span.metrics.duration")
        .expect("duration metric");
    assert_eq!(duration.unit, "ms");
    let Some(metric::Data::Histogram(histogram)) = &duration.data else {
        panic!("duration is not a histogram: {duration:?}");
    };
    let bucket_counts = |name: &str| {
        let p = histogram
            .data_points
            .iter()
            .find(|p| text(&p.attributes, "span.name") == Some(name))
            .unwrap();
        assert_eq!(p.explicit_bounds[..6], [2.0, 4.0, 6.0, 8.0, 10.0, 50.0]);
        (p.count, p.sum.unwrap(), p.bucket_counts.clone())
    };
    let mut expected = vec![0u64; 17];
    expected[1] = 2; // 3ms twice: (2, 4]
    expected[5] = 1; // 30ms: (10, 50]
    let (count, sum_ms, buckets) = bucket_counts("GET /orders");
    assert_eq!((count, buckets), (3, expected));
    assert!((sum_ms - 36.0).abs() < 1e-6, "{sum_ms}");
    let mut expected = vec![0u64; 17];
    expected[9] = 1; // 700ms: (400, 800]
    let (count, sum_ms, buckets) = bucket_counts("POST /pay");
    assert_eq!((count, buckets), (1, expected));
    assert!((sum_ms - 700.0).abs() < 1e-6, "{sum_ms}");
}
