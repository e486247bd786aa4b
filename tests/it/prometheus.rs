//! The `prometheus` receiver end to end: a real node_exporter (Debian's
//! `prometheus-node-exporter`) on an ephemeral port, scraped by the otelpipe binary,
//! exported with `otlphttp` to a sink.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric, Metric, ResourceMetrics};
use otelpipe::pipeline::Batch;

use crate::support::process::{free_port, Collector};
use crate::support::sink::Sink;

/// A node_exporter child process, killed on drop.
struct NodeExporter {
    child: Option<Child>,
    port: u16,
}

impl NodeExporter {
    /// Starts node_exporter with only the textfile collector (reading `dir`) and waits for
    /// it to listen.
    fn start(dir: &Path) -> Self {
        let port = free_port();
        let child = Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--collector.disable-defaults")
            .arg("--collector.textfile")
            .arg(format!("--collector.textfile.directory={}", dir.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-node-exporter is installed (scripts/test installs it)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "node_exporter did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child: Some(child),
            port,
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill node_exporter");
            child.wait().expect("wait node_exporter");
        }
    }
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        self.stop();
    }
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        })
}

fn scrapes(sink: &Sink) -> Vec<ResourceMetrics> {
    sink.received()
        .into_iter()
        .filter(|r| r.status == 200)
        .flat_map(|r| match r.batch {
            Batch::Metrics(rm) => rm,
            _ => Vec::new(),
        })
        .collect()
}

fn metric<'a>(rm: &'a ResourceMetrics, name: &str) -> Option<&'a Metric> {
    rm.scope_metrics
        .iter()
        .flat_map(|s| &s.metrics)
        .find(|m| m.name == name)
}

fn gauge_value(rm: &ResourceMetrics, name: &str) -> Option<f64> {
    match metric(rm, name)?.data.as_ref()? {
        metric::Data::Gauge(g) => match g.data_points.first()?.value? {
            opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsDouble(d) => {
                Some(d)
            }
            opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(i) => {
                Some(i as f64)
            }
        },
        _ => None,
    }
}

/// Waits (at most 30 s) until `check` holds for the scrapes received so far.
fn wait_until(
    sink: &Sink,
    what: &str,
    check: impl Fn(&[ResourceMetrics]) -> bool,
) -> Vec<ResourceMetrics> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = scrapes(sink);
        if check(&got) {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; got {} scrapes",
            got.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

const TEXTFILE: &str = "# HELP test_requests_total Requests.
# TYPE test_requests_total counter
test_requests_total{route=\"a\"} 5
# TYPE test_latency_seconds histogram
test_latency_seconds_bucket{le=\"0.1\"} 1
test_latency_seconds_bucket{le=\"1\"} 3
test_latency_seconds_bucket{le=\"+Inf\"} 4
test_latency_seconds_sum 2.5
test_latency_seconds_count 4
";

#[test]
fn scrapes_node_exporter_through_the_binary_to_otlphttp() {
    let textfiles = tempfile::tempdir().unwrap();
    std::fs::write(textfiles.path().join("test.prom"), TEXTFILE).unwrap();
    let mut exporter = NodeExporter::start(textfiles.path());
    let sink = Sink::http();
    let metrics_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("collector.yaml");
    std::fs::write(
        &config,
        format!(
            "receivers:
  prometheus:
    config:
      scrape_configs:
        - job_name: node
          scrape_interval: 1s
          static_configs:
            - targets: ['127.0.0.1:{port}']
              labels:
                env: test
          metric_relabel_configs:
            - source_labels: [__name__]
              regex: 'go_.*'
              action: drop
exporters:
  otlphttp:
    endpoint: http://{sink}
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics_port}
  pipelines:
    metrics:
      receivers: [prometheus]
      exporters: [otlphttp]
",
            port = exporter.port,
            sink = sink.addr,
        ),
    )
    .unwrap();
    let collector = Collector::start(&config, &[], metrics_port);

    let got = wait_until(&sink, "two successful scrapes", |s| {
        s.iter()
            .filter(|rm| gauge_value(rm, "up") == Some(1.0))
            .count()
            >= 2
    });
    let first = got
        .iter()
        .find(|rm| gauge_value(rm, "up") == Some(1.0))
        .unwrap();
    let resource = first.resource.as_ref().unwrap();
    let instance = format!("127.0.0.1:{}", exporter.port);
    assert_eq!(attr(&resource.attributes, "service.name"), Some("node"));
    assert_eq!(
        attr(&resource.attributes, "service.instance.id"),
        Some(instance.as_str())
    );
    let port = exporter.port.to_string();
    assert_eq!(
        attr(&resource.attributes, "server.port"),
        Some(port.as_str())
    );
    assert_eq!(attr(&resource.attributes, "url.scheme"), Some("http"));
    // A loopback host is not reported as server.address.
    assert_eq!(attr(&resource.attributes, "server.address"), None);
    let scope = first.scope_metrics[0].scope.as_ref().unwrap();
    assert_eq!(
        scope.name,
        "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/prometheusreceiver"
    );

    // node_exporter's own build info, with the target label and without job/instance.
    let build = metric(first, "node_exporter_build_info").expect("build info");
    let Some(metric::Data::Gauge(g)) = &build.data else {
        panic!("build info is a gauge: {build:?}")
    };
    let point = &g.data_points[0];
    assert!(attr(&point.attributes, "version").is_some(), "{point:?}");
    assert_eq!(attr(&point.attributes, "env"), Some("test"));
    assert_eq!(attr(&point.attributes, "job"), None);
    assert_eq!(attr(&point.attributes, "instance"), None);

    // metric_relabel_configs dropped go_*; scrape_* report it.
    assert!(metric(first, "go_goroutines").is_none());
    let scraped = gauge_value(first, "scrape_samples_scraped").unwrap();
    let kept = gauge_value(first, "scrape_samples_post_metric_relabeling").unwrap();
    assert!(kept > 0.0 && kept < scraped, "{kept} of {scraped}");
    assert!(gauge_value(first, "scrape_duration_seconds").unwrap() > 0.0);
    assert!(gauge_value(first, "scrape_series_added").unwrap() > 0.0);
    assert_eq!(metric(first, "scrape_duration_seconds").unwrap().unit, "s");

    // The textfile counter: a cumulative monotonic double sum; its first point starts at its
    // own timestamp, the next keeps that start.
    let sums: Vec<(u64, u64, f64)> = got
        .iter()
        .filter_map(|rm| metric(rm, "test_requests_total"))
        .map(|m| {
            let Some(metric::Data::Sum(s)) = &m.data else {
                panic!("counter is a sum: {m:?}")
            };
            assert!(s.is_monotonic);
            assert_eq!(s.aggregation_temporality, 2);
            let p = &s.data_points[0];
            assert_eq!(attr(&p.attributes, "route"), Some("a"));
            let Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsDouble(
                v,
            )) = p.value
            else {
                panic!("double value: {p:?}")
            };
            (p.start_time_unix_nano, p.time_unix_nano, v)
        })
        .collect();
    assert!(sums.len() >= 2, "{sums:?}");
    assert_eq!(
        sums[0].0, sums[0].1,
        "first point starts at its own timestamp"
    );
    assert_eq!(sums[1].0, sums[0].1, "later points keep the first start");
    assert!(sums[1].1 > sums[0].1);
    assert_eq!(sums[0].2, 5.0);

    // The histogram: buckets de-cumulated, +Inf = count - last finite bucket.
    let h = metric(first, "test_latency_seconds").expect("histogram");
    let Some(metric::Data::Histogram(h)) = &h.data else {
        panic!("histogram: {h:?}")
    };
    let p = &h.data_points[0];
    assert_eq!(p.explicit_bounds, vec![0.1, 1.0]);
    assert_eq!(p.bucket_counts, vec![1, 2, 1]);
    assert_eq!(p.count, 4);
    assert_eq!(p.sum, Some(2.5));

    // The target goes down: up = 0, and its series get stale markers.
    exporter.stop();
    let got = wait_until(&sink, "a failed scrape", |s| {
        s.iter().any(|rm| gauge_value(rm, "up") == Some(0.0))
    });
    let failed = got
        .iter()
        .find(|rm| gauge_value(rm, "up") == Some(0.0))
        .unwrap();
    let stale = metric(failed, "test_requests_total").expect("stale marker for the counter");
    let Some(metric::Data::Sum(s)) = &stale.data else {
        panic!("{stale:?}")
    };
    assert_eq!(s.data_points[0].flags, 1, "no-recorded-value flag");
    assert!(s.data_points[0].value.is_none());
    assert_eq!(s.data_points[0].start_time_unix_nano, sums[0].0);

    let (code, _, stderr) = collector.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("Failed to scrape Prometheus endpoint"),
        "{stderr}"
    );
}

/// What the fake API server and the metrics servers share with the test.
#[derive(Default)]
struct ApiState {
    /// `path?query authorization` of every request.
    requests: std::sync::Mutex<Vec<String>>,
    /// The pods the list answers with.
    pods: std::sync::Mutex<Vec<serde_json::Value>>,
    /// Events for the (one) watch stream.
    watch: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<String>>>,
}

/// A stand-in for the Kubernetes API server (none can run here) that speaks the documented
/// list + watch contract for pods, plus small metrics endpoints standing in for Kong pods;
/// all on their own runtime, stopped on drop.
struct FakeCluster {
    api: std::net::SocketAddr,
    state: std::sync::Arc<ApiState>,
    events: tokio::sync::mpsc::UnboundedSender<String>,
    runtime: tokio::runtime::Runtime,
    stop: tokio_util::sync::CancellationToken,
}

async fn pods_handler(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<ApiState>>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let target = uri
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    state
        .requests
        .lock()
        .unwrap()
        .push(format!("{target} {auth}"));
    if auth != "Bearer api-token" {
        return (
            axum::http::StatusCode::FORBIDDEN,
            r#"{"kind":"Status","message":"pods is forbidden","code":403}"#,
        )
            .into_response();
    }
    let query = uri.query().unwrap_or("");
    if query.split('&').any(|kv| kv == "watch=true") {
        let rx = state.watch.lock().unwrap().take();
        let body = match rx {
            Some(rx) => {
                axum::body::Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
                    let line = rx.recv().await?;
                    Some((Ok::<_, std::convert::Infallible>(format!("{line}\n")), rx))
                }))
            }
            // A second watch stays open without events.
            None => axum::body::Body::from_stream(futures::stream::pending::<
                Result<String, std::convert::Infallible>,
            >()),
        };
        return ([("content-type", "application/json")], body).into_response();
    }
    let items = state.pods.lock().unwrap().clone();
    let list = serde_json::json!({
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": "100"},
        "items": items,
    });
    ([("content-type", "application/json")], list.to_string()).into_response()
}

fn pod(name: &str, metrics_port: u16, annotated: bool) -> serde_json::Value {
    let mut annotations = serde_json::json!({"prometheus.io/port": metrics_port.to_string()});
    if annotated {
        annotations["prometheus.io/scrape"] = "true".into();
    }
    serde_json::json!({
        "metadata": {
            "name": name,
            "namespace": "kong",
            "uid": format!("uid-{name}"),
            "resourceVersion": "101",
            "labels": {"app.kubernetes.io/name": "kong"},
            "annotations": annotations,
            "ownerReferences": [{"kind": "ReplicaSet", "name": "kong-kong-7d9", "controller": true}],
        },
        "spec": {
            "nodeName": "node-1",
            "containers": [
                {"name": "proxy", "image": "kong:3.9", "ports": [{"name": "status", "containerPort": 8100, "protocol": "TCP"}]},
                {"name": "ingress-controller", "image": "kic:3", "ports": [{"containerPort": 10255}]},
            ],
        },
        "status": {
            "podIP": "127.0.0.1",
            "hostIP": "127.0.0.1",
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "proxy", "containerID": "containerd://abc"}],
        },
    })
}

impl FakeCluster {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (events, rx) = tokio::sync::mpsc::unbounded_channel();
        let state = std::sync::Arc::new(ApiState {
            watch: std::sync::Mutex::new(Some(rx)),
            ..ApiState::default()
        });
        let stop = tokio_util::sync::CancellationToken::new();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let api = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/api/v1/pods", axum::routing::get(pods_handler))
            .route(
                "/api/v1/namespaces/{ns}/pods",
                axum::routing::get(pods_handler),
            )
            .with_state(state.clone());
        let token = stop.clone();
        runtime.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await
                .unwrap();
        });
        Self {
            api,
            state,
            events,
            runtime,
            stop,
        }
    }

    /// A metrics endpoint that wants `Bearer scrape-token` and serves one Kong-like counter.
    fn metrics_server(&self, route: &str) -> u16 {
        let listener = self
            .runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let body = format!(
            "# HELP kong_http_requests_total Requests.\n# TYPE kong_http_requests_total counter\nkong_http_requests_total{{route=\"{route}\"}} 7\n"
        );
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move |headers: axum::http::HeaderMap| {
                let body = body.clone();
                async move {
                    if headers.get("authorization").and_then(|v| v.to_str().ok())
                        == Some("Bearer scrape-token")
                    {
                        (axum::http::StatusCode::OK, body)
                    } else {
                        (axum::http::StatusCode::UNAUTHORIZED, String::new())
                    }
                }
            }),
        );
        let token = self.stop.clone();
        self.runtime.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await
                .unwrap();
        });
        port
    }

    fn event(&self, kind: &str, object: &serde_json::Value) {
        let line = serde_json::json!({"type": kind, "object": object}).to_string();
        self.events.send(line).unwrap();
    }
}

impl Drop for FakeCluster {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn instance_of(rm: &ResourceMetrics) -> String {
    attr(
        &rm.resource.as_ref().unwrap().attributes,
        "service.instance.id",
    )
    .unwrap_or("")
    .to_owned()
}

#[test]
fn kubernetes_pod_discovery_with_the_seed_rules_selects_annotated_pods() {
    let cluster = FakeCluster::start();
    let first = cluster.metrics_server("orders");
    let second = cluster.metrics_server("payments");
    let quiet = cluster.metrics_server("quiet");
    *cluster.state.pods.lock().unwrap() = vec![
        pod("kong-kong-abc", first, true),
        pod("kong-kong-quiet", quiet, false),
    ];
    let sink = Sink::http();
    let metrics_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "scrape-token\n").unwrap();
    let config = dir.path().join("collector.yaml");
    // The seed's scrape config, pointed at the fake API server, plus the usual annotation
    // rules with the `$$` escaping the collector's config language needs.
    std::fs::write(
        &config,
        format!(
            "receivers:
  prometheus:
    config:
      scrape_configs:
        - job_name: 'otel-collector'
          scrape_interval: 1s
          kubernetes_sd_configs:
            - role: pod
              api_server: http://{api}
              authorization:
                credentials: api-token
              namespaces:
                names: [kong]
          scheme: http
          authorization:
            credentials_file: {token}
          metrics_path: /metrics
          relabel_configs:
            - source_labels: [__meta_kubernetes_namespace]
              action: keep
              regex: \"kong\"
            - source_labels: [__meta_kubernetes_pod_name]
              action: keep
              regex: \"kong-kong-(.+)\"
            - source_labels: [__meta_kubernetes_pod_container_name]
              action: keep
              regex: \"proxy\"
            - source_labels: [__meta_kubernetes_pod_container_port_number]
              action: keep
              regex: \"8100\"
            - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape]
              action: keep
              regex: \"true\"
            - source_labels: [__address__, __meta_kubernetes_pod_annotation_prometheus_io_port]
              action: replace
              regex: ([^:]+)(?::\\d+)?;(\\d+)
              replacement: $$1:$$2
              target_label: __address__
exporters:
  otlphttp:
    endpoint: http://{sink}
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics_port}
  pipelines:
    metrics:
      receivers: [prometheus]
      exporters: [otlphttp]
",
            api = cluster.api,
            token = token.display(),
            sink = sink.addr,
        ),
    )
    .unwrap();
    let collector = Collector::start(&config, &[], metrics_port);
    let first_instance = format!("127.0.0.1:{first}");
    let second_instance = format!("127.0.0.1:{second}");

    let got = wait_until(&sink, "a scrape of the annotated pod", |s| {
        s.iter()
            .any(|rm| instance_of(rm) == first_instance && gauge_value(rm, "up") == Some(1.0))
    });
    let rm = got
        .iter()
        .find(|rm| instance_of(rm) == first_instance && gauge_value(rm, "up") == Some(1.0))
        .unwrap();
    let res = &rm.resource.as_ref().unwrap().attributes;
    assert_eq!(attr(res, "service.name"), Some("otel-collector"));
    assert_eq!(attr(res, "k8s.pod.name"), Some("kong-kong-abc"));
    assert_eq!(attr(res, "k8s.pod.uid"), Some("uid-kong-kong-abc"));
    assert_eq!(attr(res, "k8s.namespace.name"), Some("kong"));
    assert_eq!(attr(res, "k8s.container.name"), Some("proxy"));
    assert_eq!(attr(res, "k8s.node.name"), Some("node-1"));
    assert_eq!(attr(res, "k8s.replicaset.name"), Some("kong-kong-7d9"));
    assert!(metric(rm, "kong_http_requests_total").is_some());

    // A pod added through the watch is scraped too; a deleted one gets stale markers.
    cluster.event("ADDED", &pod("kong-kong-new", second, true));
    wait_until(&sink, "a scrape of the added pod", |s| {
        s.iter()
            .any(|rm| instance_of(rm) == second_instance && gauge_value(rm, "up") == Some(1.0))
    });
    cluster.event("DELETED", &pod("kong-kong-abc", first, true));
    let got = wait_until(&sink, "stale markers for the deleted pod", |s| {
        s.iter().any(|rm| {
            instance_of(rm) == first_instance
                && metric(rm, "kong_http_requests_total").is_some_and(|m| {
                    matches!(&m.data, Some(metric::Data::Sum(s)) if s.data_points[0].flags == 1)
                })
        })
    });
    let (code, _, stderr) = collector.terminate();
    assert_eq!(code, Some(0), "{stderr}");

    // The unannotated pod was never a target (nothing was scraped at its address), and the
    // ingress-controller containers were dropped by the seed's rules.
    assert!(
        got.iter().all(|rm| {
            let i = instance_of(rm);
            i == first_instance || i == second_instance
        }),
        "{:?}",
        got.iter().map(instance_of).collect::<Vec<_>>()
    );
    assert!(got.iter().all(|rm| {
        attr(
            &rm.resource.as_ref().unwrap().attributes,
            "k8s.container.name",
        ) == Some("proxy")
    }));
    let requests = cluster.state.requests.lock().unwrap().clone();
    // First a list of the configured namespace with the API token, then a watch from the
    // list's resourceVersion.
    assert_eq!(
        requests[0], "/api/v1/namespaces/kong/pods Bearer api-token",
        "{requests:?}"
    );
    let watch = requests
        .iter()
        .find(|r| r.contains("watch=true"))
        .expect("a watch request");
    assert!(watch.contains("resourceVersion=100"), "{watch}");
    assert!(
        watch.starts_with("/api/v1/namespaces/kong/pods?"),
        "{watch}"
    );
}

fn parse_metrics(format: &str, input: &str) -> std::process::Output {
    use std::io::Write as _;
    let mut child = Command::new(crate::support::process::binary())
        .args(["debug", "parse-metrics", "--format", format])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn debug_parse_metrics_prints_families_and_fails_on_malformed_input() {
    let out = parse_metrics(
        "prometheus",
        "# HELP up_total Ups.\n# TYPE up_total counter\nup_total{a=\"b\"} 3 1700000000000\nx +Inf\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["name"], "up_total");
    assert_eq!(json[0]["type"], "counter");
    assert_eq!(json[0]["help"], "Ups.");
    assert_eq!(json[0]["samples"][0]["labels"]["a"], "b");
    assert_eq!(json[0]["samples"][0]["value"], 3.0);
    assert_eq!(json[0]["samples"][0]["timestamp_ms"], 1_700_000_000_000_i64);
    assert_eq!(json[1]["samples"][0]["value"], "+Inf");

    let out = parse_metrics("openmetrics", "# TYPE c counter\nc_total 1\n# EOF\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = parse_metrics("openmetrics", "# TYPE c counter\nc_total 1\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing # EOF"));
    let out = parse_metrics("prometheus", "ok 1\nbad{ 1\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2"));
    let out = parse_metrics("protobuf", "");
    assert_eq!(out.status.code(), Some(1));
}
