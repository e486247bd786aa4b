//! Cost of one scrape of 10 000 series after the HTTP read: parse (Prometheus text) and
//! parse + convert to OTLP (start-time tracking, second scrape of the same target).
//! Prints the body size and the OTLP-encoded size once, for the MiB figures.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use otelpipe::receivers::prometheus::convert::{self, Options, TargetInfo, TargetState};
use otelpipe::receivers::prometheus::labels::Labels;
use otelpipe::receivers::prometheus::parse::{self, Format};
use prost::Message;

const SERIES: usize = 10_000;

/// Kong-like exposition: counters and gauges per route and code, and histograms with 10
/// buckets, 10 000 series in all.
fn body() -> String {
    let mut out = String::new();
    let mut series = 0;
    let mut family = 0;
    while series < SERIES {
        out.push_str(&format!(
            "# HELP kong_http_requests_{family}_total Requests.\n# TYPE kong_http_requests_{family}_total counter\n"
        ));
        for route in 0..20 {
            for code in [200, 404, 500] {
                out.push_str(&format!(
                    "kong_http_requests_{family}_total{{service=\"svc{family}\",route=\"r{route}\",code=\"{code}\"}} {}\n",
                    route * 1000 + code
                ));
                series += 1;
            }
        }
        out.push_str(&format!("# TYPE kong_latency_{family}_ms histogram\n"));
        for route in 0..4 {
            let mut cumulative = 0;
            for le in [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] {
                cumulative += le;
                out.push_str(&format!(
                    "kong_latency_{family}_ms_bucket{{route=\"r{route}\",le=\"{le}\"}} {cumulative}\n"
                ));
                series += 1;
            }
            out.push_str(&format!(
                "kong_latency_{family}_ms_bucket{{route=\"r{route}\",le=\"+Inf\"}} {cumulative}\nkong_latency_{family}_ms_sum{{route=\"r{route}\"}} 1234.5\nkong_latency_{family}_ms_count{{route=\"r{route}\"}} {cumulative}\n"
            ));
            series += 3;
        }
        out.push_str(&format!(
            "# TYPE kong_memory_{family}_bytes gauge\nkong_memory_{family}_bytes{{pid=\"1\"}} 1.5e6\n"
        ));
        series += 1;
        family += 1;
    }
    out
}

fn target() -> TargetInfo {
    TargetInfo {
        labels: Labels::from_pairs([("job", "kong"), ("instance", "10.0.0.7:8100")]),
        discovered: Labels::new(),
        scheme: "http".to_owned(),
    }
}

fn bench(c: &mut Criterion) {
    let body = body();
    let samples = parse::parse(&body, Format::Prometheus)
        .unwrap()
        .iter()
        .map(|f| f.samples.len())
        .sum::<usize>();
    let options = Options {
        honor_timestamps: true,
        ..Options::default()
    };
    let target = target();
    {
        let families = parse::parse(&body, Format::Prometheus).unwrap();
        let converted = TargetState::default()
            .convert(&families, &target, &options, 1)
            .unwrap();
        let rm = convert::resource_metrics(
            convert::resource(&target, &[]),
            converted.metrics,
            &converted.scope_attributes,
        );
        println!(
            "prometheus_scrape: {samples} samples, body {:.2} MiB, OTLP protobuf {:.2} MiB",
            body.len() as f64 / (1 << 20) as f64,
            rm.encoded_len() as f64 / (1 << 20) as f64
        );
    }
    let mut group = c.benchmark_group("prometheus_scrape_10k_series");
    group.throughput(Throughput::Elements(samples as u64));
    group.bench_function("parse", |b| {
        b.iter(|| black_box(parse::parse(black_box(&body), Format::Prometheus).unwrap()));
    });
    let mut state = TargetState::default();
    let mut ts = 0;
    group.bench_function("parse_and_convert", |b| {
        b.iter(|| {
            ts += 1000;
            let families = parse::parse(black_box(&body), Format::Prometheus).unwrap();
            black_box(state.convert(&families, &target, &options, ts).unwrap())
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
