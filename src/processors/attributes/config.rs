//! `processors::attributes` settings.

use serde::Deserialize;

/// `processors::attributes`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Actions, applied in order to each item's attributes. Required, non-empty.
    pub actions: Vec<ActionConfig>,
    /// Only items matching this are processed.
    pub include: Option<MatchConfig>,
    /// Items matching this are skipped.
    pub exclude: Option<MatchConfig>,
}

/// One entry of `actions`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ActionConfig {
    /// The attribute acted on.
    pub key: Option<String>,
    /// insert, update, upsert, delete, hash, extract, convert (case-insensitive).
    pub action: String,
    /// A literal value of any YAML type; its type is kept.
    pub value: Option<yaml_serde::Value>,
    /// Take the value from this attribute of the same item.
    pub from_attribute: Option<String>,
    /// Take the value from the request context (`client.address`, `metadata.<k>`, …).
    pub from_context: Option<String>,
    /// A regular expression: keys to delete/hash, or named groups to extract.
    pub pattern: Option<String>,
    /// For convert: int, double or string.
    pub converted_type: Option<String>,
}

/// `include` / `exclude`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MatchConfig {
    /// `strict` or `regexp` (required).
    pub match_type: String,
    /// Accepted for compatibility: regexes are compiled once either way.
    pub regexp: Option<yaml_serde::Value>,
    /// Resource `service.name` values.
    pub services: Vec<String>,
    /// Span names.
    pub span_names: Vec<String>,
    /// Span kinds (`SPAN_KIND_SERVER`, …).
    pub span_kinds: Vec<String>,
    /// Item attributes: `{key, value?}` (no value = key present).
    pub attributes: Vec<AttributeMatch>,
    /// Resource attributes.
    pub resources: Vec<AttributeMatch>,
    /// Instrumentation scopes `{name, version?}`.
    pub libraries: Vec<LibraryMatch>,
    /// Log bodies (string bodies only).
    pub log_bodies: Vec<String>,
    /// Log severity texts.
    pub log_severity_texts: Vec<String>,
    /// Log severity number range.
    pub log_severity_number: Option<SeverityMatch>,
    /// Metric names.
    pub metric_names: Vec<String>,
}

/// `{key, value?}`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AttributeMatch {
    /// Attribute key.
    pub key: String,
    /// Value to compare (strict: typed equality; regexp: pattern on string values).
    pub value: Option<yaml_serde::Value>,
}

/// `{name, version?}`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LibraryMatch {
    /// Scope name.
    pub name: String,
    /// Scope version.
    pub version: Option<String>,
}

/// `log_severity_number`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SeverityMatch {
    /// Lowest severity number matched (a number or a name like `INFO`).
    pub min: yaml_serde::Value,
    /// Whether records without a severity match.
    pub match_undefined: bool,
}
