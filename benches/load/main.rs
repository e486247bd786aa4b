//! `load`: the end-to-end load tool.
//!
//! Starts a sink, starts the collector under test between the load and the sink, sends
//! OTLP at full rate from N connections, then reports items/s, items/s per collector core,
//! ack latency p50/p99, the collector's CPU and peak RSS (from `/proc`), and what was lost
//! or duplicated (every item carries a unique id the sink checks).
//!
//! ```text
//! cargo bench --bench load -- --signal traces --transport grpc --connections 4 --duration 10
//! cargo bench --bench load -- --command "rotel-agent start --otlp-grpc-endpoint {grpc} ..."
//! cargo bench --bench load -- --direct --duration 5   # no collector: the tool's own ceiling
//! ```
//!
//! `--command` is a template: `{grpc}`, `{http}` and `{sink}` are the addresses the tool
//! chose, `{config}` the case config written with those addresses. The default runs the
//! release `otelpipe` on `--case` (default `passthrough`, from `benches/load/cases/`).

mod client;
mod generate;
mod process;
mod sink;
mod template;
mod wire;

use std::time::{Duration, Instant};

use clap::Parser;
use tokio_util::sync::CancellationToken;

use client::{Profile, Signal, Transport};

#[derive(Parser)]
#[command(name = "load", about = "End-to-end load test of a collector")]
struct Args {
    /// traces | metrics | logs
    #[arg(long, default_value = "traces")]
    signal: String,
    /// grpc | http
    #[arg(long, default_value = "grpc")]
    transport: String,
    /// Concurrent client connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Items per request.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Seconds of load (after a 2 s warm-up).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Case config under benches/load/cases (without .yaml).
    #[arg(long, default_value = "passthrough")]
    case: String,
    /// Collector command template; default: the release otelpipe on the case config.
    #[arg(long)]
    command: Option<String>,
    /// CPU list the collector is pinned to (taskset -c), e.g. 0.
    #[arg(long)]
    collector_cpu: Option<String>,
    /// Only start the collector, wait, and report its idle RSS.
    #[arg(long)]
    idle: bool,
    /// No collector: send straight to the sink (gRPC only) and report the tool's own CPU,
    /// which measures the load side's ceiling.
    #[arg(long)]
    direct: bool,
    /// What the collector's export to the sink uses: gzip | none. The sink refuses gzip
    /// unless told to expect it, so a run shows what was measured.
    #[arg(long, default_value = "none")]
    export_compression: String,
    /// Label for the report row.
    #[arg(long, default_value = "otelpipe")]
    label: String,
    /// Criterion passes --bench; accepted and ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind")
        .port()
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    // The HTTP client's TLS stack needs a process-wide provider, even for plain http.
    otelpipe::tls::install_crypto_provider();
    let signal = match args.signal.as_str() {
        "traces" => Signal::Traces,
        "metrics" => Signal::Metrics,
        "logs" => Signal::Logs,
        other => panic!("unknown signal {other}"),
    };
    let transport = match args.transport.as_str() {
        "grpc" => Transport::Grpc,
        "http" => Transport::Http,
        other => panic!("unknown transport {other}"),
    };

    let stop = CancellationToken::new();
    let gzip = match args.export_compression.as_str() {
        "gzip" => true,
        "none" => false,
        other => panic!("unknown export compression {other}"),
    };
    let (sink_addr, tally) = sink::start(stop.clone(), gzip).await.expect("start sink");
    let (grpc_port, http_port) = (free_port(), free_port());
    let grpc = format!("127.0.0.1:{grpc_port}");
    let http = format!("127.0.0.1:{http_port}");
    let sink = sink_addr.to_string();

    let root = env!("CARGO_MANIFEST_DIR");
    let case = std::fs::read_to_string(format!("{root}/benches/load/cases/{}.yaml", args.case))
        .expect("read case config");
    let fill = |t: &str| {
        t.replace("{grpc}", &grpc)
            .replace("{http}", &http)
            .replace("{sink}", &sink)
    };
    let dir = std::env::temp_dir().join(format!("otelpipe-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("collector.yaml");
    std::fs::write(&config, fill(&case)).expect("write config");
    let mut child = None;
    let pid = if args.direct {
        assert!(
            transport == Transport::Grpc && !args.idle,
            "--direct sends OTLP/gRPC to the sink; it takes neither --transport http nor --idle"
        );
        std::process::id()
    } else {
        let template = args
            .command
            .clone()
            .unwrap_or_else(|| format!("{root}/target/release/otelpipe --config {{config}}"));
        let command: Vec<String> = fill(&template)
            .replace("{config}", &config.to_string_lossy())
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        let collector = child.insert(process::Collector(process::spawn(
            &command,
            args.collector_cpu.as_deref(),
            &[],
            &dir.join("collector.log"),
        )));
        assert!(
            process::wait_for_port(grpc_port) && process::wait_for_port(http_port),
            "collector did not listen; see {}",
            dir.join("collector.log").display()
        );
        collector.0.id()
    };
    let grpc = if args.direct { sink.clone() } else { grpc };

    if args.idle {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let u = process::usage(pid).expect("read /proc");
        println!(
            "{:<10} idle rss {:.1} MiB",
            args.label,
            u.rss as f64 / 1048576.0
        );
        if let Some(c) = child.as_mut() {
            process::stop(&mut c.0);
        }
        stop.cancel();
        return;
    }

    // Warm-up: connections, allocator, caches. Not measured.
    let warm = Profile {
        signal,
        transport,
        connections: args.connections,
        batch: args.batch,
        duration: Duration::from_secs(2),
    };
    let template = std::sync::Arc::new(template::Template::new(signal, args.batch));
    let warm_sent = client::run(&warm, &template, &grpc, &http, 0).await;
    settle(&tally, warm_sent.acknowledged).await;
    let base_received = tally.received.load(std::sync::atomic::Ordering::Relaxed);

    let before = process::usage(pid).expect("read /proc");
    let started = Instant::now();
    let profile = Profile {
        duration: Duration::from_secs(args.duration),
        ..warm
    };
    let mut sent = client::run(&profile, &template, &grpc, &http, warm_sent.issued).await;
    let elapsed = started.elapsed().as_secs_f64();
    settle(&tally, warm_sent.acknowledged + sent.acknowledged).await;
    let drained = started.elapsed().as_secs_f64();
    let after = process::usage(pid).expect("read /proc");

    if let Some(c) = child.as_mut() {
        process::stop(&mut c.0);
    }
    stop.cancel();

    let received = tally.received.load(std::sync::atomic::Ordering::Relaxed) - base_received;
    let duplicates = tally.duplicates.load(std::sync::atomic::Ordering::Relaxed);
    let malformed = tally.malformed.load(std::sync::atomic::Ordering::Relaxed);
    let issued = sent.issued;
    let missing = tally.missing(issued);
    let refused = warm_sent.refused + sent.refused;
    sent.latencies_us.sort_unstable();
    let cpu = (after.cpu_seconds - before.cpu_seconds) / drained;
    let rate = received as f64 / drained;
    println!(
        "{:<10} {:<7} {:<4} conns={} batch={} sent/s={:.0} received/s={:.0} per-core/s={:.0} cpu={:.0}% p50={:.2}ms p99={:.2}ms peak-rss={:.1}MiB acked={} refused={} missing={} duplicates={} malformed={} bytes/item={}",
        args.label,
        args.signal,
        args.transport,
        args.connections,
        args.batch,
        sent.acknowledged as f64 / elapsed,
        rate,
        if cpu > 0.0 { rate / cpu } else { 0.0 },
        cpu * 100.0,
        percentile(&sent.latencies_us, 0.5),
        percentile(&sent.latencies_us, 0.99),
        after.peak_rss as f64 / 1048576.0,
        warm_sent.acknowledged + sent.acknowledged,
        refused,
        missing.saturating_sub(refused),
        duplicates,
        malformed,
        template.len() / template.items(),
    );
}

/// Waits until the sink holds `expected` items, or until nothing arrived for 5 s.
async fn settle(tally: &sink::Tally, expected: u64) {
    let mut last = 0;
    let mut still = Instant::now();
    loop {
        let now = tally.received.load(std::sync::atomic::Ordering::Relaxed);
        if now >= expected {
            return;
        }
        if now != last {
            last = now;
            still = Instant::now();
        } else if still.elapsed() > Duration::from_secs(5) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
