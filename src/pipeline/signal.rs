//! The three telemetry signals a pipeline can carry.

use std::fmt;

/// A telemetry signal: the type of data a pipeline carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// Spans (`ResourceSpans`).
    Traces,
    /// Metric data points (`ResourceMetrics`).
    Metrics,
    /// Log records (`ResourceLogs`).
    Logs,
}

impl Signal {
    /// Every signal, in the order otelcol lists them.
    pub const ALL: [Self; 3] = [Self::Traces, Self::Metrics, Self::Logs];

    /// The name used in pipeline ids and own metrics (`traces`, `metrics`, `logs`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Traces => "traces",
            Self::Metrics => "metrics",
            Self::Logs => "logs",
        }
    }

    /// Parses a pipeline id's type part.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "traces" => Some(Self::Traces),
            "metrics" => Some(Self::Metrics),
            "logs" => Some(Self::Logs),
            _ => None,
        }
    }

    /// The item unit used in otelcol's own metric names
    /// (`otelcol_receiver_accepted_spans`, `…_metric_points`, `…_log_records`).
    pub fn item_name(self) -> &'static str {
        match self {
            Self::Traces => "spans",
            Self::Metrics => "metric_points",
            Self::Logs => "log_records",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
