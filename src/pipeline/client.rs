//! Who sent a batch: the peer address and, when a receiver has `include_metadata: true`,
//! its request headers. Processors read it (`attributes` `from_context`, batch
//! `metadata_keys`); nothing on the hot path copies it (it is reference counted).
//!
//! An exporter's sending queue keeps each batch's client (in memory; a persistent queue
//! does not), and runs the export inside [`scope`], so client authenticators such as
//! `headers_setter` read the request metadata with [`with_current`].

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

tokio::task_local! {
    static CURRENT: ClientInfo;
}

/// Runs `future` with `client` as the [`with_current`] client.
pub async fn scope<F: std::future::Future>(client: ClientInfo, future: F) -> F::Output {
    CURRENT.scope(client, future).await
}

/// Calls `f` with the client of the batch being exported, `None` outside an export.
pub fn with_current<R>(f: impl FnOnce(Option<&ClientInfo>) -> R) -> R {
    let mut f = Some(f);
    let out = CURRENT.try_with(|client| (f.take().expect("called once"))(Some(client)));
    match out {
        Ok(r) => r,
        Err(_) => (f.take().expect("not called yet"))(None),
    }
}
