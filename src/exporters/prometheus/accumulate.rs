//! The pull model's state: the latest value of every series, updated per data point and
//! read by scrapes as a snapshot of shared, immutable series.
//!
//! A series is (metric type, scope name, OTel metric name, point attributes, job,
//! instance). Cumulative data replaces; monotonic deltas add up when contiguous (start ==
//! previous timestamp) and replace otherwise; delta histograms merge when contiguous and
//! their bounds agree. Series not updated for `metric_expiration` disappear.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics,
};

use super::naming::{self, Shape};
use crate::pipeline::as_string;

/// The data-point flag for "no recorded value" (a stale marker).
const NO_RECORDED_VALUE: u32 = 1;

/// Prometheus metric types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// `counter`.
    Counter,
    /// `gauge`.
    Gauge,
    /// `histogram`.
    Histogram,
    /// `summary`.
    Summary,
}

impl Kind {
    /// The `# TYPE` word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
            Self::Summary => "summary",
        }
    }
}

/// A number as received: integers stay integers until rendered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Number {
    /// `as_int`.
    Int(i64),
    /// `as_double`.
    Double(f64),
}

impl Number {
    /// As a float, for rendering.
    pub fn as_f64(self) -> f64 {
        match self {
            Self::Int(i) => i as f64,
            Self::Double(d) => d,
        }
    }

    fn add(self, other: Self) -> Self {
        match (self, other) {
            (Self::Int(a), Self::Int(b)) => Self::Int(a.wrapping_add(b)),
            (a, b) => Self::Double(a.as_f64() + b.as_f64()),
        }
    }
}

/// A series' value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Counter or gauge.
    Number(Number),
    /// Explicit-bucket histogram, OTel layout (per-bucket counts).
    Histogram {
        /// Observation count.
        count: u64,
        /// Observation sum (0 when absent).
        sum: f64,
        /// Upper bounds.
        bounds: Vec<f64>,
        /// Per-bucket counts (`bounds.len() + 1` when well-formed).
        buckets: Vec<u64>,
    },
    /// Summary.
    Summary {
        /// Observation count.
        count: u64,
        /// Observation sum.
        sum: f64,
        /// (quantile, value) pairs.
        quantiles: Vec<(f64, f64)>,
    },
}

/// What `target_info` needs from a resource.
#[derive(Debug, PartialEq)]
pub struct Target {
    /// `job` label.
    pub job: String,
    /// `instance` label.
    pub instance: String,
    /// Other resource attributes as label pairs (normalised, colliding names joined with `;`).
    pub labels: Vec<(String, String)>,
}

/// One live series, shared with snapshots.
#[derive(Clone, Debug)]
pub struct Series {
    /// Prometheus metric name (with suffixes, namespace).
    pub name: String,
    /// HELP text (the OTel description).
    pub help: String,
    /// Prometheus type.
    pub kind: Kind,
    /// Label pairs, sorted by name, job/instance and const labels included.
    pub labels: Vec<(String, String)>,
    /// Latest value.
    pub value: Value,
    /// Start timestamp (ns), 0 when unknown.
    pub start: u64,
    /// Timestamp of the latest point (ns).
    pub time: u64,
    /// The target this series belongs to, when it has both service.name and
    /// service.instance.id.
    pub target: Option<Arc<Target>>,
    /// Order of first appearance, so type and HELP conflicts keep the first.
    pub seq: u64,
    updated: Instant,
}

/// What the exporter does with names and labels.
#[derive(Clone, Debug, Default)]
pub struct Naming {
    /// Cleaned namespace.
    pub namespace: String,
    /// Const labels (already valid names).
    pub const_labels: Vec<(String, String)>,
    /// Type and unit suffixes.
    pub suffixes: bool,
    /// Copy resource attributes onto points.
    pub resource_to_telemetry: bool,
}

/// Counts of what one batch did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Points stored or merged.
    pub accepted: u64,
    /// Points dropped: unsupported types, delta non-monotonic sums, misaligned, label
    /// collisions.
    pub dropped: u64,
    /// Exponential histogram points (not supported, as otelcol 0.119).
    pub exponential: u64,
    /// Points whose labels collided after normalisation.
    pub collisions: u64,
}

/// Every live series by identity.
pub struct Accumulator {
    series: HashMap<Vec<u8>, Arc<Series>>,
    naming: Naming,
    expiration: Duration,
    next_seq: u64,
    limit: usize,
}

/// Most series held at once; points of new series past it are dropped and counted.
pub const MAX_SERIES: usize = 1_000_000;

struct ResourceView {
    job: Option<String>,
    instance: Option<String>,
    target: Option<Arc<Target>>,
    attributes: Vec<KeyValue>,
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a KeyValue> {
    attrs.iter().find(|kv| kv.key == key)
}

fn resource_view(attrs: &[KeyValue]) -> ResourceView {
    let text = |k| attr(attrs, k).map(|kv| as_string(kv.value.as_ref()));
    let name = text("service.name");
    let job = name.as_ref().map(|n| match text("service.namespace") {
        Some(ns) => format!("{ns}/{n}"),
        None => n.clone(),
    });
    let instance = text("service.instance.id");
    let target = match (&job, &instance) {
        (Some(job), Some(instance)) => {
            let mut labels: Vec<(String, String)> = Vec::new();
            for kv in attrs {
                if matches!(
                    kv.key.as_str(),
                    "service.name" | "service.namespace" | "service.instance.id"
                ) {
                    continue;
                }
                let name = naming::label_name(&kv.key);
                let value = as_string(kv.value.as_ref());
                match labels.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, v)) => {
                        v.push(';');
                        v.push_str(&value);
                    }
                    None => labels.push((name, value)),
                }
            }
            labels.retain(|(n, _)| n != "job" && n != "instance");
            labels.push(("instance".to_owned(), instance.clone()));
            labels.push(("job".to_owned(), job.clone()));
            labels.sort();
            Some(Arc::new(Target {
                job: job.clone(),
                instance: instance.clone(),
                labels,
            }))
        }
        _ => None,
    };
    ResourceView {
        job,
        instance,
        target,
        attributes: attrs.to_vec(),
    }
}

impl Accumulator {
    /// An empty accumulator.
    pub fn new(naming: Naming, expiration: Duration) -> Self {
        Self::with_limit(naming, expiration, MAX_SERIES)
    }

    /// [`Self::new`] holding at most `limit` series.
    pub fn with_limit(naming: Naming, expiration: Duration, limit: usize) -> Self {
        Self {
            series: HashMap::new(),
            naming,
            expiration,
            next_seq: 0,
            limit,
        }
    }

    /// Number of live series (expired ones included until the next snapshot).
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// True when no series is held.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Removes expired series and returns the live ones, sharing their data.
    pub fn snapshot(&mut self, now: Instant) -> Vec<Arc<Series>> {
        self.expire(now);
        self.series.values().cloned().collect()
    }

    fn expire(&mut self, now: Instant) {
        if let Some(oldest) = now.checked_sub(self.expiration) {
            self.series.retain(|_, s| s.updated >= oldest);
        }
    }

    /// Takes every point of `resources`.
    pub fn accumulate(&mut self, resources: &[ResourceMetrics], now: Instant) -> Outcome {
        let mut outcome = Outcome::default();
        for rm in resources {
            let attrs = rm
                .resource
                .as_ref()
                .map_or(&[][..], |r| r.attributes.as_slice());
            let view = resource_view(attrs);
            for sm in &rm.scope_metrics {
                let scope = sm.scope.as_ref().map_or("", |s| s.name.as_str());
                for m in &sm.metrics {
                    self.metric(m, scope, &view, now, &mut outcome);
                }
            }
        }
        outcome
    }

    fn metric(
        &mut self,
        m: &Metric,
        scope: &str,
        view: &ResourceView,
        now: Instant,
        outcome: &mut Outcome,
    ) {
        let delta = AggregationTemporality::Delta as i32;
        let cumulative = AggregationTemporality::Cumulative as i32;
        match &m.data {
            Some(metric::Data::Gauge(g)) => {
                let ctx = self.context(m, scope, view, Kind::Gauge, Shape::Gauge);
                for p in &g.data_points {
                    if p.flags & NO_RECORDED_VALUE != 0 {
                        self.series.remove(&ctx.key(&p.attributes));
                        return;
                    }
                    self.number(&ctx, p, false, now, outcome);
                }
            }
            Some(metric::Data::Sum(s)) => {
                let is_delta = s.aggregation_temporality == delta;
                if (s.aggregation_temporality != delta && s.aggregation_temporality != cumulative)
                    || (is_delta && !s.is_monotonic)
                {
                    outcome.dropped += s.data_points.len() as u64;
                    return;
                }
                let (kind, shape) = if s.is_monotonic {
                    (Kind::Counter, Shape::Counter)
                } else {
                    (Kind::Gauge, Shape::Gauge)
                };
                let ctx = self.context(m, scope, view, kind, shape);
                for p in &s.data_points {
                    if p.flags & NO_RECORDED_VALUE != 0 {
                        self.series.remove(&ctx.key(&p.attributes));
                        return;
                    }
                    self.number(&ctx, p, is_delta, now, outcome);
                }
            }
            Some(metric::Data::Histogram(h)) => {
                let is_delta = h.aggregation_temporality == delta;
                if !is_delta && h.aggregation_temporality != cumulative {
                    outcome.dropped += h.data_points.len() as u64;
                    return;
                }
                let ctx = self.context(m, scope, view, Kind::Histogram, Shape::Other);
                for p in &h.data_points {
                    if p.flags & NO_RECORDED_VALUE != 0 {
                        self.series.remove(&ctx.key(&p.attributes));
                        return;
                    }
                    self.histogram(&ctx, p, is_delta, now, outcome);
                }
            }
            Some(metric::Data::Summary(s)) => {
                let ctx = self.context(m, scope, view, Kind::Summary, Shape::Other);
                for p in &s.data_points {
                    if p.flags & NO_RECORDED_VALUE != 0 {
                        self.series.remove(&ctx.key(&p.attributes));
                        return;
                    }
                    let value = Value::Summary {
                        count: p.count,
                        sum: p.sum,
                        quantiles: p
                            .quantile_values
                            .iter()
                            .map(|q| (q.quantile, q.value))
                            .collect(),
                    };
                    let key = ctx.key(&p.attributes);
                    if self
                        .series
                        .get(&key)
                        .is_some_and(|old| p.time_unix_nano < old.time)
                    {
                        continue;
                    }
                    self.store(
                        &ctx,
                        key,
                        &p.attributes,
                        value,
                        p.start_time_unix_nano,
                        p.time_unix_nano,
                        now,
                        outcome,
                    );
                }
            }
            Some(metric::Data::ExponentialHistogram(h)) => {
                outcome.exponential += h.data_points.len() as u64;
            }
            None => {}
        }
    }

    fn context<'a>(
        &self,
        m: &'a Metric,
        scope: &'a str,
        view: &'a ResourceView,
        kind: Kind,
        shape: Shape,
    ) -> Context<'a> {
        Context {
            name: naming::metric_name(
                &m.name,
                &m.unit,
                shape,
                &self.naming.namespace,
                self.naming.suffixes,
            ),
            otel_name: &m.name,
            help: &m.description,
            scope,
            kind,
            view,
            resource_to_telemetry: self.naming.resource_to_telemetry,
        }
    }

    fn number(
        &mut self,
        ctx: &Context<'_>,
        p: &NumberDataPoint,
        is_delta: bool,
        now: Instant,
        outcome: &mut Outcome,
    ) {
        let mut value = match p.value {
            Some(number_data_point::Value::AsInt(i)) => Number::Int(i),
            Some(number_data_point::Value::AsDouble(d)) => Number::Double(d),
            None => {
                outcome.dropped += 1;
                return;
            }
        };
        let key = ctx.key(&p.attributes);
        let mut start = p.start_time_unix_nano;
        if let Some(old) = self.series.get(&key) {
            if p.time_unix_nano < old.time {
                return;
            }
            if is_delta && p.start_time_unix_nano == old.time {
                if let Value::Number(prev) = old.value {
                    value = prev.add(value);
                    start = old.start;
                }
            }
        }
        self.store(
            ctx,
            key,
            &p.attributes,
            Value::Number(value),
            start,
            p.time_unix_nano,
            now,
            outcome,
        );
    }

    fn histogram(
        &mut self,
        ctx: &Context<'_>,
        p: &HistogramDataPoint,
        is_delta: bool,
        now: Instant,
        outcome: &mut Outcome,
    ) {
        let key = ctx.key(&p.attributes);
        let mut value = Value::Histogram {
            count: p.count,
            sum: p.sum.unwrap_or(0.0),
            bounds: p.explicit_bounds.clone(),
            buckets: p.bucket_counts.clone(),
        };
        let mut start = p.start_time_unix_nano;
        if let Some(old) = self.series.get(&key) {
            if p.time_unix_nano < old.time {
                return;
            }
            if is_delta {
                if p.start_time_unix_nano == old.time {
                    if let (
                        Value::Histogram {
                            count: c0,
                            sum: s0,
                            bounds: b0,
                            buckets: k0,
                        },
                        Value::Histogram {
                            count,
                            sum,
                            bounds,
                            buckets,
                        },
                    ) = (&old.value, &mut value)
                    {
                        if b0 == bounds && k0.len() == buckets.len() {
                            *count += c0;
                            *sum += s0;
                            for (b, prev) in buckets.iter_mut().zip(k0) {
                                *b += prev;
                            }
                        }
                        start = old.start;
                    }
                } else if p.start_time_unix_nano < old.time {
                    tracing::warn!(metric = %ctx.otel_name, "Dropped misaligned histogram datapoint");
                    outcome.dropped += 1;
                    return;
                }
            }
        }
        self.store(
            ctx,
            key,
            &p.attributes,
            value,
            start,
            p.time_unix_nano,
            now,
            outcome,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn store(
        &mut self,
        ctx: &Context<'_>,
        key: Vec<u8>,
        attributes: &[KeyValue],
        value: Value,
        start: u64,
        time: u64,
        now: Instant,
        outcome: &mut Outcome,
    ) {
        if let Some(existing) = self.series.get_mut(&key) {
            let s = Arc::make_mut(existing);
            s.value = value;
            s.start = start;
            s.time = time;
            s.updated = now;
            s.target.clone_from(&ctx.view.target);
            outcome.accepted += 1;
            return;
        }
        if self.series.len() >= self.limit {
            // Expired series make room before new ones are refused.
            self.expire(now);
            if self.series.len() >= self.limit {
                outcome.dropped += 1;
                return;
            }
        }
        let Some(labels) = ctx.labels(attributes, &self.naming.const_labels) else {
            outcome.collisions += 1;
            outcome.dropped += 1;
            return;
        };
        self.next_seq += 1;
        self.series.insert(
            key,
            Arc::new(Series {
                name: ctx.name.clone(),
                help: ctx.help.to_owned(),
                kind: ctx.kind,
                labels,
                value,
                start,
                time,
                target: ctx.view.target.clone(),
                seq: self.next_seq,
                updated: now,
            }),
        );
        outcome.accepted += 1;
    }
}

struct Context<'a> {
    name: String,
    otel_name: &'a str,
    help: &'a str,
    scope: &'a str,
    kind: Kind,
    view: &'a ResourceView,
    resource_to_telemetry: bool,
}

impl Context<'_> {
    /// The point's attributes; with resource-to-telemetry, resource attributes added and
    /// winning over point attributes of the same key (otelcol's copy overwrites).
    fn attributes<'b>(&'b self, point: &'b [KeyValue]) -> Vec<&'b KeyValue> {
        if !self.resource_to_telemetry {
            return point.iter().collect();
        }
        let mut out: Vec<&KeyValue> = point
            .iter()
            .filter(|kv| attr(&self.view.attributes, &kv.key).is_none())
            .collect();
        out.extend(self.view.attributes.iter());
        out
    }

    fn key(&self, point: &[KeyValue]) -> Vec<u8> {
        let mut key = Vec::with_capacity(64);
        key.push(self.kind as u8);
        for s in [self.scope, self.otel_name] {
            key.extend_from_slice(&(s.len() as u32).to_le_bytes());
            key.extend_from_slice(s.as_bytes());
        }
        let mut attrs: Vec<(&str, String)> = self
            .attributes(point)
            .into_iter()
            .map(|kv| (kv.key.as_str(), as_string(kv.value.as_ref())))
            .collect();
        attrs.sort();
        for (k, v) in attrs {
            for s in [k, v.as_str()] {
                key.extend_from_slice(&(s.len() as u32).to_le_bytes());
                key.extend_from_slice(s.as_bytes());
            }
        }
        for s in [&self.view.job, &self.view.instance] {
            match s {
                Some(s) => {
                    key.push(1);
                    key.extend_from_slice(&(s.len() as u32).to_le_bytes());
                    key.extend_from_slice(s.as_bytes());
                }
                None => key.push(0),
            }
        }
        key
    }

    /// Sorted label pairs, or `None` when two names collide.
    fn labels(
        &self,
        point: &[KeyValue],
        const_labels: &[(String, String)],
    ) -> Option<Vec<(String, String)>> {
        let mut labels: Vec<(String, String)> = self
            .attributes(point)
            .into_iter()
            .map(|kv| (naming::label_name(&kv.key), as_string(kv.value.as_ref())))
            .collect();
        if let Some(job) = &self.view.job {
            labels.push(("job".to_owned(), job.clone()));
        }
        if let Some(instance) = &self.view.instance {
            labels.push(("instance".to_owned(), instance.clone()));
        }
        labels.extend(const_labels.iter().cloned());
        labels.sort();
        let collides = labels.windows(2).any(|w| w[0].0 == w[1].0);
        (!collides).then_some(labels)
    }
}
