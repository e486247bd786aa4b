//! PEM certificates and keys (entity fields, kong.conf values) to rustls types.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::TlsError;

fn pem_error(what: &str, message: impl Into<String>) -> TlsError {
    TlsError::Pem {
        what: what.to_owned(),
        message: message.into(),
    }
}

/// Every certificate in `text`, in order; an error when there is none.
pub fn certificates(what: &str, text: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| pem_error(what, format!("invalid certificate: {e}")))?;
    if certs.is_empty() {
        return Err(pem_error(
            what,
            "invalid certificate: no PEM certificate found",
        ));
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in `text`.
pub fn private_key(what: &str, text: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(text.as_bytes())
        .map_err(|e| pem_error(what, format!("invalid key: {e}")))
}

/// A chain and its key ready to serve; the key must sign with a scheme rustls supports.
pub fn certified_key(what: &str, cert: &str, key: &str) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = certificates(what, cert)?;
    let key = private_key(what, key)?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| pem_error(what, format!("invalid key: {e}")))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|e| pem_error(what, format!("certificate does not match key: {e}")))?;
    Ok(Arc::new(certified))
}

/// A kong.conf certificate value: inline PEM, or a file path.
pub fn conf_value(key: &str, value: &str) -> Result<String, TlsError> {
    if value.trim_start().starts_with("-----BEGIN") {
        return Ok(value.to_owned());
    }
    std::fs::read_to_string(value).map_err(|source| TlsError::Read {
        path: format!("{key} {value}"),
        source,
    })
}
