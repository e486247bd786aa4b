//! The resolved configuration: every component section by id, and the service.
//!
//! Component sections stay as YAML values here; each factory decodes its own (see
//! [`super::decode`]), so the loader needs no knowledge of any component.

use std::collections::BTreeMap;
use std::fmt;

use crate::component::RawConfig;
use crate::pipeline::Signal;

use super::ComponentId;

/// A whole collector config after sources were merged and `${…}` expanded.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// `receivers:` sections by id.
    pub receivers: BTreeMap<ComponentId, RawConfig>,
    /// `processors:` sections by id.
    pub processors: BTreeMap<ComponentId, RawConfig>,
    /// `exporters:` sections by id.
    pub exporters: BTreeMap<ComponentId, RawConfig>,
    /// `connectors:` sections by id.
    pub connectors: BTreeMap<ComponentId, RawConfig>,
    /// `extensions:` sections by id.
    pub extensions: BTreeMap<ComponentId, RawConfig>,
    /// `service:`.
    pub service: Service,
}

/// The `service:` section.
#[derive(Clone, Debug, Default)]
pub struct Service {
    /// Extensions to start, in order.
    pub extensions: Vec<ComponentId>,
    /// Pipelines by id.
    pub pipelines: BTreeMap<PipelineId, Pipeline>,
    /// The collector's own logs and metrics.
    pub telemetry: Telemetry,
}

/// A pipeline id: `traces`, `metrics/kong`, …
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PipelineId {
    /// The signal the pipeline carries.
    pub signal: Signal,
    /// The part after `/`, if any.
    pub name: Option<String>,
}

impl fmt::Display for PipelineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{}/{n}", self.signal),
            None => f.write_str(self.signal.as_str()),
        }
    }
}

/// One pipeline: receivers (or connectors) → processors → exporters (or connectors).
#[derive(Clone, Debug, Default)]
pub struct Pipeline {
    /// Receiver or connector ids feeding the pipeline.
    pub receivers: Vec<ComponentId>,
    /// Processor ids, in order.
    pub processors: Vec<ComponentId>,
    /// Exporter or connector ids the pipeline feeds.
    pub exporters: Vec<ComponentId>,
}

/// Log level of the collector's own logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogLevel {
    /// Everything.
    Debug,
    /// The default.
    #[default]
    Info,
    /// Warnings and errors.
    Warn,
    /// Errors only.
    Error,
}

/// `service.telemetry`.
#[derive(Clone, Debug)]
pub struct Telemetry {
    /// `logs.level`.
    pub log_level: LogLevel,
    /// Where own metrics are served (`metrics.address`, or the pull reader's host:port);
    /// `None` when `metrics.level: none`.
    pub metrics_address: Option<String>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self {
            log_level: LogLevel::Info,
            metrics_address: Some("localhost:8888".to_owned()),
        }
    }
}
