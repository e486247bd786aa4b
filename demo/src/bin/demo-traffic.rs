//! `demo-traffic`: sends a mix of requests through the gateway at a fixed rate and prints
//! what came back, per route and status, as JSON on stdout.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use otelpipe_demo::mix::Mix;
use otelpipe_demo::traffic::{self, Plan};

/// Traffic for the demo shop, through the gateway.
#[derive(Parser)]
#[command(name = "demo-traffic", version)]
struct Cli {
    /// The gateway's proxy URL.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    target: String,
    /// Requests per second (0: as fast as --concurrency allows).
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// How long to send, e.g. `30s`, `5m` (default: until Ctrl-C or --requests).
    #[arg(long, value_name = "DURATION")]
    duration: Option<String>,
    /// Stop after this many requests.
    #[arg(long)]
    requests: Option<u64>,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Routes and weights, sent interleaved: each round of sum(weights) requests holds every
    /// route its weight.
    #[arg(long, default_value = "/orders=4,/inventory=3,/pricing=2,/coupon=1")]
    mix: String,
    /// Items requested in turn below each route (`/orders/sku-1` …); 0: the route itself.
    #[arg(long, default_value_t = 5)]
    items: u32,
    /// Per-request timeout.
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    timeout: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let plan = match plan(cli) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("demo-traffic: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("demo-traffic: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "demo-traffic: {} req/s to {} ({})",
        plan.rate,
        plan.target,
        plan.mix.paths().collect::<Vec<_>>().join(", ")
    );
    let stop = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    match runtime.block_on(traffic::run(plan, stop)) {
        Ok(report) => {
            for (route, statuses) in &report.routes {
                let counts: Vec<String> =
                    statuses.iter().map(|(s, n)| format!("{s}: {n}")).collect();
                eprintln!("demo-traffic: {route}  {}", counts.join(", "));
            }
            println!("{}", report.to_json());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("demo-traffic: {e}");
            ExitCode::FAILURE
        }
    }
}

fn plan(cli: Cli) -> Result<Plan, String> {
    let parse = |name: &str, value: &str| -> Result<Duration, String> {
        humantime::parse_duration(value).map_err(|e| format!("--{name} {value:?}: {e}"))
    };
    Ok(Plan {
        target: cli.target,
        rate: cli.rate,
        duration: cli
            .duration
            .as_deref()
            .map(|d| parse("duration", d))
            .transpose()?,
        requests: cli.requests,
        concurrency: cli.concurrency,
        mix: Mix::parse(&cli.mix).map_err(|e| e.to_string())?,
        items: cli.items,
        timeout: parse("timeout", &cli.timeout)?,
    })
}
