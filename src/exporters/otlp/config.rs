//! `exporters::otlp` settings.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::config::FieldError;
use crate::exporters::otlphttp::TlsClient;
use crate::exporters::queue::{QueueConfig, RetryConfig};

/// `exporters::otlp`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `host:port`; an `http://` or `https://` prefix is stripped (`https://` forces TLS).
    pub endpoint: String,
    /// Client TLS; `insecure: true` for plaintext. Default: TLS.
    pub tls: TlsClient,
    /// `gzip` (default), `zstd`, `none`.
    pub compression: String,
    /// Sent as gRPC metadata with every call (values are secrets: never logged).
    #[serde(deserialize_with = "crate::config::decode::string_map")]
    pub headers: BTreeMap<String, String>,
    /// Per-attempt deadline. Default 5s.
    #[serde(with = "crate::config::duration")]
    pub timeout: Duration,
    /// Retry settings.
    pub retry_on_failure: RetryConfig,
    /// Queue settings.
    pub sending_queue: QueueConfig,
    /// HTTP/2 keepalive.
    pub keepalive: Option<Keepalive>,
    /// `:authority` override.
    pub authority: Option<String>,
    /// Accepted: one connection is used.
    pub balancer_name: Option<String>,
    /// Accepted for compatibility.
    pub wait_for_ready: Option<bool>,
    /// Accepted for compatibility (buffer tuning).
    pub read_buffer_size: Option<u64>,
    /// Accepted for compatibility (buffer tuning).
    pub write_buffer_size: Option<u64>,
    /// Client authenticator extension (adds its metadata to every call).
    pub auth: Option<crate::extensions::auth::Auth>,
}

/// `keepalive`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Keepalive {
    /// Ping interval.
    #[serde(default, deserialize_with = "optional_duration")]
    pub time: Option<Duration>,
    /// Ping timeout.
    #[serde(default, deserialize_with = "optional_duration")]
    pub timeout: Option<Duration>,
    /// Ping even without active calls.
    pub permit_without_stream: bool,
}

fn optional_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    crate::config::duration::deserialize(d).map(Some)
}

impl Default for Config {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            tls: TlsClient::default(),
            compression: "gzip".to_owned(),
            headers: BTreeMap::new(),
            timeout: Duration::from_secs(5),
            retry_on_failure: RetryConfig::default(),
            sending_queue: QueueConfig::default(),
            keepalive: None,
            authority: None,
            balancer_name: None,
            wait_for_ready: None,
            read_buffer_size: None,
            write_buffer_size: None,
            auth: None,
        }
    }
}

impl Config {
    /// The `host:port` and whether TLS is used.
    pub fn target(&self) -> (String, bool) {
        if let Some(rest) = self.endpoint.strip_prefix("https://") {
            (rest.trim_end_matches('/').to_owned(), true)
        } else if let Some(rest) = self.endpoint.strip_prefix("http://") {
            (rest.trim_end_matches('/').to_owned(), !self.tls.insecure)
        } else {
            (self.endpoint.clone(), !self.tls.insecure)
        }
    }

    /// Cross-field rules.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.endpoint.trim().is_empty() {
            return Err(FieldError::new("requires a non-empty \"endpoint\""));
        }
        let (target, _) = self.target();
        if crate::net::port(&target).is_none() {
            return Err(FieldError::at(
                &["endpoint"],
                format!("invalid port in endpoint {:?}", self.endpoint),
            ));
        }
        if !matches!(self.compression.as_str(), "gzip" | "zstd" | "none" | "") {
            return Err(FieldError::at(
                &["compression"],
                format!("unsupported compression type {:?}", self.compression),
            ));
        }
        self.tls.validate().map_err(|e| e.under("tls"))?;
        self.retry_on_failure.validate()?;
        self.sending_queue.validate()
    }
}
