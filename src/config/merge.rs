//! Merging sources left to right, as otelcol does: maps merge key by key, everything else
//! (scalars, lists, an explicit null) replaces what came before.

use yaml_serde::{Mapping, Value};

/// Merges `overlay` onto `base`.
pub fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Mapping(base), Value::Mapping(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// Turns top-level keys written as paths (`exporters::debug::verbosity: detailed`, the
/// `yaml:` source and `--set` form) into nested maps. Returns the nested value and, for
/// each rewritten key, its path (for locations).
pub fn nest_paths(value: Value) -> Value {
    let Value::Mapping(map) = value else {
        return value;
    };
    let mut out = Value::Mapping(Mapping::new());
    for (key, item) in map {
        let nested = match key.as_str() {
            Some(text) if text.contains("::") => {
                let mut parts: Vec<&str> = text.split("::").collect();
                let last = parts.pop().unwrap_or_default();
                let mut inner = Mapping::new();
                inner.insert(Value::String(last.to_owned()), item);
                let mut acc = Value::Mapping(inner);
                for part in parts.into_iter().rev() {
                    let mut m = Mapping::new();
                    m.insert(Value::String(part.to_owned()), acc);
                    acc = Value::Mapping(m);
                }
                acc
            }
            _ => {
                let mut m = Mapping::new();
                m.insert(key, item);
                Value::Mapping(m)
            }
        };
        merge(&mut out, nested);
    }
    out
}

/// Turns `--set key=value` into a YAML text `key: value` with `.` read as `::`.
///
/// # Errors
/// `missing equal sign` when there is no `=`.
pub fn set_to_yaml(set: &str) -> Result<String, String> {
    let (key, value) = set
        .split_once('=')
        .ok_or_else(|| format!("--set {set:?}: missing equal sign"))?;
    Ok(format!("{}: {value}", key.replace('.', "::")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y(text: &str) -> Value {
        yaml_serde::from_str(text).unwrap()
    }

    #[test]
    fn maps_merge_lists_and_scalars_replace_null_deletes() {
        let mut base = y("a: {x: 1, y: [1, 2]}\nb: keep\nc: {z: 1}");
        merge(&mut base, y("a: {y: [3], w: 2}\nc:"));
        assert_eq!(base, y("a: {x: 1, y: [3], w: 2}\nb: keep\nc:"));
    }

    #[test]
    fn paths_nest() {
        let v = nest_paths(y("exporters::debug::verbosity: detailed\nplain: 1"));
        assert_eq!(v, y("exporters: {debug: {verbosity: detailed}}\nplain: 1"));
    }

    #[test]
    fn set_syntax() {
        assert_eq!(
            set_to_yaml("processors.batch.timeout=2s").unwrap(),
            "processors::batch::timeout: 2s"
        );
        assert_eq!(set_to_yaml("a::b=x=y").unwrap(), "a::b: x=y");
        assert!(set_to_yaml("nope")
            .unwrap_err()
            .contains("missing equal sign"));
    }
}
