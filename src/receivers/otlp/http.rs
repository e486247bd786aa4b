//! OTLP/HTTP: `POST /v1/traces|metrics|logs` with protobuf or JSON bodies, handled in
//! otelcol's order: method (405), media type (415), body read and decompression (400),
//! decode (400), empty request (200 without the pipeline), pipeline (503/500), reply in the
//! request's encoding.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tokio_util::sync::CancellationToken;

use super::config::Http;
use super::{Sink, Sinks};
use crate::codec::{json, Compression};
use crate::component::ReceiverConsumers;
use crate::extensions::auth::Authenticator;
use crate::pipeline::{Batch, ClientInfo, Signal};
use crate::receivers::status;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// The request body encoding, which is also the response's.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Proto,
    Json,
}

impl Encoding {
    fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
        let media = value.split(';').next()?.trim().to_ascii_lowercase();
        match media.as_str() {
            PROTOBUF => Some(Self::Proto),
            JSON => Some(Self::Json),
            _ => None,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Proto => PROTOBUF,
            Self::Json => JSON,
        }
    }
}

struct Shared {
    config: Http,
    auth: Option<Authenticator>,
    sinks: Sinks,
    response_headers: Vec<(HeaderName, HeaderValue)>,
}

/// Serves until `stop`; in-flight requests finish first.
pub(super) fn serve(
    config: &Http,
    id: &str,
    consumers: &ReceiverConsumers,
    listener: crate::tls::listener::Incoming,
    auth: Option<Authenticator>,
    stop: CancellationToken,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let response_headers = config
        .response_headers
        .iter()
        .filter_map(|(k, v)| {
            Some((
                HeaderName::try_from(k).ok()?,
                HeaderValue::try_from(v).ok()?,
            ))
        })
        .collect();
    let shared = Arc::new(Shared {
        config: config.clone(),
        auth,
        sinks: Sinks::new(id, "http", consumers),
        response_headers,
    });
    let mut router = axum::Router::new();
    for (signal, path) in [
        (Signal::Traces, &config.traces_url_path),
        (Signal::Metrics, &config.metrics_url_path),
        (Signal::Logs, &config.logs_url_path),
    ] {
        let registered = match signal {
            Signal::Traces => shared.sinks.traces.is_some(),
            Signal::Metrics => shared.sinks.metrics.is_some(),
            Signal::Logs => shared.sinks.logs.is_some(),
        };
        if registered {
            router = router.route(
                path,
                axum::routing::any(
                    move |state: State<Arc<Shared>>,
                          peer: ConnectInfo<SocketAddr>,
                          method: Method,
                          headers: HeaderMap,
                          body: Body| {
                        handle(state, peer, method, headers, body, signal)
                    },
                ),
            );
        }
    }
    let app = router
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "404 page not found\n",
            )
        })
        .with_state(shared);
    crate::tls::serve::serve(listener, app, config.timeouts(), stop)
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
    body: Body,
    signal: Signal,
) -> Response {
    let mut response = respond(&shared, peer, &method, &headers, body, signal).await;
    let cors_origin = cors_origin(&shared.config, &headers);
    let h = response.headers_mut();
    for (k, v) in &shared.response_headers {
        h.insert(k.clone(), v.clone());
    }
    if let Some(origin) = cors_origin {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

async fn respond(
    shared: &Shared,
    peer: SocketAddr,
    method: &Method,
    headers: &HeaderMap,
    body: Body,
    signal: Signal,
) -> Response {
    if method == Method::OPTIONS && cors_origin(&shared.config, headers).is_some() {
        return preflight(&shared.config);
    }
    if let Some(auth) = &shared.auth {
        if let Err(e) = auth.check(headers) {
            shared.sinks.auth_failures.increment(1);
            let encoding = Encoding::from_headers(headers).unwrap_or(Encoding::Json);
            return error(encoding, StatusCode::UNAUTHORIZED, &e.to_string());
        }
    }
    if method != Method::POST {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "405 method not allowed, supported: [POST]",
        );
    }
    let Some(encoding) = Encoding::from_headers(headers) else {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "415 unsupported media type, supported: [application/json, application/x-protobuf]",
        );
    };
    let limit = shared.config.max_body_bytes();
    let wire = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(e) => {
            return error(
                encoding,
                StatusCode::BAD_REQUEST,
                &format!("failed to read request body: {e}"),
            )
        }
    };
    let content_encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if !shared.config.allows_encoding(&content_encoding) {
        return error(
            encoding,
            StatusCode::BAD_REQUEST,
            &format!("unsupported Content-Encoding: {content_encoding}"),
        );
    }
    let raw: Bytes = match Compression::parse(&content_encoding) {
        Ok(Compression::None) => wire,
        Ok(c) => match c.decompress(&wire, limit) {
            Ok(v) => Bytes::from(v),
            Err(e) => return error(encoding, StatusCode::BAD_REQUEST, &e.to_string()),
        },
        Err(e) => return error(encoding, StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let batch = match decode(signal, encoding, &raw) {
        Ok(b) => b,
        Err(message) => return error(encoding, StatusCode::BAD_REQUEST, &message),
    };
    let sink: &Sink = match signal {
        Signal::Traces => shared.sinks.traces.as_ref(),
        Signal::Metrics => shared.sinks.metrics.as_ref(),
        Signal::Logs => shared.sinks.logs.as_ref(),
    }
    .expect("routes exist only for signals with a sink");
    let metadata = if shared.config.include_metadata {
        headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect()
    } else {
        Vec::new()
    };
    let client = ClientInfo {
        addr: Some(peer),
        metadata: Arc::new(metadata),
    };
    match sink.deliver(batch, &client).await {
        Ok(()) => success(signal, encoding),
        Err(e) => {
            let grpc = status::grpc_status(&e);
            let mut response = error(encoding, status::http_status(grpc.code()), grpc.message());
            if let Some(secs) = status::retry_after_seconds(&e) {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            response
        }
    }
}

fn decode(signal: Signal, encoding: Encoding, body: &[u8]) -> Result<Batch, String> {
    let err = |e: &dyn std::fmt::Display| format!("failed to unmarshal request body: {e}");
    Ok(match (signal, encoding) {
        (Signal::Traces, Encoding::Proto) => Batch::Traces(
            ExportTraceServiceRequest::decode(body)
                .map_err(|e| err(&e))?
                .resource_spans,
        ),
        (Signal::Metrics, Encoding::Proto) => Batch::Metrics(
            ExportMetricsServiceRequest::decode(body)
                .map_err(|e| err(&e))?
                .resource_metrics,
        ),
        (Signal::Logs, Encoding::Proto) => Batch::Logs(
            ExportLogsServiceRequest::decode(body)
                .map_err(|e| err(&e))?
                .resource_logs,
        ),
        (Signal::Traces, Encoding::Json) => Batch::Traces(
            json::decode_traces(body)
                .map_err(|e| err(&e))?
                .resource_spans,
        ),
        (Signal::Metrics, Encoding::Json) => Batch::Metrics(
            json::decode_metrics(body)
                .map_err(|e| err(&e))?
                .resource_metrics,
        ),
        (Signal::Logs, Encoding::Json) => {
            Batch::Logs(json::decode_logs(body).map_err(|e| err(&e))?.resource_logs)
        }
    })
}

fn success(signal: Signal, encoding: Encoding) -> Response {
    let body = match (encoding, signal) {
        (Encoding::Proto, _) => Vec::new(),
        (Encoding::Json, Signal::Traces) => json::encode(&ExportTraceServiceResponse::default()),
        (Encoding::Json, Signal::Metrics) => json::encode(&ExportMetricsServiceResponse::default()),
        (Encoding::Json, Signal::Logs) => json::encode(&ExportLogsServiceResponse::default()),
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, encoding.content_type())],
        body,
    )
        .into_response()
}

/// An error answer: a `google.rpc.Status` in the request's encoding.
fn error(encoding: Encoding, code: StatusCode, message: &str) -> Response {
    let grpc = status::grpc_code(code) as i32;
    let body = match encoding {
        Encoding::Json => json::encode_status(grpc, message),
        Encoding::Proto => RpcStatus {
            code: grpc,
            message: message.to_owned(),
            details: Vec::new(),
        }
        .encode_to_vec(),
    };
    (
        code,
        [(header::CONTENT_TYPE, encoding.content_type())],
        body,
    )
        .into_response()
}

fn text(code: StatusCode, body: &'static str) -> Response {
    (code, [(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

/// `google.rpc.Status`, the error body OTLP/HTTP specifies.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct RpcStatus {
    /// A `google.rpc.Code`.
    #[prost(int32, tag = "1")]
    pub(crate) code: i32,
    /// Developer-facing message.
    #[prost(string, tag = "2")]
    pub(crate) message: String,
    /// Error details (`google.protobuf.Any`), kept opaque.
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub(crate) details: Vec<Vec<u8>>,
}

/// The `Origin` header echoed back when CORS allows it.
fn cors_origin(config: &Http, headers: &HeaderMap) -> Option<HeaderValue> {
    let cors = config.cors.as_ref()?;
    let origin = headers.get(header::ORIGIN)?;
    let text = origin.to_str().ok()?;
    cors.allowed_origins
        .iter()
        .any(|pattern| wildcard_match(pattern, text))
        .then(|| origin.clone())
}

fn wildcard_match(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((prefix, rest)) => {
            text.starts_with(prefix)
                && (prefix.len()..=text.len())
                    .any(|i| text.is_char_boundary(i) && wildcard_match(rest, &text[i..]))
        }
    }
}

fn preflight(config: &Http) -> Response {
    let cors = config.cors.clone().unwrap_or_default();
    let mut allowed = vec![
        "Accept",
        "Accept-Language",
        "Content-Type",
        "Content-Language",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect::<Vec<_>>();
    allowed.extend(cors.allowed_headers);
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST"),
    );
    if let Ok(v) = HeaderValue::try_from(allowed.join(", ")) {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
    }
    if cors.max_age > 0 {
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from(cors.max_age),
        );
    }
    response
}
