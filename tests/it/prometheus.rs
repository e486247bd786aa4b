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
