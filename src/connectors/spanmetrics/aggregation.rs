//! The state between flushes: per resource, per series, calls, durations, events and
//! exemplars; and the metrics one flush emits.
//!
//! Everything is bounded: at most `resource_metrics_cache_size` resources, each with at most
//! `dimensions_cache_size` series (and as many event series), least recently used evicted
//! first. An evicted series that comes back starts again from zero, with its own start time.

use std::num::NonZeroUsize;
use std::sync::Arc;

use lru::LruCache;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, metric, number_data_point, Exemplar, ExponentialHistogram,
    ExponentialHistogramDataPoint, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, status, ResourceSpans, Span};
use prost::Message;

use super::config::{
    Config, Dimension, Temporality, SERVICE_NAME, SPAN_KIND, SPAN_NAME, STATUS_CODE,
};
use super::histogram::{Explicit, Exponential};
use crate::pipeline::as_string;

/// The instrumentation scope of every emitted metric.
pub const SCOPE_NAME: &str = "spanmetricsconnector";

/// Separates the parts of a series key.
const SEPARATOR: char = '\0';

/// Compiled config and the aggregation state. Not synchronised: the connector holds it
/// under one lock per batch.
pub struct Aggregator {
    settings: Arc<Settings>,
    resources: LruCache<Vec<u8>, ResourceState>,
    delta_starts: Option<LruCache<Vec<u8>, u64>>,
    key: String,
    evicted: u64,
}

/// What the hot path needs from the config, resolved once.
struct Settings {
    temporality: Temporality,
    service_name: bool,
    span_name: bool,
    span_kind: bool,
    status_code: bool,
    dimensions: Vec<Dimension>,
    event_dimensions: Vec<Dimension>,
    events: bool,
    histogram: HistogramKind,
    unit: &'static str,
    unit_nanos: f64,
    bounds: Vec<f64>,
    series_limit: NonZeroUsize,
    exemplar_limit: usize,
    key_attributes: Vec<String>,
    expiration: u64,
    calls_name: String,
    duration_name: String,
    events_name: String,
}

#[derive(Clone, Copy)]
enum HistogramKind {
    Disabled,
    Explicit,
    Exponential(usize),
}

/// One resource's series.
struct ResourceState {
    attributes: Vec<KeyValue>,
    start: u64,
    last_seen: u64,
    series: LruCache<Box<str>, Series>,
    events: LruCache<Box<str>, EventSeries>,
    evicted_any: bool,
}

struct Series {
    attributes: Vec<KeyValue>,
    start: u64,
    calls: u64,
    duration: Duration,
    exemplars: Vec<Exemplar>,
}

struct EventSeries {
    attributes: Vec<KeyValue>,
    start: u64,
    count: u64,
    exemplars: Vec<Exemplar>,
}

enum Duration {
    None,
    Explicit(Explicit),
    Exponential(Box<Exponential>),
}

impl Aggregator {
    /// Empty state for a validated `config`.
    pub fn new(config: &Config) -> Self {
        let histogram = if config.histogram.disable {
            HistogramKind::Disabled
        } else if let Some(size) = config.exponential_max_size() {
            HistogramKind::Exponential(size)
        } else {
            HistogramKind::Explicit
        };
        let settings = Settings {
            temporality: config.temporality(),
            service_name: config.includes(SERVICE_NAME),
            span_name: config.includes(SPAN_NAME),
            span_kind: config.includes(SPAN_KIND),
            status_code: config.includes(STATUS_CODE),
            dimensions: config.dimensions.clone(),
            event_dimensions: config.events.dimensions.clone(),
            events: config.events.enabled,
            histogram,
            unit: config.histogram.unit.as_str(),
            unit_nanos: config.histogram.unit.nanos() as f64,
            bounds: config.bounds(),
            series_limit: positive(config.dimensions_cache_size),
            exemplar_limit: config.exemplar_limit(),
            key_attributes: config.resource_metrics_key_attributes.clone(),
            expiration: u64::try_from(config.metrics_expiration.as_nanos()).unwrap_or(u64::MAX),
            calls_name: config.metric_name("calls"),
            duration_name: config.metric_name("duration"),
            events_name: config.metric_name("events"),
        };
        let delta_starts = (settings.temporality == Temporality::Delta)
            .then(|| LruCache::new(positive(config.metric_timestamp_cache_size)));
        Self {
            settings: Arc::new(settings),
            resources: LruCache::new(positive(config.resource_metrics_cache_size)),
            delta_starts,
            key: String::new(),
            evicted: 0,
        }
    }

    /// Resources currently held.
    pub fn resource_count(&self) -> usize {
        self.resources.len()
    }

    /// Series (calls/duration) currently held, over every resource.
    pub fn series_count(&self) -> usize {
        self.resources.iter().map(|(_, r)| r.series.len()).sum()
    }

    /// Series and resources evicted since the last flush, and resets the count.
    pub fn take_evicted(&mut self) -> u64 {
        std::mem::take(&mut self.evicted)
    }

    /// Adds every span of `batch`, seen at `now` (Unix nanoseconds). Resources without a
    /// `service.name` attribute are skipped.
    pub fn aggregate(&mut self, batch: &[ResourceSpans], now: u64) {
        let settings = self.settings.clone();
        for rs in batch {
            let resource_attrs: &[KeyValue] = rs
                .resource
                .as_ref()
                .map_or(&[], |r| r.attributes.as_slice());
            let Some(service) = find(resource_attrs, SERVICE_NAME) else {
                continue;
            };
            let service = match &service.value {
                Some(any_value::Value::StringValue(s)) => s.as_str(),
                _ => "",
            };
            let resource_key = resource_key(resource_attrs, &settings.key_attributes);
            let state = resource_state(
                &mut self.resources,
                &mut self.evicted,
                settings.series_limit,
                resource_key,
                resource_attrs,
                now,
            );
            state.last_seen = now;
            for scope in &rs.scope_spans {
                for span in &scope.spans {
                    let duration = duration(span, settings.unit_nanos);
                    build_key(
                        &mut self.key,
                        &settings,
                        service,
                        span,
                        resource_attrs,
                        None,
                    );
                    let series = match state.series.get_mut(self.key.as_str()) {
                        Some(s) => s,
                        None => {
                            let start = if state.evicted_any { now } else { state.start };
                            let series = Series {
                                attributes: build_attributes(
                                    &settings,
                                    service,
                                    span,
                                    resource_attrs,
                                    None,
                                ),
                                start,
                                calls: 0,
                                duration: match settings.histogram {
                                    HistogramKind::Disabled => Duration::None,
                                    HistogramKind::Explicit => {
                                        Duration::Explicit(Explicit::new(settings.bounds.len()))
                                    }
                                    HistogramKind::Exponential(size) => {
                                        Duration::Exponential(Box::new(Exponential::new(size)))
                                    }
                                },
                                exemplars: Vec::new(),
                            };
                            if state
                                .series
                                .push(self.key.as_str().into(), series)
                                .is_some()
                            {
                                state.evicted_any = true;
                                self.evicted += 1;
                            }
                            state
                                .series
                                .get_mut(self.key.as_str())
                                .expect("series just inserted")
                        }
                    };
                    series.calls += 1;
                    match &mut series.duration {
                        Duration::None => {}
                        Duration::Explicit(h) => h.observe(&settings.bounds, duration),
                        Duration::Exponential(h) => h.observe(duration),
                    }
                    if series.exemplars.len() < settings.exemplar_limit {
                        push_exemplar(&mut series.exemplars, span, duration);
                    }
                    if settings.events && !span.events.is_empty() {
                        let seen = Seen {
                            settings: &settings,
                            service,
                            span,
                            resource_attrs,
                            duration,
                            now,
                        };
                        aggregate_events(&mut self.key, &mut self.evicted, state, &seen);
                    }
                }
            }
        }
    }

    /// The metrics of one flush at `now` (Unix nanoseconds): one `ResourceMetrics` per
    /// resource. Cumulative state stays (exemplars cleared, expired resources dropped);
    /// delta state is purged.
    pub fn flush(&mut self, now: u64) -> Vec<ResourceMetrics> {
        let settings = self.settings.clone();
        if settings.temporality == Temporality::Cumulative && settings.expiration > 0 {
            let expired: Vec<Vec<u8>> = self
                .resources
                .iter()
                .filter(|(_, r)| now.saturating_sub(r.last_seen) >= settings.expiration)
                .map(|(k, _)| k.clone())
                .collect();
            for key in expired {
                self.resources.pop(&key);
            }
        }
        let temporality = settings.temporality.as_otlp();
        let mut out = Vec::with_capacity(self.resources.len());
        for (resource_key, state) in self.resources.iter_mut() {
            let resource_start = state.start;
            let mut starts = |series_key: &str, series_start: u64| -> u64 {
                match &mut self.delta_starts {
                    None => series_start,
                    Some(cache) => {
                        let mut key = resource_key.clone();
                        key.extend_from_slice(series_key.as_bytes());
                        let start = cache.get(&key).copied().unwrap_or(resource_start);
                        cache.put(key, now);
                        start
                    }
                }
            };
            let mut calls = Vec::with_capacity(state.series.len());
            let mut explicit = Vec::new();
            let mut exponential = Vec::new();
            for (key, series) in state.series.iter_mut() {
                let start = starts(key, series.start);
                let exemplars = stamp(std::mem::take(&mut series.exemplars), now);
                match &series.duration {
                    Duration::None => {}
                    Duration::Explicit(h) => {
                        let mut point = HistogramDataPoint {
                            attributes: series.attributes.clone(),
                            start_time_unix_nano: start,
                            time_unix_nano: now,
                            exemplars: exemplars.clone(),
                            ..Default::default()
                        };
                        h.fill(&settings.bounds, &mut point);
                        explicit.push(point);
                    }
                    Duration::Exponential(h) => {
                        let mut point = ExponentialHistogramDataPoint {
                            attributes: series.attributes.clone(),
                            start_time_unix_nano: start,
                            time_unix_nano: now,
                            exemplars: exemplars.clone(),
                            ..Default::default()
                        };
                        h.fill(&mut point);
                        exponential.push(point);
                    }
                }
                calls.push(int_point(
                    series.attributes.clone(),
                    start,
                    now,
                    series.calls,
                    exemplars,
                ));
            }
            let mut metrics = vec![sum_metric(&settings.calls_name, calls, temporality)];
            match settings.histogram {
                HistogramKind::Disabled => {}
                HistogramKind::Explicit => metrics.push(Metric {
                    name: settings.duration_name.clone(),
                    unit: settings.unit.to_owned(),
                    data: Some(metric::Data::Histogram(Histogram {
                        data_points: explicit,
                        aggregation_temporality: temporality,
                    })),
                    ..Default::default()
                }),
                HistogramKind::Exponential(_) => metrics.push(Metric {
                    name: settings.duration_name.clone(),
                    unit: settings.unit.to_owned(),
                    data: Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
                        data_points: exponential,
                        aggregation_temporality: temporality,
                    })),
                    ..Default::default()
                }),
            }
            if settings.events {
                let points = state
                    .events
                    .iter_mut()
                    .map(|(key, e)| {
                        let start = starts(key, e.start);
                        let exemplars = stamp(std::mem::take(&mut e.exemplars), now);
                        int_point(e.attributes.clone(), start, now, e.count, exemplars)
                    })
                    .collect();
                metrics.push(sum_metric(&settings.events_name, points, temporality));
            }
            out.push(ResourceMetrics {
                resource: Some(Resource {
                    attributes: state.attributes.clone(),
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: SCOPE_NAME.to_owned(),
                        ..Default::default()
                    }),
                    metrics,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            });
        }
        if settings.temporality == Temporality::Delta {
            self.resources.clear();
        }
        out
    }
}

/// The state of resource `key`, created (evicting the least recently used) if new.
fn resource_state<'a>(
    resources: &'a mut LruCache<Vec<u8>, ResourceState>,
    evicted: &mut u64,
    limit: NonZeroUsize,
    key: Vec<u8>,
    attrs: &[KeyValue],
    now: u64,
) -> &'a mut ResourceState {
    if !resources.contains(&key) {
        let state = ResourceState {
            attributes: attrs.to_vec(),
            start: now,
            last_seen: now,
            series: LruCache::new(limit),
            events: LruCache::new(limit),
            evicted_any: false,
        };
        if resources.push(key.clone(), state).is_some() {
            *evicted += 1;
        }
    }
    resources.get_mut(&key).expect("resource just inserted")
}

fn positive(size: i64) -> NonZeroUsize {
    usize::try_from(size)
        .ok()
        .and_then(NonZeroUsize::new)
        .unwrap_or(NonZeroUsize::MIN)
}

fn find<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

/// Identifies a resource: its (key) attributes, sorted by name, encoded (types included).
fn resource_key(attrs: &[KeyValue], key_attributes: &[String]) -> Vec<u8> {
    let mut chosen: Vec<&KeyValue> = attrs
        .iter()
        .filter(|kv| key_attributes.is_empty() || key_attributes.contains(&kv.key))
        .collect();
    chosen.sort_by(|a, b| a.key.cmp(&b.key));
    let mut out = Vec::new();
    for kv in chosen {
        kv.encode_length_delimited(&mut out)
            .expect("a Vec grows as needed");
    }
    out
}

/// Span duration in the unit; 0 when the end is not after the start.
fn duration(span: &Span, unit_nanos: f64) -> f64 {
    if span.end_time_unix_nano > span.start_time_unix_nano {
        (span.end_time_unix_nano - span.start_time_unix_nano) as f64 / unit_nanos
    } else {
        0.0
    }
}

/// pdata's `SpanKindStr`.
fn kind_str(kind: i32) -> &'static str {
    span::SpanKind::try_from(kind).map_or("", |k| k.as_str_name())
}

/// pdata's `StatusCodeStr`.
fn status_str(span: &Span) -> &'static str {
    let code = span.status.as_ref().map_or(0, |s| s.code);
    status::StatusCode::try_from(code).map_or("", |c| c.as_str_name())
}

/// A dimension's value: the span's attribute, else the event's (events only), else the
/// resource's, else the default.
fn dimension_value<'a>(
    d: &'a Dimension,
    span_attrs: &'a [KeyValue],
    event_attrs: Option<&'a [KeyValue]>,
    resource_attrs: &'a [KeyValue],
) -> Option<DimensionValue<'a>> {
    find(span_attrs, &d.name)
        .or_else(|| event_attrs.and_then(|e| find(e, &d.name)))
        .or_else(|| find(resource_attrs, &d.name))
        .map(DimensionValue::Found)
        .or_else(|| d.default.as_deref().map(DimensionValue::Default))
}

enum DimensionValue<'a> {
    Found(&'a AnyValue),
    Default(&'a str),
}

/// The series key: default dimensions then configured ones, `\0`-separated (a missing
/// dimension is marked, so it cannot collide with an empty value).
fn build_key(
    key: &mut String,
    settings: &Settings,
    service: &str,
    span: &Span,
    resource_attrs: &[KeyValue],
    event_attrs: Option<&[KeyValue]>,
) {
    use std::fmt::Write as _;
    key.clear();
    if settings.service_name {
        key.push_str(service);
    }
    key.push(SEPARATOR);
    if settings.span_name {
        key.push_str(&span.name);
    }
    key.push(SEPARATOR);
    if settings.span_kind {
        key.push_str(kind_str(span.kind));
    }
    key.push(SEPARATOR);
    if settings.status_code {
        key.push_str(status_str(span));
    }
    let extra = event_attrs.map_or(&[][..], |_| settings.event_dimensions.as_slice());
    for d in settings.dimensions.iter().chain(extra) {
        key.push(SEPARATOR);
        match dimension_value(d, &span.attributes, event_attrs, resource_attrs) {
            Some(DimensionValue::Found(v)) => match &v.value {
                Some(any_value::Value::StringValue(s)) => key.push_str(s),
                Some(any_value::Value::IntValue(i)) => {
                    write!(key, "{i}").expect("a String takes any write");
                }
                _ => key.push_str(&as_string(Some(v))),
            },
            Some(DimensionValue::Default(s)) => key.push_str(s),
            None => key.push('\u{1}'),
        }
    }
}

fn str_kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..Default::default()
    }
}

/// The point attributes of a new series, in otelcol's order.
fn build_attributes(
    settings: &Settings,
    service: &str,
    span: &Span,
    resource_attrs: &[KeyValue],
    event_attrs: Option<&[KeyValue]>,
) -> Vec<KeyValue> {
    let mut out = Vec::with_capacity(4 + settings.dimensions.len());
    if settings.service_name {
        out.push(str_kv(SERVICE_NAME, service));
    }
    if settings.span_name {
        out.push(str_kv(SPAN_NAME, &span.name));
    }
    if settings.span_kind {
        out.push(str_kv(SPAN_KIND, kind_str(span.kind)));
    }
    if settings.status_code {
        out.push(str_kv(STATUS_CODE, status_str(span)));
    }
    let extra = event_attrs.map_or(&[][..], |_| settings.event_dimensions.as_slice());
    for d in settings.dimensions.iter().chain(extra) {
        match dimension_value(d, &span.attributes, event_attrs, resource_attrs) {
            Some(DimensionValue::Found(v)) => out.push(KeyValue {
                key: d.name.clone(),
                value: Some(v.clone()),
                ..Default::default()
            }),
            Some(DimensionValue::Default(s)) => out.push(str_kv(&d.name, s)),
            None => {}
        }
    }
    out
}

/// One span as the events metric needs it.
struct Seen<'a> {
    settings: &'a Settings,
    service: &'a str,
    span: &'a Span,
    resource_attrs: &'a [KeyValue],
    duration: f64,
    now: u64,
}

/// Counts the span's events, per event series.
fn aggregate_events(
    key: &mut String,
    evicted: &mut u64,
    state: &mut ResourceState,
    seen: &Seen<'_>,
) {
    let Seen {
        settings,
        service,
        span,
        resource_attrs,
        duration,
        now,
    } = *seen;
    for event in &span.events {
        let event_attrs = Some(event.attributes.as_slice());
        build_key(key, settings, service, span, resource_attrs, event_attrs);
        let series = match state.events.get_mut(key.as_str()) {
            Some(s) => s,
            None => {
                let start = if state.evicted_any { now } else { state.start };
                let series = EventSeries {
                    attributes: build_attributes(
                        settings,
                        service,
                        span,
                        resource_attrs,
                        event_attrs,
                    ),
                    start,
                    count: 0,
                    exemplars: Vec::new(),
                };
                if state.events.push(key.as_str().into(), series).is_some() {
                    state.evicted_any = true;
                    *evicted += 1;
                }
                state
                    .events
                    .get_mut(key.as_str())
                    .expect("event series just inserted")
            }
        };
        series.count += 1;
        if series.exemplars.len() < settings.exemplar_limit {
            push_exemplar(&mut series.exemplars, span, duration);
        }
    }
}

/// Records the span as an exemplar, unless it has no trace id.
fn push_exemplar(exemplars: &mut Vec<Exemplar>, span: &Span, duration: f64) {
    if span.trace_id.is_empty() || span.trace_id.iter().all(|b| *b == 0) {
        return;
    }
    exemplars.push(Exemplar {
        trace_id: span.trace_id.clone(),
        span_id: span.span_id.clone(),
        value: Some(exemplar::Value::AsDouble(duration)),
        ..Default::default()
    });
}

/// Exemplars carry the flush time.
fn stamp(mut exemplars: Vec<Exemplar>, now: u64) -> Vec<Exemplar> {
    for e in &mut exemplars {
        e.time_unix_nano = now;
    }
    exemplars
}

fn int_point(
    attributes: Vec<KeyValue>,
    start: u64,
    now: u64,
    value: u64,
    exemplars: Vec<Exemplar>,
) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        start_time_unix_nano: start,
        time_unix_nano: now,
        value: Some(number_data_point::Value::AsInt(
            i64::try_from(value).unwrap_or(i64::MAX),
        )),
        exemplars,
        ..Default::default()
    }
}

fn sum_metric(name: &str, points: Vec<NumberDataPoint>, temporality: i32) -> Metric {
    Metric {
        name: name.to_owned(),
        data: Some(metric::Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: temporality,
            is_monotonic: true,
        })),
        ..Default::default()
    }
}
