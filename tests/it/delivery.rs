//! Delivery end to end through the binary: memory_limiter refusals, outages of the
//! downstream, the persistent queue across `kill -9`.

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

use crate::support::process::{free_port, Collector};

fn write_config(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let path = dir.path().join("collector.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn curl(args: &[&str]) -> String {
    let out = std::process::Command::new("curl")
        .args(["-s", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The sum over the own-metric series starting with `prefix` (None when there is none).
fn own_metric(metrics_port: u16, prefix: &str) -> Option<f64> {
    let text = curl(&[&format!("http://127.0.0.1:{metrics_port}/metrics")]);
    let values: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// A request of spans named `span-<first>` … `span-<first+n-1>`.
fn request(first: usize, n: usize) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: (first..first + n)
                    .map(|i| Span {
                        name: format!("span-{i}"),
                        trace_id: vec![1; 16],
                        span_id: (i as u64 + 1).to_be_bytes().to_vec(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A limit far below what any process uses: the limiter refuses from the first check, over
/// gRPC (`UNAVAILABLE`) and HTTP (503 with `Retry-After`), counts the refusals, and the
/// collector keeps serving.
#[test]
fn memory_limiter_refuses_with_unavailable_and_503() {
    let (grpc, http, metrics) = (free_port(), free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        &dir,
        &format!(
            "receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
      http:
        endpoint: 127.0.0.1:{http}
processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: 1
exporters:
  debug:
    verbosity: basic
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter]
      exporters: [debug]
"
        ),
    );
    let collector = Collector::start(&config, &[], grpc);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let status = runtime.block_on(async {
        let mut client = TraceServiceClient::connect(format!("http://127.0.0.1:{grpc}"))
            .await
            .unwrap();
        client.export(request(0, 3)).await.unwrap_err()
    });
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        status
            .message()
            .contains("data refused due to high memory usage"),
        "{status:?}"
    );

    let body = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"http"},{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060709","name":"http2"}]}]}]}"#;
    let headers = curl(&[
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-H",
        "Content-Type: application/json",
        "--data",
        body,
        &format!("http://127.0.0.1:{http}/v1/traces"),
    ]);
    let headers = headers.to_ascii_lowercase();
    assert!(headers.starts_with("http/1.1 503"), "{headers}");
    assert!(headers.contains("\r\nretry-after: 1\r\n"), "{headers}");

    assert_eq!(
        own_metric(metrics, "otelcol_processor_refused_spans{"),
        Some(5.0)
    );
    assert_eq!(
        own_metric(metrics, "otelcol_receiver_refused_spans{"),
        Some(5.0)
    );

    let (code, _, stderr) = collector.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("Memory usage is above soft limit. Refusing data."),
        "{stderr}"
    );
}
