//! The certificate served when no sni entity matches: kong.conf `ssl_cert` /
//! `ssl_cert_key` (PEM text or file paths; the first pair of each list), else a self-signed
//! certificate for `localhost` generated at startup, as Kong generates
//! `kong-default.crt` (subject `C=US, ST=California, L=San Francisco, O=Kong,
//! OU=IT Department, CN=localhost`).

use std::sync::Arc;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use rustls::sign::CertifiedKey;

use super::{pem, TlsError};

/// The default certificate for the given kong.conf values.
pub fn load(
    ssl_cert: Option<&str>,
    ssl_cert_key: Option<&str>,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let first = |v: &str| v.split(',').next().unwrap_or_default().trim().to_owned();
    match (ssl_cert, ssl_cert_key) {
        (Some(cert), Some(key)) => {
            let cert = pem::conf_value("ssl_cert", &first(cert))?;
            let key = pem::conf_value("ssl_cert_key", &first(key))?;
            pem::certified_key("ssl_cert", &cert, &key)
        }
        (Some(_), None) => Err(TlsError::Pem {
            what: "ssl_cert_key".into(),
            message: "must be set when ssl_cert is set".into(),
        }),
        (None, Some(_)) => Err(TlsError::Pem {
            what: "ssl_cert".into(),
            message: "must be set when ssl_cert_key is set".into(),
        }),
        (None, None) => generate(),
    }
}

/// A fresh self-signed ECDSA P-256 certificate for `localhost`.
pub fn generate() -> Result<Arc<CertifiedKey>, TlsError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec!["localhost".to_owned()])?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CountryName, "US");
    name.push(DnType::StateOrProvinceName, "California");
    name.push(DnType::LocalityName, "San Francisco");
    name.push(DnType::OrganizationName, "Kong");
    name.push(DnType::OrganizationalUnitName, "IT Department");
    name.push(DnType::CommonName, "localhost");
    params.distinguished_name = name;
    let cert = params.self_signed(&key)?;
    pem::certified_key("default certificate", &cert.pem(), &key.serialize_pem())
}
