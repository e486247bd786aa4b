//! `headers_setter` extension: a client authenticator (an exporter's `auth`) that sets
//! headers on every outgoing request, from fixed values or from the metadata of the request
//! that brought the data in.
//!
//! ```yaml
//! extensions:
//!   headers_setter:
//!     headers:
//!       - key: X-Scope-OrgID
//!         from_context: tenant_id     # request metadata key (receiver include_metadata: true)
//!         default_value: anonymous    # when the request had none
//!       - key: Api-Key
//!         value: ${env:API_KEY}
//!         action: insert              # insert | update | upsert (default) | delete
//!       - key: X-Debug
//!         action: delete
//! receivers:
//!   otlp:
//!     protocols:
//!       http:
//!         include_metadata: true
//! exporters:
//!   otlphttp:
//!     endpoint: https://backend:4318
//!     auth:
//!       authenticator: headers_setter
//! service:
//!   extensions: [headers_setter]
//! ```
//!
//! `from_context` reads the metadata the sending queue kept with the batch (an in-memory
//! queue keeps it; a persistent queue and a batch processor without `metadata_keys` do
//! not, as in otelcol): its first value, else `default_value`; with neither, the header is
//! left as it is. Values are secrets: shown as `[REDACTED]` and never logged.

pub mod config;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::component::{
    Component, ComponentError, ExtensionFactory, FactoryInfo, RawConfig, Stability,
};
use crate::config::{decode, ComponentId, FieldError};
use crate::extensions::auth::ClientAuth;
use crate::pipeline::ClientInfo;
pub use config::{Action, Config, Header};

/// The `headers_setter` factory.
pub struct Factory;

/// The registry entry.
pub static FACTORY: Factory = Factory;

static INFO: FactoryInfo = FactoryInfo {
    name: "headers_setter",
    aliases: &[],
    stability: [Stability::Alpha; 3],
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
        Ok(Arc::new(HeadersSetter::new(&config)?))
    }
}

/// Where a header's value comes from.
enum Source {
    Fixed(HeaderValue),
    Context {
        key: String,
        default: Option<HeaderValue>,
    },
    None,
}

/// One validated `headers` entry.
struct Rule {
    name: HeaderName,
    action: Action,
    source: Source,
}

/// A running `headers_setter` extension.
pub struct HeadersSetter {
    rules: Vec<Rule>,
}

fn sensitive(text: &str, key: &str) -> Result<HeaderValue, ComponentError> {
    let mut value = HeaderValue::try_from(text)
        .map_err(|_| ComponentError::Other(format!("invalid value for header {key:?}")))?;
    value.set_sensitive(true);
    Ok(value)
}

impl HeadersSetter {
    /// The rules of a validated config.
    ///
    /// # Errors
    /// A value that cannot be sent in a header (the message names the header only).
    pub fn new(config: &Config) -> Result<Self, ComponentError> {
        let mut rules = Vec::with_capacity(config.headers.len());
        for header in &config.headers {
            let key = header.key.clone().unwrap_or_default();
            let name = HeaderName::try_from(key.as_str())
                .map_err(|_| ComponentError::Other(format!("invalid header name {key:?}")))?;
            let source = match (&header.value, &header.from_context) {
                _ if header.action == Action::Delete => Source::None,
                (Some(value), _) => Source::Fixed(sensitive(value, &key)?),
                (None, Some(from)) => Source::Context {
                    key: from.clone(),
                    default: header
                        .default_value
                        .as_deref()
                        .map(|d| sensitive(d, &key))
                        .transpose()?,
                },
                (None, None) => Source::None,
            };
            rules.push(Rule {
                name,
                action: header.action,
                source,
            });
        }
        Ok(Self { rules })
    }

    /// Applies the rules to `headers` for data sent by `client`.
    pub fn apply_for(&self, headers: &mut HeaderMap, client: Option<&ClientInfo>) {
        for rule in &self.rules {
            if rule.action == Action::Delete {
                headers.remove(&rule.name);
                continue;
            }
            let value = match &rule.source {
                Source::Fixed(v) => Some(v.clone()),
                Source::Context { key, default } => client
                    .and_then(|c| c.metadata_values(key).next())
                    .and_then(|v| HeaderValue::try_from(v).ok())
                    .map(|mut v| {
                        v.set_sensitive(true);
                        v
                    })
                    .or_else(|| default.clone()),
                Source::None => None,
            };
            let Some(value) = value else {
                continue;
            };
            let present = headers.contains_key(&rule.name);
            let set = match rule.action {
                Action::Insert => !present,
                Action::Update => present,
                Action::Upsert => true,
                Action::Delete => false,
            };
            if set {
                headers.insert(rule.name.clone(), value);
            }
        }
    }
}

#[async_trait]
impl Component for HeadersSetter {
    fn client_auth(&self) -> Option<&dyn ClientAuth> {
        Some(self)
    }
}

impl ClientAuth for HeadersSetter {
    fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let mut headers = HeaderMap::new();
        self.apply(&mut headers);
        headers
            .into_iter()
            .filter_map(|(name, value)| Some((name?, value)))
            .collect()
    }

    fn apply(&self, headers: &mut HeaderMap) {
        crate::pipeline::client::with_current(|client| self.apply_for(headers, client));
    }
}
