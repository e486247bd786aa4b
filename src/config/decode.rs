//! Decoding one component's section into its typed config.
//!
//! Every component config is `#[serde(deny_unknown_fields, default)]` with a `Default` that
//! is the documented default, so an empty or null section means "all defaults" and an
//! unknown key is an error naming its path.

use serde::de::DeserializeOwned;

use super::FieldError;

/// Decodes `value` (a null section = defaults) into `T`, reporting the key path of the
/// first problem.
///
/// # Errors
/// A [`FieldError`] whose path is relative to the section.
pub fn decode<T: DeserializeOwned + Default>(value: &yaml_serde::Value) -> Result<T, FieldError> {
    if value.is_null() {
        return Ok(T::default());
    }
    let mut track = serde_path_to_error::Track::new();
    let de = serde_path_to_error::Deserializer::new(value, &mut track);
    T::deserialize(de).map_err(|err| {
        let path = track.path();
        FieldError {
            path: path_segments(&path),
            message: clean_message(&err.to_string()),
        }
    })
}

fn path_segments(path: &serde_path_to_error::Path) -> Vec<String> {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|seg| match seg {
            Segment::Map { key } => Some(key.clone()),
            Segment::Seq { index } => Some(index.to_string()),
            Segment::Enum { variant } => Some(variant.clone()),
            Segment::Unknown => None,
        })
        .collect()
}

/// serde's messages end with location details that mean nothing for a `Value`; trim them.
fn clean_message(message: &str) -> String {
    message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .trim_end_matches('.')
        .to_owned()
}

/// Serde adapter for string maps (`headers`) whose values may have been typed by YAML or by
/// `${env:…}` expansion: numbers and booleans are taken as their text.
///
/// # Errors
/// A value that is a list or a map.
pub fn string_map<'de, D>(
    deserializer: D,
) -> Result<std::collections::BTreeMap<String, String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::Deserialize;
    let raw = std::collections::BTreeMap::<String, yaml_serde::Value>::deserialize(deserializer)?;
    raw.into_iter()
        .map(|(k, v)| {
            let text = match v {
                yaml_serde::Value::String(s) => s,
                yaml_serde::Value::Number(n) => n.to_string(),
                yaml_serde::Value::Bool(b) => b.to_string(),
                yaml_serde::Value::Null => String::new(),
                _ => {
                    return Err(serde::de::Error::custom(format!(
                        "header {k:?} must be a string"
                    )))
                }
            };
            Ok((k, text))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Inner {
        port: u16,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Outer {
        name: String,
        inner: Inner,
    }

    fn yaml(text: &str) -> yaml_serde::Value {
        yaml_serde::from_str(text).unwrap()
    }

    #[test]
    fn null_section_is_default() {
        assert_eq!(
            decode::<Outer>(&yaml_serde::Value::Null).unwrap(),
            Outer::default()
        );
    }

    #[test]
    fn reports_path_of_wrong_type() {
        let err = decode::<Outer>(&yaml("inner: {port: abc}")).unwrap_err();
        assert_eq!(err.path, vec!["inner", "port"]);
        assert!(err.message.contains("invalid type"), "{err}");
    }

    #[test]
    fn reports_unknown_key() {
        let err = decode::<Outer>(&yaml("inner: {prot: 1}")).unwrap_err();
        assert_eq!(err.path, vec!["inner", "prot"]);
        assert!(err.message.contains("unknown field `prot`"), "{err}");
    }
}
