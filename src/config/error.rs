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
