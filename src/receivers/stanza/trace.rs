//! Trace context and scope name parsing (`trace:` / `scope_name:` blocks,
//! `trace_parser`, `scope_name_parser`).

use serde::Deserialize;

use super::entry::Entry;
use super::field::Field;
use super::value;

/// `{parse_from}` for one trace field.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct From {
    /// Where the hex string is.
    pub parse_from: Option<Field>,
}

/// `trace` config block.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TraceConfig {
    /// Default `body.trace_id`.
    pub trace_id: From,
    /// Default `body.span_id`.
    pub span_id: From,
    /// Default `body.trace_flags`.
    pub trace_flags: From,
}

/// A compiled trace parser.
#[derive(Clone, Debug)]
pub struct TraceParser {
    trace_id: Field,
    span_id: Field,
    trace_flags: Field,
}

impl TraceParser {
    /// Applies the defaults.
    pub fn build(config: TraceConfig) -> Self {
        Self {
            trace_id: config
                .trace_id
                .parse_from
                .unwrap_or_else(|| Field::body_key("trace_id")),
            span_id: config
                .span_id
                .parse_from
                .unwrap_or_else(|| Field::body_key("span_id")),
            trace_flags: config
                .trace_flags
                .parse_from
                .unwrap_or_else(|| Field::body_key("trace_flags")),
        }
    }

    /// Sets trace id, span id and flags from their fields; a missing field is skipped.
    ///
    /// # Errors
    /// A field that is not a hex string, or of the wrong length.
    pub fn parse(&self, entry: &mut Entry) -> Result<(), String> {
        let mut errors = Vec::new();
        match hex_field(entry, &self.trace_id, 16) {
            Ok(Some(b)) => entry.trace_id = b,
            Ok(None) => {}
            Err(e) => errors.push(format!("trace_id: {e}")),
        }
        match hex_field(entry, &self.span_id, 8) {
            Ok(Some(b)) => entry.span_id = b,
            Ok(None) => {}
            Err(e) => errors.push(format!("span_id: {e}")),
        }
        match hex_field(entry, &self.trace_flags, 1) {
            Ok(Some(b)) => entry.trace_flags = u32::from(b[0]),
            Ok(None) => {}
            Err(e) => errors.push(format!("trace_flags: {e}")),
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

fn hex_field(entry: &Entry, field: &Field, len: usize) -> Result<Option<Vec<u8>>, String> {
    let Some(v) = field.get(entry) else {
        return Ok(None);
    };
    let text = value::as_str(&v)
        .ok_or_else(|| format!("type {} is not a hex string", value::go_type(&v)))?;
    let bytes = hex::decode(text).map_err(|e| format!("{text:?}: {e}"))?;
    if bytes.len() != len {
        return Err(format!("{text:?} must be {} hex digits", len * 2));
    }
    Ok(Some(bytes))
}

/// `scope_name` block / `scope_name_parser`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScopeNameConfig {
    /// The field holding the name (required).
    pub parse_from: Option<Field>,
}

/// A compiled scope name parser.
#[derive(Clone, Debug)]
pub struct ScopeNameParser {
    parse_from: Field,
}

impl ScopeNameParser {
    /// Checks `parse_from`.
    ///
    /// # Errors
    /// `parse_from` missing.
    pub fn build(config: ScopeNameConfig) -> Result<Self, String> {
        Ok(Self {
            parse_from: config
                .parse_from
                .ok_or("missing required field 'parse_from'")?,
        })
    }

    /// Sets the scope name from the field.
    ///
    /// # Errors
    /// The field is missing or not a string.
    pub fn parse(&self, entry: &mut Entry) -> Result<(), String> {
        let v = self.parse_from.get(entry).ok_or_else(|| {
            format!(
                "log entry does not have the expected parse_from field: {}",
                self.parse_from
            )
        })?;
        let name = value::as_str(&v)
            .ok_or_else(|| format!("cannot use type {} as a scope name", value::go_type(&v)))?
            .to_owned();
        entry.scope_name = name;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::KeyValue;

    #[test]
    fn trace_fields_from_defaults_and_errors() {
        let body = r#"{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","trace_flags":"01","scope":"kong"}"#;
        let mut e = Entry::new(
            value::map(value::parse_json_object(body, false).unwrap()),
            0,
        );
        TraceParser::build(TraceConfig::default())
            .parse(&mut e)
            .unwrap();
        assert_eq!(hex::encode(&e.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex::encode(&e.span_id), "00f067aa0ba902b7");
        assert_eq!(e.trace_flags, 1);
        ScopeNameParser::build(ScopeNameConfig {
            parse_from: Some(Field::body_key("scope")),
        })
        .unwrap()
        .parse(&mut e)
        .unwrap();
        assert_eq!(e.scope_name, "kong");
        e.attributes.push(KeyValue {
            key_strindex: 0,
            key: "t".into(),
            value: Some(value::string("zz")),
        });
        let bad = TraceParser::build(TraceConfig {
            trace_id: From {
                parse_from: Some(Field::parse("attributes.t").unwrap()),
            },
            ..TraceConfig::default()
        });
        assert!(bad.parse(&mut e).unwrap_err().starts_with("trace_id"));
    }
}
