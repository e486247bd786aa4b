//! `include` / `exclude`: which spans, log records or metrics the actions apply to.

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use regex::Regex;

use super::actions::any_value as to_any;
use super::config::{AttributeMatch, MatchConfig};
use crate::config::FieldError;
use crate::pipeline::Signal;

/// A string criterion: exact or an unanchored regex.
#[derive(Clone, Debug)]
enum Text {
    Exact(String),
    Pattern(Regex),
}

impl Text {
    fn matches(&self, s: &str) -> bool {
        match self {
            Self::Exact(e) => e == s,
            Self::Pattern(r) => r.is_match(s),
        }
    }
}

#[derive(Clone, Debug)]
struct Attr {
    key: String,
    value: Option<AttrValue>,
}

#[derive(Clone, Debug)]
enum AttrValue {
    Exact(AnyValue),
    Pattern(Regex),
}

/// A compiled `include` or `exclude`.
#[derive(Clone, Debug, Default)]
pub(super) struct Matcher {
    services: Vec<Text>,
    span_names: Vec<Text>,
    span_kinds: Vec<Text>,
    attributes: Vec<Attr>,
    resources: Vec<Attr>,
    libraries: Vec<(Text, Option<Text>)>,
    log_bodies: Vec<Text>,
    severity_texts: Vec<Text>,
    severity_min: Option<(i32, bool)>,
    metric_names: Vec<Text>,
}

/// What an item offers to match against.
pub(super) struct Subject<'a> {
    pub(super) resource: Option<&'a Resource>,
    pub(super) scope: Option<&'a InstrumentationScope>,
    pub(super) span: Option<&'a Span>,
    pub(super) log: Option<&'a LogRecord>,
    pub(super) metric_name: Option<&'a str>,
}

impl Matcher {
    /// Compiles `config` for `signal`, rejecting criteria that do not apply to it.
    pub(super) fn compile(config: &MatchConfig, signal: Signal) -> Result<Self, FieldError> {
        let regexp = match config.match_type.as_str() {
            "strict" => false,
            "regexp" => true,
            "" => return Err(FieldError::at(&["match_type"], "match_type must be set")),
            other => {
                return Err(FieldError::at(
                    &["match_type"],
                    format!("unrecognized match_type: '{other}', valid types are: [regexp strict]"),
                ))
            }
        };
        let text = |items: &[String], field: &str| -> Result<Vec<Text>, FieldError> {
            items
                .iter()
                .map(|s| {
                    if regexp {
                        Regex::new(s).map(Text::Pattern).map_err(|e| {
                            FieldError::at(
                                &[field],
                                format!("error creating processor filters: {e}"),
                            )
                        })
                    } else {
                        Ok(Text::Exact(s.clone()))
                    }
                })
                .collect()
        };
        let attrs = |items: &[AttributeMatch], field: &str| -> Result<Vec<Attr>, FieldError> {
            items
                .iter()
                .map(|a| {
                    let value = match &a.value {
                        None => None,
                        Some(v) if regexp => {
                            let pattern = v.as_str().ok_or_else(|| {
                                FieldError::at(&[field], "regexp attribute values must be strings")
                            })?;
                            Some(AttrValue::Pattern(Regex::new(pattern).map_err(|e| {
                                FieldError::at(
                                    &[field],
                                    format!("error creating processor filters: {e}"),
                                )
                            })?))
                        }
                        Some(v) => Some(AttrValue::Exact(to_any(v))),
                    };
                    Ok(Attr {
                        key: a.key.clone(),
                        value,
                    })
                })
                .collect()
        };
        let m = Self {
            services: text(&config.services, "services")?,
            span_names: text(&config.span_names, "span_names")?,
            span_kinds: text(&config.span_kinds, "span_kinds")?,
            attributes: attrs(&config.attributes, "attributes")?,
            resources: attrs(&config.resources, "resources")?,
            libraries: config
                .libraries
                .iter()
                .map(|l| {
                    let name = text(std::slice::from_ref(&l.name), "libraries")?.remove(0);
                    let version = l
                        .version
                        .as_ref()
                        .map(|v| {
                            text(std::slice::from_ref(v), "libraries").map(|mut t| t.remove(0))
                        })
                        .transpose()?;
                    Ok((name, version))
                })
                .collect::<Result<_, FieldError>>()?,
            log_bodies: text(&config.log_bodies, "log_bodies")?,
            severity_texts: text(&config.log_severity_texts, "log_severity_texts")?,
            severity_min: config
                .log_severity_number
                .as_ref()
                .map(|s| severity(&s.min).map(|n| (n, s.match_undefined)))
                .transpose()?,
            metric_names: text(&config.metric_names, "metric_names")?,
        };
        let log_only =
            !m.log_bodies.is_empty() || !m.severity_texts.is_empty() || m.severity_min.is_some();
        let span_only =
            !m.services.is_empty() || !m.span_names.is_empty() || !m.span_kinds.is_empty();
        match signal {
            Signal::Traces if log_only || !m.metric_names.is_empty() => {
                return Err(FieldError::new("log_bodies, log_severity_texts, log_severity_number and metric_names do not apply to spans"));
            }
            Signal::Logs if span_only || !m.metric_names.is_empty() => {
                return Err(FieldError::new(
                    "services, span_names, span_kinds and metric_names do not apply to logs",
                ));
            }
            Signal::Metrics
                if span_only
                    || log_only
                    || !m.attributes.is_empty()
                    || !m.libraries.is_empty()
                    || !m.resources.is_empty() =>
            {
                return Err(FieldError::new("only metric_names applies to metrics"));
            }
            _ => {}
        }
        let empty = m.services.is_empty()
            && m.span_names.is_empty()
            && m.span_kinds.is_empty()
            && m.attributes.is_empty()
            && m.resources.is_empty()
            && m.libraries.is_empty()
            && m.log_bodies.is_empty()
            && m.severity_texts.is_empty()
            && m.severity_min.is_none()
            && m.metric_names.is_empty();
        if empty {
            return Err(FieldError::new("at least one of services, span_names, span_kinds, attributes, resources, libraries, log_bodies, log_severity_texts, log_severity_number or metric_names must be specified"));
        }
        Ok(m)
    }

    /// True when every given criterion matches (within a list, any item may match).
    pub(super) fn matches(&self, s: &Subject<'_>) -> bool {
        let any = |list: &[Text], value: Option<&str>| {
            list.is_empty() || value.is_some_and(|v| list.iter().any(|t| t.matches(v)))
        };
        let resource_attrs: &[KeyValue] = s.resource.map_or(&[], |r| r.attributes.as_slice());
        let service = resource_attrs
            .iter()
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| str_value(kv.value.as_ref()));
        if !any(&self.services, service) {
            return false;
        }
        if !any(&self.span_names, s.span.map(|sp| sp.name.as_str())) {
            return false;
        }
        if !any(&self.span_kinds, s.span.map(|sp| span_kind(sp.kind))) {
            return false;
        }
        if !any(&self.metric_names, s.metric_name) {
            return false;
        }
        if !self.libraries.is_empty() {
            let (name, version) = s
                .scope
                .map_or(("", ""), |sc| (sc.name.as_str(), sc.version.as_str()));
            let hit = self
                .libraries
                .iter()
                .any(|(n, v)| n.matches(name) && v.as_ref().is_none_or(|v| v.matches(version)));
            if !hit {
                return false;
            }
        }
        if !self.resources.is_empty() && !all_attrs(&self.resources, resource_attrs) {
            return false;
        }
        let item_attrs: &[KeyValue] = match (s.span, s.log) {
            (Some(sp), _) => &sp.attributes,
            (_, Some(l)) => &l.attributes,
            _ => &[],
        };
        if !self.attributes.is_empty() && !all_attrs(&self.attributes, item_attrs) {
            return false;
        }
        if let Some(log) = s.log {
            let body = log.body.as_ref().and_then(|b| match &b.value {
                Some(any_value::Value::StringValue(t)) => Some(t.as_str()),
                _ => None,
            });
            if !any(&self.log_bodies, body) {
                return false;
            }
            if !any(&self.severity_texts, Some(log.severity_text.as_str())) {
                return false;
            }
            if let Some((min, undefined)) = self.severity_min {
                let n = log.severity_number;
                let ok = if n == 0 { undefined } else { n >= min };
                if !ok {
                    return false;
                }
            }
        }
        true
    }
}

fn all_attrs(wanted: &[Attr], have: &[KeyValue]) -> bool {
    wanted.iter().all(|w| {
        have.iter().any(|kv| {
            kv.key == w.key
                && match &w.value {
                    None => true,
                    Some(AttrValue::Exact(v)) => kv.value.as_ref() == Some(v),
                    Some(AttrValue::Pattern(r)) => {
                        str_value(kv.value.as_ref()).is_some_and(|s| r.is_match(s))
                    }
                }
        })
    })
}

fn str_value(v: Option<&AnyValue>) -> Option<&str> {
    match v?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s),
        _ => None,
    }
}

fn span_kind(kind: i32) -> &'static str {
    [
        "SPAN_KIND_UNSPECIFIED",
        "SPAN_KIND_INTERNAL",
        "SPAN_KIND_SERVER",
        "SPAN_KIND_CLIENT",
        "SPAN_KIND_PRODUCER",
        "SPAN_KIND_CONSUMER",
    ]
    .get(kind as usize)
    .copied()
    .unwrap_or("SPAN_KIND_UNSPECIFIED")
}

fn severity(v: &yaml_serde::Value) -> Result<i32, FieldError> {
    const NAMES: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
    if let Some(n) = v.as_i64() {
        return i32::try_from(n)
            .map_err(|_| FieldError::at(&["log_severity_number", "min"], "out of range"));
    }
    let text = v.as_str().unwrap_or("").to_ascii_uppercase();
    let base = text.trim_end_matches(|c: char| c.is_ascii_digit());
    let step: i32 = match &text[base.len()..] {
        "" => 1,
        d => d.parse().unwrap_or(0),
    };
    NAMES
        .iter()
        .position(|n| *n == base)
        .filter(|_| (1..=4).contains(&step))
        .map(|i| i as i32 * 4 + step)
        .ok_or_else(|| {
            FieldError::at(
                &["log_severity_number", "min"],
                format!("unrecognized severity {text:?}"),
            )
        })
}
