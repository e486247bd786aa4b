//! Config errors: where (file:line:col and key path) and what.

use std::fmt;

/// A problem inside one component's section (or any sub-tree), located by key path.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct FieldError {
    /// Key path segments below the section, outermost first (`["protocols", "grpc"]`).
    pub path: Vec<String>,
    /// What is wrong, lowercase, no final period.
    pub message: String,
}

impl FieldError {
    /// An error about the section itself.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            path: Vec::new(),
            message: message.into(),
        }
    }

    /// An error about the key at `path` (segments joined with `::` when printed).
    pub fn at(path: &[&str], message: impl Into<String>) -> Self {
        Self {
            path: path.iter().map(|s| (*s).to_owned()).collect(),
            message: message.into(),
        }
    }

    /// The same error seen from one level up: `segment` is prepended to the path.
    #[must_use]
    pub fn under(mut self, segment: impl Into<String>) -> Self {
        self.path.insert(0, segment.into());
        self
    }

    /// The key path joined with `::`.
    pub fn path_string(&self) -> String {
        self.path.join("::")
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path_string(), self.message)
        }
    }
}

/// One config problem as the user sees it: where, then what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// `file:line:col` when the key was found in a source.
    pub location: Option<String>,
    /// The key path, joined with `::` (may be empty for whole-file problems).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// A problem with no key path (a source that cannot be read, say).
    pub fn general(message: impl Into<String>) -> Self {
        Self {
            location: None,
            path: String::new(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(location) = &self.location {
            write!(f, "{location}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found, printed one per line.
#[derive(Clone, Debug, Default, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// A list of one.
    pub fn one(error: ConfigError) -> Self {
        Self(vec![error])
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}
