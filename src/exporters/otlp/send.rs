//! One OTLP/gRPC call and the reading of its status.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::uri::PathAndQuery;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tonic::client::Grpc;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::transport::{Channel, Endpoint};
use tonic::Code;

use super::codec::EncodedCodec;
use super::config::Config;
use crate::component::ComponentError;
use crate::exporters::queue::{Export, ExportError};
use crate::pipeline::Batch;

/// Sends batches over one lazily connected channel.
pub(super) struct GrpcSender {
    channel: Channel,
    compression: Option<CompressionEncoding>,
    metadata: MetadataMap,
    target: String,
    auth_config: Option<crate::extensions::auth::Auth>,
    auth: std::sync::OnceLock<crate::extensions::auth::ClientAuthenticator>,
}

impl GrpcSender {
    pub(super) fn new(config: &Config) -> Result<Self, ComponentError> {
        crate::tls::install_crypto_provider();
        let (target, use_tls) = config.target();
        // TLS, when used, is the connector's: tonic sees a plain `http` endpoint.
        let scheme = "http";
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{target}"))
            .map_err(|e| ComponentError::Other(format!("invalid endpoint {target:?}: {e}")))?
            .timeout(config.timeout);
        if let Some(ka) = &config.keepalive {
            if let Some(t) = ka.time {
                endpoint = endpoint.http2_keep_alive_interval(t);
            }
            if let Some(t) = ka.timeout {
                endpoint = endpoint.keep_alive_timeout(t);
            }
            endpoint = endpoint.keep_alive_while_idle(ka.permit_without_stream);
        }
        if let Some(authority) = &config.authority {
            let uri = format!("{scheme}://{authority}")
                .parse()
                .map_err(|e| ComponentError::Other(format!("invalid authority: {e}")))?;
            endpoint = endpoint.origin(uri);
        }
        let channel = if use_tls {
            let settings = config
                .tls
                .settings()
                .map_err(|e| ComponentError::Other(e.to_string()))?;
            if settings.insecure_skip_verify {
                tracing::warn!(endpoint = %target, "insecure_skip_verify is set: the server certificate is not verified.");
            }
            let connector = crate::tls::client::Connector::new(&settings)
                .map_err(|e| ComponentError::Other(e.to_string()))?;
            endpoint.connect_with_connector_lazy(connector)
        } else {
            endpoint.connect_lazy()
        };
        let mut metadata = MetadataMap::new();
        for (k, v) in &config.headers {
            let key = AsciiMetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
                .map_err(|e| ComponentError::Other(format!("invalid header name {k:?}: {e}")))?;
            let value = AsciiMetadataValue::try_from(v.as_str())
                .map_err(|_| ComponentError::Other(format!("invalid value for header {k:?}")))?;
            metadata.insert(key, value);
        }
        let compression = match config.compression.as_str() {
            "gzip" => Some(CompressionEncoding::Gzip),
            "zstd" => Some(CompressionEncoding::Zstd),
            _ => None,
        };
        Ok(Self {
            channel,
            compression,
            metadata,
            target,
            auth_config: config.auth.clone(),
            auth: std::sync::OnceLock::new(),
        })
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        *request.metadata_mut() = self.metadata.clone();
        if let Some(auth) = self.auth.get() {
            let mut headers = std::mem::take(request.metadata_mut()).into_headers();
            auth.apply(&mut headers);
            *request.metadata_mut() = MetadataMap::from_headers(headers);
        }
        request
    }
}

/// The gRPC method paths of the three OTLP services.
const TRACES_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const METRICS_EXPORT: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
const LOGS_EXPORT: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

impl GrpcSender {
    /// One unary call of `path` with the encoded request `message`, as the generated client
    /// makes it (same compression, limits and readiness error).
    async fn call<R: Message + Default + Send + Sync + 'static>(
        &self,
        path: &'static str,
        message: Bytes,
    ) -> Result<R, tonic::Status> {
        let mut grpc = Grpc::new(self.channel.clone()).max_decoding_message_size(64 << 20);
        if let Some(c) = self.compression {
            grpc = grpc.send_compressed(c);
        }
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::unknown(format!("Service was not ready: {e}")))?;
        let (service, method) = path[1..].split_once('/').unwrap_or((path, "Export"));
        let mut request = self.request(message);
        request
            .extensions_mut()
            .insert(tonic::GrpcMethod::new(service, method));
        grpc.unary(
            request,
            PathAndQuery::from_static(path),
            EncodedCodec::<R>::default(),
        )
        .await
        .map(tonic::Response::into_inner)
    }
}

#[async_trait]
impl Export for GrpcSender {
    async fn start(&self, host: &crate::component::Host) -> Result<(), ComponentError> {
        let resolved =
            crate::extensions::auth::ClientAuthenticator::resolve(host, self.auth_config.as_ref())?;
        if let Some(auth) = resolved {
            let _already = self.auth.set(auth);
        }
        Ok(())
    }

    async fn export(&self, batch: &Batch) -> Result<(), ExportError> {
        let message = Bytes::from(batch.encode_request());
        let result = match batch {
            Batch::Traces(_) => self
                .call::<ExportTraceServiceResponse>(TRACES_EXPORT, message)
                .await
                .map(|r| {
                    r.partial_success
                        .map(|p| (p.rejected_spans, p.error_message))
                }),
            Batch::Metrics(_) => self
                .call::<ExportMetricsServiceResponse>(METRICS_EXPORT, message)
                .await
                .map(|r| {
                    r.partial_success
                        .map(|p| (p.rejected_data_points, p.error_message))
                }),
            Batch::Logs(_) => self
                .call::<ExportLogsServiceResponse>(LOGS_EXPORT, message)
                .await
                .map(|r| {
                    r.partial_success
                        .map(|p| (p.rejected_log_records, p.error_message))
                }),
        };
        match result {
            Ok(partial) => {
                if let Some((rejected, message)) = partial.filter(|(n, m)| *n > 0 || !m.is_empty())
                {
                    tracing::warn!(endpoint = %self.target, message = %message, dropped = rejected, "Partial success response.");
                }
                Ok(())
            }
            Err(status) => Err(classify(&status)),
        }
    }
}

/// otelcol's retryable-code table.
fn classify(status: &tonic::Status) -> ExportError {
    let message = format!(
        "rpc error: code = {:?} desc = {}",
        status.code(),
        status.message()
    );
    let throttle = retry_delay(status.details());
    match status.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => ExportError::Retryable { message, throttle },
        Code::ResourceExhausted if throttle.is_some() => {
            ExportError::Retryable { message, throttle }
        }
        _ => ExportError::permanent(message),
    }
}

#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<Any>,
}

#[derive(Clone, PartialEq, Message)]
struct Any {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

#[derive(Clone, PartialEq, Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// The `google.rpc.RetryInfo` delay in a status's details, if any.
pub fn retry_delay(details: &[u8]) -> Option<Duration> {
    let status = RpcStatus::decode(details).ok()?;
    status
        .details
        .iter()
        .find(|a| a.type_url.ends_with("google.rpc.RetryInfo"))
        .and_then(|a| RetryInfo::decode(a.value.as_slice()).ok())
        .and_then(|r| r.retry_delay)
        .map(|d| Duration::new(d.seconds.max(0) as u64, d.nanos.max(0) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_codes_follow_otelcol() {
        assert!(matches!(
            classify(&tonic::Status::unavailable("x")),
            ExportError::Retryable { .. }
        ));
        assert!(matches!(
            classify(&tonic::Status::deadline_exceeded("x")),
            ExportError::Retryable { .. }
        ));
        assert!(matches!(
            classify(&tonic::Status::invalid_argument("x")),
            ExportError::Permanent { .. }
        ));
        assert!(matches!(
            classify(&tonic::Status::unauthenticated("x")),
            ExportError::Permanent { .. }
        ));
        assert!(matches!(
            classify(&tonic::Status::resource_exhausted("x")),
            ExportError::Permanent { .. }
        ));
    }

    #[test]
    fn resource_exhausted_with_retry_info_is_retryable_after_its_delay() {
        let info = RetryInfo {
            retry_delay: Some(ProtoDuration {
                seconds: 4,
                nanos: 0,
            }),
        };
        let details = RpcStatus {
            code: 8,
            message: "slow down".into(),
            details: vec![Any {
                type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
                value: info.encode_to_vec(),
            }],
        }
        .encode_to_vec();
        let status =
            tonic::Status::with_details(Code::ResourceExhausted, "slow down", details.into());
        assert_eq!(
            classify(&status),
            ExportError::Retryable {
                message: "rpc error: code = ResourceExhausted desc = slow down".into(),
                throttle: Some(Duration::from_secs(4)),
            }
        );
    }
}
