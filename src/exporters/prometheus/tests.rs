use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, summary_data_point, AggregationTemporality, ExponentialHistogram,
    ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use tokio::sync::watch;

use super::accumulate::{Kind, Value};
use super::naming::{label_name, metric_name, Shape};
use super::*;

const CUMULATIVE: i32 = AggregationTemporality::Cumulative as i32;
const DELTA: i32 = AggregationTemporality::Delta as i32;

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn point(start: u64, time: u64, value: i64, attrs: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        start_time_unix_nano: start,
        time_unix_nano: time,
        value: Some(number_data_point::Value::AsInt(value)),
        ..Default::default()
    }
}

fn sum(name: &str, temporality: i32, monotonic: bool, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        description: format!("{name} help"),
        data: Some(metric::Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: temporality,
            is_monotonic: monotonic,
        })),
        ..Default::default()
    }
}

fn gauge(name: &str, unit: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        description: "a gauge".into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: points,
        })),
        ..Default::default()
    }
}

fn histogram(temporality: i32, points: Vec<HistogramDataPoint>) -> Metric {
    Metric {
        name: "http.server.request.duration".into(),
        unit: "s".into(),
        description: "Request duration".into(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points: points,
            aggregation_temporality: temporality,
        })),
        ..Default::default()
    }
}

fn hist_point(
    start: u64,
    time: u64,
    count: u64,
    sum: f64,
    buckets: Vec<u64>,
) -> HistogramDataPoint {
    HistogramDataPoint {
        start_time_unix_nano: start,
        time_unix_nano: time,
        count,
        sum: Some(sum),
        bucket_counts: buckets,
        explicit_bounds: vec![0.1, 1.0],
        ..Default::default()
    }
}

fn resources(resource: Vec<KeyValue>, metrics: Vec<Metric>) -> Vec<ResourceMetrics> {
    vec![ResourceMetrics {
        resource: Some(Resource {
            attributes: resource,
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
    }]
}

fn service() -> Vec<KeyValue> {
    vec![
        kv("service.name", "kong"),
        kv("service.instance.id", "10.0.0.7:8100"),
        kv("k8s.pod.name", "kong-kong-1"),
    ]
}

fn accumulator() -> Accumulator {
    Accumulator::new(
        Naming {
            suffixes: true,
            ..Naming::default()
        },
        Duration::from_secs(300),
    )
}

fn text(acc: &mut Accumulator) -> String {
    render::render(&acc.snapshot(Instant::now()), render::Options::default()).body
}

fn value_of(acc: &mut Accumulator, name: &str) -> Vec<Value> {
    let mut series = acc.snapshot(Instant::now());
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    series
        .iter()
        .filter(|s| s.name == name)
        .map(|s| s.value.clone())
        .collect()
}

#[test]
fn metric_names_follow_the_normalisation_rules() {
    let n = |name, unit, shape| metric_name(name, unit, shape, "", true);
    assert_eq!(
        n("traces.span.metrics.calls", "", Shape::Counter),
        "traces_span_metrics_calls_total"
    );
    assert_eq!(
        n("traces.span.metrics.duration", "ms", Shape::Other),
        "traces_span_metrics_duration_milliseconds"
    );
    assert_eq!(
        n("http.server.request.duration", "s", Shape::Other),
        "http_server_request_duration_seconds"
    );
    assert_eq!(
        n("kong_http_requests_total", "", Shape::Counter),
        "kong_http_requests_total"
    );
    assert_eq!(n("total.requests", "", Shape::Counter), "requests_total");
    assert_eq!(
        n("kong_kong_latency_ms", "", Shape::Other),
        "kong_kong_latency_ms"
    );
    assert_eq!(
        n("cpu.utilization", "1", Shape::Gauge),
        "cpu_utilization_ratio"
    );
    assert_eq!(n("items", "1", Shape::Counter), "items_total");
    assert_eq!(n("net.io", "By/s", Shape::Gauge), "net_io_bytes_per_second");
    assert_eq!(n("queue.size", "{items}", Shape::Gauge), "queue_size");
    assert_eq!(n("disk.used", "%", Shape::Gauge), "disk_used_percent");
    assert_eq!(n("latency_seconds", "s", Shape::Other), "latency_seconds");
    assert_eq!(n("2xx.responses", "", Shape::Gauge), "_2xx_responses");
    assert_eq!(
        metric_name("a.b", "s", Shape::Counter, "kong", true),
        "kong_a_b_seconds_total"
    );
    assert_eq!(
        metric_name("a.b-c:d", "s", Shape::Counter, "ns", false),
        "ns_a_b_c:d"
    );
    assert_eq!(
        metric_name("9lives", "", Shape::Counter, "", false),
        "_9lives"
    );
}

#[test]
fn label_names_are_normalised() {
    assert_eq!(label_name("http.route"), "http_route");
    assert_eq!(label_name("_a"), "key_a");
    assert_eq!(label_name("__a"), "__a");
    assert_eq!(label_name("0zone"), "key_0zone");
    assert_eq!(label_name("ok_name"), "ok_name");
}

#[test]
fn config_rules() {
    let err = FACTORY.validate(&yaml_serde::Value::Null).unwrap_err();
    assert_eq!(
        err.to_string(),
        "expecting a non-blank address to run the Prometheus metrics handler"
    );
    FACTORY
        .validate(&yaml_serde::from_str("endpoint: 0.0.0.0:8889").unwrap())
        .unwrap();
    let err = FACTORY
        .validate(&yaml_serde::from_str("endpoint: x:1\ntls: {cert_file: a}").unwrap())
        .unwrap_err();
    assert_eq!(err.path, vec!["tls"]);
    let err = FACTORY
        .validate(&yaml_serde::from_str("endpoint: x:1\nconst_labels: {\"a-b\": c}").unwrap())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "const_labels::a-b: \"a-b\" is not a valid label name"
    );
    let err = FACTORY
        .validate(&yaml_serde::from_str("endpoint: x:1\nsend_timestamp: true").unwrap())
        .unwrap_err();
    assert_eq!(err.path, vec!["send_timestamp"]);
    assert_eq!(
        FACTORY.endpoints(&yaml_serde::from_str("endpoint: 0.0.0.0:8889").unwrap()),
        vec!["0.0.0.0:8889".to_owned()]
    );
    let c = decode::<Config>(&yaml_serde::from_str("endpoint: x:1").unwrap()).unwrap();
    assert_eq!(c.metric_expiration, Duration::from_secs(300));
    assert!(c.add_metric_suffixes);
}

#[test]
fn contiguous_deltas_accumulate_and_gaps_restart() {
    let mut acc = accumulator();
    let counter = |start, time, v| {
        resources(
            service(),
            vec![sum(
                "requests",
                DELTA,
                true,
                vec![point(start, time, v, vec![])],
            )],
        )
    };
    acc.accumulate(&counter(100, 200, 5), Instant::now());
    acc.accumulate(&counter(200, 300, 7), Instant::now());
    assert_eq!(
        value_of(&mut acc, "requests_total"),
        vec![Value::Number(accumulate::Number::Int(12))]
    );
    let series = acc.snapshot(Instant::now());
    assert_eq!((series[0].start, series[0].time), (100, 300));
    // Not contiguous: treated as a reset, the delta replaces the stored value.
    acc.accumulate(&counter(350, 400, 2), Instant::now());
    assert_eq!(
        value_of(&mut acc, "requests_total"),
        vec![Value::Number(accumulate::Number::Int(2))]
    );
    // Older than the stored point: ignored.
    acc.accumulate(&counter(100, 150, 1000), Instant::now());
    assert_eq!(
        value_of(&mut acc, "requests_total"),
        vec![Value::Number(accumulate::Number::Int(2))]
    );
}

#[test]
fn unsupported_sums_and_exponential_histograms_are_dropped() {
    let mut acc = accumulator();
    let expo = Metric {
        name: "expo".into(),
        data: Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![ExponentialHistogramDataPoint::default()],
            aggregation_temporality: CUMULATIVE,
        })),
        ..Default::default()
    };
    let outcome = acc.accumulate(
        &resources(
            service(),
            vec![
                sum("updown", DELTA, false, vec![point(1, 2, 5, vec![])]),
                sum("unspecified", 0, true, vec![point(1, 2, 5, vec![])]),
                expo,
            ],
        ),
        Instant::now(),
    );
    assert_eq!(outcome.accepted, 0);
    assert_eq!(outcome.dropped, 2);
    assert_eq!(outcome.exponential, 1);
    assert!(acc.is_empty());
}

#[test]
fn gauges_keep_the_newest_and_stale_markers_delete() {
    let mut acc = accumulator();
    acc.accumulate(
        &resources(
            service(),
            vec![gauge("temp", "Cel", vec![point(0, 200, 20, vec![])])],
        ),
        Instant::now(),
    );
    acc.accumulate(
        &resources(
            service(),
            vec![gauge("temp", "Cel", vec![point(0, 100, 99, vec![])])],
        ),
        Instant::now(),
    );
    assert_eq!(
        value_of(&mut acc, "temp_celsius"),
        vec![Value::Number(accumulate::Number::Int(20))]
    );
    let stale = NumberDataPoint {
        flags: 1,
        ..point(0, 300, 0, vec![])
    };
    acc.accumulate(
        &resources(service(), vec![gauge("temp", "Cel", vec![stale])]),
        Instant::now(),
    );
    assert!(acc.is_empty());
}

#[test]
fn delta_histograms_merge_when_contiguous() {
    let mut acc = accumulator();
    let h = |start, time, count, s, buckets| {
        resources(
            service(),
            vec![histogram(
                DELTA,
                vec![hist_point(start, time, count, s, buckets)],
            )],
        )
    };
    acc.accumulate(&h(100, 200, 3, 1.5, vec![1, 1, 1]), Instant::now());
    acc.accumulate(&h(200, 300, 2, 0.5, vec![2, 0, 0]), Instant::now());
    let name = "http_server_request_duration_seconds";
    assert_eq!(
        value_of(&mut acc, name),
        vec![Value::Histogram {
            count: 5,
            sum: 2.0,
            bounds: vec![0.1, 1.0],
            buckets: vec![3, 1, 1]
        }]
    );
    // Starts before the stored end: misaligned, dropped.
    let outcome = acc.accumulate(&h(250, 400, 9, 9.0, vec![9, 0, 0]), Instant::now());
    assert_eq!(outcome.dropped, 1);
    // Starts after it: a reset.
    acc.accumulate(&h(500, 600, 1, 0.05, vec![1, 0, 0]), Instant::now());
    assert_eq!(
        value_of(&mut acc, name),
        vec![Value::Histogram {
            count: 1,
            sum: 0.05,
            bounds: vec![0.1, 1.0],
            buckets: vec![1, 0, 0]
        }]
    );
}

#[test]
fn series_expire_after_metric_expiration() {
    let mut acc = Accumulator::new(Naming::default(), Duration::from_secs(60));
    let t0 = Instant::now();
    acc.accumulate(
        &resources(
            service(),
            vec![gauge("a", "", vec![point(0, 1, 1, vec![])])],
        ),
        t0,
    );
    acc.accumulate(
        &resources(
            service(),
            vec![gauge("b", "", vec![point(0, 1, 1, vec![])])],
        ),
        t0 + Duration::from_secs(30),
    );
    let live = acc.snapshot(t0 + Duration::from_secs(61));
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].name, "b");
}

#[test]
fn label_collisions_drop_the_series() {
    let mut acc = accumulator();
    let outcome = acc.accumulate(
        &resources(
            service(),
            vec![gauge(
                "g",
                "",
                vec![point(0, 1, 1, vec![kv("a.b", "1"), kv("a_b", "2")])],
            )],
        ),
        Instant::now(),
    );
    assert_eq!((outcome.collisions, outcome.accepted), (1, 0));
    assert!(acc.is_empty());
}

#[test]
fn renders_the_text_format_with_target_info() {
    let mut acc = Accumulator::new(
        Naming {
            suffixes: true,
            const_labels: vec![("cluster".into(), "eu-1".into())],
            ..Naming::default()
        },
        Duration::from_secs(300),
    );
    acc.accumulate(
        &resources(
            service(),
            vec![
                sum(
                    "kong.requests",
                    CUMULATIVE,
                    true,
                    vec![point(
                        100,
                        200,
                        1_500_000,
                        vec![kv("code", "200"), kv("route", "a\"b")],
                    )],
                ),
                histogram(
                    CUMULATIVE,
                    vec![hist_point(100, 200, 4, 2.25, vec![1, 2, 1])],
                ),
                gauge(
                    "ratio",
                    "1",
                    vec![NumberDataPoint {
                        value: Some(number_data_point::Value::AsDouble(0.000_012_5)),
                        time_unix_nano: 200,
                        ..Default::default()
                    }],
                ),
            ],
        ),
        Instant::now(),
    );
    let expected = "\
# HELP http_server_request_duration_seconds Request duration
# TYPE http_server_request_duration_seconds histogram
http_server_request_duration_seconds_bucket{cluster=\"eu-1\",instance=\"10.0.0.7:8100\",job=\"kong\",le=\"0.1\"} 1
http_server_request_duration_seconds_bucket{cluster=\"eu-1\",instance=\"10.0.0.7:8100\",job=\"kong\",le=\"1\"} 3
http_server_request_duration_seconds_bucket{cluster=\"eu-1\",instance=\"10.0.0.7:8100\",job=\"kong\",le=\"+Inf\"} 4
http_server_request_duration_seconds_sum{cluster=\"eu-1\",instance=\"10.0.0.7:8100\",job=\"kong\"} 2.25
http_server_request_duration_seconds_count{cluster=\"eu-1\",instance=\"10.0.0.7:8100\",job=\"kong\"} 4
# HELP kong_requests_total kong.requests help
# TYPE kong_requests_total counter
kong_requests_total{cluster=\"eu-1\",code=\"200\",instance=\"10.0.0.7:8100\",job=\"kong\",route=\"a\\\"b\"} 1.5e+06
# HELP ratio a gauge
# TYPE ratio gauge
ratio{cluster=\"eu-1\",instance=\"10.0.0.7:8100\",job=\"kong\"} 1.25e-05
# HELP target_info Target metadata
# TYPE target_info gauge
target_info{instance=\"10.0.0.7:8100\",job=\"kong\",k8s_pod_name=\"kong-kong-1\"} 1
";
    assert_eq!(text(&mut acc), expected);
}

#[test]
fn no_target_info_without_an_instance_id() {
    let mut acc = accumulator();
    acc.accumulate(
        &resources(
            vec![kv("service.name", "api"), kv("service.namespace", "shop")],
            vec![gauge("g", "", vec![point(0, 1, 1, vec![])])],
        ),
        Instant::now(),
    );
    assert_eq!(
        text(&mut acc),
        "# HELP g a gauge\n# TYPE g gauge\ng{job=\"shop/api\"} 1\n"
    );
}

#[test]
fn renders_openmetrics_with_created_and_timestamps() {
    let mut acc = accumulator();
    acc.accumulate(
        &resources(
            vec![],
            vec![
                sum(
                    "requests",
                    CUMULATIVE,
                    true,
                    vec![point(1_500_000_000, 2_000_000_000, 3, vec![])],
                ),
                Metric {
                    name: "rpc".into(),
                    description: "RPC \"latency\"".into(),
                    data: Some(metric::Data::Summary(Summary {
                        data_points: vec![SummaryDataPoint {
                            time_unix_nano: 2_000_000_000,
                            count: 2,
                            sum: 3.0,
                            quantile_values: vec![summary_data_point::ValueAtQuantile {
                                quantile: 0.5,
                                value: 1.0,
                            }],
                            ..Default::default()
                        }],
                    })),
                    ..Default::default()
                },
            ],
        ),
        Instant::now(),
    );
    let body = render::render(
        &acc.snapshot(Instant::now()),
        render::Options {
            open_metrics: true,
            send_timestamps: true,
            namespace: "",
        },
    )
    .body;
    assert_eq!(
        body,
        "\
# HELP requests requests help
# TYPE requests counter
requests_total 3.0 2.0
requests_created 1.5 2.0
# HELP rpc RPC \\\"latency\\\"
# TYPE rpc summary
rpc{quantile=\"0.5\"} 1.0 2.0
rpc_sum 3.0 2.0
rpc_count 2 2.0
# EOF
"
    );
    let text = render::render(
        &acc.snapshot(Instant::now()),
        render::Options {
            open_metrics: false,
            send_timestamps: true,
            namespace: "",
        },
    )
    .body;
    assert!(text.contains("requests_total 3 2000\n"), "{text}");
    assert!(!text.contains("_created"), "{text}");
}

#[test]
fn type_conflicts_keep_the_first_type() {
    let mut acc = Accumulator::new(Naming::default(), Duration::from_secs(300));
    acc.accumulate(
        &resources(vec![], vec![gauge("x", "", vec![point(0, 1, 1, vec![])])]),
        Instant::now(),
    );
    acc.accumulate(
        &resources(
            vec![],
            vec![sum("x", CUMULATIVE, true, vec![point(0, 1, 2, vec![])])],
        ),
        Instant::now(),
    );
    let r = render::render(&acc.snapshot(Instant::now()), render::Options::default());
    assert_eq!(r.type_conflicts, 1);
    assert_eq!(r.body, "# HELP x a gauge\n# TYPE x gauge\nx 1\n");
}

#[test]
fn cumulative_buckets_sort_and_deduplicate_bounds() {
    assert_eq!(
        render::cumulative_buckets(&[5.0, 1.0, 5.0], &[2, 1, 7, 3]),
        vec![(1.0, 1), (5.0, 3)]
    );
    assert_eq!(
        render::cumulative_buckets(&[1.0, 2.0], &[4]),
        vec![(1.0, 4), (2.0, 4)]
    );
}

#[test]
fn floats_are_written_as_the_go_client_does() {
    let f = |v, om| {
        let mut s = String::new();
        render::write_value(&mut s, v, om);
        s
    };
    assert_eq!(f(1.0, false), "1");
    assert_eq!(f(123_456.0, false), "123456");
    assert_eq!(f(1_234_567.0, false), "1.234567e+06");
    assert_eq!(f(0.0001, false), "0.0001");
    assert_eq!(f(0.000_01, false), "1e-05");
    assert_eq!(f(f64::INFINITY, false), "+Inf");
    assert_eq!(f(f64::NAN, false), "NaN");
    assert_eq!(f(2.0, true), "2.0");
    assert_eq!(f(1e6, true), "1e+06");
}

async fn http(addr: std::net::SocketAddr, request: &str) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text[9..12].parse().unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (status, head.to_lowercase(), body.to_owned())
}

#[tokio::test]
async fn serves_metrics_and_answers_other_paths_404() {
    let config = decode::<Config>(&yaml_serde::from_str("endpoint: 127.0.0.1:0\nenable_open_metrics: true\nresponse_headers: {x-served-by: otelpipe}").unwrap()).unwrap();
    let exporter = Arc::new(Prometheus::new(config, "prometheus").unwrap());
    let (_tx, ready) = watch::channel(true);
    exporter
        .start(&Host {
            ready,
            shutdown: CancellationToken::new(),
            extensions: Default::default(),
        })
        .await
        .unwrap();
    let addr = exporter.local_addr().unwrap();
    exporter
        .consume(
            Batch::Metrics(resources(
                service(),
                vec![sum(
                    "requests",
                    CUMULATIVE,
                    true,
                    vec![point(1, 2, 3, vec![])],
                )],
            )),
            &ClientInfo::default(),
        )
        .await
        .unwrap();

    let (status, head, body) = http(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        head.contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    assert!(head.contains("x-served-by: otelpipe"), "{head}");
    assert!(
        body.contains("requests_total{instance=\"10.0.0.7:8100\",job=\"kong\"} 3\n"),
        "{body}"
    );

    let (status, head, body) = http(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\nConnection: close\r\n\r\n").await;
    assert_eq!(status, 200);
    assert!(
        head.contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");

    let (status, _, body) = http(
        addr,
        "GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!((status, body.as_str()), (404, "404 page not found\n"));

    let (status, _, _) = http(addr, "GARBAGE\r\n\r\n").await;
    assert_eq!(status, 400);

    exporter.shutdown().await.unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn gzip_when_accepted() {
    let config = decode::<Config>(&yaml_serde::from_str("endpoint: 127.0.0.1:0").unwrap()).unwrap();
    let exporter = Prometheus::new(config, "prometheus").unwrap();
    exporter
        .consume(
            Batch::Metrics(resources(
                service(),
                vec![sum(
                    "requests",
                    CUMULATIVE,
                    true,
                    vec![point(1, 2, 3, vec![])],
                )],
            )),
            &ClientInfo::default(),
        )
        .await
        .unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(
        header::ACCEPT_ENCODING,
        HeaderValue::from_static("gzip, deflate"),
    );
    let response = exporter.scrape(&headers);
    assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text)
        .unwrap();
    assert!(text.contains("requests_total"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_scrapes_see_consistent_snapshots_while_data_arrives() {
    let config = decode::<Config>(&yaml_serde::from_str("endpoint: 127.0.0.1:0").unwrap()).unwrap();
    let exporter = Arc::new(Prometheus::new(config, "prometheus").unwrap());
    let writer = {
        let exporter = exporter.clone();
        tokio::spawn(async move {
            for i in 0..200u64 {
                let points = (0..50)
                    .map(|j| point(1, 2 + i, i as i64, vec![kv("j", &j.to_string())]))
                    .collect();
                exporter
                    .consume(
                        Batch::Metrics(resources(
                            service(),
                            vec![sum("requests", CUMULATIVE, true, points)],
                        )),
                        &ClientInfo::default(),
                    )
                    .await
                    .unwrap();
            }
        })
    };
    let scrapers: Vec<_> = (0..4)
        .map(|_| {
            let exporter = exporter.clone();
            tokio::spawn(async move {
                for _ in 0..50 {
                    let response = exporter.scrape(&HeaderMap::new());
                    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                        .await
                        .unwrap();
                    let text = String::from_utf8(bytes.to_vec()).unwrap();
                    // Every rendered family is whole: one TYPE line per family name.
                    assert!(
                        text.matches("# TYPE requests_total counter").count() <= 1,
                        "{text}"
                    );
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    writer.await.unwrap();
    for s in scrapers {
        s.await.unwrap();
    }
    let response = exporter.scrape(&HeaderMap::new());
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert_eq!(text.matches("requests_total{").count(), 50);
    assert!(
        text.contains("requests_total{instance=\"10.0.0.7:8100\",j=\"7\",job=\"kong\"} 199\n"),
        "{text}"
    );
}

#[test]
fn series_kinds_follow_otel_types() {
    let mut acc = accumulator();
    acc.accumulate(
        &resources(
            vec![],
            vec![sum(
                "updown",
                CUMULATIVE,
                false,
                vec![point(0, 1, -3, vec![])],
            )],
        ),
        Instant::now(),
    );
    let s = acc.snapshot(Instant::now());
    assert_eq!((s[0].name.as_str(), s[0].kind), ("updown", Kind::Gauge));
}

#[test]
fn series_count_is_bounded_and_expired_series_make_room() {
    let mut acc = Accumulator::with_limit(Naming::default(), Duration::from_secs(60), 2);
    let t0 = Instant::now();
    let g = |name: &str| resources(vec![], vec![gauge(name, "", vec![point(0, 1, 1, vec![])])]);
    acc.accumulate(&g("a"), t0);
    acc.accumulate(&g("b"), t0 + Duration::from_secs(30));
    let outcome = acc.accumulate(&g("c"), t0 + Duration::from_secs(40));
    assert_eq!((outcome.accepted, outcome.dropped), (0, 1));
    // `a` has expired by now, so `c` takes its place.
    let outcome = acc.accumulate(&g("c"), t0 + Duration::from_secs(61));
    assert_eq!(outcome.accepted, 1);
    let mut names: Vec<String> = acc
        .snapshot(t0 + Duration::from_secs(61))
        .iter()
        .map(|s| s.name.clone())
        .collect();
    names.sort();
    assert_eq!(names, vec!["b", "c"]);
}
