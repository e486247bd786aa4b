//! `extensions::headers_setter` settings.

use serde::Deserialize;

use crate::config::FieldError;

/// `extensions::headers_setter`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The headers to set, in order.
    pub headers: Vec<Header>,
}

/// One entry of `headers`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Header {
    /// The header (or gRPC metadata) name.
    pub key: Option<String>,
    /// What to do with it. Default `upsert`.
    pub action: Action,
    /// A fixed value (a secret: shown as `[REDACTED]`).
    pub value: Option<String>,
    /// The request metadata key to copy the value from (the receiver needs
    /// `include_metadata: true`).
    pub from_context: Option<String>,
    /// The value when `from_context` finds nothing.
    pub default_value: Option<String>,
}

/// `action`, case-insensitive as in otelcol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Action {
    /// Set only when the request does not have the header.
    Insert,
    /// Set only when the request has the header.
    Update,
    /// Set, replacing any value (the default).
    #[default]
    Upsert,
    /// Remove the header.
    Delete,
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.to_ascii_lowercase().as_str() {
            "insert" => Ok(Self::Insert),
            "update" => Ok(Self::Update),
            "upsert" => Ok(Self::Upsert),
            "delete" => Ok(Self::Delete),
            _ => Err(serde::de::Error::custom(format!(
                "unknown action {text:?}: must be one of insert, update, upsert, delete"
            ))),
        }
    }
}

impl Config {
    /// otelcol's rules and messages.
    ///
    /// # Errors
    /// No headers, a header without key, without source or with both sources, or a name
    /// that is not a valid header name.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.headers.is_empty() {
            return Err(FieldError::new("missing headers configuration"));
        }
        for (i, header) in self.headers.iter().enumerate() {
            let at = |e: FieldError| e.under(i.to_string()).under("headers");
            let key = header.key.as_deref().unwrap_or("");
            if key.is_empty() {
                return Err(at(FieldError::new("missing header name")));
            }
            if http::HeaderName::try_from(key).is_err() {
                return Err(at(FieldError::at(
                    &["key"],
                    format!("invalid header name {key:?}"),
                )));
            }
            if header.action == Action::Delete {
                continue;
            }
            match (&header.value, &header.from_context) {
                (None, None) => {
                    return Err(at(FieldError::new(
                        "missing header source, must be 'from_context' or 'value'",
                    )))
                }
                (Some(_), Some(_)) => {
                    return Err(at(FieldError::new(
                        "invalid header source, must either 'from_context' or 'value'",
                    )))
                }
                _ => {}
            }
        }
        Ok(())
    }
}
