//! `prometheus` receiver: scrapes Prometheus / OpenMetrics endpoints as Prometheus 2.54
//! does and hands each scrape to the metrics pipelines as OTLP.
//!
//! ```yaml
//! receivers:
//!   prometheus:
//!     config:
//!       scrape_configs:
//!         - job_name: kong
//!           scrape_interval: 5s
//!           kubernetes_sd_configs:
//!             - role: pod
//!           relabel_configs:
//!             - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape]
//!               action: keep
//!               regex: "true"
//!             - source_labels: [__address__, __meta_kubernetes_pod_annotation_prometheus_io_port]
//!               regex: ([^:]+)(?::\d+)?;(\d+)
//!               replacement: $$1:$$2
//!               target_label: __address__
//! ```
//!
//! Targets come from `static_configs`, `file_sd_configs` and `kubernetes_sd_configs`,
//! relabelled by `relabel_configs`; each target is scraped every `scrape_interval` (text
//! 0.0.4 or OpenMetrics, negotiated by `Accept`), its samples relabelled by
//! `metric_relabel_configs`, and converted: one resource per target (`service.name` = job,
//! `service.instance.id` = instance), counters as cumulative monotonic sums with start
//! times, gauges, histograms, summaries, stale markers as points flagged
//! no-recorded-value, plus `up` and `scrape_*`. A malformed exposition fails only that
//! scrape (`up` = 0, logged).

pub mod config;
pub mod convert;
pub mod discovery;
pub mod labels;
pub mod parse;
pub mod relabel;
pub mod scrape;
pub mod target;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::Config;

use crate::component::{
    Component, ComponentError, CreateSettings, FactoryInfo, Host, RawConfig, ReceiverConsumers,
    ReceiverFactory, Stability,
};
use crate::config::{decode, FieldError};
use crate::pipeline::Signal;

/// The `prometheus` receiver factory.
pub struct Factory;

/// The registry entry.
pub static FACTORY: Factory = Factory;

static INFO: FactoryInfo = FactoryInfo {
    name: "prometheus",
    aliases: &[],
    stability: [Stability::Undefined, Stability::Beta, Stability::Undefined],
};

/// Decodes and validates the receiver's section.
///
/// # Errors
/// The first problem, located by key path.
pub fn decode_config(raw: &RawConfig) -> Result<Config, FieldError> {
    let mut config: Config = decode(raw)?;
    config.validate()?;
    load_scrape_config_files(&mut config)?;
    Ok(config)
}

/// Appends the `scrape_configs` of every file `scrape_config_files` matches.
fn load_scrape_config_files(config: &mut Config) -> Result<(), FieldError> {
    #[derive(serde::Deserialize, Default)]
    #[serde(deny_unknown_fields, default)]
    struct File {
        scrape_configs: Vec<config::ScrapeConfig>,
    }
    let patterns = config.config.scrape_config_files.clone();
    for (i, pattern) in patterns.iter().enumerate() {
        let at = || {
            vec![
                "config".to_owned(),
                "scrape_config_files".to_owned(),
                i.to_string(),
            ]
        };
        for path in discovery::file::expand(pattern) {
            let text = std::fs::read_to_string(&path).map_err(|e| FieldError {
                path: at(),
                message: format!("read {}: {e}", path.display()),
            })?;
            let value: yaml_serde::Value = yaml_serde::from_str(&text).map_err(|e| FieldError {
                path: at(),
                message: format!("parse {}: {e}", path.display()),
            })?;
            let file: File = decode(&value).map_err(|e| FieldError {
                path: at(),
                message: format!("{}: {e}", path.display()),
            })?;
            config.config.scrape_configs.extend(file.scrape_configs);
        }
    }
    let files = std::mem::take(&mut config.config.scrape_config_files);
    let checked = config.validate();
    config.config.scrape_config_files = files;
    checked
}

impl ReceiverFactory for Factory {
    fn info(&self) -> &FactoryInfo {
        &INFO
    }

    fn validate(&self, config: &RawConfig) -> Result<(), FieldError> {
        decode_config(config).map(drop)
    }

    fn create(
        &self,
        settings: &CreateSettings,
        config: &RawConfig,
        consumers: ReceiverConsumers,
    ) -> Result<Arc<dyn Component>, ComponentError> {
        let config = decode_config(config)?;
        let consumer = consumers.get(Signal::Metrics).cloned().ok_or_else(|| {
            ComponentError::Other("prometheus receiver needs a metrics pipeline".to_owned())
        })?;
        let mut jobs = Vec::new();
        for sc in &config.config.scrape_configs {
            let job = config.job(sc);
            let relabel = relabel::rules(&sc.relabel_configs).map_err(ComponentError::Other)?;
            let metric_relabel =
                relabel::rules(&sc.metric_relabel_configs).map_err(ComponentError::Other)?;
            let options = convert::Options {
                honor_labels: sc.honor_labels,
                honor_timestamps: job.honor_timestamps,
                metric_relabel,
                sample_limit: job.sample_limit,
                label_limit: job.label_limit,
                label_name_length_limit: job.label_name_length_limit,
                label_value_length_limit: job.label_value_length_limit,
                external_labels: config
                    .config
                    .global
                    .external_labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                interval: job.interval,
                timeout: job.timeout,
                extra_scrape_metrics: config.report_extra_scrape_metrics,
                start_time_metric: start_time_metric(&config)?,
                trim_metric_suffixes: config.trim_metric_suffixes,
            };
            let ctx = scrape::JobContext::new(
                &settings.id.to_string(),
                job,
                relabel,
                options,
                consumer.clone(),
            )?;
            jobs.push(Arc::new(ctx));
        }
        Ok(Arc::new(Receiver {
            jobs,
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
        }))
    }
}

/// The regex of `start_time_metric_regex` (default `process_start_time_seconds`) when
/// `use_start_time_metric` is on.
fn start_time_metric(config: &Config) -> Result<Option<regex::Regex>, ComponentError> {
    if !config.use_start_time_metric {
        return Ok(None);
    }
    let source = if config.start_time_metric_regex.is_empty() {
        "^process_start_time_seconds$"
    } else {
        config.start_time_metric_regex.as_str()
    };
    regex::Regex::new(source)
        .map(Some)
        .map_err(|e| ComponentError::Other(format!("invalid start_time_metric_regex: {e}")))
}

/// A running `prometheus` receiver.
pub struct Receiver {
    jobs: Vec<Arc<scrape::JobContext>>,
    stop: CancellationToken,
    tasks: TaskTracker,
}

#[async_trait]
impl Component for Receiver {
    async fn start(&self, _host: &Host) -> Result<(), ComponentError> {
        for ctx in &self.jobs {
            let (tx, rx) = tokio::sync::mpsc::channel(16);
            discovery::start(&ctx.job.config, &tx, &self.stop, &self.tasks);
            drop(tx);
            self.tasks
                .spawn(scrape::run_job(ctx.clone(), rx, self.stop.clone()));
        }
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), ComponentError> {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        Ok(())
    }
}
