//! `bearertokenauth` extension. Server side (a receiver's `auth`): requests must carry
//! `Authorization: Bearer <token>`, compared in constant time. Client side (an exporter's
//! `auth`): every request carries that header.
//!
//! ```yaml
//! extensions:
//!   bearertokenauth:
//!     token: ${env:OTLP_TOKEN}     # or tokens: [a, b], or filename: /etc/otelpipe/token
//!     scheme: Bearer               # default; "" = the header holds the token alone
//!     header: Authorization        # default
//! receivers:
//!   otlp:
//!     protocols:
//!       http:
//!         auth:
//!           authenticator: bearertokenauth
//! service:
//!   extensions: [bearertokenauth]
//! ```
//!
//! With `filename`, each non-empty line of the file is a token; the file is re-read when it
//! changes (checked every second), so tokens rotate without a restart.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::component::{
    Component, ComponentError, ExtensionFactory, FactoryInfo, Host, RawConfig, Stability,
};
use crate::config::{decode, ComponentId, FieldError};
use crate::extensions::auth::{constant_time_eq, AuthError, ClientAuth, ServerAuth};

/// `extensions::bearertokenauth`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Header holding the credential. Default `Authorization`.
    pub header: String,
    /// Scheme before the token. Default `Bearer`.
    pub scheme: String,
    /// The token.
    pub token: String,
    /// Several accepted tokens (not with `token`).
    pub tokens: Vec<String>,
    /// File holding the tokens, one per line; re-read on change.
    pub filename: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            header: "Authorization".to_owned(),
            scheme: "Bearer".to_owned(),
            token: String::new(),
            tokens: Vec::new(),
            filename: String::new(),
        }
    }
}

impl Config {
    /// otelcol's rules.
    ///
    /// # Errors
    /// No token source, or both `token` and `tokens`.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.token.is_empty() && self.tokens.is_empty() && self.filename.is_empty() {
            return Err(FieldError::new("no bearer token provided"));
        }
        if !self.token.is_empty() && !self.tokens.is_empty() {
            return Err(FieldError::new(
                "either tokens or token should be provided, not both",
            ));
        }
        Ok(())
    }
}

/// The `bearertokenauth` factory.
pub struct Factory;

/// The registry entry.
pub static FACTORY: Factory = Factory;

static INFO: FactoryInfo = FactoryInfo {
    name: "bearertokenauth",
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
        Ok(Arc::new(BearerTokenAuth::new(config)))
    }
}

/// A running `bearertokenauth` extension.
pub struct BearerTokenAuth {
    config: Config,
    /// The full expected header values (`Bearer <token>`).
    expected: Arc<RwLock<Vec<Vec<u8>>>>,
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl BearerTokenAuth {
    /// An authenticator for `config` (tokens from the file are read at start).
    pub fn new(config: Config) -> Self {
        let mut tokens = config.tokens.clone();
        if !config.token.is_empty() {
            tokens.push(config.token.clone());
        }
        let expected = expected_values(&config.scheme, &tokens);
        Self {
            config,
            expected: Arc::new(RwLock::new(expected)),
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
        }
    }
}

fn expected_values(scheme: &str, tokens: &[String]) -> Vec<Vec<u8>> {
    tokens
        .iter()
        .map(|t| {
            if scheme.is_empty() {
                t.as_bytes().to_vec()
            } else {
                format!("{scheme} {t}").into_bytes()
            }
        })
        .collect()
}

fn read_tokens(path: &str) -> std::io::Result<Vec<String>> {
    Ok(std::fs::read_to_string(path)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

fn modified(path: &str) -> Option<SystemTime> {
    std::fs::metadata(path).ok()?.modified().ok()
}

#[async_trait]
impl Component for BearerTokenAuth {
    async fn start(&self, _host: &Host) -> Result<(), ComponentError> {
        if self.config.filename.is_empty() {
            return Ok(());
        }
        let path = self.config.filename.clone();
        let scheme = self.config.scheme.clone();
        let load = move |path: &str| -> Result<Vec<Vec<u8>>, ComponentError> {
            let tokens = read_tokens(path).map_err(|e| {
                ComponentError::Other(format!("failed to read bearer token file {path}: {e}"))
            })?;
            Ok(expected_values(&scheme, &tokens))
        };
        *self.expected.write().unwrap_or_else(|p| p.into_inner()) = load(&path)?;
        let expected = self.expected.clone();
        let stop = self.stop.clone();
        self.tasks.spawn(async move {
            let mut seen = modified(&path);
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = tick.tick() => {}
                }
                let now = modified(&path);
                if now == seen {
                    continue;
                }
                seen = now;
                match load(&path) {
                    Ok(values) => {
                        *expected.write().unwrap_or_else(|p| p.into_inner()) = values;
                        tracing::info!(file = %path, "Bearer token file reloaded.");
                    }
                    Err(e) => tracing::warn!(error = %e, "Bearer token file reload failed."),
                }
            }
        });
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), ComponentError> {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        Ok(())
    }

    fn server_auth(&self) -> Option<&dyn ServerAuth> {
        Some(self)
    }

    fn client_auth(&self) -> Option<&dyn ClientAuth> {
        Some(self)
    }
}

impl ClientAuth for BearerTokenAuth {
    fn headers(&self) -> Vec<(http::HeaderName, http::HeaderValue)> {
        let expected = self.expected.read().unwrap_or_else(|p| p.into_inner());
        let (Some(value), Ok(name)) = (
            expected.first(),
            http::HeaderName::try_from(self.config.header.as_str()),
        ) else {
            return Vec::new();
        };
        match http::HeaderValue::from_bytes(value) {
            Ok(mut value) => {
                value.set_sensitive(true);
                vec![(name, value)]
            }
            Err(_) => Vec::new(),
        }
    }
}

impl ServerAuth for BearerTokenAuth {
    fn authenticate(&self, headers: &http::HeaderMap) -> Result<(), AuthError> {
        let given = headers
            .get(self.config.header.as_str())
            .map(http::HeaderValue::as_bytes)
            .filter(|v| !v.is_empty())
            .ok_or(AuthError::Missing)?;
        let expected = self.expected.read().unwrap_or_else(|p| p.into_inner());
        // Every token is compared, so the time does not tell which one matched.
        let matched = expected
            .iter()
            .fold(false, |found, want| constant_time_eq(given, want) | found);
        if matched {
            Ok(())
        } else {
            Err(AuthError::Mismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert("authorization", value.parse().unwrap());
        h
    }

    #[test]
    fn checks_scheme_and_token() {
        let auth = BearerTokenAuth::new(Config {
            tokens: vec!["one".into(), "two".into()],
            ..Config::default()
        });
        assert!(auth.authenticate(&headers("Bearer two")).is_ok());
        assert!(matches!(
            auth.authenticate(&headers("Bearer three")),
            Err(AuthError::Mismatch)
        ));
        assert!(matches!(
            auth.authenticate(&headers("two")),
            Err(AuthError::Mismatch)
        ));
        assert!(matches!(
            auth.authenticate(&http::HeaderMap::new()),
            Err(AuthError::Missing)
        ));
        let bare = BearerTokenAuth::new(Config {
            token: "t".into(),
            scheme: String::new(),
            ..Config::default()
        });
        assert!(bare.authenticate(&headers("t")).is_ok());
    }

    #[test]
    fn validation_follows_otelcol() {
        assert_eq!(
            Config::default().validate().unwrap_err().message,
            "no bearer token provided"
        );
        let both = Config {
            token: "a".into(),
            tokens: vec!["b".into()],
            ..Config::default()
        };
        assert_eq!(
            both.validate().unwrap_err().message,
            "either tokens or token should be provided, not both"
        );
    }
}
