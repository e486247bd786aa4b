//! `health_check` settings.

use serde::Deserialize;

use crate::config::FieldError;

/// `extensions::health_check`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `host:port` to listen on. Default `localhost:13133`; containers set `0.0.0.0:13133`.
    pub endpoint: String,
    /// Path answered. `/` (the default) answers every path, as Go's ServeMux does.
    pub path: String,
    /// Replaces the JSON bodies with fixed texts.
    pub response_body: Option<ResponseBody>,
    /// Accepted for compatibility; has had no effect since otelcol v0.103.
    pub check_collector_pipeline: Option<yaml_serde::Value>,
    /// Server TLS; none = plaintext.
    pub tls: Option<crate::tls::server::Config>,
}

/// Custom bodies for the two states.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ResponseBody {
    /// Body when ready.
    pub healthy: String,
    /// Body when not ready.
    pub unhealthy: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            endpoint: "localhost:13133".to_owned(),
            path: "/".to_owned(),
            response_body: None,
            check_collector_pipeline: None,
            tls: None,
        }
    }
}

impl Config {
    /// Cross-field rules.
    ///
    /// # Errors
    /// A missing endpoint or a path not starting with `/`.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.endpoint.trim().is_empty() {
            return Err(FieldError::at(&["endpoint"], "must not be empty"));
        }
        if !self.path.starts_with('/') {
            return Err(FieldError::at(&["path"], "must start with \"/\""));
        }
        if let Some(tls) = &self.tls {
            tls.validate().map_err(|e| e.under("tls"))?;
        }
        Ok(())
    }
}
