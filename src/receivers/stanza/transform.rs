//! Transformers that edit fields: `move`, `copy`, `add`, `remove`, `retain`, `flatten`.

use opentelemetry_proto::tonic::common::v1::KeyValue;

use super::entry::Entry;
use super::expr::ValueSpec;
use super::field::{Field, Root};
use super::value;
use super::Transform;

/// `move`: `from` → `to`.
#[derive(Debug)]
pub struct Move {
    /// Source field.
    pub from: Field,
    /// Destination field.
    pub to: Field,
}

impl Transform for Move {
    fn apply(&self, entry: &mut Entry) -> Result<(), String> {
        let value = self
            .from
            .delete(entry)
            .ok_or_else(|| format!("move: field does not exist: {}", self.from))?;
        self.to.set(entry, value).map_err(|e| format!("move: {e}"))
    }
}

/// `copy`: `from` → `to`, keeping the source.
#[derive(Debug)]
pub struct Copy {
    /// Source field.
    pub from: Field,
    /// Destination field.
    pub to: Field,
}

impl Transform for Copy {
    fn apply(&self, entry: &mut Entry) -> Result<(), String> {
        let value = self
            .from
            .get(entry)
            .ok_or_else(|| format!("copy: from field does not exist: {}", self.from))?
            .into_owned();
        self.to.set(entry, value).map_err(|e| format!("copy: {e}"))
    }
}

/// `add`: sets `field` to a static value or `EXPR(...)`.
#[derive(Debug)]
pub struct Add {
    /// Destination field.
    pub field: Field,
    /// The value.
    pub value: ValueSpec,
}

impl Transform for Add {
    fn apply(&self, entry: &mut Entry) -> Result<(), String> {
        let value = self.value.value(entry).map_err(|e| format!("add: {e}"))?;
        self.field
            .set(entry, value)
            .map_err(|e| format!("add: {e}"))
    }
}

/// `remove`: deletes `field` (the whole attributes or resource clears the map).
#[derive(Debug)]
pub struct Remove {
    /// The field.
    pub field: Field,
}

impl Transform for Remove {
    fn apply(&self, entry: &mut Entry) -> Result<(), String> {
        self.field
            .delete(entry)
            .map(drop)
            .ok_or_else(|| format!("remove: field does not exist: {}", self.field))
    }
}

/// `retain`: keeps only `fields`; a part of the entry none of them names is untouched.
#[derive(Debug)]
pub struct Retain {
    /// The fields to keep.
    pub fields: Vec<Field>,
}

impl Transform for Retain {
    fn apply(&self, entry: &mut Entry) -> Result<(), String> {
        let mut kept = Entry {
            body: entry.body.clone(),
            ..Entry::default()
        };
        let mut touched = [false; 3];
        for field in &self.fields {
            let slot = match field.root {
                Root::Body => 0,
                Root::Attributes => 1,
                Root::Resource => 2,
            };
            if !touched[slot] {
                touched[slot] = true;
                match field.root {
                    Root::Body => kept.body = value::map(Vec::new()),
                    Root::Attributes | Root::Resource => {}
                }
            }
            if let Some(v) = field.get(entry) {
                let v = v.into_owned();
                field
                    .set(&mut kept, v)
                    .map_err(|e| format!("retain: {e}"))?;
            }
        }
        if touched[0] {
            entry.body = kept.body;
        }
        if touched[1] {
            entry.attributes = kept.attributes;
        }
        if touched[2] {
            entry.resource = kept.resource;
        }
        Ok(())
    }
}

/// `flatten`: moves the children of a body map up into its parent.
#[derive(Debug)]
pub struct Flatten {
    /// The map to dissolve; a body field below the root.
    pub field: Field,
}

impl Transform for Flatten {
    fn apply(&self, entry: &mut Entry) -> Result<(), String> {
        let Some(current) = self.field.get(entry) else {
            return Err(format!(
                "apply flatten: field does not exist: {}",
                self.field
            ));
        };
        if value::as_map(&current).is_none() {
            return Err(format!(
                "apply flatten: field {} is of type {}, not a map",
                self.field,
                value::go_type(&current)
            ));
        }
        let children = self.field.delete(entry).map(value::into_map);
        let Some(Ok(children)) = children else {
            return Ok(());
        };
        let parent = Field {
            root: self.field.root,
            keys: self.field.keys[..self.field.keys.len() - 1].to_vec(),
        };
        let merged: Vec<KeyValue> = children;
        parent
            .set(entry, value::map(merged))
            .map_err(|e| format!("apply flatten: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry_with_body(json: &str) -> Entry {
        Entry::new(value::map(value::parse_json_object(json, true).unwrap()), 0)
    }

    fn f(s: &str) -> Field {
        Field::parse(s).unwrap()
    }

    #[test]
    fn move_copy_add_remove() {
        let mut e = entry_with_body(r#"{"a":{"b":1},"c":"x"}"#);
        Move {
            from: f("body.a"),
            to: f("attributes"),
        }
        .apply(&mut e)
        .unwrap();
        assert_eq!(
            value::get(&e.attributes, "b").unwrap().value,
            Some(opentelemetry_proto::tonic::common::v1::any_value::Value::IntValue(1))
        );
        let err = Move {
            from: f("body.a"),
            to: f("body.z"),
        }
        .apply(&mut e)
        .unwrap_err();
        assert_eq!(err, "move: field does not exist: body.a");
        Copy {
            from: f("body.c"),
            to: f(r#"attributes["c.copy"]"#),
        }
        .apply(&mut e)
        .unwrap();
        assert_eq!(
            value::get(&e.attributes, "c.copy"),
            Some(&value::string("x"))
        );
        assert!(f("body.c").exists(&e));
        Add {
            field: f("resource.host"),
            value: ValueSpec::Static(value::string("h")),
        }
        .apply(&mut e)
        .unwrap();
        assert_eq!(value::get(&e.resource, "host"), Some(&value::string("h")));
        Remove {
            field: f("attributes"),
        }
        .apply(&mut e)
        .unwrap();
        assert!(e.attributes.is_empty());
        assert_eq!(
            Remove {
                field: f("body.nope")
            }
            .apply(&mut e)
            .unwrap_err(),
            "remove: field does not exist: body.nope"
        );
    }

    #[test]
    fn retain_and_flatten() {
        let mut e = entry_with_body(r#"{"a":1,"b":2,"n":{"x":1,"y":2}}"#);
        e.attributes.push(KeyValue {
            key_strindex: 0,
            key: "k".into(),
            value: Some(value::string("v")),
        });
        Flatten { field: f("body.n") }.apply(&mut e).unwrap();
        let body = value::as_map(&e.body).unwrap();
        assert!(value::get(body, "x").is_some() && value::get(body, "n").is_none());
        assert!(Flatten { field: f("body.a") }
            .apply(&mut e)
            .unwrap_err()
            .contains("not a map"));
        Retain {
            fields: vec![f("body.a"), f("body.x")],
        }
        .apply(&mut e)
        .unwrap();
        assert_eq!(value::as_map(&e.body).unwrap().len(), 2);
        assert_eq!(
            e.attributes.len(),
            1,
            "attributes untouched when no attribute field is named"
        );
    }
}
