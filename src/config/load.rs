//! Loading a config: read every source, merge left to right, expand `${…}`, split into
//! sections. Component sections stay raw here; [`super::validate`] decodes them.

use std::collections::{BTreeMap, HashMap};

use yaml_serde::{Mapping, Value};

use crate::component::RawConfig;
use crate::pipeline::Signal;

use super::env::{Env, WithDefaults};
use super::error::{ConfigError, ConfigErrors};
use super::expand::{expand_value, key_text};
use super::location::Locations;
use super::merge::{merge, set_to_yaml};
use super::model::{Config, LogLevel, Pipeline, PipelineId, Service, Telemetry};
use super::source::{self, Document, Source};
use super::ComponentId;

/// A loaded config: the model, the resolved tree, and where each key came from.
pub struct Loaded {
    /// The config, split into sections.
    pub config: Config,
    /// Sources merged and expanded (for `print-config`).
    pub resolved: Value,
    sources: Vec<(String, Locations)>,
    /// Values read from the environment (longest first): never shown in errors.
    env_values: Vec<String>,
}

impl Loaded {
    /// `file:line:col` of the deepest key of `path` written in any source (later sources win
    /// among equally deep matches).
    pub fn locate(&self, path: &[String]) -> Option<String> {
        (1..=path.len()).rev().find_map(|depth| {
            self.sources.iter().rev().find_map(|(name, locations)| {
                let pos = locations.exact(&path[..depth])?;
                Some(format!("{name}:{}:{}", pos.line, pos.column))
            })
        })
    }

    /// An error at `path`, located.
    pub fn error_at(&self, path: Vec<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            location: self.locate(&path),
            path: path.join("::"),
            message: self.scrub(message.into()),
        }
    }

    /// `message` with every environment value it quotes replaced by `[REDACTED]` (values
    /// shorter than 3 characters are left: they would match ordinary words).
    fn scrub(&self, mut message: String) -> String {
        for value in &self.env_values {
            if message.contains(value.as_str()) {
                message = message.replace(value.as_str(), "[REDACTED]");
            }
        }
        message
    }

    /// The resolved config as YAML, with secrets (header values, tokens, passwords)
    /// replaced by `[REDACTED]`.
    pub fn print(&self) -> String {
        let mut value = self.resolved.clone();
        redact(&mut value, false);
        yaml_serde::to_string(&value).unwrap_or_default()
    }
}

/// Loads `sources` (merged left to right) and then each `--set`.
///
/// # Errors
/// Every problem found, each located where possible.
pub fn load(sources: &[Source], sets: &[String], env: &dyn Env) -> Result<Loaded, ConfigErrors> {
    let mut errors = Vec::new();
    let mut documents: Vec<Document> = Vec::new();
    for source in sources {
        match source::read(source, env) {
            Ok(doc) => documents.push(doc),
            Err(e) => errors.push(e),
        }
    }
    for set in sets {
        match set_to_yaml(set)
            .map_err(ConfigError::general)
            .and_then(|text| source::parse("--set".to_owned(), &text, true))
        {
            Ok(doc) => documents.push(doc),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }

    let mut resolved = Value::Mapping(Mapping::new());
    let mut defaults = HashMap::new();
    let mut located = Vec::new();
    for doc in documents {
        merge(&mut resolved, doc.value);
        defaults.extend(doc.env_defaults);
        located.push((doc.name, doc.locations));
    }
    let mut loaded = Loaded {
        config: Config::default(),
        resolved,
        sources: located,
        env_values: Vec::new(),
    };

    let env = Recording {
        inner: &WithDefaults {
            first: env,
            defaults: &defaults,
        },
        seen: std::cell::RefCell::new(Vec::new()),
    };
    let mut unset = Vec::new();
    let expanded = expand_value(&mut loaded.resolved, &env, &mut Vec::new(), &mut unset);
    let mut seen = env.seen.into_inner();
    seen.retain(|v| v.len() >= 3);
    seen.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    seen.dedup();
    loaded.env_values = seen;
    if let Err((path, e)) = expanded {
        return Err(ConfigErrors::one(loaded.error_at(path, e.to_string())));
    }
    unset.sort();
    unset.dedup();
    for name in unset {
        tracing::warn!(name = %name, "Configuration references unset environment variable.");
    }

    match split(&loaded) {
        Ok(config) => {
            loaded.config = config;
            Ok(loaded)
        }
        Err(errors) => Err(ConfigErrors(errors)),
    }
}

/// An [`Env`] that remembers the values it handed out.
struct Recording<'a> {
    inner: &'a dyn Env,
    seen: std::cell::RefCell<Vec<String>>,
}

impl Env for Recording<'_> {
    fn get(&self, name: &str) -> Option<String> {
        let value = self.inner.get(name)?;
        self.seen.borrow_mut().push(value.clone());
        Some(value)
    }
}

const SECTIONS: [&str; 6] = [
    "receivers",
    "processors",
    "exporters",
    "connectors",
    "extensions",
    "service",
];

/// Splits the resolved tree into the model, checking the structure (not the components).
fn split(loaded: &Loaded) -> Result<Config, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut config = Config::default();
    let root = loaded.resolved.as_mapping().cloned().unwrap_or_default();
    let unknown: Vec<String> = root
        .keys()
        .map(key_text)
        .filter(|k| !SECTIONS.contains(&k.as_str()))
        .collect();
    for key in &unknown {
        errors.push(loaded.error_at(vec![key.clone()], invalid_key(key, &SECTIONS)));
    }
    let mut section = |name: &str, into: &mut BTreeMap<ComponentId, RawConfig>| match root.get(name)
    {
        None | Some(Value::Null) => {}
        Some(Value::Mapping(map)) => {
            for (key, value) in map {
                let text = key_text(key);
                match ComponentId::parse(&text) {
                    Ok(id) => {
                        into.insert(id, value.clone());
                    }
                    Err(e) => errors.push(loaded.error_at(vec![name.to_owned(), text], e.message)),
                }
            }
        }
        Some(_) => {
            errors.push(loaded.error_at(vec![name.to_owned()], "expected a map of component ids"))
        }
    };
    section("receivers", &mut config.receivers);
    section("processors", &mut config.processors);
    section("exporters", &mut config.exporters);
    section("connectors", &mut config.connectors);
    section("extensions", &mut config.extensions);
    match root.get("service") {
        None | Some(Value::Null) => {}
        Some(service) => match split_service(loaded, service) {
            Ok(s) => config.service = s,
            Err(mut e) => errors.append(&mut e),
        },
    }
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(errors)
    }
}

fn split_service(loaded: &Loaded, value: &Value) -> Result<Service, Vec<ConfigError>> {
    const KEYS: [&str; 3] = ["extensions", "pipelines", "telemetry"];
    let mut errors = Vec::new();
    let mut service = Service::default();
    let Some(map) = value.as_mapping() else {
        return Err(vec![
            loaded.error_at(vec!["service".into()], "expected a map")
        ]);
    };
    for key in map.keys().map(key_text) {
        if !KEYS.contains(&key.as_str()) {
            errors.push(loaded.error_at(
                vec!["service".into(), key.clone()],
                invalid_key(&key, &KEYS),
            ));
        }
    }
    let at = |parts: &[&str]| -> Vec<String> { parts.iter().map(|s| (*s).to_owned()).collect() };
    match id_list(map.get("extensions")) {
        Ok(ids) => service.extensions = ids,
        Err(m) => errors.push(loaded.error_at(at(&["service", "extensions"]), m)),
    }
    if let Some(pipelines) = map.get("pipelines").and_then(Value::as_mapping) {
        for (key, body) in pipelines {
            let name = key_text(key);
            let path = vec!["service".into(), "pipelines".into(), name.clone()];
            let (signal, suffix) = match name.split_once('/') {
                Some((s, n)) => (s.trim(), Some(n.trim().to_owned())),
                None => (name.trim(), None),
            };
            let Some(signal) = Signal::parse(signal) else {
                errors.push(loaded.error_at(
                    path,
                    format!("pipeline \"{name}\": unknown signal \"{signal}\""),
                ));
                continue;
            };
            let mut pipeline = Pipeline::default();
            if let Some(body) = body.as_mapping() {
                for (k, v) in body {
                    let k = key_text(k);
                    let field = match k.as_str() {
                        "receivers" => &mut pipeline.receivers,
                        "processors" => &mut pipeline.processors,
                        "exporters" => &mut pipeline.exporters,
                        _ => {
                            let mut p = path.clone();
                            p.push(k.clone());
                            errors.push(loaded.error_at(
                                p,
                                invalid_key(&k, &["receivers", "processors", "exporters"]),
                            ));
                            continue;
                        }
                    };
                    match id_list(Some(v)) {
                        Ok(ids) => *field = ids,
                        Err(m) => {
                            let mut p = path.clone();
                            p.push(k);
                            errors.push(loaded.error_at(p, m));
                        }
                    }
                }
            } else if !body.is_null() {
                errors.push(loaded.error_at(
                    path,
                    "expected a map with receivers, processors and exporters",
                ));
                continue;
            }
            service.pipelines.insert(
                PipelineId {
                    signal,
                    name: suffix,
                },
                pipeline,
            );
        }
    } else if map.get("pipelines").is_some_and(|p| !p.is_null()) {
        errors.push(loaded.error_at(at(&["service", "pipelines"]), "expected a map of pipelines"));
    }
    if let Some(telemetry) = map.get("telemetry") {
        match split_telemetry(telemetry) {
            Ok(t) => service.telemetry = t,
            Err((path, m)) => {
                let mut p = at(&["service", "telemetry"]);
                p.extend(path);
                errors.push(loaded.error_at(p, m));
            }
        }
    }
    if errors.is_empty() {
        Ok(service)
    } else {
        Err(errors)
    }
}

fn id_list(value: Option<&Value>) -> Result<Vec<ComponentId>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => ComponentId::parse(s).map_err(|e| e.message),
                other => Err(format!("expected a component id, got {}", kind_of(other))),
            })
            .collect(),
        Some(other) => Err(format!(
            "expected a list of component ids, got {}",
            kind_of(other)
        )),
    }
}

fn split_telemetry(value: &Value) -> Result<Telemetry, (Vec<String>, String)> {
    let mut telemetry = Telemetry::default();
    let Some(map) = value.as_mapping() else {
        return Ok(telemetry);
    };
    const KEYS: [&str; 4] = ["logs", "metrics", "traces", "resource"];
    for key in map.keys().map(key_text) {
        if !KEYS.contains(&key.as_str()) {
            return Err((vec![key.clone()], invalid_key(&key, &KEYS)));
        }
    }
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_ascii_lowercase);
    if let Some(level) = text(map.get("logs").and_then(|l| l.get("level"))) {
        telemetry.log_level = match level.as_str() {
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" => LogLevel::Warn,
            "error" => LogLevel::Error,
            other => {
                return Err((
                    vec!["logs".into(), "level".into()],
                    format!(
                        "unrecognized level: \"{other}\" (expected debug, info, warn or error)"
                    ),
                ))
            }
        };
    }
    if let Some(metrics) = map.get("metrics") {
        if let Some(level) = text(metrics.get("level")) {
            match level.as_str() {
                "none" => telemetry.metrics_address = None,
                "basic" | "normal" | "detailed" => {}
                other => {
                    return Err((
                        vec!["metrics".into(), "level".into()],
                        format!("unknown metrics level \"{other}\" (expected none, basic, normal or detailed)"),
                    ))
                }
            }
        }
        if telemetry.metrics_address.is_some() {
            if let Some(address) = metrics.get("address").and_then(Value::as_str) {
                telemetry.metrics_address = Some(address.to_owned());
            }
            let pull = metrics
                .get("readers")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
                .find_map(|r| r.get("pull")?.get("exporter")?.get("prometheus"));
            if let Some(prom) = pull {
                let host = prom
                    .get("host")
                    .and_then(Value::as_str)
                    .unwrap_or("localhost");
                let port = prom.get("port").and_then(Value::as_u64).unwrap_or(8888);
                telemetry.metrics_address = Some(format!("{host}:{port}"));
            }
        }
    }
    Ok(telemetry)
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a map",
        Value::Tagged(_) => "a tagged value",
    }
}

/// `has invalid keys: foo`, with a suggestion when one valid key is close.
pub(crate) fn invalid_key(key: &str, valid: &[&str]) -> String {
    match did_you_mean(key, valid) {
        Some(s) => format!("has invalid keys: {key} (did you mean `{s}`?)"),
        None => format!("has invalid keys: {key}"),
    }
}

/// The closest of `candidates` to `word`, if close enough to be a typo.
pub(crate) fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(1))
        .min()
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(cur)
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// Keys whose values are secrets.
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "password",
        "token",
        "tokens",
        "credentials",
        "secret",
        "api_key",
        "apikey",
        "key_pem",
        "authorization",
        "bearer_token",
    ]
    .iter()
    .any(|s| key == *s || key.ends_with(&format!("_{s}")))
}

fn redact(value: &mut Value, secret: bool) {
    match value {
        Value::Mapping(map) => {
            for (key, item) in map.iter_mut() {
                let k = key_text(key);
                let child_secret = secret || k == "headers" || is_secret_key(&k);
                if k == "htpasswd" {
                    if let Value::Mapping(htpasswd) = item {
                        for (name, v) in htpasswd.iter_mut() {
                            if key_text(name) == "inline" {
                                *v = Value::String("[REDACTED]".into());
                            }
                        }
                        continue;
                    }
                }
                if k == "headers" {
                    if let Value::Mapping(headers) = item {
                        for (_, v) in headers.iter_mut() {
                            *v = Value::String("[REDACTED]".into());
                        }
                        continue;
                    }
                    // headers_setter: a list of {key, value | from_context, default_value}.
                    if let Value::Sequence(entries) = item {
                        for entry in entries.iter_mut() {
                            if let Value::Mapping(entry) = entry {
                                for (name, v) in entry.iter_mut() {
                                    if matches!(key_text(name).as_str(), "value" | "default_value")
                                    {
                                        *v = Value::String("[REDACTED]".into());
                                    }
                                }
                            }
                        }
                        continue;
                    }
                }
                redact(item, child_secret);
            }
        }
        Value::Sequence(items) => items.iter_mut().for_each(|i| redact(i, secret)),
        Value::String(_) | Value::Number(_) | Value::Bool(_) if secret => {
            *value = Value::String("[REDACTED]".into());
        }
        _ => {}
    }
}
