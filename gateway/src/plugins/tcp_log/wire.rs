//! The serializer's wire line written straight from the request context into one buffer: the
//! same bytes as [`super::serialize::wire_line`] over [`super::serialize::serialize`] (keys in
//! byte order at every level, as `serde_json::Map` keeps them; `/` escaped as lua-cjson does),
//! without building a `Value` tree per request.

use std::borrow::Cow;
use std::io;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::ser::Formatter;

use super::serialize::DEFAULT_WORKSPACE_ID;
use super::{fragments, json};
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

/// The wire line of `kong.log.serialize()` for `ctx` (no custom fields), written into one
/// buffer; `route` and `service` come from [`fragments`].
pub fn line(ctx: &RequestContext) -> String {
    let mut out = Vec::with_capacity(4096);
    payload(ctx, &mut out);
    out.push(b'\n');
    // Every piece written is UTF-8: escaped `&str`s, digits and ASCII punctuation.
    String::from_utf8(out).unwrap_or_default()
}

/// The whole serializer output, keys in byte order.
fn payload(ctx: &RequestContext, out: &mut Vec<u8>) {
    let mut m = json::Object::open(out);
    json::string(m.key("client_ip"), &ctx.client_ip);
    latencies(ctx, m.key("latencies"));
    request(ctx, m.key("request"));
    response(ctx, m.key("response"));
    if let Some(r) = &ctx.route {
        fragments::route(r, m.key("route"), |r, out| serde_into(&RouteOut(r), out));
    }
    if let Some(sv) = &ctx.service {
        fragments::service(sv, m.key("service"), |sv, out| {
            serde_into(&ServiceOut(sv), out);
        });
    }
    json::string(m.key("source"), ctx.source);
    json::unsigned(m.key("started_at"), ctx.started_at);
    if !ctx.trace_ids.is_empty() {
        trace_ids(&ctx.trace_ids, m.key("trace_id"));
    }
    if !ctx.tries.is_empty() {
        tries(&ctx.tries, m.key("tries"));
    }
    json::string(m.key("upstream_status"), &ctx.upstream_status);
    json::string(m.key("upstream_uri"), &ctx.upstream_uri);
    json::string(m.key("workspace"), DEFAULT_WORKSPACE_ID);
    json::string(m.key("workspace_name"), "default");
    m.close();
}

/// Appends `value` as cjson-style compact JSON (for the configuration's entities).
fn serde_into<T: Serialize>(value: &T, out: &mut Vec<u8>) {
    let start = out.len();
    let mut ser = serde_json::Serializer::with_formatter(&mut *out, CjsonFormatter);
    if value.serialize(&mut ser).is_err() {
        out.truncate(start);
        out.extend_from_slice(b"{}");
    }
}

fn latencies(ctx: &RequestContext, out: &mut Vec<u8>) {
    let l = &ctx.latencies;
    let mut m = json::Object::open(out);
    json::unsigned(m.key("kong"), l.kong);
    json::signed(m.key("proxy"), l.proxy.map_or(-1, |p| p as i64));
    json::unsigned(m.key("receive"), l.receive);
    json::unsigned(m.key("request"), l.request);
    m.close();
}

fn request(ctx: &RequestContext, out: &mut Vec<u8>) {
    let mut m = json::Object::open(out);
    headers(&ctx.request_headers, true, m.key("headers"));
    json::string(m.key("id"), &ctx.request_id);
    json::string(m.key("method"), &ctx.method);
    querystring(&ctx.uri, m.key("querystring"));
    json::unsigned(m.key("size"), request_size(ctx));
    json::string(m.key("uri"), &ctx.uri);
    // `scheme://host:port/uri`; `/` is written `\/`.
    let url = m.key("url");
    url.push(b'"');
    json::escaped(url, ctx.scheme.as_bytes());
    url.extend_from_slice(br":\/\/");
    json::escaped(url, ctx.host.as_bytes());
    url.push(b':');
    json::unsigned(url, u64::from(ctx.listen_port));
    json::escaped(url, ctx.uri.as_bytes());
    url.push(b'"');
    m.close();
}

fn response(ctx: &RequestContext, out: &mut Vec<u8>) {
    let mut m = json::Object::open(out);
    headers(&ctx.response_headers, false, m.key("headers"));
    json::unsigned(m.key("size"), response_size(ctx));
    json::unsigned(m.key("status"), u64::from(ctx.status));
    m.close();
}

fn header_text(out: &mut Vec<u8>, value: &http::HeaderValue, hidden: bool) {
    if hidden {
        json::string(out, "REDACTED");
    } else {
        match std::str::from_utf8(value.as_bytes()) {
            Ok(text) => json::string(out, text),
            Err(_) => json::string(out, &String::from_utf8_lossy(value.as_bytes())),
        }
    }
}

/// Header name → value, or list of values when repeated; `redact` hides credentials.
/// One pass over the map (it yields a name's values one after the other), sorted by name with
/// a stable sort so repeated values keep their order.
fn headers(map: &http::HeaderMap, redact: bool, out: &mut Vec<u8>) {
    let mut entries: Vec<(&str, &http::HeaderValue)> =
        map.iter().map(|(k, v)| (k.as_str(), v)).collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let mut m = json::Object::open(out);
    for group in entries.chunk_by(|a, b| a.0 == b.0) {
        let Some(&(key, _)) = group.first() else {
            continue;
        };
        let hidden = redact && (key == "authorization" || key == "proxy-authorization");
        let value = m.dynamic_key(key);
        match group {
            [(_, v)] => header_text(value, v, hidden),
            _ => {
                value.push(b'[');
                for (i, (_, v)) in group.iter().enumerate() {
                    if i > 0 {
                        value.push(b',');
                    }
                    header_text(value, v, hidden);
                }
                value.push(b']');
            }
        }
    }
    m.close();
}

/// One query argument value: decoded text, or `true` for a bare key.
enum QueryValue<'a> {
    Text(Cow<'a, str>),
    Flag,
}

impl QueryValue<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Self::Text(t) => json::string(out, t),
            Self::Flag => out.extend_from_slice(b"true"),
        }
    }
}

/// Query arguments sorted by key (a stable sort keeps repeated keys in request order);
/// repeated keys become arrays.
fn querystring(uri: &str, out: &mut Vec<u8>) {
    let Some((_, query)) = uri.split_once('?') else {
        out.extend_from_slice(b"{}");
        return;
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
    let mut m = json::Object::open(out);
    for group in args.chunk_by(|a, b| a.0 == b.0) {
        match group {
            [(key, value)] => value.write(m.dynamic_key(key)),
            [(key, _), ..] => {
                let out = m.dynamic_key(key);
                out.push(b'[');
                for (i, (_, v)) in group.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    v.write(out);
                }
                out.push(b']');
            }
            [] => {}
        }
    }
    m.close();
}

/// Form-decodes one query component (`+` is a space, `%XX` a byte); borrowed when there is
/// nothing to decode.
fn decode(s: &str) -> Cow<'_, str> {
    if !s.contains(['%', '+']) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(super::serialize::decode(s))
}

/// Format → id; a later id of the same format replaces an earlier one, as a map insert does.
fn trace_ids(ids: &[(&'static str, String)], out: &mut Vec<u8>) {
    let mut ids: Vec<&(&str, String)> = ids.iter().collect();
    ids.reverse();
    ids.sort_by_key(|(k, _)| *k);
    ids.dedup_by_key(|(k, _)| *k);
    let mut m = json::Object::open(out);
    for (k, v) in ids {
        json::string(m.dynamic_key(k), v);
    }
    m.close();
}

fn tries(tries: &[Try], out: &mut Vec<u8>) {
    out.push(b'[');
    for (i, t) in tries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let mut m = json::Object::open(out);
        json::unsigned(m.key("balancer_latency"), t.balancer_latency);
        json::unsigned(
            m.key("balancer_latency_ns"),
            t.balancer_latency.saturating_mul(1_000_000),
        );
        json::unsigned(m.key("balancer_start"), t.balancer_start);
        json::float(m.key("balancer_start_ns"), (t.balancer_start as f64) * 1e6);
        if let Some(code) = t.code {
            json::unsigned(m.key("code"), u64::from(code));
        }
        json::string(m.key("ip"), &t.ip);
        json::unsigned(m.key("port"), u64::from(t.port));
        if let Some(state) = t.state {
            json::string(m.key("state"), state);
        }
        m.close();
    }
    out.push(b']');
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
