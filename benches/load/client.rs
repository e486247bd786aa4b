//! Load generators: N connections sending OTLP as fast as the collector acknowledges.
//! Requests are written from one pre-encoded [`Template`] with each request's ids patched
//! in (a copy, not an encode); every request's ack latency is recorded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::{Request, Status};

use crate::template::Template;

/// The signal under load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Spans.
    Traces,
    /// Sum data points.
    Metrics,
    /// Log records.
    Logs,
}

/// The protocol the load is sent with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP protobuf.
    Http,
}

/// What one run sends.
#[derive(Clone, Debug)]
pub(crate) struct Profile {
    /// Signal.
    pub(crate) signal: Signal,
    /// Protocol.
    pub(crate) transport: Transport,
    /// Concurrent connections.
    pub(crate) connections: usize,
    /// Items per request.
    pub(crate) batch: usize,
    /// How long to send.
    pub(crate) duration: Duration,
}

/// What the clients observed.
pub(crate) struct Sent {
    /// Items acknowledged by the collector.
    pub(crate) acknowledged: u64,
    /// Items refused (the collector answered an error).
    pub(crate) refused: u64,
    /// Ack latency of every request, microseconds.
    pub(crate) latencies_us: Vec<u32>,
    /// Ids handed out end before `issued`, acknowledged or not.
    pub(crate) issued: u64,
}

/// Sends `profile` to the collector at `grpc` / `http` until its duration passes, writing
/// requests from `template` (of `profile`'s signal and batch size) and handing
/// out ids from `first_id` on (a second run continues where the first stopped, so the sink
/// does not take its ids for duplicates).
pub(crate) async fn run(
    profile: &Profile,
    template: &Arc<Template>,
    grpc: &str,
    http: &str,
    first_id: u64,
) -> Sent {
    let next_id = Arc::new(AtomicU64::new(first_id));
    let deadline = Instant::now() + profile.duration;
    let mut tasks = Vec::new();
    for _ in 0..profile.connections {
        let profile = profile.clone();
        let template = template.clone();
        let next_id = next_id.clone();
        let grpc = format!("http://{grpc}");
        let http = format!("http://{http}");
        tasks.push(tokio::spawn(async move {
            match profile.transport {
                Transport::Grpc => grpc_loop(&profile, template, &grpc, &next_id, deadline).await,
                Transport::Http => http_loop(&profile, template, &http, &next_id, deadline).await,
            }
        }));
    }
    let mut sent = Sent {
        acknowledged: 0,
        refused: 0,
        latencies_us: Vec::new(),
        issued: 0,
    };
    for task in tasks {
        let one = task.await.expect("load task");
        sent.acknowledged += one.acknowledged;
        sent.refused += one.refused;
        sent.latencies_us.extend(one.latencies_us);
    }
    sent.issued = next_id.load(Ordering::Relaxed);
    sent
}

fn empty() -> Sent {
    Sent {
        acknowledged: 0,
        refused: 0,
        latencies_us: Vec::new(),
        issued: 0,
    }
}

/// The gRPC method of `signal`'s export.
fn export_path(signal: Signal) -> &'static str {
    match signal {
        Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    }
}

/// Sends a request as the first id of its items: the encoder writes the template for it.
#[derive(Clone)]
struct TemplateCodec(Arc<Template>);

/// Writes the template patched for the request's first id.
struct TemplateEncoder(Arc<Template>);

impl Encoder for TemplateEncoder {
    type Item = u64;
    type Error = Status;

    fn encode(&mut self, first: u64, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.reserve(self.0.len());
        self.0.write(first, dst);
        Ok(())
    }
}

/// Skips the (empty) export response.
struct DiscardDecoder;

impl Decoder for DiscardDecoder {
    type Item = ();
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<()>, Status> {
        src.advance(src.remaining());
        Ok(Some(()))
    }
}

impl Codec for TemplateCodec {
    type Encode = u64;
    type Decode = ();
    type Encoder = TemplateEncoder;
    type Decoder = DiscardDecoder;

    fn encoder(&mut self) -> TemplateEncoder {
        TemplateEncoder(self.0.clone())
    }

    fn decoder(&mut self) -> DiscardDecoder {
        DiscardDecoder
    }
}

async fn grpc_loop(
    profile: &Profile,
    template: Arc<Template>,
    url: &str,
    ids: &AtomicU64,
    deadline: Instant,
) -> Sent {
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect to collector");
    let mut grpc = tonic::client::Grpc::new(channel).max_encoding_message_size(64 << 20);
    let codec = TemplateCodec(template);
    let path = PathAndQuery::from_static(export_path(profile.signal));
    let mut out = empty();
    while Instant::now() < deadline {
        let first = ids.fetch_add(profile.batch as u64, Ordering::Relaxed);
        let started = Instant::now();
        let ok = match grpc.ready().await {
            Ok(()) => grpc
                .unary::<u64, (), _>(Request::new(first), path.clone(), codec.clone())
                .await
                .is_ok(),
            Err(_) => false,
        };
        record(&mut out, ok, profile.batch, started);
    }
    out
}

async fn http_loop(
    profile: &Profile,
    template: Arc<Template>,
    base: &str,
    ids: &AtomicU64,
    deadline: Instant,
) -> Sent {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .expect("http client");
    let path = match profile.signal {
        Signal::Traces => "/v1/traces",
        Signal::Metrics => "/v1/metrics",
        Signal::Logs => "/v1/logs",
    };
    let url = format!("{base}{path}");
    // One buffer per connection: the body sent last is dropped by the time the next one is
    // written, so `split` hands out the same allocation again.
    let mut buf = BytesMut::with_capacity(template.len());
    let mut out = empty();
    while Instant::now() < deadline {
        let first = ids.fetch_add(profile.batch as u64, Ordering::Relaxed);
        buf.reserve(template.len());
        template.write(first, &mut buf);
        let body = buf.split().freeze();
        let started = Instant::now();
        let ok = client
            .post(&url)
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        record(&mut out, ok, profile.batch, started);
    }
    out
}

fn record(out: &mut Sent, ok: bool, batch: usize, started: Instant) {
    out.latencies_us
        .push(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX));
    if ok {
        out.acknowledged += batch as u64;
    } else {
        out.refused += batch as u64;
    }
}
