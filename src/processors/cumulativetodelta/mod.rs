//! `cumulativetodelta` processor: turns cumulative monotonic sums and cumulative
//! histograms into deltas, for backends that only take deltas (Dynatrace).
//!
//! ```yaml
//! processors:
//!   cumulativetodelta:
//!     include:
//!       match_type: strict
//!       metrics: [kong_http_requests_total]
//!       metric_types: [sum]
//!     max_staleness: 1h
//!     initial_value: auto
//! ```
//!
//! A series is resource + scope + metric (name, unit, type, monotonic, value type) + start
//! timestamp + point attributes. Its first point becomes the baseline (emitted or not by
//! `initial_value`); later points carry `value − previous` with start = previous timestamp.
//! A sum that goes down is a reset: that point is dropped and becomes the new baseline. A
//! histogram whose count goes down is emitted with its full values. Gauges, summaries,
//! exponential histograms, non-monotonic sums and deltas pass untouched. Stale markers
//! (NoRecordedValue) are removed; metrics, scopes and resources left empty are removed.
//!
//! State is bounded: `max_staleness` forgets quiet series, and at most
//! [`tracker::MAX_SERIES`] series are tracked.

mod config;
mod identity;
#[cfg(test)]
mod tests;
pub mod tracker;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub use config::{Config, InitialValue, MatchMetrics};

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Metric, ResourceMetrics,
};
use regex::RegexSet;
use tracker::{Delta, HistogramValue, Point, Skip, Tracker, Value};

use crate::component::{
    BoxNode, ComponentError, CreateSettings, FactoryInfo, ProcessorFactory, RawConfig, Stability,
};
use crate::config::{decode, FieldError};
use crate::pipeline::{Batch, BoxConsumer, ClientInfo, ConsumeError};
use crate::processors::{Processor, ProcessorNode};
use crate::telemetry::names;

/// The `cumulativetodelta` factory.
pub struct Factory;

/// The registry entry.
pub static FACTORY: Factory = Factory;

static INFO: FactoryInfo = FactoryInfo {
    name: "cumulativetodelta",
    aliases: &[],
    stability: [Stability::Undefined, Stability::Beta, Stability::Undefined],
};

/// The data-point flag for "no recorded value" (a Prometheus stale marker).
const NO_RECORDED_VALUE: u32 = 1;

enum Names {
    Strict(HashSet<String>),
    Regexp(RegexSet),
}

impl Names {
    fn matches(&self, name: &str) -> bool {
        match self {
            Self::Strict(set) => set.contains(name),
            Self::Regexp(set) => set.is_match(name),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sum,
    Histogram,
}

struct Filter {
    names: Option<Names>,
    kinds: Vec<Kind>,
}

impl Filter {
    fn compile(m: Option<&MatchMetrics>, section: &str) -> Result<Self, FieldError> {
        let Some(m) = m else {
            return Ok(Self {
                names: None,
                kinds: Vec::new(),
            });
        };
        let names = if m.metrics.is_empty() {
            None
        } else if m.match_type == "regexp" {
            Some(Names::Regexp(RegexSet::new(&m.metrics).map_err(|e| {
                FieldError::at(&[section, "metrics"], format!("invalid regexp: {e}"))
            })?))
        } else {
            Some(Names::Strict(m.metrics.iter().cloned().collect()))
        };
        let kinds = m
            .metric_types
            .iter()
            .map(|t| {
                if t.eq_ignore_ascii_case("sum") {
                    Kind::Sum
                } else {
                    Kind::Histogram
                }
            })
            .collect();
        Ok(Self { names, kinds })
    }
}

/// The processor: filters plus the tracked series.
pub struct CumulativeToDelta {
    include: Filter,
    exclude: Filter,
    tracker: Mutex<Tracker>,
}

impl CumulativeToDelta {
    /// Compiles `config`; the processor's start time (for `initial_value: auto`) is now.
    ///
    /// # Errors
    /// otelcol's validation messages, or a bad regexp.
    pub fn new(config: &Config) -> Result<Self, FieldError> {
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        Self::with_start(config, started, tracker::MAX_SERIES)
    }

    /// [`Self::new`] with a given start time (ns since the epoch) and series bound.
    ///
    /// # Errors
    /// As [`Self::new`].
    pub fn with_start(config: &Config, started: u64, limit: usize) -> Result<Self, FieldError> {
        config.validate()?;
        Ok(Self {
            include: Filter::compile(config.include.as_ref(), "include")?,
            exclude: Filter::compile(config.exclude.as_ref(), "exclude")?,
            tracker: Mutex::new(Tracker::new(
                config.initial_value,
                started,
                config.max_staleness,
                limit,
            )),
        })
    }

    /// Number of series currently tracked.
    pub fn tracked_series(&self) -> usize {
        self.tracker.lock().map_or(0, |t| t.len())
    }

    fn selected(&self, name: &str, kind: Kind) -> bool {
        let included = self.include.names.as_ref().is_none_or(|n| n.matches(name))
            && (self.include.kinds.is_empty() || self.include.kinds.contains(&kind));
        let excluded = self.exclude.names.as_ref().is_some_and(|n| n.matches(name))
            || self.exclude.kinds.contains(&kind);
        included && !excluded
    }

    fn convert_resource(
        &self,
        rm: &mut ResourceMetrics,
        tracker: &mut Tracker,
        now: Instant,
        full: &mut u64,
    ) {
        let mut resource_key = Vec::new();
        identity::write_attributes(
            rm.resource
                .as_ref()
                .map_or(&[][..], |r| r.attributes.as_slice()),
            &mut resource_key,
        );
        for sm in &mut rm.scope_metrics {
            let mut scope_key = resource_key.clone();
            identity::write_scope(sm.scope.as_ref(), &mut scope_key);
            for m in &mut sm.metrics {
                self.convert_metric(m, &scope_key, tracker, now, full);
            }
            sm.metrics.retain(|m| point_count(m) > 0);
        }
        rm.scope_metrics.retain(|s| !s.metrics.is_empty());
    }

    fn convert_metric(
        &self,
        m: &mut Metric,
        scope_key: &[u8],
        tracker: &mut Tracker,
        now: Instant,
        full: &mut u64,
    ) {
        let cumulative = AggregationTemporality::Cumulative as i32;
        let kind = match &m.data {
            Some(metric::Data::Sum(s))
                if s.is_monotonic && s.aggregation_temporality == cumulative =>
            {
                Kind::Sum
            }
            Some(metric::Data::Histogram(h)) if h.aggregation_temporality == cumulative => {
                Kind::Histogram
            }
            _ => return,
        };
        if !self.selected(&m.name, kind) {
            return;
        }
        let mut prefix = scope_key.to_vec();
        identity::write_str(&m.name, &mut prefix);
        identity::write_str(&m.unit, &mut prefix);
        prefix.push(match kind {
            Kind::Sum => b's',
            Kind::Histogram => b'h',
        });
        let key = |value_type: u8, start: u64, attrs: &[KeyValue]| {
            let mut key = prefix.clone();
            key.push(value_type);
            key.extend_from_slice(&start.to_le_bytes());
            identity::write_attributes(attrs, &mut key);
            key
        };
        let mut outcome = |r: Result<Delta, Skip>| match r {
            Ok(d) => Some(d),
            Err(Skip::Full) => {
                *full += 1;
                None
            }
            Err(Skip::Initial | Skip::Reset) => None,
        };
        match &mut m.data {
            Some(metric::Data::Sum(s)) => {
                s.aggregation_temporality = AggregationTemporality::Delta as i32;
                s.data_points.retain_mut(|p| {
                    if p.flags & NO_RECORDED_VALUE != 0 {
                        return false;
                    }
                    let (tag, value) = match p.value {
                        Some(number_data_point::Value::AsInt(i)) => (b'i', Value::Int(i)),
                        Some(number_data_point::Value::AsDouble(d)) if d.is_nan() => return true,
                        Some(number_data_point::Value::AsDouble(d)) => (b'd', Value::Double(d)),
                        None => return false,
                    };
                    let point = Point {
                        start: p.start_time_unix_nano,
                        time: p.time_unix_nano,
                        value,
                    };
                    let k = key(tag, p.start_time_unix_nano, &p.attributes);
                    let Some(delta) = outcome(tracker.convert(k, point, now)) else {
                        return false;
                    };
                    p.start_time_unix_nano = delta.start;
                    match delta.value {
                        Value::Int(i) => p.value = Some(number_data_point::Value::AsInt(i)),
                        Value::Double(d) => p.value = Some(number_data_point::Value::AsDouble(d)),
                        Value::Histogram(_) => return false,
                    }
                    true
                });
            }
            Some(metric::Data::Histogram(h)) => {
                h.aggregation_temporality = AggregationTemporality::Delta as i32;
                h.data_points.retain_mut(|p| {
                    if p.flags & NO_RECORDED_VALUE != 0 {
                        return false;
                    }
                    let point = Point {
                        start: p.start_time_unix_nano,
                        time: p.time_unix_nano,
                        value: Value::Histogram(HistogramValue {
                            count: p.count,
                            sum: p.sum.unwrap_or(f64::NAN),
                            buckets: p.bucket_counts.clone(),
                        }),
                    };
                    let k = key(b'i', p.start_time_unix_nano, &p.attributes);
                    let Some(delta) = outcome(tracker.convert(k, point, now)) else {
                        return false;
                    };
                    let Value::Histogram(v) = delta.value else {
                        return false;
                    };
                    p.start_time_unix_nano = delta.start;
                    p.count = v.count;
                    p.sum = p.sum.map(|_| v.sum);
                    p.bucket_counts = v.buckets;
                    p.min = None;
                    p.max = None;
                    true
                });
            }
            _ => {}
        }
    }
}

fn point_count(m: &Metric) -> usize {
    match &m.data {
        Some(metric::Data::Gauge(g)) => g.data_points.len(),
        Some(metric::Data::Sum(s)) => s.data_points.len(),
        Some(metric::Data::Histogram(h)) => h.data_points.len(),
        Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(metric::Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }
}

impl Processor for CumulativeToDelta {
    fn process(&self, mut batch: Batch, _client: &ClientInfo) -> Result<Batch, ConsumeError> {
        let Batch::Metrics(resources) = &mut batch else {
            return Ok(batch);
        };
        let now = Instant::now();
        let mut full = 0u64;
        {
            // One lock per batch; a poisoned lock means a panic elsewhere already happened,
            // and the state is still consistent per entry.
            let mut tracker = self
                .tracker
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            tracker.sweep(now);
            for rm in resources.iter_mut() {
                self.convert_resource(rm, &mut tracker, now, &mut full);
            }
        }
        resources.retain(|r| !r.scope_metrics.is_empty());
        if full > 0 {
            metrics::counter!(names::CUMULATIVETODELTA_UNTRACKED_POINTS).increment(full);
            tracing::warn!(
                points = full,
                limit = tracker::MAX_SERIES,
                "cumulativetodelta tracks its maximum number of series; points of new series dropped."
            );
        }
        Ok(batch)
    }
}

impl ProcessorFactory for Factory {
    fn info(&self) -> &FactoryInfo {
        &INFO
    }

    fn validate(&self, config: &RawConfig) -> Result<(), FieldError> {
        CumulativeToDelta::new(&decode::<Config>(config)?).map(drop)
    }

    fn create(
        &self,
        settings: &CreateSettings,
        config: &RawConfig,
        next: BoxConsumer,
    ) -> Result<BoxNode, ComponentError> {
        let processor = CumulativeToDelta::new(&decode::<Config>(config)?)?;
        Ok(Arc::new(ProcessorNode::new(
            processor,
            settings.id.to_string(),
            settings.signal,
            next,
        )))
    }
}
