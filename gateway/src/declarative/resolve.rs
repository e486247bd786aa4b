//! References between entities (by id or endpoint key), uniqueness and plugin ids.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::{ids, Config, FieldError, Kind};

/// The foreign-key fields of each kind and the kind they point to.
fn foreign_keys(kind: Kind) -> &'static [(&'static str, Kind)] {
    match kind {
        Kind::Routes => &[("service", Kind::Services)],
        Kind::Plugins => &[
            ("service", Kind::Services),
            ("route", Kind::Routes),
            ("consumer", Kind::Consumers),
        ],
        Kind::Targets => &[("upstream", Kind::Upstreams)],
        Kind::Snis => &[("certificate", Kind::Certificates)],
        Kind::Services | Kind::Upstreams => &[("client_certificate", Kind::Certificates)],
        Kind::Consumers | Kind::CaCertificates | Kind::Certificates => &[],
    }
}

fn error(kind: Kind, entity: &Map<String, Value>, field: &str, message: String) -> FieldError {
    let label = kind
        .endpoint_key()
        .and_then(|k| entity.get(k))
        .and_then(Value::as_str)
        .or_else(|| entity.get("id").and_then(Value::as_str))
        .map(|s| format!("'{s}'"))
        .unwrap_or_default();
    FieldError {
        file: String::new(),
        entity: kind.name().to_owned(),
        label,
        field: field.to_owned(),
        message,
    }
}

/// Resolves every reference to `{"id": …}`, gives plugins their ids and checks uniqueness.
/// Idempotent: running it on an already resolved configuration changes nothing.
pub(crate) fn resolve(config: &mut Config, errors: &mut Vec<FieldError>) {
    let mut index: HashMap<Kind, (HashSet<String>, HashMap<String, String>)> = HashMap::new();
    for kind in Kind::ALL {
        let mut id_set = HashSet::new();
        let mut names = HashMap::new();
        for e in config.get(kind) {
            if let Some(id) = e.get("id").and_then(Value::as_str) {
                id_set.insert(id.to_owned());
                if let Some(name) = kind.endpoint_key().and_then(|k| e.get(k)?.as_str()) {
                    names.insert(name.to_owned(), id.to_owned());
                }
            }
        }
        index.insert(kind, (id_set, names));
    }
    for kind in Kind::ALL {
        for entity in config.get_mut(kind).iter_mut() {
            for (field, target) in foreign_keys(kind) {
                let Some(value) = entity.get(*field).cloned() else {
                    continue;
                };
                if value.is_null() {
                    continue;
                }
                let (id_set, names) = &index[target];
                let wanted = match &value {
                    Value::String(s) => Some(s.clone()),
                    Value::Object(o) => o
                        .get("id")
                        .or_else(|| o.get("name"))
                        .or_else(|| o.get("username"))
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    _ => None,
                };
                let Some(wanted) = wanted else {
                    errors.push(error(kind, entity, field, "expected a record".into()));
                    continue;
                };
                let id = if id_set.contains(&wanted) {
                    Some(wanted.clone())
                } else {
                    names.get(&wanted).cloned()
                };
                match id {
                    Some(id) => {
                        let mut fk = Map::new();
                        fk.insert("id".into(), Value::from(id));
                        entity.insert((*field).to_owned(), Value::Object(fk));
                    }
                    None => errors.push(error(
                        kind,
                        entity,
                        field,
                        format!(
                            "invalid reference '{field}: {wanted}' (no such entry in '{}')",
                            target.name()
                        ),
                    )),
                }
            }
        }
    }
    for plugin in config.get_mut(Kind::Plugins).iter_mut() {
        if plugin.get("id").is_none_or(Value::is_null) {
            let fk = |f: &str| {
                plugin
                    .get(f)
                    .and_then(|v| v.get("id"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let name = plugin
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let key = format!(
                "plugins:*:{name}:{}:{}:{}",
                fk("route"),
                fk("service"),
                fk("consumer")
            );
            plugin.insert("id".into(), Value::from(ids::entity_id("plugins", &key)));
        }
    }
    check_unique(config, errors);
}

fn check_unique(config: &Config, errors: &mut Vec<FieldError>) {
    for kind in Kind::ALL {
        let mut seen: HashMap<(String, String), ()> = HashMap::new();
        let mut keys: Vec<&str> = vec!["id"];
        keys.extend(kind.endpoint_key());
        if kind == Kind::Consumers {
            keys.push("custom_id");
        }
        for entity in config.get(kind) {
            for key in &keys {
                let Some(value) = entity.get(*key).and_then(Value::as_str) else {
                    continue;
                };
                if seen
                    .insert(((*key).to_owned(), value.to_owned()), ())
                    .is_some()
                {
                    errors.push(error(
                        kind,
                        entity,
                        key,
                        format!(
                            "uniqueness violation: '{}' entity with {key} set to '{value}' already declared",
                            kind.name()
                        ),
                    ));
                }
            }
            let combo = match kind {
                Kind::Plugins => Some(format!(
                    "{}:{}:{}:{}",
                    entity
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                    fk_id(entity, "route"),
                    fk_id(entity, "service"),
                    fk_id(entity, "consumer")
                )),
                Kind::Targets => Some(format!(
                    "{}:{}",
                    fk_id(entity, "upstream"),
                    entity
                        .get("target")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                )),
                _ => None,
            };
            if let Some(combo) = combo {
                if seen.insert(("@combo".into(), combo), ()).is_some() {
                    errors.push(error(
                        kind,
                        entity,
                        "@entity",
                        format!(
                            "uniqueness violation: '{}' entity with {} already declared",
                            kind.name(),
                            scope_tuple(kind, entity)
                        ),
                    ));
                }
            }
        }
    }
}

/// Kong's rendering of a compound unique key: `{consumer=null,name="x",route=null,service=null}`.
fn scope_tuple(kind: Kind, entity: &Map<String, Value>) -> String {
    let fields: &[&str] = match kind {
        Kind::Plugins => &["consumer", "name", "route", "service"],
        _ => &["target", "upstream"],
    };
    let parts: Vec<String> = fields
        .iter()
        .map(|f| match entity.get(*f) {
            Some(Value::String(s)) => format!("{f}=\"{s}\""),
            Some(Value::Object(o)) => match o.get("id").and_then(Value::as_str) {
                Some(id) => format!("{f}={{id=\"{id}\"}}"),
                None => format!("{f}=null"),
            },
            _ => format!("{f}=null"),
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

fn fk_id<'a>(entity: &'a Map<String, Value>, field: &str) -> &'a str {
    entity
        .get(field)
        .and_then(|v| v.get("id"))
        .and_then(Value::as_str)
        .unwrap_or_default()
}
