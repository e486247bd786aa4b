//! `connectors::spanmetrics` config, with otelcol-contrib 0.119's defaults and messages.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::config::FieldError;

/// The four dimensions every series has unless excluded.
pub const SERVICE_NAME: &str = "service.name";
/// The span name dimension.
pub const SPAN_NAME: &str = "span.name";
/// The span kind dimension (`SPAN_KIND_SERVER`, …).
pub const SPAN_KIND: &str = "span.kind";
/// The status code dimension (`STATUS_CODE_ERROR`, …).
pub const STATUS_CODE: &str = "status.code";

/// The explicit bucket bounds used when `histogram.explicit.buckets` is not set.
pub const DEFAULT_BUCKETS: [Duration; 16] = [
    Duration::from_millis(2),
    Duration::from_millis(4),
    Duration::from_millis(6),
    Duration::from_millis(8),
    Duration::from_millis(10),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(200),
    Duration::from_millis(400),
    Duration::from_millis(800),
    Duration::from_millis(1000),
    Duration::from_millis(1400),
    Duration::from_millis(2000),
    Duration::from_millis(5000),
    Duration::from_millis(10_000),
    Duration::from_millis(15_000),
];

/// Exemplars per data point kept when `exemplars.max_per_data_point` is not set. otelcol
/// keeps every one until the next flush; a ceiling keeps memory bounded between flushes.
pub const EXEMPLAR_CEILING: usize = 1000;

/// `connectors::spanmetrics`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Extra dimensions, looked up in span attributes, then resource attributes. Default none.
    pub dimensions: Vec<Dimension>,
    /// Default dimensions to leave out (`service.name`, `span.name`, `span.kind`,
    /// `status.code`). Default none.
    pub exclude_dimensions: Vec<String>,
    /// The duration metric.
    pub histogram: HistogramConfig,
    /// `AGGREGATION_TEMPORALITY_CUMULATIVE` (default) or `AGGREGATION_TEMPORALITY_DELTA`;
    /// any other text means cumulative.
    pub aggregation_temporality: String,
    /// How often metrics are emitted. Default 60s; must be positive.
    #[serde(with = "crate::config::duration")]
    pub metrics_flush_interval: Duration,
    /// Cumulative only: a resource not seen for this long has its series dropped. Default
    /// 0 (never).
    #[serde(with = "crate::config::duration")]
    pub metrics_expiration: Duration,
    /// Metric name prefix, joined with `.`. Default `traces.span.metrics`; empty = bare names.
    pub namespace: String,
    /// Series kept per resource (least recently used evicted first). Default 1000.
    pub dimensions_cache_size: i64,
    /// Resources kept (least recently used evicted first; its counters restart). Default 1000.
    pub resource_metrics_cache_size: i64,
    /// Resource attributes that identify a resource. Default none = all of them.
    pub resource_metrics_key_attributes: Vec<String>,
    /// Delta only: series whose last flush time is remembered. Default 1000.
    pub metric_timestamp_cache_size: i64,
    /// Exemplars on the calls and duration points.
    pub exemplars: ExemplarsConfig,
    /// The span events metric.
    pub events: EventsConfig,
    /// Accepted for configs written for later collectors. Without the
    /// `connector.spanmetrics.excludeResourceMetrics` gate (off by default there, absent in
    /// 0.119) the resource attributes are always copied to the output resource.
    pub add_resource_attributes: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            dimensions: Vec::new(),
            exclude_dimensions: Vec::new(),
            histogram: HistogramConfig::default(),
            aggregation_temporality: CUMULATIVE.to_owned(),
            metrics_flush_interval: Duration::from_secs(60),
            metrics_expiration: Duration::ZERO,
            namespace: "traces.span.metrics".to_owned(),
            dimensions_cache_size: 1000,
            resource_metrics_cache_size: 1000,
            resource_metrics_key_attributes: Vec::new(),
            metric_timestamp_cache_size: 1000,
            exemplars: ExemplarsConfig::default(),
            events: EventsConfig::default(),
            add_resource_attributes: false,
        }
    }
}

const CUMULATIVE: &str = "AGGREGATION_TEMPORALITY_CUMULATIVE";
const DELTA: &str = "AGGREGATION_TEMPORALITY_DELTA";

/// Whether emitted values accumulate from a fixed start or restart at every flush.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Temporality {
    /// Values since the resource was first seen; start time fixed.
    Cumulative,
    /// Values since the previous flush; state purged after each flush.
    Delta,
}

impl Temporality {
    /// The OTLP enum value.
    pub fn as_otlp(self) -> i32 {
        match self {
            Self::Delta => 1,
            Self::Cumulative => 2,
        }
    }
}

impl Config {
    /// The configured temporality (anything but the delta name is cumulative, as in otelcol).
    pub fn temporality(&self) -> Temporality {
        if self.aggregation_temporality == DELTA {
            Temporality::Delta
        } else {
            Temporality::Cumulative
        }
    }

    /// `namespace.name`, or `name` alone when the namespace is empty.
    pub fn metric_name(&self, name: &str) -> String {
        if self.namespace.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.namespace)
        }
    }

    /// True when the default dimension `name` is kept.
    pub fn includes(&self, name: &str) -> bool {
        !self.exclude_dimensions.iter().any(|d| d == name)
    }

    /// Cross-field rules, with otelcol's messages.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), FieldError> {
        validate_dimensions(&self.dimensions)
            .map_err(|e| FieldError::new(format!("failed validating dimensions: {e}")))?;
        if self.events.enabled && self.events.dimensions.is_empty() {
            return Err(FieldError::new(
                "failed validating event dimensions: no dimensions configured for events",
            ));
        }
        if self.dimensions_cache_size <= 0 {
            return Err(FieldError::new(format!(
                "invalid cache size: {}, the maximum number of the items in the cache should be positive",
                self.dimensions_cache_size
            )));
        }
        if self.resource_metrics_cache_size <= 0 {
            return Err(FieldError::new(format!(
                "invalid resource metrics cache size: {}, the maximum number of the items in the cache should be positive",
                self.resource_metrics_cache_size
            )));
        }
        if self.histogram.explicit.is_some() && self.histogram.exponential.is_some() {
            return Err(FieldError::new(
                "use either `explicit` or `exponential` buckets histogram",
            ));
        }
        if self.metrics_flush_interval.is_zero() {
            return Err(FieldError::new(
                "invalid metrics_flush_interval: 0s, the duration should be positive",
            ));
        }
        if self.temporality() == Temporality::Delta && self.metric_timestamp_cache_size <= 0 {
            return Err(FieldError::new(format!(
                "invalid delta timestamp cache size: {}, the maximum number of the items in the cache should be positive",
                self.metric_timestamp_cache_size
            )));
        }
        Ok(())
    }

    /// Explicit bucket bounds in the configured unit (empty when exponential).
    pub fn bounds(&self) -> Vec<f64> {
        if self.histogram.exponential.is_some() {
            return Vec::new();
        }
        let buckets = self
            .histogram
            .explicit
            .as_ref()
            .and_then(|e| e.buckets.as_ref())
            .map_or_else(|| DEFAULT_BUCKETS.to_vec(), |b| b.clone());
        let divider = self.histogram.unit.nanos() as f64;
        buckets
            .iter()
            .map(|d| d.as_nanos() as f64 / divider)
            .collect()
    }

    /// Exponential histogram size, when exponential buckets are configured.
    pub fn exponential_max_size(&self) -> Option<usize> {
        self.histogram.exponential.as_ref().map(|e| {
            if e.max_size == 0 {
                DEFAULT_MAX_SIZE
            } else {
                e.max_size.clamp(2, 16_384)
            }
        })
    }

    /// Exemplars kept per data point between flushes.
    pub fn exemplar_limit(&self) -> usize {
        if !self.exemplars.enabled {
            return 0;
        }
        self.exemplars
            .max_per_data_point
            .unwrap_or(EXEMPLAR_CEILING)
    }
}

fn validate_dimensions(dimensions: &[Dimension]) -> Result<(), String> {
    let mut seen: Vec<&str> = vec![SERVICE_NAME, SPAN_KIND, STATUS_CODE, SPAN_NAME];
    for d in dimensions {
        if seen.contains(&d.name.as_str()) {
            return Err(format!("duplicate dimension name {}", d.name));
        }
        seen.push(&d.name);
    }
    Ok(())
}

/// One extra dimension.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Dimension {
    /// Attribute name, looked up on the span, then on its resource.
    pub name: String,
    /// Value (always a string) when the attribute is missing; without it the dimension is
    /// left out of that series.
    #[serde(deserialize_with = "scalar_text")]
    pub default: Option<String>,
}

/// A scalar taken as its text (`default: 200` is the string `"200"`, as otelcol decodes it).
fn scalar_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let value = Option::<yaml_serde::Value>::deserialize(deserializer)?;
    match value {
        None | Some(yaml_serde::Value::Null) => Ok(None),
        Some(yaml_serde::Value::String(s)) => Ok(Some(s)),
        Some(yaml_serde::Value::Number(n)) => Ok(Some(n.to_string())),
        Some(yaml_serde::Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(serde::de::Error::custom("default must be a string")),
    }
}

/// `histogram`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HistogramConfig {
    /// No duration metric. Default false.
    pub disable: bool,
    /// `ms` (default) or `s`.
    pub unit: Unit,
    /// Explicit buckets (the default kind).
    pub explicit: Option<ExplicitConfig>,
    /// Exponential buckets instead.
    pub exponential: Option<ExponentialConfig>,
}

/// `histogram.explicit`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ExplicitConfig {
    /// Bucket upper bounds as durations; unset = [`DEFAULT_BUCKETS`].
    #[serde(deserialize_with = "duration_list")]
    pub buckets: Option<Vec<Duration>>,
}

/// `histogram.exponential`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ExponentialConfig {
    /// Most buckets kept; the scale drops to fit. Default 160.
    pub max_size: usize,
}

/// Exponential buckets kept by default.
pub const DEFAULT_MAX_SIZE: usize = 160;

impl Default for ExponentialConfig {
    fn default() -> Self {
        Self {
            max_size: DEFAULT_MAX_SIZE,
        }
    }
}

fn duration_list<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<Duration>>, D::Error> {
    #[derive(Deserialize)]
    struct Item(#[serde(with = "crate::config::duration")] Duration);
    let items = Option::<Vec<Item>>::deserialize(deserializer)?;
    Ok(items.map(|v| v.into_iter().map(|Item(d)| d).collect()))
}

/// The duration metric's unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Unit {
    /// Milliseconds (`ms`).
    #[default]
    Milliseconds,
    /// Seconds (`s`).
    Seconds,
}

impl Unit {
    /// The unit as written on the metric.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Milliseconds => "ms",
            Self::Seconds => "s",
        }
    }

    /// Nanoseconds in one unit.
    pub fn nanos(self) -> u64 {
        match self {
            Self::Milliseconds => 1_000_000,
            Self::Seconds => 1_000_000_000,
        }
    }
}

impl<'de> Deserialize<'de> for Unit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.to_ascii_lowercase().as_str() {
            "ms" => Ok(Self::Milliseconds),
            "s" => Ok(Self::Seconds),
            _ => Err(serde::de::Error::custom(format!(
                "unknown Unit \"{text}\", allowed units are \"ms\" and \"s\""
            ))),
        }
    }
}

/// `exemplars`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ExemplarsConfig {
    /// Attach (trace id, span id, duration) exemplars. Default false.
    pub enabled: bool,
    /// Most exemplars per data point between flushes. Default unlimited in otelcol; here
    /// [`EXEMPLAR_CEILING`].
    pub max_per_data_point: Option<usize>,
}

/// `events`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Emit the events metric. Default false.
    pub enabled: bool,
    /// Dimensions of the events metric, looked up in event attributes too; required when
    /// enabled.
    pub dimensions: Vec<Dimension>,
}
