//! `demo-shop`: the demo's e-commerce API (orders, inventory, pricing, coupon), traced with
//! the OpenTelemetry SDK and exported over OTLP/gRPC. Stops on Ctrl-C or SIGTERM after
//! flushing its spans.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use otelpipe_demo::failures::ErrorRates;
use otelpipe_demo::shop::{Dependencies, Latency, Service, SERVICES};
use otelpipe_demo::telemetry;

/// A small e-commerce API behind the gateway: orders calls inventory and pricing.
///
/// Flags left out fall back to the environment: OTEL_EXPORTER_OTLP_ENDPOINT,
/// DEMO_LATENCY, DEMO_JITTER, DEMO_ERROR_RATE.
#[derive(Parser)]
#[command(name = "demo-shop", version)]
struct Cli {
    /// Address of the orders service.
    #[arg(long, default_value = "127.0.0.1:9101")]
    orders: SocketAddr,
    /// Address of the inventory service.
    #[arg(long, default_value = "127.0.0.1:9102")]
    inventory: SocketAddr,
    /// Address of the pricing service.
    #[arg(long, default_value = "127.0.0.1:9103")]
    pricing: SocketAddr,
    /// Address of the coupon service.
    #[arg(long, default_value = "127.0.0.1:9104")]
    coupon: SocketAddr,
    /// The collector's OTLP/gRPC endpoint [default: http://127.0.0.1:4317].
    #[arg(long, value_name = "URL")]
    otlp_endpoint: Option<String>,
    /// The least time an answer takes, e.g. `20ms` [default: 20ms].
    #[arg(long, value_name = "DURATION")]
    latency: Option<String>,
    /// The most time added at random to --latency [default: 10ms].
    #[arg(long, value_name = "DURATION")]
    jitter: Option<String>,
    /// Share of requests answered 500: `0.05` for every service, or per service,
    /// `orders=0.1,pricing=0.02` (evenly spread: 0.1 fails every tenth request) [default: 0].
    #[arg(long, value_name = "RATE")]
    error_rate: Option<String>,
}

fn setting(flag: Option<String>, env: &str, default: &str) -> String {
    flag.or_else(|| std::env::var(env).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| default.to_owned())
}

fn duration(name: &str, value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value).map_err(|e| format!("{name} {value:?}: {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("demo-shop: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo-shop: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let endpoint = setting(
        cli.otlp_endpoint,
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "http://127.0.0.1:4317",
    );
    let latency = Latency {
        base: duration("latency", &setting(cli.latency, "DEMO_LATENCY", "20ms"))?,
        jitter: duration("jitter", &setting(cli.jitter, "DEMO_JITTER", "10ms"))?,
    };
    let rates = ErrorRates::parse(&setting(cli.error_rate, "DEMO_ERROR_RATE", "0"), &SERVICES)
        .map_err(|e| e.to_string())?;
    let client = otelpipe_demo::client::http_client(Duration::from_secs(10))
        .map_err(|e| format!("HTTP client: {e}"))?;
    let dependencies = Dependencies {
        client,
        inventory: format!("http://{}", cli.inventory),
        pricing: format!("http://{}", cli.pricing),
    };

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut providers = Vec::new();
    let mut servers = tokio::task::JoinSet::new();
    for (name, addr) in
        SERVICES
            .into_iter()
            .zip([cli.orders, cli.inventory, cli.pricing, cli.coupon])
    {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("{name}: cannot listen on {addr}: {e}"))?;
        let provider = telemetry::provider(name, &endpoint).map_err(|e| e.to_string())?;
        let service = Arc::new(Service::new(
            name,
            telemetry::tracer(&provider),
            latency,
            rates.schedule(name),
            (name == "orders").then(|| dependencies.clone()),
        ));
        providers.push(provider);
        let mut stop = stop_rx.clone();
        servers.spawn(async move {
            let stopped = async move {
                // Either a stop was sent or the sender is gone: both mean stop.
                drop(stop.changed().await);
            };
            axum::serve(listener, service.router())
                .with_graceful_shutdown(stopped)
                .await
                .map_err(|e| format!("{name}: {e}"))
        });
        eprintln!("demo-shop: {name} on http://{addr}");
    }
    eprintln!("demo-shop: spans to {endpoint}, latency {latency:?}");

    wait_for_signal().await;
    eprintln!("demo-shop: stopping");
    stop_tx.send_replace(true);
    let mut failed = None;
    while let Some(done) = servers.join_next().await {
        if let Ok(Err(e)) = done {
            failed = Some(e);
        }
    }
    // Flush the spans still batched; the SDK's shutdown blocks, so off the runtime's workers.
    let flushed = tokio::task::spawn_blocking(move || {
        providers
            .into_iter()
            .filter_map(|p| p.shutdown().err())
            .map(|e| e.to_string())
            .next()
    })
    .await
    .map_err(|e| e.to_string())?;
    match failed.or(flushed) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
