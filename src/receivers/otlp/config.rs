//! `receivers::otlp` settings.

use std::time::Duration;

use serde::Deserialize;

use crate::config::FieldError;

/// `receivers::otlp`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Which protocols to serve; at least one.
    pub protocols: Protocols,
}

/// `protocols`: a key that is present (even with an empty body) enables that protocol.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Protocols {
    /// gRPC, default `localhost:4317`.
    #[serde(deserialize_with = "present")]
    pub grpc: Option<Grpc>,
    /// HTTP, default `localhost:4318`.
    #[serde(deserialize_with = "present")]
    pub http: Option<Http>,
}

/// A key given with a null body (`grpc:`) still enables the protocol with its defaults.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Some(
        Option::<T>::deserialize(deserializer)?.unwrap_or_default(),
    ))
}

/// `protocols::grpc` (otelcol's gRPC server settings).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Grpc {
    /// `host:port` to listen on.
    pub endpoint: String,
    /// `tcp` (default) or `unix`; only tcp is served.
    pub transport: String,
    /// Largest accepted message after decompression, MiB. 0 = the gRPC default, 4.
    pub max_recv_msg_size_mib: u64,
    /// Limit on concurrent streams per connection; 0 = unlimited.
    pub max_concurrent_streams: u32,
    /// Accepted for compatibility (buffer tuning).
    pub read_buffer_size: Option<u64>,
    /// Accepted for compatibility (buffer tuning).
    pub write_buffer_size: Option<u64>,
    /// Copy request metadata into the client info (for `attributes` `from_context`).
    pub include_metadata: bool,
    /// Keepalive settings; accepted, HTTP/2 keepalive uses tonic's defaults.
    pub keepalive: Option<yaml_serde::Value>,
    /// Server TLS; none = plaintext.
    pub tls: Option<crate::tls::server::Config>,
    /// Server authenticator extension; none = no authentication.
    pub auth: Option<crate::extensions::auth::Auth>,
}

impl Default for Grpc {
    fn default() -> Self {
        Self {
            endpoint: "localhost:4317".to_owned(),
            transport: "tcp".to_owned(),
            max_recv_msg_size_mib: 0,
            max_concurrent_streams: 0,
            read_buffer_size: None,
            write_buffer_size: None,
            include_metadata: false,
            keepalive: None,
            tls: None,
            auth: None,
        }
    }
}

impl Grpc {
    /// The message size limit in bytes.
    pub fn max_message_bytes(&self) -> usize {
        let mib = if self.max_recv_msg_size_mib == 0 {
            4
        } else {
            self.max_recv_msg_size_mib
        };
        usize::try_from(mib << 20).unwrap_or(usize::MAX)
    }
}

/// `protocols::http` (otelcol's HTTP server settings).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Http {
    /// `host:port` to listen on.
    pub endpoint: String,
    /// Path for traces; a missing leading `/` is added.
    pub traces_url_path: String,
    /// Path for metrics.
    pub metrics_url_path: String,
    /// Path for logs.
    pub logs_url_path: String,
    /// Largest accepted body, wire and decompressed, bytes; 0 or less = 20 MiB.
    pub max_request_body_size: i64,
    /// Copy request headers into the client info.
    pub include_metadata: bool,
    /// Allowed `Content-Encoding` values; `""` means uncompressed.
    pub compression_algorithms: Option<Vec<String>>,
    /// CORS for browser clients.
    pub cors: Option<Cors>,
    /// Headers added to every response.
    pub response_headers: std::collections::BTreeMap<String, String>,
    /// The whole request (head, then body: a body not read in time is answered 400); also
    /// the fallback of `read_header_timeout` and `idle_timeout`. Default 0 = none.
    #[serde(with = "crate::config::duration")]
    pub read_timeout: Duration,
    /// An HTTP/1 request head (also the wait for the next request on a keep-alive
    /// connection); a connection exceeding it is closed. Default 0 = `read_timeout`.
    #[serde(with = "crate::config::duration")]
    pub read_header_timeout: Duration,
    /// From the end of the request head until the response is ready; a later response
    /// closes the connection. Default 0 = none.
    #[serde(with = "crate::config::duration")]
    pub write_timeout: Duration,
    /// A connection with no request in flight for this long is closed. Default 0 =
    /// `read_timeout`.
    #[serde(with = "crate::config::duration")]
    pub idle_timeout: Duration,
    /// Server TLS; none = plaintext.
    pub tls: Option<crate::tls::server::Config>,
    /// Server authenticator extension; none = no authentication.
    pub auth: Option<crate::extensions::auth::Auth>,
}

impl Default for Http {
    fn default() -> Self {
        Self {
            endpoint: "localhost:4318".to_owned(),
            traces_url_path: "/v1/traces".to_owned(),
            metrics_url_path: "/v1/metrics".to_owned(),
            logs_url_path: "/v1/logs".to_owned(),
            max_request_body_size: 0,
            include_metadata: false,
            compression_algorithms: None,
            cors: None,
            response_headers: std::collections::BTreeMap::new(),
            read_timeout: Duration::ZERO,
            read_header_timeout: Duration::ZERO,
            write_timeout: Duration::ZERO,
            idle_timeout: Duration::ZERO,
            tls: None,
            auth: None,
        }
    }
}

impl Http {
    /// The server timeouts (otelcol's otlp defaults: all none).
    pub fn timeouts(&self) -> crate::tls::serve::Timeouts {
        crate::tls::serve::Timeouts {
            read: self.read_timeout,
            read_header: self.read_header_timeout,
            write: self.write_timeout,
            idle: self.idle_timeout,
        }
    }

    /// The body limit in bytes.
    pub fn max_body_bytes(&self) -> usize {
        if self.max_request_body_size <= 0 {
            20 << 20
        } else {
            usize::try_from(self.max_request_body_size).unwrap_or(usize::MAX)
        }
    }

    /// Whether a `Content-Encoding` value is allowed.
    pub fn allows_encoding(&self, encoding: &str) -> bool {
        match &self.compression_algorithms {
            None => matches!(encoding, "" | "gzip" | "zstd" | "zlib" | "deflate"),
            Some(list) => list.iter().any(|a| a.eq_ignore_ascii_case(encoding)),
        }
    }
}

/// `cors`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Cors {
    /// Origins allowed, `*` wildcards allowed.
    pub allowed_origins: Vec<String>,
    /// Extra request headers allowed.
    pub allowed_headers: Vec<String>,
    /// Preflight cache duration, seconds.
    pub max_age: u64,
}

fn with_slash(path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
}

impl Config {
    /// Cross-field rules and normalisation.
    ///
    /// # Errors
    /// No protocol, or a setting this receiver does not support yet.
    pub fn validate(&mut self) -> Result<(), FieldError> {
        if self.protocols.grpc.is_none() && self.protocols.http.is_none() {
            return Err(FieldError::new(
                "must specify at least one protocol when using the OTLP receiver",
            ));
        }
        if let Some(grpc) = &self.protocols.grpc {
            if let Some(tls) = &grpc.tls {
                tls.validate()
                    .map_err(|e| e.under("tls").under("grpc").under("protocols"))?;
            }
            if grpc
                .auth
                .as_ref()
                .is_some_and(|a| a.authenticator.is_empty())
            {
                return Err(FieldError::at(
                    &["protocols", "grpc", "auth", "authenticator"],
                    "must name an authenticator extension",
                ));
            }
            if grpc.transport != "tcp" {
                return Err(FieldError::at(
                    &["protocols", "grpc", "transport"],
                    format!("unsupported transport \"{}\" (only tcp)", grpc.transport),
                ));
            }
        }
        if let Some(http) = &mut self.protocols.http {
            if let Some(tls) = &http.tls {
                tls.validate()
                    .map_err(|e| e.under("tls").under("http").under("protocols"))?;
            }
            if http
                .auth
                .as_ref()
                .is_some_and(|a| a.authenticator.is_empty())
            {
                return Err(FieldError::at(
                    &["protocols", "http", "auth", "authenticator"],
                    "must name an authenticator extension",
                ));
            }
            http.traces_url_path = with_slash(&http.traces_url_path);
            http.metrics_url_path = with_slash(&http.metrics_url_path);
            http.logs_url_path = with_slash(&http.logs_url_path);
        }
        Ok(())
    }
}
