//! spanmetrics: config rules, aggregation (calls, buckets, temporality, dimensions,
//! exemplars, events, bounds) and the connector's flush lifecycle.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, metric, number_data_point, ExponentialHistogramDataPoint, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use tokio_util::sync::CancellationToken;

use super::histogram::{map_to_index, Exponential};
use super::*;
use crate::component::ConnectorFactory;
use crate::config::ComponentId;
use crate::pipeline::Capture;

const T0: u64 = 1_700_000_000_000_000_000;
const MS: u64 = 1_000_000;
const SEC: u64 = 1_000_000_000;

fn yaml(text: &str) -> RawConfig {
    yaml_serde::from_str(text).unwrap()
}

fn config(text: &str) -> Config {
    let c: Config = decode(&yaml(text)).unwrap();
    c.validate().unwrap();
    c
}

fn invalid(text: &str) -> String {
    match decode::<Config>(&yaml(text)) {
        Ok(c) => c.validate().unwrap_err().to_string(),
        Err(e) => e.to_string(),
    }
}

fn str_value(v: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(v.to_owned())),
    }
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.to_owned(),
        value: Some(str_value(v)),
        ..Default::default()
    }
}

fn kv_int(k: &str, v: i64) -> KeyValue {
    KeyValue {
        key: k.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(v)),
        }),
        ..Default::default()
    }
}

fn span_of(name: &str, duration_ns: u64) -> Span {
    Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: name.to_owned(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: T0,
        end_time_unix_nano: T0 + duration_ns,
        ..Default::default()
    }
}

fn resource(attrs: Vec<KeyValue>, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource {
            attributes: attrs,
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn service(name: &str, spans: Vec<Span>) -> ResourceSpans {
    resource(vec![kv("service.name", name)], spans)
}

fn metric<'a>(rm: &'a ResourceMetrics, name: &str) -> Option<&'a Metric> {
    rm.scope_metrics[0].metrics.iter().find(|m| m.name == name)
}

fn calls(rm: &ResourceMetrics) -> Vec<NumberDataPoint> {
    match &metric(rm, "traces.span.metrics.calls").unwrap().data {
        Some(metric::Data::Sum(s)) => {
            assert!(s.is_monotonic);
            s.data_points.clone()
        }
        other => panic!("calls is not a sum: {other:?}"),
    }
}

fn temporality_of(rm: &ResourceMetrics) -> (i32, i32) {
    let sum = match &metric(rm, "traces.span.metrics.calls").unwrap().data {
        Some(metric::Data::Sum(s)) => s.aggregation_temporality,
        _ => 0,
    };
    let hist = match &metric(rm, "traces.span.metrics.duration").unwrap().data {
        Some(metric::Data::Histogram(h)) => h.aggregation_temporality,
        _ => 0,
    };
    (sum, hist)
}

fn durations(rm: &ResourceMetrics) -> Vec<HistogramDataPoint> {
    let m = metric(rm, "traces.span.metrics.duration").unwrap();
    assert_eq!(m.unit, "ms");
    match &m.data {
        Some(metric::Data::Histogram(h)) => h.data_points.clone(),
        other => panic!("duration is not a histogram: {other:?}"),
    }
}

fn int(p: &NumberDataPoint) -> i64 {
    match p.value {
        Some(number_data_point::Value::AsInt(v)) => v,
        other => panic!("not an int: {other:?}"),
    }
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn attr_str<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attr(attrs, key) {
        Some(any_value::Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

// ---- config ----

#[test]
fn defaults_are_otelcols() {
    let c: Config = decode(&RawConfig::Null).unwrap();
    c.validate().unwrap();
    assert_eq!(c.metrics_flush_interval, Duration::from_secs(60));
    assert_eq!(c.namespace, "traces.span.metrics");
    assert_eq!(c.dimensions_cache_size, 1000);
    assert_eq!(c.resource_metrics_cache_size, 1000);
    assert_eq!(c.temporality(), Temporality::Cumulative);
    assert_eq!(c.histogram.unit, Unit::Milliseconds);
    assert_eq!(
        c.bounds(),
        vec![
            2.0, 4.0, 6.0, 8.0, 10.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1000.0, 1400.0, 2000.0,
            5000.0, 10000.0, 15000.0
        ]
    );
    assert_eq!(c.metric_name("calls"), "traces.span.metrics.calls");
}

#[test]
fn seed_fragment_decodes() {
    let c = config(
        "dimensions:
  - name: http.method
    default: GET
  - name: http.status_code
  - name: http.route
exclude_dimensions:
  - status.code
metrics_flush_interval: 15s
histogram:
  disable: false
",
    );
    assert_eq!(c.dimensions.len(), 3);
    assert_eq!(c.dimensions[0].default.as_deref(), Some("GET"));
    assert_eq!(c.dimensions[1].default, None);
    assert!(!c.includes("status.code"));
    assert_eq!(c.metrics_flush_interval, Duration::from_secs(15));
}

#[test]
fn seconds_unit_converts_buckets_and_is_case_insensitive() {
    let c = config("histogram: {unit: S, explicit: {buckets: [100ms, 1s, 2500ms]}}");
    assert_eq!(c.histogram.unit, Unit::Seconds);
    assert_eq!(c.bounds(), vec![0.1, 1.0, 2.5]);
    let c = config("histogram: {unit: s}");
    assert_eq!(c.bounds()[0], 0.002);
    assert_eq!(c.bounds()[15], 15.0);
}

#[test]
fn numeric_default_is_a_string() {
    let c = config("dimensions: [{name: http.status_code, default: 200}]");
    assert_eq!(c.dimensions[0].default.as_deref(), Some("200"));
}

#[test]
fn invalid_configs_name_the_problem() {
    assert_eq!(
        invalid("dimensions: [{name: status.code}]\nexclude_dimensions: [status.code]"),
        "failed validating dimensions: duplicate dimension name status.code"
    );
    assert_eq!(
        invalid("dimensions: [{name: a}, {name: a}]"),
        "failed validating dimensions: duplicate dimension name a"
    );
    assert_eq!(
        invalid("histogram: {unit: minutes}"),
        "histogram::unit: unknown Unit \"minutes\", allowed units are \"ms\" and \"s\""
    );
    assert_eq!(
        invalid("histogram: {explicit: {buckets: [1ms]}, exponential: {max_size: 10}}"),
        "use either `explicit` or `exponential` buckets histogram"
    );
    assert_eq!(
        invalid("metrics_flush_interval: 0s"),
        "invalid metrics_flush_interval: 0s, the duration should be positive"
    );
    assert!(invalid("metrics_flush_interval: -1s").starts_with("metrics_flush_interval: "));
    assert_eq!(
        invalid("dimensions_cache_size: 0"),
        "invalid cache size: 0, the maximum number of the items in the cache should be positive"
    );
    assert_eq!(
        invalid("events: {enabled: true}"),
        "failed validating event dimensions: no dimensions configured for events"
    );
    assert_eq!(
        invalid("aggregation_temporality: AGGREGATION_TEMPORALITY_DELTA\nmetric_timestamp_cache_size: 0"),
        "invalid delta timestamp cache size: 0, the maximum number of the items in the cache should be positive"
    );
    let unknown = invalid("dimension: []");
    assert!(unknown.contains("unknown field `dimension`"), "{unknown}");
}

#[test]
fn unknown_temporality_text_means_cumulative() {
    let c = config("aggregation_temporality: delta");
    assert_eq!(c.temporality(), Temporality::Cumulative);
    let c = config("aggregation_temporality: AGGREGATION_TEMPORALITY_DELTA");
    assert_eq!(c.temporality(), Temporality::Delta);
}

// ---- aggregation ----

#[test]
fn known_durations_give_exact_calls_and_buckets() {
    let mut agg = Aggregator::new(&config(""));
    let mut inverted = span_of("GET /orders", 0);
    inverted.end_time_unix_nano = T0 - MS;
    let spans = vec![
        span_of("GET /orders", MS),         // 1ms   -> (0, 2]
        span_of("GET /orders", 2 * MS),     // 2ms   -> (0, 2]: bounds are inclusive
        span_of("GET /orders", 2 * MS + 1), // just over 2ms -> (2, 4]
        span_of("GET /orders", 75 * MS),    // -> (50, 100]
        span_of("GET /orders", 15 * SEC),   // -> (10000, 15000]
        span_of("GET /orders", 20 * SEC),   // -> overflow bucket
        inverted,                           // end before start: 0 -> first bucket
    ];
    agg.aggregate(&[service("kong", spans)], T0);
    let out = agg.flush(T0 + 15 * SEC);
    assert_eq!(out.len(), 1);
    let rm = &out[0];
    assert_eq!(
        rm.scope_metrics[0].scope.as_ref().unwrap().name,
        "spanmetricsconnector"
    );
    assert_eq!(rm.scope_metrics[0].scope.as_ref().unwrap().version, "");
    assert_eq!(
        rm.resource.as_ref().unwrap().attributes,
        vec![kv("service.name", "kong")]
    );
    let c = calls(rm);
    assert_eq!(c.len(), 1);
    assert_eq!(int(&c[0]), 7);
    assert_eq!(metric(rm, "traces.span.metrics.calls").unwrap().unit, "");
    let d = durations(rm);
    assert_eq!(d.len(), 1);
    let h = &d[0];
    assert_eq!(h.count, 7);
    assert_eq!(h.explicit_bounds.len(), 16);
    let mut expected = vec![0u64; 17];
    expected[0] = 3;
    expected[1] = 1;
    expected[6] = 1;
    expected[15] = 1;
    expected[16] = 1;
    assert_eq!(h.bucket_counts, expected);
    let sum = 1.0 + 2.0 + 2.000001 + 75.0 + 15000.0 + 20000.0;
    assert!((h.sum.unwrap() - sum).abs() < 1e-9, "{:?}", h.sum);
    assert_eq!(h.min, None);
    assert_eq!(h.max, None);
}

#[test]
fn default_dimensions_and_configured_ones_in_order() {
    let c = config(
        "dimensions:
  - name: http.method
    default: GET
  - name: http.status_code
  - name: http.route
  - name: k8s.namespace.name
  - name: absent
",
    );
    let mut agg = Aggregator::new(&c);
    let mut s = span_of("kong", MS);
    s.kind = span::SpanKind::Client as i32;
    s.status = Some(Status {
        code: 2,
        ..Default::default()
    });
    s.attributes = vec![kv_int("http.status_code", 503), kv("http.route", "/orders")];
    let res = resource(
        vec![
            kv("service.name", "gateway"),
            kv("k8s.namespace.name", "shop"),
            kv("http.route", "from-resource"),
        ],
        vec![s],
    );
    agg.aggregate(&[res], T0);
    let out = agg.flush(T0 + SEC);
    let point = &calls(&out[0])[0];
    let keys: Vec<&str> = point.attributes.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "service.name",
            "span.name",
            "span.kind",
            "status.code",
            "http.method",
            "http.status_code",
            "http.route",
            "k8s.namespace.name"
        ]
    );
    assert_eq!(attr_str(&point.attributes, "service.name"), Some("gateway"));
    assert_eq!(attr_str(&point.attributes, "span.name"), Some("kong"));
    assert_eq!(
        attr_str(&point.attributes, "span.kind"),
        Some("SPAN_KIND_CLIENT")
    );
    assert_eq!(
        attr_str(&point.attributes, "status.code"),
        Some("STATUS_CODE_ERROR")
    );
    assert_eq!(attr_str(&point.attributes, "http.method"), Some("GET"));
    assert_eq!(
        attr(&point.attributes, "http.status_code"),
        Some(&any_value::Value::IntValue(503)),
        "found values keep their type"
    );
    assert_eq!(
        attr_str(&point.attributes, "http.route"),
        Some("/orders"),
        "span first"
    );
    assert_eq!(
        attr_str(&point.attributes, "k8s.namespace.name"),
        Some("shop")
    );
    // The duration point carries the same attributes.
    assert_eq!(durations(&out[0])[0].attributes, point.attributes);
}

#[test]
fn excluded_dimensions_merge_series() {
    let c = config("exclude_dimensions: [status.code, span.kind]");
    let mut agg = Aggregator::new(&c);
    let mut ok = span_of("checkout", MS);
    ok.status = Some(Status {
        code: 1,
        ..Default::default()
    });
    let mut err = span_of("checkout", MS);
    err.status = Some(Status {
        code: 2,
        ..Default::default()
    });
    err.kind = span::SpanKind::Internal as i32;
    agg.aggregate(&[service("shop", vec![ok, err, span_of("pay", MS)])], T0);
    let out = agg.flush(T0 + SEC);
    let mut points = calls(&out[0]);
    points.sort_by_key(|p| attr_str(&p.attributes, "span.name").map(str::to_owned));
    assert_eq!(points.len(), 2);
    assert_eq!(int(&points[0]), 2);
    assert_eq!(
        attr_str(&points[0].attributes, "span.name"),
        Some("checkout")
    );
    assert_eq!(int(&points[1]), 1);
    for p in &points {
        let keys: Vec<&str> = p.attributes.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["service.name", "span.name"]);
    }
}

#[test]
fn missing_dimension_without_default_is_its_own_series() {
    let c = config("dimensions: [{name: http.route}]");
    let mut agg = Aggregator::new(&c);
    let mut with = span_of("kong", MS);
    with.attributes = vec![kv("http.route", "")];
    agg.aggregate(&[service("kong", vec![with, span_of("kong", MS)])], T0);
    let out = agg.flush(T0 + SEC);
    let points = calls(&out[0]);
    assert_eq!(points.len(), 2, "an empty value and a missing one differ");
    let without = points
        .iter()
        .find(|p| attr(&p.attributes, "http.route").is_none())
        .unwrap();
    assert_eq!(int(without), 1);
}

#[test]
fn resources_without_service_name_are_skipped() {
    let mut agg = Aggregator::new(&config(""));
    agg.aggregate(
        &[resource(vec![kv("host.name", "a")], vec![span_of("x", MS)])],
        T0,
    );
    assert_eq!(agg.resource_count(), 0);
    assert!(agg.flush(T0 + SEC).is_empty());
}

#[test]
fn cumulative_keeps_counting_and_reemits_with_the_resource_start() {
    let mut agg = Aggregator::new(&config(""));
    agg.aggregate(&[service("kong", vec![span_of("a", MS)])], T0);
    agg.aggregate(&[service("kong", vec![span_of("b", MS)])], T0 + SEC);
    let first = agg.flush(T0 + 2 * SEC);
    assert_eq!(temporality_of(&first[0]), (2, 2));
    for p in calls(&first[0]) {
        assert_eq!(int(&p), 1);
        assert_eq!(p.start_time_unix_nano, T0, "same start for every series");
        assert_eq!(p.time_unix_nano, T0 + 2 * SEC);
    }
    // No new spans: every series is emitted again with the same values.
    let second = agg.flush(T0 + 3 * SEC);
    assert_eq!(calls(&second[0]).len(), 2);
    agg.aggregate(&[service("kong", vec![span_of("a", 3 * MS)])], T0 + 4 * SEC);
    let third = agg.flush(T0 + 5 * SEC);
    let a = calls(&third[0])
        .into_iter()
        .find(|p| attr_str(&p.attributes, "span.name") == Some("a"))
        .unwrap();
    assert_eq!(int(&a), 2);
    assert_eq!(a.start_time_unix_nano, T0);
    let h = durations(&third[0])
        .into_iter()
        .find(|p| attr_str(&p.attributes, "span.name") == Some("a"))
        .unwrap();
    assert_eq!(h.count, 2);
    assert_eq!(h.bucket_counts[0], 1);
    assert_eq!(h.bucket_counts[1], 1);
}

#[test]
fn delta_restarts_every_flush_and_chains_start_times() {
    let c = config("aggregation_temporality: AGGREGATION_TEMPORALITY_DELTA");
    let mut agg = Aggregator::new(&c);
    agg.aggregate(
        &[service("kong", vec![span_of("a", MS), span_of("a", MS)])],
        T0,
    );
    let first = agg.flush(T0 + 10 * SEC);
    assert_eq!(temporality_of(&first[0]), (1, 1));
    let p = &calls(&first[0])[0];
    assert_eq!(int(p), 2);
    assert_eq!(
        p.start_time_unix_nano, T0,
        "first flush: resource creation time"
    );
    assert_eq!(agg.resource_count(), 0, "state purged");
    assert!(
        agg.flush(T0 + 20 * SEC).is_empty(),
        "nothing new, nothing sent"
    );

    agg.aggregate(
        &[service("kong", vec![span_of("a", 7 * MS)])],
        T0 + 25 * SEC,
    );
    let third = agg.flush(T0 + 30 * SEC);
    let p = &calls(&third[0])[0];
    assert_eq!(int(p), 1);
    assert_eq!(
        p.start_time_unix_nano,
        T0 + 10 * SEC,
        "the series' previous flush"
    );
    let h = &durations(&third[0])[0];
    assert_eq!(h.count, 1);
    assert_eq!(h.bucket_counts[3], 1);
    assert_eq!(h.start_time_unix_nano, T0 + 10 * SEC);
}

#[test]
fn exponential_mapping_is_exact_at_powers_of_two() {
    assert_eq!(map_to_index(1.0, 20), -1);
    assert_eq!(map_to_index(2.0, 7), 127);
    assert_eq!(map_to_index(1.5, 7), 74);
    assert_eq!(map_to_index(4.0, 0), 1);
    assert_eq!(map_to_index(5.0, 0), 2);
    assert_eq!(map_to_index(5.0, -1), 1);
    assert_eq!(map_to_index(0.5, 3), -9);
}

#[test]
fn exponential_histogram_downscales_to_fit() {
    let mut h = Exponential::new(160);
    h.observe(1.0);
    assert_eq!(h.scale(), 20);
    h.observe(2.0);
    // index(1) = -1 at every scale, index(2) = 2^s - 1: they fit in 160 buckets at s = 7.
    assert_eq!(h.scale(), 7);
    h.observe(1.5);
    h.observe(0.0);
    let mut p = ExponentialHistogramDataPoint::default();
    h.fill(&mut p);
    assert_eq!(p.count, 4);
    assert_eq!(p.zero_count, 1);
    assert_eq!(p.sum, Some(4.5));
    assert_eq!(p.min, Some(0.0));
    assert_eq!(p.max, Some(2.0));
    let positive = p.positive.unwrap();
    assert_eq!(positive.offset, -1);
    assert_eq!(positive.bucket_counts.len(), 129);
    assert_eq!(positive.bucket_counts[0], 1);
    assert_eq!(positive.bucket_counts[75], 1);
    assert_eq!(positive.bucket_counts[128], 1);
    assert_eq!(positive.bucket_counts.iter().sum::<u64>(), 3);

    let mut small = Exponential::new(4);
    for v in [1.0, 10.0, 100.0, 1000.0, 0.001] {
        small.observe(v);
    }
    let mut p = ExponentialHistogramDataPoint::default();
    small.fill(&mut p);
    let positive = p.positive.unwrap();
    assert!(positive.bucket_counts.len() <= 4, "{positive:?}");
    assert_eq!(positive.bucket_counts.iter().sum::<u64>(), 5);
    // Every value lies in the bucket its index names at the final scale.
    let base = 2f64.powf(2f64.powi(-p.scale));
    for v in [1.0, 10.0, 100.0, 1000.0, 0.001] {
        let i = map_to_index(v, p.scale) - positive.offset;
        assert!(positive.bucket_counts[i as usize] > 0);
        let index = map_to_index(v, p.scale);
        assert!(v > base.powi(index) * (1.0 - 1e-12) && v <= base.powi(index + 1) * (1.0 + 1e-12));
    }
}

#[test]
fn exponential_config_emits_exponential_histograms() {
    let c = config("histogram: {exponential: {max_size: 10}}");
    let mut agg = Aggregator::new(&c);
    agg.aggregate(
        &[service(
            "kong",
            vec![span_of("a", 2 * MS), span_of("a", 8 * MS)],
        )],
        T0,
    );
    let out = agg.flush(T0 + SEC);
    let m = metric(&out[0], "traces.span.metrics.duration").unwrap();
    assert_eq!(m.unit, "ms");
    let Some(metric::Data::ExponentialHistogram(h)) = &m.data else {
        panic!("not exponential: {m:?}");
    };
    assert_eq!(h.aggregation_temporality, 2);
    let p = &h.data_points[0];
    assert_eq!(p.count, 2);
    assert_eq!(p.sum, Some(10.0));
    let positive = p.positive.as_ref().unwrap();
    assert!(positive.bucket_counts.len() <= 10);
    assert_eq!(
        map_to_index(2.0, p.scale) - positive.offset,
        0,
        "2ms in the first bucket"
    );
    assert_eq!(
        *positive.bucket_counts.last().unwrap(),
        1,
        "8ms in the last bucket"
    );
}

#[test]
fn one_million_span_names_stay_within_the_cache_size() {
    let mut agg = Aggregator::new(&config("dimensions_cache_size: 1000"));
    for batch in 0..100u64 {
        let spans = (0..10_000u64)
            .map(|i| span_of(&format!("s-{}", batch * 10_000 + i), MS))
            .collect();
        agg.aggregate(&[service("kong", spans)], T0 + batch);
        assert!(agg.series_count() <= 1000);
    }
    assert_eq!(agg.take_evicted(), 999_000);
    let out = agg.flush(T0 + SEC);
    let points = calls(&out[0]);
    assert_eq!(points.len(), 1000);
    assert_eq!(durations(&out[0]).len(), 1000);
    let mut names: Vec<u64> = points
        .iter()
        .map(|p| {
            assert_eq!(int(p), 1);
            attr_str(&p.attributes, "span.name").unwrap()[2..]
                .parse()
                .unwrap()
        })
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        (999_000..1_000_000).collect::<Vec<u64>>(),
        "the most recent kept"
    );

    // An evicted series that comes back starts again, with its own start time.
    agg.aggregate(&[service("kong", vec![span_of("s-0", MS)])], T0 + 2 * SEC);
    let out = agg.flush(T0 + 3 * SEC);
    let points = calls(&out[0]);
    assert_eq!(points.len(), 1000);
    let back = points
        .iter()
        .find(|p| attr_str(&p.attributes, "span.name") == Some("s-0"))
        .unwrap();
    assert_eq!(int(back), 1);
    assert_eq!(back.start_time_unix_nano, T0 + 2 * SEC);
}

#[test]
fn resources_are_bounded_and_evicted_ones_restart() {
    let mut agg = Aggregator::new(&config("resource_metrics_cache_size: 3"));
    for (i, name) in ["a", "b", "c", "d"].iter().enumerate() {
        agg.aggregate(&[service(name, vec![span_of("x", MS)])], T0 + i as u64);
    }
    assert_eq!(agg.resource_count(), 3);
    let out = agg.flush(T0 + SEC);
    let mut services: Vec<String> = out
        .iter()
        .map(|rm| {
            attr_str(&rm.resource.as_ref().unwrap().attributes, "service.name")
                .unwrap()
                .to_owned()
        })
        .collect();
    services.sort();
    assert_eq!(services, ["b", "c", "d"]);
    agg.aggregate(&[service("a", vec![span_of("x", MS)])], T0 + 2 * SEC);
    let out = agg.flush(T0 + 3 * SEC);
    let a = out
        .iter()
        .find(|rm| attr_str(&rm.resource.as_ref().unwrap().attributes, "service.name") == Some("a"))
        .unwrap();
    let p = &calls(a)[0];
    assert_eq!(int(p), 1);
    assert_eq!(p.start_time_unix_nano, T0 + 2 * SEC);
}

#[test]
fn key_attributes_pick_the_resource_and_the_first_resource_is_copied() {
    let c = config("resource_metrics_key_attributes: [service.name]");
    let mut agg = Aggregator::new(&c);
    agg.aggregate(
        &[
            resource(
                vec![kv("service.name", "kong"), kv("host.name", "one")],
                vec![span_of("x", MS)],
            ),
            resource(
                vec![kv("service.name", "kong"), kv("host.name", "two")],
                vec![span_of("x", MS)],
            ),
        ],
        T0,
    );
    let out = agg.flush(T0 + SEC);
    assert_eq!(out.len(), 1);
    assert_eq!(
        attr_str(&out[0].resource.as_ref().unwrap().attributes, "host.name"),
        Some("one")
    );
    assert_eq!(int(&calls(&out[0])[0]), 2);

    let mut all = Aggregator::new(&config(""));
    all.aggregate(
        &[
            resource(
                vec![kv("service.name", "kong"), kv("host.name", "one")],
                vec![],
            ),
            resource(
                vec![kv("host.name", "one"), kv("service.name", "kong")],
                vec![],
            ),
            resource(
                vec![kv("service.name", "kong"), kv("host.name", "three")],
                vec![],
            ),
        ],
        T0,
    );
    assert_eq!(all.resource_count(), 2, "attribute order does not matter");
}

#[test]
fn expired_resources_are_dropped_in_cumulative_mode() {
    let mut agg = Aggregator::new(&config("metrics_expiration: 10s"));
    agg.aggregate(&[service("old", vec![span_of("x", MS)])], T0);
    agg.aggregate(&[service("new", vec![span_of("x", MS)])], T0 + 8 * SEC);
    assert_eq!(agg.flush(T0 + 9 * SEC).len(), 2);
    let out = agg.flush(T0 + 12 * SEC);
    assert_eq!(out.len(), 1);
    assert_eq!(
        attr_str(
            &out[0].resource.as_ref().unwrap().attributes,
            "service.name"
        ),
        Some("new")
    );
}

#[test]
fn exemplars_are_bounded_stamped_and_cleared() {
    let c = config("exemplars: {enabled: true, max_per_data_point: 2}");
    let mut agg = Aggregator::new(&c);
    let mut no_trace = span_of("a", MS);
    no_trace.trace_id = Vec::new();
    let mut spans = vec![no_trace];
    for i in 1..=3u8 {
        let mut s = span_of("a", u64::from(i) * MS);
        s.trace_id = vec![i; 16];
        s.span_id = vec![i; 8];
        spans.push(s);
    }
    agg.aggregate(&[service("kong", spans)], T0);
    let out = agg.flush(T0 + SEC);
    let c = &calls(&out[0])[0];
    let h = &durations(&out[0])[0];
    assert_eq!(int(c), 4);
    for exemplars in [&c.exemplars, &h.exemplars] {
        assert_eq!(exemplars.len(), 2);
        assert_eq!(exemplars[0].trace_id, vec![1; 16]);
        assert_eq!(exemplars[0].span_id, vec![1; 8]);
        assert_eq!(exemplars[0].value, Some(exemplar::Value::AsDouble(1.0)));
        assert_eq!(exemplars[1].value, Some(exemplar::Value::AsDouble(2.0)));
        assert_eq!(exemplars[0].time_unix_nano, T0 + SEC);
    }
    let again = agg.flush(T0 + 2 * SEC);
    assert!(calls(&again[0])[0].exemplars.is_empty());
    assert!(durations(&again[0])[0].exemplars.is_empty());

    let mut off = Aggregator::new(&config(""));
    off.aggregate(&[service("kong", vec![span_of("a", MS)])], T0);
    assert!(calls(&off.flush(T0 + SEC)[0])[0].exemplars.is_empty());
}

#[test]
fn events_are_counted_by_event_dimensions() {
    use opentelemetry_proto::tonic::trace::v1::span::Event;
    let c = config("events: {enabled: true, dimensions: [{name: exception.type}]}");
    let mut agg = Aggregator::new(&c);
    let event = |t: &str| Event {
        name: "exception".into(),
        attributes: vec![kv("exception.type", t)],
        ..Default::default()
    };
    let mut s = span_of("a", MS);
    s.events = vec![event("Timeout"), event("Timeout"), event("Refused")];
    agg.aggregate(&[service("kong", vec![s])], T0);
    let out = agg.flush(T0 + SEC);
    let m = metric(&out[0], "traces.span.metrics.events").unwrap();
    let Some(metric::Data::Sum(sum)) = &m.data else {
        panic!("events is not a sum");
    };
    let mut counts: Vec<(String, i64)> = sum
        .data_points
        .iter()
        .map(|p| {
            (
                attr_str(&p.attributes, "exception.type")
                    .unwrap()
                    .to_owned(),
                int(p),
            )
        })
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        [("Refused".to_owned(), 1), ("Timeout".to_owned(), 2)]
    );
    assert_eq!(int(&calls(&out[0])[0]), 1);
}

#[test]
fn namespace_and_disabled_histogram() {
    let c = config("namespace: \"\"\nhistogram: {disable: true}");
    let mut agg = Aggregator::new(&c);
    agg.aggregate(&[service("kong", vec![span_of("a", MS)])], T0);
    let out = agg.flush(T0 + SEC);
    let names: Vec<&str> = out[0].scope_metrics[0]
        .metrics
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(names, ["calls"]);
    let c = config("namespace: kong");
    assert_eq!(c.metric_name("duration"), "kong.duration");
}

#[test]
fn seconds_unit_on_the_metric_and_the_values() {
    let c = config("histogram: {unit: s}");
    let mut agg = Aggregator::new(&c);
    agg.aggregate(&[service("kong", vec![span_of("a", 1500 * MS)])], T0);
    let out = agg.flush(T0 + SEC);
    let m = metric(&out[0], "traces.span.metrics.duration").unwrap();
    assert_eq!(m.unit, "s");
    let Some(metric::Data::Histogram(h)) = &m.data else {
        panic!("not a histogram");
    };
    let p = &h.data_points[0];
    assert_eq!(p.sum, Some(1.5));
    assert_eq!(p.bucket_counts[12], 1, "(1.4, 2] seconds");
}

// ---- connector ----

fn connector(text: &str, capture: &Arc<Capture>) -> BoxNode {
    let settings = CreateSettings {
        id: ComponentId::parse("spanmetrics").unwrap(),
        signal: Signal::Traces,
        pipeline: String::new(),
    };
    FACTORY
        .create(
            &settings,
            &yaml(text),
            Signal::Traces,
            Signal::Metrics,
            capture.clone(),
        )
        .unwrap()
}

fn host() -> Host {
    let (_tx, ready) = tokio::sync::watch::channel(true);
    Host {
        ready,
        shutdown: CancellationToken::new(),
        extensions: Default::default(),
    }
}

fn metric_batches(capture: &Capture) -> Vec<Vec<ResourceMetrics>> {
    capture
        .batches()
        .into_iter()
        .map(|b| match b {
            Batch::Metrics(rm) => rm,
            other => panic!("not metrics: {other:?}"),
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn connector_flushes_on_its_timer_and_at_shutdown() {
    let capture = Arc::new(Capture::new());
    let node = connector("metrics_flush_interval: 15s", &capture);
    node.start(&host()).await.unwrap();
    let spans = Batch::Traces(vec![service(
        "kong",
        vec![span_of("a", MS), span_of("a", MS)],
    )]);
    node.consume(spans, &ClientInfo::default()).await.unwrap();
    assert!(capture.batches().is_empty());

    tokio::time::sleep(Duration::from_secs(16)).await;
    let batches = metric_batches(&capture);
    assert_eq!(batches.len(), 1, "one flush after one interval");
    assert_eq!(int(&calls(&batches[0][0])[0]), 2);

    let more = Batch::Traces(vec![service("kong", vec![span_of("a", MS)])]);
    node.consume(more, &ClientInfo::default()).await.unwrap();
    node.shutdown().await.unwrap();
    let batches = metric_batches(&capture);
    assert_eq!(batches.len(), 2, "one more at shutdown");
    assert_eq!(int(&calls(&batches[1][0])[0]), 3);
}

#[tokio::test]
async fn downstream_errors_do_not_reach_the_traces_pipeline() {
    let capture = Arc::new(Capture::new());
    capture.refuse_next(vec![ConsumeError::permanent("backend down")]);
    let node = connector("", &capture);
    node.start(&host()).await.unwrap();
    let spans = Batch::Traces(vec![service("kong", vec![span_of("a", MS)])]);
    assert!(node.consume(spans, &ClientInfo::default()).await.is_ok());
    node.shutdown().await.unwrap();
    assert!(capture.batches().is_empty(), "the refused flush is dropped");
}

#[test]
fn factory_supports_traces_to_metrics_only() {
    assert_eq!(FACTORY.pairs(), &[(Signal::Traces, Signal::Metrics)]);
    assert!(FACTORY.info().supports(Signal::Traces));
    assert!(!FACTORY.info().supports(Signal::Metrics));
    let err = FACTORY.validate(&yaml("histogram: {unit: h}")).unwrap_err();
    assert_eq!(err.path, ["histogram", "unit"]);
}
