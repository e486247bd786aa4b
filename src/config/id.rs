//! Component ids: `type` or `type/name`.

use std::fmt;

use super::FieldError;

/// A component id as written in the config: `otlphttp` or `otlphttp/dynatrace`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComponentId {
    kind: String,
    name: Option<String>,
}

impl ComponentId {
    /// Parses `type` or `type/name`, split at the first `/`, each part trimmed.
    ///
    /// # Errors
    /// otelcol's messages: empty id, empty part, invalid characters in the type.
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(FieldError::new("id must not be empty"));
        }
        let (kind, name) = match text.split_once('/') {
            Some((k, n)) => (k.trim(), Some(n.trim())),
            None => (text, None),
        };
        if kind.is_empty() {
            return Err(FieldError::new(format!(
                "in \"{text}\" id: the part before / should not be empty"
            )));
        }
        if name.is_some_and(str::is_empty) {
            return Err(FieldError::new(format!(
                "in \"{text}\" id: the part after / should not be empty"
            )));
        }
        let valid_type = kind.len() <= 63
            && kind.starts_with(|c: char| c.is_ascii_alphabetic())
            && kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_type {
            return Err(FieldError::new(format!(
                "invalid character(s) in type \"{kind}\""
            )));
        }
        if let Some(n) = name {
            let bad = n.len() > 1024 || n.chars().any(|c| c.is_control() || c.is_whitespace());
            if bad {
                return Err(FieldError::new(format!(
                    "invalid character(s) in name \"{n}\""
                )));
            }
        }
        Ok(Self {
            kind: kind.to_owned(),
            name: name.map(str::to_owned),
        })
    }

    /// A plain `type` id.
    pub fn new(kind: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            name: None,
        }
    }

    /// The type part (`otlphttp`).
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The name part (`dynatrace`), if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{}/{n}", self.kind),
            None => f.write_str(&self.kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_first_slash_and_trims() {
        let id = ComponentId::parse(" otlp / a/b ").unwrap();
        assert_eq!(id.kind(), "otlp");
        assert_eq!(id.name(), Some("a/b"));
        assert_eq!(id.to_string(), "otlp/a/b");
    }

    #[test]
    fn rejects_bad_ids() {
        assert_eq!(
            ComponentId::parse("").unwrap_err().message,
            "id must not be empty"
        );
        assert!(ComponentId::parse("/x")
            .unwrap_err()
            .message
            .contains("before /"));
        assert!(ComponentId::parse("x/")
            .unwrap_err()
            .message
            .contains("after /"));
        assert!(ComponentId::parse("1abc")
            .unwrap_err()
            .message
            .contains("invalid character"));
        assert!(ComponentId::parse("a-b")
            .unwrap_err()
            .message
            .contains("invalid character"));
    }
}
