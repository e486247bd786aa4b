use super::*;

fn text(body: &str) -> Result<Vec<Family>, ParseError> {
    parse(body, Format::Prometheus)
}

fn om(body: &str) -> Result<Vec<Family>, ParseError> {
    parse(body, Format::OpenMetrics)
}

#[test]
fn text_families_types_help_and_samples() {
    let body = "# HELP http_requests_total The total.\\nSecond line \\\\ done.
# TYPE http_requests_total counter
http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000
http_requests_total{method=\"post\",code=\"400\",} 3 1395066363000

# A comment
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile=\"0.5\"} 4773
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
# TYPE latency histogram
latency_bucket{le=\"0.5\"} 1
latency_bucket{le=\"+Inf\"} 2
latency_sum 0.7
latency_count 2
untyped_thing{path=\"C:\\\\dir\\\"q\\\"\\n\"}   -Inf
no_labels NaN
";
    let f = text(body).unwrap();
    assert_eq!(f.len(), 5);
    assert_eq!(f[0].name, "http_requests_total");
    assert_eq!(f[0].kind, MetricType::Counter);
    assert_eq!(
        f[0].help.as_deref(),
        Some("The total.\nSecond line \\ done.")
    );
    assert_eq!(f[0].samples.len(), 2);
    assert_eq!(f[0].samples[0].timestamp_ms, Some(1395066363000));
    assert_eq!(f[0].samples[1].label("code"), Some("400"));
    assert_eq!(f[1].kind, MetricType::Summary);
    assert_eq!(f[1].samples.len(), 3);
    assert_eq!(f[2].kind, MetricType::Histogram);
    assert_eq!(f[2].samples.len(), 4);
    assert_eq!(f[3].kind, MetricType::Unknown);
    assert_eq!(f[3].samples[0].label("path"), Some("C:\\dir\"q\"\n"));
    assert_eq!(f[3].samples[0].value, f64::NEG_INFINITY);
    assert!(f[4].samples[0].value.is_nan());
}

#[test]
fn malformed_text_is_rejected_with_its_line() {
    let cases: &[(&str, usize, &str)] = &[
        ("metric{a=\"b\" 1\n", 1, "expected ',' or '}'"),
        ("metric{a=\"b} 1\n", 1, "unterminated label value"),
        ("metric 1 2 3\n", 1, "unexpected text after the timestamp"),
        ("metric\n", 1, "expected whitespace"),
        ("metric abc\n", 1, "invalid value"),
        ("ok 1\n1metric 1\n", 2, "invalid metric name"),
        ("metric{1a=\"b\"} 1\n", 1, "invalid label name"),
        ("metric{a=\"b\",a=\"c\"} 1\n", 1, "duplicate label name"),
        ("metric 1 1.5\n", 1, "invalid timestamp"),
        ("# TYPE m counter\n# TYPE m gauge\nm 1\n", 2, "second TYPE"),
        ("# HELP m a\n# HELP m b\n", 2, "second HELP"),
        ("m 1\n# TYPE m counter\n", 2, "after its samples"),
        ("# TYPE m countr\n", 1, "invalid metric type"),
        ("# TYPE 9m counter\n", 1, "invalid metric name"),
        ("metric{a=b} 1\n", 1, "expected '\"'"),
        ("metric{a=\"b\"}1\n", 1, "expected whitespace"),
    ];
    for (body, line, message) in cases {
        let err = text(body).expect_err(body);
        assert_eq!(err.line, *line, "{body:?}: {err}");
        assert!(err.message.contains(message), "{body:?}: {err}");
    }
}

#[test]
fn openmetrics_families_units_and_suffixes() {
    let body = "# TYPE acme_http_router_request_seconds summary
# UNIT acme_http_router_request_seconds seconds
# HELP acme_http_router_request_seconds Latency though all of ACME's HTTP request router.
acme_http_router_request_seconds_sum{path=\"/api/v1\",method=\"GET\"} 9036.32
acme_http_router_request_seconds_count{path=\"/api/v1\",method=\"GET\"} 807283.0
acme_http_router_request_seconds_created{path=\"/api/v1\",method=\"GET\"} 1605281325.0
# TYPE go_goroutines gauge
go_goroutines 69
# TYPE process_cpu_seconds counter
# UNIT process_cpu_seconds seconds
process_cpu_seconds_total 4.20072246e+06 1605281325.5 # {trace_id=\"KOO5S4vxi0o\"} 0.67
# TYPE build info
build_info{version=\"1.0\"} 1
# EOF
";
    let f = om(body).unwrap();
    assert_eq!(f.len(), 4);
    assert_eq!(f[0].unit.as_deref(), Some("seconds"));
    assert_eq!(f[0].samples.len(), 3);
    assert_eq!(f[2].name, "process_cpu_seconds");
    assert_eq!(f[2].samples[0].name, "process_cpu_seconds_total");
    assert_eq!(f[2].samples[0].timestamp_ms, Some(1_605_281_325_500));
    assert_eq!(f[3].kind, MetricType::Info);
}

#[test]
fn malformed_openmetrics_is_rejected() {
    let cases: &[(&str, &str)] = &[
        ("a 1\n", "missing # EOF"),
        ("a 1\n# EOF\nb 1\n", "after # EOF"),
        ("a 1\n\n# EOF\n", "empty line"),
        ("# random comment\n# EOF\n", "invalid comment keyword"),
        ("#comment\n# EOF\n", "invalid comment line"),
        ("# TYPE c counter\nc 1\n# EOF\n", "must end in _total"),
        ("a 1\nb 1\na 2\n# EOF\n", "not contiguous"),
        (
            "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n# TYPE a gauge\n# EOF\n",
            "appears twice",
        ),
        ("# TYPE h histogram\nh_bucket 1\n# EOF\n", "without le"),
        ("# TYPE s summary\ns 1\n# EOF\n", "without quantile"),
        ("a{b=\"c\",} 1\n# EOF\n", "trailing comma"),
        ("a  1\n# EOF\n", "single space"),
        ("a{b=\"\\t\"} 1\n# EOF\n", "invalid escape"),
        (
            "# TYPE g gauge\ng 1 # {a=\"b\"} 1\n# EOF\n",
            "cannot carry one",
        ),
        (
            "# TYPE m_seconds gauge\n# UNIT m_seconds bytes\n# EOF\n",
            "not a suffix",
        ),
        (
            "# TYPE m gauge\nm 1\n# HELP m late\n# EOF\n",
            "after its samples",
        ),
    ];
    for (body, message) in cases {
        let err = om(body).expect_err(body);
        assert!(err.message.contains(message), "{body:?}: {err}");
    }
}

#[test]
fn content_type_selects_the_format() {
    assert_eq!(
        Format::from_content_type("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        Format::OpenMetrics
    );
    assert_eq!(
        Format::from_content_type("text/plain; version=0.0.4"),
        Format::Prometheus
    );
    assert_eq!(Format::from_content_type(""), Format::Prometheus);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn name() -> impl Strategy<Value = String> {
        "[a-zA-Z_:][a-zA-Z0-9_:]{0,12}"
    }

    fn label_value() -> impl Strategy<Value = String> {
        "[ -~\n\\\\\"é]{0,12}"
    }

    fn escape(v: &str) -> String {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    }

    proptest! {
        /// What is written in either format parses back to the same samples.
        #[test]
        fn written_samples_parse_back(
            metric in name(),
            labels in proptest::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_]{0,8}", label_value(), 0..4),
            value in proptest::num::f64::NORMAL | proptest::num::f64::ZERO,
            ts in proptest::option::of(0i64..4_000_000_000_000),
        ) {
            let set: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
            let braces = if set.is_empty() { String::new() } else { format!("{{{}}}", set.join(",")) };
            let ts_text = ts.map(|t| format!(" {t}")).unwrap_or_default();
            let line = format!("{metric}{braces} {value:?}{ts_text}\n");
            let parsed = text(&line).unwrap();
            let s = &parsed[0].samples[0];
            prop_assert_eq!(&s.name, &metric);
            prop_assert_eq!(s.value, value);
            prop_assert_eq!(s.timestamp_ms, ts);
            let got: std::collections::BTreeMap<String, String> = s.labels.iter().cloned().collect();
            prop_assert_eq!(&got, &labels);

            let om_ts = ts.map(|t| format!(" {}.{:03}", t / 1000, t % 1000)).unwrap_or_default();
            let body = format!("{metric}{braces} {value:?}{om_ts}\n# EOF\n");
            let parsed = om(&body).unwrap();
            let s = &parsed[0].samples[0];
            prop_assert_eq!(s.value, value);
            prop_assert_eq!(s.timestamp_ms, ts);
        }

        /// Arbitrary input never panics; it parses or fails with a line number inside it.
        #[test]
        fn arbitrary_input_never_panics(body in "[ -~\n\t{}\"=,#é]{0,200}") {
            for format in [Format::Prometheus, Format::OpenMetrics] {
                if let Err(e) = parse(&body, format) {
                    prop_assert!(e.line >= 1 && e.line <= body.split('\n').count());
                }
            }
        }
    }
}
