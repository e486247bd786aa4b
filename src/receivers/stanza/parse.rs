//! Parsers: the shared `parse_from` / `parse_to` / `body` / embedded-block behaviour
//! (stanza's `ParserOperator.ParseWith`) and the formats: JSON, regex, key/value, CSV.

use std::sync::Mutex;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use regex::Regex;

use super::entry::Entry;
use super::field::Field;
use super::severity::SeverityParser;
use super::time::TimeParser;
use super::trace::{ScopeNameParser, TraceParser};
use super::value;
use super::Transform;

/// A format: turns the input value into a map.
pub trait Format: Send + Sync + std::fmt::Debug {
    /// Parses `input`.
    ///
    /// # Errors
    /// The input is of the wrong type or does not match.
    fn parse(&self, input: &AnyValue) -> Result<Vec<KeyValue>, String>;
}

/// A parser operator: one format plus the common keys.
#[derive(Debug)]
pub struct Parser {
    /// Input field (default `body`).
    pub parse_from: Field,
    /// Output field (default `attributes`).
    pub parse_to: Field,
    /// Field copied into the body after parsing.
    pub body: Option<Field>,
    /// Embedded `timestamp:` block.
    pub time: Option<TimeParser>,
    /// Embedded `severity:` block.
    pub severity: Option<SeverityParser>,
    /// Embedded `trace:` block.
    pub trace: Option<TraceParser>,
    /// Embedded `scope_name:` block.
    pub scope_name: Option<ScopeNameParser>,
    /// The format.
    pub format: Box<dyn Format>,
}

impl Parser {
    /// The `parse_from` value.
    ///
    /// # Errors
    /// The entry has no such field.
    pub fn input<'e>(&self, entry: &'e Entry) -> Result<std::borrow::Cow<'e, AnyValue>, String> {
        self.parse_from.get(entry).ok_or_else(|| {
            format!(
                "entry is missing the expected parse_from field: {}",
                self.parse_from
            )
        })
    }

    /// Writes `parsed` to `parse_to`, then copies the `body` field into the body.
    ///
    /// # Errors
    /// `parse_to` cannot be set.
    pub fn store(&self, entry: &mut Entry, parsed: AnyValue) -> Result<(), String> {
        self.parse_to
            .set(entry, parsed)
            .map_err(|e| format!("set parse_to: {e}"))?;
        if let Some(body) = &self.body {
            if let Some(v) = body.get(entry) {
                entry.body = v.into_owned();
            }
        }
        Ok(())
    }

    /// Runs the embedded `timestamp:`, `severity:`, `trace:` and `scope_name:` blocks.
    ///
    /// # Errors
    /// The first block that fails.
    pub fn blocks(&self, entry: &mut Entry) -> Result<(), String> {
        apply_blocks(
            entry,
            self.time.as_ref(),
            self.severity.as_ref(),
            self.trace.as_ref(),
            self.scope_name.as_ref(),
        )
    }
}

impl Transform for Parser {
    fn apply(&self, entry: &mut Entry) -> Result<(), String> {
        let parsed = self.format.parse(&*self.input(entry)?)?;
        self.store(entry, value::map(parsed))?;
        self.blocks(entry)
    }
}

/// Runs the embedded sub-parsers, all of them, then reports the first error.
///
/// # Errors
/// The first sub-parser that failed, named.
fn apply_blocks(
    entry: &mut Entry,
    time: Option<&TimeParser>,
    severity: Option<&SeverityParser>,
    trace: Option<&TraceParser>,
    scope: Option<&ScopeNameParser>,
) -> Result<(), String> {
    let t = time.map(|p| p.parse(entry));
    let s = severity.map(|p| p.parse(entry));
    let tr = trace.map(|p| p.parse(entry));
    let sc = scope.map(|p| p.parse(entry));
    for (name, result) in [
        ("time parser", t),
        ("severity parser", s),
        ("trace parser", tr),
        ("scope_name parser", sc),
    ] {
        if let Some(Err(e)) = result {
            return Err(format!("{name}: {e}"));
        }
    }
    Ok(())
}

fn input_str<'a>(input: &'a AnyValue, what: &str) -> Result<std::borrow::Cow<'a, str>, String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    match &input.value {
        Some(Value::StringValue(s)) => Ok(std::borrow::Cow::Borrowed(s)),
        Some(Value::BytesValue(b)) if what != "JSON" => Ok(String::from_utf8_lossy(b)),
        _ => Err(format!(
            "type {} cannot be parsed as {what}",
            value::go_type(input)
        )),
    }
}

/// `json_parser`.
#[derive(Debug)]
pub struct Json {
    /// Keep integral numbers as Int64.
    pub parse_ints: bool,
}

impl Format for Json {
    fn parse(&self, input: &AnyValue) -> Result<Vec<KeyValue>, String> {
        let text = input_str(input, "JSON")?;
        value::parse_json_object(&text, self.parse_ints)
    }
}

/// `regex_parser`.
#[derive(Debug)]
pub struct RegexFormat {
    regex: Regex,
    names: Vec<String>,
    cache: Option<Mutex<Cache>>,
}

#[derive(Debug)]
struct Cache {
    size: usize,
    map: std::collections::HashMap<String, Vec<KeyValue>>,
    order: std::collections::VecDeque<String>,
}

impl RegexFormat {
    /// Compiles the pattern; `cache_size` 0 turns the cache off.
    ///
    /// # Errors
    /// Invalid pattern, or one without named groups.
    pub fn new(pattern: &str, cache_size: usize) -> Result<Self, String> {
        let regex = regex::RegexBuilder::new(pattern)
            .size_limit(10 << 20)
            .build()
            .map_err(|e| format!("compiling regex: {e}"))?;
        let names: Vec<String> = regex.capture_names().flatten().map(str::to_owned).collect();
        if names.is_empty() {
            return Err("no named capture groups in regex pattern".to_owned());
        }
        let cache = (cache_size > 0).then(|| {
            Mutex::new(Cache {
                size: cache_size.min(1 << 16),
                map: std::collections::HashMap::new(),
                order: std::collections::VecDeque::new(),
            })
        });
        Ok(Self {
            regex,
            names,
            cache,
        })
    }
}

impl Format for RegexFormat {
    fn parse(&self, input: &AnyValue) -> Result<Vec<KeyValue>, String> {
        let text = input_str(input, "regex")?;
        if let Some(cache) = &self.cache {
            if let Some(hit) = cache
                .lock()
                .map_err(|_| "regex cache poisoned")?
                .map
                .get(text.as_ref())
            {
                return Ok(hit.clone());
            }
        }
        let caps = self
            .regex
            .captures(&text)
            .ok_or_else(|| "regex pattern does not match".to_owned())?;
        let out: Vec<KeyValue> = self
            .names
            .iter()
            .map(|name| KeyValue {
                key_strindex: 0,
                key: name.clone(),
                value: Some(value::string(caps.name(name).map_or("", |m| m.as_str()))),
            })
            .collect();
        if let Some(cache) = &self.cache {
            let mut c = cache.lock().map_err(|_| "regex cache poisoned")?;
            if c.map.len() >= c.size {
                if let Some(old) = c.order.pop_front() {
                    c.map.remove(&old);
                }
            }
            c.order.push_back(text.to_string());
            c.map.insert(text.into_owned(), out.clone());
        }
        Ok(out)
    }
}

/// `key_value_parser`.
#[derive(Debug)]
pub struct KeyValueFormat {
    /// Between key and value, default `=`.
    pub delimiter: String,
    /// Between pairs; `None` = runs of whitespace (quotes respected).
    pub pair_delimiter: Option<String>,
}

fn split_whitespace_quoted(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                current.push(c);
            }
            (Some(_), c) => current.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                current.push(c);
            }
            (None, c) if c.is_whitespace() => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            (None, c) => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn unquote(s: &str) -> &str {
    let s = s.trim();
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return &s[1..s.len() - 1];
        }
    }
    s
}

impl Format for KeyValueFormat {
    fn parse(&self, input: &AnyValue) -> Result<Vec<KeyValue>, String> {
        let text = input_str(input, "key value pairs")?;
        let pairs: Vec<String> = match &self.pair_delimiter {
            None => split_whitespace_quoted(&text),
            Some(d) => text
                .split(d.as_str())
                .map(str::to_owned)
                .filter(|p| !p.trim().is_empty())
                .collect(),
        };
        let mut out = Vec::with_capacity(pairs.len());
        for pair in pairs {
            let Some((k, v)) = pair.split_once(self.delimiter.as_str()) else {
                return Err(format!("cannot split {pair:?} into 2 items, got 1 item(s)"));
            };
            value::insert(&mut out, unquote(k).to_owned(), value::string(unquote(v)));
        }
        Ok(out)
    }
}

/// `csv_parser`.
#[derive(Debug)]
pub struct CsvFormat {
    /// Column names (from `header`), or `None` when read per entry from `header_attribute`.
    pub header: Option<Vec<String>>,
    /// Attribute holding the header line.
    pub header_attribute: Option<String>,
    /// Field delimiter byte.
    pub delimiter: u8,
    /// Header delimiter byte.
    pub header_delimiter: u8,
    /// Treat quotes as ordinary characters.
    pub ignore_quotes: bool,
}

/// Splits one CSV record.
///
/// # Errors
/// Malformed record.
pub fn csv_fields(text: &str, delimiter: u8, quoting: bool) -> Result<Vec<String>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter)
        .quoting(quoting)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut record = csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(true) => Ok(record.iter().map(str::to_owned).collect()),
        Ok(false) => Ok(vec![String::new()]),
        Err(e) => Err(format!("parse csv: {e}")),
    }
}

impl CsvFormat {
    fn parse_with(&self, text: &str, header: &[String]) -> Result<Vec<KeyValue>, String> {
        let fields = csv_fields(text, self.delimiter, !self.ignore_quotes)?;
        if fields.len() != header.len() {
            return Err(format!(
                "wrong number of fields: expected {}, found {}",
                header.len(),
                fields.len()
            ));
        }
        Ok(header
            .iter()
            .zip(fields)
            .map(|(k, v)| KeyValue {
                key_strindex: 0,
                key: k.clone(),
                value: Some(value::string(v)),
            })
            .collect())
    }

    /// Parses the entry's input with its per-entry header when configured so.
    ///
    /// # Errors
    /// The header attribute is missing, or the record does not match the header.
    pub fn parse_entry(&self, entry: &Entry, input: &AnyValue) -> Result<Vec<KeyValue>, String> {
        let text = input_str(input, "csv")?;
        if let Some(h) = &self.header {
            return self.parse_with(&text, h);
        }
        let attr = self.header_attribute.as_deref().unwrap_or_default();
        let header_text = value::get(&entry.attributes, attr)
            .and_then(value::as_str)
            .ok_or_else(|| format!("failed to read dynamic header attribute {attr}"))?;
        let header = csv_fields(header_text, self.header_delimiter, true)?;
        self.parse_with(&text, &header)
    }
}

/// A CSV parser operator: like [`Parser`], but its header may come from the entry.
#[derive(Debug)]
pub struct CsvParser {
    /// The common parser keys (its `format` is unused).
    pub common: Parser,
    /// The CSV settings.
    pub csv: CsvFormat,
}

impl Transform for CsvParser {
    fn apply(&self, entry: &mut Entry) -> Result<(), String> {
        let c = &self.common;
        let parsed = self.csv.parse_entry(entry, &*c.input(entry)?)?;
        c.store(entry, value::map(parsed))?;
        c.blocks(entry)
    }
}

/// A format that is never called (the CSV parser parses through [`CsvFormat`]).
#[derive(Debug)]
pub struct Unused;

impl Format for Unused {
    fn parse(&self, _input: &AnyValue) -> Result<Vec<KeyValue>, String> {
        Err("unused format".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(list: &[KeyValue], k: &str) -> String {
        value::as_str(value::get(list, k).unwrap())
            .unwrap()
            .to_owned()
    }

    #[test]
    fn regex_named_groups_and_errors() {
        let r =
            RegexFormat::new(r"^(?P<method>\w+) (?P<path>\S+)(?: (?P<proto>\S+))?$", 4).unwrap();
        let out = r.parse(&value::string("GET /a")).unwrap();
        assert_eq!(
            (kv(&out, "method"), kv(&out, "path"), kv(&out, "proto")),
            ("GET".into(), "/a".into(), String::new())
        );
        assert_eq!(
            r.parse(&value::string("GET /a")).unwrap(),
            out,
            "cache hit gives the same"
        );
        assert_eq!(
            r.parse(&value::string("")).unwrap_err(),
            "regex pattern does not match"
        );
        assert_eq!(
            RegexFormat::new("a+", 0).unwrap_err(),
            "no named capture groups in regex pattern"
        );
        assert!(r
            .parse(&value::map(Vec::new()))
            .unwrap_err()
            .contains("cannot be parsed"));
    }

    #[test]
    fn key_value_and_csv() {
        let p = KeyValueFormat {
            delimiter: "=".into(),
            pair_delimiter: None,
        };
        let out = p
            .parse(&value::string(r#"a=1 msg="hello world" b='x'"#))
            .unwrap();
        assert_eq!(
            (kv(&out, "a"), kv(&out, "msg"), kv(&out, "b")),
            ("1".into(), "hello world".into(), "x".into())
        );
        assert!(p
            .parse(&value::string("novalue"))
            .unwrap_err()
            .contains("cannot split"));
        let p = KeyValueFormat {
            delimiter: ":".into(),
            pair_delimiter: Some(";".into()),
        };
        assert_eq!(kv(&p.parse(&value::string("a:1;b:2")).unwrap(), "b"), "2");
        let c = CsvFormat {
            header: Some(vec!["a".into(), "b".into()]),
            header_attribute: None,
            delimiter: b',',
            header_delimiter: b',',
            ignore_quotes: false,
        };
        let e = Entry::default();
        let out = c.parse_entry(&e, &value::string(r#"1,"x,y""#)).unwrap();
        assert_eq!(kv(&out, "b"), "x,y");
        assert!(c
            .parse_entry(&e, &value::string("1,2,3"))
            .unwrap_err()
            .contains("wrong number of fields"));
    }
}
