//! The serializer's wire line written straight from the request context: the same bytes as
//! [`super::serialize::wire_line`] over [`super::serialize::serialize`] (keys in byte order
//! at every level, as `serde_json::Map` keeps them; `/` escaped as lua-cjson does), without
//! building a `Value` tree per request.

use std::borrow::Cow;
use std::io;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::ser::Formatter;

use super::serialize::DEFAULT_WORKSPACE_ID;
use crate::declarative::model::{Route, Service};
use crate::plugins::prometheus::{request_size, response_size};
use crate::proxy::context::{RequestContext, Try};

/// Compact JSON with `/` written as `\/` inside strings (lua-cjson's encoding).
#[derive(Debug, Default, Clone, Copy)]
pub struct CjsonFormatter;

impl Formatter for CjsonFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // A plain byte loop: fragments are short, where `memchr`'s setup costs more.
        let bytes = fragment.as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'/' {
                writer.write_all(&bytes[start..i])?;
                writer.write_all(b"\\/")?;
                start = i + 1;
            }
        }
        writer.write_all(&bytes[start..])
    }
}

/// `value` as one wire line: cjson-style compact JSON, then `\n`.
pub fn to_line<T: Serialize + ?Sized>(value: &T, capacity: usize) -> String {
    let mut out = Vec::with_capacity(capacity);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, CjsonFormatter);
    if value.serialize(&mut ser).is_err() {
        return String::from("{}\n");
    }
    out.push(b'\n');
    // The serializer writes UTF-8 only.
    String::from_utf8(out).unwrap_or_default()
}

/// The wire line of `kong.log.serialize()` for `ctx` (no custom fields).
pub fn line(ctx: &RequestContext) -> String {
    to_line(&Payload(ctx), 4096)
}

/// The whole serializer output, keys in byte order.
struct Payload<'a>(&'a RequestContext);

impl Serialize for Payload<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ctx = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("client_ip", &ctx.client_ip)?;
        m.serialize_entry("latencies", &LatenciesOut(ctx))?;
        m.serialize_entry("request", &RequestOut(ctx))?;
        m.serialize_entry("response", &ResponseOut(ctx))?;
        if let Some(r) = &ctx.route {
            m.serialize_entry("route", &RouteOut(r))?;
        }
        if let Some(sv) = &ctx.service {
            m.serialize_entry("service", &ServiceOut(sv))?;
        }
        m.serialize_entry("source", ctx.source)?;
        m.serialize_entry("started_at", &ctx.started_at)?;
        if !ctx.trace_ids.is_empty() {
            m.serialize_entry("trace_id", &TraceIds(&ctx.trace_ids))?;
        }
        if !ctx.tries.is_empty() {
            m.serialize_entry("tries", &Tries(&ctx.tries))?;
        }
        m.serialize_entry("upstream_status", &ctx.upstream_status)?;
        m.serialize_entry("upstream_uri", &ctx.upstream_uri)?;
        m.serialize_entry("workspace", DEFAULT_WORKSPACE_ID)?;
        m.serialize_entry("workspace_name", "default")?;
        m.end()
    }
}

struct LatenciesOut<'a>(&'a RequestContext);

impl Serialize for LatenciesOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let l = &self.0.latencies;
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("kong", &l.kong)?;
        m.serialize_entry("proxy", &l.proxy.map_or(-1, |p| p as i64))?;
        m.serialize_entry("receive", &l.receive)?;
        m.serialize_entry("request", &l.request)?;
        m.end()
    }
}

struct RequestOut<'a>(&'a RequestContext);

impl Serialize for RequestOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ctx = self.0;
        let mut m = s.serialize_map(Some(7))?;
        m.serialize_entry("headers", &Headers(&ctx.request_headers, true))?;
        m.serialize_entry("id", &ctx.request_id)?;
        m.serialize_entry("method", &ctx.method)?;
        m.serialize_entry("querystring", &Querystring::parse(&ctx.uri))?;
        m.serialize_entry("size", &request_size(ctx))?;
        m.serialize_entry("uri", &ctx.uri)?;
        m.serialize_entry("url", &Url(ctx))?;
        m.end()
    }
}

/// `scheme://host:port/uri`, written without an intermediate `String`.
struct Url<'a>(&'a RequestContext);

impl Serialize for Url<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ctx = self.0;
        s.collect_str(&format_args!(
            "{}://{}:{}{}",
            ctx.scheme, ctx.host, ctx.listen_port, ctx.uri
        ))
    }
}

struct ResponseOut<'a>(&'a RequestContext);

impl Serialize for ResponseOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ctx = self.0;
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("headers", &Headers(&ctx.response_headers, false))?;
        m.serialize_entry("size", &response_size(ctx))?;
        m.serialize_entry("status", &ctx.status)?;
        m.end()
    }
}

/// Header name → value, or list of values when repeated; `redact` hides credentials.
struct Headers<'a>(&'a http::HeaderMap, bool);

impl Serialize for Headers<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Self(map, redact) = *self;
        let mut names: Vec<&str> = map.keys().map(http::HeaderName::as_str).collect();
        names.sort_unstable();
        let mut m = s.serialize_map(Some(names.len()))?;
        for name in names {
            let hidden = redact && (name == "authorization" || name == "proxy-authorization");
            m.serialize_entry(name, &HeaderValues(map.get_all(name), hidden))?;
        }
        m.end()
    }
}

struct HeaderValues<'a>(http::header::GetAll<'a, http::HeaderValue>, bool);

fn header_text(value: &http::HeaderValue, hidden: bool) -> Cow<'_, str> {
    if hidden {
        Cow::Borrowed("REDACTED")
    } else {
        String::from_utf8_lossy(value.as_bytes())
    }
}

impl Serialize for HeaderValues<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Self(values, hidden) = self;
        let mut iter = values.iter();
        let first = iter.next();
        let second = iter.next();
        match (first, second) {
            (None, _) => s.serialize_unit(),
            (Some(v), None) => s.serialize_str(&header_text(v, *hidden)),
            (Some(_), Some(_)) => {
                let mut seq = s.serialize_seq(None)?;
                for v in values.iter() {
                    seq.serialize_element(&header_text(v, *hidden))?;
                }
                seq.end()
            }
        }
    }
}

/// One query argument value: decoded text, or `true` for a bare key.
enum QueryValue<'a> {
    Text(Cow<'a, str>),
    Flag,
}

impl Serialize for QueryValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Text(t) => s.serialize_str(t),
            Self::Flag => s.serialize_bool(true),
        }
    }
}

/// Query arguments sorted by key; a stable sort keeps repeated keys in request order.
struct Querystring<'a>(Vec<(Cow<'a, str>, QueryValue<'a>)>);

impl<'a> Querystring<'a> {
    fn parse(uri: &'a str) -> Self {
        let Some((_, query)) = uri.split_once('?') else {
            return Self(Vec::new());
        };
        let mut args: Vec<_> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|part| match part.split_once('=') {
                Some((k, v)) => (decode(k), QueryValue::Text(decode(v))),
                None => (decode(part), QueryValue::Flag),
            })
            .collect();
        args.sort_by(|a, b| a.0.cmp(&b.0));
        Self(args)
    }
}

impl Serialize for Querystring<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for group in self.0.chunk_by(|a, b| a.0 == b.0) {
            match group {
                [(key, value)] => m.serialize_entry(key, value)?,
                [(key, _), ..] => m.serialize_entry(key, &QueryGroup(group))?,
                [] => {}
            }
        }
        m.end()
    }
}

struct QueryGroup<'a, 'b>(&'b [(Cow<'a, str>, QueryValue<'a>)]);

impl Serialize for QueryGroup<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|(_, v)| v))
    }
}

/// Form-decodes one query component (`+` is a space, `%XX` a byte); borrowed when there is
/// nothing to decode.
fn decode(s: &str) -> Cow<'_, str> {
    if !s.contains(['%', '+']) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(super::serialize::decode(s))
}

struct TraceIds<'a>(&'a [(&'static str, String)]);

impl Serialize for TraceIds<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut ids: Vec<&(&str, String)> = self.0.iter().collect();
        // A later id of the same format replaces an earlier one, as a map insert does.
        ids.reverse();
        ids.sort_by_key(|(k, _)| *k);
        ids.dedup_by_key(|(k, _)| *k);
        s.collect_map(ids.into_iter().map(|(k, v)| (k, v)))
    }
}

struct Tries<'a>(&'a [Try]);

impl Serialize for Tries<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for t in self.0 {
            seq.serialize_element(&TryOut(t))?;
        }
        seq.end()
    }
}

struct TryOut<'a>(&'a Try);

impl Serialize for TryOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("balancer_latency", &t.balancer_latency)?;
        m.serialize_entry(
            "balancer_latency_ns",
            &t.balancer_latency.saturating_mul(1_000_000),
        )?;
        m.serialize_entry("balancer_start", &t.balancer_start)?;
        m.serialize_entry("balancer_start_ns", &((t.balancer_start as f64) * 1e6))?;
        if let Some(code) = t.code {
            m.serialize_entry("code", &code)?;
        }
        m.serialize_entry("ip", &t.ip)?;
        m.serialize_entry("port", &t.port)?;
        if let Some(state) = t.state {
            m.serialize_entry("state", state)?;
        }
        m.end()
    }
}

/// Writes `key: value` when `value` is set.
fn entry_some<M: SerializeMap, T: Serialize>(
    m: &mut M,
    key: &str,
    value: &Option<T>,
) -> Result<(), M::Error> {
    match value {
        Some(v) => m.serialize_entry(key, v),
        None => Ok(()),
    }
}

struct RouteOut<'a>(&'a Route);

/// `{"id": …}` of the route's service.
struct ServiceRef<'a>(&'a str);

impl Serialize for ServiceRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("id", self.0)?;
        m.end()
    }
}

impl Serialize for RouteOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut m = s.serialize_map(None)?;
        entry_some(&mut m, "created_at", &r.created_at)?;
        entry_some(&mut m, "headers", &r.headers)?;
        entry_some(&mut m, "hosts", &r.hosts)?;
        m.serialize_entry("https_redirect_status_code", &r.https_redirect_status_code)?;
        m.serialize_entry("id", &r.id)?;
        entry_some(&mut m, "methods", &r.methods)?;
        entry_some(&mut m, "name", &r.name)?;
        m.serialize_entry("path_handling", &r.path_handling)?;
        entry_some(&mut m, "paths", &r.paths)?;
        m.serialize_entry("preserve_host", &r.preserve_host)?;
        m.serialize_entry("protocols", &r.protocols)?;
        m.serialize_entry("regex_priority", &r.regex_priority)?;
        entry_some(&mut m, "request_buffering", &r.request_buffering)?;
        entry_some(&mut m, "response_buffering", &r.response_buffering)?;
        if let Some(sv) = &r.service {
            m.serialize_entry("service", &ServiceRef(&sv.id))?;
        }
        entry_some(&mut m, "snis", &r.snis)?;
        m.serialize_entry("strip_path", &r.strip_path)?;
        entry_some(&mut m, "tags", &r.tags)?;
        entry_some(&mut m, "updated_at", &r.updated_at)?;
        m.serialize_entry("ws_id", DEFAULT_WORKSPACE_ID)?;
        m.end()
    }
}

struct ServiceOut<'a>(&'a Service);

impl Serialize for ServiceOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let sv = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("connect_timeout", &sv.connect_timeout)?;
        entry_some(&mut m, "created_at", &sv.created_at)?;
        m.serialize_entry("enabled", &sv.enabled)?;
        m.serialize_entry("host", &sv.host)?;
        m.serialize_entry("id", &sv.id)?;
        entry_some(&mut m, "name", &sv.name)?;
        entry_some(&mut m, "path", &sv.path)?;
        m.serialize_entry("port", &sv.port)?;
        m.serialize_entry("protocol", &sv.protocol)?;
        m.serialize_entry("read_timeout", &sv.read_timeout)?;
        m.serialize_entry("retries", &sv.retries)?;
        entry_some(&mut m, "tags", &sv.tags)?;
        entry_some(&mut m, "updated_at", &sv.updated_at)?;
        m.serialize_entry("write_timeout", &sv.write_timeout)?;
        m.serialize_entry("ws_id", DEFAULT_WORKSPACE_ID)?;
        m.end()
    }
}
