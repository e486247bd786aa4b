//! What a scrape of the `prometheus` exporter costs with 10k live series: the snapshot
//! under the lock, rendering the text format and OpenMetrics, and the batch that updates
//! every series. The rendered size is printed once.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use otelpipe::exporters::prometheus::accumulate::{Accumulator, Naming};
use otelpipe::exporters::prometheus::render::{render, Options};

const SERIES: usize = 10_000;

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.to_owned())),
        }),
        ..Default::default()
    }
}

fn attrs(i: usize) -> Vec<KeyValue> {
    vec![
        kv("http.route", &format!("/api/r{}", i % 100)),
        kv("http.status_code", &format!("{}", 200 + i / 100 % 5)),
        kv("kong.service.name", &format!("svc-{}", i / 500)),
        kv("kong.deployment.name", "kong-ecommerce-deployment"),
    ]
}

/// 9k counter series and 1k histogram series (8 bounds), Kong-like labels.
fn batch(time: u64) -> Vec<ResourceMetrics> {
    let counters = (0..SERIES * 9 / 10)
        .map(|i| NumberDataPoint {
            attributes: attrs(i),
            start_time_unix_nano: 1,
            time_unix_nano: time,
            value: Some(number_data_point::Value::AsInt(i as i64 * 17)),
            ..Default::default()
        })
        .collect();
    let histograms = (0..SERIES / 10)
        .map(|i| HistogramDataPoint {
            attributes: attrs(i),
            start_time_unix_nano: 1,
            time_unix_nano: time,
            count: 80,
            sum: Some(123.5),
            bucket_counts: vec![10; 9],
            explicit_bounds: vec![1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0],
            ..Default::default()
        })
        .collect();
    vec![ResourceMetrics {
        resource: Some(Resource {
            attributes: vec![
                kv("service.name", "kong"),
                kv("service.instance.id", "10.0.0.7:8100"),
                kv("k8s.pod.name", "kong-kong-1"),
            ],
            ..Default::default()
        }),
        scope_metrics: vec![ScopeMetrics {
            scope: Some(InstrumentationScope {
                name: "kong".into(),
                ..Default::default()
            }),
            metrics: vec![
                Metric {
                    name: "kong.http.requests".into(),
                    description: "HTTP requests".into(),
                    data: Some(metric::Data::Sum(Sum {
                        data_points: counters,
                        aggregation_temporality: AggregationTemporality::Cumulative as i32,
                        is_monotonic: true,
                    })),
                    ..Default::default()
                },
                Metric {
                    name: "kong.latency".into(),
                    unit: "ms".into(),
                    description: "Latency".into(),
                    data: Some(metric::Data::Histogram(Histogram {
                        data_points: histograms,
                        aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    })),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }],
        ..Default::default()
    }]
}

fn naming() -> Naming {
    Naming {
        suffixes: true,
        ..Naming::default()
    }
}

fn benches(c: &mut Criterion) {
    let mut acc = Accumulator::new(naming(), Duration::from_secs(300));
    acc.accumulate(&batch(2), Instant::now());
    let snapshot = acc.snapshot(Instant::now());
    let text = render(&snapshot, Options::default()).body;
    let om = render(
        &snapshot,
        Options {
            open_metrics: true,
            ..Options::default()
        },
    )
    .body;
    println!(
        "{SERIES} series: text format {} bytes ({} lines), OpenMetrics {} bytes",
        text.len(),
        text.lines().count(),
        om.len()
    );

    let mut group = c.benchmark_group("prometheus_export");
    group.throughput(Throughput::Elements(SERIES as u64));
    group.bench_function("snapshot_10k_series", |b| {
        b.iter(|| black_box(acc.snapshot(Instant::now())));
    });
    group.bench_function("render_text_10k_series", |b| {
        b.iter(|| black_box(render(black_box(&snapshot), Options::default())));
    });
    group.bench_function("render_openmetrics_10k_series", |b| {
        let options = Options {
            open_metrics: true,
            ..Options::default()
        };
        b.iter(|| black_box(render(black_box(&snapshot), options)));
    });
    let update = batch(3);
    group.bench_function("accumulate_10k_points", |b| {
        let mut acc = Accumulator::new(naming(), Duration::from_secs(300));
        acc.accumulate(&batch(2), Instant::now());
        b.iter(|| black_box(acc.accumulate(black_box(&update), Instant::now())));
    });
    group.finish();
}

criterion_group!(prometheus_export, benches);
criterion_main!(prometheus_export);
