//! `receivers::udplog` settings (contrib's `udplogreceiver` = stanza `udp_input` +
//! adapter settings).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::FieldError;
use crate::receivers::stanza::input::{Input, InputConfig, Multiline, Retry};
use crate::receivers::tcplog::listen_host;

/// The largest datagram read: 64 KiB.
pub const MAX_UDP_SIZE: usize = 64 << 10;

/// `async`: concurrency of reading and processing.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Async {
    /// Tasks reading the socket; default 1.
    pub readers: usize,
    /// Accepted for compatibility: packets are processed by their reader.
    pub processors: usize,
    /// Accepted for compatibility: the hand-off to the batcher is bounded already.
    pub max_queue_length: usize,
}

/// `receivers::udplog`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `host:port` to listen on (required).
    pub listen_address: String,
    /// One entry per datagram, no line splitting.
    pub one_log_per_packet: bool,
    /// Add `net.*` attributes (transport, peer and host ip/port/name).
    pub add_attributes: bool,
    /// Body encoding: `utf-8` (default), `nop`, `utf-16le`, `utf-16be`, `ascii`, IANA names.
    pub encoding: String,
    /// Multi-line tokens within a datagram.
    pub multiline: Option<Multiline>,
    /// Keep leading whitespace of tokens.
    pub preserve_leading_whitespaces: bool,
    /// Keep trailing whitespace of tokens.
    pub preserve_trailing_whitespaces: bool,
    /// Reader concurrency.
    #[serde(rename = "async")]
    pub async_config: Option<Async>,
    /// Attributes added to every entry (`EXPR(...)` allowed).
    pub attributes: BTreeMap<String, yaml_serde::Value>,
    /// Resource attributes added to every entry.
    pub resource: BTreeMap<String, yaml_serde::Value>,
    /// The operator chain.
    pub operators: Vec<yaml_serde::Value>,
    /// Accepted for compatibility; unused by network inputs.
    pub storage: Option<yaml_serde::Value>,
    /// Retry refused batches.
    pub retry_on_failure: Retry,
}

impl Config {
    /// Tasks reading the socket.
    pub fn readers(&self) -> usize {
        self.async_config
            .as_ref()
            .map_or(1, |a| a.readers.clamp(1, 64))
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
        Input::build(&InputConfig {
            encoding: &self.encoding,
            multiline: self.multiline.as_ref(),
            preserve_leading: self.preserve_leading_whitespaces,
            preserve_trailing: self.preserve_trailing_whitespaces,
            attributes: &self.attributes,
            resource: &self.resource,
            operators: &self.operators,
            max: MAX_UDP_SIZE + 1,
        })
    }
}
