//! What a server authenticator extension offers the receivers that name it in
//! `auth: {authenticator: <id>}`: a check of each request's headers (HTTP) or metadata
//! (gRPC), before the body is read.

use std::sync::Arc;

use serde::Deserialize;

use crate::component::{Component, ComponentError, Host};

/// `auth` of a server or client: the authenticator extension's id.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    /// The extension id (`bearertokenauth`, `basicauth/server`).
    pub authenticator: String,
}

/// A resolved server authenticator: the running extension.
#[derive(Clone)]
pub struct Authenticator(Arc<dyn Component>);

impl Authenticator {
    /// Finds the extension `auth` names among the running ones.
    ///
    /// # Errors
    /// No such extension, or one that is not a server authenticator.
    pub fn resolve(host: &Host, auth: Option<&Auth>) -> Result<Option<Self>, ComponentError> {
        let Some(auth) = auth else {
            return Ok(None);
        };
        match host.extensions.get(&auth.authenticator) {
            Some(ext) if ext.server_auth().is_some() => Ok(Some(Self(ext.clone()))),
            _ => Err(ComponentError::Other(format!(
                "failed to resolve authenticator \"{}\": authenticator not found",
                auth.authenticator
            ))),
        }
    }

    /// Accepts or refuses a request by its headers.
    ///
    /// # Errors
    /// [`AuthError`].
    pub fn check(&self, headers: &http::HeaderMap) -> Result<(), AuthError> {
        match self.0.server_auth() {
            Some(auth) => auth.authenticate(headers),
            None => Err(AuthError::Missing),
        }
    }
}

/// Why a request was not authenticated. The message never holds the credential.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No credential in the request.
    #[error("missing or empty authorization header")]
    Missing,
    /// A credential that does not match.
    #[error("provided authorization does not match expected scheme or token")]
    Mismatch,
}

/// A server authenticator.
pub trait ServerAuth: Send + Sync {
    /// Accepts or refuses a request by its headers.
    ///
    /// # Errors
    /// [`AuthError`]: answered 401 / `UNAUTHENTICATED`.
    fn authenticate(&self, headers: &http::HeaderMap) -> Result<(), AuthError>;
}

/// A client authenticator: what to add to each outgoing request.
pub trait ClientAuth: Send + Sync {
    /// Headers (or gRPC metadata) to add; values are marked sensitive.
    fn headers(&self) -> Vec<(http::HeaderName, http::HeaderValue)>;

    /// Edits the headers (or gRPC metadata) of one outgoing request. The default sets
    /// [`ClientAuth::headers`], replacing values already there.
    fn apply(&self, headers: &mut http::HeaderMap) {
        for (name, value) in self.headers() {
            headers.insert(name, value);
        }
    }
}

/// A resolved client authenticator: the running extension.
#[derive(Clone)]
pub struct ClientAuthenticator(Arc<dyn Component>);

impl ClientAuthenticator {
    /// Finds the extension `auth` names among the running ones.
    ///
    /// # Errors
    /// No such extension, or one that is not a client authenticator.
    pub fn resolve(host: &Host, auth: Option<&Auth>) -> Result<Option<Self>, ComponentError> {
        let Some(auth) = auth else {
            return Ok(None);
        };
        match host.extensions.get(&auth.authenticator) {
            Some(ext) if ext.client_auth().is_some() => Ok(Some(Self(ext.clone()))),
            _ => Err(ComponentError::Other(format!(
                "failed to resolve authenticator \"{}\": authenticator not found",
                auth.authenticator
            ))),
        }
    }

    /// Edits the headers of the next request (see [`ClientAuth::apply`]).
    pub fn apply(&self, headers: &mut http::HeaderMap) {
        if let Some(auth) = self.0.client_auth() {
            auth.apply(headers);
        }
    }

    /// The headers to add to the next request.
    pub fn headers(&self) -> Vec<(http::HeaderName, http::HeaderValue)> {
        self.0
            .client_auth()
            .map(ClientAuth::headers)
            .unwrap_or_default()
    }
}

/// Compares in time that depends on the lengths only, not on where the bytes differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
