//! `assign_keys`: turns a list field into a map, the configured `keys` naming its values
//! in order.
//!
//! ```yaml
//! - type: assign_keys
//!   field: attributes.input
//!   keys: [foo, bar]
//! ```

use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use serde::Deserialize;

use super::build::{common, required, Section};
use super::entry::Entry;
use super::field::Field;
use super::{value, Kind, Transform};
use crate::config::FieldError;

/// The operator's own keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct AssignKeysConfig {
    /// The names for the list's values, in order (required, non-empty).
    keys: Vec<String>,
}

/// The operator.
#[derive(Debug)]
pub struct AssignKeys {
    /// The list field, replaced by the map.
    pub field: Field,
    /// The names, one per list value.
    pub keys: Vec<String>,
}

/// Reads `field`, `keys` and the common keys.
pub(super) fn build(mut s: Section) -> Result<Kind, FieldError> {
    let (cond, on_error) = common(&mut s)?;
    let field = required(s.take_field("field")?, "field")?;
    let c: AssignKeysConfig = s.rest()?;
    if c.keys.is_empty() {
        return Err(FieldError::at(
            &["keys"],
            "assign_keys missing required field keys",
        ));
    }
    Ok(Kind::Transform {
        op: Box::new(AssignKeys {
            field,
            keys: c.keys,
        }),
        cond,
        on_error,
    })
}

impl Transform for AssignKeys {
    fn apply(&self, entry: &mut Entry) -> Result<(), String> {
        let current = self.field.get(entry).ok_or_else(|| {
            format!(
                "apply assign_keys: field {} does not exist on entry",
                self.field
            )
        })?;
        let Some(any_value::Value::ArrayValue(list)) = &current.value else {
            return Err(format!(
                "apply assign_keys: couldn't convert field {} to []any",
                self.field
            ));
        };
        if list.values.len() != self.keys.len() {
            return Err(format!(
                "apply assign_keys: field {} contains {} values while expected keys are [{}] contain {} keys",
                self.field,
                list.values.len(),
                self.keys.join(" "),
                self.keys.len()
            ));
        }
        let map: Vec<KeyValue> = self
            .keys
            .iter()
            .zip(&list.values)
            .map(|(k, v)| KeyValue {
                key_strindex: 0,
                key: k.clone(),
                value: Some(v.clone()),
            })
            .collect();
        // The list is replaced, not merged into.
        self.field.delete(entry);
        self.field
            .set(entry, value::map(map))
            .map_err(|e| format!("apply assign_keys: {e}"))
    }
}
