//! `processors::cumulativetodelta` settings.

use std::time::Duration;

use serde::Deserialize;

use crate::config::FieldError;

/// `processors::cumulativetodelta`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Only matching metrics are converted. `include:` with no body = no filter.
    pub include: Option<MatchMetrics>,
    /// Matching metrics are left alone.
    pub exclude: Option<MatchMetrics>,
    /// State of a series not updated for this long is forgotten. Default 0 = kept forever.
    #[serde(with = "crate::config::duration")]
    pub max_staleness: Duration,
    /// First-point policy: `auto` (default), `keep` or `drop`.
    pub initial_value: InitialValue,
}

/// `include` / `exclude`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MatchMetrics {
    /// `strict` or `regexp`; required when `metrics` is given.
    pub match_type: String,
    /// Accepted for compatibility (regexp cache settings); patterns are compiled once.
    pub regexp: Option<yaml_serde::Value>,
    /// Metric names (strict) or unanchored patterns (regexp).
    pub metrics: Vec<String>,
    /// `sum`, `histogram` (case-insensitive).
    pub metric_types: Vec<String>,
}

/// What happens to the first point of a series.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum InitialValue {
    /// Kept only if the series started after the processor did.
    #[default]
    Auto,
    /// Kept, with its cumulative value.
    Keep,
    /// Dropped; it only becomes the baseline.
    Drop,
}

/// The metric types the filters accept.
pub(super) const METRIC_TYPES: [&str; 2] = ["sum", "histogram"];

impl Config {
    /// otelcol's cross-field rules, with its messages.
    ///
    /// # Errors
    /// `match_type` without `metrics` (or the reverse), or an unknown metric type.
    pub fn validate(&self) -> Result<(), FieldError> {
        let default = MatchMetrics::default();
        let include = self.include.as_ref().unwrap_or(&default);
        let exclude = self.exclude.as_ref().unwrap_or(&default);
        if (!include.metrics.is_empty() && include.match_type.is_empty())
            || (!exclude.metrics.is_empty() && exclude.match_type.is_empty())
        {
            return Err(FieldError::new(
                "match_type must be set if metrics are supplied",
            ));
        }
        if (!include.match_type.is_empty() && include.metrics.is_empty())
            || (!exclude.match_type.is_empty() && exclude.metrics.is_empty())
        {
            return Err(FieldError::new(
                "metrics must be supplied if match_type is set",
            ));
        }
        for (section, m) in [("include", include), ("exclude", exclude)] {
            if !m.match_type.is_empty() && !matches!(m.match_type.as_str(), "strict" | "regexp") {
                return Err(FieldError::at(
                    &[section, "match_type"],
                    format!(
                        "unrecognized match_type: '{}', valid types are: [regexp strict]",
                        m.match_type
                    ),
                ));
            }
            for t in &m.metric_types {
                if !METRIC_TYPES.contains(&t.to_lowercase().as_str()) {
                    return Err(FieldError::new(format!(
                        "found invalid metric type in {section}.metric_types: {t}. Valid values are [histogram sum]"
                    )));
                }
            }
        }
        Ok(())
    }
}
