//! Severity parsing (`severity:` blocks and `severity_parser`), as stanza's severity
//! builder: presets, custom mappings with lists, ranges and `2xx`-style shortcuts.

use std::collections::HashMap;

use opentelemetry_proto::tonic::common::v1::any_value;
use serde::Deserialize;

use super::entry::Entry;
use super::field::Field;
use super::value;

const NAMES: [&str; 6] = ["trace", "debug", "info", "warn", "error", "fatal"];

/// The OTLP short name for a severity number (`INFO2`), `DEFAULT` for 0.
pub fn short_name(number: i32) -> String {
    if !(1..=24).contains(&number) {
        return "DEFAULT".to_owned();
    }
    let base = NAMES[usize::try_from((number - 1) / 4).unwrap_or(0)].to_uppercase();
    match (number - 1) % 4 {
        0 => base,
        n => format!("{base}{}", n + 1),
    }
}

fn level_number(name: &str) -> Option<i32> {
    let lower = name.to_lowercase();
    if lower == "default" {
        return Some(0);
    }
    for (i, base) in NAMES.iter().enumerate() {
        if let Some(rest) = lower.strip_prefix(base) {
            let step = match rest {
                "" => 0,
                "2" => 1,
                "3" => 2,
                "4" => 3,
                _ => continue,
            };
            return Some(i32::try_from(i).unwrap_or(0) * 4 + 1 + step);
        }
    }
    None
}

/// `severity` config block.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SeverityConfig {
    /// The field holding the severity (required).
    pub parse_from: Option<Field>,
    /// `default`, `none` or `otel`.
    pub preset: Option<String>,
    /// Level → values.
    pub mapping: HashMap<String, yaml_serde::Value>,
    /// Replace the text with the standard short name.
    pub overwrite_text: bool,
}

/// A compiled severity parser.
#[derive(Clone, Debug)]
pub struct SeverityParser {
    parse_from: Field,
    mapping: HashMap<String, i32>,
    overwrite_text: bool,
}

fn preset(name: &str) -> Result<HashMap<String, i32>, String> {
    let mut map = HashMap::new();
    match name {
        "none" => return Ok(map),
        "default" | "" | "otel" | "otlp" => {}
        other => {
            return Err(format!(
                "unknown severity preset {other:?} (default, none, otel)"
            ))
        }
    }
    for n in 1..=24 {
        map.insert(short_name(n).to_lowercase(), n);
        map.insert(n.to_string(), n);
    }
    if name != "otel" && name != "otlp" {
        for (alias, base) in [("warning", 13), ("err", 17)] {
            map.insert(alias.to_owned(), base);
            for step in 2..=4 {
                map.insert(format!("{alias}{step}"), base + step - 1);
            }
        }
    }
    Ok(map)
}

fn mapping_values(
    level: i32,
    v: &yaml_serde::Value,
    out: &mut HashMap<String, i32>,
) -> Result<(), String> {
    use yaml_serde::Value as Y;
    match v {
        Y::Sequence(items) => {
            for item in items {
                mapping_values(level, item, out)?;
            }
        }
        Y::Mapping(m) => {
            let bound = |k: &str| {
                m.get(k)
                    .and_then(Y::as_i64)
                    .ok_or_else(|| format!("severity range needs integer {k:?}"))
            };
            let (min, max) = (bound("min")?, bound("max")?);
            let (lo, hi) = if min <= max { (min, max) } else { (max, min) };
            if hi - lo > 100_000 {
                return Err("severity range is too wide".to_owned());
            }
            for i in lo..=hi {
                out.insert(i.to_string(), level);
            }
        }
        Y::String(s) => match s.as_str() {
            "2xx" | "3xx" | "4xx" | "5xx" => {
                let base: i64 = i64::from(s.as_bytes()[0] - b'0') * 100;
                for i in base..base + 100 {
                    out.insert(i.to_string(), level);
                }
            }
            text => {
                out.insert(text.to_lowercase(), level);
            }
        },
        Y::Number(n) => {
            out.insert(n.to_string(), level);
        }
        Y::Bool(b) => {
            out.insert(b.to_string(), level);
        }
        Y::Null | Y::Tagged(_) => return Err("invalid severity mapping value".to_owned()),
    }
    Ok(())
}

impl SeverityParser {
    /// Compiles a severity block; `parse_from` defaults to `default_from` for the
    /// standalone operator.
    ///
    /// # Errors
    /// Missing `parse_from`, an unknown level or preset, a bad mapping value.
    pub fn build(config: SeverityConfig) -> Result<Self, String> {
        let parse_from = config
            .parse_from
            .ok_or("missing required field 'parse_from'")?;
        let mut mapping = preset(config.preset.as_deref().unwrap_or("default"))?;
        for (level, values) in &config.mapping {
            let number = level_number(level)
                .ok_or_else(|| format!("unrecognized severity {level:?} in mapping"))?;
            mapping_values(number, values, &mut mapping)?;
        }
        Ok(Self {
            parse_from,
            mapping,
            overwrite_text: config.overwrite_text,
        })
    }

    /// Sets the entry's severity from its field.
    ///
    /// # Errors
    /// The field is missing or holds a type that cannot be a severity.
    pub fn parse(&self, entry: &mut Entry) -> Result<(), String> {
        let value = self
            .parse_from
            .get(entry)
            .ok_or_else(|| format!("severity field does not exist: {}", self.parse_from))?;
        let text = match &value.value {
            Some(any_value::Value::StringValue(s)) => s.clone(),
            Some(any_value::Value::IntValue(i)) => i.to_string(),
            Some(any_value::Value::DoubleValue(d)) if d.fract() == 0.0 && d.abs() < 1e15 => {
                format!("{d:.0}")
            }
            Some(any_value::Value::DoubleValue(d)) => {
                return Err(format!("value {d} is not a whole number"));
            }
            Some(any_value::Value::BytesValue(b)) => String::from_utf8_lossy(b).into_owned(),
            _ => {
                return Err(format!(
                    "type {} cannot be a severity",
                    value::go_type(&value)
                ))
            }
        };
        let number = self.mapping.get(&text.to_lowercase()).copied().unwrap_or(0);
        entry.severity = number;
        entry.severity_text = if self.overwrite_text {
            short_name(number)
        } else {
            text
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parser(yaml: &str) -> SeverityParser {
        SeverityParser::build(yaml_serde::from_str(yaml).unwrap()).unwrap()
    }

    fn parse(
        p: &SeverityParser,
        v: opentelemetry_proto::tonic::common::v1::AnyValue,
    ) -> (i32, String) {
        let mut e = Entry::default();
        e.attributes
            .push(opentelemetry_proto::tonic::common::v1::KeyValue {
                key_strindex: 0,
                key: "s".into(),
                value: Some(v),
            });
        p.parse(&mut e).unwrap();
        (e.severity, e.severity_text)
    }

    #[test]
    fn default_preset_and_custom_mappings() {
        let p = parser("parse_from: attributes.s");
        assert_eq!(
            parse(&p, value::string("WARNING")),
            (13, "WARNING".to_owned())
        );
        assert_eq!(parse(&p, value::string("info2")), (10, "info2".to_owned()));
        assert_eq!(parse(&p, value::string("nope")), (0, "nope".to_owned()));
        let p = parser("parse_from: attributes.s\noverwrite_text: true\nmapping:\n  error: 5xx\n  warn: [404, oops]\n  info: {min: 200, max: 299}");
        let d = |x: f64| opentelemetry_proto::tonic::common::v1::AnyValue {
            value: Some(any_value::Value::DoubleValue(x)),
        };
        assert_eq!(parse(&p, d(503.0)), (17, "ERROR".to_owned()));
        assert_eq!(parse(&p, d(404.0)), (13, "WARN".to_owned()));
        assert_eq!(parse(&p, value::string("OOPS")), (13, "WARN".to_owned()));
        assert_eq!(parse(&p, d(201.0)), (9, "INFO".to_owned()));
        assert!(SeverityParser::build(
            yaml_serde::from_str("parse_from: body\nmapping: {loud: 1}").unwrap()
        )
        .is_err());
        assert!(SeverityParser::build(SeverityConfig::default()).is_err());
    }
}
