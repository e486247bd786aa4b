//! `otelpipe-gateway`: a Kong-compatible API gateway.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: the proxy allocates and frees small buffers (header maps, bodies, contexts) on
/// every request, where glibc's allocator spends a fifth of the CPU time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A Kong-compatible API gateway.
#[derive(Debug, Parser)]
#[command(name = "otelpipe-gateway", version)]
struct Cli {
    /// decK / Kong declarative files, merged in order (else KONG_DECLARATIVE_CONFIG).
    #[arg(long = "config", short = 'c', value_name = "FILE")]
    config: Vec<String>,
    /// kong.conf file; KONG_* environment variables override it.
    #[arg(long = "conf", value_name = "FILE")]
    conf: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Declarative configuration tools.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigAction {
    /// Loads FILEs (merged as decK does) and prints the entities with Kong's defaults as JSON.
    Parse {
        /// Declarative files or directories of them.
        #[arg(required = true)]
        files: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Config {
            action: ConfigAction::Parse { files },
        }) => parse(&files),
        None => otelpipe_gateway::server::main(cli.config, cli.conf),
    }
}

fn parse(files: &[String]) -> ExitCode {
    match otelpipe_gateway::declarative::load_files(files) {
        Ok(config) => {
            let text = serde_json::to_string_pretty(&config.to_json()).unwrap_or_default();
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(otelpipe_gateway::declarative::LoadError::Invalid(errors)) => {
            for e in errors {
                eprintln!("{e}");
            }
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
