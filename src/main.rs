//! `otelpipe`: the command line. Parses arguments, calls the library, maps errors to exit
//! codes: 0 clean shutdown, 1 start failure, 2 config error (nothing was opened).

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use otelpipe::config::{self, Loaded, ProcessEnv, Source};
use otelpipe::registry;
use otelpipe::service;
use otelpipe::telemetry::{logging, own_metrics};

/// mimalloc: decoding one request makes thousands of small allocations (strings, attribute
/// vectors) that another task frees once the batch is exported; mimalloc's per-thread free
/// lists keep both cheap (under 4 % of the instructions in the passthrough profile). Built
/// with `no_thp`: it would otherwise `madvise` its arenas for transparent huge pages, and each
/// touched 2 MiB of heap then stays resident whole (6 of an idle collector's 19.8 MiB RSS).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The config run when no `--config` is given.
const DEFAULT_CONFIG: &str = include_str!("../config/default.yaml");

/// How long shutdown may take before remaining components are abandoned.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// An OpenTelemetry-Collector-compatible telemetry pipeline.
#[derive(Parser)]
#[command(name = "otelpipe", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    sources: Sources,
}

#[derive(Args)]
struct Sources {
    /// Config location (file path, `file:`, `env:`, `yaml:`); repeat to merge left to right.
    #[arg(long = "config", value_name = "URI", global = true)]
    config: Vec<String>,
    /// Override one value: `--set processors::batch::timeout=2s` (dots work as `::`).
    #[arg(long = "set", value_name = "KEY=VALUE", global = true)]
    set: Vec<String>,
    /// Accepted for otelcol compatibility; no feature gates exist yet.
    #[arg(long = "feature-gates", value_name = "GATES", global = true)]
    feature_gates: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Load and validate the config, then exit: 0 if valid, 2 with one line per problem.
    Validate,
    /// List every receiver, processor, exporter, connector and extension.
    Components,
    /// Print the resolved config (sources merged, `${…}` expanded, secrets redacted).
    PrintConfig,
    /// Tools for looking at what components see.
    #[command(subcommand)]
    Debug(DebugCommand),
}

#[derive(Subcommand)]
enum DebugCommand {
    /// Parse a Prometheus exposition from stdin; print its families as JSON. Exit 0 only
    /// if it is valid, else 1 with the first problem on stderr.
    ParseMetrics {
        /// `prometheus` (text 0.0.4) or `openmetrics` (1.0).
        #[arg(long, default_value = "prometheus")]
        format: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Debug(DebugCommand::ParseMetrics { format })) = &cli.command {
        return parse_metrics(format);
    }
    if matches!(cli.command, Some(Command::Components)) {
        print!("{}", registry::describe(&registry::BUILTIN));
        return ExitCode::SUCCESS;
    }
    // print-config shows the resolved config even when components would not validate.
    let validate = !matches!(cli.command, Some(Command::PrintConfig));
    let loaded = match load(&cli.sources, validate) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    match cli.command {
        Some(Command::Validate) => ExitCode::SUCCESS,
        Some(Command::PrintConfig) => {
            print!("{}", loaded.print());
            ExitCode::SUCCESS
        }
        Some(Command::Components | Command::Debug(_)) | None => run(&loaded),
    }
}

/// `otelpipe debug parse-metrics`: stdin in, JSON out.
fn parse_metrics(format: &str) -> ExitCode {
    use otelpipe::receivers::prometheus::parse;
    match parse::cli(std::io::stdin().lock(), format) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Loads (and validates, unless told not to); on failure prints every problem, one per
/// line, and yields exit 2.
fn load(args: &Sources, validate: bool) -> Result<Loaded, ExitCode> {
    let sources: Vec<Source> = if args.config.is_empty() {
        vec![Source::Embedded {
            name: "default.yaml",
            text: DEFAULT_CONFIG,
        }]
    } else {
        args.config.iter().cloned().map(Source::Uri).collect()
    };
    let result = config::load(&sources, &args.set, &ProcessEnv).and_then(|loaded| {
        if validate {
            config::validate(&loaded)?;
        }
        Ok(loaded)
    });
    result.map_err(|errors| {
        eprintln!("{errors}");
        ExitCode::from(2)
    })
}

fn run(loaded: &Loaded) -> ExitCode {
    let telemetry = &loaded.config.service.telemetry;
    logging::init(telemetry.log_level);
    otelpipe::tls::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            num_cpu = std::thread::available_parallelism().map_or(1, usize::from),
            "Starting otelpipe..."
        );
        let stop = tokio_util::sync::CancellationToken::new();
        let tasks = tokio_util::task::TaskTracker::new();
        if let Some(address) = &telemetry.metrics_address {
            if let Err(e) = own_metrics::serve(address, stop.clone(), &tasks).await {
                eprintln!("Error: cannot serve own metrics: {e}");
                return ExitCode::FAILURE;
            }
        }
        let result = service::run(
            &loaded.config,
            &registry::BUILTIN,
            os_signal(),
            SHUTDOWN_TIMEOUT,
        )
        .await;
        stop.cancel();
        tasks.close();
        tasks.wait().await;
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("Error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Resolves on SIGTERM or SIGINT.
async fn os_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "Cannot listen for SIGTERM; stopping on Ctrl-C only.");
            let _ignored = tokio::signal::ctrl_c().await;
            return;
        }
    };
    let name = tokio::select! {
        _ = term.recv() => "terminated",
        _ = tokio::signal::ctrl_c() => "interrupt",
    };
    tracing::info!(signal = name, "Received signal from OS.");
}
