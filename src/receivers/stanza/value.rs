//! Entry values: the OTLP `AnyValue` itself, so parsed data moves into the log record
//! without a second conversion. `AnyValue { value: None }` is stanza's `nil`.

use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, KeyValue, KeyValueList,
};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// A string value.
pub fn string(s: impl Into<String>) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(s.into())),
    }
}

/// A map value.
pub fn map(entries: Vec<KeyValue>) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::KvlistValue(KeyValueList {
            values: entries,
        })),
    }
}

/// The nil value.
pub fn nil() -> AnyValue {
    AnyValue { value: None }
}

/// The map entries of a map value.
pub fn as_map(value: &AnyValue) -> Option<&Vec<KeyValue>> {
    match &value.value {
        Some(any_value::Value::KvlistValue(kv)) => Some(&kv.values),
        _ => None,
    }
}

/// The map entries of a map value, mutable.
pub fn as_map_mut(value: &mut AnyValue) -> Option<&mut Vec<KeyValue>> {
    match &mut value.value {
        Some(any_value::Value::KvlistValue(kv)) => Some(&mut kv.values),
        _ => None,
    }
}

/// The map entries, taking them out of a map value.
pub fn into_map(value: AnyValue) -> Result<Vec<KeyValue>, AnyValue> {
    match value.value {
        Some(any_value::Value::KvlistValue(kv)) => Ok(kv.values),
        other => Err(AnyValue { value: other }),
    }
}

/// The text of a string value.
pub fn as_str(value: &AnyValue) -> Option<&str> {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

/// The Go type name stanza's messages use for a value (`string`, `float64`, …).
pub fn go_type(value: &AnyValue) -> &'static str {
    match &value.value {
        None => "<nil>",
        Some(any_value::Value::StringValue(_)) => "string",
        Some(any_value::Value::BoolValue(_)) => "bool",
        Some(any_value::Value::IntValue(_)) => "int64",
        Some(any_value::Value::DoubleValue(_)) => "float64",
        Some(any_value::Value::BytesValue(_)) => "[]uint8",
        Some(any_value::Value::ArrayValue(_)) => "[]interface {}",
        Some(any_value::Value::KvlistValue(_)) => "map[string]interface {}",
        Some(any_value::Value::StringValueStrindex(_)) => "int32",
    }
}

/// Looks `key` up in a map's entries.
pub fn get<'a>(entries: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    entries
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| kv.value.as_ref().unwrap_or(&NIL))
}

static NIL: AnyValue = AnyValue { value: None };

/// Looks `key` up in a map's entries, mutable (a missing value becomes nil).
pub fn get_mut<'a>(entries: &'a mut [KeyValue], key: &str) -> Option<&'a mut AnyValue> {
    entries
        .iter_mut()
        .find(|kv| kv.key == key)
        .map(|kv| kv.value.get_or_insert_with(nil))
}

/// Sets `key` in a map's entries, replacing an existing value.
pub fn insert(entries: &mut Vec<KeyValue>, key: String, value: AnyValue) {
    if let Some(slot) = entries.iter_mut().find(|kv| kv.key == key) {
        slot.value = Some(value);
    } else {
        entries.push(KeyValue {
            key_strindex: 0,
            key,
            value: Some(value),
        });
    }
}

/// Removes `key` from a map's entries, returning its value.
pub fn remove(entries: &mut Vec<KeyValue>, key: &str) -> Option<AnyValue> {
    let index = entries.iter().position(|kv| kv.key == key)?;
    Some(entries.remove(index).value.unwrap_or_else(nil))
}

/// Merges `from` into `into` key by key (`from` wins).
pub fn merge(into: &mut Vec<KeyValue>, from: Vec<KeyValue>) {
    if into.is_empty() {
        *into = from;
        return;
    }
    for kv in from {
        insert(into, kv.key, kv.value.unwrap_or_else(nil));
    }
}

/// Converts a YAML config value (`add.value`, `attributes`) the way stanza's decoder does:
/// ints stay ints, floats stay doubles, maps and lists nest.
pub fn from_yaml(value: &yaml_serde::Value) -> AnyValue {
    use yaml_serde::Value as Y;
    let v = match value {
        Y::Null => return nil(),
        Y::Bool(b) => any_value::Value::BoolValue(*b),
        Y::Number(n) => match n.as_i64() {
            Some(i) => any_value::Value::IntValue(i),
            None => any_value::Value::DoubleValue(n.as_f64().unwrap_or(f64::NAN)),
        },
        Y::String(s) => any_value::Value::StringValue(s.clone()),
        Y::Sequence(items) => any_value::Value::ArrayValue(ArrayValue {
            values: items.iter().map(from_yaml).collect(),
        }),
        Y::Mapping(m) => {
            let entries = m
                .iter()
                .map(|(k, v)| KeyValue {
                    key_strindex: 0,
                    key: yaml_key(k),
                    value: Some(from_yaml(v)),
                })
                .collect();
            return map(entries);
        }
        Y::Tagged(t) => return from_yaml(&t.value),
    };
    AnyValue { value: Some(v) }
}

fn yaml_key(key: &yaml_serde::Value) -> String {
    match key {
        yaml_serde::Value::String(s) => s.clone(),
        other => yaml_serde::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_owned(),
    }
}

/// Parses a JSON object into map entries, one decode straight into `AnyValue`s: numbers
/// become doubles (or Int64 when `parse_ints` and integral), nested objects maps, arrays
/// slices, `null` nil. A duplicate key keeps the last value (at the first one's place), as
/// Go's decoder does.
///
/// # Errors
/// Invalid JSON or a document that is not an object (`null` is an empty object).
pub fn parse_json_object(text: &str, parse_ints: bool) -> Result<Vec<KeyValue>, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = JsonSeed { parse_ints }
        .deserialize(&mut de)
        .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    match value.value {
        Some(any_value::Value::KvlistValue(kv)) => Ok(kv.values),
        None => Ok(Vec::new()),
        Some(other) => Err(format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            json_kind(&other)
        )),
    }
}

fn json_kind(value: &any_value::Value) -> &'static str {
    match value {
        any_value::Value::StringValue(_) => "string",
        any_value::Value::BoolValue(_) => "bool",
        any_value::Value::ArrayValue(_) => "array",
        _ => "number",
    }
}

#[derive(Clone, Copy)]
struct JsonSeed {
    parse_ints: bool,
}

impl<'de> DeserializeSeed<'de> for JsonSeed {
    type Value = AnyValue;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<AnyValue, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for JsonSeed {
    type Value = AnyValue;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<AnyValue, E> {
        Ok(AnyValue {
            value: Some(any_value::Value::BoolValue(v)),
        })
    }

    fn visit_i64<E>(self, v: i64) -> Result<AnyValue, E> {
        Ok(AnyValue {
            value: Some(if self.parse_ints {
                any_value::Value::IntValue(v)
            } else {
                any_value::Value::DoubleValue(v as f64)
            }),
        })
    }

    fn visit_u64<E>(self, v: u64) -> Result<AnyValue, E> {
        Ok(AnyValue {
            value: Some(match i64::try_from(v) {
                Ok(i) if self.parse_ints => any_value::Value::IntValue(i),
                _ => any_value::Value::DoubleValue(v as f64),
            }),
        })
    }

    fn visit_f64<E>(self, v: f64) -> Result<AnyValue, E> {
        Ok(AnyValue {
            value: Some(any_value::Value::DoubleValue(v)),
        })
    }

    fn visit_str<E>(self, v: &str) -> Result<AnyValue, E> {
        Ok(string(v))
    }

    fn visit_string<E>(self, v: String) -> Result<AnyValue, E> {
        Ok(string(v))
    }

    fn visit_unit<E>(self) -> Result<AnyValue, E> {
        Ok(nil())
    }

    fn visit_none<E>(self) -> Result<AnyValue, E> {
        Ok(nil())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AnyValue, A::Error> {
        let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element_seed(self)? {
            values.push(v);
        }
        Ok(AnyValue {
            value: Some(any_value::Value::ArrayValue(ArrayValue { values })),
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<AnyValue, A::Error> {
        let mut entries: Vec<KeyValue> = Vec::with_capacity(access.size_hint().unwrap_or(8));
        while let Some(key) = access.next_key::<String>()? {
            let value = access.next_value_seed(self)?;
            if let Some(slot) = entries.iter_mut().find(|kv| kv.key == key) {
                slot.value = Some(value);
            } else {
                entries.push(KeyValue {
                    key_strindex: 0,
                    key,
                    value: Some(value),
                });
            }
        }
        Ok(map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_numbers_are_doubles_unless_parse_ints() {
        let kv = parse_json_object(r#"{"a":200,"b":{"c":[1,"x",null]},"d":1.5}"#, false).unwrap();
        assert_eq!(
            get(&kv, "a").unwrap().value,
            Some(any_value::Value::DoubleValue(200.0))
        );
        let b = as_map(get(&kv, "b").unwrap()).unwrap();
        assert!(matches!(
            get(b, "c").unwrap().value,
            Some(any_value::Value::ArrayValue(_))
        ));
        let kv = parse_json_object(r#"{"a":200,"d":1.5}"#, true).unwrap();
        assert_eq!(
            get(&kv, "a").unwrap().value,
            Some(any_value::Value::IntValue(200))
        );
        assert_eq!(
            get(&kv, "d").unwrap().value,
            Some(any_value::Value::DoubleValue(1.5))
        );
    }

    #[test]
    fn json_nested_duplicates_stay_in_their_own_map() {
        let text = r#"{"a":{"x":1,"y":{"x":2,"x":3},"x":4},"x":5,"b":[{"x":6},{}],"a2":{}}"#;
        let kv = parse_json_object(text, true).unwrap();
        let keys: Vec<&str> = kv.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["a", "x", "b", "a2"]);
        let a = as_map(get(&kv, "a").unwrap()).unwrap();
        assert_eq!(a.len(), 2, "x replaced in place, y kept: {a:?}");
        assert_eq!(a[0].key, "x");
        assert_eq!(
            get(a, "x").unwrap().value,
            Some(any_value::Value::IntValue(4))
        );
        let y = as_map(get(a, "y").unwrap()).unwrap();
        assert_eq!(y.len(), 1);
        assert_eq!(
            get(y, "x").unwrap().value,
            Some(any_value::Value::IntValue(3))
        );
        assert_eq!(
            get(&kv, "x").unwrap().value,
            Some(any_value::Value::IntValue(5))
        );
        let Some(any_value::Value::ArrayValue(b)) = &get(&kv, "b").unwrap().value else {
            panic!("b is a slice");
        };
        assert_eq!(as_map(&b.values[0]).unwrap().len(), 1);
        assert!(as_map(&b.values[1]).unwrap().is_empty());
        assert!(as_map(get(&kv, "a2").unwrap()).unwrap().is_empty());
    }

    #[test]
    fn json_numbers_are_doubles_like_go() {
        let kv = parse_json_object(
            r#"{"big":1.7387650161244e+18,"u":18446744073709551615,"neg":-3,"e":1e400}"#,
            false,
        );
        let err = kv.unwrap_err();
        assert!(err.contains("number out of range"), "{err}");
        let kv = parse_json_object(
            r#"{"big":1.7387650161244e+18,"u":18446744073709551615,"neg":-3,"z":-0.0}"#,
            false,
        )
        .unwrap();
        let double = |k: &str| match get(&kv, k).unwrap().value {
            Some(any_value::Value::DoubleValue(d)) => d,
            ref other => panic!("{k}: {other:?}"),
        };
        assert_eq!(double("big"), 1.738_765_016_124_4e18);
        assert_eq!(double("u"), 18_446_744_073_709_551_615_f64);
        assert_eq!(double("neg"), -3.0);
        assert!(double("z") == 0.0 && double("z").is_sign_negative());
        let kv = parse_json_object(r#"{"u":18446744073709551615}"#, true).unwrap();
        assert_eq!(
            get(&kv, "u").unwrap().value,
            Some(any_value::Value::DoubleValue(
                18_446_744_073_709_551_615_f64
            )),
            "beyond int64 stays a double with parse_ints"
        );
    }

    #[test]
    fn json_errors_leave_nothing_for_the_next_parse() {
        assert!(parse_json_object(r#"{"a":{"b":{"c":1,"d":"#, false).is_err());
        assert!(parse_json_object(r#"{"a":1} trailing"#, false).is_err());
        let kv = parse_json_object(r#"{"e":{"f":true}}"#, false).unwrap();
        assert_eq!(kv.len(), 1);
        assert_eq!(as_map(get(&kv, "e").unwrap()).unwrap().len(), 1);
    }

    #[test]
    fn json_escapes_and_replacement_characters() {
        let kv = parse_json_object(
            "{\"uri\":\"\\/a\\u00e9\",\"bad\":\"x\u{fffd}y\",\"k\\u0041\":1}",
            false,
        )
        .unwrap();
        assert_eq!(get(&kv, "uri"), Some(&string("/a\u{e9}")));
        assert_eq!(get(&kv, "bad"), Some(&string("x\u{fffd}y")));
        assert!(get(&kv, "kA").is_some(), "escaped keys are decoded");
        assert!(parse_json_object(r#"{"a":"\ud800"}"#, false).is_err());
    }

    #[test]
    fn json_non_objects_are_errors_and_duplicates_keep_the_last() {
        assert!(parse_json_object("[1]", false)
            .unwrap_err()
            .contains("cannot unmarshal array"));
        assert!(parse_json_object("{", false).is_err());
        assert!(parse_json_object("null", false).unwrap().is_empty());
        let kv = parse_json_object(r#"{"a":1,"a":2}"#, false).unwrap();
        assert_eq!(kv.len(), 1);
        assert_eq!(
            get(&kv, "a").unwrap().value,
            Some(any_value::Value::DoubleValue(2.0))
        );
    }
}
