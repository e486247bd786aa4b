//! Validating a loaded config against the registry: the service rules, every component
//! section through its factory, connectors, and ports. Every problem is collected.

use std::collections::{BTreeMap, HashMap};

use crate::component::FactoryInfo;
use crate::pipeline::Signal;
use crate::registry::Registry;

use super::error::{ConfigError, ConfigErrors, FieldError};
use super::load::Loaded;
use super::ComponentId;

/// Validates with the built-in registry.
///
/// # Errors
/// Every problem found, one per line when printed.
pub fn validate(loaded: &Loaded) -> Result<(), ConfigErrors> {
    validate_with(loaded, &crate::registry::BUILTIN)
}

/// Validates against `registry`.
///
/// # Errors
/// Every problem found.
pub fn validate_with(loaded: &Loaded, registry: &Registry) -> Result<(), ConfigErrors> {
    let mut v = Validator {
        loaded,
        registry,
        errors: Vec::new(),
    };
    v.sections();
    if v.errors
        .first()
        .is_some_and(|e| e.message == "empty configuration file")
    {
        return Err(ConfigErrors(v.errors));
    }
    v.components();
    v.storage();
    v.authenticators();
    v.service();
    v.connectors();
    v.ports();
    if v.errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors(v.errors))
    }
}

struct Validator<'a> {
    loaded: &'a Loaded,
    registry: &'a Registry,
    errors: Vec<ConfigError>,
}

/// Finds a factory's info by type name in one kind of the registry.
type InfoLookup = fn(&Registry, &str) -> Option<FactoryInfo>;

fn path(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| (*s).to_owned()).collect()
}

impl Validator<'_> {
    fn error(&mut self, path: Vec<String>, message: impl Into<String>) {
        self.errors.push(self.loaded.error_at(path, message));
    }

    fn sections(&mut self) {
        let c = &self.loaded.config;
        if c.receivers.is_empty()
            && c.processors.is_empty()
            && c.exporters.is_empty()
            && c.connectors.is_empty()
            && c.extensions.is_empty()
        {
            self.errors
                .push(ConfigError::general("empty configuration file"));
            return;
        }
        if c.receivers.is_empty() {
            self.errors.push(ConfigError::general(
                "no receiver configuration specified in config",
            ));
        }
        if c.exporters.is_empty() {
            self.errors.push(ConfigError::general(
                "no exporter configuration specified in config",
            ));
        }
        for id in c.connectors.keys() {
            for (kind, other) in [("exporter", &c.exporters), ("receiver", &c.receivers)] {
                if other.contains_key(id) {
                    self.error(
                        path(&["connectors", &id.to_string()]),
                        format!("ambiguous ID: Found both \"{id}\" {kind} and \"{id}\" connector. Change one of the components' IDs to eliminate ambiguity (e.g. rename \"{id}\" connector to \"{id}/connector\") and try again"),
                    );
                }
            }
        }
    }

    /// Decodes every configured section through its factory, used or not (as otelcol does).
    fn components(&mut self) {
        let c = &self.loaded.config;
        let reg = self.registry;
        let mut found: Vec<(Vec<String>, Result<(), FieldError>)> = Vec::new();
        let mut unknown: Vec<(&str, &ComponentId, Vec<&'static str>)> = Vec::new();
        macro_rules! check {
            ($section:literal, $map:expr, $lookup:ident, $list:expr) => {
                for (id, raw) in $map {
                    match reg.$lookup(id.kind()) {
                        Some(f) => {
                            found.push((path(&[$section, &id.to_string()]), f.validate(raw)))
                        }
                        None => unknown.push((
                            $section,
                            id,
                            $list.iter().map(|f| f.info().name).collect(),
                        )),
                    }
                }
            };
        }
        check!("receivers", &c.receivers, receiver, reg.receivers);
        check!("processors", &c.processors, processor, reg.processors);
        check!("exporters", &c.exporters, exporter, reg.exporters);
        check!("connectors", &c.connectors, connector, reg.connectors);
        check!("extensions", &c.extensions, extension, reg.extensions);
        for (mut at, result) in found {
            if let Err(e) = result {
                at.extend(e.path);
                self.error(at, e.message);
            }
        }
        for (section, id, mut valid) in unknown {
            valid.sort_unstable();
            let message = if section == "exporters" && id.kind() == "logging" {
                "the logging exporter was removed from the OpenTelemetry Collector; use the debug exporter instead".to_owned()
            } else {
                let hint = super::load::did_you_mean(id.kind(), &valid)
                    .map(|s| format!(" (did you mean \"{s}\"?)"))
                    .unwrap_or_default();
                format!(
                    "unknown type: \"{}\" for id: \"{id}\" (valid values: [{}]){hint}",
                    id.kind(),
                    valid.join(" ")
                )
            };
            self.error(path(&[section, &id.to_string()]), message);
        }
    }

    /// `sending_queue.storage` must name a configured extension that the service enables.
    fn storage(&mut self) {
        let c = &self.loaded.config;
        let mut problems = Vec::new();
        for (id, raw) in &c.exporters {
            let Some(storage) = raw
                .get("sending_queue")
                .and_then(|q| q.get("storage"))
                .and_then(|s| s.as_str())
            else {
                continue;
            };
            let at = path(&["exporters", &id.to_string(), "sending_queue", "storage"]);
            let message = match ComponentId::parse(storage) {
                Err(e) => e.message,
                Ok(ext) if !c.extensions.contains_key(&ext) => {
                    format!("references storage extension \"{ext}\" which is not configured")
                }
                Ok(ext) if !c.service.extensions.contains(&ext) => format!(
                    "storage extension \"{ext}\" is not enabled: add it to service::extensions"
                ),
                Ok(_) => continue,
            };
            problems.push((at, message));
        }
        for (p, m) in problems {
            self.error(p, m);
        }
    }

    /// `auth.authenticator` (exporters, and each protocol of a receiver) must name a
    /// configured extension that the service enables.
    fn authenticators(&mut self) {
        let c = &self.loaded.config;
        let mut refs: Vec<(Vec<String>, &str)> = Vec::new();
        for (id, raw) in &c.receivers {
            let Some(protocols) = raw.get("protocols").and_then(|p| p.as_mapping()) else {
                continue;
            };
            for (name, body) in protocols {
                if let (Some(name), Some(ext)) = (name.as_str(), authenticator(body)) {
                    let at = ["receivers", &id.to_string(), "protocols", name, "auth"];
                    refs.push((path(&[&at[..], &["authenticator"]].concat()), ext));
                }
            }
        }
        for (id, raw) in &c.exporters {
            if let Some(ext) = authenticator(raw) {
                refs.push((
                    path(&["exporters", &id.to_string(), "auth", "authenticator"]),
                    ext,
                ));
            }
        }
        let mut problems = Vec::new();
        for (at, ext) in refs {
            let message = match ComponentId::parse(ext) {
                Err(e) => e.message,
                Ok(ext) if !c.extensions.contains_key(&ext) => {
                    format!("references authenticator extension \"{ext}\" which is not configured")
                }
                Ok(ext) if !c.service.extensions.contains(&ext) => format!(
                    "authenticator extension \"{ext}\" is not enabled: add it to service::extensions"
                ),
                Ok(_) => continue,
            };
            problems.push((at, message));
        }
        for (p, m) in problems {
            self.error(p, m);
        }
    }

    fn service(&mut self) {
        let c = &self.loaded.config;
        let mut problems = Vec::new();
        for (i, id) in c.service.extensions.iter().enumerate() {
            if !c.extensions.contains_key(id) {
                problems.push((
                    path(&["service", "extensions", &i.to_string()]),
                    format!("references extension \"{id}\" which is not configured"),
                ));
            }
        }
        if c.service.pipelines.is_empty() {
            problems.push((
                path(&["service"]),
                "must have at least one pipeline".to_owned(),
            ));
        }
        for (pid, p) in &c.service.pipelines {
            let base = path(&["service", "pipelines", &pid.to_string()]);
            let at = |field: &str, i: usize| {
                let mut p = base.clone();
                p.extend([field.to_owned(), i.to_string()]);
                p
            };
            if p.receivers.is_empty() {
                problems.push((base.clone(), "must have at least one receiver".to_owned()));
            }
            if p.exporters.is_empty() {
                problems.push((base.clone(), "must have at least one exporter".to_owned()));
            }
            for (i, id) in p.receivers.iter().enumerate() {
                if !c.receivers.contains_key(id) && !c.connectors.contains_key(id) {
                    problems.push((
                        at("receivers", i),
                        format!("references receiver \"{id}\" which is not configured"),
                    ));
                }
            }
            for (i, id) in p.exporters.iter().enumerate() {
                if !c.exporters.contains_key(id) && !c.connectors.contains_key(id) {
                    problems.push((
                        at("exporters", i),
                        format!("references exporter \"{id}\" which is not configured"),
                    ));
                }
            }
            for (i, id) in p.processors.iter().enumerate() {
                if !c.processors.contains_key(id) {
                    problems.push((
                        at("processors", i),
                        format!("references processor \"{id}\" which is not configured"),
                    ));
                } else if p.processors[..i].contains(id) {
                    problems.push((
                        at("processors", i),
                        format!("references processor \"{id}\" multiple times"),
                    ));
                }
            }
            // A component must support the pipeline's signal.
            let checks: [(&str, &[ComponentId], InfoLookup); 3] = [
                ("receivers", &p.receivers, |r, k| {
                    r.receiver(k).map(|f| *f.info())
                }),
                ("processors", &p.processors, |r, k| {
                    r.processor(k).map(|f| *f.info())
                }),
                ("exporters", &p.exporters, |r, k| {
                    r.exporter(k).map(|f| *f.info())
                }),
            ];
            for (field, ids, lookup) in checks {
                for (i, id) in ids.iter().enumerate() {
                    if c.connectors.contains_key(id) {
                        continue;
                    }
                    if let Some(info) = lookup(self.registry, id.kind()) {
                        if !info.supports(pid.signal) {
                            problems.push((
                                at(field, i),
                                format!("{} data type is not supported by \"{id}\"", pid.signal),
                            ));
                        }
                    }
                }
            }
        }
        for (p, m) in problems {
            self.error(p, m);
        }
    }

    /// Each connector must be an exporter of one pipeline and a receiver of another, with a
    /// signal pair it supports.
    fn connectors(&mut self) {
        let c = &self.loaded.config;
        let mut problems = Vec::new();
        for id in c.connectors.keys() {
            let Some(factory) = self.registry.connector(id.kind()) else {
                continue;
            };
            let pairs = factory.pairs();
            let as_exporter: Vec<Signal> = c
                .service
                .pipelines
                .iter()
                .filter(|(_, p)| p.exporters.contains(id))
                .map(|(pid, _)| pid.signal)
                .collect();
            let as_receiver: Vec<Signal> = c
                .service
                .pipelines
                .iter()
                .filter(|(_, p)| p.receivers.contains(id))
                .map(|(pid, _)| pid.signal)
                .collect();
            for from in &as_exporter {
                if !as_receiver.iter().any(|to| pairs.contains(&(*from, *to))) {
                    problems.push(format!("connector \"{id}\" used as exporter in {from} pipeline but not used in any supported receiver pipeline"));
                }
            }
            for to in &as_receiver {
                if !as_exporter.iter().any(|from| pairs.contains(&(*from, *to))) {
                    problems.push(format!("connector \"{id}\" used as receiver in {to} pipeline but not used in any supported exporter pipeline"));
                }
            }
        }
        for m in problems {
            self.errors.push(ConfigError::general(m));
        }
    }

    /// Two used receivers, pull exporters or extensions may not listen on the same port.
    fn ports(&mut self) {
        let c = &self.loaded.config;
        let mut used: BTreeMap<ComponentId, ()> = BTreeMap::new();
        for p in c.service.pipelines.values() {
            for id in &p.receivers {
                used.insert(id.clone(), ());
            }
        }
        let mut claims: HashMap<u16, Vec<String>> = HashMap::new();
        for id in used.keys() {
            if let (Some(raw), Some(f)) = (c.receivers.get(id), self.registry.receiver(id.kind())) {
                for endpoint in f.endpoints(raw) {
                    if let Some(port) = crate::net::port(&endpoint).filter(|p| *p != 0) {
                        claims
                            .entry(port)
                            .or_default()
                            .push(format!("receivers::{id}"));
                    }
                }
            }
        }
        let mut exporters: BTreeMap<ComponentId, ()> = BTreeMap::new();
        for p in c.service.pipelines.values() {
            for id in &p.exporters {
                exporters.insert(id.clone(), ());
            }
        }
        for id in exporters.keys() {
            if let (Some(raw), Some(f)) = (c.exporters.get(id), self.registry.exporter(id.kind())) {
                for endpoint in f.endpoints(raw) {
                    if let Some(port) = crate::net::port(&endpoint).filter(|p| *p != 0) {
                        claims
                            .entry(port)
                            .or_default()
                            .push(format!("exporters::{id}"));
                    }
                }
            }
        }
        for id in &c.service.extensions {
            if let (Some(raw), Some(f)) = (c.extensions.get(id), self.registry.extension(id.kind()))
            {
                for endpoint in f.endpoints(raw) {
                    if let Some(port) = crate::net::port(&endpoint).filter(|p| *p != 0) {
                        claims
                            .entry(port)
                            .or_default()
                            .push(format!("extensions::{id}"));
                    }
                }
            }
        }
        let mut clashes: Vec<(u16, Vec<String>)> = claims
            .into_iter()
            .filter(|(_, who)| who.len() > 1)
            .collect();
        clashes.sort();
        for (port, who) in clashes {
            self.errors.push(ConfigError::general(format!(
                "port {port} is claimed by more than one component: {}",
                who.join(", ")
            )));
        }
    }
}

/// The `auth.authenticator` of a client or server settings block.
fn authenticator(raw: &crate::component::RawConfig) -> Option<&str> {
    raw.get("auth")
        .and_then(|a| a.get("authenticator"))
        .and_then(|s| s.as_str())
}
