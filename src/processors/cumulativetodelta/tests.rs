use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::*;

const CUMULATIVE: i32 = AggregationTemporality::Cumulative as i32;
const DELTA: i32 = AggregationTemporality::Delta as i32;
/// The processor's start time in these tests.
const STARTED: u64 = 1_000;

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn processor(yaml: &str) -> CumulativeToDelta {
    let config: Config = decode(&yaml_serde::from_str(yaml).unwrap()).unwrap();
    CumulativeToDelta::with_start(&config, STARTED, tracker::MAX_SERIES).unwrap()
}

fn error(yaml: &str) -> String {
    FACTORY
        .validate(&yaml_serde::from_str(yaml).unwrap())
        .unwrap_err()
        .to_string()
}

fn int_point(start: u64, time: u64, value: i64, attrs: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        start_time_unix_nano: start,
        time_unix_nano: time,
        value: Some(number_data_point::Value::AsInt(value)),
        ..Default::default()
    }
}

fn double_point(start: u64, time: u64, value: f64) -> NumberDataPoint {
    NumberDataPoint {
        start_time_unix_nano: start,
        time_unix_nano: time,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    }
}

fn sum(name: &str, monotonic: bool, temporality: i32, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        data: Some(metric::Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: temporality,
            is_monotonic: monotonic,
        })),
        ..Default::default()
    }
}

fn histogram(name: &str, points: Vec<HistogramDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        unit: "ms".into(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points: points,
            aggregation_temporality: CUMULATIVE,
        })),
        ..Default::default()
    }
}

fn hist_point(time: u64, count: u64, sum: f64, buckets: Vec<u64>) -> HistogramDataPoint {
    HistogramDataPoint {
        start_time_unix_nano: 2_000,
        time_unix_nano: time,
        count,
        sum: Some(sum),
        bucket_counts: buckets,
        explicit_bounds: vec![10.0, 100.0],
        min: Some(1.0),
        max: Some(500.0),
        ..Default::default()
    }
}

fn batch_of(service: &str, metrics: Vec<Metric>) -> Batch {
    Batch::Metrics(vec![ResourceMetrics {
        resource: Some(Resource {
            attributes: vec![kv("service.name", service)],
            ..Default::default()
        }),
        scope_metrics: vec![ScopeMetrics {
            scope: Some(InstrumentationScope {
                name: "kong".into(),
                ..Default::default()
            }),
            metrics,
            ..Default::default()
        }],
        ..Default::default()
    }])
}

fn run(p: &CumulativeToDelta, batch: Batch) -> Vec<Metric> {
    match p.process(batch, &ClientInfo::default()).unwrap() {
        Batch::Metrics(rm) => rm
            .into_iter()
            .flat_map(|r| r.scope_metrics)
            .flat_map(|s| s.metrics)
            .collect(),
        _ => unreachable!("metrics in, metrics out"),
    }
}

/// (start, time, int value) of every sum point.
fn sum_points(metrics: &[Metric]) -> Vec<(u64, u64, i64)> {
    metrics
        .iter()
        .filter_map(|m| match &m.data {
            Some(metric::Data::Sum(s)) => Some(s),
            _ => None,
        })
        .flat_map(|s| &s.data_points)
        .map(|p| match p.value {
            Some(number_data_point::Value::AsInt(i)) => {
                (p.start_time_unix_nano, p.time_unix_nano, i)
            }
            _ => panic!("expected int point: {p:?}"),
        })
        .collect()
}

fn counter(start: u64, time: u64, value: i64) -> Batch {
    batch_of(
        "kong",
        vec![sum(
            "requests",
            true,
            CUMULATIVE,
            vec![int_point(start, time, value, vec![])],
        )],
    )
}

#[test]
fn seed_config_with_empty_include_validates() {
    FACTORY
        .validate(&yaml_serde::from_str("include:\n").unwrap())
        .unwrap();
    FACTORY.validate(&yaml_serde::Value::Null).unwrap();
}

#[test]
fn config_errors_use_otelcol_messages() {
    assert_eq!(
        error("include: {metrics: [a]}"),
        "match_type must be set if metrics are supplied"
    );
    assert_eq!(
        error("exclude: {match_type: strict}"),
        "metrics must be supplied if match_type is set"
    );
    assert_eq!(
        error("include: {metric_types: [gauge]}"),
        "found invalid metric type in include.metric_types: gauge. Valid values are [histogram sum]"
    );
    assert_eq!(
        error("initial_value: sometimes"),
        "initial_value: unknown variant `sometimes`, expected one of `auto`, `keep`, `drop`"
    );
    assert!(error("include: {match_type: regexp, metrics: ['(']}")
        .starts_with("include::metrics: invalid regexp"));
    assert!(error("max_staleness: soon").contains("invalid duration"));
    FACTORY
        .validate(&yaml_serde::from_str("include: {match_type: strict, metrics: [a], metric_types: [SUM, Histogram]}\nmax_staleness: 1h\ninitial_value: drop").unwrap())
        .unwrap();
}

#[test]
fn monotonic_sum_becomes_deltas_from_previous_timestamp() {
    let p = processor("initial_value: drop");
    assert!(
        run(&p, counter(2_000, 10_000, 5)).is_empty(),
        "first point is the baseline"
    );
    let out = run(&p, counter(2_000, 20_000, 12));
    assert_eq!(sum_points(&out), vec![(10_000, 20_000, 7)]);
    match &out[0].data {
        Some(metric::Data::Sum(s)) => {
            assert_eq!(s.aggregation_temporality, DELTA);
            assert!(s.is_monotonic);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        sum_points(&run(&p, counter(2_000, 30_000, 12))),
        vec![(20_000, 30_000, 0)]
    );
}

#[test]
fn sum_reset_drops_the_point_and_moves_the_baseline() {
    let p = processor("initial_value: drop");
    run(&p, counter(2_000, 10_000, 50));
    assert!(run(&p, counter(2_000, 20_000, 3)).is_empty());
    assert_eq!(
        sum_points(&run(&p, counter(2_000, 30_000, 10))),
        vec![(20_000, 30_000, 7)]
    );
}

#[test]
fn initial_value_policies() {
    // keep: the first point goes on with its cumulative value and start time.
    let p = processor("initial_value: keep");
    assert_eq!(
        sum_points(&run(&p, counter(500, 10_000, 5))),
        vec![(500, 10_000, 5)]
    );

    // auto: started before the processor → dropped.
    let p = processor("");
    assert!(run(&p, counter(500, 10_000, 5)).is_empty());
    assert_eq!(
        sum_points(&run(&p, counter(500, 20_000, 8))),
        vec![(10_000, 20_000, 3)]
    );

    // auto: started after the processor → kept.
    let p = processor("initial_value: auto");
    assert_eq!(
        sum_points(&run(&p, counter(STARTED + 1, 10_000, 5))),
        vec![(STARTED + 1, 10_000, 5)]
    );

    // auto: start == timestamp (a scraped counter's first sight) → dropped.
    let p = processor("initial_value: auto");
    assert!(run(&p, counter(10_000, 10_000, 5)).is_empty());
}

#[test]
fn start_time_is_part_of_the_identity() {
    let p = processor("initial_value: drop");
    run(&p, counter(2_000, 10_000, 50));
    // A restarted counter (new start time) is a new series: its first point is a baseline.
    assert!(run(&p, counter(15_000, 20_000, 3)).is_empty());
    assert_eq!(
        sum_points(&run(&p, counter(15_000, 30_000, 4))),
        vec![(20_000, 30_000, 1)]
    );
    assert_eq!(p.tracked_series(), 2);
}

#[test]
fn attribute_order_does_not_split_a_series_but_values_do() {
    let p = processor("initial_value: drop");
    let m = |attrs, v| {
        batch_of(
            "kong",
            vec![sum(
                "requests",
                true,
                CUMULATIVE,
                vec![int_point(2_000, 10_000 + v as u64, v, attrs)],
            )],
        )
    };
    run(&p, m(vec![kv("a", "1"), kv("b", "2")], 5));
    assert_eq!(
        sum_points(&run(&p, m(vec![kv("b", "2"), kv("a", "1")], 9))).len(),
        1
    );
    assert!(run(&p, m(vec![kv("a", "1"), kv("b", "3")], 9)).is_empty());
    // Another resource is another series.
    let other = batch_of(
        "other",
        vec![sum(
            "requests",
            true,
            CUMULATIVE,
            vec![int_point(
                2_000,
                10_100,
                100,
                vec![kv("a", "1"), kv("b", "2")],
            )],
        )],
    );
    assert!(run(&p, other).is_empty());
    assert_eq!(p.tracked_series(), 3);
}

#[test]
fn other_metrics_pass_untouched() {
    let p = processor("initial_value: drop");
    let gauge = Metric {
        name: "temp".into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![int_point(0, 10_000, 5, vec![])],
        })),
        ..Default::default()
    };
    let metrics = vec![
        sum(
            "updown",
            false,
            CUMULATIVE,
            vec![int_point(2_000, 10_000, 5, vec![])],
        ),
        sum(
            "already",
            true,
            DELTA,
            vec![int_point(2_000, 10_000, 5, vec![])],
        ),
        gauge,
    ];
    let out = run(&p, batch_of("kong", metrics.clone()));
    assert_eq!(out, metrics);
    assert_eq!(p.tracked_series(), 0);
}

#[test]
fn nan_passes_and_stale_markers_are_removed() {
    let p = processor("initial_value: drop");
    let stale = NumberDataPoint {
        flags: NO_RECORDED_VALUE,
        ..double_point(2_000, 10_000, 1.0)
    };
    let out = run(
        &p,
        batch_of(
            "kong",
            vec![sum(
                "bytes",
                true,
                CUMULATIVE,
                vec![double_point(2_000, 10_000, f64::NAN), stale],
            )],
        ),
    );
    let Some(metric::Data::Sum(s)) = &out[0].data else {
        panic!("{out:?}")
    };
    assert_eq!(s.data_points.len(), 1);
    assert!(
        matches!(s.data_points[0].value, Some(number_data_point::Value::AsDouble(d)) if d.is_nan())
    );
    assert_eq!(p.tracked_series(), 0);

    run(
        &p,
        batch_of(
            "kong",
            vec![sum(
                "bytes",
                true,
                CUMULATIVE,
                vec![double_point(2_000, 10_000, 1.5)],
            )],
        ),
    );
    let out = run(
        &p,
        batch_of(
            "kong",
            vec![sum(
                "bytes",
                true,
                CUMULATIVE,
                vec![double_point(2_000, 20_000, 4.0)],
            )],
        ),
    );
    let Some(metric::Data::Sum(s)) = &out[0].data else {
        panic!("{out:?}")
    };
    assert_eq!(
        s.data_points[0].value,
        Some(number_data_point::Value::AsDouble(2.5))
    );
}

#[test]
fn histograms_become_deltas_and_resets_emit_full_values() {
    let p = processor("initial_value: drop");
    assert!(run(
        &p,
        batch_of(
            "kong",
            vec![histogram(
                "latency",
                vec![hist_point(10_000, 4, 40.0, vec![1, 2, 1])]
            )]
        )
    )
    .is_empty());
    let out = run(
        &p,
        batch_of(
            "kong",
            vec![histogram(
                "latency",
                vec![hist_point(20_000, 10, 100.0, vec![2, 5, 3])],
            )],
        ),
    );
    let Some(metric::Data::Histogram(h)) = &out[0].data else {
        panic!("{out:?}")
    };
    assert_eq!(h.aggregation_temporality, DELTA);
    let d = &h.data_points[0];
    assert_eq!((d.start_time_unix_nano, d.time_unix_nano), (10_000, 20_000));
    assert_eq!(
        (d.count, d.sum, d.bucket_counts.clone()),
        (6, Some(60.0), vec![1, 3, 2])
    );
    assert_eq!((d.min, d.max), (None, None));

    // Count went down: a reset, emitted with its full values.
    let out = run(
        &p,
        batch_of(
            "kong",
            vec![histogram(
                "latency",
                vec![hist_point(30_000, 3, 9.0, vec![1, 1, 1])],
            )],
        ),
    );
    let Some(metric::Data::Histogram(h)) = &out[0].data else {
        panic!("{out:?}")
    };
    let d = &h.data_points[0];
    assert_eq!(
        (
            d.start_time_unix_nano,
            d.count,
            d.sum,
            d.bucket_counts.clone()
        ),
        (20_000, 3, Some(9.0), vec![1, 1, 1])
    );

    // Bucket layout changed: dropped, new baseline.
    assert!(run(
        &p,
        batch_of(
            "kong",
            vec![histogram(
                "latency",
                vec![hist_point(40_000, 5, 10.0, vec![1, 1, 1, 2])]
            )]
        )
    )
    .is_empty());
}

#[test]
fn include_and_exclude_select_by_name_and_type() {
    let p = processor(
        "initial_value: keep\ninclude: {match_type: regexp, metrics: ['^kong_']}\nexclude: {match_type: strict, metrics: [kong_skip]}",
    );
    let out = run(
        &p,
        batch_of(
            "kong",
            vec![
                sum(
                    "kong_requests",
                    true,
                    CUMULATIVE,
                    vec![int_point(500, 10_000, 5, vec![])],
                ),
                sum(
                    "kong_skip",
                    true,
                    CUMULATIVE,
                    vec![int_point(500, 10_000, 5, vec![])],
                ),
                sum(
                    "other",
                    true,
                    CUMULATIVE,
                    vec![int_point(500, 10_000, 5, vec![])],
                ),
            ],
        ),
    );
    let temporalities: Vec<(String, i32)> = out
        .iter()
        .map(|m| match &m.data {
            Some(metric::Data::Sum(s)) => (m.name.clone(), s.aggregation_temporality),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        temporalities,
        vec![
            ("kong_requests".into(), DELTA),
            ("kong_skip".into(), CUMULATIVE),
            ("other".into(), CUMULATIVE)
        ]
    );

    let p = processor("initial_value: keep\nexclude: {metric_types: [histogram]}");
    let out = run(
        &p,
        batch_of(
            "kong",
            vec![
                sum(
                    "kong_requests",
                    true,
                    CUMULATIVE,
                    vec![int_point(500, 10_000, 5, vec![])],
                ),
                histogram("latency", vec![hist_point(10_000, 1, 1.0, vec![1, 0, 0])]),
            ],
        ),
    );
    let Some(metric::Data::Histogram(h)) = &out[1].data else {
        panic!("{out:?}")
    };
    assert_eq!(h.aggregation_temporality, CUMULATIVE);
    assert_eq!(p.tracked_series(), 1);
}

#[test]
fn empty_metrics_scopes_and_resources_are_removed() {
    let p = processor("initial_value: drop");
    match p
        .process(counter(2_000, 10_000, 5), &ClientInfo::default())
        .unwrap()
    {
        Batch::Metrics(rm) => assert!(rm.is_empty(), "{rm:?}"),
        _ => unreachable!(),
    }
}

#[test]
fn stale_series_are_forgotten_after_max_staleness() {
    let mut t = Tracker::new(InitialValue::Drop, 0, Duration::from_secs(60), 10);
    let t0 = Instant::now();
    let point = |time, v| Point {
        start: 1,
        time,
        value: Value::Int(v),
    };
    assert_eq!(
        t.convert(b"a".to_vec(), point(10, 1), t0),
        Err(Skip::Initial)
    );
    assert_eq!(
        t.convert(b"b".to_vec(), point(10, 1), t0),
        Err(Skip::Initial)
    );
    let later = t0 + Duration::from_secs(50);
    assert!(t.convert(b"b".to_vec(), point(20, 2), later).is_ok());
    t.sweep(t0 + Duration::from_secs(61));
    assert_eq!(t.len(), 1, "a was quiet for 61s, b for 11s");
    // a starts over with a baseline.
    assert_eq!(
        t.convert(b"a".to_vec(), point(30, 5), t0 + Duration::from_secs(62)),
        Err(Skip::Initial)
    );
}

#[test]
fn series_count_is_bounded() {
    let config: Config = decode(&yaml_serde::from_str("initial_value: keep").unwrap()).unwrap();
    let p = CumulativeToDelta::with_start(&config, STARTED, 1).unwrap();
    assert_eq!(run(&p, counter(2_000, 10_000, 5)).len(), 1);
    assert!(
        run(&p, counter(3_000, 10_000, 5)).is_empty(),
        "a second series is not tracked"
    );
    assert_eq!(
        sum_points(&run(&p, counter(2_000, 20_000, 9))),
        vec![(10_000, 20_000, 4)]
    );
    assert_eq!(p.tracked_series(), 1);
}
