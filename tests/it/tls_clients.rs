//! Client TLS of the exporters: one collector exports over TLS to another whose otlp
//! receiver serves a certificate for `collector.test` only and requires client
//! certificates, so each exporter has to verify the override name and present its own.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::security::{path, post_log, write, Pki};
use crate::support::process::{free_port, Collector};
use crate::support::sink::Sink;

/// A collector receiving OTLP over mutual TLS on both protocols and forwarding to `sink`.
/// Returns it with its (gRPC, HTTP) ports.
fn backend(dir: &Path, pki: &Pki, sink: &Sink) -> (Collector, u16, u16) {
    let (crt, key) = pki.issue_for("backend", &["collector.test"]);
    let (grpc, http, metrics) = (free_port(), free_port(), free_port());
    let tls = format!(
        "{{cert_file: {}, key_file: {}, client_ca_file: {}}}",
        path(&crt),
        path(&key),
        path(&pki.ca_file())
    );
    let config = write(
        &dir.join("backend"),
        &format!(
            "receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
        tls: {tls}
      http:
        endpoint: 127.0.0.1:{http}
        tls: {tls}
exporters:
  otlphttp:
    endpoint: http://{sink}
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [otlphttp]
",
            sink = sink.addr
        ),
    );
    (Collector::start(&config, &[], http), grpc, http)
}

/// The sum of the own-metric series `name` that carry `label`, 0 when there is none.
fn own_metric(port: u16, name: &str, label: &str) -> f64 {
    let (_, text) = crate::security::curl(&[&format!("http://127.0.0.1:{port}/metrics")]);
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn exporters_verify_the_override_name_and_present_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("backend")).unwrap();
    let pki = Pki::new(dir.path(), "pki");
    let sink = Sink::http();
    let (backend, grpc, http) = backend(dir.path(), &pki, &sink);
    let (crt, key) = pki.issue("exporter");
    let tls = format!(
        "{{ca_file: {}, cert_file: {}, key_file: {}, server_name_override: collector.test}}",
        path(&pki.ca_file()),
        path(&crt),
        path(&key)
    );
    let (front, metrics) = (free_port(), free_port());
    let config = write(
        dir.path(),
        &format!(
            "receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{front}
exporters:
  otlphttp:
    endpoint: https://127.0.0.1:{http}
    tls: {tls}
  otlp:
    endpoint: 127.0.0.1:{grpc}
    tls: {tls}
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [otlphttp, otlp]
"
        ),
    );
    let collector = Collector::start(&config, &[], front);
    assert_eq!(
        post_log(&format!("http://127.0.0.1:{front}/v1/logs"), &[]),
        (0, "200".to_owned())
    );
    assert_eq!(sink.wait_for_items(2), 2, "one record per exporter");
    let (code, _, stderr) = collector.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    backend.terminate();
}

#[test]
fn exporters_refuse_a_certificate_for_another_name_unless_told_to_skip_verification() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("backend")).unwrap();
    let pki = Pki::new(dir.path(), "pki");
    let sink = Sink::http();
    let (backend, grpc, http) = backend(dir.path(), &pki, &sink);
    let (crt, key) = pki.issue("exporter");
    let ca_file = pki.ca_file();
    let (ca, crt, key) = (path(&ca_file), path(&crt), path(&key));
    let (front, metrics) = (free_port(), free_port());
    let config = write(
        dir.path(),
        &format!(
            "receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{front}
exporters:
  otlphttp/verified:
    endpoint: https://127.0.0.1:{http}
    tls: {{ca_file: {ca}, cert_file: {crt}, key_file: {key}}}
    retry_on_failure: {{enabled: false}}
  otlp/verified:
    endpoint: 127.0.0.1:{grpc}
    tls: {{ca_file: {ca}, cert_file: {crt}, key_file: {key}}}
    retry_on_failure: {{enabled: false}}
  otlp/skip:
    endpoint: 127.0.0.1:{grpc}
    tls: {{insecure_skip_verify: true, cert_file: {crt}, key_file: {key}}}
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [otlphttp/verified, otlp/verified, otlp/skip]
"
        ),
    );
    let collector = Collector::start(&config, &[], front);
    assert_eq!(
        post_log(&format!("http://127.0.0.1:{front}/v1/logs"), &[]),
        (0, "200".to_owned())
    );
    assert_eq!(sink.wait_for_items(1), 1);
    let failed = |id: &str| {
        own_metric(
            metrics,
            "otelcol_exporter_send_failed_log_records",
            &format!("exporter=\"{id}\""),
        )
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while failed("otlphttp/verified") < 1.0 || failed("otlp/verified") < 1.0 {
        assert!(
            Instant::now() < deadline,
            "both verifying exporters count their failure: {}",
            crate::security::curl(&[&format!("http://127.0.0.1:{metrics}/metrics")]).1
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        sink.accepted_items(),
        1,
        "only the skipping exporter delivered"
    );
    let (code, _, stderr) = collector.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("insecure_skip_verify"),
        "the skip is warned about: {stderr}"
    );
    backend.terminate();
}

/// Names of the metrics the sink received.
fn metric_names(sink: &Sink) -> Vec<String> {
    sink.received()
        .into_iter()
        .flat_map(|r| match r.batch {
            otelpipe::pipeline::Batch::Metrics(rm) => rm,
            _ => Vec::new(),
        })
        .flat_map(|rm| rm.scope_metrics)
        .flat_map(|sm| sm.metrics)
        .map(|m| m.name)
        .collect()
}

#[test]
fn the_scraper_verifies_the_prometheus_exporter_over_tls_with_server_name() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "pki");
    let (crt, key) = pki.issue_for("exporter", &["collector.test"]);
    let sink = Sink::http();
    let (front, prom, metrics) = (free_port(), free_port(), free_port());
    let config = write(
        dir.path(),
        &format!(
            "receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{front}
  prometheus:
    config:
      scrape_configs:
        - job_name: self
          scrape_interval: 1s
          scheme: https
          tls_config:
            ca_file: {ca}
            server_name: collector.test
          static_configs:
            - targets: ['127.0.0.1:{prom}']
exporters:
  prometheus:
    endpoint: 127.0.0.1:{prom}
    tls: {{cert_file: {crt}, key_file: {key}}}
  otlphttp:
    endpoint: http://{sink}
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    metrics/in:
      receivers: [otlp]
      exporters: [prometheus]
    metrics/scraped:
      receivers: [prometheus]
      exporters: [otlphttp]
",
            ca = path(&pki.ca_file()),
            crt = path(&crt),
            key = path(&key),
            sink = sink.addr,
        ),
    );
    let collector = Collector::start(&config, &[], front);
    let gauge = r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"tls_probe","gauge":{"dataPoints":[{"asDouble":1}]}}]}]}]}"#;
    let (code, status) = crate::security::curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        "Content-Type: application/json",
        "--data",
        gauge,
        &format!("http://127.0.0.1:{front}/v1/metrics"),
    ]);
    assert_eq!((code, status.as_str()), (0, "200"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !metric_names(&sink).iter().any(|n| n == "tls_probe") {
        assert!(
            Instant::now() < deadline,
            "tls_probe scraped over TLS: {:?}",
            metric_names(&sink)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, _, stderr) = collector.terminate();
    assert_eq!(code, Some(0), "{stderr}");
}
