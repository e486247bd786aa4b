//! Certificate selection by SNI, as Kong's `find_certificate`
//! (Kong/kong:kong/runloop/certificate.lua): the exact name, then the name with its leftmost
//! label replaced by `*` (`*.example.com`), then with its rightmost label replaced
//! (`example.*`), then an sni named `*`, then the default certificate. A client that sends
//! no SNI gets the default certificate.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;

use super::pem;
use crate::declarative::model::Model;

/// A certificate entity ready to serve: its main pair and the optional alternate
/// (`cert_alt`/`key_alt`, another key type).
#[derive(Debug, Clone)]
struct Pair {
    main: Arc<CertifiedKey>,
    alt: Option<Arc<CertifiedKey>>,
}

impl Pair {
    /// The main pair unless the client cannot verify its signatures and the alternate can.
    fn choose(&self, schemes: &[SignatureScheme]) -> Arc<CertifiedKey> {
        match &self.alt {
            Some(alt)
                if self.main.key.choose_scheme(schemes).is_none()
                    && alt.key.choose_scheme(schemes).is_some() =>
            {
                Arc::clone(alt)
            }
            _ => Arc::clone(&self.main),
        }
    }
}

/// The server certificates of one configuration, by sni name.
#[derive(Debug)]
pub struct CertTable {
    by_name: HashMap<String, Pair>,
    default: Pair,
}

impl CertTable {
    /// A table with only the default certificate.
    pub fn only(default: Arc<CertifiedKey>) -> Self {
        Self {
            by_name: HashMap::new(),
            default: Pair {
                main: default,
                alt: None,
            },
        }
    }

    /// The table of `model`'s certificates and snis over `default`. Certificates that do not
    /// parse are left out, each reported in the returned list (entity id and reason).
    pub fn build(model: &Model, default: Arc<CertifiedKey>) -> (Self, Vec<String>) {
        let mut problems = Vec::new();
        let mut pairs: HashMap<&str, Pair> = HashMap::new();
        for cert in &model.certificates {
            let what = format!("certificate {}", cert.id);
            let main = match pem::certified_key(&what, &cert.cert, &cert.key) {
                Ok(k) => k,
                Err(e) => {
                    problems.push(e.to_string());
                    continue;
                }
            };
            let alt = match (&cert.cert_alt, &cert.key_alt) {
                (Some(c), Some(k)) => match pem::certified_key(&what, c, k) {
                    Ok(k) => Some(k),
                    Err(e) => {
                        problems.push(e.to_string());
                        None
                    }
                },
                _ => None,
            };
            pairs.insert(cert.id.as_str(), Pair { main, alt });
        }
        let mut by_name = HashMap::new();
        for sni in &model.snis {
            if let Some(pair) = pairs.get(sni.certificate.id.as_str()) {
                by_name.insert(sni.name.to_ascii_lowercase(), pair.clone());
            }
        }
        let table = Self {
            by_name,
            default: Pair {
                main: default,
                alt: None,
            },
        };
        (table, problems)
    }

    /// Whether no sni entity maps to a certificate.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    fn lookup(&self, sni: Option<&str>) -> &Pair {
        let Some(sni) = sni.filter(|s| !s.is_empty()) else {
            return &self.default;
        };
        if let Some(p) = self.by_name.get(sni) {
            return p;
        }
        if let Some((_, rest)) = sni.split_once('.') {
            if let Some(p) = self.by_name.get(&format!("*.{rest}")) {
                return p;
            }
        }
        if let Some((head, _)) = sni.rsplit_once('.') {
            if let Some(p) = self.by_name.get(&format!("{head}.*")) {
                return p;
            }
        }
        self.by_name.get("*").unwrap_or(&self.default)
    }

    /// The certificate for a client that sent `sni` and accepts `schemes`.
    pub fn select(&self, sni: Option<&str>, schemes: &[SignatureScheme]) -> Arc<CertifiedKey> {
        self.lookup(sni).choose(schemes)
    }
}

/// The rustls certificate resolver of the proxy's `ssl` listeners; the table is swapped
/// when the configuration changes.
#[derive(Debug)]
pub struct SniResolver(pub Arc<ArcSwap<CertTable>>);

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let sni = hello.server_name().map(str::to_ascii_lowercase);
        Some(
            self.0
                .load()
                .select(sni.as_deref(), hello.signature_schemes()),
        )
    }
}
