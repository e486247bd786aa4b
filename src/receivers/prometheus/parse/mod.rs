//! Exposition parsers: Prometheus text 0.0.4 and OpenMetrics 1.0, both strict.
//!
//! Written here rather than taken from a crate: the available crates accept malformed
//! input silently (a bad line is skipped), while a scrape must fail on it, as Prometheus
//! fails it. Both formats share the sample-line grammar in [`lexer`]; each format's file
//! adds its own metadata and ordering rules.

mod lexer;

pub use lexer::{is_label_name, is_metric_name};
mod openmetrics;
mod text;

use serde::Serialize;

/// Which exposition format a body is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`.
    Prometheus,
    /// `application/openmetrics-text; version=1.0.0` (and 0.0.1).
    OpenMetrics,
}

impl Format {
    /// The format a `Content-Type` names; anything not OpenMetrics is read as Prometheus
    /// text, as Prometheus does.
    pub fn from_content_type(content_type: &str) -> Self {
        let media = content_type.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            Self::OpenMetrics
        } else {
            Self::Prometheus
        }
    }
}

/// A metric family's type as declared by `# TYPE` (or `Unknown` without one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricType {
    /// Monotonic counter.
    Counter,
    /// Gauge.
    Gauge,
    /// Classic histogram (`_bucket`, `_sum`, `_count`).
    Histogram,
    /// OpenMetrics gauge histogram (`_gcount`, `_gsum`).
    Gaugehistogram,
    /// Summary (quantiles, `_sum`, `_count`).
    Summary,
    /// OpenMetrics info (`_info`).
    Info,
    /// OpenMetrics stateset.
    Stateset,
    /// `untyped` (text) / `unknown` (OpenMetrics) / no `# TYPE`.
    Unknown,
}

impl MetricType {
    /// The Prometheus type string (`counter`, …, `unknown`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
            Self::Gaugehistogram => "gaugehistogram",
            Self::Summary => "summary",
            Self::Info => "info",
            Self::Stateset => "stateset",
            Self::Unknown => "unknown",
        }
    }

    /// The sample-name suffixes a family of this type may use besides the bare name.
    fn suffixes(self) -> &'static [&'static str] {
        match self {
            Self::Counter => &["_total", "_created"],
            Self::Histogram => &["_bucket", "_sum", "_count", "_created"],
            Self::Gaugehistogram => &["_bucket", "_gsum", "_gcount"],
            Self::Summary => &["_sum", "_count", "_created"],
            Self::Info => &["_info"],
            Self::Gauge | Self::Stateset | Self::Unknown => &[],
        }
    }
}

/// One sample line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sample {
    /// The full sample name (`http_requests_total`, `latency_bucket`).
    pub name: String,
    /// Labels in exposition order.
    #[serde(serialize_with = "label_map")]
    pub labels: Vec<(String, String)>,
    /// The value.
    #[serde(serialize_with = "float")]
    pub value: f64,
    /// The sample timestamp in milliseconds since the epoch, if exposed.
    pub timestamp_ms: Option<i64>,
}

impl Sample {
    /// The value of label `name`.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn label_map<S: serde::Serializer>(labels: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap as _;
    let mut map = s.serialize_map(Some(labels.len()))?;
    for (k, v) in labels {
        map.serialize_entry(k, v)?;
    }
    map.end()
}

fn float<S: serde::Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
    if value.is_finite() {
        s.serialize_f64(*value)
    } else {
        s.serialize_str(&format_float(*value))
    }
}

/// Formats a value as Prometheus prints it (`NaN`, `+Inf`, `-Inf`, shortest decimal).
pub fn format_float(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{value}")
    }
}

/// A metric family: metadata and its samples.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Family {
    /// The family name (without `_total` etc. for counters in OpenMetrics).
    pub name: String,
    /// Declared type.
    #[serde(rename = "type")]
    pub kind: MetricType,
    /// `# HELP` text, unescaped.
    pub help: Option<String>,
    /// `# UNIT` (OpenMetrics only).
    pub unit: Option<String>,
    /// Samples in exposition order.
    pub samples: Vec<Sample>,
}

/// Why an exposition is malformed: the 1-based line and what is wrong there.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(line: usize, message: impl Into<String>) -> Self {
        Self {
            line,
            message: message.into(),
        }
    }
}

/// Parses a body in `format`.
///
/// # Errors
/// The first malformed line.
pub fn parse(body: &str, format: Format) -> Result<Vec<Family>, ParseError> {
    match format {
        Format::Prometheus => text::parse(body),
        Format::OpenMetrics => openmetrics::parse(body),
    }
}

/// The family a sample named `sample` belongs to among `families` declared so far, when
/// its name is the family name plus one of the type's suffixes.
pub(crate) fn family_of<'a>(sample: &str, family: &'a str, kind: MetricType) -> Option<&'a str> {
    if sample == family {
        return Some(family);
    }
    let rest = sample.strip_prefix(family)?;
    kind.suffixes().contains(&rest).then_some(family)
}

/// Why `otelpipe debug parse-metrics` failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// `--format` is neither `prometheus` nor `openmetrics`.
    #[error("unknown format {0:?}; expected prometheus or openmetrics")]
    Format(String),
    /// stdin could not be read, was not UTF-8 or was too large.
    #[error("read stdin: {0}")]
    Read(String),
    /// The exposition is malformed.
    #[error("invalid exposition: {0}")]
    Parse(#[from] ParseError),
}

/// Largest exposition the CLI reads.
const CLI_MAX_BYTES: u64 = 256 << 20;

/// `otelpipe debug parse-metrics`: reads an exposition from `input`, returns its families
/// as pretty JSON.
///
/// # Errors
/// A bad `format`, unreadable input, or the first malformed line.
pub fn cli(input: impl std::io::Read, format: &str) -> Result<String, CliError> {
    use std::io::Read as _;
    let format = match format {
        "prometheus" | "text" => Format::Prometheus,
        "openmetrics" => Format::OpenMetrics,
        other => return Err(CliError::Format(other.to_owned())),
    };
    let mut body = String::new();
    input
        .take(CLI_MAX_BYTES + 1)
        .read_to_string(&mut body)
        .map_err(|e| CliError::Read(e.to_string()))?;
    if body.len() as u64 > CLI_MAX_BYTES {
        return Err(CliError::Read("larger than 256 MiB".to_owned()));
    }
    let families = parse(&body, format)?;
    serde_json::to_string_pretty(&families).map_err(|e| CliError::Read(e.to_string()))
}

#[cfg(test)]
mod tests;
