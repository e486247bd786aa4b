//! Settings every stanza network input shares (`encoding`, `multiline`, whitespace,
//! `attributes`, `resource`, `operators`, `retry_on_failure`), and turning tokens into
//! entries run through the operators.

use std::collections::BTreeMap;
use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use serde::Deserialize;

use super::expr::ValueSpec;
use super::split::{Mode, Splitter, Trim};
use super::{value, Entry, Pipeline};
use crate::config::FieldError;

/// `multiline`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Multiline {
    /// A token starts at each match.
    pub line_start_pattern: String,
    /// A token ends at each match.
    pub line_end_pattern: String,
    /// Leave the matched text out of tokens.
    pub omit_pattern: bool,
}

/// `retry_on_failure` of stanza-based receivers (consumerretry).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Retry {
    /// Retry a refused batch (blocking the input meanwhile). Default false.
    pub enabled: bool,
    /// First wait. Default 1s.
    #[serde(with = "crate::config::duration")]
    pub initial_interval: Duration,
    /// Longest wait. Default 30s.
    #[serde(with = "crate::config::duration")]
    pub max_interval: Duration,
    /// Give up after this long; 0 = never. Default 5m.
    #[serde(with = "crate::config::duration")]
    pub max_elapsed_time: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            enabled: false,
            initial_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(30),
            max_elapsed_time: Duration::from_secs(300),
        }
    }
}

/// How token bytes become the body.
#[derive(Clone, Debug)]
pub enum Decoder {
    /// Raw bytes body, no splitting.
    Nop,
    /// UTF-8 (and ASCII): invalid sequences become U+FFFD.
    Utf8,
    /// Any other WHATWG/IANA encoding.
    Other(&'static encoding_rs::Encoding),
}

impl Decoder {
    /// Looks an `encoding` value up.
    ///
    /// # Errors
    /// An unknown encoding name.
    pub fn parse(name: &str) -> Result<Self, String> {
        let lower = name.to_ascii_lowercase();
        Ok(match lower.as_str() {
            "nop" => Self::Nop,
            "" | "utf-8" | "utf8" | "ascii" | "us-ascii" => Self::Utf8,
            "utf-16" | "utf16" => Self::Other(encoding_rs::UTF_16LE),
            other => Self::Other(
                encoding_rs::Encoding::for_label(other.as_bytes())
                    .ok_or_else(|| format!("unsupported encoding '{name}'"))?,
            ),
        })
    }

    /// The body for a token.
    pub fn body(&self, token: &[u8]) -> AnyValue {
        match self {
            Self::Nop => AnyValue {
                value: Some(any_value::Value::BytesValue(token.to_vec())),
            },
            // Validating first is several times faster than the lossy scan, which only
            // runs for tokens that hold invalid sequences.
            Self::Utf8 => value::string(match std::str::from_utf8(token) {
                Ok(text) => text.to_owned(),
                Err(_) => String::from_utf8_lossy(token).into_owned(),
            }),
            Self::Other(enc) => {
                value::string(enc.decode_without_bom_handling(token).0.into_owned())
            }
        }
    }

    fn is_utf16(&self) -> Option<bool> {
        match self {
            Self::Other(e) if *e == encoding_rs::UTF_16LE => Some(true),
            Self::Other(e) if *e == encoding_rs::UTF_16BE => Some(false),
            _ => None,
        }
    }
}

/// The shared settings after validation.
#[derive(Debug)]
pub struct Input {
    /// Token splitting.
    pub splitter: Splitter,
    /// Whitespace trimming.
    pub trim: Trim,
    /// Body decoding.
    pub decoder: Decoder,
    /// `attributes` added to every entry.
    pub attributes: Vec<(String, ValueSpec)>,
    /// `resource` added to every entry.
    pub resource: Vec<(String, ValueSpec)>,
    /// The operators.
    pub pipeline: Pipeline,
}

/// What [`Input::build`] needs from a receiver's config.
pub struct InputConfig<'a> {
    /// `encoding`.
    pub encoding: &'a str,
    /// `multiline`.
    pub multiline: Option<&'a Multiline>,
    /// `preserve_leading_whitespaces`.
    pub preserve_leading: bool,
    /// `preserve_trailing_whitespaces`.
    pub preserve_trailing: bool,
    /// `attributes`.
    pub attributes: &'a BTreeMap<String, yaml_serde::Value>,
    /// `resource`.
    pub resource: &'a BTreeMap<String, yaml_serde::Value>,
    /// `operators`.
    pub operators: &'a [yaml_serde::Value],
    /// Token size limit.
    pub max: usize,
}

fn specs(
    map: &BTreeMap<String, yaml_serde::Value>,
    key: &str,
) -> Result<Vec<(String, ValueSpec)>, FieldError> {
    map.iter()
        .map(|(k, v)| {
            ValueSpec::from_yaml(v)
                .map(|s| (k.clone(), s))
                .map_err(|e| FieldError::at(&[key, k], e))
        })
        .collect()
}

fn pattern(p: &str, key: &str) -> Result<regex::bytes::Regex, FieldError> {
    regex::bytes::RegexBuilder::new(&format!("(?m){p}"))
        .size_limit(10 << 20)
        .build()
        .map_err(|e| FieldError::at(&["multiline", key], format!("compile {key} regex: {e}")))
}

impl Input {
    /// Validates and compiles the shared settings.
    ///
    /// # Errors
    /// Unknown encoding, both or neither multiline pattern, multiline with `nop`, invalid
    /// regexes, operator errors (under `operators`).
    pub fn build(c: &InputConfig<'_>) -> Result<Self, FieldError> {
        let decoder = Decoder::parse(c.encoding).map_err(|e| FieldError::at(&["encoding"], e))?;
        let mode = match c.multiline {
            Some(m) if !m.line_start_pattern.is_empty() || !m.line_end_pattern.is_empty() => {
                if matches!(decoder, Decoder::Nop) {
                    return Err(FieldError::at(&["multiline"], "line_start_pattern or line_end_pattern should not be set when using nop encoding"));
                }
                match (
                    m.line_start_pattern.is_empty(),
                    m.line_end_pattern.is_empty(),
                ) {
                    (false, false) => {
                        return Err(FieldError::at(
                            &["multiline"],
                            "only one of line_start_pattern or line_end_pattern can be set",
                        ))
                    }
                    (false, true) => Mode::LineStart {
                        re: pattern(&m.line_start_pattern, "line_start_pattern")?,
                        omit: m.omit_pattern,
                    },
                    _ => Mode::LineEnd {
                        re: pattern(&m.line_end_pattern, "line_end_pattern")?,
                        omit: m.omit_pattern,
                    },
                }
            }
            Some(m) if m.omit_pattern => {
                return Err(FieldError::at(
                    &["multiline"],
                    "omit_pattern needs line_start_pattern or line_end_pattern",
                ))
            }
            _ => match (&decoder, decoder.is_utf16()) {
                (Decoder::Nop, _) => Mode::None,
                (_, Some(little_endian)) => Mode::Utf16Newline { little_endian },
                _ => Mode::Newline,
            },
        };
        let pipeline = super::build(c.operators).map_err(|e| e.under("operators"))?;
        Ok(Self {
            splitter: Splitter { mode, max: c.max },
            trim: Trim {
                preserve_leading: c.preserve_leading,
                preserve_trailing: c.preserve_trailing,
            },
            decoder,
            attributes: specs(c.attributes, "attributes")?,
            resource: specs(c.resource, "resource")?,
            pipeline,
        })
    }

    /// One token → an entry with the configured attributes and resource plus `extra`
    /// attributes, run through the operators into `out`.
    pub fn handle(&self, token: &[u8], observed: u64, extra: &[KeyValue], out: &mut Vec<Entry>) {
        let token = if matches!(self.decoder, Decoder::Nop) {
            token
        } else {
            self.trim.apply(token)
        };
        self.handle_raw(token, observed, extra, out);
    }

    /// What the batcher calls to flush stateful operators; `None` when there are none.
    pub fn flusher(self: &std::sync::Arc<Self>) -> Option<super::emit::Flush> {
        if !self.pipeline.has_state() {
            return None;
        }
        let input = self.clone();
        Some(std::sync::Arc::new(move |force, out| {
            input.pipeline.flush(force, out);
        }))
    }

    /// [`Input::handle`] without whitespace trimming (`one_log_per_packet`).
    pub fn handle_raw(
        &self,
        token: &[u8],
        observed: u64,
        extra: &[KeyValue],
        out: &mut Vec<Entry>,
    ) {
        let mut entry = Entry::new(self.decoder.body(token), observed);
        for (k, spec) in &self.resource {
            match spec.value(&entry) {
                Ok(v) => value::insert(&mut entry.resource, k.clone(), v),
                Err(e) => tracing::error!(error = %e, key = %k, "resource value"),
            }
        }
        for (k, spec) in &self.attributes {
            match spec.value(&entry) {
                Ok(v) => value::insert(&mut entry.attributes, k.clone(), v),
                Err(e) => tracing::error!(error = %e, key = %k, "attribute value"),
            }
        }
        entry.attributes.extend_from_slice(extra);
        self.pipeline.process(entry, out);
    }
}

/// A byte size as stanza reads it: an integer, or a number with a unit (`64KiB`, `1MiB`,
/// `1mb`; `K`/`KB` = 1000, `KiB` = 1024, up to `T`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses `text`.
    ///
    /// # Errors
    /// Not a number with an optional known unit.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: f64 = num
            .parse()
            .map_err(|_| format!("invalid byte size {text:?}"))?;
        let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1.0,
            "k" | "kb" => 1e3,
            "ki" | "kib" => 1024.0,
            "m" | "mb" => 1e6,
            "mi" | "mib" => 1_048_576.0,
            "g" | "gb" => 1e9,
            "gi" | "gib" => 1_073_741_824.0,
            "t" | "tb" => 1e12,
            "ti" | "tib" => 1_099_511_627_776.0,
            _ => return Err(format!("invalid byte size {text:?}")),
        };
        let bytes = n * mult;
        if !bytes.is_finite() || !(0.0..=9.0e18).contains(&bytes) {
            return Err(format!("invalid byte size {text:?}"));
        }
        Ok(Self(bytes as u64))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = yaml_serde::Value::deserialize(d)?;
        match v {
            yaml_serde::Value::Number(n) => n
                .as_u64()
                .map(Self)
                .ok_or_else(|| serde::de::Error::custom(format!("invalid byte size {n}"))),
            yaml_serde::Value::String(s) => Self::parse(&s).map_err(serde::de::Error::custom),
            _ => Err(serde::de::Error::custom(
                "byte size must be a number or a string like 1MiB",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!(ByteSize::parse("64KiB").unwrap().0, 65_536);
        assert_eq!(ByteSize::parse("1MiB").unwrap().0, 1_048_576);
        assert_eq!(ByteSize::parse("2mb").unwrap().0, 2_000_000);
        assert_eq!(ByteSize::parse("2048").unwrap().0, 2048);
        assert!(ByteSize::parse("lots").is_err());
        assert!(ByteSize::parse("1XB").is_err());
    }

    #[test]
    fn decoders() {
        assert_eq!(
            Decoder::parse("utf-8").unwrap().body(b"a\xffb\0"),
            value::string("a\u{fffd}b\0")
        );
        assert_eq!(
            Decoder::parse("utf-16le").unwrap().body(b"h\0i\0"),
            value::string("hi")
        );
        assert!(matches!(
            Decoder::parse("nop").unwrap().body(b"x").value,
            Some(any_value::Value::BytesValue(_))
        ));
        assert_eq!(
            Decoder::parse("big5").unwrap().body(b"ab"),
            value::string("ab")
        );
        assert!(Decoder::parse("klingon").is_err());
    }
}
