//! `health_check` settings.

use std::time::Duration;

use serde::Deserialize;

use crate::config::FieldError;
use crate::tls::serve::Timeouts;

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
    /// An answer not ready within it closes the connection. Default 30s; 0 = none.
    #[serde(with = "crate::config::duration")]
    pub write_timeout: Duration,
    /// The whole request. Default 0 = none.
    #[serde(with = "crate::config::duration")]
    pub read_timeout: Duration,
    /// An HTTP/1 request head (and the wait for the next one). Default 1m; 0 =
    /// `read_timeout`.
    #[serde(with = "crate::config::duration")]
    pub read_header_timeout: Duration,
    /// A connection with no request in flight is closed. Default 1m; 0 = `read_timeout`.
    #[serde(with = "crate::config::duration")]
    pub idle_timeout: Duration,
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
            write_timeout: Timeouts::SERVER_DEFAULTS.write,
            read_timeout: Timeouts::SERVER_DEFAULTS.read,
            read_header_timeout: Timeouts::SERVER_DEFAULTS.read_header,
            idle_timeout: Timeouts::SERVER_DEFAULTS.idle,
        }
    }
}

impl Config {
    /// The server's timeouts (confighttp's, with its server defaults).
    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            read: self.read_timeout,
            read_header: self.read_header_timeout,
            write: self.write_timeout,
            idle: self.idle_timeout,
        }
    }

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
