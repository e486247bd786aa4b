//! `exporters::otlphttp` settings.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::config::FieldError;
use crate::exporters::queue::{QueueConfig, RetryConfig};
use crate::pipeline::Signal;

/// `exporters::otlphttp`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Base URL; each signal appends `/v1/traces`, `/v1/metrics`, `/v1/logs`.
    pub endpoint: Option<String>,
    /// Full URL for traces, used as is.
    pub traces_endpoint: Option<String>,
    /// Full URL for metrics.
    pub metrics_endpoint: Option<String>,
    /// Full URL for logs.
    pub logs_endpoint: Option<String>,
    /// `proto` (default) or `json`.
    pub encoding: String,
    /// `gzip` (default), `zstd`, `zlib`, `deflate`, `none`.
    pub compression: String,
    /// Accepted for compatibility (`level`).
    pub compression_params: Option<yaml_serde::Value>,
    /// Whole-request timeout per attempt. Default 30s.
    #[serde(with = "crate::config::duration")]
    pub timeout: Duration,
    /// Headers added to every request (values are secrets: never logged).
    #[serde(deserialize_with = "crate::config::decode::string_map")]
    pub headers: BTreeMap<String, String>,
    /// Client TLS.
    pub tls: TlsClient,
    /// Retry settings.
    pub retry_on_failure: RetryConfig,
    /// Queue settings.
    pub sending_queue: QueueConfig,
    /// Idle connections kept per host. Default 100 (Go's `max_idle_conns`).
    pub max_idle_conns: Option<usize>,
    /// Idle connections kept per host.
    pub max_idle_conns_per_host: Option<usize>,
    /// How long an idle connection is kept. Default 90s.
    #[serde(default, deserialize_with = "optional_duration")]
    pub idle_conn_timeout: Option<Duration>,
    /// Accepted for compatibility (buffer tuning).
    pub read_buffer_size: Option<u64>,
    /// Accepted for compatibility (buffer tuning).
    pub write_buffer_size: Option<u64>,
    /// Accepted for compatibility.
    pub max_conns_per_host: Option<u64>,
    /// Accepted for compatibility.
    pub disable_keep_alives: Option<bool>,
    /// Accepted for compatibility.
    pub http2_read_idle_timeout: Option<yaml_serde::Value>,
    /// Accepted for compatibility.
    pub http2_ping_timeout: Option<yaml_serde::Value>,
    /// An HTTP proxy for every request.
    pub proxy_url: Option<String>,
    /// Client authenticator extension (adds its headers to every request).
    pub auth: Option<crate::extensions::auth::Auth>,
}

fn optional_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    crate::config::duration::deserialize(d).map(Some)
}

impl Default for Config {
    fn default() -> Self {
        Self {
            endpoint: None,
            traces_endpoint: None,
            metrics_endpoint: None,
            logs_endpoint: None,
            encoding: "proto".to_owned(),
            compression: "gzip".to_owned(),
            compression_params: None,
            timeout: Duration::from_secs(30),
            headers: BTreeMap::new(),
            tls: TlsClient::default(),
            retry_on_failure: RetryConfig::default(),
            sending_queue: QueueConfig::default(),
            max_idle_conns: None,
            max_idle_conns_per_host: None,
            idle_conn_timeout: None,
            read_buffer_size: None,
            write_buffer_size: None,
            max_conns_per_host: None,
            disable_keep_alives: None,
            http2_read_idle_timeout: None,
            http2_ping_timeout: None,
            proxy_url: None,
            auth: None,
        }
    }
}

/// Client TLS settings (otelcol's `configtls.ClientConfig`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsClient {
    /// gRPC only: plaintext instead of TLS.
    pub insecure: bool,
    /// Do not verify the server's certificate.
    pub insecure_skip_verify: bool,
    /// CA bundle (PEM) to verify the server with, instead of the system roots.
    pub ca_file: Option<String>,
    /// CA bundle inline.
    pub ca_pem: Option<String>,
    /// Client certificate (PEM) for mTLS.
    pub cert_file: Option<String>,
    /// Client certificate inline (PEM).
    pub cert_pem: Option<String>,
    /// Client key (PEM) for mTLS.
    pub key_file: Option<String>,
    /// Client key inline (PEM).
    pub key_pem: Option<String>,
    /// Server name to verify instead of the endpoint's host.
    pub server_name_override: Option<String>,
    /// Accepted: TLS 1.2 and 1.3 are both offered.
    pub min_version: Option<String>,
    /// Accepted: TLS 1.2 and 1.3 are both offered.
    pub max_version: Option<String>,
    /// Accepted for compatibility.
    pub reload_interval: Option<yaml_serde::Value>,
    /// Accepted for compatibility.
    pub include_system_ca_certs_pool: Option<bool>,
}

impl TlsClient {
    /// The files read and the options resolved for [`crate::tls::client`].
    ///
    /// # Errors
    /// A file that cannot be read.
    pub fn settings(
        &self,
    ) -> Result<crate::tls::client::Settings, crate::tls::client::ClientTlsError> {
        use crate::tls::client::pem;
        let cert = pem(self.cert_file.as_deref(), self.cert_pem.as_deref())?;
        let key = pem(self.key_file.as_deref(), self.key_pem.as_deref())?;
        Ok(crate::tls::client::Settings {
            ca_pem: pem(self.ca_file.as_deref(), self.ca_pem.as_deref())?,
            include_system_roots: self.include_system_ca_certs_pool.unwrap_or(false),
            identity: cert.zip(key),
            insecure_skip_verify: self.insecure_skip_verify,
            server_name: self.server_name_override.clone(),
            min_version: self.min_version.clone(),
            max_version: self.max_version.clone(),
        })
    }

    /// otelcol's rules for a client block. Paths are relative to `tls`.
    ///
    /// # Errors
    /// A file and its inline PEM both given, a certificate without its key.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.ca_file.is_some() && self.ca_pem.is_some() {
            return Err(FieldError::new(
                "provide either a CA file or the PEM-encoded string, but not both",
            ));
        }
        let has_cert = self.cert_file.is_some() || self.cert_pem.is_some();
        let has_key = self.key_file.is_some() || self.key_pem.is_some();
        if has_cert != has_key {
            return Err(FieldError::new(
                "for auth via TLS, provide both certificate and key, or neither",
            ));
        }
        for (key, value) in [
            ("min_version", &self.min_version),
            ("max_version", &self.max_version),
        ] {
            if let Some(v) = value {
                if !matches!(v.as_str(), "" | "1.0" | "1.1" | "1.2" | "1.3") {
                    return Err(FieldError::at(
                        &[key],
                        format!("invalid TLS {key}: unsupported TLS version: {v:?}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Config {
    /// The URL for `signal`.
    ///
    /// # Errors
    /// otelcol's message when neither the signal's URL nor the base URL is set.
    pub fn url(&self, signal: Signal) -> Result<String, FieldError> {
        let own = match signal {
            Signal::Traces => &self.traces_endpoint,
            Signal::Metrics => &self.metrics_endpoint,
            Signal::Logs => &self.logs_endpoint,
        };
        if let Some(url) = own {
            return Ok(url.clone());
        }
        let base = self.endpoint.as_ref().ok_or_else(|| {
            FieldError::new(format!(
                "either endpoint or {signal}_endpoint must be specified"
            ))
        })?;
        let sep = if base.ends_with('/') { "" } else { "/" };
        Ok(format!("{base}{sep}v1/{signal}"))
    }

    /// Cross-field rules.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), FieldError> {
        let endpoints = [
            &self.endpoint,
            &self.traces_endpoint,
            &self.metrics_endpoint,
            &self.logs_endpoint,
        ];
        if endpoints
            .iter()
            .all(|e| e.as_deref().is_none_or(str::is_empty))
        {
            return Err(FieldError::new("at least one endpoint must be specified"));
        }
        for (key, value) in [
            ("endpoint", &self.endpoint),
            ("traces_endpoint", &self.traces_endpoint),
            ("metrics_endpoint", &self.metrics_endpoint),
            ("logs_endpoint", &self.logs_endpoint),
        ] {
            if let Some(url) = value {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(FieldError::at(
                        &[key],
                        format!("invalid URL {url:?}: must start with http:// or https://"),
                    ));
                }
            }
        }
        if !matches!(self.encoding.as_str(), "proto" | "json") {
            return Err(FieldError::at(
                &["encoding"],
                format!("invalid encoding type: {}", self.encoding),
            ));
        }
        crate::codec::Compression::parse(&self.compression).map_err(|_| {
            FieldError::at(
                &["compression"],
                format!("unsupported compression type {:?}", self.compression),
            )
        })?;
        self.tls.validate().map_err(|e| e.under("tls"))?;
        self.retry_on_failure.validate()?;
        self.sending_queue.validate()
    }
}
