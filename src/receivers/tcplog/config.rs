//! `receivers::tcplog` settings (contrib's `tcplogreceiver` = stanza `tcp_input` +
//! adapter settings).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::FieldError;
use crate::receivers::stanza::input::{ByteSize, Input, InputConfig, Multiline, Retry};

/// Default `max_log_size`: 1 MiB.
pub const DEFAULT_MAX_LOG_SIZE: u64 = 1 << 20;
/// Smallest accepted `max_log_size`: 64 KiB.
pub const MIN_MAX_LOG_SIZE: u64 = 64 << 10;
/// Largest accepted `max_log_size` (every connection may buffer this much): 64 MiB.
pub const MAX_MAX_LOG_SIZE: u64 = 64 << 20;
/// Default bound on concurrent connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// `receivers::tcplog`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `host:port` to listen on (required).
    pub listen_address: String,
    /// Longest token; default 1 MiB, at least 64 KiB.
    pub max_log_size: Option<ByteSize>,
    /// Body encoding: `utf-8` (default), `nop`, `utf-16le`, `utf-16be`, `ascii`, IANA names.
    pub encoding: String,
    /// Multi-line tokens.
    pub multiline: Option<Multiline>,
    /// Keep leading whitespace of tokens.
    pub preserve_leading_whitespaces: bool,
    /// Keep trailing whitespace of tokens.
    pub preserve_trailing_whitespaces: bool,
    /// One entry per connection: everything read until EOF.
    pub one_log_per_packet: bool,
    /// Add `net.*` attributes (transport, peer and host ip/port/name).
    pub add_attributes: bool,
    /// Attributes added to every entry (`EXPR(...)` allowed).
    pub attributes: BTreeMap<String, yaml_serde::Value>,
    /// Resource attributes added to every entry.
    pub resource: BTreeMap<String, yaml_serde::Value>,
    /// Server TLS (otelcol's `configtls.ServerConfig`); none = plaintext.
    pub tls: Option<crate::tls::server::Config>,
    /// The operator chain.
    pub operators: Vec<yaml_serde::Value>,
    /// Accepted for compatibility; unused by network inputs.
    pub storage: Option<yaml_serde::Value>,
    /// Retry refused batches.
    pub retry_on_failure: Retry,
    /// Concurrent connections; further ones are closed at once. 0 = the default, 4096.
    pub max_connections: usize,
    /// Close a connection that sent nothing for this long; 0 = never (default).
    #[serde(with = "crate::config::duration")]
    pub connection_idle_timeout: std::time::Duration,
}

impl Config {
    /// The token limit in bytes.
    pub fn max_log_size(&self) -> usize {
        usize::try_from(self.max_log_size.map_or(DEFAULT_MAX_LOG_SIZE, |b| {
            if b.0 == 0 {
                DEFAULT_MAX_LOG_SIZE
            } else {
                b.0
            }
        }))
        .unwrap_or(usize::MAX)
    }

    /// The connection bound.
    pub fn max_connections(&self) -> usize {
        if self.max_connections == 0 {
            DEFAULT_MAX_CONNECTIONS
        } else {
            self.max_connections
        }
    }

    /// Cross-field rules; compiles the shared input settings.
    ///
    /// # Errors
    /// The first problem, with its key path.
    pub fn validate(&self) -> Result<Input, FieldError> {
        if self.listen_address.is_empty() {
            return Err(FieldError::new(
                "missing required parameter 'listen_address'",
            ));
        }
        let resolves = std::net::ToSocketAddrs::to_socket_addrs(&listen_host(&self.listen_address))
            .is_ok_and(|mut a| a.next().is_some());
        if !resolves {
            return Err(FieldError::at(
                &["listen_address"],
                format!("failed to resolve listen_address: {}", self.listen_address),
            ));
        }
        if let Some(size) = self.max_log_size {
            if size.0 != 0 && size.0 < MIN_MAX_LOG_SIZE {
                return Err(FieldError::at(&["max_log_size"], format!("invalid value for parameter 'max_log_size', must be equal to or greater than {MIN_MAX_LOG_SIZE} bytes")));
            }
            if size.0 > MAX_MAX_LOG_SIZE {
                return Err(FieldError::at(&["max_log_size"], format!("invalid value for parameter 'max_log_size', must be at most {MAX_MAX_LOG_SIZE} bytes")));
            }
        }
        if let Some(tls) = &self.tls {
            tls.validate().map_err(|e| e.under("tls"))?;
        }
        if self.multiline.is_some() && self.one_log_per_packet {
            return Err(FieldError::at(
                &["multiline"],
                "multiline cannot be combined with one_log_per_packet",
            ));
        }
        Input::build(&InputConfig {
            encoding: &self.encoding,
            multiline: self.multiline.as_ref(),
            preserve_leading: self.preserve_leading_whitespaces,
            preserve_trailing: self.preserve_trailing_whitespaces,
            attributes: &self.attributes,
            resource: &self.resource,
            operators: &self.operators,
            max: self.max_log_size(),
        })
    }
}

/// `:port` means every interface, as Go reads it.
pub(crate) fn listen_host(address: &str) -> String {
    if address.starts_with(':') {
        format!("0.0.0.0{address}")
    } else {
        address.to_owned()
    }
}
