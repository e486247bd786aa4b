//! The collector's own logs: `tracing` to stderr, level from `RUST_LOG` or
//! `service.telemetry.logs.level`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogLevel;

/// Installs the stderr logger. `RUST_LOG`, when set, wins over `level`.
/// Colours only when stderr is a terminal, so files and log collectors get plain text.
/// Safe to call more than once (later calls are ignored).
pub fn init(level: LogLevel) {
    let default = match level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ignored = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
