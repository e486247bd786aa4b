//! Field tables of Kong's entity schemas and the generic check that fills defaults.
//!
//! Each entity kind is a list of [`Field`]s (Kong/kong:kong/db/schema/entities/*.lua). The
//! check walks a raw entity object: unknown fields are rejected, present fields are type
//! checked with Kong's messages, absent fields get Kong's default (`null` when Kong has none),
//! so the stored form equals what Kong's Admin API returns.

use serde_json::{Map, Value};

/// The type of one entity field.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    /// Any string.
    Str,
    /// Integer between `min` and `max` inclusive.
    Int(i64, i64),
    /// Boolean.
    Bool,
    /// One of the listed strings.
    OneOf(&'static [&'static str]),
    /// Integer from the list.
    IntOneOf(&'static [i64]),
    /// Array of strings.
    StrArray,
    /// Set of strings drawn from the list.
    SetOf(&'static [&'static str]),
    /// Map of header name to array of strings.
    Headers,
    /// Free-form record (a JSON object).
    Record,
    /// Reference to another entity: `{"id": …}` in the stored form; a name or id string
    /// (or `{name: …}` / `{id: …}`) in a declarative file.
    Foreign,
    /// Field set by the loader (ids, timestamps); any value accepted.
    Auto,
}

/// One field of an entity schema.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Field name.
    pub name: &'static str,
    /// Field type.
    pub ty: Ty,
    /// Whether the field must be present.
    pub required: bool,
    /// Default as a JSON literal (`"null"` when Kong has none).
    pub default: &'static str,
}

const fn f(name: &'static str, ty: Ty, default: &'static str) -> Field {
    Field {
        name,
        ty,
        required: false,
        default,
    }
}

const fn req(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: true,
        default: "null",
    }
}

const TIMEOUT: Ty = Ty::Int(1, 2_147_483_646);

/// Every protocol a route or plugin may list.
pub const PROTOCOLS: &[&str] = &[
    "grpc",
    "grpcs",
    "http",
    "https",
    "tcp",
    "tls",
    "tls_passthrough",
    "udp",
    "ws",
    "wss",
];

const SERVICE_PROTOCOLS: &[&str] = &[
    "grpc",
    "grpcs",
    "http",
    "https",
    "tcp",
    "tls",
    "tls_passthrough",
    "udp",
    "ws",
    "wss",
];

/// Service fields (services.lua).
pub const SERVICE: &[Field] = &[
    f("id", Ty::Auto, "null"),
    f("created_at", Ty::Auto, "null"),
    f("updated_at", Ty::Auto, "null"),
    f("name", Ty::Str, "null"),
    f("retries", Ty::Int(0, 32767), "5"),
    f("protocol", Ty::OneOf(SERVICE_PROTOCOLS), "\"http\""),
    req("host", Ty::Str),
    f("port", Ty::Int(0, 65535), "80"),
    f("path", Ty::Str, "null"),
    f("connect_timeout", TIMEOUT, "60000"),
    f("write_timeout", TIMEOUT, "60000"),
    f("read_timeout", TIMEOUT, "60000"),
    f("tags", Ty::StrArray, "null"),
    f("client_certificate", Ty::Foreign, "null"),
    f("tls_verify", Ty::Bool, "null"),
    f("tls_verify_depth", Ty::Int(0, 64), "null"),
    f("ca_certificates", Ty::StrArray, "null"),
    f("enabled", Ty::Bool, "true"),
];

/// Route fields (routes.lua, traditional_compatible flavor).
pub const ROUTE: &[Field] = &[
    f("id", Ty::Auto, "null"),
    f("created_at", Ty::Auto, "null"),
    f("updated_at", Ty::Auto, "null"),
    f("name", Ty::Str, "null"),
    f("protocols", Ty::SetOf(PROTOCOLS), "[\"http\",\"https\"]"),
    f("methods", Ty::StrArray, "null"),
    f("hosts", Ty::StrArray, "null"),
    f("paths", Ty::StrArray, "null"),
    f("headers", Ty::Headers, "null"),
    f(
        "https_redirect_status_code",
        Ty::IntOneOf(&[426, 301, 302, 307, 308]),
        "426",
    ),
    f(
        "regex_priority",
        Ty::Int(i32::MIN as i64, i32::MAX as i64),
        "0",
    ),
    f("strip_path", Ty::Bool, "true"),
    f("path_handling", Ty::OneOf(&["v0", "v1"]), "\"v0\""),
    f("preserve_host", Ty::Bool, "false"),
    f("request_buffering", Ty::Bool, "true"),
    f("response_buffering", Ty::Bool, "true"),
    f("snis", Ty::StrArray, "null"),
    f("sources", Ty::Record, "null"),
    f("destinations", Ty::Record, "null"),
    f("tags", Ty::StrArray, "null"),
    f("service", Ty::Foreign, "null"),
];

/// Consumer fields (consumers.lua).
pub const CONSUMER: &[Field] = &[
    f("id", Ty::Auto, "null"),
    f("created_at", Ty::Auto, "null"),
    f("updated_at", Ty::Auto, "null"),
    f("username", Ty::Str, "null"),
    f("custom_id", Ty::Str, "null"),
    f("tags", Ty::StrArray, "null"),
];

/// Plugin entity fields (plugins.lua); `config` is checked by the plugin's own schema.
pub const PLUGIN: &[Field] = &[
    f("id", Ty::Auto, "null"),
    f("created_at", Ty::Auto, "null"),
    f("updated_at", Ty::Auto, "null"),
    req("name", Ty::Str),
    f("instance_name", Ty::Str, "null"),
    f("route", Ty::Foreign, "null"),
    f("service", Ty::Foreign, "null"),
    f("consumer", Ty::Foreign, "null"),
    f("config", Ty::Record, "{}"),
    f(
        "protocols",
        Ty::SetOf(PROTOCOLS),
        "[\"grpc\",\"grpcs\",\"http\",\"https\"]",
    ),
    f("enabled", Ty::Bool, "true"),
    f("tags", Ty::StrArray, "null"),
    f("ordering", Ty::Record, "null"),
];

/// Upstream fields (upstreams.lua).
pub const UPSTREAM: &[Field] = &[
    f("id", Ty::Auto, "null"),
    f("created_at", Ty::Auto, "null"),
    f("updated_at", Ty::Auto, "null"),
    req("name", Ty::Str),
    f(
        "algorithm",
        Ty::OneOf(&[
            "consistent-hashing",
            "least-connections",
            "round-robin",
            "latency",
        ]),
        "\"round-robin\"",
    ),
    f("hash_on", Ty::OneOf(HASH_ON), "\"none\""),
    f("hash_fallback", Ty::OneOf(HASH_ON), "\"none\""),
    f("hash_on_header", Ty::Str, "null"),
    f("hash_fallback_header", Ty::Str, "null"),
    f("hash_on_cookie", Ty::Str, "null"),
    f("hash_on_cookie_path", Ty::Str, "\"/\""),
    f("hash_on_query_arg", Ty::Str, "null"),
    f("hash_fallback_query_arg", Ty::Str, "null"),
    f("hash_on_uri_capture", Ty::Str, "null"),
    f("hash_fallback_uri_capture", Ty::Str, "null"),
    f("slots", Ty::Int(10, 65536), "10000"),
    f("healthchecks", Ty::Record, HEALTHCHECKS),
    f("tags", Ty::StrArray, "null"),
    f("host_header", Ty::Str, "null"),
    f("client_certificate", Ty::Foreign, "null"),
    f("use_srv_name", Ty::Bool, "false"),
];

const HASH_ON: &[&str] = &[
    "none",
    "consumer",
    "ip",
    "header",
    "cookie",
    "path",
    "query_arg",
    "uri_capture",
];

/// Kong's default `healthchecks` record of an upstream.
const HEALTHCHECKS: &str = r#"{"active":{"type":"http","timeout":1,"concurrency":10,"http_path":"/","https_verify_certificate":true,"https_sni":null,"headers":null,"healthy":{"interval":0,"http_statuses":[200,302],"successes":0},"unhealthy":{"interval":0,"http_statuses":[429,404,500,501,502,503,504,505],"tcp_failures":0,"timeouts":0,"http_failures":0}},"passive":{"type":"http","healthy":{"http_statuses":[200,201,202,203,204,205,206,207,208,226,300,301,302,303,304,305,306,307,308],"successes":0},"unhealthy":{"http_statuses":[429,500,503],"tcp_failures":0,"timeouts":0,"http_failures":0}},"threshold":0}"#;

/// An upstream's `healthchecks` with Kong's defaults filled at every level (a partial
/// record such as `active: {healthy: {interval: 5}}` keeps the default statuses).
pub(crate) fn healthchecks_with_defaults(given: &Value) -> Value {
    let mut out: Value = serde_json::from_str(HEALTHCHECKS).unwrap_or(Value::Null);
    merge(&mut out, given);
    out
}

/// Overlays `given` on `base`: objects merge key by key, anything else replaces.
fn merge(base: &mut Value, given: &Value) {
    match (base, given) {
        (Value::Object(b), Value::Object(g)) => {
            for (k, v) in g {
                match b.get_mut(k) {
                    Some(slot) if slot.is_object() && v.is_object() => merge(slot, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (slot, g) => *slot = g.clone(),
    }
}

/// Target fields (targets.lua).
pub const TARGET: &[Field] = &[
    f("id", Ty::Auto, "null"),
    f("created_at", Ty::Auto, "null"),
    f("updated_at", Ty::Auto, "null"),
    f("upstream", Ty::Foreign, "null"),
    req("target", Ty::Str),
    f("weight", Ty::Int(0, 65535), "100"),
    f("tags", Ty::StrArray, "null"),
];

/// Certificate fields (certificates.lua).
pub const CERTIFICATE: &[Field] = &[
    f("id", Ty::Auto, "null"),
    f("created_at", Ty::Auto, "null"),
    f("updated_at", Ty::Auto, "null"),
    req("cert", Ty::Str),
    req("key", Ty::Str),
    f("cert_alt", Ty::Str, "null"),
    f("key_alt", Ty::Str, "null"),
    f("tags", Ty::StrArray, "null"),
];

/// CA certificate fields (ca_certificates.lua): trust anchors services name in
/// `ca_certificates`.
pub const CA_CERTIFICATE: &[Field] = &[
    f("id", Ty::Auto, "null"),
    f("created_at", Ty::Auto, "null"),
    f("updated_at", Ty::Auto, "null"),
    req("cert", Ty::Str),
    f("cert_digest", Ty::Str, "null"),
    f("tags", Ty::StrArray, "null"),
];

/// SNI fields (snis.lua).
pub const SNI: &[Field] = &[
    f("id", Ty::Auto, "null"),
    f("created_at", Ty::Auto, "null"),
    f("updated_at", Ty::Auto, "null"),
    req("name", Ty::Str),
    f("certificate", Ty::Foreign, "null"),
    f("tags", Ty::StrArray, "null"),
];

/// Checks `raw` against `fields`, fills defaults and returns the stored object, or the list of
/// `(field, message)` problems.
pub fn check(
    fields: &[Field],
    raw: &Map<String, Value>,
) -> Result<Map<String, Value>, Vec<(String, String)>> {
    let mut errors = Vec::new();
    for key in raw.keys() {
        if !fields.iter().any(|f| f.name == key) {
            errors.push((key.clone(), "unknown field".to_owned()));
        }
    }
    let mut out = Map::new();
    for field in fields {
        match raw.get(field.name) {
            None | Some(Value::Null) => {
                if field.required {
                    errors.push((field.name.to_owned(), "required field missing".to_owned()));
                }
                let default = serde_json::from_str(field.default).unwrap_or(Value::Null);
                out.insert(field.name.to_owned(), default);
            }
            Some(value) => match check_value(field.ty, value) {
                Ok(v) => {
                    out.insert(field.name.to_owned(), v);
                }
                Err(message) => errors.push((field.name.to_owned(), message)),
            },
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn check_value(ty: Ty, value: &Value) -> Result<Value, String> {
    match ty {
        Ty::Auto | Ty::Foreign => Ok(value.clone()),
        Ty::Str => match value {
            Value::String(s) if s.is_empty() => Err("length must be at least 1".to_owned()),
            Value::String(_) => Ok(value.clone()),
            _ => Err("expected a string".to_owned()),
        },
        Ty::Bool => match value {
            Value::Bool(_) => Ok(value.clone()),
            _ => Err("expected a boolean".to_owned()),
        },
        Ty::Int(min, max) => {
            let Some(n) = integer(value) else {
                return Err("expected an integer".to_owned());
            };
            if n < min || n > max {
                return Err(format!("value should be between {min} and {max}"));
            }
            Ok(Value::from(n))
        }
        Ty::IntOneOf(list) => {
            let Some(n) = integer(value) else {
                return Err("expected an integer".to_owned());
            };
            if !list.contains(&n) {
                let names: Vec<String> = list.iter().map(i64::to_string).collect();
                return Err(format!("expected one of: {}", names.join(", ")));
            }
            Ok(Value::from(n))
        }
        Ty::OneOf(list) => match value.as_str() {
            Some(s) if list.contains(&s) => Ok(value.clone()),
            Some(_) => Err(format!("expected one of: {}", list.join(", "))),
            None => Err("expected a string".to_owned()),
        },
        Ty::StrArray => {
            let Some(items) = value.as_array() else {
                return Err("expected an array".to_owned());
            };
            if items.iter().any(|v| !v.is_string()) {
                return Err("expected a string".to_owned());
            }
            Ok(value.clone())
        }
        Ty::SetOf(list) => {
            let Some(items) = value.as_array() else {
                return Err("expected a set".to_owned());
            };
            let mut out: Vec<Value> = Vec::new();
            for item in items {
                match item.as_str() {
                    Some(s) if list.contains(&s) => {
                        if !out.contains(item) {
                            out.push(item.clone());
                        }
                    }
                    _ => return Err(format!("expected one of: {}", list.join(", "))),
                }
            }
            Ok(Value::Array(out))
        }
        Ty::Headers => {
            let Some(map) = value.as_object() else {
                return Err("expected a map".to_owned());
            };
            let mut out = Map::new();
            for (name, values) in map {
                let values = match values {
                    Value::String(_) => vec![values.clone()],
                    Value::Array(items) if items.iter().all(Value::is_string) => items.clone(),
                    _ => return Err("expected an array".to_owned()),
                };
                out.insert(name.clone(), Value::Array(values));
            }
            Ok(Value::Object(out))
        }
        Ty::Record => match value {
            Value::Object(_) => Ok(value.clone()),
            _ => Err("expected a record".to_owned()),
        },
    }
}

fn integer(value: &Value) -> Option<i64> {
    if let Some(n) = value.as_i64() {
        return Some(n);
    }
    value
        .as_f64()
        .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
        .map(|f| f as i64)
}

/// Merges `defaults` under `value` recursively: object keys missing from `value` are taken
/// from `defaults`.
pub fn merge_defaults(value: &mut Value, defaults: &Value) {
    if let (Value::Object(target), Value::Object(source)) = (value, defaults) {
        for (key, default) in source {
            match target.get_mut(key) {
                Some(existing) if !existing.is_null() => merge_defaults(existing, default),
                _ => {
                    target.insert(key.clone(), default.clone());
                }
            }
        }
    }
}
