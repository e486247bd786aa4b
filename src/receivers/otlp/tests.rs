//! The OTLP receiver over real sockets, feeding a capture consumer.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use tokio::sync::watch;

use super::http::RpcStatus;
use super::*;
use crate::codec::Compression;
use crate::config::ComponentId;
use crate::pipeline::{Capture, ConsumeError};

struct Running {
    receiver: Arc<dyn Component>,
    bound: Bound,
    traces: Arc<Capture>,
}

async fn start(yaml: &str) -> Running {
    crate::tls::install_crypto_provider();
    let raw: RawConfig = yaml_serde::from_str(yaml).unwrap();
    let traces = Arc::new(Capture::new());
    let mut consumers = ReceiverConsumers::default();
    consumers.set(Signal::Traces, traces.clone());
    let settings = CreateSettings {
        id: ComponentId::new("otlp"),
        signal: Signal::Traces,
        pipeline: String::new(),
    };
    let config = decode_config(&raw).unwrap();
    let receiver = Arc::new(Receiver {
        id: "otlp".into(),
        config,
        consumers,
        stop: CancellationToken::new(),
        tasks: TaskTracker::new(),
        bound: Mutex::new(Bound::default()),
    });
    let _ = settings;
    let (_tx, ready) = watch::channel(true);
    receiver
        .start(&Host {
            ready,
            shutdown: CancellationToken::new(),
            extensions: Default::default(),
        })
        .await
        .unwrap();
    let bound = receiver.bound();
    Running {
        receiver,
        bound,
        traces,
    }
}

const BOTH: &str =
    "protocols:\n  grpc:\n    endpoint: 127.0.0.1:0\n  http:\n    endpoint: 127.0.0.1:0\n";

fn request(spans: usize) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: (0..spans)
                    .map(|i| Span {
                        trace_id: vec![1; 16],
                        span_id: vec![i as u8 + 1; 8],
                        name: format!("span-{i}"),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

#[tokio::test]
async fn grpc_delivers_and_maps_refusals() {
    let r = start(BOTH).await;
    let url = format!("http://{}", r.bound.grpc.unwrap());
    let mut client = TraceServiceClient::connect(url.clone()).await.unwrap();
    client.export(request(3)).await.unwrap();
    assert_eq!(r.traces.item_count(), 3);

    // gzip-compressed requests are accepted.
    let mut gz = TraceServiceClient::connect(url.clone())
        .await
        .unwrap()
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    gz.export(request(2)).await.unwrap();
    assert_eq!(r.traces.item_count(), 5);

    r.traces.refuse_next(vec![
        ConsumeError::retryable("sending queue is full"),
        ConsumeError::permanent("broken"),
    ]);
    let status = client.export(request(1)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_eq!(status.message(), "sending queue is full");
    let status = client.export(request(1)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Internal);

    // A signal no pipeline uses is not served.
    let mut logs = LogsServiceClient::connect(url).await.unwrap();
    let status = logs
        .export(
            opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    assert_eq!(r.traces.item_count(), 5);
    r.receiver.shutdown().await.unwrap();
}

#[tokio::test]
async fn grpc_rejects_oversized_messages_and_keeps_serving() {
    let r = start("protocols:\n  grpc:\n    endpoint: 127.0.0.1:0\n    max_recv_msg_size_mib: 1\n")
        .await;
    let url = format!("http://{}", r.bound.grpc.unwrap());
    let mut client = TraceServiceClient::connect(url).await.unwrap();
    let mut big = request(1);
    big.resource_spans[0].scope_spans[0].spans[0].name = "x".repeat(2 << 20);
    let status = client.export(big).await.unwrap_err();
    // grpc-go answers RESOURCE_EXHAUSTED here; tonic's codec answers OUT_OF_RANGE. Both
    // are refusals the client must not retry unchanged.
    assert_eq!(status.code(), tonic::Code::OutOfRange);
    assert!(
        status.message().contains("message length too large"),
        "{status:?}"
    );
    client.export(request(1)).await.unwrap();
    assert_eq!(r.traces.item_count(), 1);
    r.receiver.shutdown().await.unwrap();
}

#[tokio::test]
async fn http_protobuf_json_and_gzip() {
    let r = start(BOTH).await;
    let base = format!("http://{}", r.bound.http.unwrap());
    let client = http_client();

    let resp = client
        .post(format!("{base}/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .body(request(2).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-protobuf");
    assert!(resp.bytes().await.unwrap().is_empty());

    let json = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","name":"j"}]}]}]}"#;
    let resp = client
        .post(format!("{base}/v1/traces"))
        .header("content-type", "application/json; charset=utf-8")
        .header("content-encoding", "gzip")
        .body(Compression::Gzip.compress(json.as_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "{}");
    assert_eq!(r.traces.item_count(), 3);
    r.receiver.shutdown().await.unwrap();
}

#[tokio::test]
async fn http_bad_input_gets_otelcol_answers() {
    let r = start(BOTH).await;
    let base = format!("http://{}", r.bound.http.unwrap());
    let client = http_client();
    let traces = format!("{base}/v1/traces");

    let resp = client.get(&traces).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(
        resp.text().await.unwrap(),
        "405 method not allowed, supported: [POST]"
    );

    let resp = client
        .post(&traces)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    assert_eq!(
        resp.text().await.unwrap(),
        "415 unsupported media type, supported: [application/json, application/x-protobuf]"
    );

    let resp = client
        .post(format!("{base}/v1/traces/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.text().await.unwrap(), "404 page not found\n");
    // No pipeline uses this receiver for logs: the path is not registered.
    let resp = client
        .post(format!("{base}/v1/logs"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    let bad = client
        .post(&traces)
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body("not gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let status = RpcStatus::decode(bad.bytes().await.unwrap()).unwrap();
    assert_eq!(status.code, 3);

    // A decompression bomb: 30 MiB of zeros in a small gzip body.
    let bomb = Compression::Gzip.compress(&vec![0u8; 30 << 20]);
    let resp = client
        .post(&traces)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(bomb)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(body["code"], 3);

    let resp = client
        .post(&traces)
        .header("content-type", "application/json")
        .body(r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"abc"}]}]}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    let resp = client
        .post(&traces)
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "br")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    // Empty requests are answered without calling the pipeline.
    r.traces
        .refuse_next(vec![ConsumeError::permanent("must not be called")]);
    let resp = client
        .post(&traces)
        .header("content-type", "application/x-protobuf")
        .body(Vec::new())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // The pipeline is still untouched by all of the above, and the server still serves.
    let resp = client
        .post(&traces)
        .header("content-type", "application/x-protobuf")
        .body(request(1).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    let resp = client
        .post(&traces)
        .header("content-type", "application/x-protobuf")
        .body(request(1).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(r.traces.item_count(), 1);
    r.receiver.shutdown().await.unwrap();
}

#[tokio::test]
async fn http_retryable_refusal_is_503_with_retry_after() {
    let r = start(BOTH).await;
    let traces = format!("http://{}/v1/traces", r.bound.http.unwrap());
    r.traces.refuse_next(vec![ConsumeError::retry_after(
        "memory",
        Duration::from_secs(3),
    )]);
    let resp = http_client()
        .post(&traces)
        .header("content-type", "application/json")
        .body(String::from_utf8(crate::codec::json::encode(&request(2))).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "3");
    let body: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(body, serde_json::json!({"code": 14, "message": "memory"}));
    r.receiver.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_closes_listeners_and_is_safe_without_start() {
    let r = start(BOTH).await;
    let http = r.bound.http.unwrap();
    r.receiver.shutdown().await.unwrap();
    assert!(tokio::net::TcpStream::connect(http).await.is_err());

    let raw: RawConfig = yaml_serde::from_str(BOTH).unwrap();
    let settings = CreateSettings {
        id: ComponentId::new("otlp"),
        signal: Signal::Traces,
        pipeline: String::new(),
    };
    let unstarted = FACTORY
        .create(&settings, &raw, ReceiverConsumers::default())
        .unwrap();
    unstarted.shutdown().await.unwrap();
}

#[test]
fn config_defaults_and_rules() {
    let c = decode_config(
        &yaml_serde::from_str("protocols:\n  grpc:\n  http:\n    traces_url_path: v2/t\n").unwrap(),
    )
    .unwrap();
    assert_eq!(
        c.protocols.grpc.as_ref().unwrap().endpoint,
        "localhost:4317"
    );
    assert_eq!(
        c.protocols.grpc.as_ref().unwrap().max_message_bytes(),
        4 << 20
    );
    let http = c.protocols.http.unwrap();
    assert_eq!(http.endpoint, "localhost:4318");
    assert_eq!(http.traces_url_path, "/v2/t");
    assert_eq!(
        decode_config(&yaml_serde::from_str("protocols: {}").unwrap())
            .unwrap_err()
            .message,
        "must specify at least one protocol when using the OTLP receiver"
    );
    let err = decode_config(&yaml_serde::from_str("protocols:\n  grpcc:\n").unwrap()).unwrap_err();
    assert_eq!(err.path, vec!["protocols", "grpcc"]);
    assert_eq!(
        FACTORY.endpoints(&yaml_serde::from_str("protocols:\n  grpc:\n  http:\n").unwrap()),
        vec!["localhost:4317", "localhost:4318"]
    );
}

/// Slow-loris: many connections trickling a request (headers never finished, or a body
/// far shorter than announced) hold nothing the server needs for others; well-behaved
/// clients keep being served on both protocols meanwhile.
#[tokio::test]
async fn trickling_clients_do_not_starve_well_behaved_ones() {
    use tokio::io::AsyncWriteExt;
    let r = start(BOTH).await;
    let http_addr = r.bound.http.unwrap();
    let grpc_addr = r.bound.grpc.unwrap();
    let stop = CancellationToken::new();
    let mut tricklers = Vec::new();
    for i in 0..64 {
        let addr = if i % 4 == 3 { grpc_addr } else { http_addr };
        let head: &'static [u8] = match i % 4 {
            0 => b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nX-Slow: ",
            1 => b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 100000\r\n\r\n",
            2 => b"POS",
            _ => b"PRI * HTTP/2.0\r\n",
        };
        let stop = stop.clone();
        tricklers.push(tokio::spawn(async move {
            let Ok(mut tcp) = tokio::net::TcpStream::connect(addr).await else {
                return;
            };
            if tcp.write_all(head).await.is_err() {
                return;
            }
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
                if tcp.write_all(b"a").await.is_err() {
                    return;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let client = http_client();
    for _ in 0..5 {
        let resp = client
            .post(format!("http://{http_addr}/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .body(request(1).encode_to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let mut grpc = TraceServiceClient::connect(format!("http://{grpc_addr}"))
        .await
        .unwrap();
    grpc.export(request(1)).await.unwrap();
    assert_eq!(r.traces.item_count(), 6);
    stop.cancel();
    for t in tricklers {
        t.await.unwrap();
    }
    r.receiver.shutdown().await.unwrap();
}
