//! `memory_limiter` processor: refuses data while the process uses too much memory, so
//! clients back off instead of the collector being killed for running out of memory.
//!
//! ```yaml
//! processors:
//!   memory_limiter:
//!     check_interval: 1s
//!     limit_mib: 4000
//!     spike_limit_mib: 800      # soft limit = 3200 MiB
//! service:
//!   pipelines:
//!     traces:
//!       processors: [memory_limiter, batch]   # first in the pipeline
//! ```
//!
//! A background task reads the resident set size (`/proc/self/statm`) every
//! `check_interval` and sets one flag (one task per processor id, shared by the pipelines
//! that list it, as otelcol shares one limiter); `consume` only loads that flag, so there is no
//! per-item work. At or above the soft limit (`limit − spike`) every call is refused with
//! the retryable error `data refused due to high memory usage` (receivers answer gRPC
//! `UNAVAILABLE`, HTTP 503 with `Retry-After`), counted in `otelcol_processor_refused_*`;
//! accepted data is counted in `otelcol_processor_accepted_*`. Percent limits are of the
//! cgroup memory limit when one is set, else of the host's memory.
//!
//! otelcol measures the Go heap and forces a garbage collection above the hard limit; Rust
//! has no collector, so the hard limit only logs (`Memory usage is above hard limit.`) and
//! the soft limit does the refusing.

mod config;
#[cfg(test)]
mod tests;
pub mod usage;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

pub use config::{Config, Limits};

use crate::component::{
    BoxNode, Component, ComponentError, CreateSettings, FactoryInfo, Host, ProcessorFactory,
    RawConfig, Stability,
};
use crate::config::{decode, FieldError};
use crate::pipeline::{Batch, BoxConsumer, ClientInfo, ConsumeError, Consumer, Signal};
use crate::telemetry::names;

/// The refusal message otelcol uses.
pub const REFUSED_MESSAGE: &str = "data refused due to high memory usage";

/// The `memory_limiter` factory.
pub struct Factory;

/// The registry entry.
pub static FACTORY: Factory = Factory;

static INFO: FactoryInfo = FactoryInfo {
    name: "memory_limiter",
    aliases: &[],
    stability: [Stability::Beta; 3],
};

impl ProcessorFactory for Factory {
    fn info(&self) -> &FactoryInfo {
        &INFO
    }

    fn validate(&self, config: &RawConfig) -> Result<(), FieldError> {
        decode::<Config>(config)?.validate()
    }

    fn create(
        &self,
        settings: &CreateSettings,
        config: &RawConfig,
        next: BoxConsumer,
    ) -> Result<BoxNode, ComponentError> {
        let config = decode::<Config>(config)?;
        config.validate()?;
        let limits = config.limits(usage::total_memory).map_err(|e| {
            ComponentError::Other(format!("cannot read the total memory available: {e}"))
        })?;
        let monitor = shared_monitor(&settings.id.to_string(), limits, config.check_interval);
        Ok(Arc::new(MemoryLimiter::new(
            monitor,
            config.check_interval,
            &settings.id.to_string(),
            settings.signal,
            next,
        )))
    }
}

/// The monitor of processor `id`, shared by every pipeline that lists it (otelcol shares
/// one limiter per id): one ticker and one set of log lines, whatever the pipeline count.
fn shared_monitor(id: &str, limits: Limits, check_interval: Duration) -> Arc<Monitor> {
    type Entry = (String, Limits, Duration, Weak<Monitor>);
    static MONITORS: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
    let mut monitors = MONITORS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    monitors.retain(|(_, _, _, m)| m.strong_count() > 0);
    let found = monitors
        .iter()
        .find(|(i, l, c, _)| i == id && *l == limits && *c == check_interval)
        .and_then(|(_, _, _, m)| m.upgrade());
    if let Some(monitor) = found {
        return monitor;
    }
    let monitor = Arc::new(Monitor::new(
        limits,
        Box::new(|| usage::rss(usage::page_size())),
    ));
    monitors.push((
        id.to_owned(),
        limits,
        check_interval,
        Arc::downgrade(&monitor),
    ));
    monitor
}

/// Reads the current memory use in bytes.
pub type Probe = Box<dyn Fn() -> std::io::Result<u64> + Send + Sync>;

/// Measures memory use against the limits and keeps the verdict in one flag.
pub struct Monitor {
    limits: Limits,
    probe: Probe,
    refusing: AtomicBool,
    last: AtomicU64,
    ticker: Mutex<Ticker>,
}

/// The background measurement, shared by the limiters using one monitor.
#[derive(Default)]
struct Ticker {
    users: usize,
    stop: Option<CancellationToken>,
}

impl Monitor {
    /// A monitor reading memory use with `probe` (bytes).
    pub fn new(limits: Limits, probe: Probe) -> Self {
        Self {
            limits,
            probe,
            refusing: AtomicBool::new(false),
            last: AtomicU64::new(0),
            ticker: Mutex::new(Ticker::default()),
        }
    }

    /// Adds a user; the first one measures at once and starts checking every `period`.
    pub fn start(self: &Arc<Self>, period: Duration) {
        let mut ticker = self
            .ticker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ticker.users += 1;
        if ticker.users > 1 {
            return;
        }
        self.check();
        let stop = CancellationToken::new();
        ticker.stop = Some(stop.clone());
        let monitor = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval.tick().await;
            loop {
                tokio::select! {
                    _ = interval.tick() => match monitor.upgrade() {
                        Some(m) => m.check(),
                        None => break,
                    },
                    () = stop.cancelled() => break,
                }
            }
        });
    }

    /// Removes a user; the last one stops the checks.
    pub fn stop(&self) {
        let mut ticker = self
            .ticker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ticker.users = ticker.users.saturating_sub(1);
        if ticker.users == 0 {
            if let Some(stop) = ticker.stop.take() {
                stop.cancel();
            }
        }
    }

    /// True while data is refused. One atomic load.
    pub fn refusing(&self) -> bool {
        self.refusing.load(Ordering::Relaxed)
    }

    /// Memory use at the last check, in bytes.
    pub fn last_usage(&self) -> u64 {
        self.last.load(Ordering::Relaxed)
    }

    /// Measures once and updates the verdict, logging each change as otelcol does.
    pub fn check(&self) {
        let used = match (self.probe)() {
            Ok(used) => used,
            Err(e) => {
                tracing::warn!(error = %e, "Cannot read memory usage; keeping the previous state.");
                return;
            }
        };
        self.last.store(used, Ordering::Relaxed);
        let mib = used >> 20;
        if used >= self.limits.hard {
            tracing::warn!(
                cur_mem_mib = mib,
                "Memory usage is above hard limit. Forcing a GC."
            );
        }
        let over = used >= self.limits.soft;
        let was = self.refusing.swap(over, Ordering::Relaxed);
        match (was, over) {
            (false, true) => tracing::warn!(
                cur_mem_mib = mib,
                "Memory usage is above soft limit. Refusing data."
            ),
            (true, false) => tracing::info!(
                cur_mem_mib = mib,
                "Memory usage back within limits. Resuming normal operation."
            ),
            _ => {}
        }
    }
}

/// A `memory_limiter` in one pipeline.
pub struct MemoryLimiter {
    monitor: Arc<Monitor>,
    check_interval: Duration,
    next: BoxConsumer,
    accepted: metrics::Counter,
    refused: metrics::Counter,
    incoming: metrics::Counter,
    outgoing: metrics::Counter,
    retry_after: Duration,
}

impl MemoryLimiter {
    /// A limiter named `id` for `signal`, checking `monitor` every `check_interval`, in
    /// front of `next`.
    pub fn new(
        monitor: Arc<Monitor>,
        check_interval: Duration,
        id: &str,
        signal: Signal,
        next: BoxConsumer,
    ) -> Self {
        let labels = [("processor", id.to_owned())];
        let flow = [
            ("processor", id.to_owned()),
            ("otel_signal", signal.as_str().to_owned()),
        ];
        Self {
            monitor,
            check_interval,
            next,
            accepted: metrics::counter!(
                names::with_items(names::PROCESSOR_ACCEPTED, signal),
                &labels
            ),
            refused: metrics::counter!(
                names::with_items(names::PROCESSOR_REFUSED, signal),
                &labels
            ),
            incoming: metrics::counter!(names::PROCESSOR_INCOMING_ITEMS, &flow),
            outgoing: metrics::counter!(names::PROCESSOR_OUTGOING_ITEMS, &flow),
            // Clients should come back after the next measurement, at least a second later.
            retry_after: check_interval.max(Duration::from_secs(1)),
        }
    }
}

#[async_trait]
impl Consumer for MemoryLimiter {
    async fn consume(&self, batch: Batch, client: &ClientInfo) -> Result<(), ConsumeError> {
        let items = batch.item_count() as u64;
        self.incoming.increment(items);
        if self.monitor.refusing() {
            self.refused.increment(items);
            return Err(ConsumeError::retry_after(REFUSED_MESSAGE, self.retry_after));
        }
        self.accepted.increment(items);
        self.outgoing.increment(items);
        self.next.consume(batch, client).await
    }
}

#[async_trait]
impl Component for MemoryLimiter {
    async fn start(&self, _host: &Host) -> Result<(), ComponentError> {
        // Measures before the first datum arrives, then on every tick.
        self.monitor.start(self.check_interval);
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), ComponentError> {
        self.monitor.stop();
        Ok(())
    }
}
