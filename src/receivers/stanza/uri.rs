//! `uri_parser`: splits an absolute URI, an absolute path, or a `?query` string into
//! `scheme`, `user`, `host`, `port`, `path` and `query` (a map of string lists); empty
//! parts are left out, as in stanza.
//!
//! ```yaml
//! - type: uri_parser
//!   parse_from: attributes.request.uri
//!   parse_to: attributes.uri
//! ```
//!
//! The splitting follows Go's `url.ParseRequestURI` (what stanza calls), written here
//! because the WHATWG parser of the `url` crate normalises what Go keeps (host case,
//! default ports, path dots) and refuses relative references.

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, ArrayValue, KeyValue};

use super::build::{common, parser, Empty, Section};
use super::parse::Format;
use super::{value, Kind};
use crate::config::FieldError;

/// The format.
#[derive(Debug)]
pub struct UriFormat;

/// Reads the parser keys (`parse_from`, `parse_to`, embedded blocks) and the common keys.
pub(super) fn build(mut s: Section) -> Result<Kind, FieldError> {
    let (cond, on_error) = common(&mut s)?;
    let p = parser(&mut s, Box::new(UriFormat))?;
    s.rest::<Empty>()?;
    Ok(Kind::Transform {
        op: Box::new(p),
        cond,
        on_error,
    })
}

impl Format for UriFormat {
    fn parse(&self, input: &AnyValue) -> Result<Vec<KeyValue>, String> {
        let Some(text) = value::as_str(input) else {
            return Err(format!(
                "type '{}' cannot be parsed as URI",
                value::go_type(input)
            ));
        };
        parse_uri(text)
    }
}

fn push(out: &mut Vec<KeyValue>, key: &str, v: AnyValue) {
    out.push(KeyValue {
        key_strindex: 0,
        key: key.to_owned(),
        value: Some(v),
    });
}

/// Parses one URI as stanza does.
///
/// # Errors
/// Empty input, a relative reference that is not an absolute path, bad escapes, a bad port.
pub fn parse_uri(text: &str) -> Result<Vec<KeyValue>, String> {
    if text.is_empty() {
        return Err("parse value is empty".to_owned());
    }
    let bad = |why: &str| format!("parse {text:?}: {why}");
    let mut out = Vec::new();
    if let Some(query) = text.strip_prefix('?') {
        let q = parse_query(query, true).map_err(|e| bad(&e))?;
        if !q.is_empty() {
            push(&mut out, "query", query_value(q));
        }
        return Ok(out);
    }
    let (scheme, rest) = split_scheme(text).map_err(|e| bad(&e))?;
    let (rest, raw_query) = match rest.split_once('?') {
        Some((r, q)) => (r, q),
        None => (rest, ""),
    };
    let mut user = String::new();
    let mut host = "";
    let mut port = "";
    let mut path = "";
    if !rest.starts_with('/') {
        if scheme.is_empty() {
            return Err(bad("invalid URI for request"));
        }
        // An opaque URI (`mailto:x@y`): only the scheme and the query come out.
    } else if let (false, Some(after)) = (scheme.is_empty(), rest.strip_prefix("//")) {
        let end = after.find('/').unwrap_or(after.len());
        let (authority, tail) = after.split_at(end);
        let hostport = match authority.rfind('@') {
            Some(at) => {
                let info = &authority[..at];
                let name = info.split_once(':').map_or(info, |(n, _)| n);
                user = percent_decode(name, false).ok_or_else(|| bad("invalid userinfo"))?;
                &authority[at + 1..]
            }
            None => authority,
        };
        (host, port) = split_host_port(hostport).map_err(|e| bad(&e))?;
        path = tail;
    } else {
        path = rest;
    }
    if percent_decode(path, false).is_none() {
        return Err(bad("invalid URL escape"));
    }
    let scheme = scheme.to_ascii_lowercase();
    for (key, part) in [
        ("scheme", scheme.as_str()),
        ("user", user.as_str()),
        ("host", host),
        ("port", port),
        ("path", path),
    ] {
        if !part.is_empty() {
            push(&mut out, key, value::string(part));
        }
    }
    // Like Go's `URL.Query()`, pairs that do not decode are skipped, not errors.
    let q = parse_query(raw_query, false).unwrap_or_default();
    if !q.is_empty() {
        push(&mut out, "query", query_value(q));
    }
    Ok(out)
}

/// `scheme:` when the text starts with one, else an empty scheme and the whole text.
fn split_scheme(text: &str) -> Result<(&str, &str), String> {
    for (i, c) in text.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if i > 0 => {}
            ':' if i == 0 => return Err("missing protocol scheme".to_owned()),
            ':' => return Ok((&text[..i], &text[i + 1..])),
            _ => return Ok(("", text)),
        }
    }
    Ok(("", text))
}

/// `host[:port]` or `[v6]:port`; the host without brackets, the port digits.
fn split_host_port(hostport: &str) -> Result<(&str, &str), String> {
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let close = v6
            .find(']')
            .ok_or_else(|| "missing ']' in host".to_owned())?;
        let after = &v6[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => p,
            None if after.is_empty() => "",
            None => return Err(format!("invalid port {after:?} after host")),
        };
        (&v6[..close], port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, p),
            None => (hostport, ""),
        }
    };
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid port \":{port}\" after host"));
    }
    Ok((host, port))
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// `%XX` decoding (`+` is a space in queries); `None` for a bad escape.
fn percent_decode(text: &str, plus_is_space: bool) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = hex(*bytes.get(i + 1)?)?;
                let lo = hex(*bytes.get(i + 2)?)?;
                out.push(hi * 16 + lo);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Go's `url.ParseQuery`: `&`-separated pairs, values kept in order per key. With
/// `strict`, the first bad pair (a `;`, a bad escape) is the error.
fn parse_query(text: &str, strict: bool) -> Result<Vec<(String, Vec<String>)>, String> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut first_error = None;
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        if pair.contains(';') {
            first_error.get_or_insert_with(|| "invalid semicolon separator in query".to_owned());
            continue;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (Some(k), Some(v)) = (percent_decode(k, true), percent_decode(v, true)) else {
            first_error.get_or_insert_with(|| format!("invalid URL escape in {pair:?}"));
            continue;
        };
        match out.iter_mut().find(|(key, _)| *key == k) {
            Some((_, values)) => values.push(v),
            None => out.push((k, vec![v])),
        }
    }
    match first_error {
        Some(e) if strict => Err(e),
        _ => Ok(out),
    }
}

fn query_value(q: Vec<(String, Vec<String>)>) -> AnyValue {
    value::map(
        q.into_iter()
            .map(|(k, values)| KeyValue {
                key_strindex: 0,
                key: k,
                value: Some(AnyValue {
                    value: Some(any_value::Value::ArrayValue(ArrayValue {
                        values: values.into_iter().map(value::string).collect(),
                    })),
                }),
            })
            .collect(),
    )
}
