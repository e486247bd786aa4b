//! `exporters::prometheus` settings.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::config::FieldError;
use crate::tls::serve::Timeouts;

/// `exporters::prometheus`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `host:port` serving `/metrics`. Required (the seed uses `0.0.0.0:8889`).
    pub endpoint: String,
    /// Prefix `<namespace>_` for every metric name, `target_info` included. Default none.
    pub namespace: String,
    /// Labels added to every series except `target_info`. Default none.
    #[serde(deserialize_with = "crate::config::decode::string_map")]
    pub const_labels: BTreeMap<String, String>,
    /// Emit each sample's timestamp. Default false.
    pub send_timestamps: bool,
    /// A series not updated for this long disappears. Default 5m.
    #[serde(with = "crate::config::duration")]
    pub metric_expiration: Duration,
    /// Copy every resource attribute onto every data point (so, onto labels).
    pub resource_to_telemetry_conversion: ResourceToTelemetry,
    /// Serve OpenMetrics to scrapers that ask for it. Default false.
    pub enable_open_metrics: bool,
    /// Type and unit suffixes (`_total`, `_seconds`, …). Default true.
    pub add_metric_suffixes: bool,
    /// Headers added to every response.
    #[serde(deserialize_with = "crate::config::decode::string_map")]
    pub response_headers: BTreeMap<String, String>,
    /// A scrape answer not ready within it closes the connection. Default 30s; 0 = none.
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
    /// Server TLS for `/metrics`; none = plaintext.
    pub tls: Option<crate::tls::server::Config>,
}

/// `resource_to_telemetry_conversion`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ResourceToTelemetry {
    /// Default false.
    pub enabled: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            namespace: String::new(),
            const_labels: BTreeMap::new(),
            send_timestamps: false,
            metric_expiration: Duration::from_secs(300),
            resource_to_telemetry_conversion: ResourceToTelemetry::default(),
            enable_open_metrics: false,
            add_metric_suffixes: true,
            response_headers: BTreeMap::new(),
            write_timeout: Timeouts::SERVER_DEFAULTS.write,
            read_timeout: Timeouts::SERVER_DEFAULTS.read,
            read_header_timeout: Timeouts::SERVER_DEFAULTS.read_header,
            idle_timeout: Timeouts::SERVER_DEFAULTS.idle,
            tls: None,
        }
    }
}

impl Config {
    /// The `/metrics` server's timeouts.
    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            read: self.read_timeout,
            read_header: self.read_header_timeout,
            write: self.write_timeout,
            idle: self.idle_timeout,
        }
    }

    /// otelcol's rules.
    ///
    /// # Errors
    /// A blank endpoint (otelcol's message), invalid `tls` settings, or a const label name that is
    /// not a Prometheus label name.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.endpoint.trim().is_empty() {
            return Err(FieldError::new(
                "expecting a non-blank address to run the Prometheus metrics handler",
            ));
        }
        if let Some(tls) = &self.tls {
            tls.validate().map_err(|e| e.under("tls"))?;
        }
        for name in self.const_labels.keys() {
            if !super::naming::is_label_name(name) {
                return Err(FieldError::at(
                    &["const_labels", name],
                    format!("{name:?} is not a valid label name"),
                ));
            }
        }
        Ok(())
    }
}
