//! `spanmetrics` connector: turns the spans of a traces pipeline into R.E.D. metrics
//! (`traces.span.metrics.calls`, `traces.span.metrics.duration`, optionally `….events`)
//! for a metrics pipeline, as otelcol-contrib 0.119's spanmetricsconnector does.
//!
//! ```yaml
//! connectors:
//!   spanmetrics:
//!     dimensions:
//!       - name: http.method
//!         default: GET
//!       - name: http.status_code
//!     exclude_dimensions: [status.code]
//!     metrics_flush_interval: 15s
//! service:
//!   pipelines:
//!     traces:
//!       receivers: [otlp]
//!       exporters: [spanmetrics]
//!     metrics:
//!       receivers: [spanmetrics]
//!       exporters: [otlphttp]
//! ```
//!
//! `consume` adds a whole batch under one lock and returns at once: the connector never
//! pushes back on the traces pipeline. A background task emits the aggregated metrics every
//! `metrics_flush_interval`, and once more at shutdown; a downstream error is logged and
//! that flush is dropped. Memory is bounded by the cache sizes (see [`aggregation`]).

pub mod aggregation;
mod config;
pub mod histogram;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use aggregation::Aggregator;
pub use config::{
    Config, Dimension, EventsConfig, ExemplarsConfig, ExplicitConfig, ExponentialConfig,
    HistogramConfig, Temporality, Unit, DEFAULT_BUCKETS, DEFAULT_MAX_SIZE, EXEMPLAR_CEILING,
    SERVICE_NAME, SPAN_KIND, SPAN_NAME, STATUS_CODE,
};

use crate::component::{
    BoxNode, Component, ComponentError, ConnectorFactory, CreateSettings, FactoryInfo, Host,
    RawConfig, Stability,
};
use crate::config::{decode, FieldError};
use crate::pipeline::{Batch, BoxConsumer, ClientInfo, ConsumeError, Consumer, Signal};
use crate::telemetry::names;

/// The `spanmetrics` factory.
pub struct Factory;

/// The registry entry.
pub static FACTORY: Factory = Factory;

static INFO: FactoryInfo = FactoryInfo {
    name: "spanmetrics",
    aliases: &[],
    stability: [Stability::Alpha, Stability::Undefined, Stability::Undefined],
};

impl ConnectorFactory for Factory {
    fn info(&self) -> &FactoryInfo {
        &INFO
    }

    fn pairs(&self) -> &'static [(Signal, Signal)] {
        &[(Signal::Traces, Signal::Metrics)]
    }

    fn validate(&self, config: &RawConfig) -> Result<(), FieldError> {
        decode::<Config>(config)?.validate()
    }

    fn create(
        &self,
        settings: &CreateSettings,
        config: &RawConfig,
        from: Signal,
        to: Signal,
        next: BoxConsumer,
    ) -> Result<BoxNode, ComponentError> {
        if (from, to) != (Signal::Traces, Signal::Metrics) {
            return Err(ComponentError::Other(format!(
                "connector does not support {from} to {to}"
            )));
        }
        let config = decode::<Config>(config)?;
        config.validate()?;
        Ok(Arc::new(SpanMetrics::new(
            &config,
            settings.id.to_string(),
            next,
        )))
    }
}

/// A running connector: the aggregation state and its flush task.
pub struct SpanMetrics {
    state: Arc<Mutex<Aggregator>>,
    interval: Duration,
    next: BoxConsumer,
    name: String,
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl SpanMetrics {
    /// A connector for a validated `config`, emitting to `next` once started.
    pub fn new(config: &Config, name: String, next: BoxConsumer) -> Self {
        Self {
            state: Arc::new(Mutex::new(Aggregator::new(config))),
            interval: config.metrics_flush_interval,
            next,
            name,
            stop: CancellationToken::new(),
            task: Mutex::new(None),
        }
    }
}

/// Now, in Unix nanoseconds.
fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// One flush: builds the metrics under the lock, sends them after releasing it.
async fn flush(state: &Mutex<Aggregator>, next: &BoxConsumer, name: &str) {
    let (metrics, evicted) = {
        let mut aggregator = state.lock().unwrap_or_else(|e| e.into_inner());
        (aggregator.flush(unix_nanos()), aggregator.take_evicted())
    };
    if evicted > 0 {
        metrics::counter!(names::SPANMETRICS_EVICTED, "connector" => name.to_owned())
            .increment(evicted);
        tracing::warn!(
            connector = name,
            evicted,
            "Cache full: least recently used series or resources evicted."
        );
    }
    if metrics.is_empty() {
        return;
    }
    if let Err(e) = next
        .consume(Batch::Metrics(metrics), &ClientInfo::default())
        .await
    {
        tracing::error!(connector = name, error = %e, "Failed ConsumeMetrics.");
    }
}

#[async_trait]
impl Consumer for SpanMetrics {
    async fn consume(&self, batch: Batch, _client: &ClientInfo) -> Result<(), ConsumeError> {
        if let Batch::Traces(resource_spans) = &batch {
            let now = unix_nanos();
            self.state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .aggregate(resource_spans, now);
        }
        Ok(())
    }
}

#[async_trait]
impl Component for SpanMetrics {
    async fn start(&self, _host: &Host) -> Result<(), ComponentError> {
        let mut task = self.task.lock().unwrap_or_else(|e| e.into_inner());
        if task.is_some() {
            return Ok(());
        }
        let (state, next, name, stop) = (
            self.state.clone(),
            self.next.clone(),
            self.name.clone(),
            self.stop.clone(),
        );
        let period = self.interval;
        *task = Some(tokio::spawn(async move {
            let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    biased;
                    () = stop.cancelled() => break,
                    _ = ticker.tick() => flush(&state, &next, &name).await,
                }
            }
        }));
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), ComponentError> {
        self.stop.cancel();
        let handle = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(handle) = handle else {
            return Ok(());
        };
        handle
            .await
            .map_err(|e| ComponentError::Other(format!("spanmetrics flush task failed: {e}")))?;
        flush(&self.state, &self.next, &self.name).await;
        Ok(())
    }
}
