//! `exporters::debug` settings.

use serde::Deserialize;

use crate::config::FieldError;

/// How much the debug exporter prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Verbosity {
    /// One line per batch with counts.
    #[default]
    Basic,
    /// One line per item.
    Normal,
    /// Everything, resource by resource.
    Detailed,
}

/// `exporters::debug`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `basic` (default), `normal` or `detailed`, case-insensitive.
    pub verbosity: String,
    /// Batches printed per second before sampling starts. Default 2.
    pub sampling_initial: u64,
    /// Then every Nth batch per second is printed. Default 1 (no sampling).
    pub sampling_thereafter: u64,
    /// Print through the collector's logger (stderr) rather than plain stdout. Default true.
    pub use_internal_logger: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            verbosity: "basic".to_owned(),
            sampling_initial: 2,
            sampling_thereafter: 1,
            use_internal_logger: true,
        }
    }
}

impl Config {
    /// The parsed verbosity.
    ///
    /// # Errors
    /// otelcol's message for an unknown level.
    pub fn verbosity(&self) -> Result<Verbosity, FieldError> {
        match self.verbosity.to_ascii_lowercase().as_str() {
            "basic" => Ok(Verbosity::Basic),
            "normal" => Ok(Verbosity::Normal),
            "detailed" => Ok(Verbosity::Detailed),
            other => Err(FieldError::at(
                &["verbosity"],
                format!("verbosity level \"{other}\" is not supported"),
            )),
        }
    }
}
