//! Entity endpoints: list, read, create, update, upsert and delete, top-level and nested.
//! Writes are kept in memory and take effect at once (the running configuration is
//! rebuilt and swapped).

use http::StatusCode;
use serde_json::{json, Map, Value};

use crate::declarative::{self, ids, Config, Entity, FieldError, Kind};
use crate::state::Shared;

/// An Admin API answer: status and JSON body (`None` = empty body).
pub(super) type Reply = (StatusCode, Option<Value>);

fn not_found() -> Reply {
    (StatusCode::NOT_FOUND, Some(json!({"message": "Not found"})))
}

/// Kong's error body for validation problems.
pub(super) fn violation(errors: &[FieldError]) -> Reply {
    if let Some(e) = errors
        .iter()
        .find(|e| e.message.starts_with("uniqueness violation"))
    {
        if e.field == "@entity" {
            let tuple = e
                .message
                .split_once(" with ")
                .and_then(|(_, rest)| rest.strip_suffix(" already declared"))
                .unwrap_or_default();
            return (
                StatusCode::CONFLICT,
                Some(json!({
                    "code": 5,
                    "name": "unique constraint violation",
                    "message": format!("UNIQUE violation detected on '{tuple}'"),
                    "fields": {},
                })),
            );
        }
        let value = e.message.split('\'').nth(3).unwrap_or_default();
        return (
            StatusCode::CONFLICT,
            Some(json!({
                "code": 5,
                "name": "unique constraint violation",
                "message": format!("UNIQUE violation detected on '{{{}=\"{value}\"}}'", e.field),
                "fields": {e.field.clone(): value},
            })),
        );
    }
    if let Some(e) = errors
        .iter()
        .find(|e| e.message.starts_with("invalid reference"))
    {
        return (
            StatusCode::BAD_REQUEST,
            Some(json!({
                "code": 3,
                "name": "foreign key violation",
                "message": format!("the foreign key in '{}' does not reference an existing entity ({})", e.field, e.message),
                "fields": {e.field.clone(): e.message.clone()},
            })),
        );
    }
    let mut fields = Map::new();
    let mut parts = Vec::new();
    for e in errors {
        parts.push(format!("{}: {}", e.field, e.message));
        insert_field(&mut fields, &e.field, &e.message);
    }
    let message = if parts.len() == 1 {
        format!("schema violation ({})", parts[0])
    } else {
        format!("{} schema violations ({})", parts.len(), parts.join("; "))
    };
    (
        StatusCode::BAD_REQUEST,
        Some(json!({"code": 2, "name": "schema violation", "message": message, "fields": fields})),
    )
}

fn insert_field(fields: &mut Map<String, Value>, path: &str, message: &str) {
    if path == "@entity" {
        let list = fields
            .entry("@entity")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(items) = list {
            items.push(Value::from(message));
        }
        return;
    }
    match path.split_once('.') {
        Some((head, tail)) => {
            let slot = fields
                .entry(head.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(inner) = slot {
                insert_field(inner, tail, message);
            }
        }
        None => {
            fields.insert(path.to_owned(), Value::from(message));
        }
    }
}

/// The parent scope of a nested endpoint: the foreign-key field and the parent's id.
pub(super) type Parent = Option<(&'static str, String)>;

fn in_scope(entity: &Entity, parent: &Parent) -> bool {
    match parent {
        Some((field, id)) => {
            entity
                .get(*field)
                .and_then(|v| v.get("id"))
                .and_then(Value::as_str)
                == Some(id)
        }
        None => true,
    }
}

fn has_tags(entity: &Entity, filter: &str) -> bool {
    let tags: Vec<&str> = entity
        .get("tags")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if filter.contains('/') {
        filter.split('/').any(|t| tags.contains(&t))
    } else {
        filter.split(',').all(|t| tags.contains(&t))
    }
}

/// `GET /{kind}`: a page of entities.
pub(super) fn list(shared: &Shared, kind: Kind, parent: &Parent, query: &str, base: &str) -> Reply {
    let mut size = 100usize;
    let mut offset = 0usize;
    let mut tags = None;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "size" => match v.parse::<usize>() {
                Ok(n) if (1..=1000).contains(&n) => size = n,
                _ => {
                    return (
                        StatusCode::BAD_REQUEST,
                        Some(
                            json!({"code": 9, "name": "invalid size", "message": "size must be an integer between 1 and 1000"}),
                        ),
                    )
                }
            },
            "offset" => offset = v.parse().unwrap_or(0),
            "tags" => tags = Some(v.into_owned()),
            _ => {}
        }
    }
    let runtime = shared.runtime.load();
    let items: Vec<&Entity> = runtime
        .config
        .get(kind)
        .iter()
        .filter(|e| in_scope(e, parent))
        .filter(|e| tags.as_deref().is_none_or(|t| has_tags(e, t)))
        .collect();
    let page: Vec<Value> = items
        .iter()
        .skip(offset)
        .take(size)
        .map(|e| Value::Object((*e).clone()))
        .collect();
    let next = (offset + size < items.len())
        .then(|| format!("{base}?offset={}&size={size}", offset + size));
    (StatusCode::OK, Some(json!({"data": page, "next": next})))
}

fn find_index(config: &Config, kind: Kind, key: &str, parent: &Parent) -> Option<usize> {
    let items = config.get(kind);
    let by = |field: &str| {
        items
            .iter()
            .position(|e| e.get(field).and_then(Value::as_str) == Some(key) && in_scope(e, parent))
    };
    by("id").or_else(|| {
        kind.endpoint_key().and_then(by).or_else(|| match kind {
            Kind::Targets => by("target"),
            _ => None,
        })
    })
}

/// The id of entity `key` (id or endpoint key) of `kind`.
pub(super) fn resolve_id(shared: &Shared, kind: Kind, key: &str) -> Option<String> {
    let runtime = shared.runtime.load();
    let config = &runtime.config;
    find_index(config, kind, key, &None)
        .and_then(|i| config.get(kind)[i].get("id")?.as_str().map(str::to_owned))
}

/// `GET /{kind}/{key}`.
pub(super) fn read(shared: &Shared, kind: Kind, key: &str, parent: &Parent) -> Reply {
    let runtime = shared.runtime.load();
    match find_index(&runtime.config, kind, key, parent) {
        Some(i) => (
            StatusCode::OK,
            Some(Value::Object(runtime.config.get(kind)[i].clone())),
        ),
        None => not_found(),
    }
}

/// `POST /{kind}`.
pub(super) async fn create(
    shared: &Shared,
    kind: Kind,
    body: Map<String, Value>,
    parent: Parent,
) -> Reply {
    let _guard = shared.write_lock.lock().await;
    let mut config = shared.runtime.load().config.clone();
    match declarative::insert_entity(&mut config, kind, body, parent) {
        Ok(stored) => {
            shared.apply(config);
            (StatusCode::CREATED, Some(Value::Object(stored)))
        }
        Err(errors) => violation(&errors),
    }
}

/// `PATCH /{kind}/{key}` (`replace = false`) and `PUT /{kind}/{key}` (`replace = true`).
pub(super) async fn update(
    shared: &Shared,
    kind: Kind,
    key: &str,
    body: Map<String, Value>,
    parent: Parent,
    replace: bool,
) -> Reply {
    let _guard = shared.write_lock.lock().await;
    let mut config = shared.runtime.load().config.clone();
    let index = find_index(&config, kind, key, &parent);
    if index.is_none() && !replace {
        return not_found();
    }
    let existing = index.map(|i| config.get_mut(kind).remove(i));
    let mut raw = if replace {
        let mut raw = body;
        if ids::is_uuid(key) {
            raw.insert("id".into(), Value::from(key));
        } else if let Some(field) = kind.endpoint_key() {
            raw.entry(field.to_owned())
                .or_insert_with(|| Value::from(key));
        }
        if let Some(old) = &existing {
            raw.insert("id".into(), old["id"].clone());
            raw.insert("created_at".into(), old["created_at"].clone());
        }
        raw
    } else {
        let mut merged = existing.unwrap_or_default();
        for (k, v) in body {
            match (merged.get_mut(&k), &v) {
                (Some(Value::Object(old)), Value::Object(new)) if k == "config" => {
                    for (ck, cv) in new {
                        old.insert(ck.clone(), cv.clone());
                    }
                }
                _ => {
                    merged.insert(k, v);
                }
            }
        }
        merged
    };
    raw.insert("updated_at".into(), Value::from(declarative::now_seconds()));
    match declarative::insert_entity(&mut config, kind, raw, parent) {
        Ok(stored) => {
            shared.apply(config);
            (StatusCode::OK, Some(Value::Object(stored)))
        }
        Err(errors) => violation(&errors),
    }
}

/// Kinds whose entities are removed with their parent, and the foreign-key field.
fn cascades(kind: Kind) -> &'static [(Kind, &'static str)] {
    match kind {
        Kind::Services => &[(Kind::Plugins, "service")],
        Kind::Routes => &[(Kind::Plugins, "route")],
        Kind::Consumers => &[(Kind::Plugins, "consumer")],
        Kind::Upstreams => &[(Kind::Targets, "upstream")],
        Kind::Certificates => &[(Kind::Snis, "certificate")],
        Kind::CaCertificates | Kind::Snis | Kind::Targets | Kind::Plugins => &[],
    }
}

/// `DELETE /{kind}/{key}`: 204 whether or not it existed, as Kong answers.
pub(super) async fn delete(shared: &Shared, kind: Kind, key: &str, parent: Parent) -> Reply {
    let _guard = shared.write_lock.lock().await;
    let mut config = shared.runtime.load().config.clone();
    let Some(index) = find_index(&config, kind, key, &parent) else {
        return (StatusCode::NO_CONTENT, None);
    };
    let id = config.get(kind)[index]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let refers = |e: &Entity, field: &str| {
        e.get(field)
            .and_then(|v| v.get("id"))
            .and_then(Value::as_str)
            == Some(id.as_str())
    };
    if kind == Kind::Services
        && config
            .get(Kind::Routes)
            .iter()
            .any(|r| refers(r, "service"))
    {
        return (
            StatusCode::BAD_REQUEST,
            Some(json!({
                "code": 3,
                "name": "foreign key violation",
                "message": "an existing 'routes' entity references this 'services' entity",
                "fields": {"@referenced_by": "routes"},
            })),
        );
    }
    config.get_mut(kind).remove(index);
    for (child, field) in cascades(kind) {
        config.get_mut(*child).retain(|e| !refers(e, field));
    }
    shared.apply(config);
    (StatusCode::NO_CONTENT, None)
}
