//! What every component is, and the factories that build them.
//!
//! A factory names a component type, says which signals it supports, decodes and validates
//! its own config section, and builds instances. Adding a component is its own module plus
//! one line in [`crate::registry`].

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::{ComponentId, FieldError};
use crate::pipeline::{BoxConsumer, Consumer, Signal};

/// How mature a component's support for a signal is, as `otelpipe components` prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stability {
    /// Not supported for this signal.
    Undefined,
    /// Early; config may change.
    Development,
    /// Usable; config may change.
    Alpha,
    /// Config stable, behaviour may gain features.
    Beta,
    /// Stable.
    Stable,
}

impl Stability {
    /// The name otelcol prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Undefined => "Undefined",
            Self::Development => "Development",
            Self::Alpha => "Alpha",
            Self::Beta => "Beta",
            Self::Stable => "Stable",
        }
    }
}

/// What a factory says about itself.
#[derive(Clone, Copy, Debug)]
pub struct FactoryInfo {
    /// The component type as users write it in ids (`otlphttp`).
    pub name: &'static str,
    /// Other accepted type names (`otlp_http`).
    pub aliases: &'static [&'static str],
    /// Stability for traces, metrics and logs (for connectors, by the exporter side).
    pub stability: [Stability; 3],
}

impl FactoryInfo {
    /// True when `name` is this component's type or one of its aliases.
    pub fn answers_to(&self, name: &str) -> bool {
        self.name == name || self.aliases.contains(&name)
    }

    /// True when the component supports `signal`.
    pub fn supports(&self, signal: Signal) -> bool {
        self.stability[signal as usize] != Stability::Undefined
    }
}

/// Shared state components may read while running.
#[derive(Clone, Debug)]
pub struct Host {
    /// True once every pipeline started, false again when shutdown begins.
    pub ready: watch::Receiver<bool>,
    /// Cancelled when the collector shuts down.
    pub shutdown: CancellationToken,
    /// The extensions of `service.extensions`, started before any other component.
    pub extensions: Extensions,
}

/// The running extensions by id, for components that use one (a persistent queue's
/// storage).
#[derive(Clone, Default)]
pub struct Extensions(Arc<Vec<(String, Arc<dyn Component>)>>);

impl Extensions {
    /// The extensions `(id, component)`, in `service.extensions` order.
    pub fn new(extensions: Vec<(String, Arc<dyn Component>)>) -> Self {
        Self(Arc::new(extensions))
    }

    /// The extension with id `id`.
    pub fn get(&self, id: &str) -> Option<&Arc<dyn Component>> {
        self.0.iter().find(|(name, _)| name == id).map(|(_, c)| c)
    }
}

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(id, _)| id))
            .finish()
    }
}

/// Errors raised while building, starting or stopping a component.
#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    /// The config section could not be decoded or failed validation.
    #[error("{0}")]
    Config(#[from] FieldError),
    /// A listener could not bind.
    #[error("listen on {endpoint}: {source}")]
    Bind {
        /// The configured endpoint.
        endpoint: String,
        /// Why the bind failed.
        source: std::io::Error,
    },
    /// Anything else, described.
    #[error("{0}")]
    Other(String),
}

/// The lifecycle every running component has.
///
/// `start` binds and spawns; `shutdown` stops accepting, flushes what it holds, releases its
/// resources, and is safe to call without `start`.
#[async_trait]
pub trait Component: Send + Sync + 'static {
    /// Starts the component. Receivers bind their listeners here.
    async fn start(&self, host: &Host) -> Result<(), ComponentError> {
        let _ = host;
        Ok(())
    }

    /// Stops the component, flushing buffered data downstream.
    async fn shutdown(&self) -> Result<(), ComponentError> {
        Ok(())
    }

    /// The storage this component offers, when it is a storage extension.
    fn storage(&self) -> Option<&dyn crate::extensions::storage::Storage> {
        None
    }

    /// The request check this component offers, when it is a server authenticator.
    fn server_auth(&self) -> Option<&dyn crate::extensions::auth::ServerAuth> {
        None
    }

    /// What this component adds to outgoing requests, when it is a client authenticator.
    fn client_auth(&self) -> Option<&dyn crate::extensions::auth::ClientAuth> {
        None
    }
}

/// A component that also takes data: processors, exporters, connectors.
pub trait Node: Consumer + Component {}
impl<T: Consumer + Component> Node for T {}

/// A built processor, exporter or connector.
pub type BoxNode = Arc<dyn Node>;

/// Identity and context given to a factory when it builds an instance.
#[derive(Clone, Debug)]
pub struct CreateSettings {
    /// The component id (`otlphttp/dynatrace`).
    pub id: ComponentId,
    /// The signal this instance handles (receivers: the first of their signals).
    pub signal: Signal,
    /// The pipeline this instance belongs to (processors only; otherwise empty).
    pub pipeline: String,
}

/// The consumers a receiver feeds, one per signal some pipeline uses it for.
#[derive(Clone, Default)]
pub struct ReceiverConsumers {
    /// Where traces go, if a traces pipeline lists this receiver.
    pub traces: Option<BoxConsumer>,
    /// Where metrics go, if a metrics pipeline lists this receiver.
    pub metrics: Option<BoxConsumer>,
    /// Where logs go, if a logs pipeline lists this receiver.
    pub logs: Option<BoxConsumer>,
}

impl ReceiverConsumers {
    /// The consumer for `signal`, if any pipeline of that signal uses the receiver.
    pub fn get(&self, signal: Signal) -> Option<&BoxConsumer> {
        match signal {
            Signal::Traces => self.traces.as_ref(),
            Signal::Metrics => self.metrics.as_ref(),
            Signal::Logs => self.logs.as_ref(),
        }
    }

    /// Sets the consumer for `signal`.
    pub fn set(&mut self, signal: Signal, consumer: BoxConsumer) {
        match signal {
            Signal::Traces => self.traces = Some(consumer),
            Signal::Metrics => self.metrics = Some(consumer),
            Signal::Logs => self.logs = Some(consumer),
        }
    }
}

/// The config section of one component, as written (after merge and `${…}` expansion).
pub type RawConfig = yaml_serde::Value;

/// Builds receivers of one type.
pub trait ReceiverFactory: Send + Sync {
    /// Name, aliases, stability.
    fn info(&self) -> &FactoryInfo;
    /// Decodes and validates `config`.
    ///
    /// # Errors
    /// The first problem found, with its key path relative to the section.
    fn validate(&self, config: &RawConfig) -> Result<(), FieldError>;
    /// The `host:port` endpoints the receiver will listen on, so two receivers on one port
    /// are rejected before any binds.
    fn endpoints(&self, config: &RawConfig) -> Vec<String> {
        let _ = config;
        Vec::new()
    }
    /// Builds one receiver instance that feeds `consumers`.
    ///
    /// # Errors
    /// When the config is invalid or a resource cannot be prepared.
    fn create(
        &self,
        settings: &CreateSettings,
        config: &RawConfig,
        consumers: ReceiverConsumers,
    ) -> Result<Arc<dyn Component>, ComponentError>;
}

/// Builds processors of one type: one instance per (pipeline, processor id).
pub trait ProcessorFactory: Send + Sync {
    /// Name, aliases, stability.
    fn info(&self) -> &FactoryInfo;
    /// Decodes and validates `config`.
    ///
    /// # Errors
    /// The first problem found, with its key path relative to the section.
    fn validate(&self, config: &RawConfig) -> Result<(), FieldError>;
    /// Builds a processor for `settings.signal` that hands its output to `next`.
    ///
    /// # Errors
    /// When the config is invalid.
    fn create(
        &self,
        settings: &CreateSettings,
        config: &RawConfig,
        next: BoxConsumer,
    ) -> Result<BoxNode, ComponentError>;
}

/// Builds exporters of one type: one instance per (exporter id, signal).
pub trait ExporterFactory: Send + Sync {
    /// Name, aliases, stability.
    fn info(&self) -> &FactoryInfo;
    /// Decodes and validates `config`.
    ///
    /// # Errors
    /// The first problem found, with its key path relative to the section.
    fn validate(&self, config: &RawConfig) -> Result<(), FieldError>;
    /// The `host:port` endpoints the exporter listens on (pull exporters), so a port
    /// clash with a receiver or extension is rejected before any binds.
    fn endpoints(&self, config: &RawConfig) -> Vec<String> {
        let _ = config;
        Vec::new()
    }
    /// Builds an exporter for `settings.signal`.
    ///
    /// # Errors
    /// When the config is invalid for this signal (e.g. no endpoint for it).
    fn create(
        &self,
        settings: &CreateSettings,
        config: &RawConfig,
    ) -> Result<BoxNode, ComponentError>;
}

/// Builds connectors of one type: one instance per (connector id, from, to).
pub trait ConnectorFactory: Send + Sync {
    /// Name, aliases; stability of the exporter side.
    fn info(&self) -> &FactoryInfo;
    /// The (from, to) signal pairs supported.
    fn pairs(&self) -> &'static [(Signal, Signal)];
    /// Decodes and validates `config`.
    ///
    /// # Errors
    /// The first problem found, with its key path relative to the section.
    fn validate(&self, config: &RawConfig) -> Result<(), FieldError>;
    /// Builds a connector that takes `from` data and hands `to` data to `next`.
    ///
    /// # Errors
    /// When the config is invalid.
    fn create(
        &self,
        settings: &CreateSettings,
        config: &RawConfig,
        from: Signal,
        to: Signal,
        next: BoxConsumer,
    ) -> Result<BoxNode, ComponentError>;
}

/// Builds extensions of one type.
pub trait ExtensionFactory: Send + Sync {
    /// Name and aliases (stability is per collector, not per signal).
    fn info(&self) -> &FactoryInfo;
    /// Decodes and validates `config`.
    ///
    /// # Errors
    /// The first problem found, with its key path relative to the section.
    fn validate(&self, config: &RawConfig) -> Result<(), FieldError>;
    /// The endpoints the extension listens on.
    fn endpoints(&self, config: &RawConfig) -> Vec<String> {
        let _ = config;
        Vec::new()
    }
    /// Builds the extension.
    ///
    /// # Errors
    /// When the config is invalid.
    fn create(
        &self,
        id: &ComponentId,
        config: &RawConfig,
    ) -> Result<Arc<dyn Component>, ComponentError>;
}
