//! OTLP sinks behind the collector under test: record every request (headers, items) and
//! answer from a script (e.g. 503 twice, then 200), on 127.0.0.1:0, on their own runtime.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use otelpipe::codec::{json, Compression};
use otelpipe::pipeline::Batch;
use prost::Message;
use tokio_util::sync::CancellationToken;

/// One request as the sink saw it.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    /// HTTP path or gRPC service.
    pub(crate) path: String,
    /// Lowercased header / metadata names.
    pub(crate) headers: HashMap<String, String>,
    /// The decoded data (empty when the request was refused by the script).
    pub(crate) batch: Batch,
    /// The status the sink answered.
    pub(crate) status: u16,
}

/// A scripted answer: HTTP status and extra headers (for gRPC: 200 = OK, 503 = UNAVAILABLE,
/// 400 = INVALID_ARGUMENT).
#[derive(Clone, Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(&'static str, String)>,
}

#[derive(Default)]
struct State {
    received: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Answer>>,
    /// The API token of a Dynatrace stand-in (None: a plain OTLP sink).
    dynatrace: Option<String>,
    /// Why the Dynatrace stand-in refused requests or rejected data points.
    refusals: Mutex<Vec<String>>,
}

impl State {
    fn next_answer(&self) -> Answer {
        self.script.lock().unwrap().pop_front().unwrap_or(Answer {
            status: 200,
            headers: Vec::new(),
        })
    }
}

/// A running sink; stops on drop.
pub(crate) struct Sink {
    pub(crate) addr: SocketAddr,
    state: Arc<State>,
    stop: CancellationToken,
    _runtime: tokio::runtime::Runtime,
}

impl Sink {
    /// An OTLP/HTTP sink.
    pub(crate) fn http() -> Self {
        Self::http_at("127.0.0.1:0".parse().unwrap())
    }

    /// An OTLP/HTTP sink on `addr` (a downstream that comes back on its old port).
    pub(crate) fn http_at(addr: SocketAddr) -> Self {
        Self::start(addr, |listener, state, stop| async move {
            let app = axum::Router::new()
                .route("/{*path}", axum::routing::post(handle_http))
                .with_state(state);
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
                .unwrap();
        })
    }

    /// An OTLP/HTTP sink that enforces what Dynatrace's OTLP ingest documents (the spec's
    /// §12): `Authorization: Api-Token <token>` or 401, `application/x-protobuf` or 415, a body
    /// that decodes or 400, at most 8 MB of traces, 4 MB (uncompressed) of metrics and 10 MB
    /// of logs or 413; monotonic cumulative sums, cumulative histograms and summaries are
    /// rejected data points (200 with `partial_success`). Scripted answers (e.g. 429) come
    /// after those checks.
    pub(crate) fn dynatrace(token: &str) -> Self {
        let state = State {
            dynatrace: Some(token.to_owned()),
            ..State::default()
        };
        Self::start_with_state(
            "127.0.0.1:0".parse().unwrap(),
            state,
            |listener, state, stop| async move {
                // Its own limits, not axum's 2 MB default, decide what is too large.
                let app = axum::Router::new()
                    .route("/{*path}", axum::routing::post(handle_http))
                    .layer(axum::extract::DefaultBodyLimit::max(64 << 20))
                    .with_state(state);
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await
                    .unwrap();
            },
        )
    }

    /// Why the Dynatrace stand-in refused requests or rejected data points, in order.
    pub(crate) fn refusals(&self) -> Vec<String> {
        self.state.refusals.lock().unwrap().clone()
    }

    /// An OTLP/gRPC sink.
    pub(crate) fn grpc() -> Self {
        Self::start(
            "127.0.0.1:0".parse().unwrap(),
            |listener, state, stop| async move {
                let svc = Grpc(state);
                tonic::transport::Server::builder()
                    .add_service(
                        TraceServiceServer::new(svc.clone())
                            .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
                    )
                    .add_service(
                        MetricsServiceServer::new(svc.clone())
                            .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
                    )
                    .add_service(
                        LogsServiceServer::new(svc)
                            .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
                    )
                    .serve_with_incoming_shutdown(
                        tokio_stream::wrappers::TcpListenerStream::new(listener),
                        stop.cancelled_owned(),
                    )
                    .await
                    .unwrap();
            },
        )
    }

    fn start<F, Fut>(addr: SocketAddr, serve: F) -> Self
    where
        F: FnOnce(tokio::net::TcpListener, Arc<State>, CancellationToken) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        Self::start_with_state(addr, State::default(), serve)
    }

    fn start_with_state<F, Fut>(addr: SocketAddr, state: State, serve: F) -> Self
    where
        F: FnOnce(tokio::net::TcpListener, Arc<State>, CancellationToken) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(state);
        let stop = CancellationToken::new();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(addr))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.spawn(serve(listener, state.clone(), stop.clone()));
        Self {
            addr,
            state,
            stop,
            _runtime: runtime,
        }
    }

    /// Answers the next requests with `answers`, in order, then 200 again.
    pub(crate) fn script(&self, answers: Vec<Answer>) {
        self.state.script.lock().unwrap().extend(answers);
    }

    /// Every request so far.
    pub(crate) fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// The log records accepted (answered 200) so far, in arrival order.
    pub(crate) fn log_records(&self) -> Vec<opentelemetry_proto::tonic::logs::v1::LogRecord> {
        self.received()
            .into_iter()
            .filter(|r| r.status == 200)
            .flat_map(|r| match r.batch {
                Batch::Logs(rl) => rl,
                _ => Vec::new(),
            })
            .flat_map(|rl| rl.scope_logs)
            .flat_map(|sl| sl.log_records)
            .collect()
    }

    /// Items accepted (answered 200) so far.
    pub(crate) fn accepted_items(&self) -> usize {
        self.received()
            .iter()
            .filter(|r| r.status == 200)
            .map(|r| r.batch.item_count())
            .sum()
    }

    /// Waits up to 30 s until `n` items were accepted.
    pub(crate) fn wait_for_items(&self, n: usize) -> usize {
        for _ in 0..1500 {
            if self.accepted_items() >= n {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        self.accepted_items()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn handle_http(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let names: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    if let Some(token) = &state.dynatrace {
        if let Err((status, reason)) = dynatrace_accepts(token, uri.path(), &names, &body) {
            return refuse(&state, uri.path(), names, status, reason);
        }
    }
    let encoding = names.get("content-encoding").cloned().unwrap_or_default();
    let raw = Compression::parse(&encoding)
        .unwrap()
        .decompress(&body, 64 << 20)
        .unwrap();
    let is_json = names
        .get("content-type")
        .is_some_and(|c| c.starts_with("application/json"));
    let path = uri.path().to_owned();
    let signal = path.rsplit('/').next().unwrap_or_default();
    let batch = match (signal, is_json) {
        ("traces", false) => Batch::Traces(
            ExportTraceServiceRequest::decode(raw.as_slice())
                .unwrap()
                .resource_spans,
        ),
        ("metrics", false) => Batch::Metrics(
            ExportMetricsServiceRequest::decode(raw.as_slice())
                .unwrap()
                .resource_metrics,
        ),
        ("logs", false) => Batch::Logs(
            ExportLogsServiceRequest::decode(raw.as_slice())
                .unwrap()
                .resource_logs,
        ),
        ("traces", true) => Batch::Traces(json::decode_traces(&raw).unwrap().resource_spans),
        ("metrics", true) => Batch::Metrics(json::decode_metrics(&raw).unwrap().resource_metrics),
        ("logs", true) => Batch::Logs(json::decode_logs(&raw).unwrap().resource_logs),
        (other, _) => panic!("unexpected path {other}"),
    };
    let rejected = match (&state.dynatrace, &batch) {
        (Some(_), Batch::Metrics(resources)) => unsupported_points(resources),
        _ => 0,
    };
    let answer = state.next_answer();
    state.received.lock().unwrap().push(Received {
        path,
        headers: names,
        batch,
        status: answer.status,
    });
    let mut out = HeaderMap::new();
    for (k, v) in answer.headers {
        out.insert(k, v.parse().unwrap());
    }
    let body = if answer.status == 200 && rejected > 0 {
        let reason = "UNSUPPORTED_METRIC_TYPE_MONOTONIC_CUMULATIVE_SUM";
        state
            .refusals
            .lock()
            .unwrap()
            .push(format!("{rejected} data points: {reason}"));
        ExportMetricsServiceResponse {
            partial_success: Some(
                opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsPartialSuccess {
                    rejected_data_points: rejected as i64,
                    error_message: reason.to_owned(),
                },
            ),
        }
        .encode_to_vec()
    } else if answer.status == 200 {
        Vec::new()
    } else {
        // A google.rpc.Status, as OTLP servers answer errors.
        #[derive(Clone, PartialEq, Message)]
        struct Status {
            #[prost(int32, tag = "1")]
            code: i32,
            #[prost(string, tag = "2")]
            message: String,
        }
        Status {
            code: 3,
            message: format!("sink answered {}", answer.status),
        }
        .encode_to_vec()
    };
    out.insert("content-type", "application/x-protobuf".parse().unwrap());
    (StatusCode::from_u16(answer.status).unwrap(), out, body)
}

/// The largest request Dynatrace takes per signal: traces 8 MB (also compressed), metrics
/// 4 MB uncompressed, logs 10 MB.
const DYNATRACE_LIMITS: [(&str, usize); 3] = [
    ("traces", 8 << 20),
    ("metrics", 4 << 20),
    ("logs", 10 << 20),
];

/// Dynatrace's checks before the data: `Err((status, reason))` when it refuses the request.
fn dynatrace_accepts(
    token: &str,
    path: &str,
    headers: &HashMap<String, String>,
    body: &[u8],
) -> Result<(), (u16, String)> {
    let signal = path.rsplit('/').next().unwrap_or_default();
    let Some((_, limit)) = DYNATRACE_LIMITS.iter().find(|(s, _)| *s == signal) else {
        return Err((404, format!("no OTLP endpoint at {path}")));
    };
    if !path.contains("/api/v2/otlp/v1/") {
        return Err((404, format!("no OTLP endpoint at {path}")));
    }
    if headers.get("authorization").map(String::as_str) != Some(&format!("Api-Token {token}")) {
        return Err((401, "missing or wrong Authorization: Api-Token".to_owned()));
    }
    let content_type = headers.get("content-type").map(String::as_str);
    if content_type != Some("application/x-protobuf") {
        return Err((
            415,
            format!("content type {content_type:?} is not protobuf"),
        ));
    }
    if body.len() > *limit {
        return Err((
            413,
            format!("{} bytes of {signal} over the limit", body.len()),
        ));
    }
    let encoding = headers.get("content-encoding").cloned().unwrap_or_default();
    let raw = Compression::parse(&encoding)
        .map_err(|e| (400, format!("content encoding: {e}")))?
        .decompress(body, limit + 1)
        .map_err(|e| (400, format!("body: {e}")))?;
    if raw.len() > *limit {
        return Err((
            413,
            format!("{} bytes of {signal} over the limit", raw.len()),
        ));
    }
    let decodes = match signal {
        "traces" => ExportTraceServiceRequest::decode(raw.as_slice()).is_ok(),
        "metrics" => ExportMetricsServiceRequest::decode(raw.as_slice()).is_ok(),
        _ => ExportLogsServiceRequest::decode(raw.as_slice()).is_ok(),
    };
    if !decodes {
        return Err((400, format!("malformed {signal} protobuf")));
    }
    Ok(())
}

/// Data points Dynatrace does not ingest: monotonic cumulative sums, cumulative histograms
/// and exponential histograms, summaries.
fn unsupported_points(
    resources: &[opentelemetry_proto::tonic::metrics::v1::ResourceMetrics],
) -> usize {
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    const CUMULATIVE: i32 = 2;
    resources
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .map(|m| match &m.data {
            Some(Data::Sum(s)) if s.is_monotonic && s.aggregation_temporality == CUMULATIVE => {
                s.data_points.len()
            }
            Some(Data::Histogram(h)) if h.aggregation_temporality == CUMULATIVE => {
                h.data_points.len()
            }
            Some(Data::ExponentialHistogram(h)) if h.aggregation_temporality == CUMULATIVE => {
                h.data_points.len()
            }
            Some(Data::Summary(s)) => s.data_points.len(),
            _ => 0,
        })
        .sum()
}

/// Records a refused request and answers it as Dynatrace does: the status, a text reason.
fn refuse(
    state: &State,
    path: &str,
    headers: HashMap<String, String>,
    status: u16,
    reason: String,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    state.received.lock().unwrap().push(Received {
        path: path.to_owned(),
        headers,
        batch: Batch::Traces(Vec::new()),
        status,
    });
    state
        .refusals
        .lock()
        .unwrap()
        .push(format!("{status}: {reason}"));
    let mut out = HeaderMap::new();
    out.insert("content-type", "text/plain".parse().unwrap());
    (
        StatusCode::from_u16(status).unwrap(),
        out,
        reason.into_bytes(),
    )
}

#[derive(Clone)]
struct Grpc(Arc<State>);

impl Grpc {
    fn record<T>(
        &self,
        path: &str,
        request: &tonic::Request<T>,
        batch: Batch,
    ) -> Result<(), tonic::Status> {
        let headers = request
            .metadata()
            .iter()
            .filter_map(|e| match e {
                tonic::metadata::KeyAndValueRef::Ascii(k, v) => {
                    Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned()))
                }
                tonic::metadata::KeyAndValueRef::Binary(..) => None,
            })
            .collect();
        let answer = self.0.next_answer();
        self.0.received.lock().unwrap().push(Received {
            path: path.to_owned(),
            headers,
            batch,
            status: answer.status,
        });
        match answer.status {
            200 => Ok(()),
            400 => Err(tonic::Status::invalid_argument("sink refused")),
            _ => Err(tonic::Status::unavailable("sink unavailable")),
        }
    }
}

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        r: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let batch = Batch::Traces(r.get_ref().resource_spans.clone());
        self.record("traces", &r, batch)?;
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Grpc {
    async fn export(
        &self,
        r: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let batch = Batch::Metrics(r.get_ref().resource_metrics.clone());
        self.record("metrics", &r, batch)?;
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Grpc {
    async fn export(
        &self,
        r: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let batch = Batch::Logs(r.get_ref().resource_logs.clone());
        self.record("logs", &r, batch)?;
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}
