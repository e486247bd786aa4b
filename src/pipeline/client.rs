//! Who sent a batch: the peer address and, when a receiver has `include_metadata: true`,
//! its request headers. Processors read it (`attributes` `from_context`, batch
//! `metadata_keys`); nothing on the hot path copies it (it is reference counted).

use std::net::SocketAddr;
use std::sync::Arc;

/// Request metadata, keys lowercased, in arrival order; a key may repeat.
pub type Metadata = Vec<(String, String)>;

/// The client a batch came from.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    /// The peer's address, when the transport has one.
    pub addr: Option<SocketAddr>,
    /// Request headers or gRPC metadata; empty unless the receiver has `include_metadata`.
    pub metadata: Arc<Metadata>,
}

impl ClientInfo {
    /// Every value of metadata `key` (case-insensitive).
    pub fn metadata_values<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.metadata
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}
