//! `${…}` expansion in string values, as otelcol's resolver does it.
//!
//! - `${env:NAME}` and `${NAME}`: the variable; `${env:NAME:-default}`: `default` only when
//!   NAME is unset (a set-but-empty variable stays empty).
//! - `$$` becomes `$`, so `$${env:X}` is the literal text `${env:X}`; a bare `$1` is left.
//! - References nest (`${env:${env:WHICH}}`, innermost first) and expanded text is expanded
//!   again, up to a depth limit.
//! - A reference that is the whole value is typed as YAML (`4317` an int, `true` a bool);
//!   embedded in a longer string it is spliced as text.
//! - Keys are never expanded.

use yaml_serde::Value;

use super::env::Env;

/// How deep expanded text may keep producing references (otelcol allows 1000 rounds; no
/// real config needs more than a handful, and recursion here uses the stack).
const MAX_DEPTH: usize = 100;

/// Why a value could not be expanded.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// `${env:1X}` and friends.
    #[error("environment variable \"{0}\" has invalid name: must match ^[a-zA-Z_][a-zA-Z0-9_]*$")]
    InvalidName(String),
    /// `${foo:bar}` for a scheme other than env.
    #[error("unsupported scheme \"{0}\" in \"${{{0}:…}}\": only env is available")]
    UnsupportedScheme(String),
    /// `${` without a closing `}`.
    #[error("unterminated \"${{\" in {0:?}")]
    Unterminated(String),
    /// Expansion kept producing references.
    #[error("too many recursive expansions")]
    TooDeep,
}

/// Expands every string value under `value` in place. `path` tracks keys for errors and
/// `unset` collects variables referenced but not set (for a warning).
///
/// # Errors
/// The key path and the problem.
pub fn expand_value(
    value: &mut Value,
    env: &dyn Env,
    path: &mut Vec<String>,
    unset: &mut Vec<String>,
) -> Result<(), (Vec<String>, ExpandError)> {
    match value {
        Value::String(text) => {
            if let Some(expanded) =
                expand_scalar(text, env, unset).map_err(|e| (path.clone(), e))?
            {
                *value = expanded;
            }
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(i.to_string());
                expand_value(item, env, path, unset)?;
                path.pop();
            }
        }
        Value::Mapping(map) => {
            for (key, item) in map.iter_mut() {
                path.push(key_text(key));
                expand_value(item, env, path, unset)?;
                path.pop();
            }
        }
        Value::Tagged(tagged) => expand_value(&mut tagged.value, env, path, unset)?,
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

/// A mapping key as text, for key paths.
pub(crate) fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_owned(),
        other => format!("{other:?}"),
    }
}

/// Expands one string. `None` when it contains no `$` (nothing to do).
fn expand_scalar(
    text: &str,
    env: &dyn Env,
    unset: &mut Vec<String>,
) -> Result<Option<Value>, ExpandError> {
    if !text.contains('$') {
        return Ok(None);
    }
    // A whole-value reference keeps YAML typing.
    if let Some(inner) = whole_reference(text) {
        let resolved = resolve(inner, env, unset, 0)?;
        return Ok(Some(match resolved {
            None => Value::Null,
            Some(v) => typed(&v),
        }));
    }
    Ok(Some(Value::String(expand_text(text, env, unset, 0)?)))
}

/// `Some(inner)` when `text` is exactly one `${inner}` reference.
fn whole_reference(text: &str) -> Option<&str> {
    let inner = text.strip_prefix("${")?.strip_suffix('}')?;
    let (end, _) = find_close(text, 2)?;
    (end == text.len() - 1).then_some(inner)
}

/// Index of the `}` closing the reference whose body starts at `start`, skipping nested
/// references; also whether it nests.
fn find_close(text: &str, start: usize) -> Option<(usize, bool)> {
    let bytes = text.as_bytes();
    let mut depth = 0;
    let mut nested = false;
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                nested = true;
                i += 2;
                continue;
            }
            b'}' if depth == 0 => return Some((i, nested)),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Expands references and `$$` escapes in `text`, splicing values as text.
fn expand_text(
    text: &str,
    env: &dyn Env,
    unset: &mut Vec<String>,
    depth: usize,
) -> Result<String, ExpandError> {
    if depth > MAX_DEPTH {
        return Err(ExpandError::TooDeep);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if after.starts_with('{') {
            let local = &rest[pos..];
            let (close, _) =
                find_close(local, 2).ok_or_else(|| ExpandError::Unterminated(text.to_owned()))?;
            let inner = &local[2..close];
            if let Some(value) = resolve(inner, env, unset, depth)? {
                out.push_str(&value);
            }
            rest = &local[close + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Resolves the body of one reference (`env:NAME:-default`, `NAME`); nested references in
/// the body are expanded first, and the value found is expanded again.
fn resolve(
    inner: &str,
    env: &dyn Env,
    unset: &mut Vec<String>,
    depth: usize,
) -> Result<Option<String>, ExpandError> {
    if depth > MAX_DEPTH {
        return Err(ExpandError::TooDeep);
    }
    let inner = if inner.contains("${") {
        expand_text(inner, env, unset, depth + 1)?
    } else {
        inner.to_owned()
    };
    let (scheme, body) = match inner.split_once(':') {
        Some((s, b)) if !s.is_empty() && !b.starts_with('-') => (s, b),
        _ => ("env", inner.as_str()),
    };
    if scheme != "env" {
        return Err(ExpandError::UnsupportedScheme(scheme.to_owned()));
    }
    let (name, default) = match body.split_once(":-") {
        Some((n, d)) => (n, Some(d)),
        None => (body, None),
    };
    let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(ExpandError::InvalidName(name.to_owned()));
    }
    let value = match env.get(name) {
        Some(v) => v,
        None => match default {
            Some(d) => d.to_owned(),
            None => {
                unset.push(name.to_owned());
                return Ok(None);
            }
        },
    };
    if value.contains('$') {
        return expand_text(&value, env, unset, depth + 1).map(Some);
    }
    Ok(Some(value))
}

/// An expanded whole value, typed as YAML; text that is not YAML stays a string.
fn typed(text: &str) -> Value {
    match yaml_serde::from_str::<Value>(text) {
        Ok(Value::Null)
            if !text.trim().is_empty() && text.trim() != "null" && text.trim() != "~" =>
        {
            Value::String(text.to_owned())
        }
        Ok(Value::Null) if text.is_empty() => Value::String(String::new()),
        Ok(v) => v,
        Err(_) => Value::String(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env() -> HashMap<String, String> {
        [
            ("TOKEN", "abc"),
            ("PORT", "4317"),
            ("FLAG", "true"),
            ("EMPTY", ""),
            ("WHICH", "TOKEN"),
            ("INDIRECT", "${env:TOKEN}"),
            ("DOLLARS", "a$$b"),
            ("MAP", "{a: 1}"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn expand(text: &str) -> Result<Value, ExpandError> {
        let mut unset = Vec::new();
        Ok(expand_scalar(text, &env(), &mut unset)?.unwrap_or_else(|| Value::String(text.into())))
    }

    fn s(text: &str) -> Value {
        Value::String(text.to_owned())
    }

    #[test]
    fn env_forms() {
        assert_eq!(expand("${env:TOKEN}").unwrap(), s("abc"));
        assert_eq!(expand("${TOKEN}").unwrap(), s("abc"));
        assert_eq!(
            expand("Api-Token ${env:TOKEN}").unwrap(),
            s("Api-Token abc")
        );
        assert_eq!(expand("x${TOKEN}y${TOKEN}").unwrap(), s("xabcyabc"));
    }

    #[test]
    fn default_only_when_unset() {
        assert_eq!(expand("${env:NOPE:-fallback}").unwrap(), s("fallback"));
        assert_eq!(expand("${env:NOPE:-a:b}").unwrap(), s("a:b"));
        assert_eq!(expand("${env:EMPTY:-fallback}").unwrap(), s(""));
        assert_eq!(expand("${env:TOKEN:-fallback}").unwrap(), s("abc"));
    }

    #[test]
    fn whole_values_are_typed() {
        assert_eq!(expand("${env:PORT}").unwrap(), Value::Number(4317.into()));
        assert_eq!(expand("${env:FLAG}").unwrap(), Value::Bool(true));
        assert!(expand("${env:MAP}").unwrap().is_mapping());
        assert_eq!(expand("port ${env:PORT}").unwrap(), s("port 4317"));
        assert_eq!(expand("${env:NOPE}").unwrap(), Value::Null);
        assert_eq!(expand("x${env:NOPE}").unwrap(), s("x"));
    }

    #[test]
    fn dollar_escapes() {
        assert_eq!(expand("$${env:TOKEN}").unwrap(), s("${env:TOKEN}"));
        assert_eq!(expand("$$${env:TOKEN}").unwrap(), s("$abc"));
        assert_eq!(expand("cost $$5").unwrap(), s("cost $5"));
        assert_eq!(expand("$1").unwrap(), s("$1"));
        assert_eq!(
            expand("replacement: $1-$$2").unwrap(),
            s("replacement: $1-$2")
        );
    }

    #[test]
    fn nesting_and_reexpansion() {
        assert_eq!(expand("${env:${env:WHICH}}").unwrap(), s("abc"));
        assert_eq!(expand("${env:INDIRECT}").unwrap(), s("abc"));
        assert_eq!(expand("${env:DOLLARS}").unwrap(), s("a$b"));
    }

    #[test]
    fn errors() {
        assert_eq!(
            expand("${env:1BAD}").unwrap_err(),
            ExpandError::InvalidName("1BAD".into())
        );
        assert_eq!(
            expand("${1}").unwrap_err(),
            ExpandError::InvalidName("1".into())
        );
        assert!(matches!(
            expand("${file:/x}"),
            Err(ExpandError::UnsupportedScheme(_))
        ));
        assert!(matches!(
            expand("a ${env:X"),
            Err(ExpandError::Unterminated(_))
        ));
    }

    #[test]
    fn recursion_is_bounded() {
        let env: HashMap<String, String> = [("LOOP".to_owned(), "${env:LOOP}".to_owned())].into();
        let mut unset = Vec::new();
        assert_eq!(
            expand_scalar("${env:LOOP}", &env, &mut unset).unwrap_err(),
            ExpandError::TooDeep
        );
    }

    #[test]
    fn keys_are_not_expanded_values_are() {
        let mut v: Value =
            yaml_serde::from_str("${env:TOKEN}: ${env:TOKEN}\nlist: [\"${env:PORT}\"]").unwrap();
        let mut unset = Vec::new();
        expand_value(&mut v, &env(), &mut Vec::new(), &mut unset).unwrap();
        assert_eq!(v["${env:TOKEN}"], s("abc"));
        assert_eq!(v["list"][0], Value::Number(4317.into()));
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// Text made of the pieces expansion cares about, so that most cases reach it.
        fn template() -> impl Strategy<Value = String> {
            let piece = prop_oneof![
                Just("${".to_owned()),
                Just("}".to_owned()),
                Just("$$".to_owned()),
                Just("$".to_owned()),
                Just("env:".to_owned()),
                Just(":-".to_owned()),
                Just("TOKEN".to_owned()),
                Just("INDIRECT".to_owned()),
                Just("UNSET".to_owned()),
                Just("file:".to_owned()),
                "[a-z0-9 :{}\\[\\],]{0,4}",
            ];
            proptest::collection::vec(piece, 0..12).prop_map(|p| p.concat())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Any value expands or fails with an error; it never panics or loops.
            #[test]
            fn any_text_expands_or_fails(text in template()) {
                let _outcome = expand(&text);
            }

            /// Text without `$` is left exactly as written.
            #[test]
            fn text_without_dollar_is_untouched(text in "[^$]{0,32}") {
                prop_assert_eq!(expand(&text).unwrap(), s(&text));
            }

            /// `$$` always yields one literal `$`, whatever follows it.
            #[test]
            fn doubled_dollar_is_a_literal(before in "[a-z ]{0,6}", after in "[a-z{}A-Z_]{0,8}") {
                let text = format!("{before}$${after}");
                prop_assert_eq!(expand(&text).unwrap(), s(&format!("{before}${after}")));
            }

            /// A default applies only when the variable is unset.
            #[test]
            fn defaults_apply_only_when_unset(default in "[a-z0-9]{1,8}") {
                prop_assert_eq!(expand(&format!("x${{env:UNSET:-{default}}}")).unwrap(), s(&format!("x{default}")));
                prop_assert_eq!(expand(&format!("x${{env:TOKEN:-{default}}}")).unwrap(), s("xabc"));
            }

            /// The whole loader (YAML parse, merge, expansion, split) on arbitrary text.
            #[test]
            fn the_loader_takes_any_text(text in "[ -~\\n]{0,200}", shaped in template()) {
                let dir = tempfile::tempdir().unwrap();
                for (i, body) in [text, format!("receivers:\n  otlp:\n    x: \"{shaped}\"\n  {shaped}: 1\n")].iter().enumerate() {
                    let path = dir.path().join(format!("{i}.yaml"));
                    std::fs::write(&path, body).unwrap();
                    let source = crate::config::Source::Uri(path.to_string_lossy().into_owned());
                    if let Ok(loaded) = crate::config::load(&[source], &[], &env()) {
                        let _outcome = crate::config::validate::validate(&loaded);
                        let _outcome = loaded.print();
                    }
                }
            }
        }
    }
}
