//! Whole pipelines through the real binary: real SDK clients in front, a sink behind.

use std::time::Duration;

use opentelemetry::trace::{Tracer, TracerProvider as _};
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_proto::tonic::common::v1::any_value;
use otelpipe::pipeline::Batch;

use crate::support::process::{free_port, Collector};
use crate::support::sink::{Answer, Sink};

fn write_config(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let path = dir.path().join("collector.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn span_names(batches: &[Batch]) -> Vec<String> {
    let mut names: Vec<String> = batches
        .iter()
        .flat_map(|b| match b {
            Batch::Traces(rs) => rs.clone(),
            _ => Vec::new(),
        })
        .flat_map(|r| r.scope_spans)
        .flat_map(|s| s.spans)
        .map(|s| s.name)
        .collect();
    names.sort();
    names
}

/// The Dynatrace seed's shape: OTLP in, `otlphttp` out with an `Api-Token` header from the
/// environment. The backend answers 503 (with Retry-After) twice; nothing is lost and
/// nothing arrives twice.
#[test]
fn rust_sdk_grpc_to_otlphttp_survives_503_exactly_once() {
    let sink = Sink::http();
    sink.script(vec![
        Answer {
            status: 503,
            headers: vec![("retry-after", "1".into())],
        },
        Answer {
            status: 503,
            headers: Vec::new(),
        },
    ]);
    let (grpc, http) = (free_port(), free_port());
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
exporters:
  otlphttp:
    endpoint: \"${{env:DT_ENDPOINT}}\"
    headers:
      Authorization: \"Api-Token ${{env:DT_API_TOKEN}}\"
    retry_on_failure:
      initial_interval: 100ms
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlphttp]
",
        ),
    );
    let endpoint = format!("http://{}/api/v2/otlp", sink.addr);
    let collector = Collector::start(
        &config,
        &[
            ("DT_ENDPOINT", &endpoint),
            ("DT_API_TOKEN", "dt0c01.secret"),
        ],
        grpc,
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(format!("http://127.0.0.1:{grpc}"))
            .with_compression(opentelemetry_otlp::Compression::Gzip)
            .build()
            .unwrap();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .build();
        let tracer = provider.tracer("kong");
        for i in 0..50 {
            tracer.in_span(format!("span-{i:02}"), |_cx| {});
        }
        provider.force_flush().unwrap();
        provider.shutdown().unwrap();
    });

    assert_eq!(sink.wait_for_items(50), 50);
    let (code, _, stderr) = collector.terminate();
    assert_eq!(code, Some(0), "{stderr}");

    let received = sink.received();
    assert!(received.iter().all(|r| r.path == "/api/v2/otlp/v1/traces"));
    assert!(received
        .iter()
        .all(|r| r.headers["authorization"] == "Api-Token dt0c01.secret"));
    assert!(received
        .iter()
        .all(|r| r.headers["content-type"] == "application/x-protobuf"));
    assert!(received
        .iter()
        .all(|r| r.headers["content-encoding"] == "gzip"));
    assert_eq!(received.iter().filter(|r| r.status == 503).count(), 2);
    let accepted: Vec<Batch> = received
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.batch.clone())
        .collect();
    let expected: Vec<String> = (0..50).map(|i| format!("span-{i:02}")).collect();
    assert_eq!(span_names(&accepted), expected);
    assert!(
        !stderr.contains("dt0c01.secret"),
        "the token leaked into logs: {stderr}"
    );
}

/// The Jaeger seed's shape: OTLP/HTTP in from the Python SDK, `otlp` (gRPC, plaintext) out.
#[test]
fn python_sdk_http_to_otlp_grpc() {
    let sink = Sink::grpc();
    let http = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        &dir,
        &format!(
            "receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{http}
exporters:
  otlp:
    endpoint: {}
    tls:
      insecure: true
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp]
    logs:
      receivers: [otlp]
      exporters: [otlp]
",
            sink.addr
        ),
    );
    let collector = Collector::start(&config, &[], http);
    let script = format!(
        r#"
import logging
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint="http://127.0.0.1:{http}/v1/traces")))
tracer = provider.get_tracer("python-client")
for i in range(20):
    with tracer.start_as_current_span(f"py-{{i:02}}") as span:
        span.set_attribute("http.status_code", 200)
provider.shutdown()

logs = LoggerProvider()
logs.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint="http://127.0.0.1:{http}/v1/logs")))
logger = logging.getLogger("py")
logger.addHandler(LoggingHandler(logger_provider=logs))
logger.setLevel(logging.INFO)
for i in range(5):
    logger.info("order %d placed", i)
logs.shutdown()
"#
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert_eq!(sink.wait_for_items(25), 25);
    let (code, _, stderr) = collector.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    let received = sink.received();
    let traces: Vec<Batch> = received
        .iter()
        .filter(|r| r.path == "traces")
        .map(|r| r.batch.clone())
        .collect();
    assert_eq!(
        span_names(&traces),
        (0..20).map(|i| format!("py-{i:02}")).collect::<Vec<_>>()
    );
    let bodies: Vec<String> = received
        .iter()
        .filter(|r| r.path == "logs")
        .flat_map(|r| match &r.batch {
            Batch::Logs(rl) => rl.clone(),
            _ => Vec::new(),
        })
        .flat_map(|r| r.scope_logs)
        .flat_map(|s| s.log_records)
        .filter_map(|l| match l.body?.value? {
            any_value::Value::StringValue(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(bodies.len(), 5);
    assert!(bodies.contains(&"order 3 placed".to_owned()), "{bodies:?}");
}

/// A permanent refusal (400) drops the batch, counts it, and the pipeline goes on.
#[test]
fn permanent_refusal_is_dropped_and_counted() {
    let sink = Sink::http();
    sink.script(vec![Answer {
        status: 400,
        headers: Vec::new(),
    }]);
    let (http, metrics) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        &dir,
        &format!(
            "receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{http}
exporters:
  otlphttp:
    endpoint: http://{}
    encoding: json
    compression: none
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [otlphttp]
",
            sink.addr
        ),
    );
    let collector = Collector::start(&config, &[], http);
    let send = |body: &str| {
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "--max-time",
                "10",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-H",
                "Content-Type: application/json",
                "--data",
                body,
            ])
            .arg(format!("http://127.0.0.1:{http}/v1/logs"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let record = |text: &str| {
        format!(
            r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{{"body":{{"stringValue":"{text}"}}}}]}}]}}]}}"#
        )
    };
    assert_eq!(send(&record("refused")), "200");
    // Wait for the refused attempt before sending the next, so the order is known.
    for _ in 0..500 {
        if !sink.received().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(send(&record("accepted")), "200");
    assert_eq!(sink.wait_for_items(1), 1);

    let own = std::process::Command::new("curl")
        .args(["-s", "--max-time", "10"])
        .arg(format!("http://127.0.0.1:{metrics}/metrics"))
        .output()
        .unwrap();
    let own = String::from_utf8_lossy(&own.stdout);
    let line = |name: &str| {
        own.lines()
            .find(|l| l.starts_with(name))
            .map(|l| l.rsplit(' ').next().unwrap().to_owned())
    };
    assert_eq!(
        line("otelcol_exporter_send_failed_log_records{").as_deref(),
        Some("1"),
        "{own}"
    );
    assert_eq!(
        line("otelcol_exporter_sent_log_records{").as_deref(),
        Some("1"),
        "{own}"
    );

    let (code, _, stderr) = collector.terminate();
    assert_eq!(code, Some(0));
    assert!(
        stderr.contains("Exporting failed. Dropping data."),
        "{stderr}"
    );
    assert!(
        stderr.contains("responded with HTTP Status Code 400, Message=sink answered 400"),
        "{stderr}"
    );
    let received = sink.received();
    assert_eq!(received.len(), 2);
    assert!(received
        .iter()
        .all(|r| r.headers["content-type"] == "application/json"));
}
