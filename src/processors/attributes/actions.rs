//! The actions, compiled once at creation and applied to one attribute list at a time.

use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, KeyValue, KeyValueList,
};
use regex::Regex;
use sha2::{Digest, Sha256};

use super::config::ActionConfig;
use crate::config::FieldError;
use crate::pipeline::ClientInfo;

/// Where a new value comes from.
#[derive(Clone, Debug)]
pub(super) enum Source {
    Value(AnyValue),
    Attribute(String),
    Context(String),
}

/// The type `convert` turns a value into.
#[derive(Clone, Copy, Debug)]
pub(super) enum Target {
    Int,
    Double,
    Str,
}

/// One compiled action.
#[derive(Clone, Debug)]
pub(super) enum Action {
    Insert(String, Source),
    Update(String, Source),
    Upsert(String, Source),
    Delete(Option<String>, Option<Regex>),
    Hash(Option<String>, Option<Regex>),
    Extract(String, Regex),
    Convert(String, Target),
}

/// Compiles the `actions` list, with otelcol's messages.
pub(super) fn compile(list: &[ActionConfig]) -> Result<Vec<Action>, FieldError> {
    if list.is_empty() {
        return Err(FieldError::new("missing required field \"actions\""));
    }
    list.iter()
        .enumerate()
        .map(|(i, a)| compile_one(i, a).map_err(|e| e.under(i.to_string()).under("actions")))
        .collect()
}

fn compile_one(i: usize, a: &ActionConfig) -> Result<Action, FieldError> {
    let action = a.action.to_ascii_lowercase();
    let key = a.key.clone().filter(|k| !k.is_empty());
    let pattern = a
        .pattern
        .as_deref()
        .map(|p| {
            Regex::new(p).map_err(|e| FieldError::at(&["pattern"], format!("invalid pattern: {e}")))
        })
        .transpose()?;
    let sources = [
        a.value.is_some(),
        a.from_attribute.is_some(),
        a.from_context.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if a.converted_type.is_some() && action != "convert" {
        return Err(FieldError::at(
            &["converted_type"],
            format!("action \"{action}\" does not use converted_type"),
        ));
    }
    match action.as_str() {
        "insert" | "update" | "upsert" => {
            let key = key.ok_or_else(|| FieldError::new(format!("error creating AttrProc due to missing required field \"key\" at the {i}-th actions")))?;
            if pattern.is_some() {
                return Err(FieldError::new(format!("error creating AttrProc. Action \"{action}\" does not use the \"pattern\" field. This must not be specified for {i}-th action")));
            }
            if sources == 0 {
                return Err(FieldError::new(format!("error creating AttrProc. Either field \"value\", \"from_attribute\" or \"from_context\" setting must be specified for {i}-th action")));
            }
            if sources > 1 {
                return Err(FieldError::new(format!("error creating AttrProc due to multiple value sources being set for {i}-th action")));
            }
            let source = if let Some(v) = &a.value {
                if v.is_null() {
                    return Err(FieldError::new(format!("error creating AttrProc. Either field \"value\", \"from_attribute\" or \"from_context\" setting must be specified for {i}-th action")));
                }
                Source::Value(any_value(v))
            } else if let Some(attr) = &a.from_attribute {
                Source::Attribute(attr.clone())
            } else {
                Source::Context(a.from_context.clone().unwrap_or_default())
            };
            Ok(match action.as_str() {
                "insert" => Action::Insert(key, source),
                "update" => Action::Update(key, source),
                _ => Action::Upsert(key, source),
            })
        }
        "delete" | "hash" => {
            if key.is_none() && pattern.is_none() {
                return Err(FieldError::new(format!("error creating AttrProc due to missing required field \"pattern\" and \"key\" at the {i}-th actions")));
            }
            if sources > 0 {
                return Err(FieldError::new(format!("error creating AttrProc. Action \"{action}\" does not use a value source field. These must not be specified for {i}-th action")));
            }
            Ok(if action == "delete" {
                Action::Delete(key, pattern)
            } else {
                Action::Hash(key, pattern)
            })
        }
        "extract" => {
            let key = key.ok_or_else(|| FieldError::new(format!("error creating AttrProc due to missing required field \"key\" at the {i}-th actions")))?;
            let regex = pattern.ok_or_else(|| FieldError::new(format!("error creating AttrProc. Action \"extract\" requires the \"pattern\" field to be specified for {i}-th action")))?;
            let names = regex.capture_names().skip(1).collect::<Vec<_>>();
            if names.is_empty() || names.iter().any(Option::is_none) {
                return Err(FieldError::new(format!("error creating AttrProc. Action \"extract\" requires at least one named subexpression and all subexpressions must be named for {i}-th action")));
            }
            Ok(Action::Extract(key, regex))
        }
        "convert" => {
            let key = key.ok_or_else(|| FieldError::new(format!("error creating AttrProc due to missing required field \"key\" at the {i}-th actions")))?;
            let target = match a.converted_type.as_deref() {
                Some("int") => Target::Int,
                Some("double") => Target::Double,
                Some("string") => Target::Str,
                other => {
                    return Err(FieldError::new(format!(
                        "error creating AttrProc. Action \"convert\" requires converted_type int, double or string (got {:?}) for {i}-th action",
                        other.unwrap_or("")
                    )))
                }
            };
            Ok(Action::Convert(key, target))
        }
        other => Err(FieldError::new(format!(
            "error creating AttrProc due to unsupported action \"{other}\" at the {i}-th actions"
        ))),
    }
}

/// A YAML value as an OTLP value, type preserved.
pub(super) fn any_value(v: &yaml_serde::Value) -> AnyValue {
    use yaml_serde::Value as Y;
    let value = match v {
        Y::Null => None,
        Y::Bool(b) => Some(any_value::Value::BoolValue(*b)),
        Y::Number(n) => Some(match n.as_i64() {
            Some(i) => any_value::Value::IntValue(i),
            None => any_value::Value::DoubleValue(n.as_f64().unwrap_or(0.0)),
        }),
        Y::String(s) => Some(any_value::Value::StringValue(s.clone())),
        Y::Sequence(items) => Some(any_value::Value::ArrayValue(ArrayValue {
            values: items.iter().map(any_value).collect(),
        })),
        Y::Mapping(map) => Some(any_value::Value::KvlistValue(KeyValueList {
            values: map
                .iter()
                .map(|(k, v)| KeyValue {
                    key: k.as_str().map_or_else(|| format!("{k:?}"), str::to_owned),
                    value: Some(any_value(v)),
                    ..Default::default()
                })
                .collect(),
        })),
        Y::Tagged(t) => return any_value(&t.value),
    };
    AnyValue { value }
}

fn position(attrs: &[KeyValue], key: &str) -> Option<usize> {
    attrs.iter().position(|kv| kv.key == key)
}

fn resolve(source: &Source, attrs: &[KeyValue], client: &ClientInfo) -> Option<AnyValue> {
    match source {
        Source::Value(v) => Some(v.clone()),
        Source::Attribute(name) => attrs
            .iter()
            .find(|kv| kv.key == *name)
            .and_then(|kv| kv.value.clone()),
        Source::Context(name) => {
            let text = if name == "client.address" {
                client.addr.map(|a| a.ip().to_string())?
            } else {
                let key = name.strip_prefix("metadata.").unwrap_or(name);
                let values: Vec<&str> = client.metadata_values(key).collect();
                if values.is_empty() {
                    return None;
                }
                values.join(";")
            };
            Some(AnyValue {
                value: Some(any_value::Value::StringValue(text)),
            })
        }
    }
}

fn set(attrs: &mut Vec<KeyValue>, key: &str, value: AnyValue) {
    match position(attrs, key) {
        Some(i) => attrs[i].value = Some(value),
        None => attrs.push(KeyValue {
            key: key.to_owned(),
            value: Some(value),
            ..Default::default()
        }),
    }
}

/// Applies `actions` in order to one attribute list.
pub(super) fn apply(actions: &[Action], attrs: &mut Vec<KeyValue>, client: &ClientInfo) {
    for action in actions {
        match action {
            Action::Insert(key, source) => {
                if position(attrs, key).is_none() {
                    if let Some(v) = resolve(source, attrs, client) {
                        set(attrs, key, v);
                    }
                }
            }
            Action::Update(key, source) => {
                if position(attrs, key).is_some() {
                    if let Some(v) = resolve(source, attrs, client) {
                        set(attrs, key, v);
                    }
                }
            }
            Action::Upsert(key, source) => {
                if let Some(v) = resolve(source, attrs, client) {
                    set(attrs, key, v);
                }
            }
            Action::Delete(key, pattern) => attrs.retain(|kv| {
                !(key.as_deref() == Some(kv.key.as_str())
                    || pattern.as_ref().is_some_and(|p| p.is_match(&kv.key)))
            }),
            Action::Hash(key, pattern) => {
                for kv in attrs.iter_mut() {
                    if key.as_deref() == Some(kv.key.as_str())
                        || pattern.as_ref().is_some_and(|p| p.is_match(&kv.key))
                    {
                        kv.value = Some(hash(kv.value.as_ref()));
                    }
                }
            }
            Action::Extract(key, regex) => {
                let Some(any_value::Value::StringValue(text)) = attrs
                    .iter()
                    .find(|kv| kv.key == *key)
                    .and_then(|kv| kv.value.as_ref()?.value.clone())
                else {
                    continue;
                };
                if let Some(caps) = regex.captures(&text) {
                    for name in regex.capture_names().flatten() {
                        if let Some(m) = caps.name(name) {
                            set(
                                attrs,
                                name,
                                AnyValue {
                                    value: Some(any_value::Value::StringValue(
                                        m.as_str().to_owned(),
                                    )),
                                },
                            );
                        }
                    }
                }
            }
            Action::Convert(key, target) => {
                if let Some(i) = position(attrs, key) {
                    if let Some(v) = convert(attrs[i].value.as_ref(), *target) {
                        attrs[i].value = Some(v);
                    }
                }
            }
        }
    }
}

/// SHA-256 hex of the value's bytes: UTF-8 for strings, one byte for bools, 8 bytes
/// little-endian for ints and doubles; other types become `""`.
fn hash(value: Option<&AnyValue>) -> AnyValue {
    let bytes: Option<Vec<u8>> = match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => Some(s.as_bytes().to_vec()),
        Some(any_value::Value::BoolValue(b)) => Some(vec![u8::from(*b)]),
        Some(any_value::Value::IntValue(i)) => Some(i.to_le_bytes().to_vec()),
        Some(any_value::Value::DoubleValue(d)) => Some(d.to_bits().to_le_bytes().to_vec()),
        _ => None,
    };
    let text = bytes.map_or_else(String::new, |b| hex::encode(Sha256::digest(b)));
    AnyValue {
        value: Some(any_value::Value::StringValue(text)),
    }
}

fn convert(value: Option<&AnyValue>, target: Target) -> Option<AnyValue> {
    use any_value::Value as V;
    let v = value?.value.as_ref()?;
    let out = match (target, v) {
        (Target::Int, V::IntValue(_))
        | (Target::Double, V::DoubleValue(_))
        | (Target::Str, V::StringValue(_)) => return None,
        (Target::Int, V::DoubleValue(d)) => V::IntValue(d.trunc() as i64),
        (Target::Int, V::BoolValue(b)) => V::IntValue(i64::from(*b)),
        (Target::Int, V::StringValue(s)) => V::IntValue(s.trim().parse().ok()?),
        (Target::Double, V::IntValue(i)) => V::DoubleValue(*i as f64),
        (Target::Double, V::BoolValue(b)) => V::DoubleValue(if *b { 1.0 } else { 0.0 }),
        (Target::Double, V::StringValue(s)) => V::DoubleValue(s.trim().parse().ok()?),
        (Target::Str, other) => V::StringValue(crate::pipeline::as_string(Some(&AnyValue {
            value: Some(other.clone()),
        }))),
        _ => return None,
    };
    Some(AnyValue { value: Some(out) })
}
