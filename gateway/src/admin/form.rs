//! Admin API request bodies: JSON, `application/x-www-form-urlencoded` and
//! `multipart/form-data`, with Kong's form key nesting (`config.host=…`, `a[]=…`, `a[1]=…`)
//! and conversion of string values by field type.
//!
//! The multipart reader is small and local: Admin API forms are short field lists (the seeds
//! upload one Lua file), so a streaming multipart crate would add a dependency for no gain.

use serde_json::{Map, Value};

use crate::declarative::schema::{self, Field, Ty};
use crate::declarative::Kind;

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FormError {
    /// The body is not what its Content-Type says.
    #[error("{0}")]
    Malformed(String),
}

/// Deepest form key accepted (`a.b[1].c` is 4 steps); deeper keys are refused.
pub const MAX_KEY_DEPTH: usize = 32;

/// Largest array index accepted in a form key (`a[1000]`); larger ones are refused, since
/// the array is filled up to the index.
pub const MAX_KEY_INDEX: usize = 1000;

/// Parses a request body into a JSON object according to its Content-Type.
pub fn parse_body(
    content_type: Option<&str>,
    body: &[u8],
    kind: Option<Kind>,
) -> Result<Map<String, Value>, FormError> {
    let ct = content_type.unwrap_or_default().to_ascii_lowercase();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let pairs = if ct.starts_with("application/x-www-form-urlencoded") {
        form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    } else if ct.starts_with("multipart/form-data") {
        let boundary = ct
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("boundary="))
            .next()
            .map(|b| b.trim_matches('"').to_owned())
            .ok_or_else(|| FormError::Malformed("missing multipart boundary".into()))?;
        // The boundary is case-sensitive; take it from the original header.
        let original = content_type.unwrap_or_default();
        let start = original.to_ascii_lowercase().find(&boundary).unwrap_or(0);
        let boundary = &original[start..start + boundary.len()];
        multipart(body, boundary)?
    } else {
        return match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(FormError::Malformed("expected a JSON object".into())),
            Err(e) => Err(FormError::Malformed(format!("Cannot parse JSON body: {e}"))),
        };
    };
    nest(pairs, kind)
}

fn multipart(body: &[u8], boundary: &str) -> Result<Vec<(String, String)>, FormError> {
    let text = String::from_utf8_lossy(body);
    let delimiter = format!("--{boundary}");
    let mut out = Vec::new();
    for part in text.split(delimiter.as_str()).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let part = part.strip_prefix("\r\n").unwrap_or(part);
        let Some((head, content)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let content = content.strip_suffix("\r\n").unwrap_or(content);
        let name = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))
            .and_then(|l| {
                l.split(';')
                    .filter_map(|p| p.trim().strip_prefix("name="))
                    .next()
                    .map(|n| n.trim_matches('"').to_owned())
            })
            .ok_or_else(|| FormError::Malformed("multipart part without a name".into()))?;
        out.push((name, content.to_owned()));
    }
    Ok(out)
}

/// One step of a form key: `a.b[1][]` → `a`, `b`, index 1, append.
#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
    Append,
}

fn steps(key: &str) -> Vec<Step> {
    let mut out = Vec::new();
    for segment in key.split('.') {
        let (name, mut rest) = match segment.find('[') {
            Some(i) => (&segment[..i], &segment[i..]),
            None => (segment, ""),
        };
        if !name.is_empty() {
            out.push(Step::Key(name.to_owned()));
        }
        while let Some(inner) = rest.strip_prefix('[') {
            let Some(end) = inner.find(']') else { break };
            let index = &inner[..end];
            out.push(match index.parse::<usize>() {
                Ok(i) => Step::Index(i),
                Err(_) if index.is_empty() => Step::Append,
                Err(_) => Step::Key(index.to_owned()),
            });
            rest = &inner[end + 1..];
        }
    }
    out
}

fn insert(target: &mut Value, steps: &[Step], value: Value) {
    let Some((first, rest)) = steps.split_first() else {
        *target = value;
        return;
    };
    match first {
        Step::Key(k) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(map) = target {
                let slot = map.entry(k.clone()).or_insert(Value::Null);
                if rest.is_empty() {
                    // A repeated key collects its values into an array.
                    match slot {
                        Value::Null => *slot = value,
                        Value::Array(items) => items.push(value),
                        other => *other = Value::Array(vec![other.clone(), value]),
                    }
                } else {
                    insert(slot, rest, value);
                }
            }
        }
        Step::Index(i) => {
            if !target.is_array() {
                *target = Value::Array(Vec::new());
            }
            if let Value::Array(items) = target {
                // Kong's form indexes are 1-based; a 0 index is taken as the first slot.
                let idx = i.saturating_sub(1);
                while items.len() <= idx {
                    items.push(Value::Null);
                }
                insert(&mut items[idx], rest, value);
            }
        }
        Step::Append => {
            if !target.is_array() {
                *target = Value::Array(Vec::new());
            }
            if let Value::Array(items) = target {
                items.push(Value::Null);
                if let Some(last) = items.last_mut() {
                    insert(last, rest, value);
                }
            }
        }
    }
}

fn fields_of(kind: Kind) -> &'static [Field] {
    match kind {
        Kind::Services => schema::SERVICE,
        Kind::Routes => schema::ROUTE,
        Kind::Consumers => schema::CONSUMER,
        Kind::Plugins => schema::PLUGIN,
        Kind::Upstreams => schema::UPSTREAM,
        Kind::Targets => schema::TARGET,
        Kind::CaCertificates => schema::CA_CERTIFICATE,
        Kind::Certificates => schema::CERTIFICATE,
        Kind::Snis => schema::SNI,
    }
}

/// Converts a form string by the field's type.
fn convert(ty: Option<Ty>, raw: String) -> Value {
    if raw.is_empty() {
        return Value::Null;
    }
    match ty {
        Some(Ty::Int(..) | Ty::IntOneOf(_)) => {
            raw.parse::<i64>().map_or(Value::from(raw), Value::from)
        }
        Some(Ty::Bool) => match raw.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::from(raw),
        },
        Some(Ty::StrArray | Ty::SetOf(_)) => Value::Array(vec![Value::from(raw)]),
        Some(_) => Value::from(raw),
        // Plugin config fields: booleans and numbers by their text.
        None => match raw.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => raw
                .parse::<i64>()
                .map(Value::from)
                .or_else(|_| raw.parse::<f64>().map(Value::from))
                .unwrap_or(Value::from(raw)),
        },
    }
}

/// Builds the nested object of form pairs.
fn nest(pairs: Vec<(String, String)>, kind: Option<Kind>) -> Result<Map<String, Value>, FormError> {
    let mut root = Value::Object(Map::new());
    for (key, raw) in pairs {
        let steps = steps(&key);
        if steps.len() > MAX_KEY_DEPTH {
            return Err(FormError::Malformed(format!(
                "form key '{key}' nests deeper than {MAX_KEY_DEPTH} levels"
            )));
        }
        if steps
            .iter()
            .any(|s| matches!(s, Step::Index(i) if *i > MAX_KEY_INDEX))
        {
            return Err(FormError::Malformed(format!(
                "form key '{key}' has an index above {MAX_KEY_INDEX}"
            )));
        }
        let ty = match (kind, steps.first()) {
            (Some(kind), Some(Step::Key(top))) if steps.len() == 1 => {
                fields_of(kind).iter().find(|f| f.name == top).map(|f| f.ty)
            }
            (Some(_), Some(Step::Key(_)))
                if steps.len() == 2 && matches!(steps[1], Step::Append | Step::Index(_)) =>
            {
                Some(Ty::Str)
            }
            (Some(_), Some(Step::Key(top))) if top != "config" => Some(Ty::Str),
            _ => None,
        };
        let ty = if matches!(ty, Some(Ty::StrArray | Ty::SetOf(_))) && steps.len() > 1 {
            Some(Ty::Str)
        } else {
            ty
        };
        let value = convert(ty, raw);
        insert(&mut root, &steps, value);
    }
    match root {
        Value::Object(map) => Ok(map),
        _ => Ok(Map::new()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn form(body: &str, kind: Kind) -> Value {
        Value::Object(
            parse_body(
                Some("application/x-www-form-urlencoded"),
                body.as_bytes(),
                Some(kind),
            )
            .unwrap(),
        )
    }

    #[test]
    fn nests_keys_and_converts_by_type() {
        let v = form(
            "name=tcp-log&config.host=h&config.port=54525&config.tls=false&config.propagation.inject[]=w3c&enabled=false&protocols=http",
            Kind::Plugins,
        );
        assert_eq!(
            v,
            json!({"name": "tcp-log", "enabled": false, "protocols": ["http"],
                   "config": {"host": "h", "port": 54525, "tls": false, "propagation": {"inject": ["w3c"]}}})
        );
        let v = form(
            "name=s&host=h&port=8080&retries=&tags[]=a&tags[]=b",
            Kind::Services,
        );
        assert_eq!(
            v,
            json!({"name": "s", "host": "h", "port": 8080, "retries": null, "tags": ["a", "b"]})
        );
        let v = form(
            "paths[1]=/a&paths[2]=/b&service.id=x&headers.x-version=v1",
            Kind::Routes,
        );
        assert_eq!(
            v,
            json!({"paths": ["/a", "/b"], "service": {"id": "x"}, "headers": {"x-version": "v1"}})
        );
    }

    #[test]
    fn multipart_file_parts_are_values() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\npost-function\r\n--XyZ\r\nContent-Disposition: form-data; name=\"config.access[1]\"; filename=\"custom-span.lua\"\r\nContent-Type: application/octet-stream\r\n\r\nlocal span = 1\nreturn span\r\n--XyZ--\r\n";
        let v = parse_body(
            Some("multipart/form-data; boundary=XyZ"),
            body.as_bytes(),
            Some(Kind::Plugins),
        )
        .unwrap();
        assert_eq!(
            Value::Object(v),
            json!({"name": "post-function", "config": {"access": ["local span = 1\nreturn span"]}})
        );
    }

    #[test]
    fn json_bodies_and_errors() {
        let v = parse_body(
            Some("application/json"),
            br#"{"name":"opentelemetry"}"#,
            None,
        )
        .unwrap();
        assert_eq!(v["name"], "opentelemetry");
        assert!(parse_body(Some("application/json"), b"{nope", None).is_err());
        assert!(parse_body(None, b"", None).unwrap().is_empty());
    }

    #[test]
    fn huge_indexes_and_deep_keys_are_refused_without_allocating() {
        // Found by the form property test: `a[n]` filled the array up to n.
        let body = format!("tags[{}]=x", usize::MAX / 2);
        let err = parse_body(
            Some("application/x-www-form-urlencoded"),
            body.as_bytes(),
            Some(Kind::Services),
        )
        .unwrap_err();
        assert!(err.to_string().contains("index above 1000"), "{err}");
        let deep = format!("{}=x", vec!["a"; MAX_KEY_DEPTH + 1].join("."));
        let err = parse_body(
            Some("application/x-www-form-urlencoded"),
            deep.as_bytes(),
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("deeper than 32"), "{err}");
        let v = form(&format!("tags[{MAX_KEY_INDEX}]=x"), Kind::Services);
        assert_eq!(v["tags"].as_array().map(Vec::len), Some(MAX_KEY_INDEX));
    }
}
