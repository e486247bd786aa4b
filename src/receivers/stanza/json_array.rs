//! `json_array_parser`: a string holding a JSON array becomes a list (or, with `header`, a
//! map of the named columns). As in stanza, numbers become doubles, and nested objects and
//! arrays are kept as their compact JSON text.
//!
//! ```yaml
//! - type: json_array_parser
//!   parse_to: attributes
//!   header: origin,sev,message,isBool
//! ```

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, ArrayValue, KeyValue};
use serde::Deserialize;

use super::build::{common, parser, Section};
use super::entry::Entry;
use super::parse::{Parser, Unused};
use super::{value, Kind, Transform};
use crate::config::FieldError;

/// The operator's own keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct JsonArrayConfig {
    /// Comma-separated column names; unset = the list itself is written.
    header: Option<String>,
}

/// The operator.
#[derive(Debug)]
pub struct JsonArrayParser {
    /// The common parser keys (its `format` is unused).
    pub common: Parser,
    /// Column names.
    pub header: Option<Vec<String>>,
}

/// Reads `header`, the parser keys and the common keys.
pub(super) fn build(mut s: Section) -> Result<Kind, FieldError> {
    let (cond, on_error) = common(&mut s)?;
    let p = parser(&mut s, Box::new(Unused))?;
    let c: JsonArrayConfig = s.rest()?;
    let header = match c.header {
        Some(h) if h.is_empty() => {
            return Err(FieldError::at(&["header"], "header must not be empty"))
        }
        Some(h) => Some(h.split(',').map(str::to_owned).collect()),
        None => None,
    };
    Ok(Kind::Transform {
        op: Box::new(JsonArrayParser { common: p, header }),
        cond,
        on_error,
    })
}

impl Transform for JsonArrayParser {
    fn apply(&self, entry: &mut Entry) -> Result<(), String> {
        let c = &self.common;
        let values = {
            let input = c.input(entry)?;
            let Some(text) = value::as_str(&input) else {
                return Err(format!(
                    "type {} cannot be parsed as JSON array",
                    value::go_type(&input)
                ));
            };
            parse_array(text)?
        };
        let parsed = match &self.header {
            None => AnyValue {
                value: Some(any_value::Value::ArrayValue(ArrayValue { values })),
            },
            Some(header) => {
                if header.len() != values.len() {
                    return Err(format!(
                        "wrong number of fields: expected {}, found {}",
                        header.len(),
                        values.len()
                    ));
                }
                value::map(
                    header
                        .iter()
                        .zip(values)
                        .map(|(k, v)| KeyValue {
                            key_strindex: 0,
                            key: k.clone(),
                            value: Some(v),
                        })
                        .collect(),
                )
            }
        };
        c.store(entry, parsed)?;
        c.blocks(entry)
    }
}

/// Parses a JSON array: scalars become values, nested containers their compact text.
///
/// # Errors
/// Invalid JSON, or JSON that is not an array.
pub fn parse_array(text: &str) -> Result<Vec<AnyValue>, String> {
    let parsed: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let serde_json::Value::Array(items) = parsed else {
        return Err(format!(
            "value doesn't contain array; it contains {}",
            kind(&parsed)
        ));
    };
    let raw = top_level_elements(text);
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            serde_json::Value::Null => value::nil(),
            serde_json::Value::Bool(b) => AnyValue {
                value: Some(any_value::Value::BoolValue(b)),
            },
            serde_json::Value::Number(n) => AnyValue {
                value: Some(any_value::Value::DoubleValue(
                    n.as_f64().unwrap_or(f64::NAN),
                )),
            },
            serde_json::Value::String(s) => value::string(s),
            other => value::string(raw.get(i).map_or_else(|| other.to_string(), |r| compact(r))),
        })
        .collect())
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// The source text of each element of a valid JSON array, in order (keys of nested
/// objects keep their order this way, which a parsed map would not).
fn top_level_elements(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut start = None;
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth == 1 {
                    start = Some(i + 1);
                }
            }
            b']' | b'}' => {
                if depth == 1 {
                    if let Some(s) = start.take() {
                        push_trimmed(&mut out, &text[s..i]);
                    }
                }
                depth = depth.saturating_sub(1);
            }
            b',' if depth == 1 => {
                if let Some(s) = start {
                    push_trimmed(&mut out, &text[s..i]);
                }
                start = Some(i + 1);
            }
            _ => {}
        }
    }
    out
}

fn push_trimmed<'a>(out: &mut Vec<&'a str>, piece: &'a str) {
    let piece = piece.trim_matches(|c: char| matches!(c, ' ' | '\t' | '\n' | '\r'));
    if !piece.is_empty() {
        out.push(piece);
    }
}

/// JSON text without the whitespace outside strings.
fn compact(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in raw.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            if c == '"' {
                in_string = true;
            }
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_and_nested_text() {
        let got = parse_array(
            r#"["Hello", 42, {"name": "Alice", "age": 25}, [1, 2, 3], true, null, "a,]b"]"#,
        )
        .unwrap();
        assert_eq!(got[0], value::string("Hello"));
        assert_eq!(got[1].value, Some(any_value::Value::DoubleValue(42.0)));
        assert_eq!(got[2], value::string(r#"{"name":"Alice","age":25}"#));
        assert_eq!(got[3], value::string("[1,2,3]"));
        assert_eq!(got[4].value, Some(any_value::Value::BoolValue(true)));
        assert_eq!(got[5], value::nil());
        assert_eq!(got[6], value::string("a,]b"));
        assert!(parse_array(r#"{"a":1}"#)
            .unwrap_err()
            .contains("contains object"));
        assert!(parse_array("[1,").is_err());
        assert!(parse_array("[]").unwrap().is_empty());
    }
}
