//! OTLP/gRPC: the three collector services on one tonic server.

use std::sync::Arc;

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
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use super::config::Grpc;
use super::{Sink, Sinks};
use crate::component::ReceiverConsumers;
use crate::extensions::auth::Authenticator;
use crate::pipeline::{Batch, ClientInfo};
use crate::receivers::status;

/// One signal's service: the sink plus what to copy from each request.
#[derive(Clone)]
struct Service {
    sink: Sink,
    include_metadata: bool,
    auth: Option<Authenticator>,
    auth_failures: metrics::Counter,
}

impl Service {
    fn client<T>(&self, request: &Request<T>) -> ClientInfo {
        let metadata = if self.include_metadata {
            request
                .metadata()
                .iter()
                .filter_map(|entry| match entry {
                    tonic::metadata::KeyAndValueRef::Ascii(k, v) => {
                        Some((k.as_str().to_ascii_lowercase(), v.to_str().ok()?.to_owned()))
                    }
                    tonic::metadata::KeyAndValueRef::Binary(..) => None,
                })
                .collect()
        } else {
            Vec::new()
        };
        ClientInfo {
            addr: request.remote_addr(),
            metadata: Arc::new(metadata),
        }
    }

    /// The authenticator's verdict on the request's metadata.
    fn authorize(&self, metadata: &tonic::metadata::MetadataMap) -> Result<(), Status> {
        let Some(auth) = &self.auth else {
            return Ok(());
        };
        auth.check(&metadata.clone().into_headers()).map_err(|e| {
            self.auth_failures.increment(1);
            Status::unauthenticated(e.to_string())
        })
    }

    async fn export(
        &self,
        batch: Batch,
        client: ClientInfo,
        auth: Result<(), Status>,
    ) -> Result<(), Status> {
        if let Err(status) = auth {
            self.sink.refuse(batch.item_count() as u64);
            return Err(status);
        }
        self.sink
            .deliver(batch, &client)
            .await
            .map_err(|e| status::grpc_status(&e))
    }
}

#[tonic::async_trait]
impl TraceService for Service {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let client = self.client(&request);
        let auth = self.authorize(request.metadata());
        let batch = Batch::Traces(request.into_inner().resource_spans);
        Self::export(self, batch, client, auth).await?;
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Service {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let client = self.client(&request);
        let auth = self.authorize(request.metadata());
        let batch = Batch::Metrics(request.into_inner().resource_metrics);
        Self::export(self, batch, client, auth).await?;
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Service {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let client = self.client(&request);
        let auth = self.authorize(request.metadata());
        let batch = Batch::Logs(request.into_inner().resource_logs);
        Self::export(self, batch, client, auth).await?;
        Ok(Response::new(ExportLogsServiceResponse::default()))
    }
}

/// Serves until `stop`; in-flight calls finish first.
pub(super) fn serve(
    config: &Grpc,
    id: &str,
    consumers: &ReceiverConsumers,
    listener: crate::tls::listener::Incoming,
    auth: Option<Authenticator>,
    stop: CancellationToken,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let sinks = Sinks::new(id, "grpc", consumers);
    let limit = config.max_message_bytes();
    let auth_failures = sinks.auth_failures.clone();
    let service = |sink: Sink| Service {
        sink,
        include_metadata: config.include_metadata,
        auth: auth.clone(),
        auth_failures: auth_failures.clone(),
    };
    let traces = sinks.traces.map(|s| {
        TraceServiceServer::new(service(s))
            .max_decoding_message_size(limit)
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
    });
    let metrics = sinks.metrics.map(|s| {
        MetricsServiceServer::new(service(s))
            .max_decoding_message_size(limit)
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
    });
    let logs = sinks.logs.map(|s| {
        LogsServiceServer::new(service(s))
            .max_decoding_message_size(limit)
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
    });
    let mut builder = tonic::transport::Server::builder();
    if config.max_concurrent_streams > 0 {
        builder = builder.max_concurrent_streams(config.max_concurrent_streams);
    }
    let router = builder
        .add_optional_service(traces)
        .add_optional_service(metrics)
        .add_optional_service(logs);
    async move {
        if let Err(e) = router
            .serve_with_incoming_shutdown(listener, stop.cancelled_owned())
            .await
        {
            tracing::error!(error = %e, "OTLP gRPC server failed.");
        }
    }
}
