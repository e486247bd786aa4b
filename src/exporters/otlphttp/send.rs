//! One OTLP/HTTP request and the reading of its answer.

use std::time::Duration;

use async_trait::async_trait;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
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

use super::config::{Config, TlsClient};
use crate::codec::{json, Compression};
use crate::component::ComponentError;
use crate::exporters::queue::{Export, ExportError};
use crate::pipeline::{Batch, Signal};

/// Largest response body read (as otelcol).
const MAX_RESPONSE: usize = 64 << 10;

/// Sends batches of one signal to one URL.
pub(super) struct HttpSender {
    client: reqwest::Client,
    url: String,
    json: bool,
    compression: Compression,
    headers: HeaderMap,
    signal: Signal,
    auth_config: Option<crate::extensions::auth::Auth>,
    auth: std::sync::OnceLock<crate::extensions::auth::ClientAuthenticator>,
}

impl HttpSender {
    pub(super) fn new(
        config: &Config,
        url: String,
        signal: Signal,
    ) -> Result<Self, ComponentError> {
        crate::tls::install_crypto_provider();
        let mut headers = HeaderMap::new();
        for (k, v) in &config.headers {
            let name = HeaderName::try_from(k.as_str())
                .map_err(|e| ComponentError::Other(format!("invalid header name {k:?}: {e}")))?;
            let mut value = HeaderValue::try_from(v.as_str())
                .map_err(|_| ComponentError::Other(format!("invalid value for header {k:?}")))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let user_agent = format!(
            "otelpipe/{} ({}/{})",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::env::consts::ARCH
        );
        let mut builder = reqwest::Client::builder()
            .user_agent(user_agent)
            .pool_max_idle_per_host(
                config
                    .max_idle_conns_per_host
                    .or(config.max_idle_conns)
                    .unwrap_or(100),
            )
            .pool_idle_timeout(config.idle_conn_timeout.unwrap_or(Duration::from_secs(90)));
        builder = tls(builder, &config.tls)?;
        if let Some(proxy) = &config.proxy_url {
            let proxy = reqwest::Proxy::all(proxy)
                .map_err(|e| ComponentError::Other(format!("invalid proxy_url: {e}")))?;
            builder = builder.proxy(proxy);
        }
        let client = builder
            .build()
            .map_err(|e| ComponentError::Other(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            client,
            url,
            json: config.encoding == "json",
            compression: Compression::parse(&config.compression).unwrap_or(Compression::Gzip),
            headers,
            signal,
            auth_config: config.auth.clone(),
            auth: std::sync::OnceLock::new(),
        })
    }

    fn encode(&self, batch: &Batch) -> Vec<u8> {
        match (batch, self.json) {
            (_, false) => batch.encode_request(),
            (Batch::Traces(rs), true) => json::encode(&ExportTraceServiceRequest {
                resource_spans: rs.clone(),
            }),
            (Batch::Metrics(rm), true) => json::encode(&ExportMetricsServiceRequest {
                resource_metrics: rm.clone(),
            }),
            (Batch::Logs(rl), true) => json::encode(&ExportLogsServiceRequest {
                resource_logs: rl.clone(),
            }),
        }
    }
}

/// Applies client TLS settings: the rustls config is built here, once.
fn tls(
    builder: reqwest::ClientBuilder,
    tls: &TlsClient,
) -> Result<reqwest::ClientBuilder, ComponentError> {
    let settings = tls
        .settings()
        .map_err(|e| ComponentError::Other(e.to_string()))?;
    if settings.insecure_skip_verify {
        tracing::warn!("insecure_skip_verify is set: the server certificate is not verified.");
    }
    let config = settings
        .build(crate::tls::client::ALPN_HTTP)
        .map_err(|e| ComponentError::Other(e.to_string()))?;
    Ok(builder.tls_backend_preconfigured(config))
}

#[async_trait]
impl Export for HttpSender {
    async fn start(&self, host: &crate::component::Host) -> Result<(), ComponentError> {
        let resolved =
            crate::extensions::auth::ClientAuthenticator::resolve(host, self.auth_config.as_ref())?;
        if let Some(auth) = resolved {
            let _already = self.auth.set(auth);
        }
        Ok(())
    }

    async fn export(&self, batch: &Batch) -> Result<(), ExportError> {
        let body = self.encode(batch);
        let body = self.compression.compress(&body);
        let mut headers = self.headers.clone();
        if let Some(auth) = self.auth.get() {
            auth.apply(&mut headers);
        }
        let mut request = self.client.post(&self.url).headers(headers);
        request = request.header(
            http::header::CONTENT_TYPE,
            if self.json {
                "application/json"
            } else {
                "application/x-protobuf"
            },
        );
        if let Some(encoding) = self.compression.header_value() {
            request = request.header(http::header::CONTENT_ENCODING, encoding);
        }
        let response =
            request.body(body).send().await.map_err(|e| {
                ExportError::retryable(format!("failed to make an HTTP request: {e}"))
            })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = read_limited(response).await;
        if status.is_success() {
            self.partial_success(&content_type, &body);
            return Ok(());
        }
        let detail = rpc_message(&body)
            .map(|m| format!(", Message={m}"))
            .unwrap_or_default();
        let message = format!(
            "error exporting items, request to {} responded with HTTP Status Code {}{detail}",
            self.url,
            status.as_u16()
        );
        match status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                Err(ExportError::Retryable {
                    message,
                    throttle: retry_after,
                })
            }
            StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => {
                Err(ExportError::retryable(message))
            }
            _ => Err(ExportError::permanent(message)),
        }
    }
}

impl HttpSender {
    /// Logs a non-empty `partial_success` (not retried, not counted as failed).
    fn partial_success(&self, content_type: &str, body: &[u8]) {
        let media = content_type.split(';').next().unwrap_or("").trim();
        let (rejected, message) = match (media, self.signal) {
            ("application/x-protobuf", Signal::Traces) => ExportTraceServiceResponse::decode(body)
                .ok()
                .and_then(|r| r.partial_success)
                .map(|p| (p.rejected_spans, p.error_message)),
            ("application/x-protobuf", Signal::Metrics) => {
                ExportMetricsServiceResponse::decode(body)
                    .ok()
                    .and_then(|r| r.partial_success)
                    .map(|p| (p.rejected_data_points, p.error_message))
            }
            ("application/x-protobuf", Signal::Logs) => ExportLogsServiceResponse::decode(body)
                .ok()
                .and_then(|r| r.partial_success)
                .map(|p| (p.rejected_log_records, p.error_message)),
            ("application/json", Signal::Traces) => {
                serde_json::from_slice::<ExportTraceServiceResponse>(body)
                    .ok()
                    .and_then(|r| r.partial_success)
                    .map(|p| (p.rejected_spans, p.error_message))
            }
            ("application/json", Signal::Metrics) => {
                serde_json::from_slice::<ExportMetricsServiceResponse>(body)
                    .ok()
                    .and_then(|r| r.partial_success)
                    .map(|p| (p.rejected_data_points, p.error_message))
            }
            ("application/json", Signal::Logs) => {
                serde_json::from_slice::<ExportLogsServiceResponse>(body)
                    .ok()
                    .and_then(|r| r.partial_success)
                    .map(|p| (p.rejected_log_records, p.error_message))
            }
            _ => None,
        }
        .unwrap_or_default();
        if rejected > 0 || !message.is_empty() {
            tracing::warn!(url = %self.url, message = %message, dropped = rejected, "Partial success response.");
        }
    }
}

async fn read_limited(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_RESPONSE.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_RESPONSE {
            break;
        }
    }
    body
}

/// The message of a protobuf `google.rpc.Status` body, if the body is one.
fn rpc_message(body: &[u8]) -> Option<String> {
    #[derive(Clone, PartialEq, Message)]
    struct Status {
        #[prost(int32, tag = "1")]
        code: i32,
        #[prost(string, tag = "2")]
        message: String,
    }
    let status = Status::decode(body).ok()?;
    (!status.message.is_empty()).then_some(status.message)
}
