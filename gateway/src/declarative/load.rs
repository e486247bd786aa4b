//! Parsing of one declarative document, its envelope, and flattening of nested entities.

use serde_json::{Map, Value};

use super::{entities, ids, Config, FieldError, Kind, LoadError};

/// Top-level keys a declarative document may hold besides entity arrays.
const ENVELOPE: &[&str] = &[
    "_format_version",
    "_transform",
    "_comment",
    "_ignore",
    "_info",
    "_konnect",
    "_workspace",
];

/// One parsed declarative file.
#[derive(Debug, Clone)]
pub struct Document {
    /// Where it came from (file path, `POST /config`, …).
    pub origin: String,
    /// `_format_version`, when present.
    pub format_version: Option<String>,
    /// The document's top-level object.
    pub body: Map<String, Value>,
}

/// Deepest YAML flow nesting (`[`, `{`) read; the YAML reader refuses deeper documents
/// anyway, but only after scanning the whole text in time quadratic in the depth.
const MAX_FLOW_DEPTH: usize = 128;

/// Where a YAML text opens more than [`MAX_FLOW_DEPTH`] flow collections, as the YAML
/// reader's 1-based line and column. Quotes and comments are followed within a line only,
/// which can only under-count.
fn too_deep(text: &str) -> Option<(usize, usize)> {
    let mut depth = 0usize;
    for (index, line) in text.lines().enumerate() {
        let mut quote: Option<char> = None;
        let mut escaped = false;
        let mut previous = ' ';
        for (column, c) in line.chars().enumerate() {
            match quote {
                Some(_) if escaped => escaped = false,
                Some('"') if c == '\\' => escaped = true,
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None => match c {
                    '#' if previous.is_whitespace() => break,
                    '\'' | '"' => quote = Some(c),
                    '[' | '{' => {
                        depth += 1;
                        if depth > MAX_FLOW_DEPTH {
                            return Some((index + 1, column + 1));
                        }
                    }
                    ']' | '}' => depth = depth.saturating_sub(1),
                    _ => {}
                },
            }
            previous = c;
        }
    }
    None
}

/// Parses YAML or JSON text into a [`Document`], checking the envelope keys.
pub fn parse_document(origin: &str, text: &str) -> Result<Document, LoadError> {
    let syntax = |message: String| LoadError::Syntax {
        path: origin.to_owned(),
        message,
    };
    let value: Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| syntax(e.to_string()))?
    } else {
        if let Some((line, column)) = too_deep(text) {
            return Err(syntax(format!(
                "recursion limit exceeded at line {line} column {column}"
            )));
        }
        yaml_serde::from_str(text).map_err(|e| syntax(e.to_string()))?
    };
    let body = match value {
        Value::Object(map) => map,
        Value::Null => Map::new(),
        _ => return Err(syntax("expected an object at the top level".to_owned())),
    };
    let format_version = body
        .get("_format_version")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(Document {
        origin: origin.to_owned(),
        format_version,
        body,
    })
}

fn envelope_error(doc: &Document, field: &str, message: &str) -> FieldError {
    FieldError {
        file: doc.origin.clone(),
        entity: String::new(),
        label: String::new(),
        field: field.to_owned(),
        message: message.to_owned(),
    }
}

/// Checks the envelope of every document and the decK rules for merging them.
pub(crate) fn check_merge(docs: &[Document], errors: &mut Vec<FieldError>) {
    let any_version = docs.iter().any(|d| d.body.contains_key("_format_version"));
    for doc in docs {
        for key in doc.body.keys() {
            if !ENVELOPE.contains(&key.as_str()) && Kind::from_name(key).is_none() {
                errors.push(envelope_error(doc, key, "unknown field"));
            }
        }
        match doc.body.get("_format_version") {
            None if !any_version => {
                errors.push(envelope_error(
                    doc,
                    "_format_version",
                    "required field missing",
                ));
            }
            None => {}
            Some(Value::String(v)) if matches!(v.as_str(), "1.1" | "2.1" | "3.0") => {}
            Some(Value::String(_)) => {
                errors.push(envelope_error(
                    doc,
                    "_format_version",
                    "expected one of: 1.1, 2.1, 3.0",
                ));
            }
            Some(_) => errors.push(envelope_error(doc, "_format_version", "expected a string")),
        }
        if let Some(t) = doc.body.get("_transform") {
            if !t.is_boolean() {
                errors.push(envelope_error(doc, "_transform", "expected a boolean"));
            }
        }
        if let Some(info) = doc.body.get("_info") {
            check_info(doc, info, errors);
        }
    }
    for key in ["_workspace", "_konnect"] {
        let mut seen: Option<&Value> = None;
        for doc in docs {
            let value = match (key, doc.body.get(key)) {
                ("_konnect", Some(k)) => k
                    .get("runtime_group_name")
                    .or_else(|| k.get("control_plane_name")),
                (_, v) => v,
            };
            let Some(value) = value else { continue };
            match seen {
                Some(first) if first != value => errors.push(envelope_error(
                    doc,
                    key,
                    "files with different values cannot be merged",
                )),
                _ => seen = Some(value),
            }
        }
    }
}

fn check_info(doc: &Document, info: &Value, errors: &mut Vec<FieldError>) {
    let Some(info) = info.as_object() else {
        errors.push(envelope_error(doc, "_info", "expected a record"));
        return;
    };
    for (key, value) in info {
        let ok = match key.as_str() {
            "select_tags" | "default_lookup_tags" => {
                value.is_null()
                    || value
                        .as_array()
                        .is_some_and(|a| a.iter().all(Value::is_string))
                    || value.is_object()
            }
            "defaults" => value.is_null() || value.is_object(),
            _ => {
                errors.push(envelope_error(
                    doc,
                    &format!("_info.{key}"),
                    "unknown field",
                ));
                true
            }
        };
        if !ok {
            errors.push(envelope_error(
                doc,
                &format!("_info.{key}"),
                "invalid value",
            ));
        }
    }
}

/// What every entity of one document shares: select tags, decK defaults, format version.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    origin: String,
    select_tags: Vec<Value>,
    defaults: Map<String, Value>,
    legacy_paths: bool,
    /// Admin API writes get random ids, as Kong's Admin API gives them; declarative files
    /// get Kong DB-less's deterministic ones.
    random_ids: bool,
    pub(super) now: i64,
}

impl Context {
    /// Context of an Admin API write.
    pub(crate) fn admin(now: i64) -> Self {
        Self {
            origin: String::new(),
            select_tags: Vec::new(),
            defaults: Map::new(),
            legacy_paths: false,
            random_ids: true,
            now,
        }
    }

    fn of(doc: &Document, now: i64) -> Self {
        let info = doc.body.get("_info");
        let select_tags = info
            .and_then(|i| i.get("select_tags"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let defaults = info
            .and_then(|i| i.get("defaults"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        Self {
            origin: doc.origin.clone(),
            select_tags,
            defaults,
            legacy_paths: matches!(doc.format_version.as_deref(), Some("1.1" | "2.1")),
            random_ids: false,
            now,
        }
    }

    /// An error about `field` of the entity `label` of `kind`.
    pub(crate) fn error(&self, kind: Kind, label: &str, field: &str, message: &str) -> FieldError {
        FieldError {
            file: self.origin.clone(),
            entity: kind.name().to_owned(),
            label: label.to_owned(),
            field: field.to_owned(),
            message: message.to_owned(),
        }
    }
}

/// Adds the entities of `doc` to `config`.
pub(crate) fn flatten(doc: &Document, config: &mut Config, now: i64, errors: &mut Vec<FieldError>) {
    let ctx = Context::of(doc, now);
    for kind in Kind::ALL {
        let Some(items) = doc.body.get(kind.name()) else {
            continue;
        };
        let Some(items) = items.as_array() else {
            errors.push(envelope_error(doc, kind.name(), "expected an array"));
            continue;
        };
        for (index, item) in items.iter().enumerate() {
            normalize_tree(kind, item.clone(), None, &ctx, config, errors, index);
        }
    }
}

/// The nested arrays each kind may carry.
fn nested(kind: Kind) -> &'static [Kind] {
    match kind {
        Kind::Services => &[Kind::Routes, Kind::Plugins],
        Kind::Routes | Kind::Consumers => &[Kind::Plugins],
        Kind::Upstreams => &[Kind::Targets],
        Kind::Certificates => &[Kind::Snis],
        Kind::CaCertificates | Kind::Snis | Kind::Targets | Kind::Plugins => &[],
    }
}

/// decK's `_info.defaults` key for a kind.
fn defaults_key(kind: Kind) -> &'static str {
    kind.singular()
}

/// Normalizes one raw entity (and its nested children) into `config`.
pub(crate) fn normalize_tree(
    kind: Kind,
    raw: Value,
    parent: Option<(Kind, String)>,
    ctx: &Context,
    config: &mut Config,
    errors: &mut Vec<FieldError>,
    index: usize,
) {
    let Value::Object(mut obj) = raw else {
        errors.push(ctx.error(kind, &format!("#{index}"), "", "expected a record"));
        return;
    };
    obj.remove("_comment");
    obj.remove("_ignore");
    let label = kind
        .endpoint_key()
        .and_then(|k| obj.get(k))
        .or_else(|| obj.get("id"))
        .and_then(Value::as_str)
        .map(|s| format!("'{s}'"))
        .unwrap_or_else(|| format!("#{index}"));
    let mut children = Vec::new();
    for child in nested(kind) {
        if let Some(list) = obj.remove(child.name()) {
            match list {
                Value::Array(items) => children.push((*child, items)),
                _ => errors.push(ctx.error(kind, &label, child.name(), "expected an array")),
            }
        }
    }
    if let Some(Value::Object(defaults)) = ctx.defaults.get(defaults_key(kind)) {
        for (key, value) in defaults {
            obj.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    if !ctx.select_tags.is_empty() {
        let mut tags = obj
            .get("tags")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for tag in &ctx.select_tags {
            if !tags.contains(tag) {
                tags.push(tag.clone());
            }
        }
        obj.insert("tags".into(), Value::Array(tags));
    }
    if let Some((parent_kind, parent_id)) = parent {
        let mut fk = Map::new();
        fk.insert("id".into(), Value::from(parent_id));
        obj.insert(parent_kind.singular().into(), Value::Object(fk));
    }
    if ctx.legacy_paths && kind == Kind::Routes {
        entities::migrate_legacy_paths(&mut obj);
    }
    let mut stored = match entities::normalize(kind, obj) {
        Ok(stored) => stored,
        Err(problems) => {
            for (field, message) in problems {
                errors.push(ctx.error(kind, &label, &field, &message));
            }
            return;
        }
    };
    if stored.get("id").is_none_or(Value::is_null) {
        if ctx.random_ids {
            stored.insert("id".into(), Value::from(ids::random_id()));
        } else if let Some(id) = natural_id(kind, &stored) {
            stored.insert("id".into(), Value::from(id));
        } else if kind != Kind::Plugins {
            stored.insert("id".into(), Value::from(ids::random_id()));
        }
    }
    for key in ["created_at", "updated_at"] {
        if stored.get(key).is_none_or(Value::is_null) {
            stored.insert(key.into(), Value::from(ctx.now));
        }
    }
    let id = stored
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    config.get_mut(kind).push(stored);
    for (child_kind, items) in children {
        for (i, item) in items.into_iter().enumerate() {
            let parent = Some((kind, id.clone()));
            normalize_tree(child_kind, item, parent, ctx, config, errors, i);
        }
    }
}

/// The deterministic id Kong DB-less gives an entity without one, where its key is known
/// before references are resolved.
fn natural_id(kind: Kind, entity: &Map<String, Value>) -> Option<String> {
    let text = |k: &str| entity.get(k).and_then(Value::as_str);
    let key = match kind {
        Kind::Services | Kind::Routes | Kind::Upstreams | Kind::Snis => text("name")?.to_owned(),
        Kind::Consumers => text("username")?.to_owned(),
        Kind::Targets => {
            let upstream = entity.get("upstream")?.get("id")?.as_str()?;
            format!("{upstream}:{}", text("target")?)
        }
        Kind::CaCertificates | Kind::Certificates | Kind::Plugins => return None,
    };
    Some(ids::entity_id(kind.name(), &key))
}
