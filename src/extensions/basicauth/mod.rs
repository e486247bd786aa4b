//! `basicauth` extension. Server side (a receiver's `auth`): `Authorization: Basic …`
//! checked against htpasswd entries (bcrypt `$2y$`/`$2b$`/`$2a$`, SHA-1 `{SHA}`, or plain
//! text as in an `inline` entry built from env vars). Client side (an exporter's `auth`):
//! every request carries `client_auth`'s credentials.
//!
//! ```yaml
//! extensions:
//!   basicauth/server:
//!     htpasswd:
//!       file: /etc/otelpipe/.htpasswd
//!       inline: |
//!         ${env:BASIC_AUTH_USERNAME}:${env:BASIC_AUTH_PASSWORD}
//!   basicauth/client:
//!     client_auth:
//!       username: collector
//!       password: ${env:BACKEND_PASSWORD}
//! ```
//!
//! The file is read at start; `inline` entries follow the file's.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use base64::Engine;
use serde::Deserialize;

use crate::component::{
    Component, ComponentError, ExtensionFactory, FactoryInfo, Host, RawConfig, Stability,
};
use crate::config::{decode, ComponentId, FieldError};
use crate::extensions::auth::{constant_time_eq, AuthError, ClientAuth, ServerAuth};

/// `extensions::basicauth`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Server side: the accepted users.
    pub htpasswd: Option<Htpasswd>,
    /// Client side: the credentials sent.
    pub client_auth: Option<ClientCredentials>,
}

/// `htpasswd`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Htpasswd {
    /// An htpasswd file.
    pub file: String,
    /// htpasswd lines, inline.
    pub inline: String,
}

/// `client_auth`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ClientCredentials {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

impl Config {
    /// otelcol's rules.
    ///
    /// # Errors
    /// Neither or both of `htpasswd` and `client_auth`.
    pub fn validate(&self) -> Result<(), FieldError> {
        match (&self.htpasswd, &self.client_auth) {
            (Some(_), Some(_)) => Err(FieldError::new(
                "only one of `htpasswd` or `client_auth` can be specified",
            )),
            (None, None) => Err(FieldError::new("no credential source provided")),
            _ => Ok(()),
        }
    }
}

/// The `basicauth` factory.
pub struct Factory;

/// The registry entry.
pub static FACTORY: Factory = Factory;

static INFO: FactoryInfo = FactoryInfo {
    name: "basicauth",
    aliases: &[],
    stability: [Stability::Beta; 3],
};

impl ExtensionFactory for Factory {
    fn info(&self) -> &FactoryInfo {
        &INFO
    }

    fn validate(&self, config: &RawConfig) -> Result<(), FieldError> {
        decode::<Config>(config)?.validate()
    }

    fn create(
        &self,
        _id: &ComponentId,
        config: &RawConfig,
    ) -> Result<Arc<dyn Component>, ComponentError> {
        let config = decode::<Config>(config)?;
        config.validate()?;
        Ok(Arc::new(BasicAuth::new(config)))
    }
}

/// A running `basicauth` extension.
pub struct BasicAuth {
    config: Config,
    /// user → stored hash (or plain password).
    users: RwLock<Arc<HashMap<String, String>>>,
}

impl BasicAuth {
    /// An authenticator for `config`; `inline` entries are loaded now, the file at start.
    pub fn new(config: Config) -> Self {
        let inline = config
            .htpasswd
            .as_ref()
            .map(|h| parse(&h.inline))
            .unwrap_or_default();
        Self {
            config,
            users: RwLock::new(Arc::new(inline)),
        }
    }
}

/// `user:hash` lines; blank lines and `#` comments skipped.
fn parse(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (user, hash) = l.split_once(':')?;
            Some((user.to_owned(), hash.to_owned()))
        })
        .collect()
}

/// Whether `password` matches a stored htpasswd value.
fn verify(password: &str, stored: &str) -> bool {
    if stored.starts_with("$2y$") || stored.starts_with("$2b$") || stored.starts_with("$2a$") {
        return bcrypt::verify(password, stored).unwrap_or(false);
    }
    if let Some(digest) = stored.strip_prefix("{SHA}") {
        use sha1::Digest;
        let ours = base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(password));
        return constant_time_eq(ours.as_bytes(), digest.as_bytes());
    }
    constant_time_eq(password.as_bytes(), stored.as_bytes())
}

#[async_trait]
impl Component for BasicAuth {
    async fn start(&self, _host: &Host) -> Result<(), ComponentError> {
        let Some(htpasswd) = &self.config.htpasswd else {
            return Ok(());
        };
        if htpasswd.file.is_empty() {
            return Ok(());
        }
        let text = std::fs::read_to_string(&htpasswd.file).map_err(|e| {
            ComponentError::Other(format!("open htpasswd file {}: {e}", htpasswd.file))
        })?;
        let mut users = parse(&text);
        users.extend(parse(&htpasswd.inline));
        *self.users.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(users);
        Ok(())
    }

    fn server_auth(&self) -> Option<&dyn ServerAuth> {
        self.config
            .htpasswd
            .as_ref()
            .map(|_| self as &dyn ServerAuth)
    }

    fn client_auth(&self) -> Option<&dyn ClientAuth> {
        self.config
            .client_auth
            .as_ref()
            .map(|_| self as &dyn ClientAuth)
    }
}

impl ServerAuth for BasicAuth {
    fn authenticate(&self, headers: &http::HeaderMap) -> Result<(), AuthError> {
        let value = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .ok_or(AuthError::Missing)?;
        let encoded = value.strip_prefix("Basic ").ok_or(AuthError::Mismatch)?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| AuthError::Mismatch)?;
        let decoded = String::from_utf8(decoded).map_err(|_| AuthError::Mismatch)?;
        let (user, password) = decoded.split_once(':').ok_or(AuthError::Mismatch)?;
        let users = self.users.read().unwrap_or_else(|p| p.into_inner()).clone();
        match users.get(user) {
            Some(stored) if verify(password, stored) => Ok(()),
            _ => Err(AuthError::Mismatch),
        }
    }
}

impl ClientAuth for BasicAuth {
    fn headers(&self) -> Vec<(http::HeaderName, http::HeaderValue)> {
        let Some(creds) = &self.config.client_auth else {
            return Vec::new();
        };
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", creds.username, creds.password));
        match http::HeaderValue::try_from(format!("Basic {token}")) {
            Ok(mut value) => {
                value.set_sensitive(true);
                vec![(http::header::AUTHORIZATION, value)]
            }
            Err(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        h.insert(
            http::header::AUTHORIZATION,
            format!("Basic {token}").parse().unwrap(),
        );
        h
    }

    #[test]
    fn htpasswd_bcrypt_sha_and_plain() {
        let bcrypt_hash = bcrypt::hash("b-pass", 4).unwrap();
        // `htpasswd -s`: {SHA} + base64(sha1("s-pass")).
        use sha1::Digest;
        let sha = base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest("s-pass"));
        let auth = BasicAuth::new(Config {
            htpasswd: Some(Htpasswd {
                file: String::new(),
                inline: format!("bob:{bcrypt_hash}\nsam:{{SHA}}{sha}\npat:p-pass\n"),
            }),
            client_auth: None,
        });
        assert!(auth.authenticate(&basic("bob", "b-pass")).is_ok());
        assert!(auth.authenticate(&basic("sam", "s-pass")).is_ok());
        assert!(auth.authenticate(&basic("pat", "p-pass")).is_ok());
        for (user, password) in [("bob", "x"), ("sam", "x"), ("pat", "x"), ("eve", "p-pass")] {
            assert!(matches!(
                auth.authenticate(&basic(user, password)),
                Err(AuthError::Mismatch)
            ));
        }
        assert!(matches!(
            auth.authenticate(&http::HeaderMap::new()),
            Err(AuthError::Missing)
        ));
    }

    #[test]
    fn client_sends_basic_credentials() {
        let auth = BasicAuth::new(Config {
            htpasswd: None,
            client_auth: Some(ClientCredentials {
                username: "u".into(),
                password: "p".into(),
            }),
        });
        let headers = auth.headers();
        assert_eq!(headers[0].1, "Basic dTpw");
        assert!(auth.server_auth().is_none());
    }

    #[test]
    fn validation_follows_otelcol() {
        assert_eq!(
            Config::default().validate().unwrap_err().message,
            "no credential source provided"
        );
    }
}
