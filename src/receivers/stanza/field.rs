//! Field references (`body.a.b`, `attributes["x.y"]`, `resource.k`) and how they read and
//! write an entry, as stanza's `entry.Field`.

use std::fmt;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};

use super::entry::Entry;
use super::value;

/// Which part of the entry a field starts at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Root {
    /// The body.
    Body,
    /// The attributes map.
    Attributes,
    /// The resource map.
    Resource,
}

/// A parsed field reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// Where it starts.
    pub root: Root,
    /// Map keys below the root.
    pub keys: Vec<String>,
}

/// Errors from writing a field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FieldWriteError {
    /// Only a map can be written to the whole attributes or resource.
    #[error("cannot set {0} root to a value that is not a map")]
    NotAMap(&'static str),
}

impl Field {
    /// The whole body.
    pub fn body() -> Self {
        Self {
            root: Root::Body,
            keys: Vec::new(),
        }
    }

    /// The whole attributes map.
    pub fn attributes() -> Self {
        Self {
            root: Root::Attributes,
            keys: Vec::new(),
        }
    }

    /// `body.<key>`.
    pub fn body_key(key: &str) -> Self {
        Self {
            root: Root::Body,
            keys: vec![key.to_owned()],
        }
    }

    /// Parses field syntax. A path without a known prefix is below the body.
    ///
    /// # Errors
    /// Empty keys, unclosed brackets or quotes.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts = split(text)?;
        let (root, rest) = match parts.first().map(String::as_str) {
            Some("body" | "$body" | "$record" | "$") => (Root::Body, &parts[1..]),
            Some("attributes" | "$attributes" | "$labels") => (Root::Attributes, &parts[1..]),
            Some("resource" | "$resource") => (Root::Resource, &parts[1..]),
            Some(_) => (Root::Body, &parts[..]),
            None => return Err(format!("invalid field {text:?}: empty")),
        };
        Ok(Self {
            root,
            keys: rest.to_vec(),
        })
    }

    fn root_map<'a>(&self, entry: &'a Entry) -> Option<&'a [KeyValue]> {
        match self.root {
            Root::Body => value::as_map(&entry.body).map(Vec::as_slice),
            Root::Attributes => Some(&entry.attributes),
            Root::Resource => Some(&entry.resource),
        }
    }

    /// Reads the field; `None` when it does not exist.
    pub fn get<'a>(&self, entry: &'a Entry) -> Option<std::borrow::Cow<'a, AnyValue>> {
        use std::borrow::Cow;
        let Some((first, rest)) = self.keys.split_first() else {
            return Some(match self.root {
                Root::Body => Cow::Borrowed(&entry.body),
                Root::Attributes => Cow::Owned(value::map(entry.attributes.clone())),
                Root::Resource => Cow::Owned(value::map(entry.resource.clone())),
            });
        };
        let mut current = value::get(self.root_map(entry)?, first)?;
        for key in rest {
            current = value::get(value::as_map(current)?, key)?;
        }
        Some(Cow::Borrowed(current))
    }

    /// True when the field exists.
    pub fn exists(&self, entry: &Entry) -> bool {
        self.get(entry).is_some()
    }

    fn root_map_mut<'a>(&self, entry: &'a mut Entry) -> &'a mut Vec<KeyValue> {
        match self.root {
            Root::Body => {
                if value::as_map(&entry.body).is_none() {
                    entry.body = value::map(Vec::new());
                }
                value::as_map_mut(&mut entry.body).expect("body is a map")
            }
            Root::Attributes => &mut entry.attributes,
            Root::Resource => &mut entry.resource,
        }
    }

    /// The map at this field's keys, creating maps (and replacing non-maps) on the way.
    fn map_mut<'a>(entry: &'a mut Entry, field: &Self, keys: &[String]) -> &'a mut Vec<KeyValue> {
        let mut current = field.root_map_mut(entry);
        for key in keys {
            let exists_as_map =
                value::get(current, key).is_some_and(|v| value::as_map(v).is_some());
            if !exists_as_map {
                value::insert(current, key.clone(), value::map(Vec::new()));
            }
            current = value::as_map_mut(value::get_mut(current, key).expect("inserted"))
                .expect("is a map");
        }
        current
    }

    /// Writes the field. A map value merges into the map at the field (key by key); any
    /// other value replaces what was there.
    ///
    /// # Errors
    /// A non-map value written to the whole attributes or resource.
    pub fn set(&self, entry: &mut Entry, new: AnyValue) -> Result<(), FieldWriteError> {
        let new = match value::into_map(new) {
            Ok(entries) => {
                let target = Self::map_mut(entry, self, &self.keys);
                value::merge(target, entries);
                return Ok(());
            }
            Err(other) => other,
        };
        let Some((last, parents)) = self.keys.split_last() else {
            return match self.root {
                Root::Body => {
                    entry.body = new;
                    Ok(())
                }
                Root::Attributes => Err(FieldWriteError::NotAMap("attributes")),
                Root::Resource => Err(FieldWriteError::NotAMap("resource")),
            };
        };
        let target = Self::map_mut(entry, self, parents);
        value::insert(target, last.clone(), new);
        Ok(())
    }

    /// Removes the field and returns what it held; the whole attributes/resource clears
    /// the map, the whole body becomes nil.
    pub fn delete(&self, entry: &mut Entry) -> Option<AnyValue> {
        let Some((last, parents)) = self.keys.split_last() else {
            return Some(match self.root {
                Root::Body => std::mem::replace(&mut entry.body, value::nil()),
                Root::Attributes => value::map(std::mem::take(&mut entry.attributes)),
                Root::Resource => value::map(std::mem::take(&mut entry.resource)),
            });
        };
        let mut current: &mut Vec<KeyValue> = match self.root {
            Root::Body => value::as_map_mut(&mut entry.body)?,
            Root::Attributes => &mut entry.attributes,
            Root::Resource => &mut entry.resource,
        };
        for key in parents {
            current = value::as_map_mut(value::get_mut(current, key)?)?;
        }
        value::remove(current, last)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.root {
            Root::Body => "body",
            Root::Attributes => "attributes",
            Root::Resource => "resource",
        })?;
        for key in &self.keys {
            if key.contains('.') || key.contains('[') {
                write!(f, "[\"{key}\"]")?;
            } else {
                write!(f, ".{key}")?;
            }
        }
        Ok(())
    }
}

impl<'de> serde::Deserialize<'de> for Field {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Splits `a.b["c.d"]['e']` into `[a, b, c.d, e]`.
fn split(text: &str) -> Result<Vec<String>, String> {
    let bad = |why: &str| format!("invalid field {text:?}: {why}");
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    let mut after_bracket = false;
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                if current.is_empty() && !after_bracket {
                    return Err(bad("empty key"));
                }
                if !current.is_empty() {
                    parts.push(std::mem::take(&mut current));
                }
                after_bracket = false;
            }
            '[' => {
                if !current.is_empty() {
                    parts.push(std::mem::take(&mut current));
                }
                let Some(quote @ ('"' | '\'')) = chars.next() else {
                    return Err(bad("bracketed keys must be quoted"));
                };
                let mut key = String::new();
                loop {
                    match chars.next() {
                        Some(c) if c == quote => break,
                        Some(c) => key.push(c),
                        None => return Err(bad("unclosed quote")),
                    }
                }
                if chars.next() != Some(']') {
                    return Err(bad("unclosed bracket"));
                }
                parts.push(key);
                after_bracket = true;
            }
            c => {
                if after_bracket {
                    return Err(bad("expected '.' or '[' after ']'"));
                }
                current.push(c);
            }
        }
    }
    if !current.is_empty() {
        parts.push(current);
    } else if !after_bracket {
        return Err(bad("empty key"));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prefixes_brackets_and_bare_paths() {
        let f = Field::parse(r#"attributes["http.method"]"#).unwrap();
        assert_eq!(f.root, Root::Attributes);
        assert_eq!(f.keys, vec!["http.method"]);
        let f = Field::parse("body.a.b").unwrap();
        assert_eq!((f.root, f.keys.len()), (Root::Body, 2));
        let f = Field::parse("a.b").unwrap();
        assert_eq!(
            (f.root, f.keys),
            (Root::Body, vec!["a".to_owned(), "b".to_owned()])
        );
        assert_eq!(Field::parse("resource").unwrap().keys.len(), 0);
        assert!(Field::parse("body..a").is_err());
        assert!(Field::parse("body[a]").is_err());
        assert!(Field::parse(r#"body["a"#).is_err());
        assert_eq!(
            Field::parse(r#"body.a["b.c"]"#).unwrap().to_string(),
            r#"body.a["b.c"]"#
        );
    }

    #[test]
    fn set_merges_maps_and_creates_parents() {
        let mut e = Entry::new(value::string("raw"), 0);
        Field::parse("body.a.b")
            .unwrap()
            .set(&mut e, value::string("x"))
            .unwrap();
        let got = Field::parse("body.a.b").unwrap();
        assert_eq!(got.get(&e).unwrap().into_owned(), value::string("x"));
        Field::attributes()
            .set(
                &mut e,
                value::map(vec![KeyValue {
                    key_strindex: 0,
                    key: "k".into(),
                    value: Some(value::string("v")),
                }]),
            )
            .unwrap();
        assert_eq!(e.attributes.len(), 1);
        assert!(Field::attributes().set(&mut e, value::string("x")).is_err());
        assert_eq!(
            Field::parse("attributes.k").unwrap().delete(&mut e),
            Some(value::string("v"))
        );
        assert!(Field::parse("attributes.k")
            .unwrap()
            .delete(&mut e)
            .is_none());
    }
}
