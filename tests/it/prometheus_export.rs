//! The `prometheus` exporter and the `cumulativetodelta` processor in the real binary:
//! OTLP metrics in, `/metrics` checked by Debian's `promtool`, scraped by a real Prometheus
//! server and queried over its HTTP API; deltas out to an OTLP sink add up exactly.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use otelpipe::pipeline::Batch;
use prost::Message;

use crate::support::process::{free_port, run, Collector};
use crate::support::sink::Sink;

const CUMULATIVE: i32 = AggregationTemporality::Cumulative as i32;
const DELTA: i32 = AggregationTemporality::Delta as i32;

/// A binary from Debian's `prometheus` package; fails (never skips) when absent.
fn tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!("`{name}` not found: install Debian's `prometheus` package (scripts/test does)")
    })
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
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
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn counter(route: &str, start: u64, time: u64, value: i64) -> Metric {
    Metric {
        name: "kong.requests".into(),
        description: "Requests proxied".into(),
        data: Some(metric::Data::Sum(Sum {
            data_points: vec![NumberDataPoint {
                attributes: vec![kv("route", route)],
                start_time_unix_nano: start,
                time_unix_nano: time,
                value: Some(number_data_point::Value::AsInt(value)),
                ..Default::default()
            }],
            aggregation_temporality: CUMULATIVE,
            is_monotonic: true,
        })),
        ..Default::default()
    }
}

fn latency(start: u64, time: u64, count: u64, sum: f64, buckets: Vec<u64>) -> Metric {
    Metric {
        name: "http.server.request.duration".into(),
        unit: "s".into(),
        description: "Request duration".into(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                start_time_unix_nano: start,
                time_unix_nano: time,
                count,
                sum: Some(sum),
                bucket_counts: buckets,
                explicit_bounds: vec![0.1, 1.0],
                ..Default::default()
            }],
            aggregation_temporality: CUMULATIVE,
        })),
        ..Default::default()
    }
}

/// A small blocking HTTP client on its own runtime.
struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Http {
    fn new() -> Self {
        otelpipe::tls::install_crypto_provider();
        Self {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            client: reqwest::Client::new(),
        }
    }

    fn get(&self, url: &str) -> Result<(u16, String), reqwest::Error> {
        self.rt.block_on(async {
            let r = self.client.get(url).send().await?;
            let status = r.status().as_u16();
            Ok((status, r.text().await?))
        })
    }

    fn post_metrics(&self, port: u16, req: &ExportMetricsServiceRequest) {
        let status = self.rt.block_on(async {
            self.client
                .post(format!("http://127.0.0.1:{port}/v1/metrics"))
                .header("content-type", "application/x-protobuf")
                .body(req.encode_to_vec())
                .send()
                .await
                .unwrap()
                .status()
        });
        assert_eq!(status.as_u16(), 200);
    }

    /// Polls `url` until `ok(body)` (at most 60 s); returns the last body.
    fn wait_for(&self, url: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let last = match self.get(url) {
                Ok((200, body)) if ok(&body) => return body,
                Ok((status, body)) => format!("{status}: {body}"),
                Err(e) => e.to_string(),
            };
            assert!(
                Instant::now() < deadline,
                "{url} not as expected within 60s; last: {last}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A Prometheus server on an ephemeral port with its storage in a temp dir; killed on drop.
struct PrometheusServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl PrometheusServer {
    fn start(target: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: otelpipe
    honor_labels: true
    scrape_interval: 1s
    static_configs:
      - targets: ['127.0.0.1:{target}']
"
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new(tool("prometheus"))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn prometheus");
        Self {
            child,
            port,
            _dir: dir,
        }
    }

    /// Runs an instant query once the answer satisfies `ok` (polled, at most 60 s).
    fn query(
        &self,
        http: &Http,
        promql: &str,
        ok: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let url = format!(
            "http://127.0.0.1:{}/api/v1/query?query={}",
            self.port,
            promql
                .bytes()
                .map(|b| if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                })
                .collect::<String>()
        );
        let body = http.wait_for(&url, |body| {
            serde_json::from_str::<serde_json::Value>(body).is_ok_and(|v| ok(&v["data"]["result"]))
        });
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["data"]["result"].clone()
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        if self
            .child
            .kill()
            .and_then(|()| self.child.wait().map(drop))
            .is_err()
        {
            eprintln!("prometheus could not be stopped");
        }
    }
}

fn values(result: &serde_json::Value) -> Vec<String> {
    result
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| s["value"][1].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("collector.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The seed's metrics shape: OTLP → cumulativetodelta → prometheus. The exporter
/// re-accumulates the deltas; promtool finds nothing wrong; Prometheus (scraping
/// OpenMetrics) answers PromQL with the cumulative values sent.
#[test]
fn otlp_to_prometheus_exporter_checked_by_promtool_and_queried_in_prometheus() {
    let promtool = tool("promtool");
    let (otlp, exporter) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
processors:
  cumulativetodelta:
    include:
exporters:
  prometheus:
    endpoint: 127.0.0.1:{exporter}
    enable_open_metrics: true
    const_labels:
      cluster: eu-1
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    metrics:
      receivers: [otlp]
      processors: [cumulativetodelta]
      exporters: [prometheus]
"
        ),
    );
    let collector = Collector::start(&config, &[], otlp);
    let http = Http::new();
    // Started after the collector, so `initial_value: auto` keeps the first points.
    let start = now_ns();
    let s = 1_000_000_000;
    for (i, (a, b, hist)) in [
        (5, 1, (4, 1.2, vec![1, 2, 1])),
        (12, 1, (7, 2.0, vec![2, 3, 2])),
        (20, 3, (10, 3.5, vec![3, 4, 3])),
    ]
    .into_iter()
    .enumerate()
    {
        let time = start + (i as u64 + 1) * s;
        http.post_metrics(
            otlp,
            &request(vec![
                counter("/a", start, time, a),
                counter("/b", start, time, b),
                latency(start, time, hist.0, hist.1, hist.2),
            ]),
        );
    }
    let url = format!("http://127.0.0.1:{exporter}/metrics");
    let text = http.wait_for(&url, |body| body.contains("kong_requests_total{cluster=\"eu-1\",instance=\"10.0.0.7:8100\",job=\"kong\",route=\"/a\"} 20\n"));
    assert!(text.contains("http_server_request_duration_seconds_bucket{cluster=\"eu-1\",instance=\"10.0.0.7:8100\",job=\"kong\",le=\"+Inf\"} 10\n"), "{text}");
    assert!(
        text.contains(
            "target_info{instance=\"10.0.0.7:8100\",job=\"kong\",k8s_pod_name=\"kong-kong-1\"} 1\n"
        ),
        "{text}"
    );

    // promtool reads the text format from stdin; no output and exit 0 = no problem.
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let prom = PrometheusServer::start(exporter);
    let result = prom.query(&http, "kong_requests_total{route=\"/a\"}", |r| {
        !values(r).is_empty()
    });
    assert_eq!(values(&result), vec!["20"]);
    assert_eq!(result[0]["metric"]["job"], "kong");
    assert_eq!(result[0]["metric"]["cluster"], "eu-1");
    let result = prom.query(&http, "sum(kong_requests_total)", |r| !values(r).is_empty());
    assert_eq!(values(&result), vec!["23"]);
    // Scraped as OpenMetrics, where bounds are floats (`le="1.0"`), as the Go client writes them.
    let result = prom.query(
        &http,
        "http_server_request_duration_seconds_bucket{le=\"1.0\"}",
        |r| !values(r).is_empty(),
    );
    assert_eq!(values(&result), vec!["7"]);
    let result = prom.query(&http, "http_server_request_duration_seconds_sum", |r| {
        !values(r).is_empty()
    });
    assert_eq!(values(&result), vec!["3.5"]);
    let result = prom.query(&http, "target_info", |r| !values(r).is_empty());
    assert_eq!(result[0]["metric"]["k8s_pod_name"], "kong-kong-1");
    // The scrape itself succeeded (OpenMetrics parsed by Prometheus).
    let result = prom.query(&http, "up{job=\"otelpipe\"}", |r| !values(r).is_empty());
    assert_eq!(values(&result), vec!["1"]);
    drop(prom);

    let (status, _) = http
        .get(&format!("http://127.0.0.1:{exporter}/nothing"))
        .unwrap();
    assert_eq!(status, 404);
    let (code, _, _) = collector.terminate();
    assert_eq!(code, Some(0));
}

/// Sums of (start, time, value) int points of `kong.requests` with delta temporality.
fn delta_points(batches: &[Batch]) -> Vec<(u64, u64, i64)> {
    let mut out = Vec::new();
    for b in batches {
        let Batch::Metrics(rm) = b else { continue };
        for m in rm
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
        {
            if let Some(metric::Data::Sum(s)) = &m.data {
                assert_eq!(s.aggregation_temporality, DELTA, "{m:?}");
                for p in &s.data_points {
                    if let Some(number_data_point::Value::AsInt(v)) = p.value {
                        out.push((p.start_time_unix_nano, p.time_unix_nano, v));
                    }
                }
            }
        }
    }
    out
}

/// Cumulative counters in, deltas out to an OTLP sink: per counter life, the deltas add up
/// to the last cumulative value exactly; a restart (new start time) begins a new series;
/// a drop without restart is a reset (point dropped, baseline moved).
#[test]
fn cumulativetodelta_round_trip_adds_up_across_resets() {
    let sink = Sink::http();
    let otlp = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
processors:
  cumulativetodelta:
exporters:
  otlphttp:
    endpoint: http://{}
    sending_queue:
      enabled: false
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    metrics:
      receivers: [otlp]
      processors: [cumulativetodelta]
      exporters: [otlphttp]
",
            sink.addr
        ),
    );
    let collector = Collector::start(&config, &[], otlp);
    let http = Http::new();
    let s = 1_000_000_000;
    // Life 1 starts after the collector: the first point is kept (auto).
    let life1 = now_ns();
    let life1_values = [3, 10, 10, 25];
    // Life 2: the process restarted, new start time.
    let life2 = life1 + 10 * s;
    let life2_values = [4, 9, 30];
    let mut sent = 0;
    for (i, v) in life1_values.iter().enumerate() {
        http.post_metrics(
            otlp,
            &request(vec![counter("/a", life1, life1 + (i as u64 + 1) * s, *v)]),
        );
        sent += 1;
    }
    for (i, v) in life2_values.iter().enumerate() {
        http.post_metrics(
            otlp,
            &request(vec![counter("/a", life2, life2 + (i as u64 + 1) * s, *v)]),
        );
        sent += 1;
    }
    // Same start time, lower value: a reset without restart. Dropped; the next point's
    // delta is taken from the new baseline (7 → 12 = 5).
    http.post_metrics(otlp, &request(vec![counter("/a", life2, life2 + 4 * s, 7)]));
    http.post_metrics(
        otlp,
        &request(vec![counter("/a", life2, life2 + 5 * s, 12)]),
    );
    sent += 1;
    assert_eq!(sink.wait_for_items(sent), sent);
    let (code, _, _) = collector.terminate();
    assert_eq!(code, Some(0));

    let points = delta_points(
        &sink
            .received()
            .into_iter()
            .map(|r| r.batch)
            .collect::<Vec<_>>(),
    );
    assert_eq!(points.len(), sent, "{points:?}");
    let life1_sum: i64 = points
        .iter()
        .filter(|p| p.1 <= life1 + 4 * s)
        .map(|p| p.2)
        .sum();
    assert_eq!(life1_sum, 25, "{points:?}");
    let life2_sum: i64 = points
        .iter()
        .filter(|p| p.1 > life2 && p.1 <= life2 + 3 * s)
        .map(|p| p.2)
        .sum();
    assert_eq!(life2_sum, 30, "{points:?}");
    // Each delta starts where the previous point ended (the first at its life's start).
    assert_eq!(points[0], (life1, life1 + s, 3));
    assert_eq!(points[1], (life1 + s, life1 + 2 * s, 7));
    assert_eq!(points[2], (life1 + 2 * s, life1 + 3 * s, 0));
    assert_eq!(points[4], (life2, life2 + s, 4));
    assert_eq!(*points.last().unwrap(), (life2 + 4 * s, life2 + 5 * s, 5));
}

/// The exporter's endpoint takes part in the port-clash check.
#[test]
fn prometheus_exporter_port_clash_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "receivers:
  otlp:
    protocols:
      http:
        endpoint: 0.0.0.0:8889
exporters:
  prometheus:
    endpoint: 0.0.0.0:8889
service:
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [prometheus]
",
    );
    let out = run(&["validate", "--config", config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("port 8889 is claimed by more than one component: receivers::otlp, exporters::prometheus"),
        "{stderr}"
    );
}
