//! One scrape of one target → one `ResourceMetrics`, as contrib's prometheus receiver
//! builds it: resource from job/instance, families to OTLP metrics, start times tracked per
//! series, stale markers for series that went away, and the generated `up` / `scrape_*`
//! series.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, summary_data_point::ValueAtQuantile, AggregationTemporality, Gauge,
    Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    Summary, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::labels::Labels;
use super::parse::{Family, MetricType};
use super::relabel::{self, Rule};

/// The instrumentation scope name the receiver reports.
pub const SCOPE_NAME: &str =
    "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/prometheusreceiver";

/// Point flag: no recorded value (a Prometheus stale marker).
const NO_RECORDED_VALUE: u32 = 1;

/// How long a series' start time is remembered without updates, at least.
const MIN_STATE_TTL: Duration = Duration::from_secs(120);

/// Why samples could not be accepted; the whole scrape fails (`up` = 0).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LimitError {
    /// More samples than `sample_limit` after metric relabelling.
    #[error("sample limit exceeded")]
    SampleLimit,
    /// A sample with more labels than `label_limit`.
    #[error("label_limit exceeded (metric: {0}, number of labels: {1}, limit: {2})")]
    LabelLimit(String, usize, u64),
    /// A label name longer than `label_name_length_limit`.
    #[error("label_name_length_limit exceeded (metric: {0}, label name: {1})")]
    LabelNameLength(String, String),
    /// `use_start_time_metric` is on and the scrape has no matching series.
    #[error("start time metric not found")]
    NoStartTimeMetric,
    /// A label value longer than `label_value_length_limit`.
    #[error("label_value_length_limit exceeded (metric: {0}, label value: {1})")]
    LabelValueLength(String, String),
}

/// Per-job settings the conversion needs.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Keep clashing scraped labels instead of renaming them `exported_*`.
    pub honor_labels: bool,
    /// Use exposed timestamps.
    pub honor_timestamps: bool,
    /// `metric_relabel_configs`.
    pub metric_relabel: Vec<Rule>,
    /// 0 = none.
    pub sample_limit: u64,
    /// 0 = none.
    pub label_limit: u64,
    /// 0 = none.
    pub label_name_length_limit: u64,
    /// 0 = none.
    pub label_value_length_limit: u64,
    /// `global.external_labels`.
    pub external_labels: Vec<(String, String)>,
    /// The job's scrape interval (for state expiry).
    pub interval: Duration,
    /// The job's scrape timeout (for `scrape_timeout_seconds`).
    pub timeout: Duration,
    /// Emit `scrape_timeout_seconds`, `scrape_sample_limit`, `scrape_body_size_bytes`.
    pub extra_scrape_metrics: bool,
    /// `trim_metric_suffixes`: drop `_total` from sums and the unit from names.
    pub trim_metric_suffixes: bool,
    /// With `use_start_time_metric`: the series whose value (seconds) is every cumulative's
    /// start time.
    pub start_time_metric: Option<regex::Regex>,
}

/// What the target is, for the resource and the attributes of every point.
#[derive(Clone, Debug, Default)]
pub struct TargetInfo {
    /// Final (post-relabel) public labels, including `job` and `instance`.
    pub labels: Labels,
    /// Labels as discovered (with `__meta_*`), before relabelling.
    pub discovered: Labels,
    /// `http` / `https`.
    pub scheme: String,
}

/// Counts a scrape reports in its `scrape_*` series.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Samples in the body.
    pub scraped: u64,
    /// Samples left after metric relabelling.
    pub post_relabel: u64,
    /// Series not seen in the previous scrape.
    pub added: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Sum { monotonic: bool },
    Gauge,
    Histogram,
    Summary,
}

/// The instrumentation scope of a series: `otel_scope_name` and `otel_scope_version`;
/// empty for the receiver's own scope.
pub type ScopeKey = (String, String);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct SeriesKey {
    scope: ScopeKey,
    metric: String,
    attributes: Labels,
}

struct SeriesState {
    start_ms: i64,
    last_value: f64,
    last_sum: f64,
    last_seen_ms: i64,
}

#[derive(Clone)]
struct SeriesMeta {
    kind: Kind,
    description: String,
    unit: String,
    prom_type: &'static str,
}

/// A converted scrape.
#[derive(Debug, Default)]
pub struct Converted {
    /// Metrics with their scope.
    pub metrics: Vec<(ScopeKey, Metric)>,
    /// The labels of `target_info` (minus job/instance), for the resource.
    pub target_info: Vec<(String, String)>,
    /// The labels of each scope's `otel_scope_info`, as scope attributes.
    pub scope_attributes: HashMap<ScopeKey, Vec<(String, String)>>,
    /// Counts for the `scrape_*` series.
    pub stats: Stats,
}

/// What one target remembers between scrapes: start times and the previous scrape's series.
#[derive(Default)]
pub struct TargetState {
    series: HashMap<SeriesKey, SeriesState>,
    previous: HashMap<SeriesKey, Arc<SeriesMeta>>,
    /// This scrape's start time from `start_time_metric`, when configured.
    fixed_start_ms: Option<i64>,
    /// `trim_metric_suffixes`, for this scrape.
    trim_suffixes: bool,
}

#[derive(Default)]
struct Building {
    metrics: Vec<(ScopeKey, Metric)>,
    index: HashMap<(ScopeKey, String), usize>,
}

impl Building {
    fn metric(&mut self, scope: &ScopeKey, name: &str, meta: &SeriesMeta) -> &mut Metric {
        let at = *self
            .index
            .entry((scope.clone(), name.to_owned()))
            .or_insert_with(|| {
                self.metrics.push((scope.clone(), new_metric(name, meta)));
                self.metrics.len() - 1
            });
        &mut self.metrics[at].1
    }
}

fn new_metric(name: &str, meta: &SeriesMeta) -> Metric {
    let data = match meta.kind {
        Kind::Sum { monotonic } => metric::Data::Sum(Sum {
            data_points: Vec::new(),
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: monotonic,
        }),
        Kind::Gauge => metric::Data::Gauge(Gauge {
            data_points: Vec::new(),
        }),
        Kind::Histogram => metric::Data::Histogram(Histogram {
            data_points: Vec::new(),
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        }),
        Kind::Summary => metric::Data::Summary(Summary {
            data_points: Vec::new(),
        }),
    };
    Metric {
        name: name.to_owned(),
        description: meta.description.clone(),
        unit: meta.unit.clone(),
        metadata: vec![kv("prometheus.type", meta.prom_type)],
        data: Some(data),
    }
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        key_strindex: 0,
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
    }
}

fn attributes(labels: &Labels) -> Vec<KeyValue> {
    labels.iter().map(|(k, v)| kv(k, v)).collect()
}

fn ms_to_nanos(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000)
}

/// Maps a Prometheus `# UNIT` to UCUM as contrib's translator does.
pub fn unit_to_ucum(unit: &str) -> String {
    let map = |u: &str| -> Option<&'static str> {
        Some(match u {
            "days" => "d",
            "hours" => "h",
            "minutes" => "min",
            "seconds" => "s",
            "milliseconds" => "ms",
            "microseconds" => "us",
            "nanoseconds" => "ns",
            "bytes" => "By",
            "kibibytes" => "KiBy",
            "mebibytes" => "MiBy",
            "gibibytes" => "GiBy",
            "tibibytes" => "TiBy",
            "kilobytes" => "KBy",
            "megabytes" => "MBy",
            "gigabytes" => "GBy",
            "terabytes" => "TBy",
            "meters" => "m",
            "volts" => "V",
            "amperes" => "A",
            "joules" => "J",
            "watts" => "W",
            "grams" => "g",
            "celsius" => "Cel",
            "hertz" => "Hz",
            "percent" => "%",
            "ratio" => "1",
            _ => return None,
        })
    };
    if let Some((a, b)) = unit.split_once("_per_") {
        let a = map(a).map_or_else(|| a.to_owned(), str::to_owned);
        let b = match b {
            "second" => "s",
            "minute" => "m",
            "hour" => "h",
            "day" => "d",
            "week" => "w",
            "month" => "mo",
            "year" => "y",
            other => other,
        };
        return format!("{a}/{b}");
    }
    map(unit).map_or_else(|| unit.to_owned(), str::to_owned)
}

/// The resource for a target.
pub fn resource(target: &TargetInfo, extra: &[(String, String)]) -> Resource {
    let job = target.labels.get("job").unwrap_or("");
    let instance = target.labels.get("instance").unwrap_or("");
    let mut attrs = vec![kv("service.name", job), kv("service.instance.id", instance)];
    let (host, port) = split_host_port(instance);
    if !is_local(host) {
        attrs.push(kv("net.host.name", host));
        attrs.push(kv("server.address", host));
    }
    attrs.push(kv("net.host.port", port));
    attrs.push(kv("server.port", port));
    attrs.push(kv("http.scheme", &target.scheme));
    attrs.push(kv("url.scheme", &target.scheme));
    let d = &target.discovered;
    for (label, key) in [
        ("__meta_kubernetes_pod_name", "k8s.pod.name"),
        ("__meta_kubernetes_pod_uid", "k8s.pod.uid"),
        ("__meta_kubernetes_pod_container_name", "k8s.container.name"),
        ("__meta_kubernetes_namespace", "k8s.namespace.name"),
        ("__meta_kubernetes_pod_node_name", "k8s.node.name"),
    ] {
        if let Some(v) = d.get(label).filter(|v| !v.is_empty()) {
            attrs.push(kv(key, v));
        }
    }
    if let (Some(kind), Some(name)) = (
        d.get("__meta_kubernetes_pod_controller_kind"),
        d.get("__meta_kubernetes_pod_controller_name"),
    ) {
        let key = match kind {
            "ReplicaSet" => Some("k8s.replicaset.name"),
            "DaemonSet" => Some("k8s.daemonset.name"),
            "StatefulSet" => Some("k8s.statefulset.name"),
            "Job" => Some("k8s.job.name"),
            "CronJob" => Some("k8s.cronjob.name"),
            _ => None,
        };
        if let Some(key) = key {
            attrs.push(kv(key, name));
        }
    }
    for (k, v) in extra {
        if let Some(existing) = attrs.iter_mut().find(|a| &a.key == k) {
            *existing = kv(k, v);
        } else {
            attrs.push(kv(k, v));
        }
    }
    Resource {
        attributes: attrs,
        dropped_attributes_count: 0,
        entity_refs: Vec::new(),
    }
}

fn split_host_port(instance: &str) -> (&str, &str) {
    if let Some(rest) = instance.strip_prefix('[') {
        if let Some((host, after)) = rest.split_once(']') {
            return (host, after.strip_prefix(':').unwrap_or(""));
        }
    }
    match instance.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p),
        _ => (instance, ""),
    }
}

fn is_local(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
}

/// A sample after label merging and metric relabelling, with its role in its family.
struct Point<'a> {
    labels: Labels,
    value: f64,
    timestamp_ms: i64,
    suffix: &'a str,
    sample_name: &'a str,
    scope: ScopeKey,
}

impl TargetState {
    /// Converts one successful scrape. `scrape_ms` is the scrape's start time.
    ///
    /// # Errors
    /// A limit was exceeded; nothing of the scrape is kept (the caller reports `up` = 0).
    pub fn convert(
        &mut self,
        families: &[Family],
        target: &TargetInfo,
        options: &Options,
        scrape_ms: i64,
    ) -> Result<Converted, LimitError> {
        let mut stats = Stats::default();
        self.fixed_start_ms = None;
        self.trim_suffixes = options.trim_metric_suffixes;
        if let Some(re) = &options.start_time_metric {
            let value = families
                .iter()
                .flat_map(|f| &f.samples)
                .find(|s| re.is_match(&s.name))
                .map(|s| s.value)
                .ok_or(LimitError::NoStartTimeMetric)?;
            self.fixed_start_ms = Some((value * 1000.0) as i64);
        }
        let mut building = Building::default();
        let mut seen: HashMap<SeriesKey, Arc<SeriesMeta>> = HashMap::new();
        let mut target_info_attrs = Vec::new();
        let mut scope_attributes: HashMap<ScopeKey, Vec<(String, String)>> = HashMap::new();
        for family in families {
            let mut points = Vec::with_capacity(family.samples.len());
            for sample in &family.samples {
                stats.scraped += 1;
                let mut labels = Labels::from_pairs(
                    sample
                        .labels
                        .iter()
                        .filter(|(_, v)| !v.is_empty())
                        .map(|(k, v)| (k.as_str(), v.as_str())),
                );
                labels.set("__name__", sample.name.clone());
                merge_target_labels(&mut labels, &target.labels, options.honor_labels);
                for (k, v) in &options.external_labels {
                    if labels.get(k).is_none() {
                        labels.set(k, v.clone());
                    }
                }
                if !relabel::process(&mut labels, &options.metric_relabel) {
                    continue;
                }
                check_label_limits(&labels, options)?;
                stats.post_relabel += 1;
                if options.sample_limit > 0 && stats.post_relabel > options.sample_limit {
                    return Err(LimitError::SampleLimit);
                }
                let timestamp_ms = match sample.timestamp_ms {
                    Some(ts) if options.honor_timestamps => ts,
                    _ => scrape_ms,
                };
                let scope = (
                    labels.remove("otel_scope_name").unwrap_or_default(),
                    labels.remove("otel_scope_version").unwrap_or_default(),
                );
                points.push(Point {
                    scope,
                    labels,
                    value: sample.value,
                    timestamp_ms,
                    suffix: &sample.name[family.name.len().min(sample.name.len())..],
                    sample_name: &sample.name,
                });
            }
            if family.name == "target_info" {
                if let Some(p) = points.first() {
                    for (k, v) in p.labels.iter() {
                        if !matches!(k, "__name__" | "job" | "instance") && !k.starts_with("__") {
                            target_info_attrs.push((k.to_owned(), v.to_owned()));
                        }
                    }
                }
                continue;
            }
            if family.name == "otel_scope_info" {
                for p in &points {
                    let attrs = p
                        .labels
                        .iter()
                        .filter(|(k, _)| {
                            !matches!(*k, "__name__" | "job" | "instance") && !k.starts_with("__")
                        })
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect();
                    scope_attributes.insert(p.scope.clone(), attrs);
                }
                continue;
            }
            self.add_family(family, points, &mut building, &mut seen);
        }
        // Series that were there last time and are gone now get a stale marker.
        for (key, meta) in &self.previous {
            if !seen.contains_key(key) {
                let start = self.series.get(key).map_or(scrape_ms, |s| s.start_ms);
                push_stale(&mut building, key, meta, start, scrape_ms);
            }
        }
        stats.added = seen
            .keys()
            .filter(|k| !self.previous.contains_key(*k))
            .count() as u64;
        self.previous = seen;
        self.expire(scrape_ms, options.interval);
        Ok(Converted {
            metrics: building.metrics,
            target_info: target_info_attrs,
            scope_attributes,
            stats,
        })
    }

    /// Stale markers for every series of the previous scrape (a failed scrape or a target
    /// that went away).
    pub fn stale_all(&mut self, scrape_ms: i64) -> Vec<(ScopeKey, Metric)> {
        let mut building = Building::default();
        for (key, meta) in std::mem::take(&mut self.previous) {
            let start = self.series.get(&key).map_or(scrape_ms, |s| s.start_ms);
            push_stale(&mut building, &key, &meta, start, scrape_ms);
        }
        building.metrics
    }

    /// A histogram's or summary's metric name (the family name, trimmed if configured).
    fn distribution_name(&self, family: &Family) -> String {
        if self.trim_suffixes {
            trim_suffixes(&family.name, false, family.unit.as_deref())
        } else {
            family.name.clone()
        }
    }

    fn expire(&mut self, now_ms: i64, interval: Duration) {
        let ttl = MIN_STATE_TTL.max(interval + Duration::from_secs(60));
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        self.series
            .retain(|_, s| now_ms.saturating_sub(s.last_seen_ms) <= ttl_ms);
    }

    /// The start time for a series at `ts` with `value` (and `sum` for distributions):
    /// the first point starts at its own timestamp; a decrease restarts it.
    fn start_time(&mut self, key: &SeriesKey, ts: i64, value: f64, sum: f64, summary: bool) -> i64 {
        if let Some(fixed) = self.fixed_start_ms {
            return fixed;
        }
        match self.series.get_mut(key) {
            Some(s) => {
                let reset = if summary {
                    (value < s.last_value && value != 0.0) || (sum < s.last_sum && sum != 0.0)
                } else {
                    value < s.last_value || sum < s.last_sum
                };
                if reset {
                    s.start_ms = ts;
                }
                s.last_value = value;
                s.last_sum = sum;
                s.last_seen_ms = ts;
                s.start_ms
            }
            None => {
                self.series.insert(
                    key.clone(),
                    SeriesState {
                        start_ms: ts,
                        last_value: value,
                        last_sum: sum,
                        last_seen_ms: ts,
                    },
                );
                ts
            }
        }
    }

    fn add_family(
        &mut self,
        family: &Family,
        points: Vec<Point<'_>>,
        building: &mut Building,
        seen: &mut HashMap<SeriesKey, Arc<SeriesMeta>>,
    ) {
        let description = family.help.clone().unwrap_or_default();
        let unit = family.unit.as_deref().map(unit_to_ucum).unwrap_or_default();
        let meta = |kind| {
            Arc::new(SeriesMeta {
                kind,
                description: description.clone(),
                unit: unit.clone(),
                prom_type: family.kind.as_str(),
            })
        };
        match family.kind {
            MetricType::Counter
            | MetricType::Gauge
            | MetricType::Unknown
            | MetricType::Info
            | MetricType::Stateset => {
                let kind = match family.kind {
                    MetricType::Counter => Kind::Sum { monotonic: true },
                    MetricType::Info | MetricType::Stateset => Kind::Sum { monotonic: false },
                    _ => Kind::Gauge,
                };
                let meta = meta(kind);
                for p in points {
                    if family.kind == MetricType::Counter && p.suffix == "_created" {
                        continue;
                    }
                    let name = match family.kind {
                        MetricType::Counter => p.sample_name,
                        _ => family.name.as_str(),
                    };
                    let trimmed;
                    let name = if self.trim_suffixes {
                        trimmed = trim_suffixes(
                            name,
                            matches!(kind, Kind::Sum { .. }),
                            family.unit.as_deref(),
                        );
                        trimmed.as_str()
                    } else {
                        name
                    };
                    let attrs = point_attributes(&p.labels, None);
                    let key = SeriesKey {
                        scope: p.scope.clone(),
                        metric: name.to_owned(),
                        attributes: attrs,
                    };
                    let start = if matches!(kind, Kind::Sum { .. }) {
                        self.start_time(&key, p.timestamp_ms, p.value, 0.0, false)
                    } else {
                        0
                    };
                    let point = NumberDataPoint {
                        attributes: attributes(&key.attributes),
                        start_time_unix_nano: ms_to_nanos(start),
                        time_unix_nano: ms_to_nanos(p.timestamp_ms),
                        exemplars: Vec::new(),
                        flags: 0,
                        value: Some(number_data_point::Value::AsDouble(p.value)),
                    };
                    match building.metric(&key.scope, name, &meta).data.as_mut() {
                        Some(metric::Data::Sum(s)) => s.data_points.push(point),
                        Some(metric::Data::Gauge(g)) => g.data_points.push(point),
                        _ => {}
                    }
                    seen.insert(key, meta.clone());
                }
            }
            MetricType::Histogram => {
                self.add_histogram(family, points, building, seen, meta(Kind::Histogram))
            }
            MetricType::Summary => {
                self.add_summary(family, points, building, seen, meta(Kind::Summary))
            }
            MetricType::Gaugehistogram => {}
        }
    }

    fn add_histogram(
        &mut self,
        family: &Family,
        points: Vec<Point<'_>>,
        building: &mut Building,
        seen: &mut HashMap<SeriesKey, Arc<SeriesMeta>>,
        meta: Arc<SeriesMeta>,
    ) {
        #[derive(Default)]
        struct Acc {
            buckets: Vec<(f64, f64)>,
            sum: Option<f64>,
            count: Option<f64>,
            ts: i64,
        }
        let mut groups: Vec<((ScopeKey, Labels), Acc)> = Vec::new();
        let mut at: HashMap<(ScopeKey, Labels), usize> = HashMap::new();
        for p in points {
            let group = (p.scope.clone(), point_attributes(&p.labels, Some("le")));
            let i = *at.entry(group.clone()).or_insert_with(|| {
                groups.push((group, Acc::default()));
                groups.len() - 1
            });
            let acc = &mut groups[i].1;
            acc.ts = acc.ts.max(p.timestamp_ms);
            match p.suffix {
                "_bucket" => {
                    let Some(le) = p.labels.get("le").and_then(|l| l.parse::<f64>().ok()) else {
                        tracing::debug!(metric = %family.name, "failed to add datapoint: bucket without a valid le");
                        continue;
                    };
                    acc.buckets.push((le, p.value));
                }
                "_sum" => acc.sum = Some(p.value),
                "_count" => acc.count = Some(p.value),
                _ => {}
            }
        }
        for ((scope, attrs), mut acc) in groups {
            acc.buckets
                .sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
            let inf = acc.buckets.iter().find(|b| b.0.is_infinite()).map(|b| b.1);
            let Some(count) = acc.count.or(inf) else {
                tracing::debug!(metric = %family.name, "failed to add datapoint: histogram without count");
                continue;
            };
            let mut bounds = Vec::new();
            let mut counts = Vec::new();
            let mut previous = 0.0;
            for (le, cumulative) in acc.buckets.iter().filter(|b| b.0.is_finite()) {
                bounds.push(*le);
                counts.push((cumulative - previous).max(0.0) as u64);
                previous = *cumulative;
            }
            if !acc.buckets.is_empty() {
                counts.push((count - previous).max(0.0) as u64);
            }
            let key = SeriesKey {
                scope,
                metric: self.distribution_name(family),
                attributes: attrs,
            };
            let start = self.start_time(&key, acc.ts, count, acc.sum.unwrap_or(0.0), false);
            let point = HistogramDataPoint {
                attributes: attributes(&key.attributes),
                start_time_unix_nano: ms_to_nanos(start),
                time_unix_nano: ms_to_nanos(acc.ts),
                count: count.max(0.0) as u64,
                sum: acc.sum,
                bucket_counts: counts,
                explicit_bounds: bounds,
                exemplars: Vec::new(),
                flags: 0,
                min: None,
                max: None,
            };
            if let Some(metric::Data::Histogram(h)) = building
                .metric(&key.scope, &key.metric, &meta)
                .data
                .as_mut()
            {
                h.data_points.push(point);
            }
            seen.insert(key, meta.clone());
        }
    }

    fn add_summary(
        &mut self,
        family: &Family,
        points: Vec<Point<'_>>,
        building: &mut Building,
        seen: &mut HashMap<SeriesKey, Arc<SeriesMeta>>,
        meta: Arc<SeriesMeta>,
    ) {
        #[derive(Default)]
        struct Acc {
            quantiles: Vec<ValueAtQuantile>,
            sum: Option<f64>,
            count: Option<f64>,
            ts: i64,
        }
        let mut groups: Vec<((ScopeKey, Labels), Acc)> = Vec::new();
        let mut at: HashMap<(ScopeKey, Labels), usize> = HashMap::new();
        for p in points {
            let group = (
                p.scope.clone(),
                point_attributes(&p.labels, Some("quantile")),
            );
            let i = *at.entry(group.clone()).or_insert_with(|| {
                groups.push((group, Acc::default()));
                groups.len() - 1
            });
            let acc = &mut groups[i].1;
            acc.ts = acc.ts.max(p.timestamp_ms);
            match p.suffix {
                "" => {
                    let Some(q) = p.labels.get("quantile").and_then(|q| q.parse::<f64>().ok())
                    else {
                        tracing::debug!(metric = %family.name, "failed to add datapoint: quantile missing");
                        continue;
                    };
                    acc.quantiles.push(ValueAtQuantile {
                        quantile: q,
                        value: p.value,
                    });
                }
                "_sum" => acc.sum = Some(p.value),
                "_count" => acc.count = Some(p.value),
                _ => {}
            }
        }
        for ((scope, attrs), acc) in groups {
            let Some(count) = acc.count else {
                tracing::debug!(metric = %family.name, "failed to add datapoint: summary without count");
                continue;
            };
            let sum = acc.sum.unwrap_or(0.0);
            let key = SeriesKey {
                scope,
                metric: self.distribution_name(family),
                attributes: attrs,
            };
            let start = self.start_time(&key, acc.ts, count, sum, true);
            let point = SummaryDataPoint {
                attributes: attributes(&key.attributes),
                start_time_unix_nano: ms_to_nanos(start),
                time_unix_nano: ms_to_nanos(acc.ts),
                count: count.max(0.0) as u64,
                sum,
                quantile_values: acc.quantiles,
                flags: 0,
            };
            if let Some(metric::Data::Summary(s)) = building
                .metric(&key.scope, &key.metric, &meta)
                .data
                .as_mut()
            {
                s.data_points.push(point);
            }
            seen.insert(key, meta.clone());
        }
    }
}

fn push_stale(
    building: &mut Building,
    key: &SeriesKey,
    meta: &SeriesMeta,
    start_ms: i64,
    ts_ms: i64,
) {
    let attrs = attributes(&key.attributes);
    let start = match meta.kind {
        Kind::Gauge => 0,
        _ => ms_to_nanos(start_ms),
    };
    let time = ms_to_nanos(ts_ms);
    match building.metric(&key.scope, &key.metric, meta).data.as_mut() {
        Some(metric::Data::Sum(s)) => s.data_points.push(stale_number(attrs, start, time)),
        Some(metric::Data::Gauge(g)) => g.data_points.push(stale_number(attrs, start, time)),
        Some(metric::Data::Histogram(h)) => h.data_points.push(HistogramDataPoint {
            attributes: attrs,
            start_time_unix_nano: start,
            time_unix_nano: time,
            flags: NO_RECORDED_VALUE,
            ..Default::default()
        }),
        Some(metric::Data::Summary(s)) => s.data_points.push(SummaryDataPoint {
            attributes: attrs,
            start_time_unix_nano: start,
            time_unix_nano: time,
            flags: NO_RECORDED_VALUE,
            ..Default::default()
        }),
        _ => {}
    }
}

fn stale_number(attributes: Vec<KeyValue>, start: u64, time: u64) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        start_time_unix_nano: start,
        time_unix_nano: time,
        exemplars: Vec::new(),
        flags: NO_RECORDED_VALUE,
        value: None,
    }
}

/// Attributes of a point: labels minus `__name__`, `job`, `instance` and `__*`, and minus
/// `drop` (`le` / `quantile`).
fn point_attributes(labels: &Labels, drop: Option<&str>) -> Labels {
    let mut out = labels.clone();
    out.retain(|k| !matches!(k, "job" | "instance") && !k.starts_with("__") && Some(k) != drop);
    out
}

/// contrib's `TrimPromSuffixes`: `_total` off sums, then the unit's tokens off the end.
fn trim_suffixes(name: &str, sum: bool, unit: Option<&str>) -> String {
    let mut tokens: Vec<&str> = name.split('_').collect();
    if tokens.len() == 1 {
        return name.to_owned();
    }
    if sum && tokens.last() == Some(&"total") {
        tokens.pop();
    }
    if let Some(unit) = unit.filter(|u| !u.is_empty()) {
        let unit_tokens: Vec<&str> = unit.split('_').collect();
        if tokens.len() > unit_tokens.len() && tokens.ends_with(&unit_tokens) {
            tokens.truncate(tokens.len() - unit_tokens.len());
        }
    }
    tokens.join("_")
}

/// Prometheus' `mutateSampleLabels`: target labels win unless `honor_labels`; a clashing
/// scraped label is kept as `exported_<name>`.
fn merge_target_labels(labels: &mut Labels, target: &Labels, honor_labels: bool) {
    for (name, value) in target.iter() {
        match labels.get(name) {
            Some(_) if honor_labels => {}
            Some(existing) => {
                let existing = existing.to_owned();
                let mut exported = format!("exported_{name}");
                while labels.get(&exported).is_some() {
                    exported = format!("exported_{exported}");
                }
                labels.set(&exported, existing);
                labels.set(name, value.to_owned());
            }
            None => labels.set(name, value.to_owned()),
        }
    }
}

fn check_label_limits(labels: &Labels, options: &Options) -> Result<(), LimitError> {
    let name = || labels.get("__name__").unwrap_or("").to_owned();
    if options.label_limit > 0 && labels.len() as u64 > options.label_limit {
        return Err(LimitError::LabelLimit(
            name(),
            labels.len(),
            options.label_limit,
        ));
    }
    for (k, v) in labels.iter() {
        if options.label_name_length_limit > 0
            && k.chars().count() as u64 > options.label_name_length_limit
        {
            return Err(LimitError::LabelNameLength(name(), k.to_owned()));
        }
        if options.label_value_length_limit > 0
            && v.chars().count() as u64 > options.label_value_length_limit
        {
            return Err(LimitError::LabelValueLength(name(), v.to_owned()));
        }
    }
    Ok(())
}

/// The generated series for one scrape attempt.
pub struct Report {
    /// Success.
    pub up: bool,
    /// Wall time of the scrape.
    pub duration: Duration,
    /// Counts (zero on failure).
    pub stats: Stats,
    /// Uncompressed body size (for `scrape_body_size_bytes`).
    pub body_bytes: u64,
}

/// `up`, `scrape_duration_seconds`, `scrape_samples_scraped`,
/// `scrape_samples_post_metric_relabeling`, `scrape_series_added` (and the extra three),
/// as gauges carrying the target's labels.
pub fn report_metrics(
    target: &TargetInfo,
    options: &Options,
    report: &Report,
    ts_ms: i64,
) -> Vec<Metric> {
    let attrs = attributes(&point_attributes(&target.labels, None));
    let gauge = |name: &str, unit: &str, value: f64| Metric {
        name: name.to_owned(),
        description: String::new(),
        unit: unit.to_owned(),
        metadata: vec![kv("prometheus.type", "gauge")],
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint {
                attributes: attrs.clone(),
                start_time_unix_nano: 0,
                time_unix_nano: ms_to_nanos(ts_ms),
                exemplars: Vec::new(),
                flags: 0,
                value: Some(number_data_point::Value::AsDouble(value)),
            }],
        })),
    };
    let mut out = vec![
        gauge("up", "", if report.up { 1.0 } else { 0.0 }),
        gauge(
            "scrape_duration_seconds",
            "s",
            report.duration.as_secs_f64(),
        ),
        gauge("scrape_samples_scraped", "", report.stats.scraped as f64),
        gauge(
            "scrape_samples_post_metric_relabeling",
            "",
            report.stats.post_relabel as f64,
        ),
        gauge("scrape_series_added", "", report.stats.added as f64),
    ];
    if options.extra_scrape_metrics {
        out.push(gauge(
            "scrape_timeout_seconds",
            "s",
            options.timeout.as_secs_f64(),
        ));
        out.push(gauge(
            "scrape_sample_limit",
            "",
            options.sample_limit as f64,
        ));
        out.push(gauge(
            "scrape_body_size_bytes",
            "By",
            report.body_bytes as f64,
        ));
    }
    out
}

/// Wraps a scrape's metrics into its one `ResourceMetrics`: the receiver's scope first,
/// then one scope per `otel_scope_name`/`otel_scope_version`, with `otel_scope_info`'s
/// labels as scope attributes.
pub fn resource_metrics(
    resource: Resource,
    metrics: Vec<(ScopeKey, Metric)>,
    scope_attributes: &HashMap<ScopeKey, Vec<(String, String)>>,
) -> ResourceMetrics {
    let mut scopes: Vec<ScopeMetrics> = Vec::new();
    let mut index: HashMap<ScopeKey, usize> = HashMap::new();
    let own: ScopeKey = (String::new(), String::new());
    for (key, metric) in
        std::iter::once((own, None)).chain(metrics.into_iter().map(|(k, m)| (k, Some(m))))
    {
        let at = *index.entry(key.clone()).or_insert_with(|| {
            let (name, version) = if key.0.is_empty() {
                (SCOPE_NAME.to_owned(), env!("CARGO_PKG_VERSION").to_owned())
            } else {
                key.clone()
            };
            let attributes = scope_attributes
                .get(&key)
                .map(|a| a.iter().map(|(k, v)| kv(k, v)).collect())
                .unwrap_or_default();
            scopes.push(ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name,
                    version,
                    attributes,
                    dropped_attributes_count: 0,
                }),
                metrics: Vec::new(),
                schema_url: String::new(),
            });
            scopes.len() - 1
        });
        if let Some(m) = metric {
            scopes[at].metrics.push(m);
        }
    }
    ResourceMetrics {
        resource: Some(resource),
        scope_metrics: scopes,
        schema_url: String::new(),
    }
}
