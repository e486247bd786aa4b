//! `otlphttp` exporter: OTLP over HTTP (protobuf or JSON), e.g. to Dynatrace.
//!
//! ```yaml
//! exporters:
//!   otlphttp:
//!     endpoint: "${env:DT_ENDPOINT}"          # …/api/v2/otlp → …/api/v2/otlp/v1/traces
//!     headers:
//!       Authorization: "Api-Token ${env:DT_API_TOKEN}"
//! ```
//!
//! One instance (one queue) per signal. Responses as otelcol reads them: 2xx is success
//! (a `partial_success` is logged, not retried); 429, 502, 503 and 504 are retryable, with
//! an integer `Retry-After` honoured on 429 and 503; every other status is permanent and the
//! data is dropped, counted and logged with the server's `google.rpc.Status` message.
//! Transport errors are retryable.

mod config;
mod send;
#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use config::{Config, TlsClient};

use crate::component::{
    BoxNode, ComponentError, CreateSettings, ExporterFactory, FactoryInfo, RawConfig, Stability,
};
use crate::config::{decode, FieldError};
use crate::exporters::queue::QueuedExporter;

/// The `otlphttp` factory.
pub struct Factory;

/// The registry entry.
pub static FACTORY: Factory = Factory;

static INFO: FactoryInfo = FactoryInfo {
    name: "otlphttp",
    aliases: &["otlp_http"],
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
        let url = config.url(settings.signal)?;
        let sender = send::HttpSender::new(&config, url, settings.signal)?;
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
