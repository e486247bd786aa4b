//! `debug` exporter: prints what it receives, shaped like otelcol's.
//!
//! ```yaml
//! exporters:
//!   debug:
//!     verbosity: detailed
//! ```
//!
//! No queue, no retry, never an error for valid data. Output goes through the collector's
//! logger (stderr) unless `use_internal_logger: false`. Sampling: the first
//! `sampling_initial` batches of each second are printed, then every
//! `sampling_thereafter`-th.
//!
//! Credentials are never printed: at `normal` and `detailed` verbosity, the value of every
//! attribute (resource, scope, span, event, link, log record, data point, exemplar) whose
//! key names a credential prints as `[REDACTED]` (`Str([REDACTED])` in `detailed`); so do
//! such entries inside map values and log bodies, at any depth. The keys, compared ignoring
//! case: `authorization`, `proxy-authorization`, `cookie`, `set-cookie`, `x-api-key`,
//! `api-key`, `api_key`, `apikey`, `api_token`, `x-auth-token`, `access_token`,
//! `refresh_token`, `client_secret`, `private_key`, `password`, `passwd`, `secret`,
//! `token`, each also after `http.request.header.` or `http.response.header.`. The list is
//! `redact::SECRET_KEYS`. Secrets inside free text (a string body) are not recognised.

mod config;
mod format;
mod redact;
#[cfg(test)]
mod tests;

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

pub use config::{Config, Verbosity};

use crate::component::ComponentError;
use crate::component::{
    BoxNode, Component, CreateSettings, ExporterFactory, FactoryInfo, RawConfig, Stability,
};
use crate::config::{decode, FieldError};
use crate::pipeline::{Batch, ClientInfo, ConsumeError, Consumer};

/// The `debug` exporter factory.
pub struct Factory;

/// The registry entry.
pub static FACTORY: Factory = Factory;

static INFO: FactoryInfo = FactoryInfo {
    name: "debug",
    aliases: &[],
    stability: [Stability::Development; 3],
};

impl ExporterFactory for Factory {
    fn info(&self) -> &FactoryInfo {
        &INFO
    }

    fn validate(&self, config: &RawConfig) -> Result<(), FieldError> {
        decode::<Config>(config)?.verbosity().map(drop)
    }

    fn create(
        &self,
        settings: &CreateSettings,
        config: &RawConfig,
    ) -> Result<BoxNode, ComponentError> {
        let config = decode::<Config>(config)?;
        Ok(Arc::new(Debug {
            verbosity: config.verbosity()?,
            name: settings.id.to_string(),
            initial: config.sampling_initial,
            thereafter: config.sampling_thereafter.max(1),
            internal: config.use_internal_logger,
            window: AtomicU64::new(0),
            seen: AtomicU64::new(0),
        }))
    }
}

/// A `debug` exporter instance.
pub struct Debug {
    verbosity: Verbosity,
    name: String,
    initial: u64,
    thereafter: u64,
    internal: bool,
    /// The second the sampling counter belongs to.
    window: AtomicU64,
    /// Batches seen in that second.
    seen: AtomicU64,
}

impl Debug {
    /// Sampling: the first `initial` batches of a second, then every `thereafter`-th.
    fn sampled(&self) -> bool {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.sampled_at(now)
    }

    /// [`Self::sampled`] for a batch arriving in second `now`.
    fn sampled_at(&self, now: u64) -> bool {
        if self.window.swap(now, Ordering::Relaxed) != now {
            self.seen.store(0, Ordering::Relaxed);
        }
        let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        n <= self.initial || (n - self.initial) % self.thereafter == 0
    }

    fn emit(&self, summary: &str, fields: &str, body: Option<String>) {
        if self.internal {
            tracing::info!(kind = "exporter", name = %self.name, "{summary}\t{{{fields}}}");
            if let Some(text) = body {
                tracing::info!(kind = "exporter", name = %self.name, "{text}");
            }
        } else {
            let mut out = std::io::stdout().lock();
            let written = writeln!(out, "{summary}\t{{{fields}}}")
                .and_then(|()| body.map_or(Ok(()), |b| write!(out, "{b}")));
            if written.is_err() {
                tracing::warn!(name = %self.name, "Cannot write to stdout.");
            }
        }
    }
}

#[async_trait]
impl Consumer for Debug {
    async fn consume(&self, batch: Batch, _client: &ClientInfo) -> Result<(), ConsumeError> {
        if !self.sampled() {
            return Ok(());
        }
        let (summary, fields) = format::summary(&batch);
        let body = match self.verbosity {
            Verbosity::Basic => None,
            Verbosity::Normal => Some(format::normal(&batch)),
            Verbosity::Detailed => Some(format::detailed(&batch)),
        };
        self.emit(summary, &fields, body);
        Ok(())
    }
}

impl Component for Debug {}
