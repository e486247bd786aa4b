//! TLS to upstreams (`protocol: https` services). As Kong by default (`tls_verify` unset,
//! nginx `proxy_ssl_verify off`), the upstream certificate is not verified; the server name
//! (SNI) is the service or target host.
//!
//! Per service (Kong/kong:kong/runloop/upstream_ssl.lua): `tls_verify: true` verifies the
//! chain and the host name against the service's `ca_certificates` (ids of ca_certificates
//! entities) or, when unset, kong.conf `lua_ssl_trusted_certificate` (`system` = the
//! system store, or PEM files); `tls_verify_depth` (else kong.conf `lua_ssl_verify_depth`,
//! default 1) caps the intermediate certificates in the chain, as OpenSSL's verify depth;
//! `client_certificate` is presented to upstreams that ask for one. A failed verification
//! fails the connection: Kong's 502.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::conf::KongConf;
use crate::declarative::model::{Model, Service};
use crate::tls::{pem, TlsError};

/// Accepts any certificate; handshake signatures are still checked.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// WebPKI verification (chain, validity, host name) plus OpenSSL's verify depth: at most
/// `depth` intermediates between the certificate and its trust anchor (presented
/// certificates that are themselves trust anchors are not counted). Without trust anchors
/// every certificate is refused.
#[derive(Debug)]
struct Verify {
    inner: Option<Arc<WebPkiServerVerifier>>,
    anchors: Vec<CertificateDer<'static>>,
    depth: u32,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verify {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(inner) = &self.inner else {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ));
        };
        let verified =
            inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        let counted = intermediates
            .iter()
            .filter(|c| !self.anchors.iter().any(|a| a.as_ref() == c.as_ref()))
            .count();
        if counted > self.depth as usize {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError(Arc::new(DepthExceeded(
                    self.depth,
                )))),
            ));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
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
        verify_tls13_signature(
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

/// The chain is longer than the verify depth allows.
#[derive(Debug, thiserror::Error)]
#[error("certificate chain too long (verify depth {0})")]
struct DepthExceeded(u32);

/// The client TLS configuration for upstream connections without verification (TLS
/// 1.2/1.3; the connector sets ALPN to HTTP/1.1).
pub fn client_config() -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The certificates of the system store, loaded once.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        for error in &loaded.errors {
            tracing::warn!(%error, "system CA store");
        }
        loaded.certs
    })
}

/// The key distinguishing services that need different TLS client settings; empty for the
/// default (no verification, no client certificate).
pub fn profile_key(service: &Service, conf: &KongConf) -> String {
    let verify = service.tls_verify == Some(true);
    let client = service.client_certificate.as_ref().map(|c| c.id.as_str());
    if !verify && client.is_none() {
        return String::new();
    }
    let depth = service
        .tls_verify_depth
        .unwrap_or(conf.lua_ssl_verify_depth);
    let cas = service
        .ca_certificates
        .as_deref()
        .unwrap_or_default()
        .join(",");
    format!(
        "verify={verify};depth={depth};ca={cas};client={}",
        client.unwrap_or_default()
    )
}

/// The trust anchors of a verifying service.
fn anchors(
    service: &Service,
    model: &Model,
    conf: &KongConf,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let mut out = Vec::new();
    match &service.ca_certificates {
        Some(ids) if !ids.is_empty() => {
            for id in ids {
                let ca = model
                    .ca_certificates
                    .iter()
                    .find(|c| &c.id == id)
                    .ok_or_else(|| TlsError::Pem {
                        what: format!("ca_certificates {id}"),
                        message: "no such ca_certificate".into(),
                    })?;
                out.extend(pem::certificates(
                    &format!("ca_certificate {id}"),
                    &ca.cert,
                )?);
            }
        }
        _ => out = conf_anchors(conf)?,
    }
    Ok(out)
}

/// The certificates of kong.conf `lua_ssl_trusted_certificate`.
fn conf_anchors(conf: &KongConf) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let mut out = Vec::new();
    for entry in &conf.lua_ssl_trusted_certificate {
        if entry == "system" {
            out.extend(system_roots().iter().cloned());
        } else {
            let text = pem::conf_value("lua_ssl_trusted_certificate", entry)?;
            out.extend(pem::certificates("lua_ssl_trusted_certificate", &text)?);
        }
    }
    Ok(out)
}

/// A verifying certificate checker over `anchors`.
fn verifier(
    anchors: Vec<CertificateDer<'static>>,
    depth: u32,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(anchors.iter().cloned());
    let inner = if added == 0 {
        None
    } else {
        let built =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
                .build()
                .map_err(|e| TlsError::Pem {
                    what: "ca_certificates".into(),
                    message: e.to_string(),
                })?;
        Some(built)
    };
    Ok(Arc::new(Verify {
        inner,
        anchors,
        depth,
        provider: Arc::clone(provider),
    }))
}

/// The client configuration of `https` health probes: verified against kong.conf
/// `lua_ssl_trusted_certificate` when `verify` (`https_verify_certificate`), else not.
pub fn probe_config(conf: &KongConf, verify: bool) -> Result<Arc<ClientConfig>, TlsError> {
    if !verify {
        return Ok(client_config()?);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = verifier(conf_anchors(conf)?, conf.lua_ssl_verify_depth, &provider)?;
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The client TLS configuration of `service` (see the module documentation).
pub fn service_client_config(
    service: &Service,
    model: &Model,
    conf: &KongConf,
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?
        .dangerous();
    let verifier: Arc<dyn ServerCertVerifier> = if service.tls_verify == Some(true) {
        let depth = service
            .tls_verify_depth
            .unwrap_or(conf.lua_ssl_verify_depth);
        verifier(anchors(service, model, conf)?, depth, &provider)?
    } else {
        Arc::new(NoVerify(Arc::clone(&provider)))
    };
    let builder = builder.with_custom_certificate_verifier(verifier);
    let config = match &service.client_certificate {
        Some(fk) => {
            let cert = model
                .certificates
                .iter()
                .find(|c| c.id == fk.id)
                .ok_or_else(|| TlsError::Pem {
                    what: format!("client_certificate {}", fk.id),
                    message: "no such certificate".into(),
                })?;
            let what = format!("certificate {}", cert.id);
            let chain = pem::certificates(&what, &cert.cert)?;
            let key = pem::private_key(&what, &cert.key)?;
            builder.with_client_auth_cert(chain, key)?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}
