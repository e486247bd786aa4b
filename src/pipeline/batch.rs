//! The unit of data that moves along every edge of the graph.
//!
//! There is no second data model: a batch is the OTLP protobuf structs themselves, exactly as
//! a receiver decoded them. Processors edit them in place, exporters encode them once.

use opentelemetry_proto::tonic::logs::v1::ResourceLogs;
use opentelemetry_proto::tonic::metrics::v1::{metric, Metric, ResourceMetrics};
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;

use super::Signal;

/// Owned telemetry of one signal.
#[derive(Clone, Debug, PartialEq)]
pub enum Batch {
    /// Spans grouped by resource and scope.
    Traces(Vec<ResourceSpans>),
    /// Metrics grouped by resource and scope.
    Metrics(Vec<ResourceMetrics>),
    /// Log records grouped by resource and scope.
    Logs(Vec<ResourceLogs>),
}

impl Batch {
    /// An empty batch of `signal`.
    pub fn empty(signal: Signal) -> Self {
        match signal {
            Signal::Traces => Self::Traces(Vec::new()),
            Signal::Metrics => Self::Metrics(Vec::new()),
            Signal::Logs => Self::Logs(Vec::new()),
        }
    }

    /// The signal this batch carries.
    pub fn signal(&self) -> Signal {
        match self {
            Self::Traces(_) => Signal::Traces,
            Self::Metrics(_) => Signal::Metrics,
            Self::Logs(_) => Signal::Logs,
        }
    }

    /// Items as otelcol counts them: spans, metric data points, or log records.
    pub fn item_count(&self) -> usize {
        match self {
            Self::Traces(rs) => rs
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum(),
            Self::Metrics(rm) => rm
                .iter()
                .flat_map(|r| &r.scope_metrics)
                .flat_map(|s| &s.metrics)
                .map(data_point_count)
                .sum(),
            Self::Logs(rl) => rl
                .iter()
                .flat_map(|r| &r.scope_logs)
                .map(|s| s.log_records.len())
                .sum(),
        }
    }

    /// The `Export*ServiceRequest` protobuf carrying this batch, encoded straight from it:
    /// all three requests are one repeated message field with tag 1, so no request struct
    /// (and no copy of the data) is needed.
    pub fn encode_request(&self) -> Vec<u8> {
        fn request<M: prost::Message>(items: &[M]) -> Vec<u8> {
            let len = items
                .iter()
                .map(|m| prost::encoding::message::encoded_len(1, m))
                .sum();
            let mut buf = Vec::with_capacity(len);
            for m in items {
                prost::encoding::message::encode(1, m, &mut buf);
            }
            buf
        }
        match self {
            Self::Traces(rs) => request(rs),
            Self::Metrics(rm) => request(rm),
            Self::Logs(rl) => request(rl),
        }
    }

    /// True when the batch holds no item (it may still hold empty resources).
    pub fn is_empty(&self) -> bool {
        self.item_count() == 0
    }
}

/// Number of data points in one metric, whatever its type.
pub fn data_point_count(metric: &Metric) -> usize {
    match &metric.data {
        Some(metric::Data::Gauge(g)) => g.data_points.len(),
        Some(metric::Data::Sum(s)) => s.data_points.len(),
        Some(metric::Data::Histogram(h)) => h.data_points.len(),
        Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(metric::Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }
}
