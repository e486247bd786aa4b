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

/// A request on a raw HTTP/1.1 keep-alive connection; returns the status code, having
/// read the whole response.
async fn raw_post<S>(tcp: &mut S) -> u16
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = request(1).encode_to_vec();
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&body).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let end = loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf))
            .await
            .expect("the response head arrives")
            .unwrap();
        assert!(n > 0, "connection closed before the response");
        got.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while got.len() < end + length {
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed inside the response body");
        got.extend_from_slice(&buf[..n]);
    }
    head[9..12].parse().unwrap()
}

/// Waits (at most 10 s) for the server to close `tcp`: EOF or a reset.
async fn closed_by_server<S: tokio::io::AsyncRead + Unpin>(tcp: &mut S) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// Slow-loris: a client trickling its request head is cut off once `read_header_timeout`
/// has passed since it connected, however steadily it sends; a well-behaved client is
/// served meanwhile.
#[tokio::test]
async fn a_trickled_request_head_is_cut_off_after_read_header_timeout() {
    use tokio::io::AsyncWriteExt;
    let r =
        start("protocols:\n  http:\n    endpoint: 127.0.0.1:0\n    read_header_timeout: 300ms\n")
            .await;
    let addr = r.bound.http.unwrap();
    let connected = std::time::Instant::now();
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let trickle = tokio::spawn(async move {
        for _ in 0..500 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if slow.write_all(b"a").await.is_err() {
                break;
            }
        }
        let closed = closed_by_server(&mut slow).await;
        (closed, connected.elapsed())
    });
    let mut good = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert_eq!(raw_post(&mut good).await, 200);
    let (closed, after) = trickle.await.unwrap();
    assert!(closed, "the trickling connection is closed");
    assert!(
        after >= Duration::from_millis(300),
        "not before the timeout"
    );
    // A request head sent at once on a new connection is still served.
    let mut again = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert_eq!(raw_post(&mut again).await, 200);
    assert_eq!(r.traces.item_count(), 2);
    r.receiver.shutdown().await.unwrap();
}

/// `idle_timeout`: a keep-alive connection that sent no further request is closed (not
/// before the timeout), and a client that reconnects is served.
#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_idle_timeout() {
    let r =
        start("protocols:\n  http:\n    endpoint: 127.0.0.1:0\n    idle_timeout: 300ms\n").await;
    let addr = r.bound.http.unwrap();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert_eq!(raw_post(&mut tcp).await, 200);
    assert_eq!(
        raw_post(&mut tcp).await,
        200,
        "the connection is kept alive"
    );
    let answered = std::time::Instant::now();
    assert!(
        closed_by_server(&mut tcp).await,
        "the idle connection is closed"
    );
    assert!(answered.elapsed() >= Duration::from_millis(300));
    let client = http_client();
    let resp = client
        .post(format!("http://{addr}/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .body(request(1).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(r.traces.item_count(), 3);
    r.receiver.shutdown().await.unwrap();
}

/// `read_timeout`: a body not complete in time is answered 400 (as otelcol's failed body
/// read), `write_timeout`: an answer not ready in time closes the connection without one.
#[tokio::test]
async fn read_and_write_timeouts_end_slow_requests() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let r = start("protocols:\n  http:\n    endpoint: 127.0.0.1:0\n    read_timeout: 300ms\n    write_timeout: 2s\n").await;
    let addr = r.bound.http.unwrap();
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the connection ends after the answer");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("failed to read request body"), "{answer}");
    assert!(answer.contains("i/o timeout"), "{answer}");
    r.receiver.shutdown().await.unwrap();

    // The pipeline holds the request longer than write_timeout.
    let gate = Arc::new(Gate {
        open: tokio::sync::Semaphore::new(0),
        capture: Capture::new(),
    });
    let mut consumers = ReceiverConsumers::default();
    consumers.set(Signal::Traces, gate.clone());
    let listener = tls_listener::bind("127.0.0.1:0", None, ALPN_HTTP)
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let config = Http {
        write_timeout: Duration::from_millis(300),
        ..Http::default()
    };
    let stop = CancellationToken::new();
    let server = tokio::spawn(http::serve(
        &config,
        "otlp",
        &consumers,
        listener,
        None,
        stop.clone(),
    ));
    let mut held = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = request(1).encode_to_vec();
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    held.write_all(head.as_bytes()).await.unwrap();
    held.write_all(&body).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), held.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the connection is closed");
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    // The handler still hands the data on once the pipeline takes it, as Go's does.
    gate.open.add_permits(1);
    for _ in 0..500 {
        if gate.capture.item_count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(gate.capture.item_count(), 1);
    stop.cancel();
    server.await.unwrap();
}

/// A consumer that takes a batch only once given a permit.
struct Gate {
    open: tokio::sync::Semaphore,
    capture: Capture,
}

#[async_trait]
impl crate::pipeline::Consumer for Gate {
    async fn consume(&self, batch: Batch, client: &ClientInfo) -> Result<(), ConsumeError> {
        let _permit = self.open.acquire().await;
        self.capture.consume(batch, client).await
    }
}

/// A listener bounded to `max` connections serving OTLP/HTTP and gRPC, counting refusals.
struct Bounded {
    http: std::net::SocketAddr,
    grpc: std::net::SocketAddr,
    http_refused: Arc<std::sync::atomic::AtomicU64>,
    grpc_refused: Arc<std::sync::atomic::AtomicU64>,
    traces: Arc<Capture>,
    stop: CancellationToken,
    servers: Vec<tokio::task::JoinHandle<()>>,
}

async fn start_bounded(max: usize) -> Bounded {
    use std::sync::atomic::AtomicU64;
    let traces = Arc::new(Capture::new());
    let mut consumers = ReceiverConsumers::default();
    consumers.set(Signal::Traces, traces.clone());
    let stop = CancellationToken::new();
    let http_refused = Arc::new(AtomicU64::new(0));
    let grpc_refused = Arc::new(AtomicU64::new(0));
    let limit = |counter: &Arc<AtomicU64>| {
        Some(tls_listener::ConnectionLimit::new(
            max,
            metrics::Counter::from_arc(counter.clone()),
        ))
    };
    let http_listener =
        tls_listener::bind_limited("127.0.0.1:0", None, ALPN_HTTP, limit(&http_refused))
            .await
            .unwrap();
    let grpc_listener =
        tls_listener::bind_limited("127.0.0.1:0", None, ALPN_GRPC, limit(&grpc_refused))
            .await
            .unwrap();
    let bounded_http = http_listener.local_addr().unwrap();
    let bounded_grpc = grpc_listener.local_addr().unwrap();
    let servers = vec![
        tokio::spawn(http::serve(
            &Http::default(),
            "otlp",
            &consumers,
            http_listener,
            None,
            stop.clone(),
        )),
        tokio::spawn(grpc::serve(
            &Grpc::default(),
            "otlp",
            &consumers,
            grpc_listener,
            None,
            stop.clone(),
        )),
    ];
    Bounded {
        http: bounded_http,
        grpc: bounded_grpc,
        http_refused,
        grpc_refused,
        traces,
        stop,
        servers,
    }
}

/// Connections over the bound are closed at once and counted; the ones already open keep
/// being served, and a slot freed by a closed connection is taken by the next one.
#[tokio::test]
async fn connections_over_the_bound_are_closed_and_counted() {
    use std::sync::atomic::Ordering;
    let b = start_bounded(2).await;
    // HTTP: two connections take the slots (accepted in order), the third is closed.
    let mut first = tokio::net::TcpStream::connect(b.http).await.unwrap();
    let mut second = tokio::net::TcpStream::connect(b.http).await.unwrap();
    let mut third = tokio::net::TcpStream::connect(b.http).await.unwrap();
    assert!(closed_by_server(&mut third).await, "over the bound: closed");
    assert_eq!(b.http_refused.load(Ordering::Relaxed), 1);
    assert_eq!(raw_post(&mut first).await, 200);
    assert_eq!(raw_post(&mut second).await, 200);
    drop(first);
    let mut served = false;
    for _ in 0..500 {
        let mut next = tokio::net::TcpStream::connect(b.http).await.unwrap();
        use tokio::io::AsyncWriteExt;
        let probe = b"GET /v1/traces HTTP/1.1\r\nHost: x\r\n\r\n";
        if next.write_all(probe).await.is_ok() && !closed_at_once(&mut next).await {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(served, "the freed slot is used by a later connection");
    assert_eq!(raw_post(&mut second).await, 200);

    // gRPC: one client and one idle connection take the slots; a second client cannot
    // connect while the first keeps exporting.
    let url = format!("http://{}", b.grpc);
    let mut client = TraceServiceClient::connect(url.clone()).await.unwrap();
    client.export(request(1)).await.unwrap();
    let idle = tokio::net::TcpStream::connect(b.grpc).await.unwrap();
    let mut refused = tokio::net::TcpStream::connect(b.grpc).await.unwrap();
    assert!(
        closed_by_server(&mut refused).await,
        "over the bound: closed"
    );
    assert_eq!(b.grpc_refused.load(Ordering::Relaxed), 1);
    client.export(request(1)).await.unwrap();
    drop(idle);
    let mut later = None;
    for _ in 0..500 {
        if let Ok(mut c) = TraceServiceClient::connect(url.clone()).await {
            if c.export(request(1)).await.is_ok() {
                later = Some(c);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(later.is_some(), "the freed slot is used by a later client");
    assert_eq!(b.traces.item_count(), 3 + 3);
    drop((client, later, second));
    b.stop.cancel();
    for server in b.servers {
        server.await.unwrap();
    }
}

/// Whether the server answers `tcp` (a response arrives) rather than closing it unread.
async fn closed_at_once(tcp: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 64];
    match tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf)).await {
        Ok(Ok(n)) => n == 0,
        Ok(Err(_)) | Err(_) => true,
    }
}

/// `max_concurrent_streams: 2` is advertised in the server's HTTP/2 SETTINGS; a client
/// that has two calls open waits before opening a third, which goes out once one ends.
#[tokio::test]
async fn grpc_max_concurrent_streams_is_advertised_and_holds_further_streams() {
    use bytes::Bytes;
    let r =
        start("protocols:\n  grpc:\n    endpoint: 127.0.0.1:0\n    max_concurrent_streams: 2\n")
            .await;
    let tcp = tokio::net::TcpStream::connect(r.bound.grpc.unwrap())
        .await
        .unwrap();
    let (mut h2, connection) = h2::client::handshake(tcp).await.unwrap();
    let driver = tokio::spawn(connection);
    let call = || {
        axum::http::Request::post(
            "http://localhost/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        )
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap()
    };
    let message = |spans: usize| {
        let encoded = request(spans).encode_to_vec();
        let mut framed = vec![0u8];
        framed.extend_from_slice(&u32::try_from(encoded.len()).unwrap().to_be_bytes());
        framed.extend_from_slice(&encoded);
        Bytes::from(framed)
    };
    // Two calls open, their messages not sent yet.
    h2 = h2.ready().await.unwrap();
    let (first, mut first_body) = h2.send_request(call(), false).unwrap();
    h2 = h2.ready().await.unwrap();
    let (second, mut second_body) = h2.send_request(call(), false).unwrap();
    let mut advertised = h2.current_max_send_streams();
    for _ in 0..500 {
        if advertised != usize::MAX {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        advertised = h2.current_max_send_streams();
    }
    assert_eq!(advertised, 2, "SETTINGS_MAX_CONCURRENT_STREAMS");
    let third = tokio::spawn(async move {
        let mut h2 = h2.ready().await.unwrap();
        let (response, mut body) = h2.send_request(call(), false).unwrap();
        body.send_data(message(4), true).unwrap();
        response.await.unwrap().status()
    });
    // The third stream has not gone out while two are open.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!third.is_finished());
    assert_eq!(r.traces.item_count(), 0);
    first_body.send_data(message(1), true).unwrap();
    assert_eq!(first.await.unwrap().status(), 200);
    assert_eq!(third.await.unwrap(), 200);
    second_body.send_data(message(2), true).unwrap();
    assert_eq!(second.await.unwrap().status(), 200);
    assert_eq!(r.traces.item_count(), 1 + 4 + 2);
    driver.abort();
    r.receiver.shutdown().await.unwrap();
}

/// On a TLS listener the bound applies as connections are accepted: one over it is closed
/// before any handshake, while the open TLS connection keeps being served.
#[tokio::test]
async fn a_tls_listener_closes_connections_over_the_bound_before_the_handshake() {
    use std::sync::atomic::{AtomicU64, Ordering};
    crate::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (crt, key) = (dir.path().join("s.crt"), dir.path().join("s.key"));
    std::fs::write(&crt, cert.cert.pem()).unwrap();
    std::fs::write(&key, cert.signing_key.serialize_pem()).unwrap();
    let tls: crate::tls::server::Config = yaml_serde::from_str(&format!(
        "cert_file: {}\nkey_file: {}\n",
        crt.display(),
        key.display()
    ))
    .unwrap();
    let refused = Arc::new(AtomicU64::new(0));
    let limit = tls_listener::ConnectionLimit::new(1, metrics::Counter::from_arc(refused.clone()));
    let listener = tls_listener::bind_limited("127.0.0.1:0", Some(&tls), ALPN_HTTP, Some(limit))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let traces = Arc::new(Capture::new());
    let mut consumers = ReceiverConsumers::default();
    consumers.set(Signal::Traces, traces.clone());
    let stop = CancellationToken::new();
    let server = tokio::spawn(http::serve(
        &Http::default(),
        "otlp",
        &consumers,
        listener,
        None,
        stop.clone(),
    ));

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut first = connector.connect(name, tcp).await.unwrap();
    assert_eq!(raw_post(&mut first).await, 200);
    // Sends nothing: a listener waiting for its handshake would keep it open until the
    // handshake timeout.
    let mut over = tokio::net::TcpStream::connect(addr).await.unwrap();
    let closed = tokio::time::timeout(
        tls_listener::HANDSHAKE_TIMEOUT / 2,
        closed_by_server(&mut over),
    )
    .await;
    assert!(matches!(closed, Ok(true)), "over the bound: closed at once");
    assert_eq!(refused.load(Ordering::Relaxed), 1);
    assert_eq!(raw_post(&mut first).await, 200);
    assert_eq!(traces.item_count(), 2);
    drop(first);
    stop.cancel();
    server.await.unwrap();
}
