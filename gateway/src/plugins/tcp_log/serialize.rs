//! `kong.log.serialize()` (spec §5) and Kong's JSON wire encoding (spec §6).

use serde_json::{json, Map, Value};

use crate::plugins::prometheus::{request_size, response_size};
use crate::proxy::context::RequestContext;

/// The id of Kong's `default` workspace as the serializer reports it.
pub const DEFAULT_WORKSPACE_ID: &str = "0dc6f45b-8f8d-40d2-a504-473544ee190b";

fn headers(map: &http::HeaderMap, redact: bool) -> Value {
    let mut out = Map::new();
    for name in map.keys() {
        let key = name.as_str();
        let values: Vec<Value> = map
            .get_all(name)
            .iter()
            .map(|v| {
                if redact && (key == "authorization" || key == "proxy-authorization") {
                    Value::from("REDACTED")
                } else {
                    Value::from(String::from_utf8_lossy(v.as_bytes()).into_owned())
                }
            })
            .collect();
        let value = if values.len() == 1 {
            values.into_iter().next().unwrap_or(Value::Null)
        } else {
            Value::Array(values)
        };
        out.insert(key.to_owned(), value);
    }
    Value::Object(out)
}

fn querystring(uri: &str) -> Value {
    let mut out = Map::new();
    let Some((_, query)) = uri.split_once('?') else {
        return Value::Object(out);
    };
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = match part.split_once('=') {
            Some((k, v)) => (k, Value::from(decode(v))),
            None => (part, Value::Bool(true)),
        };
        let key = decode(key);
        match out.get_mut(&key) {
            Some(Value::Array(list)) => list.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
            None => {
                out.insert(key, value);
            }
        }
    }
    Value::Object(out)
}

/// Form-decodes one query component.
pub(super) fn decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn insert_some<T: Into<Value>>(map: &mut Map<String, Value>, key: &str, value: Option<T>) {
    if let Some(v) = value {
        map.insert(key.to_owned(), v.into());
    }
}

fn route(ctx: &RequestContext) -> Option<Value> {
    let r = ctx.route.as_ref()?;
    let mut m = Map::new();
    m.insert("id".into(), r.id.clone().into());
    insert_some(&mut m, "name", r.name.clone());
    insert_some(&mut m, "methods", r.methods.clone());
    insert_some(&mut m, "hosts", r.hosts.clone());
    insert_some(&mut m, "paths", r.paths.clone());
    if let Some(h) = &r.headers {
        m.insert("headers".into(), json!(h));
    }
    insert_some(&mut m, "snis", r.snis.clone());
    m.insert("protocols".into(), json!(r.protocols));
    m.insert("strip_path".into(), r.strip_path.into());
    m.insert("preserve_host".into(), r.preserve_host.into());
    m.insert("regex_priority".into(), r.regex_priority.into());
    m.insert("path_handling".into(), r.path_handling.clone().into());
    m.insert(
        "https_redirect_status_code".into(),
        r.https_redirect_status_code.into(),
    );
    insert_some(&mut m, "request_buffering", r.request_buffering);
    insert_some(&mut m, "response_buffering", r.response_buffering);
    if let Some(s) = &r.service {
        m.insert("service".into(), json!({"id": s.id}));
    }
    insert_some(&mut m, "tags", r.tags.clone());
    m.insert("ws_id".into(), DEFAULT_WORKSPACE_ID.into());
    insert_some(&mut m, "created_at", r.created_at);
    insert_some(&mut m, "updated_at", r.updated_at);
    Some(Value::Object(m))
}

fn service(ctx: &RequestContext) -> Option<Value> {
    let s = ctx.service.as_ref()?;
    let mut m = Map::new();
    m.insert("id".into(), s.id.clone().into());
    insert_some(&mut m, "name", s.name.clone());
    m.insert("host".into(), s.host.clone().into());
    m.insert("port".into(), s.port.into());
    m.insert("protocol".into(), s.protocol.clone().into());
    insert_some(&mut m, "path", s.path.clone());
    m.insert("retries".into(), s.retries.into());
    m.insert("connect_timeout".into(), s.connect_timeout.into());
    m.insert("read_timeout".into(), s.read_timeout.into());
    m.insert("write_timeout".into(), s.write_timeout.into());
    m.insert("enabled".into(), s.enabled.into());
    insert_some(&mut m, "tags", s.tags.clone());
    m.insert("ws_id".into(), DEFAULT_WORKSPACE_ID.into());
    insert_some(&mut m, "created_at", s.created_at);
    insert_some(&mut m, "updated_at", s.updated_at);
    Some(Value::Object(m))
}

/// The serializer's output for one request.
pub fn serialize(ctx: &RequestContext) -> Value {
    let url = format!(
        "{}://{}:{}{}",
        ctx.scheme, ctx.host, ctx.listen_port, ctx.uri
    );
    let mut out = Map::new();
    out.insert(
        "request".into(),
        json!({
            "id": ctx.request_id,
            "uri": ctx.uri,
            "url": url,
            "querystring": querystring(&ctx.uri),
            "method": ctx.method,
            "headers": headers(&ctx.request_headers, true),
            "size": request_size(ctx),
        }),
    );
    out.insert("upstream_uri".into(), ctx.upstream_uri.clone().into());
    out.insert("upstream_status".into(), ctx.upstream_status.clone().into());
    out.insert(
        "response".into(),
        json!({
            "status": ctx.status,
            "size": response_size(ctx),
            "headers": headers(&ctx.response_headers, false),
        }),
    );
    out.insert(
        "latencies".into(),
        json!({
            "kong": ctx.latencies.kong,
            "proxy": ctx.latencies.proxy.map_or(-1, |p| p as i64),
            "request": ctx.latencies.request,
            "receive": ctx.latencies.receive,
        }),
    );
    if !ctx.tries.is_empty() {
        let tries: Vec<Value> = ctx
            .tries
            .iter()
            .map(|t| {
                let mut m = Map::new();
                m.insert("balancer_start".into(), t.balancer_start.into());
                m.insert(
                    "balancer_start_ns".into(),
                    ((t.balancer_start as f64) * 1e6).into(),
                );
                m.insert("ip".into(), t.ip.clone().into());
                m.insert("port".into(), t.port.into());
                m.insert("balancer_latency".into(), t.balancer_latency.into());
                m.insert(
                    "balancer_latency_ns".into(),
                    t.balancer_latency.saturating_mul(1_000_000).into(),
                );
                insert_some(&mut m, "state", t.state);
                insert_some(&mut m, "code", t.code);
                Value::Object(m)
            })
            .collect();
        out.insert("tries".into(), tries.into());
    }
    insert_some(&mut out, "route", route(ctx));
    insert_some(&mut out, "service", service(ctx));
    out.insert("client_ip".into(), ctx.client_ip.clone().into());
    out.insert("started_at".into(), ctx.started_at.into());
    out.insert("source".into(), ctx.source.into());
    out.insert("workspace".into(), DEFAULT_WORKSPACE_ID.into());
    out.insert("workspace_name".into(), "default".into());
    if !ctx.trace_ids.is_empty() {
        let ids: Map<String, Value> = ctx
            .trace_ids
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(v.clone())))
            .collect();
        out.insert("trace_id".into(), Value::Object(ids));
    }
    Value::Object(out)
}

/// `kong.log.set_serialize_value(key, value)` in `set` mode: dotted keys nest (`\.` is a
/// literal dot); `None` deletes.
pub fn set_value(root: &mut Value, key: &str, value: Option<Value>) {
    let mut parts: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut chars = key.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => {
                current.push('.');
                chars.next();
            }
            '.' => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    let Some((last, path)) = parts.split_last() else {
        return;
    };
    let mut node = root;
    for p in path {
        let Value::Object(map) = node else {
            return;
        };
        let entry = map.entry(p.clone()).or_insert_with(|| json!({}));
        if !entry.is_object() {
            *entry = json!({});
        }
        node = entry;
    }
    if let Value::Object(map) = node {
        match value {
            Some(v) => {
                map.insert(last.clone(), v);
            }
            None => {
                map.remove(last);
            }
        }
    }
}

/// One wire line: compact JSON with `/` escaped as `\/` (lua-cjson), then `\n`.
pub fn wire_line(value: &Value) -> String {
    super::wire::to_line(value, 2048)
}
