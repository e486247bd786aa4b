//! Client TLS shared by every outgoing connection: the otlphttp and otlp exporters and the
//! prometheus scraper. One rustls config per client, built once at start:
//!
//! - server certificates are verified against the system roots by default, or against the
//!   configured CA bundle alone (plus the system roots with `include_system_ca_certs_pool`);
//! - `server_name_override` (Prometheus: `server_name`) is the name the certificate must
//!   carry, whatever host the endpoint names; on gRPC connections it is also the SNI;
//! - `insecure_skip_verify` accepts any certificate (handshake signatures are still
//!   checked), logged once as a warning at start;
//! - a client certificate and key are presented when both are given (mutual TLS).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;

/// ALPN of an HTTP client: h2 and http/1.1, as Go's client offers.
pub const ALPN_HTTP: &[&[u8]] = &[b"h2", b"http/1.1"];
/// ALPN of a gRPC client.
pub const ALPN_GRPC: &[&[u8]] = &[b"h2"];

/// What a client's TLS is made of, whatever its config block is called.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// CA bundle (PEM) the server must chain to; `None` = the system roots. An empty
    /// bundle trusts nothing (a CA file that could not be read).
    pub ca_pem: Option<Vec<u8>>,
    /// With a CA bundle: trust the system roots as well.
    pub include_system_roots: bool,
    /// Client certificate chain and key (PEM) for mutual TLS.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// Accept any server certificate.
    pub insecure_skip_verify: bool,
    /// The name the server certificate must carry instead of the endpoint's host.
    pub server_name: Option<String>,
    /// Lowest version offered: `1.2` (default, also for `1.0`/`1.1`) or `1.3`.
    pub min_version: Option<String>,
    /// Highest version offered: `1.2` or `1.3` (default).
    pub max_version: Option<String>,
}

/// Why a client TLS config could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientTlsError {
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
    /// A `server_name_override` that is not a DNS name or IP address.
    #[error("invalid server_name_override {0:?}")]
    ServerName(String),
    /// An unknown TLS version.
    #[error("invalid TLS version {0:?}")]
    Version(String),
    /// rustls refused the material.
    #[error("failed to load TLS config: {0}")]
    Rustls(String),
}

/// Reads `file`, or takes `inline`, when either is given.
///
/// # Errors
/// [`ClientTlsError::Read`].
pub fn pem(file: Option<&str>, inline: Option<&str>) -> Result<Option<Vec<u8>>, ClientTlsError> {
    match (file, inline) {
        (Some(path), _) => std::fs::read(path)
            .map(Some)
            .map_err(|source| ClientTlsError::Read {
                path: path.to_owned(),
                source,
            }),
        (None, Some(text)) => Ok(Some(text.as_bytes().to_vec())),
        (None, None) => Ok(None),
    }
}

fn version_rank(text: Option<&str>, default: u8) -> Result<u8, ClientTlsError> {
    match text.unwrap_or("") {
        "" => Ok(default),
        "1.0" | "1.1" | "1.2" => Ok(2),
        "1.3" => Ok(3),
        other => Err(ClientTlsError::Version(other.to_owned())),
    }
}

impl Settings {
    /// The name to verify (and, on gRPC, to send as SNI) instead of the endpoint's host.
    ///
    /// # Errors
    /// [`ClientTlsError::ServerName`].
    pub fn override_name(&self) -> Result<Option<ServerName<'static>>, ClientTlsError> {
        self.server_name
            .as_deref()
            .filter(|n| !n.is_empty())
            .map(|n| {
                ServerName::try_from(n.to_owned())
                    .map_err(|_| ClientTlsError::ServerName(n.to_owned()))
            })
            .transpose()
    }

    /// The rustls client config offering `alpn`.
    ///
    /// # Errors
    /// [`ClientTlsError`].
    pub fn build(&self, alpn: &[&[u8]]) -> Result<ClientConfig, ClientTlsError> {
        crate::tls::install_crypto_provider();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let min = version_rank(self.min_version.as_deref(), 2)?;
        let max = version_rank(self.max_version.as_deref(), 3)?;
        let mut versions = Vec::new();
        if min <= 2 && max >= 2 {
            versions.push(&rustls::version::TLS12);
        }
        if max >= 3 {
            versions.push(&rustls::version::TLS13);
        }
        if versions.is_empty() {
            return Err(ClientTlsError::Version(
                self.max_version.clone().unwrap_or_default(),
            ));
        }
        let verifier: Arc<dyn ServerCertVerifier> = if self.insecure_skip_verify {
            Arc::new(Fixed {
                provider: provider.clone(),
                accept: true,
            })
        } else {
            let roots = self.roots()?;
            if roots.is_empty() {
                return self.finish(
                    provider.clone(),
                    &versions,
                    Arc::new(Fixed {
                        provider,
                        accept: false,
                    }),
                    alpn,
                );
            }
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| ClientTlsError::Rustls(e.to_string()))?;
            match self.override_name()? {
                Some(name) => Arc::new(Renamed {
                    inner: webpki,
                    name,
                }),
                None => webpki,
            }
        };
        self.finish(provider, &versions, verifier, alpn)
    }

    fn finish(
        &self,
        provider: Arc<CryptoProvider>,
        versions: &[&'static rustls::SupportedProtocolVersion],
        verifier: Arc<dyn ServerCertVerifier>,
        alpn: &[&[u8]],
    ) -> Result<ClientConfig, ClientTlsError> {
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(|e| ClientTlsError::Rustls(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match &self.identity {
            Some((cert, key)) => {
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
                    .collect::<Result<_, _>>()
                    .map_err(|e| ClientTlsError::Pem("client certificate", e.to_string()))?;
                if certs.is_empty() {
                    return Err(ClientTlsError::Pem(
                        "client certificate",
                        "no certificate found".into(),
                    ));
                }
                let key = PrivateKeyDer::from_pem_slice(key)
                    .map_err(|e| ClientTlsError::Pem("client key", e.to_string()))?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|e| ClientTlsError::Rustls(e.to_string()))?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }

    fn roots(&self) -> Result<RootCertStore, ClientTlsError> {
        let mut roots = RootCertStore::empty();
        if self.ca_pem.is_none() || self.include_system_roots {
            let found = rustls_native_certs::load_native_certs();
            if let Some(e) = found.errors.first() {
                tracing::debug!(error = %e, "Some system root certificates could not be read.");
            }
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                tracing::warn!(
                    "No system root certificates found; servers can only be verified with ca_file."
                );
            }
        }
        if let Some(pem) = &self.ca_pem {
            let mut any = false;
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| ClientTlsError::Pem("CA", e.to_string()))?;
                roots
                    .add(cert)
                    .map_err(|e| ClientTlsError::Pem("CA", e.to_string()))?;
                any = true;
            }
            if !any && !pem.is_empty() {
                return Err(ClientTlsError::Pem("CA", "no certificate found".into()));
            }
        }
        Ok(roots)
    }
}

/// Verifies against a fixed name instead of the one connected to.
#[derive(Debug)]
struct Renamed {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for Renamed {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `insecure_skip_verify` (`accept`): any certificate, but a handshake signed by its key.
/// Without any trusted root (`!accept`): no certificate.
#[derive(Debug)]
struct Fixed {
    provider: Arc<CryptoProvider>,
    accept: bool,
}

impl ServerCertVerifier for Fixed {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.accept {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A connector for tonic channels: TCP to the URI's host and port, then TLS with this
/// client's config, sending the override name (or the host) as SNI.
#[derive(Clone)]
pub struct Connector {
    config: Arc<ClientConfig>,
    server_name: Option<ServerName<'static>>,
}

impl Connector {
    /// A connector for `settings`, offering h2.
    ///
    /// # Errors
    /// [`ClientTlsError`].
    pub fn new(settings: &Settings) -> Result<Self, ClientTlsError> {
        Ok(Self {
            config: Arc::new(settings.build(ALPN_GRPC)?),
            server_name: settings.override_name()?,
        })
    }
}

/// A TLS connection as tonic takes it.
pub type ClientStream = hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;

impl tower::Service<http::Uri> for Connector {
    type Response = ClientStream;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<ClientStream, std::io::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let config = self.config.clone();
        let fixed = self.server_name.clone();
        Box::pin(async move {
            let host = uri
                .host()
                .ok_or_else(|| std::io::Error::other("endpoint without a host"))?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let port = uri.port_u16().unwrap_or(443);
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            let name = match fixed {
                Some(name) => name,
                None => ServerName::try_from(host).map_err(std::io::Error::other)?,
            };
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await?;
            Ok(hyper_util::rt::TokioIo::new(tls))
        })
    }
}
