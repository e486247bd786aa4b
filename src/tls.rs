//! TLS plumbing shared by clients and servers: one crypto provider (rustls with ring) for
//! the whole process, the server `tls` settings every listener takes, and the listener that
//! terminates TLS in front of the gRPC and HTTP servers, and the HTTP accept loop on it.

pub mod client;
pub mod listener;
pub mod serve;
pub mod server;

/// Installs rustls' ring provider as the process default. Safe to call more than once: a
/// provider already installed stays.
pub fn install_crypto_provider() {
    if rustls::crypto::ring::default_provider()
        .install_default()
        .is_err()
    {
        tracing::trace!("A TLS crypto provider was already installed.");
    }
}
