//! Load generators: N connections sending OTLP as fast as the collector acknowledges.
//! Each connection encodes its own requests (ids differ per request) and records the ack
//! latency of every request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;

use crate::generate;

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

/// Sends `profile` to the collector at `grpc` / `http` until its duration passes, handing
/// out ids from `first_id` on (a second run continues where the first stopped, so the sink
/// does not take its ids for duplicates).
pub(crate) async fn run(profile: &Profile, grpc: &str, http: &str, first_id: u64) -> Sent {
    let next_id = Arc::new(AtomicU64::new(first_id));
    let deadline = Instant::now() + profile.duration;
    let mut tasks = Vec::new();
    for _ in 0..profile.connections {
        let profile = profile.clone();
        let next_id = next_id.clone();
        let grpc = format!("http://{grpc}");
        let http = format!("http://{http}");
        tasks.push(tokio::spawn(async move {
            match profile.transport {
                Transport::Grpc => grpc_loop(&profile, &grpc, &next_id, deadline).await,
                Transport::Http => http_loop(&profile, &http, &next_id, deadline).await,
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

async fn grpc_loop(profile: &Profile, url: &str, ids: &AtomicU64, deadline: Instant) -> Sent {
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect to collector");
    let limit = 64 << 20;
    let mut traces = TraceServiceClient::new(channel.clone()).max_encoding_message_size(limit);
    let mut metrics = MetricsServiceClient::new(channel.clone()).max_encoding_message_size(limit);
    let mut logs = LogsServiceClient::new(channel).max_encoding_message_size(limit);
    let mut out = empty();
    while Instant::now() < deadline {
        let first = ids.fetch_add(profile.batch as u64, Ordering::Relaxed);
        let started = Instant::now();
        let ok = match profile.signal {
            Signal::Traces => traces
                .export(generate::traces(first, profile.batch))
                .await
                .is_ok(),
            Signal::Metrics => metrics
                .export(generate::metrics(first, profile.batch))
                .await
                .is_ok(),
            Signal::Logs => logs
                .export(generate::logs(first, profile.batch))
                .await
                .is_ok(),
        };
        record(&mut out, ok, profile.batch, started);
    }
    out
}

async fn http_loop(profile: &Profile, base: &str, ids: &AtomicU64, deadline: Instant) -> Sent {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .expect("http client");
    let (path, _) = match profile.signal {
        Signal::Traces => ("/v1/traces", ()),
        Signal::Metrics => ("/v1/metrics", ()),
        Signal::Logs => ("/v1/logs", ()),
    };
    let url = format!("{base}{path}");
    let mut out = empty();
    while Instant::now() < deadline {
        let first = ids.fetch_add(profile.batch as u64, Ordering::Relaxed);
        let body = match profile.signal {
            Signal::Traces => generate::traces(first, profile.batch).encode_to_vec(),
            Signal::Metrics => generate::metrics(first, profile.batch).encode_to_vec(),
            Signal::Logs => generate::logs(first, profile.batch).encode_to_vec(),
        };
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
