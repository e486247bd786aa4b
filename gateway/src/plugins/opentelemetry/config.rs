//! The `opentelemetry` plugin's config schema (spec §8.1) with Kong's defaults and checks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::propagation::{EXTRACTORS, INJECTORS};

/// Kong's queue parameters (spec §9).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Entries per handler call (opentelemetry default 200).
    pub max_batch_size: u64,
    /// Seconds to wait for a batch to fill after its first entry.
    pub max_coalescing_delay: f64,
    /// Capacity in entries.
    pub max_entries: u64,
    /// Capacity in bytes (string entries only; unused by spans).
    pub max_bytes: Option<u64>,
    /// Seconds after which a failing batch is dropped.
    pub max_retry_time: f64,
    /// First retry delay, seconds.
    pub initial_retry_delay: f64,
    /// Retry delay cap, seconds.
    pub max_retry_delay: f64,
    /// 1 = one sender; -1 = no queueing.
    pub concurrency_limit: i64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            max_batch_size: 200,
            max_coalescing_delay: 1.0,
            max_entries: 10_000,
            max_bytes: None,
            max_retry_time: 60.0,
            initial_retry_delay: 0.01,
            max_retry_delay: 60.0,
            concurrency_limit: 1,
        }
    }
}

/// `propagation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Propagation {
    /// Extractors in order.
    pub extract: Option<Vec<String>>,
    /// Header names removed from the upstream request.
    pub clear: Option<Vec<String>>,
    /// Injectors.
    pub inject: Option<Vec<String>>,
    /// Injector used by `preserve` without extraction.
    pub default_format: String,
}

impl Default for Propagation {
    fn default() -> Self {
        Self {
            extract: None,
            clear: None,
            inject: None,
            default_format: "w3c".to_owned(),
        }
    }
}

/// The plugin's config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtelConfig {
    /// OTLP/HTTP traces URL.
    pub traces_endpoint: Option<String>,
    /// OTLP/HTTP logs URL.
    pub logs_endpoint: Option<String>,
    /// Deprecated alias of `traces_endpoint`.
    pub endpoint: Option<String>,
    /// Headers added to every export request.
    pub headers: Option<BTreeMap<String, String>>,
    /// Resource attributes merged over the defaults.
    pub resource_attributes: Option<BTreeMap<String, String>>,
    /// Queue parameters.
    pub queue: QueueConfig,
    /// Deprecated: `queue.max_batch_size`.
    pub batch_span_count: Option<u64>,
    /// Deprecated: `queue.max_coalescing_delay`.
    pub batch_flush_delay: Option<f64>,
    /// Connect timeout, ms.
    pub connect_timeout: u64,
    /// Send timeout, ms.
    pub send_timeout: u64,
    /// Read timeout, ms.
    pub read_timeout: u64,
    /// Response header carrying the trace id.
    pub http_response_header_for_traceid: Option<String>,
    /// Deprecated propagation shorthand.
    pub header_type: String,
    /// Overrides kong.conf `tracing_sampling_rate`.
    pub sampling_rate: Option<f64>,
    /// Propagation settings.
    pub propagation: Propagation,
}

impl Default for OtelConfig {
    fn default() -> Self {
        Self {
            traces_endpoint: None,
            logs_endpoint: None,
            endpoint: None,
            headers: None,
            resource_attributes: None,
            queue: QueueConfig::default(),
            batch_span_count: None,
            batch_flush_delay: None,
            connect_timeout: 1000,
            send_timeout: 5000,
            read_timeout: 5000,
            http_response_header_for_traceid: None,
            header_type: "preserve".to_owned(),
            sampling_rate: None,
            propagation: Propagation::default(),
        }
    }
}

const HEADER_TYPES: &[&str] = &[
    "preserve",
    "ignore",
    "b3",
    "b3-single",
    "w3c",
    "jaeger",
    "ot",
    "aws",
    "gcp",
    "datadog",
    "instana",
];

/// The extract / clear / inject lists in force (spec §8.5 "effective configuration").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    /// Extractors in order.
    pub extract: Vec<String>,
    /// Headers to clear.
    pub clear: Vec<String>,
    /// Injectors.
    pub inject: Vec<String>,
    /// Default injector.
    pub default_format: String,
}

impl OtelConfig {
    /// The traces URL (`traces_endpoint`, else the deprecated `endpoint`).
    pub fn traces_url(&self) -> Option<&str> {
        self.traces_endpoint.as_deref().or(self.endpoint.as_deref())
    }

    /// The effective propagation lists.
    pub fn effective(&self) -> Effective {
        let p = &self.propagation;
        let default_format = p.default_format.clone();
        if p.extract.is_some() || p.inject.is_some() || p.clear.is_some() {
            return Effective {
                extract: p.extract.clone().unwrap_or_default(),
                clear: p.clear.clone().unwrap_or_default(),
                inject: p.inject.clone().unwrap_or_default(),
                default_format,
            };
        }
        let all: Vec<String> = [
            "b3", "w3c", "jaeger", "ot", "datadog", "aws", "gcp", "instana",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        match self.header_type.as_str() {
            "preserve" => Effective {
                extract: all,
                clear: Vec::new(),
                inject: vec!["preserve".to_owned()],
                default_format,
            },
            "ignore" => Effective {
                extract: Vec::new(),
                clear: Vec::new(),
                inject: vec![default_format.clone()],
                default_format,
            },
            other => Effective {
                extract: all,
                clear: Vec::new(),
                inject: vec!["preserve".to_owned(), other.to_owned()],
                default_format,
            },
        }
    }
}

fn one_of(field: &str, value: &str, allowed: &[&str], problems: &mut Vec<(String, String)>) {
    if !allowed.contains(&value) {
        problems.push((
            field.to_owned(),
            format!("expected one of: {}", allowed.join(", ")),
        ));
    }
}

/// Decodes and checks `config`, returning the typed config or `(field, message)` problems.
pub fn parse(config: &Value) -> Result<OtelConfig, Vec<(String, String)>> {
    let c: OtelConfig = serde_json::from_value(config.clone()).map_err(|e| {
        let msg = e.to_string();
        let field = msg
            .split('`')
            .nth(1)
            .filter(|_| msg.starts_with("unknown field"))
            .unwrap_or("@entity")
            .to_owned();
        let message = if msg.starts_with("unknown field") {
            "unknown field".to_owned()
        } else {
            msg
        };
        vec![(field, message)]
    })?;
    let mut problems = Vec::new();
    if c.traces_url().is_none() && c.logs_endpoint.is_none() {
        problems.push((
            "@entity".to_owned(),
            "at least one of these fields must be non-empty: 'config.traces_endpoint', 'config.logs_endpoint'".to_owned(),
        ));
    }
    if let Some(attrs) = &c.resource_attributes {
        for (k, v) in attrs {
            if v.is_empty() {
                problems.push((
                    format!("resource_attributes.{k}"),
                    "length must be at least 1".to_owned(),
                ));
            }
        }
    }
    if let Some(rate) = c.sampling_rate {
        if !(0.0..=1.0).contains(&rate) {
            problems.push((
                "sampling_rate".to_owned(),
                "value should be between 0 and 1".to_owned(),
            ));
        }
    }
    one_of("header_type", &c.header_type, HEADER_TYPES, &mut problems);
    let p = &c.propagation;
    let mut injectors = INJECTORS.to_vec();
    one_of(
        "propagation.default_format",
        &p.default_format,
        &injectors,
        &mut problems,
    );
    for (i, e) in p.extract.iter().flatten().enumerate() {
        one_of(
            &format!("propagation.extract.{}", i + 1),
            e,
            EXTRACTORS,
            &mut problems,
        );
    }
    injectors.insert(0, "preserve");
    for (i, e) in p.inject.iter().flatten().enumerate() {
        one_of(
            &format!("propagation.inject.{}", i + 1),
            e,
            &injectors,
            &mut problems,
        );
    }
    let q = &c.queue;
    let ranges = [
        (
            "queue.max_batch_size",
            q.max_batch_size as f64,
            1.0,
            1_000_000.0,
        ),
        (
            "queue.max_coalescing_delay",
            q.max_coalescing_delay,
            0.0,
            3600.0,
        ),
        ("queue.max_entries", q.max_entries as f64, 1.0, 1_000_000.0),
        ("queue.max_retry_time", q.max_retry_time, 0.0, 1e9),
        (
            "queue.initial_retry_delay",
            q.initial_retry_delay,
            0.001,
            1_000_000.0,
        ),
        (
            "queue.max_retry_delay",
            q.max_retry_delay,
            0.001,
            1_000_000.0,
        ),
    ];
    for (field, v, lo, hi) in ranges {
        if !(lo..=hi).contains(&v) {
            problems.push((
                field.to_owned(),
                format!("value should be between {lo} and {hi}"),
            ));
        }
    }
    if q.concurrency_limit != 1 && q.concurrency_limit != -1 {
        problems.push((
            "queue.concurrency_limit".to_owned(),
            "expected one of: -1, 1".to_owned(),
        ));
    }
    if problems.is_empty() {
        Ok(c)
    } else {
        Err(problems)
    }
}

/// Fills the defaults into `config` (the stored form) after checking it.
pub fn check(config: &mut Value) -> Result<(), Vec<(String, String)>> {
    let mut c = parse(config)?;
    if let Some(n) = c.batch_span_count.filter(|n| *n != 200) {
        c.queue.max_batch_size = n;
    }
    if let Some(d) = c.batch_flush_delay.filter(|d| *d != 3.0) {
        c.queue.max_coalescing_delay = d;
    }
    if let Ok(v) = serde_json::to_value(&c) {
        *config = v;
    }
    Ok(())
}
