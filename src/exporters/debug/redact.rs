//! Credentials never reach the debug exporter's output: values whose key names a secret are
//! printed as `[REDACTED]`.
//!
//! The check is a case-insensitive comparison of the key against [`SECRET_KEYS`], either as
//! the whole key or after an `http.request.header.` / `http.response.header.` prefix
//! ([`HEADER_PREFIXES`]); it allocates nothing. Map values (attributes holding maps, log
//! bodies that are maps) are searched at any depth and copied only when they hold a secret.

use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, KeyValue, KeyValueList,
};

/// What a secret value prints as.
pub(super) const REDACTED: &str = "[REDACTED]";

/// Key names whose values are credentials (compared ignoring ASCII case): HTTP headers that
/// carry credentials and the usual names of passwords, tokens and keys.
pub(super) const SECRET_KEYS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "api_key",
    "apikey",
    "api_token",
    "x-auth-token",
    "access_token",
    "refresh_token",
    "client_secret",
    "private_key",
    "password",
    "passwd",
    "secret",
    "token",
];

/// Prefixes of the semantic-convention header attributes
/// (`http.request.header.authorization`), followed by one of [`SECRET_KEYS`].
pub(super) const HEADER_PREFIXES: &[&str] = &["http.request.header.", "http.response.header."];

/// Whether values under `key` are credentials.
pub(super) fn is_secret(key: &str) -> bool {
    let name = HEADER_PREFIXES
        .iter()
        .find_map(|prefix| strip_prefix_ignoring_case(key, prefix))
        .unwrap_or(key);
    SECRET_KEYS
        .iter()
        .any(|secret| name.eq_ignore_ascii_case(secret))
}

fn strip_prefix_ignoring_case<'a>(key: &'a str, prefix: &str) -> Option<&'a str> {
    let head = key.as_bytes().get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix.as_bytes()) {
        key.get(prefix.len()..)
    } else {
        None
    }
}

/// `value` with every secret entry of its maps, at any depth, replaced by [`REDACTED`];
/// `None` when there is none (the value prints as it is, without a copy).
pub(super) fn scrubbed(value: Option<&AnyValue>) -> Option<AnyValue> {
    let inner = value?.value.as_ref()?;
    holds_secret(inner).then(|| AnyValue {
        value: Some(scrub(inner)),
    })
}

fn holds_secret(value: &any_value::Value) -> bool {
    fn nested(v: &Option<AnyValue>) -> Option<&any_value::Value> {
        v.as_ref()?.value.as_ref()
    }
    match value {
        any_value::Value::KvlistValue(list) => list
            .values
            .iter()
            .any(|kv| is_secret(&kv.key) || nested(&kv.value).is_some_and(holds_secret)),
        any_value::Value::ArrayValue(array) => array
            .values
            .iter()
            .any(|v| v.value.as_ref().is_some_and(holds_secret)),
        _ => false,
    }
}

fn scrub(value: &any_value::Value) -> any_value::Value {
    let nested = |v: &Option<AnyValue>| {
        v.as_ref().map(|v| AnyValue {
            value: v.value.as_ref().map(scrub),
        })
    };
    match value {
        any_value::Value::KvlistValue(list) => any_value::Value::KvlistValue(KeyValueList {
            values: list
                .values
                .iter()
                .map(|kv| KeyValue {
                    key: kv.key.clone(),
                    value: if is_secret(&kv.key) {
                        Some(AnyValue {
                            value: Some(any_value::Value::StringValue(REDACTED.to_owned())),
                        })
                    } else {
                        nested(&kv.value)
                    },
                    key_strindex: kv.key_strindex,
                })
                .collect(),
        }),
        any_value::Value::ArrayValue(array) => any_value::Value::ArrayValue(ArrayValue {
            values: array
                .values
                .iter()
                .map(|v| AnyValue {
                    value: v.value.as_ref().map(scrub),
                })
                .collect(),
        }),
        other => other.clone(),
    }
}
