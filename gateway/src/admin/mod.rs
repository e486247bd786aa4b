//! The Admin API (`admin_listen`, 127.0.0.1:8001 by default), Kong's subset (spec §4):
//! entity endpoints for services, routes, plugins, consumers, upstreams, targets,
//! certificates and snis (top-level and nested), `GET /upstreams/{name}/health`,
//! `GET/POST /config`, `/status`, `/metrics`.
//!
//! The gateway runs DB-less, but entity writes are accepted and kept in memory (so the
//! documented `curl -X POST :8001/plugins` works); they take effect without a restart and
//! are replaced by the next `POST /config`.

mod crud;
pub mod form;
mod health;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{json, Map, Value};

use crate::declarative::{self, Kind, LoadError};
use crate::state::Shared;
use crate::status::{self, json_response};
use crud::Reply;

/// Largest Admin API request body.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Nested endpoints: parent kind, child kind, the child's foreign-key field.
const NESTED: &[(Kind, Kind, &str)] = &[
    (Kind::Services, Kind::Routes, "service"),
    (Kind::Services, Kind::Plugins, "service"),
    (Kind::Routes, Kind::Plugins, "route"),
    (Kind::Consumers, Kind::Plugins, "consumer"),
    (Kind::Upstreams, Kind::Targets, "upstream"),
    (Kind::Certificates, Kind::Snis, "certificate"),
];

fn reply((status, body): Reply) -> Response<Full<Bytes>> {
    match body {
        Some(body) => json_response(status, &body),
        None => Response::builder()
            .status(status)
            .body(Full::new(Bytes::new()))
            .unwrap_or_default(),
    }
}

fn method_not_allowed() -> Reply {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Some(json!({"message": "Method not allowed"})),
    )
}

/// Answers one Admin API request.
pub async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let started = std::time::Instant::now();
    let (parts, body) = req.into_parts();
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return reply((
                StatusCode::PAYLOAD_TOO_LARGE,
                Some(json!({"message": "Payload too large"})),
            ))
        }
    };
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut response = match segments.as_slice() {
        [] => reply((StatusCode::OK, Some(node_info(shared)))),
        ["status"] => status::handle(shared, &Request::new(())),
        ["metrics"] => status::metrics_response(shared),
        ["upstreams", key, "health"] if parts.method == Method::GET => {
            reply(health::upstream_health(shared, key))
        }
        ["upstreams", key, "targets", target, verdict @ ("healthy" | "unhealthy")]
            if parts.method == Method::POST =>
        {
            reply(health::set_target_health(
                shared,
                key,
                target,
                *verdict == "healthy",
            ))
        }
        ["config"] => reply(
            config(
                shared,
                &parts.method,
                content_type.as_deref(),
                &body,
                &query,
            )
            .await,
        ),
        _ => reply(
            entities(
                shared,
                &parts.method,
                &segments,
                content_type.as_deref(),
                &body,
                &query,
                &path,
            )
            .await,
        ),
    };
    if shared.conf.header_enabled("x-kong-admin-latency") {
        let ms = started.elapsed().as_millis() as u64;
        response
            .headers_mut()
            .insert("x-kong-admin-latency", http::HeaderValue::from(ms));
    }
    response
}

fn node_info(shared: &Shared) -> Value {
    let implemented: Map<String, Value> = crate::plugins::BUNDLED
        .iter()
        .map(|name| {
            (
                (*name).to_owned(),
                Value::Bool(crate::plugins::is_implemented(name)),
            )
        })
        .collect();
    json!({
        "version": shared.conf.server_version,
        "tagline": "Welcome to kong",
        "node_id": shared.conf.node_id,
        "configuration": {"database": "off", "router_flavor": "traditional_compatible"},
        "plugins": {"available_on_server": implemented, "enabled_in_cluster": []},
    })
}

async fn entities(
    shared: &Shared,
    method: &Method,
    segments: &[&str],
    content_type: Option<&str>,
    body: &Bytes,
    query: &str,
    path: &str,
) -> Reply {
    let Some(kind) = segments.first().and_then(|s| Kind::from_name(s)) else {
        return (StatusCode::NOT_FOUND, Some(json!({"message": "Not found"})));
    };
    let (kind, parent, key) = match segments {
        [_] => (kind, None, None),
        [_, key] => (kind, None, Some(*key)),
        [_, pkey, child, rest @ ..] if rest.len() <= 1 => {
            let Some((_, child_kind, field)) = NESTED
                .iter()
                .find(|(p, c, _)| *p == kind && c.name() == *child)
            else {
                return (StatusCode::NOT_FOUND, Some(json!({"message": "Not found"})));
            };
            let Some(parent_id) = crud::resolve_id(shared, kind, pkey) else {
                return (StatusCode::NOT_FOUND, Some(json!({"message": "Not found"})));
            };
            (
                *child_kind,
                Some((*field, parent_id)),
                rest.first().copied(),
            )
        }
        _ => return (StatusCode::NOT_FOUND, Some(json!({"message": "Not found"}))),
    };
    let parse = || form::parse_body(content_type, body, Some(kind));
    let bad_body = |e: form::FormError| {
        (
            StatusCode::BAD_REQUEST,
            Some(json!({"message": e.to_string()})),
        )
    };
    match (method, key) {
        (&Method::GET, None) => crud::list(shared, kind, &parent, query, path),
        (&Method::POST, None) => match parse() {
            Ok(raw) => crud::create(shared, kind, raw, parent).await,
            Err(e) => bad_body(e),
        },
        (&Method::GET, Some(key)) => crud::read(shared, kind, key, &parent),
        (&Method::PATCH, Some(key)) => match parse() {
            Ok(raw) => crud::update(shared, kind, key, raw, parent, false).await,
            Err(e) => bad_body(e),
        },
        (&Method::PUT, Some(key)) => match parse() {
            Ok(raw) => crud::update(shared, kind, key, raw, parent, true).await,
            Err(e) => bad_body(e),
        },
        (&Method::DELETE, Some(key)) => crud::delete(shared, kind, key, parent).await,
        _ => method_not_allowed(),
    }
}

fn invalid_config(errors: &[declarative::FieldError], flatten: bool) -> Reply {
    let mut fields = Map::new();
    let mut flat: Vec<Value> = Vec::new();
    let mut lines = Vec::new();
    for e in errors {
        lines.push(e.to_string());
        if e.entity.is_empty() {
            fields.insert(e.field.clone(), Value::from(e.message.clone()));
        } else {
            let kind = fields
                .entry(e.entity.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(kind) = kind {
                let entity = kind
                    .entry(e.label.trim_matches('\'').to_owned())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(entity) = entity {
                    entity.insert(e.field.clone(), Value::from(e.message.clone()));
                }
            }
        }
        flat.push(json!({
            "entity_type": e.entity.trim_end_matches('s'),
            "entity_name": e.label.trim_matches('\''),
            "errors": [{"field": e.field, "message": e.message, "type": "field"}],
        }));
    }
    let mut body = json!({
        "code": 14,
        "name": "invalid declarative configuration",
        "message": format!("declarative config is invalid: {}", lines.join("; ")),
        "fields": fields,
    });
    if flatten {
        body["flattened_errors"] = Value::Array(flat);
    }
    (StatusCode::BAD_REQUEST, Some(body))
}

/// `GET /config` and `POST /config`.
async fn config(
    shared: &Shared,
    method: &Method,
    content_type: Option<&str>,
    body: &Bytes,
    query: &str,
) -> Reply {
    let flag = |name: &str| {
        form_urlencoded::parse(query.as_bytes())
            .any(|(k, v)| k == name && matches!(v.as_ref(), "1" | "true"))
    };
    match *method {
        Method::GET => {
            let runtime = shared.runtime.load();
            let yaml = yaml_serde::to_string(&runtime.config.to_json()).unwrap_or_default();
            (StatusCode::OK, Some(json!({"config": yaml})))
        }
        Method::POST => {
            let text = match declarative_text(content_type, body) {
                Ok(text) => text,
                Err(message) => {
                    return (StatusCode::BAD_REQUEST, Some(json!({"message": message})))
                }
            };
            let config = match declarative::load_str("POST /config", &text) {
                Ok(config) => config,
                Err(LoadError::Invalid(errors)) => {
                    return invalid_config(&errors, flag("flatten_errors"))
                }
                Err(e) => {
                    return (
                        StatusCode::BAD_REQUEST,
                        Some(
                            json!({"code": 14, "name": "invalid declarative configuration", "message": e.to_string()}),
                        ),
                    )
                }
            };
            let _guard = shared.write_lock.lock().await;
            if flag("check_hash")
                && crate::state::config_hash(&config) == shared.runtime.load().hash
            {
                return (StatusCode::NOT_MODIFIED, None);
            }
            let mut out = Map::new();
            for kind in Kind::ALL {
                let mut by_id = Map::new();
                for e in config.get(kind) {
                    let id = e.get("id").and_then(Value::as_str).unwrap_or_default();
                    by_id.insert(id.to_owned(), Value::Object(e.clone()));
                }
                out.insert(kind.name().to_owned(), Value::Object(by_id));
            }
            shared.apply(config);
            (StatusCode::CREATED, Some(Value::Object(out)))
        }
        _ => method_not_allowed(),
    }
}

/// The declarative document of a `POST /config` body: the document itself (JSON or YAML),
/// `{"config": "<text>"}`, or a form field `config`.
fn declarative_text(content_type: Option<&str>, body: &Bytes) -> Result<String, String> {
    let ct = content_type.unwrap_or_default().to_ascii_lowercase();
    if ct.starts_with("application/x-www-form-urlencoded") || ct.starts_with("multipart/form-data")
    {
        let map = form::parse_body(content_type, body, None).map_err(|e| e.to_string())?;
        return match map.get("config") {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err("expected a declarative configuration in 'config'".into()),
        };
    }
    let text = String::from_utf8_lossy(body).into_owned();
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&text) {
        if !map.contains_key("_format_version") {
            if let Some(Value::String(inner)) = map.get("config") {
                return Ok(inner.clone());
            }
            if let Some(inner @ Value::Object(_)) = map.get("config") {
                return Ok(inner.to_string());
            }
        }
    }
    Ok(text)
}
