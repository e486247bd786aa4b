//! Reading one config source: a file, an environment variable, inline YAML, or the
//! binary's embedded default.

use std::collections::HashMap;

use yaml_serde::Value;

use super::env::Env;
use super::error::ConfigError;
use super::location::Locations;
use super::{merge, operator};

/// Where a config comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// As given to `--config`: a path, `file:path`, `env:NAME` or `yaml:inline`.
    Uri(String),
    /// Text compiled into the binary.
    Embedded {
        /// Shown in errors.
        name: &'static str,
        /// The YAML.
        text: &'static str,
    },
}

/// One source, read and parsed.
pub(crate) struct Document {
    /// Shown in error locations (the file path, `env:NAME`, …).
    pub(crate) name: String,
    /// The config map (an OpenTelemetryCollector resource already unwrapped).
    pub(crate) value: Value,
    /// Where each key was written.
    pub(crate) locations: Locations,
    /// Defaults for `${env:…}` from an OpenTelemetryCollector resource.
    pub(crate) env_defaults: HashMap<String, String>,
}

/// Reads and parses `source`.
///
/// # Errors
/// An unreadable source, an unsupported scheme, or YAML that does not parse (with its
/// location).
pub(crate) fn read(source: &Source, env: &dyn Env) -> Result<Document, ConfigError> {
    let (name, text, inline) = match source {
        Source::Embedded { name, text } => ((*name).to_owned(), (*text).to_owned(), false),
        Source::Uri(uri) => match scheme(uri) {
            None => (uri.clone(), read_file(uri)?, false),
            Some(("file", path)) => (path.to_owned(), read_file(path)?, false),
            Some(("env", var)) => {
                let text = env.get(var).ok_or_else(|| {
                    ConfigError::general(format!(
                        "cannot read config from {uri:?}: environment variable {var} is not set"
                    ))
                })?;
                (uri.clone(), text, false)
            }
            Some(("yaml", text)) => ("--set/yaml".to_owned(), text.to_owned(), true),
            Some(("http" | "https", _)) => {
                return Err(ConfigError::general(format!(
                    "cannot read config from {uri:?}: http(s) config sources are not supported; download the file and pass its path"
                )))
            }
            Some(_) => {
                return Err(ConfigError::general(format!("unsupported scheme on URI {uri:?}")))
            }
        },
    };
    parse(name, &text, inline)
}

/// Parses YAML `text` from a source called `name`. `inline` sources may write key paths
/// with `::` (`exporters::debug::verbosity: detailed`).
pub(crate) fn parse(name: String, text: &str, inline: bool) -> Result<Document, ConfigError> {
    let value: Value = yaml_serde::from_str(text).map_err(|e| {
        let message = strip_location(&e.to_string());
        let location = duplicate_key_position(text, &message)
            .or_else(|| e.location().map(|l| (l.line(), l.column())))
            .map(|(line, column)| format!("{name}:{line}:{column}"));
        ConfigError {
            location,
            path: String::new(),
            message,
        }
    })?;
    let value = if value.is_null() {
        Value::Mapping(yaml_serde::Mapping::new())
    } else {
        value
    };
    if !value.is_mapping() {
        return Err(ConfigError {
            location: Some(format!("{name}:1:1")),
            path: String::new(),
            message: "the config must be a map of sections".to_owned(),
        });
    }
    let locations = Locations::index(text);
    if operator::is_resource(&value) {
        let unwrapped = operator::unwrap(&value, &locations).map_err(|message| ConfigError {
            location: Some(name.clone()),
            path: String::new(),
            message,
        })?;
        return Ok(Document {
            name,
            value: unwrapped.config,
            locations: unwrapped.locations,
            env_defaults: unwrapped.env_defaults,
        });
    }
    let (value, locations) = if inline {
        (merge::nest_paths(value), Locations::default())
    } else {
        (value, locations)
    };
    Ok(Document {
        name,
        value,
        locations,
        env_defaults: HashMap::new(),
    })
}

/// `Some((scheme, rest))` when `uri` starts with a scheme of two or more characters, so
/// Windows drive letters stay paths.
fn scheme(uri: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = uri.split_once(':')?;
    let valid = scheme.len() >= 2
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'));
    valid.then_some((scheme, rest))
}

fn read_file(path: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map_err(|e| ConfigError::general(format!("cannot read config file {path:?}: {e}")))
}

/// The parser reports a duplicate key at its map; point at the duplicate itself (the
/// location index keeps the last occurrence of each path).
fn duplicate_key_position(text: &str, message: &str) -> Option<(usize, usize)> {
    let (prefix, rest) = message.split_once("duplicate entry with key ")?;
    let key = rest.trim().trim_matches('"');
    let mut path: Vec<String> = prefix
        .trim_end_matches([' ', ':'])
        .split('.')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    path.push(key.to_owned());
    let pos = Locations::index(text).exact(&path)?;
    Some((pos.line, pos.column))
}

/// yaml_serde appends "at line L column C"; the location is printed in front instead.
fn strip_location(message: &str) -> String {
    message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        assert_eq!(scheme("file:/etc/x.yaml"), Some(("file", "/etc/x.yaml")));
        assert_eq!(scheme("yaml:a::b: c"), Some(("yaml", "a::b: c")));
        assert_eq!(scheme("C:\\x.yaml"), None);
        assert_eq!(scheme("/etc/x.yaml"), None);
    }

    #[test]
    fn yaml_errors_carry_their_location() {
        let err = parse("c.yaml".into(), "a: 1\nb: [1, 2\n", false)
            .err()
            .unwrap();
        assert!(
            err.location.as_deref().unwrap().starts_with("c.yaml:"),
            "{err}"
        );
        let err = parse("d.yaml".into(), "a: 1\na: 2\n", false).err().unwrap();
        assert_eq!(err.location.as_deref(), Some("d.yaml:2:1"));
        assert!(err.message.contains("duplicate"), "{err}");
    }

    #[test]
    fn unsupported_sources_are_named() {
        let env = HashMap::<String, String>::new();
        let err = read(&Source::Uri("s3:bucket/x".into()), &env)
            .err()
            .unwrap();
        assert_eq!(err.message, "unsupported scheme on URI \"s3:bucket/x\"");
        let err = read(&Source::Uri("env:NOPE".into()), &env).err().unwrap();
        assert!(err.message.contains("NOPE is not set"));
        let err = read(&Source::Uri("/no/such/file.yaml".into()), &env)
            .err()
            .unwrap();
        assert!(err
            .message
            .starts_with("cannot read config file \"/no/such/file.yaml\""));
    }
}
