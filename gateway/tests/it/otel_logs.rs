//! The opentelemetry plugin's `logs_endpoint`: the gateway's own log lines reach a real
//! OTLP/HTTP sink as Kong's log records, compared with Kong's fixture field by field.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Once;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use otelpipe_gateway::observability::logs::CaptureLayer;
use prost::Message;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::support::{closed_port, echo_server, gateway, get};

/// Installs the capture layer as the process's subscriber, as `otelpipe-gateway` does at
/// startup (the gateway's tests start it in-process). Levels are gated per gateway by its
/// kong.conf `log_level`.
fn capture() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::Layer;
        let subscriber = tracing_subscriber::registry()
            .with(CaptureLayer.with_filter(tracing_subscriber::filter::LevelFilter::DEBUG));
        tracing::subscriber::set_global_default(subscriber).ok();
    });
}

/// One export request as the sink received it.
struct Export {
    path: String,
    content_type: String,
    request: ExportLogsServiceRequest,
}

/// An OTLP/HTTP logs sink answering 200.
async fn sink() -> (SocketAddr, mpsc::UnboundedReceiver<Export>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let tx = tx.clone();
                    async move {
                        let path = req.uri().path().to_owned();
                        let content_type = req
                            .headers()
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let request = ExportLogsServiceRequest::decode(body).unwrap();
                        tx.send(Export {
                            path,
                            content_type,
                            request,
                        })
                        .ok();
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                    }
                });
                hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await
                    .ok();
            });
        }
    });
    (addr, rx)
}

/// Worker records go to one process-wide buffer that any logs-enabled gateway drains, so the
/// tests of this file run one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `tcp_log` names a host that does not resolve: each send fails in a background task.
fn config(sink: SocketAddr, upstream: SocketAddr, dead: u16, tcp_log: &str) -> String {
    format!(
        r#"_format_version: "3.0"
services:
- name: coupon
  url: http://{upstream}
  routes:
  - name: coupon_route
    paths: [/coupon]
- name: down
  url: http://127.0.0.1:{dead}
  retries: 0
  routes:
  - name: down_route
    paths: [/down]
plugins:
- name: opentelemetry
  config:
    logs_endpoint: http://{sink}/v1/logs
    http_response_header_for_traceid: x-trace-id
    queue: {{max_coalescing_delay: 0.1}}
    propagation:
      default_format: w3c
      inject: [w3c]
- name: tcp-log
  config:
    host: {tcp_log}
    port: 9
    timeout: 1000
"#
    )
}

fn attr<'a>(record: &'a LogRecord, key: &str) -> Option<&'a Any> {
    record
        .attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn body(record: &LogRecord) -> &str {
    match record.body.as_ref().and_then(|b| b.value.as_ref()) {
        Some(Any::StringValue(s)) => s,
        _ => "",
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The OTLP-JSON type name of a value (`stringValue`, `doubleValue`, …).
fn kind(v: &Any) -> &'static str {
    match v {
        Any::StringValue(_) => "stringValue",
        Any::DoubleValue(_) => "doubleValue",
        Any::IntValue(_) => "intValue",
        Any::BoolValue(_) => "boolValue",
        _ => "other",
    }
}

fn fixture() -> Value {
    serde_json::from_str(include_str!("../fixtures/otel-log-record.json")).unwrap()
}

/// Kong's attribute keys and value types of a record, in order.
fn fixture_attrs(record: &Value) -> Vec<(String, String)> {
    record["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let kind = a["value"].as_object().unwrap().keys().next().unwrap();
            (a["key"].as_str().unwrap().to_owned(), kind.clone())
        })
        .collect()
}

fn our_attrs(attrs: &[KeyValue]) -> Vec<(String, String)> {
    attrs
        .iter()
        .map(|kv| {
            let v = kv.value.as_ref().and_then(|v| v.value.as_ref()).unwrap();
            (kv.key.clone(), kind(v).to_owned())
        })
        .collect()
}

/// The next export; `None` after a short wait without one (the caller then sends another
/// request, whose log phase flushes pending records).
async fn next(
    rx: &mut mpsc::UnboundedReceiver<Export>,
    deadline: tokio::time::Instant,
) -> Option<Export> {
    assert!(
        tokio::time::Instant::now() < deadline,
        "no matching log record within 20 s"
    );
    let export = tokio::time::timeout(Duration::from_millis(300), rx.recv())
        .await
        .ok()?
        .unwrap();
    assert_eq!(export.path, "/v1/logs");
    assert_eq!(export.content_type, "application/x-protobuf");
    Some(export)
}

/// Receives exports until one holds a record `pred` accepts, requesting `poke` (when set)
/// whenever nothing arrives.
async fn find(
    rx: &mut mpsc::UnboundedReceiver<Export>,
    poke: Option<&str>,
    pred: impl Fn(&LogRecord) -> bool,
) -> (ExportLogsServiceRequest, LogRecord) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let Some(export) = next(rx, deadline).await else {
            if let Some(url) = poke {
                get(url, &[]).await;
            }
            continue;
        };
        let found = export.request.resource_logs[0].scope_logs[0]
            .log_records
            .iter()
            .find(|r| pred(r))
            .cloned();
        if let Some(record) = found {
            return (export.request, record);
        }
    }
}

#[tokio::test]
async fn request_and_worker_lines_are_exported_as_kongs_log_records() {
    capture();
    let _serial = ONE_AT_A_TIME.lock().await;
    let (sink_addr, mut rx) = sink().await;
    let upstream = echo_server("coupon").await;
    let dead = closed_port().await;
    let gw = gateway(
        &config(sink_addr, upstream.addr, dead, "logs-a.invalid"),
        &[
            ("KONG_LOG_LEVEL", "debug"),
            ("KONG_TRACING_INSTRUMENTATIONS", "all"),
            ("KONG_TRACING_SAMPLING_RATE", "1.0"),
        ],
    )
    .await;
    let proxy = format!("http://{}", gw.proxy[0]);
    let reply = get(&format!("{proxy}/down"), &[]).await;
    assert_eq!(reply.status, 502);
    let request_id = reply.header("x-kong-request-id").unwrap().to_owned();
    let trace_id = reply.header("x-trace-id").unwrap().to_owned();

    // The proxy's line about the failed upstream try, logged while handling the request.
    let (export, record) = find(&mut rx, None, |r| {
        matches!(attr(r, "request.id"), Some(Any::StringValue(id)) if *id == request_id)
            && body(r).contains("upstream try failed")
    })
    .await;
    let kong = fixture();
    let kong_logs = &kong["resourceLogs"][0];
    let resource: Vec<(String, String)> = export.resource_logs[0]
        .resource
        .as_ref()
        .unwrap()
        .attributes
        .iter()
        .map(
            |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Any::StringValue(s)) => (kv.key.clone(), s.clone()),
                _ => panic!("resource attribute {} is not a string", kv.key),
            },
        )
        .collect();
    let kong_resource: Vec<String> = kong_logs["resource"]["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["key"].as_str().unwrap().to_owned())
        .collect();
    let keys: Vec<String> = resource.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(keys, kong_resource);
    assert_eq!(resource[0].1, "kong");
    assert_eq!(resource[2].1, "3.9.0");
    let scope = export.resource_logs[0].scope_logs[0]
        .scope
        .as_ref()
        .unwrap();
    assert_eq!(scope.name, kong_logs["scopeLogs"][0]["scope"]["name"]);
    assert_eq!(scope.version, kong_logs["scopeLogs"][0]["scope"]["version"]);

    let kong_record = &kong_logs["scopeLogs"][0]["logRecords"][0];
    assert_eq!(our_attrs(&record.attributes), fixture_attrs(kong_record));
    assert_eq!(record.time_unix_nano, record.observed_time_unix_nano);
    assert!(record.time_unix_nano > 0);
    assert_eq!(record.severity_text, "DEBUG");
    assert_eq!(
        i64::from(record.severity_number),
        kong["severity_map"]["DEBUG"].as_i64().unwrap()
    );
    assert_eq!(hex(&record.trace_id), trace_id);
    assert_eq!(record.span_id.len(), 8);
    assert_ne!(record.span_id, vec![0; 8]);
    assert_eq!(
        u64::from(record.flags),
        kong_record["flags"].as_u64().unwrap()
    );
    match attr(&record, "introspection.source") {
        Some(Any::StringValue(s)) => assert!(s.starts_with('@') && s.ends_with(".rs"), "{s}"),
        other => panic!("introspection.source: {other:?}"),
    }

    // tcp-log's failed send happens in a background task: a worker record, flushed by a
    // later request's log phase, without request or trace fields.
    let coupon = format!("{proxy}/coupon/x");
    let port = "logs-a.invalid:9";
    let (_, worker) = find(&mut rx, Some(&coupon), |r| {
        body(r).contains("tcp-log") && body(r).contains(port)
    })
    .await;
    assert_eq!(worker.severity_text, "ERR");
    assert_eq!(
        i64::from(worker.severity_number),
        kong["severity_map"]["ERR"].as_i64().unwrap()
    );
    let mut expected = fixture_attrs(kong_record);
    expected.retain(|(k, _)| k != "request.id");
    assert_eq!(our_attrs(&worker.attributes), expected);
    assert!(worker.trace_id.is_empty() && worker.span_id.is_empty());
    assert_eq!(worker.flags, 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn lines_below_log_level_are_not_exported() {
    capture();
    let _serial = ONE_AT_A_TIME.lock().await;
    let (sink_addr, mut rx) = sink().await;
    let upstream = echo_server("coupon").await;
    let dead = closed_port().await;
    // Default log_level: notice.
    let gw = gateway(
        &config(sink_addr, upstream.addr, dead, "logs-b.invalid"),
        &[],
    )
    .await;
    let proxy = format!("http://{}", gw.proxy[0]);
    assert_eq!(get(&format!("{proxy}/down"), &[]).await.status, 502);
    let coupon = format!("{proxy}/coupon/x");
    let port = "logs-b.invalid:9";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut found = false;
    while !found {
        let Some(export) = next(&mut rx, deadline).await else {
            get(&coupon, &[]).await;
            continue;
        };
        for record in &export.request.resource_logs[0].scope_logs[0].log_records {
            assert!(
                record.severity_number >= 11,
                "below notice: {:?}",
                body(record)
            );
            found |= body(record).contains(port);
        }
    }
    gw.shutdown().await;
}

/// A request-scoped record carries the span active when its line was logged (Kong's
/// `kong.tracing.active_span()`, spec §8.8): the plugin's access span for the plugin's own
/// warning about a malformed `traceparent`, the `kong` span for the proxy's line about a
/// failed upstream try; both with the request's trace id.
#[tokio::test]
async fn request_records_carry_the_span_active_when_they_were_logged() {
    capture();
    let _serial = ONE_AT_A_TIME.lock().await;
    let (sink_addr, mut rx) = sink().await;
    let (traces_addr, mut traces) = crate::opentelemetry::sink(0).await;
    let upstream = echo_server("coupon").await;
    let dead = closed_port().await;
    let yaml = config(sink_addr, upstream.addr, dead, "logs-c.invalid")
        .replace(
            "    logs_endpoint:",
            &format!("    traces_endpoint: http://{traces_addr}/v1/traces\n    logs_endpoint:"),
        )
        .replace(
            "      inject: [w3c]",
            "      extract: [w3c]\n      inject: [w3c]",
        );
    let gw = gateway(
        &yaml,
        &[
            ("KONG_LOG_LEVEL", "debug"),
            ("KONG_TRACING_INSTRUMENTATIONS", "all"),
            ("KONG_TRACING_SAMPLING_RATE", "1.0"),
        ],
    )
    .await;
    let proxy = format!("http://{}", gw.proxy[0]);
    let reply = get(
        &format!("{proxy}/down"),
        &[("traceparent", "00-not-a-trace")],
    )
    .await;
    assert_eq!(reply.status, 502);
    let request_id = reply.header("x-kong-request-id").unwrap().to_owned();
    let trace_id = reply.header("x-trace-id").unwrap().to_owned();

    // The request's records, until both lines are there.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut records: Vec<LogRecord> = Vec::new();
    let has = |records: &[LogRecord], text: &str| records.iter().any(|r| body(r).contains(text));
    let warning = "invalid W3C traceparent header; ignoring.";
    while !(has(&records, warning) && has(&records, "upstream try failed")) {
        let Some(export) = next(&mut rx, deadline).await else {
            continue;
        };
        records.extend(
            export.request.resource_logs[0].scope_logs[0]
                .log_records
                .iter()
                .filter(|r| {
                    matches!(attr(r, "request.id"), Some(Any::StringValue(id)) if *id == request_id)
                })
                .cloned(),
        );
    }

    // The request's spans as exported.
    let mut spans = Vec::new();
    while !["kong", "kong.access.plugin.opentelemetry"]
        .iter()
        .all(|name| spans.iter().any(|(n, _): &(String, String)| n == name))
    {
        let export = tokio::time::timeout(Duration::from_secs(20), traces.recv())
            .await
            .expect("no span export within 20 s")
            .expect("sink closed");
        for span in &export.request.resource_spans[0].scope_spans[0].spans {
            if hex(&span.trace_id) == trace_id {
                spans.push((span.name.clone(), hex(&span.span_id)));
            }
        }
    }
    let span_of = |name: &str| {
        spans
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| id.clone())
            .unwrap()
    };
    let record_of = |text: &str| records.iter().find(|r| body(r).contains(text)).unwrap();

    let warned = record_of(warning);
    assert_eq!(warned.severity_text, "WARN");
    assert_eq!(hex(&warned.trace_id), trace_id);
    assert_eq!(
        hex(&warned.span_id),
        span_of("kong.access.plugin.opentelemetry")
    );
    let failed = record_of("upstream try failed");
    assert_eq!(hex(&failed.trace_id), trace_id);
    assert_eq!(hex(&failed.span_id), span_of("kong"));
    assert_ne!(warned.span_id, failed.span_id);
    gw.shutdown().await;
}
