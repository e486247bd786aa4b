//! Downstream TLS: `proxy_listen` entries with `ssl` (Kong's default `0.0.0.0:8443 http2
//! ssl`). The server certificate is chosen per handshake by the client's SNI from the
//! certificates + snis entities ([`sni`]), falling back to kong.conf `ssl_cert` /
//! `ssl_cert_key` or a self-signed certificate generated at startup ([`default_cert`]).
//! ALPN offers `h2` only on listeners with `http2`. rustls, no OpenSSL.
//!
//! ```yaml
//! certificates:
//! - cert: "-----BEGIN CERTIFICATE-----..."
//!   key: "-----BEGIN PRIVATE KEY-----..."
//!   snis:
//!   - name: "*.example.com"
//! ```

pub mod default_cert;
pub mod pem;
pub mod sni;

use std::sync::Arc;

use rustls::ServerConfig;

pub use sni::{CertTable, SniResolver};

/// A TLS setup problem.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM text held no usable certificate or key.
    #[error("{what}: {message}")]
    Pem {
        /// Which value (entity id or kong.conf key).
        what: String,
        /// What is wrong.
        message: String,
    },
    /// A file named in kong.conf could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The default certificate could not be generated.
    #[error("cannot generate the default certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// What a request learns about its TLS connection (a request extension on `ssl` listeners;
/// serializer `request.tls`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// The server name the client sent (SNI), lowercased.
    pub sni: Option<String>,
    /// `TLSv1.2` or `TLSv1.3` (nginx's `$ssl_protocol`).
    pub version: &'static str,
    /// The cipher suite (OpenSSL's name, nginx's `$ssl_cipher`).
    pub cipher: &'static str,
}

impl TlsInfo {
    /// The facts of an established server connection.
    pub fn of(conn: &rustls::ServerConnection) -> Self {
        let version = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "TLSv1.3",
        };
        let cipher = conn
            .negotiated_cipher_suite()
            .map_or("", |s| openssl_cipher_name(s.suite()));
        Self {
            sni: conn.server_name().map(str::to_ascii_lowercase),
            version,
            cipher,
        }
    }
}

/// OpenSSL's names for the suites rustls offers (TLS 1.3 names are the IANA ones).
fn openssl_cipher_name(suite: rustls::CipherSuite) -> &'static str {
    use rustls::CipherSuite as C;
    match suite {
        C::TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
        C::TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
        C::TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
        C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => "ECDHE-ECDSA-AES128-GCM-SHA256",
        C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => "ECDHE-ECDSA-AES256-GCM-SHA384",
        C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-ECDSA-CHACHA20-POLY1305",
        C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => "ECDHE-RSA-AES128-GCM-SHA256",
        C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => "ECDHE-RSA-AES256-GCM-SHA384",
        C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-RSA-CHACHA20-POLY1305",
        _ => "UNKNOWN",
    }
}

/// The rustls server configuration of one `ssl` listener: certificates from `resolver`,
/// TLS 1.2 and 1.3 (Kong's default `ssl_protocols`), ALPN `h2` + `http/1.1` when `http2`
/// is set, else `http/1.1` only.
pub fn server_config(
    resolver: Arc<dyn rustls::server::ResolvesServerCert>,
    http2: bool,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests;
