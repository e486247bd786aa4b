use serde_json::json;

use super::registry::{histogram_lines, Family, Histogram, Metrics, KONG_BUCKETS};
use super::PrometheusFactory;
use crate::plugins::Factory;

#[test]
fn flags_default_to_false_and_unknown_fields_are_rejected() {
    let mut c = json!({});
    PrometheusFactory.check_config(&mut c).unwrap();
    for flag in [
        "per_consumer",
        "status_code_metrics",
        "latency_metrics",
        "bandwidth_metrics",
        "upstream_health_metrics",
        "ai_metrics",
    ] {
        assert_eq!(c[flag], false, "{flag}");
    }
    let err = PrometheusFactory
        .check_config(&mut json!({"latency": true}))
        .unwrap_err();
    assert_eq!(
        err,
        vec![("latency".to_owned(), "unknown field".to_owned())]
    );
}

#[test]
fn histograms_print_only_incremented_buckets_in_order() {
    let family: Family<Histogram> = Family::default();
    Metrics::observe(&family, KONG_BUCKETS, &["s", "r", "default"], 6);
    Metrics::observe(&family, KONG_BUCKETS, &["s", "r", "default"], 1);
    let mut lines = histogram_lines(
        "kong_kong_latency_ms",
        &["service", "route", "workspace"],
        &family,
    );
    lines.sort();
    let text: Vec<String> = lines.into_iter().map(|(_, t)| t).collect();
    assert_eq!(
        text[0],
        r#"kong_kong_latency_ms_bucket{service="s",route="r",workspace="default",le="1"} 1"#
    );
    assert_eq!(
        text[1],
        r#"kong_kong_latency_ms_bucket{service="s",route="r",workspace="default",le="2"} 1"#
    );
    assert_eq!(
        text[3],
        r#"kong_kong_latency_ms_bucket{service="s",route="r",workspace="default",le="7"} 2"#
    );
    assert_eq!(
        text[16],
        r#"kong_kong_latency_ms_bucket{service="s",route="r",workspace="default",le="6000"} 2"#
    );
    assert_eq!(
        text[17],
        r#"kong_kong_latency_ms_bucket{service="s",route="r",workspace="default",le="+Inf"} 2"#
    );
    assert_eq!(
        text[18],
        r#"kong_kong_latency_ms_count{service="s",route="r",workspace="default"} 2"#
    );
    assert_eq!(
        text[19],
        r#"kong_kong_latency_ms_sum{service="s",route="r",workspace="default"} 7"#
    );
    let family: Family<Histogram> = Family::default();
    Metrics::observe(&family, KONG_BUCKETS, &["s", "r\"x", "default"], 8);
    let lines = histogram_lines("h", &["service", "route", "workspace"], &family);
    assert!(lines.iter().all(|(_, t)| !t.contains("le=\"7\"")));
    assert!(lines[0].1.contains(r#"route="r\"x""#));
}

#[test]
fn counts_from_many_worker_threads_add_up() {
    use super::registry::{counter_lines, Counter};
    let counters: Family<Counter> = Family::default();
    let histograms: Family<Histogram> = Family::default();
    std::thread::scope(|s| {
        for t in 0..12u64 {
            let (counters, histograms) = (&counters, &histograms);
            s.spawn(move || {
                for i in 0..100 {
                    Metrics::add(counters, &["s", "r", "200"], 1 + t);
                    Metrics::observe(histograms, KONG_BUCKETS, &["s", "r", "default"], i % 10);
                }
            });
        }
    });
    let lines = counter_lines("c", &["service", "route", "code"], &counters);
    assert_eq!(
        lines[0].1,
        format!(
            r#"c{{service="s",route="r",code="200"}} {}"#,
            100 * (1..=12).sum::<u64>()
        )
    );
    let mut text: Vec<String> =
        histogram_lines("h", &["service", "route", "workspace"], &histograms)
            .into_iter()
            .map(|(_, t)| t)
            .collect();
    text.sort();
    let has = |line: &str| text.iter().any(|t| t == line);
    // Values 0..9 ten times per thread: 120 each; le="1" holds 0 and 1.
    assert!(
        has(r#"h_bucket{service="s",route="r",workspace="default",le="1"} 240"#),
        "{text:?}"
    );
    assert!(has(
        r#"h_bucket{service="s",route="r",workspace="default",le="7"} 960"#
    ));
    assert!(has(
        r#"h_bucket{service="s",route="r",workspace="default",le="10"} 1200"#
    ));
    assert!(has(
        r#"h_bucket{service="s",route="r",workspace="default",le="+Inf"} 1200"#
    ));
    assert!(has(
        r#"h_count{service="s",route="r",workspace="default"} 1200"#
    ));
    assert!(has(&format!(
        r#"h_sum{{service="s",route="r",workspace="default"}} {}"#,
        12 * 10 * 45
    )));
}
