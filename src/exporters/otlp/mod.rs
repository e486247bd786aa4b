//! `otlp` exporter: OTLP over gRPC, e.g. to Jaeger (which accepts OTLP on 4317).
//!
//! ```yaml
//! exporters:
//!   otlp:
//!     endpoint: jaeger:4317
//!     tls:
//!       insecure: true      # Jaeger's OTLP port is plaintext; the default is TLS
//! ```
//!
//! One instance per signal. Status codes as otelcol reads them: `CANCELLED`,
//! `DEADLINE_EXCEEDED`, `ABORTED`, `OUT_OF_RANGE`, `UNAVAILABLE`, `DATA_LOSS` are retryable,
//! `RESOURCE_EXHAUSTED` only when the status carries `RetryInfo` (whose delay is honoured);
//! everything else is permanent.

mod codec;
mod config;
mod send;

use std::sync::Arc;

pub use config::Config;

use crate::component::{
    BoxNode, ComponentError, CreateSettings, ExporterFactory, FactoryInfo, RawConfig, Stability,
};
use crate::config::{decode, FieldError};
use crate::exporters::queue::QueuedExporter;

/// The `otlp` exporter factory.
pub struct Factory;

/// The registry entry.
pub static FACTORY: Factory = Factory;

static INFO: FactoryInfo = FactoryInfo {
    name: "otlp",
    aliases: &["otlp_grpc"],
    stability: [Stability::Stable, Stability::Stable, Stability::Beta],
};

impl ExporterFactory for Factory {
    fn info(&self) -> &FactoryInfo {
        &INFO
    }

    fn validate(&self, config: &RawConfig) -> Result<(), FieldError> {
        decode::<Config>(config)?.validate()
    }

    fn create(
        &self,
        settings: &CreateSettings,
        config: &RawConfig,
    ) -> Result<BoxNode, ComponentError> {
        let config = decode::<Config>(config)?;
        config.validate()?;
        let sender = send::GrpcSender::new(&config)?;
        Ok(Arc::new(QueuedExporter::new(
            sender,
            &settings.id.to_string(),
            settings.signal,
            config.timeout,
            config.retry_on_failure,
            config.sending_queue,
        )))
    }
}

pub use send::retry_delay;
