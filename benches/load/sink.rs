//! The load tool's sink: an OTLP/gRPC server behind the collector that counts what arrives
//! and checks every item's id, so losses and duplicates show.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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
use opentelemetry_proto::tonic::metrics::v1::metric;
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding::Gzip;
use tonic::{Request, Response, Status};

/// What the sink saw.
#[derive(Default)]
pub(crate) struct Tally {
    /// Items received, duplicates included.
    pub(crate) received: AtomicU64,
    /// Items whose id had been seen before.
    pub(crate) duplicates: AtomicU64,
    seen: Mutex<Vec<u64>>,
}

impl Tally {
    /// Marks ids seen; one lock per request, not per item.
    fn record(&self, ids: impl Iterator<Item = u64>) {
        let mut seen = self.seen.lock().expect("tally lock");
        let mut received = 0;
        let mut duplicates = 0;
        for id in ids {
            received += 1;
            let (word, bit) = ((id / 64) as usize, id % 64);
            if word >= seen.len() {
                seen.resize(word + 1 + word / 2, 0);
            }
            if seen[word] & (1 << bit) != 0 {
                duplicates += 1;
            }
            seen[word] |= 1 << bit;
        }
        self.received.fetch_add(received, Ordering::Relaxed);
        self.duplicates.fetch_add(duplicates, Ordering::Relaxed);
    }

    /// How many distinct ids below `sent` never arrived.
    pub(crate) fn missing(&self, sent: u64) -> u64 {
        let seen = self.seen.lock().expect("tally lock");
        (0..sent)
            .filter(|id| {
                let word = (id / 64) as usize;
                seen.get(word).is_none_or(|w| w & (1 << (id % 64)) == 0)
            })
            .count() as u64
    }
}

#[derive(Clone)]
struct Sink(Arc<Tally>);

fn id8(bytes: &[u8]) -> u64 {
    bytes.try_into().map_or(u64::MAX, u64::from_be_bytes)
}

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let req = request.into_inner();
        self.0.record(
            req.resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| &s.spans)
                .map(|s| id8(&s.span_id)),
        );
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Sink {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let req = request.into_inner();
        self.0.record(
            req.resource_metrics
                .iter()
                .flat_map(|r| &r.scope_metrics)
                .flat_map(|s| &s.metrics)
                .flat_map(|m| match &m.data {
                    Some(metric::Data::Sum(sum)) => sum.data_points.as_slice(),
                    _ => &[],
                })
                .map(|p| p.start_time_unix_nano),
        );
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Sink {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let req = request.into_inner();
        self.0.record(
            req.resource_logs
                .iter()
                .flat_map(|r| &r.scope_logs)
                .flat_map(|s| &s.log_records)
                .map(|l| id8(&l.span_id)),
        );
        Ok(Response::new(ExportLogsServiceResponse::default()))
    }
}

/// Starts the sink on 127.0.0.1:0; it runs until `stop` is cancelled. It accepts gzip, which
/// rotel-agent's exporter sends whatever its compression flag says.
pub(crate) async fn start(stop: CancellationToken) -> std::io::Result<(SocketAddr, Arc<Tally>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let tally = Arc::new(Tally::default());
    let sink = Sink(tally.clone());
    let limit = 64 << 20;
    let server = tonic::transport::Server::builder()
        .add_service(
            TraceServiceServer::new(sink.clone())
                .max_decoding_message_size(limit)
                .accept_compressed(Gzip),
        )
        .add_service(
            MetricsServiceServer::new(sink.clone())
                .max_decoding_message_size(limit)
                .accept_compressed(Gzip),
        )
        .add_service(
            LogsServiceServer::new(sink)
                .max_decoding_message_size(limit)
                .accept_compressed(Gzip),
        )
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            stop.cancelled_owned(),
        );
    tokio::spawn(async move {
        if let Err(e) = server.await {
            eprintln!("sink failed: {e}");
        }
    });
    Ok((addr, tally))
}
