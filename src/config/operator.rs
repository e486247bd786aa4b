//! The OpenTelemetry Operator's `OpenTelemetryCollector` resource, accepted as a config
//! file: its `spec.config` is the collector config (`v1beta1`: a map; `v1alpha1`: a YAML
//! string), its `spec.env` literal `value`s are defaults for `${env:…}`.

use std::collections::HashMap;

use yaml_serde::Value;

use super::location::Locations;

/// A config file after unwrapping, with the env defaults the resource declared.
pub struct Unwrapped {
    /// The collector config.
    pub config: Value,
    /// Locations of the config's keys.
    pub locations: Locations,
    /// `spec.env` entries that have a literal `value`.
    pub env_defaults: HashMap<String, String>,
}

/// True when `value` is an OpenTelemetryCollector resource.
pub fn is_resource(value: &Value) -> bool {
    value
        .get("apiVersion")
        .and_then(Value::as_str)
        .is_some_and(|v| v.starts_with("opentelemetry.io/"))
        && value.get("kind").and_then(Value::as_str) == Some("OpenTelemetryCollector")
}

/// Unwraps a resource.
///
/// # Errors
/// A message when `spec.config` is missing or its text is not YAML.
pub fn unwrap(value: &Value, locations: &Locations) -> Result<Unwrapped, String> {
    let spec = value
        .get("spec")
        .ok_or("OpenTelemetryCollector resource has no spec")?;
    let mut env_defaults = HashMap::new();
    if let Some(env) = spec.get("env").and_then(Value::as_sequence) {
        for entry in env {
            let name = entry.get("name").and_then(Value::as_str);
            let literal = entry.get("value").and_then(scalar_text);
            if let (Some(name), Some(value)) = (name, literal) {
                env_defaults.insert(name.to_owned(), value);
            }
        }
    }
    let config = spec
        .get("config")
        .ok_or("OpenTelemetryCollector resource has no spec.config")?;
    let (config, locations) = match config {
        Value::String(text) => {
            // v1alpha1: the config is a block scalar; its lines start after the key.
            let offset = locations.get(&["spec", "config"]).map_or(0, |p| p.line);
            let parsed: Value = yaml_serde::from_str(text)
                .map_err(|e| format!("spec.config is not valid YAML: {e}"))?;
            (parsed, Locations::index(text).subtree(&[], offset, 0))
        }
        other => (other.clone(), locations.subtree(&["spec", "config"], 0, 0)),
    };
    Ok(Unwrapped {
        config,
        locations,
        env_defaults,
    })
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1beta1_map_config_and_env_defaults() {
        let text = "apiVersion: opentelemetry.io/v1beta1\nkind: OpenTelemetryCollector\nspec:\n  env:\n    - name: A\n      value: one\n    - name: B\n      valueFrom: {secretKeyRef: {key: k, name: n}}\n  config:\n    receivers:\n      otlp: {}\n";
        let value: Value = yaml_serde::from_str(text).unwrap();
        assert!(is_resource(&value));
        let u = unwrap(&value, &Locations::index(text)).unwrap();
        assert!(u.config["receivers"]["otlp"].is_mapping());
        assert_eq!(u.env_defaults.get("A").map(String::as_str), Some("one"));
        assert!(!u.env_defaults.contains_key("B"));
        let pos = u
            .locations
            .find(&["receivers".into(), "otlp".into()])
            .unwrap();
        assert_eq!((pos.line, pos.column), (11, 7));
    }

    #[test]
    fn v1alpha1_string_config() {
        let text = "apiVersion: opentelemetry.io/v1alpha1\nkind: OpenTelemetryCollector\nspec:\n  config: |\n    receivers:\n      otlp: {}\n";
        let value: Value = yaml_serde::from_str(text).unwrap();
        let u = unwrap(&value, &Locations::index(text)).unwrap();
        assert!(u.config["receivers"]["otlp"].is_mapping());
        let pos = u
            .locations
            .find(&["receivers".into(), "otlp".into()])
            .unwrap();
        assert_eq!(pos.line, 6);
    }

    #[test]
    fn plain_config_is_not_a_resource() {
        let value: Value = yaml_serde::from_str("receivers: {}").unwrap();
        assert!(!is_resource(&value));
    }
}
