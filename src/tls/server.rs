//! Server `tls` settings (otelcol's `configtls.ServerConfig`), shared by every listener:
//! the otlp receiver's gRPC and HTTP servers, the prometheus exporter, health_check and the
//! own metrics endpoint.
//!
//! ```yaml
//! tls:
//!   cert_file: /etc/otelpipe/server.crt   # or cert_pem: inline PEM
//!   key_file: /etc/otelpipe/server.key    # or key_pem: inline PEM
//!   client_ca_file: /etc/otelpipe/ca.crt  # mTLS: client certificates required and verified
//!   min_version: "1.2"                    # default 1.2
//!   max_version: "1.3"                    # default: the highest available (1.3)
//!   cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]   # TLS 1.2 suites; Go's names
//!   reload_interval: 1h                   # re-read the files this often; 0 = never
//! ```
//!
//! Versions 1.2 and 1.3 are served (rustls). A `min_version` of 1.0 or 1.1 is taken as 1.2.
//! As in Go, `cipher_suites` restricts the TLS 1.2 suites only; TLS 1.3 suites are always
//! offered when 1.3 is allowed. Go names of CBC suites are recognised but not offered.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite, SupportedProtocolVersion};
use serde::Deserialize;

use crate::config::FieldError;

/// `tls` of a server (otelcol's `configtls.ServerConfig`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// CA bundle; accepted for compatibility (a server verifies clients with
    /// `client_ca_file`).
    pub ca_file: Option<String>,
    /// CA bundle, inline PEM; accepted for compatibility.
    pub ca_pem: Option<String>,
    /// Accepted for compatibility.
    pub include_system_ca_certs_pool: bool,
    /// Server certificate chain, PEM file.
    pub cert_file: Option<String>,
    /// Server certificate chain, inline PEM.
    pub cert_pem: Option<String>,
    /// Server private key, PEM file.
    pub key_file: Option<String>,
    /// Server private key, inline PEM.
    pub key_pem: Option<String>,
    /// Lowest version accepted: `1.0`, `1.1`, `1.2` (default) or `1.3`.
    pub min_version: String,
    /// Highest version accepted; empty = the highest available.
    pub max_version: String,
    /// TLS 1.2 cipher suites allowed, Go names; empty = all available.
    pub cipher_suites: Vec<String>,
    /// Accepted for compatibility (rustls' key exchange groups are used).
    pub curve_preferences: Vec<String>,
    /// How often the certificate, key and client CA files are re-read; 0 = never.
    #[serde(with = "crate::config::duration")]
    pub reload_interval: Duration,
    /// CA bundle that client certificates must chain to; when set, clients must present
    /// one (mutual TLS).
    pub client_ca_file: Option<String>,
    /// Re-read `client_ca_file` when it changes on disk.
    pub reload_client_ca_file: bool,
}

/// A TLS version as otelcol names it.
fn version(text: &str, key: &str) -> Result<Option<u8>, FieldError> {
    match text {
        "" => Ok(None),
        "1.0" => Ok(Some(0)),
        "1.1" => Ok(Some(1)),
        "1.2" => Ok(Some(2)),
        "1.3" => Ok(Some(3)),
        other => Err(FieldError::at(
            &[key],
            format!("invalid TLS {key}: unsupported TLS version: {other:?}"),
        )),
    }
}

/// Go's names of the suites `tls.CipherSuites()` lists, with rustls' suite where rustls
/// has one (the CBC suites have none).
const GO_SUITES: &[(&str, Option<rustls::CipherSuite>)] = {
    use rustls::CipherSuite as S;
    &[
        ("TLS_AES_128_GCM_SHA256", Some(S::TLS13_AES_128_GCM_SHA256)),
        ("TLS_AES_256_GCM_SHA384", Some(S::TLS13_AES_256_GCM_SHA384)),
        (
            "TLS_CHACHA20_POLY1305_SHA256",
            Some(S::TLS13_CHACHA20_POLY1305_SHA256),
        ),
        ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", None),
        ("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", None),
        ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", None),
        ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", None),
        (
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            Some(S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
        ),
        (
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            Some(S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384),
        ),
        (
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            Some(S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
        ),
        (
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            Some(S::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384),
        ),
        (
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            Some(S::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256),
        ),
        (
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
            Some(S::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256),
        ),
        (
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            Some(S::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256),
        ),
        (
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
            Some(S::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256),
        ),
    ]
};

impl Config {
    /// otelcol's rules, plus what a server needs (a certificate) and what rustls can serve.
    /// Paths in errors are relative to the `tls` block.
    ///
    /// # Errors
    /// Both or neither of a file and its inline PEM, a certificate without a key, an unknown
    /// version or cipher suite name, `min_version` above `max_version`.
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
        if !has_cert {
            return Err(FieldError::new(
                "a TLS server needs a certificate: set cert_file and key_file (or cert_pem and key_pem)",
            ));
        }
        if self.cert_file.is_some() && self.cert_pem.is_some() {
            return Err(FieldError::new(
                "for auth via TLS, provide certificate file or certificate pem, but not both",
            ));
        }
        if self.key_file.is_some() && self.key_pem.is_some() {
            return Err(FieldError::new(
                "for auth via TLS, provide key file or key pem, but not both",
            ));
        }
        let min = version(&self.min_version, "min_version")?.unwrap_or(2);
        let max = version(&self.max_version, "max_version")?;
        if let Some(max) = max {
            if max < min {
                return Err(FieldError::new(
                    "invalid TLS configuration: min_version cannot be greater than max_version",
                ));
            }
            if max < 2 {
                return Err(FieldError::at(
                    &["max_version"],
                    "TLS 1.0 and 1.1 are not served; max_version must be 1.2 or 1.3",
                ));
            }
        }
        for (i, name) in self.cipher_suites.iter().enumerate() {
            if !GO_SUITES.iter().any(|(go, _)| go == name) {
                return Err(FieldError::at(
                    &["cipher_suites", &i.to_string()],
                    format!("invalid TLS cipher suite: {name:?}"),
                ));
            }
        }
        let tls12_only = max == Some(2);
        if tls12_only && !self.cipher_suites.is_empty() && self.tls12_suites().is_empty() {
            return Err(FieldError::at(
                &["cipher_suites"],
                "none of these TLS 1.2 cipher suites can be served (CBC suites are not offered)",
            ));
        }
        Ok(())
    }

    fn versions(&self) -> Vec<&'static SupportedProtocolVersion> {
        let min = version(&self.min_version, "min_version")
            .ok()
            .flatten()
            .unwrap_or(2);
        let max = version(&self.max_version, "max_version")
            .ok()
            .flatten()
            .unwrap_or(3);
        let mut out = Vec::new();
        if min <= 2 && max >= 2 {
            out.push(&rustls::version::TLS12);
        }
        if max >= 3 {
            out.push(&rustls::version::TLS13);
        }
        out
    }

    /// The rustls TLS 1.2 suites named in `cipher_suites`.
    fn tls12_suites(&self) -> Vec<rustls::CipherSuite> {
        self.cipher_suites
            .iter()
            .filter_map(|name| GO_SUITES.iter().find(|(go, _)| go == name)?.1)
            .filter(|s| !format!("{s:?}").starts_with("TLS13_"))
            .collect()
    }

    fn provider(&self) -> CryptoProvider {
        let mut provider = rustls::crypto::ring::default_provider();
        if !self.cipher_suites.is_empty() {
            let allowed = self.tls12_suites();
            provider
                .cipher_suites
                .retain(|s: &SupportedCipherSuite| match s {
                    SupportedCipherSuite::Tls13(_) => true,
                    SupportedCipherSuite::Tls12(_) => allowed.contains(&s.suite()),
                });
        }
        provider
    }

    /// Builds the rustls server config from the files and inline PEM, offering `alpn`.
    ///
    /// # Errors
    /// A file that cannot be read, PEM that holds no certificate or key, a key that does
    /// not match, a client CA bundle without certificates.
    pub fn build(&self, alpn: &[&[u8]]) -> Result<ServerConfig, LoadError> {
        let cert_pem = read(self.cert_file.as_deref(), self.cert_pem.as_deref())?;
        let key_pem = read(self.key_file.as_deref(), self.key_pem.as_deref())?;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| LoadError::Pem("certificate", e.to_string()))?;
        if certs.is_empty() {
            return Err(LoadError::Pem("certificate", "no certificate found".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| LoadError::Pem("key", e.to_string()))?;
        let provider = Arc::new(self.provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&self.versions())
            .map_err(LoadError::Rustls)?;
        let builder = match &self.client_ca_file {
            Some(path) => {
                let pem = read(Some(path), None)?;
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(&pem) {
                    let cert = cert.map_err(|e| LoadError::Pem("client CA", e.to_string()))?;
                    roots.add(cert).map_err(LoadError::Rustls)?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| LoadError::Pem("client CA", e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(LoadError::Rustls)?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }
}

fn read(file: Option<&str>, inline: Option<&str>) -> Result<Vec<u8>, LoadError> {
    match (file, inline) {
        (Some(path), _) => std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_owned(),
            source,
        }),
        (None, Some(pem)) => Ok(pem.as_bytes().to_vec()),
        (None, None) => Ok(Vec::new()),
    }
}

fn modified(path: Option<&str>) -> Option<SystemTime> {
    std::fs::metadata(path?).ok()?.modified().ok()
}

/// Why TLS material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file could not be read.
    #[error("failed to load TLS config: read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// PEM without the expected item.
    #[error("failed to load TLS config: {0}: {1}")]
    Pem(&'static str, String),
    /// rustls refused the material (a key that does not match the certificate, …).
    #[error("failed to load TLS config: {0}")]
    Rustls(rustls::Error),
}

/// The current rustls config of a listener, re-read from disk every `reload_interval` (and
/// when the client CA file changes, with `reload_client_ca_file`). A reload that fails
/// keeps the previous config and is logged.
pub struct Acceptor {
    config: Config,
    alpn: Vec<&'static [u8]>,
    state: Mutex<State>,
}

struct State {
    current: Arc<ServerConfig>,
    loaded: Instant,
    client_ca_modified: Option<SystemTime>,
}

impl Acceptor {
    /// Loads the material once.
    ///
    /// # Errors
    /// See [`Config::build`].
    pub fn new(config: &Config, alpn: &[&'static [u8]]) -> Result<Self, LoadError> {
        crate::tls::install_crypto_provider();
        if matches!(config.min_version.as_str(), "1.0" | "1.1") {
            tracing::warn!(
                min_version = %config.min_version,
                "TLS 1.0 and 1.1 are not served; the lowest version offered is 1.2."
            );
        }
        let current = Arc::new(config.build(alpn)?);
        Ok(Self {
            state: Mutex::new(State {
                current,
                loaded: Instant::now(),
                client_ca_modified: modified(config.client_ca_file.as_deref()),
            }),
            config: config.clone(),
            alpn: alpn.to_vec(),
        })
    }

    /// The config to use for the next handshake, reloaded first when due.
    pub fn current(&self) -> Arc<ServerConfig> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let interval = self.config.reload_interval;
        let timed = !interval.is_zero() && state.loaded.elapsed() >= interval;
        let ca_changed = self.config.reload_client_ca_file && {
            let now = modified(self.config.client_ca_file.as_deref());
            now != state.client_ca_modified
        };
        if timed || ca_changed {
            state.loaded = Instant::now();
            state.client_ca_modified = modified(self.config.client_ca_file.as_deref());
            match self.config.build(&self.alpn) {
                Ok(config) => {
                    state.current = Arc::new(config);
                    tracing::debug!("TLS certificates reloaded.");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "TLS reload failed; the previous certificates stay in use.");
                }
            }
        }
        state.current.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cert() -> Config {
        Config {
            cert_pem: Some("c".into()),
            key_pem: Some("k".into()),
            ..Config::default()
        }
    }

    #[test]
    fn validation_follows_otelcol() {
        assert!(with_cert().validate().is_ok());
        let err = Config {
            cert_file: Some("c".into()),
            ..Config::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            err.message,
            "for auth via TLS, provide both certificate and key, or neither"
        );
        assert!(Config::default()
            .validate()
            .unwrap_err()
            .message
            .contains("needs a certificate"));
        let err = Config {
            min_version: "1.5".into(),
            ..with_cert()
        }
        .validate()
        .unwrap_err();
        assert_eq!(err.path, ["min_version"]);
        assert_eq!(
            err.message,
            "invalid TLS min_version: unsupported TLS version: \"1.5\""
        );
        let err = Config {
            min_version: "1.3".into(),
            max_version: "1.2".into(),
            ..with_cert()
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            err.message,
            "invalid TLS configuration: min_version cannot be greater than max_version"
        );
    }

    #[test]
    fn unknown_cipher_suite_is_named_at_its_index() {
        let err = Config {
            cipher_suites: vec![
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into(),
                "TLS_RSA_WITH_RC4_128_SHA".into(),
            ],
            ..with_cert()
        }
        .validate()
        .unwrap_err();
        assert_eq!(err.path, ["cipher_suites", "1"]);
        assert_eq!(
            err.message,
            "invalid TLS cipher suite: \"TLS_RSA_WITH_RC4_128_SHA\""
        );
    }

    #[test]
    fn cipher_suites_restrict_tls12_only() {
        let config = Config {
            cipher_suites: vec![
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into(),
                "TLS_AES_128_GCM_SHA256".into(),
            ],
            ..with_cert()
        };
        let provider = config.provider();
        let tls12: Vec<_> = provider
            .cipher_suites
            .iter()
            .filter(|s| matches!(s, SupportedCipherSuite::Tls12(_)))
            .map(SupportedCipherSuite::suite)
            .collect();
        assert_eq!(
            tls12,
            [rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]
        );
        let tls13 = provider
            .cipher_suites
            .iter()
            .filter(|s| matches!(s, SupportedCipherSuite::Tls13(_)))
            .count();
        assert_eq!(tls13, 3);
        let cbc_only = Config {
            max_version: "1.2".into(),
            cipher_suites: vec!["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA".into()],
            ..with_cert()
        };
        assert_eq!(cbc_only.validate().unwrap_err().path, ["cipher_suites"]);
    }

    #[test]
    fn versions_offered() {
        let v = |min: &str, max: &str| {
            Config {
                min_version: min.into(),
                max_version: max.into(),
                ..with_cert()
            }
            .versions()
            .iter()
            .map(|v| v.version)
            .collect::<Vec<_>>()
        };
        use rustls::ProtocolVersion::{TLSv1_2, TLSv1_3};
        assert_eq!(v("", ""), [TLSv1_2, TLSv1_3]);
        assert_eq!(v("1.3", ""), [TLSv1_3]);
        assert_eq!(v("1.0", "1.2"), [TLSv1_2]);
    }
}
