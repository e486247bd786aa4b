//! Kong / decK declarative configuration: loading, merging, validation and defaults.
//!
//! A declarative file (YAML or JSON) holds entity arrays (`services`, `routes`, `consumers`,
//! `plugins`, `upstreams`, `targets`, `ca_certificates`, `certificates`, `snis`), nested or top-level, plus the
//! envelope keys `_format_version`, `_transform`, `_comment`, `_ignore` (Kong) and `_info`,
//! `_konnect`, `_workspace` (decK). Several files merge by appending their entity arrays, as
//! `deck gateway sync a.yaml b.yaml` does. The result, [`Config`], holds every entity in its
//! stored form: flat, references as `{"id": …}`, every Kong default filled.
//!
//! ```yaml
//! _format_version: "3.0"
//! _info:
//!   select_tags: [kong-services-routes]
//! services:
//! - name: ecommerce_coupon_service
//!   host: coupon.default
//!   port: 8080
//!   routes:
//!   - name: ecommerce_coupon_route
//!     paths: [/coupon]
//! ```

mod entities;
pub mod ids;
mod load;
pub mod model;
mod resolve;
pub mod schema;

use std::fmt;
use std::path::Path;

use serde_json::{Map, Value};

pub use load::{parse_document, Document};

/// The entity kinds a declarative file may hold, in the order Kong loads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `ca_certificates`
    CaCertificates,
    /// `certificates`
    Certificates,
    /// `snis`
    Snis,
    /// `services`
    Services,
    /// `routes`
    Routes,
    /// `consumers`
    Consumers,
    /// `upstreams`
    Upstreams,
    /// `targets`
    Targets,
    /// `plugins`
    Plugins,
}

impl Kind {
    /// Every kind, in load order.
    pub const ALL: [Self; 9] = [
        Self::CaCertificates,
        Self::Certificates,
        Self::Snis,
        Self::Services,
        Self::Routes,
        Self::Consumers,
        Self::Upstreams,
        Self::Targets,
        Self::Plugins,
    ];

    /// The schema name (`services`).
    pub fn name(self) -> &'static str {
        match self {
            Self::CaCertificates => "ca_certificates",
            Self::Certificates => "certificates",
            Self::Snis => "snis",
            Self::Services => "services",
            Self::Routes => "routes",
            Self::Consumers => "consumers",
            Self::Upstreams => "upstreams",
            Self::Targets => "targets",
            Self::Plugins => "plugins",
        }
    }

    /// The kind named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The foreign-key field name children use for this kind (`service`).
    pub fn singular(self) -> &'static str {
        match self {
            Self::CaCertificates => "ca_certificate",
            Self::Certificates => "certificate",
            Self::Snis => "sni",
            Self::Services => "service",
            Self::Routes => "route",
            Self::Consumers => "consumer",
            Self::Upstreams => "upstream",
            Self::Targets => "target",
            Self::Plugins => "plugin",
        }
    }

    /// The unique field other entities may use instead of the id (`name`, `username`).
    pub fn endpoint_key(self) -> Option<&'static str> {
        match self {
            Self::Services | Self::Routes | Self::Upstreams | Self::Snis => Some("name"),
            Self::Consumers => Some("username"),
            Self::Plugins => Some("instance_name"),
            Self::CaCertificates | Self::Certificates | Self::Targets => None,
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|k| *k == self).unwrap_or(0)
    }
}

/// One stored entity: a JSON object with every field present.
pub type Entity = Map<String, Value>;

/// Every loaded entity, by kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// `_format_version` of the input (files in 1.1/2.1 are migrated to 3.0 on load).
    pub format_version: String,
    entities: [Vec<Entity>; Kind::ALL.len()],
    /// Canonical text of the declarative input this was loaded from (what
    /// `configuration_hash` digests); `None` after entity-level edits.
    input: Option<String>,
}

impl Config {
    /// The entities of `kind`.
    pub fn get(&self, kind: Kind) -> &[Entity] {
        &self.entities[kind.index()]
    }

    /// The entities of `kind`, mutable. Editing entities detaches the configuration from
    /// the declarative input it was loaded from.
    pub fn get_mut(&mut self, kind: Kind) -> &mut Vec<Entity> {
        self.input = None;
        &mut self.entities[kind.index()]
    }

    /// What `configuration_hash` digests: the declarative input as loaded (so the same
    /// document always gives the same hash), else the entities without load timestamps.
    pub fn digest_input(&self) -> String {
        if let Some(input) = &self.input {
            return input.clone();
        }
        let mut doc = self.to_json();
        if let Value::Object(map) = &mut doc {
            for list in map.values_mut() {
                for entity in list.as_array_mut().into_iter().flatten() {
                    if let Value::Object(e) = entity {
                        e.remove("created_at");
                        e.remove("updated_at");
                    }
                }
            }
        }
        doc.to_string()
    }

    /// Whether no entity is loaded.
    pub fn is_empty(&self) -> bool {
        self.entities.iter().all(Vec::is_empty)
    }

    /// The entity of `kind` whose id or endpoint key is `key`.
    pub fn find(&self, kind: Kind, key: &str) -> Option<&Entity> {
        let by_id = |e: &&Entity| e.get("id").and_then(Value::as_str) == Some(key);
        let by_name = |e: &&Entity| {
            kind.endpoint_key()
                .is_some_and(|k| e.get(k).and_then(Value::as_str) == Some(key))
        };
        let items = self.get(kind);
        items
            .iter()
            .find(by_id)
            .or_else(|| items.iter().find(by_name))
    }

    /// The configuration as a declarative document in stored form (flat, `{"id": …}`
    /// references), which `config parse` prints and `GET /config` serves.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("_format_version".into(), Value::from("3.0"));
        for kind in Kind::ALL {
            let items = self.get(kind);
            if !items.is_empty() {
                let list = items.iter().cloned().map(Value::Object).collect();
                out.insert(kind.name().into(), Value::Array(list));
            }
        }
        Value::Object(out)
    }
}

/// One problem found while loading: where it is and what Kong expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Source file (empty for Admin API input).
    pub file: String,
    /// Entity kind (`services`), or `""` for the file envelope.
    pub entity: String,
    /// The entity's name, or `#<index>` when it has none.
    pub label: String,
    /// Field path within the entity (`host`, `config.port`).
    pub field: String,
    /// Kong's message (`required field missing`).
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.file.is_empty() {
            write!(f, "{}: ", self.file)?;
        }
        if !self.entity.is_empty() {
            write!(f, "in '{}' entry {}: ", self.entity, self.label)?;
        }
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Why a declarative configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not YAML or JSON.
    #[error("{path}: failed parsing declarative configuration: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// Entities break Kong's schema; one entry per problem.
    #[error("declarative config is invalid: {}", join(.0))]
    Invalid(Vec<FieldError>),
}

fn join(errors: &[FieldError]) -> String {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    lines.join("; ")
}

/// The files a path names: the file itself, or for a directory every `.yaml`, `.yml` and
/// `.json` file below it, sorted by path (as decK reads a directory).
fn expand(path: &Path) -> Result<Vec<std::path::PathBuf>, LoadError> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let read_error = |source| LoadError::Read {
        path: path.display().to_string(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(path).map_err(read_error)? {
        let entry = entry.map_err(read_error)?.path();
        if entry.is_dir() {
            out.extend(expand(&entry)?);
        } else if entry
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        {
            out.push(entry);
        }
    }
    out.sort();
    Ok(out)
}

/// Loads and merges declarative files (or directories of them), in order.
pub fn load_files<P: AsRef<Path>>(paths: &[P]) -> Result<Config, LoadError> {
    let mut files = Vec::new();
    for path in paths {
        files.extend(expand(path.as_ref())?);
    }
    let mut docs = Vec::new();
    for path in &files {
        let path = path.as_path();
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: name.clone(),
            source,
        })?;
        docs.push(parse_document(&name, &text)?);
    }
    build(docs)
}

/// Loads one declarative document given as text (YAML or JSON); `origin` names it in errors.
pub fn load_str(origin: &str, text: &str) -> Result<Config, LoadError> {
    build(vec![parse_document(origin, text)?])
}

/// Builds a configuration from parsed documents, merged as decK merges files.
pub fn build(docs: Vec<Document>) -> Result<Config, LoadError> {
    let mut errors = Vec::new();
    load::check_merge(&docs, &mut errors);
    let mut config = Config {
        format_version: docs
            .iter()
            .find_map(|d| d.format_version.clone())
            .unwrap_or_else(|| "3.0".to_owned()),
        ..Config::default()
    };
    let now = now_seconds();
    for doc in &docs {
        load::flatten(doc, &mut config, now, &mut errors);
    }
    if errors.is_empty() {
        resolve::resolve(&mut config, &mut errors);
    }
    if errors.is_empty() {
        let bodies: Vec<Value> = docs.into_iter().map(|d| Value::Object(d.body)).collect();
        config.input = Some(Value::Array(bodies).to_string());
        Ok(config)
    } else {
        Err(LoadError::Invalid(errors))
    }
}

/// Validates one entity given through the Admin API and adds it to `config` (references
/// resolved against `config`). `parent` is the foreign key of a nested endpoint
/// (`/services/{id}/routes` → `("service", id)`). Returns the stored entity.
pub fn insert_entity(
    config: &mut Config,
    kind: Kind,
    raw: Map<String, Value>,
    parent: Option<(&str, String)>,
) -> Result<Entity, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut raw = raw;
    if let Some((field, id)) = parent {
        let mut fk = Map::new();
        fk.insert("id".into(), Value::from(id));
        raw.insert(field.to_owned(), Value::Object(fk));
    }
    let ctx = load::Context::admin(now_seconds());
    let before = config.get(kind).len();
    load::normalize_tree(kind, Value::Object(raw), None, &ctx, config, &mut errors, 0);
    if errors.is_empty() {
        resolve::resolve(config, &mut errors);
    }
    if !errors.is_empty() {
        config.get_mut(kind).truncate(before);
        return Err(errors);
    }
    Ok(config.get(kind)[before].clone())
}

/// Checks a whole configuration again after an Admin API edit.
pub fn revalidate(config: &mut Config) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    resolve::resolve(config, &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Current unix time in seconds.
pub fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;

/// A target address as Kong stores it (`host` → `host:8000`, IPv6 bracketed); the input
/// unchanged when it is not a valid target.
pub fn normalized_target(target: &str) -> String {
    entities::normalize_target(target).unwrap_or_else(|| target.to_owned())
}
