//! `prometheus` exporter: serves the metrics it receives on `/metrics` for Prometheus to
//! scrape (pull model).
//!
//! ```yaml
//! exporters:
//!   prometheus:
//!     endpoint: 0.0.0.0:8889
//!     namespace: kong
//!     const_labels: {cluster: eu-1}
//!     send_timestamps: false
//!     metric_expiration: 5m
//!     resource_to_telemetry_conversion:
//!       enabled: false
//!     enable_open_metrics: false
//!     add_metric_suffixes: true
//! ```
//!
//! Every data point updates the latest value of its series ([`accumulate`]); delta
//! counters and histograms are re-accumulated into cumulative ones. A scrape takes a
//! snapshot of the live series under the lock (reference counts only), releases it, and
//! renders ([`render`]) the text format 0.0.4, or OpenMetrics when enabled and asked for;
//! gzip when accepted. Names follow [`naming`] (`_total`, unit suffixes); `target_info`
//! carries the resource attributes of each (job, instance). Exponential histograms are
//! not supported (dropped with an error, as otelcol 0.119).

pub mod accumulate;
mod config;
pub mod naming;
pub mod render;
#[cfg(test)]
mod tests;

use std::io::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use async_trait::async_trait;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{Config, ResourceToTelemetry};

use crate::component::{
    BoxNode, Component, ComponentError, CreateSettings, ExporterFactory, FactoryInfo, Host,
    RawConfig, Stability,
};
use crate::config::{decode, FieldError};
use crate::pipeline::{Batch, ClientInfo, ConsumeError, Consumer, Signal};
use crate::telemetry::names;
use accumulate::{Accumulator, Naming};

/// The `prometheus` exporter factory.
pub struct Factory;

/// The registry entry.
pub static FACTORY: Factory = Factory;

static INFO: FactoryInfo = FactoryInfo {
    name: "prometheus",
    aliases: &[],
    stability: [Stability::Undefined, Stability::Beta, Stability::Undefined],
};

impl ExporterFactory for Factory {
    fn info(&self) -> &FactoryInfo {
        &INFO
    }

    fn validate(&self, config: &RawConfig) -> Result<(), FieldError> {
        decode::<Config>(config)?.validate()
    }

    fn endpoints(&self, config: &RawConfig) -> Vec<String> {
        decode::<Config>(config)
            .map(|c| vec![c.endpoint])
            .unwrap_or_default()
    }

    fn create(
        &self,
        settings: &CreateSettings,
        config: &RawConfig,
    ) -> Result<BoxNode, ComponentError> {
        let config = decode::<Config>(config)?;
        config.validate()?;
        Ok(Arc::new(Prometheus::new(config, &settings.id.to_string())?))
    }
}

/// What the exporter and its HTTP handler share.
struct Shared {
    accumulator: Mutex<Accumulator>,
    config: Config,
    namespace: String,
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// A running `prometheus` exporter.
pub struct Prometheus {
    shared: Arc<Shared>,
    name: String,
    stop: CancellationToken,
    tasks: TaskTracker,
    bound: Mutex<Option<std::net::SocketAddr>>,
}

impl Prometheus {
    /// An exporter for `config`, named `name` in logs and own metrics.
    ///
    /// # Errors
    /// A `response_headers` entry that is not a valid HTTP header.
    pub fn new(config: Config, name: &str) -> Result<Self, ComponentError> {
        let namespace = naming::clean(&config.namespace);
        let naming = Naming {
            namespace: namespace.clone(),
            const_labels: config
                .const_labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            suffixes: config.add_metric_suffixes,
            resource_to_telemetry: config.resource_to_telemetry_conversion.enabled,
        };
        let headers = config
            .response_headers
            .iter()
            .map(|(k, v)| {
                Ok((
                    HeaderName::try_from(k.as_str())
                        .map_err(|e| FieldError::at(&["response_headers", k], e.to_string()))?,
                    HeaderValue::try_from(v.as_str())
                        .map_err(|e| FieldError::at(&["response_headers", k], e.to_string()))?,
                ))
            })
            .collect::<Result<Vec<_>, FieldError>>()?;
        Ok(Self {
            shared: Arc::new(Shared {
                accumulator: Mutex::new(Accumulator::new(naming, config.metric_expiration)),
                config,
                namespace,
                headers,
            }),
            name: name.to_owned(),
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
            bound: Mutex::new(None),
        })
    }

    /// The address the server bound, once started.
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        *self.bound.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The body a scrape with these `Accept` / `Accept-Encoding` headers gets.
    pub fn scrape(&self, headers: &HeaderMap) -> Response {
        respond(&self.shared, headers)
    }
}

#[async_trait]
impl Consumer for Prometheus {
    async fn consume(&self, batch: Batch, _client: &ClientInfo) -> Result<(), ConsumeError> {
        let Batch::Metrics(resources) = &batch else {
            return Ok(());
        };
        let outcome = self
            .shared
            .accumulator
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .accumulate(resources, Instant::now());
        let labels = [("exporter", self.name.clone())];
        metrics::counter!(
            names::with_items(names::EXPORTER_SENT, Signal::Metrics),
            &labels
        )
        .increment(outcome.accepted);
        let failed = outcome.dropped + outcome.exponential;
        if failed > 0 {
            metrics::counter!(
                names::with_items(names::EXPORTER_SEND_FAILED, Signal::Metrics),
                &labels
            )
            .increment(failed);
        }
        if outcome.exponential > 0 {
            tracing::error!(
                exporter = %self.name,
                points = outcome.exponential,
                "failed to translate metric: exponential histograms are not supported"
            );
        }
        if outcome.collisions > 0 {
            tracing::error!(
                exporter = %self.name,
                points = outcome.collisions,
                "failed to convert metric: two attributes map to the same label name"
            );
        }
        Ok(())
    }
}

#[async_trait]
impl Component for Prometheus {
    async fn start(&self, _host: &Host) -> Result<(), ComponentError> {
        let endpoint = &self.shared.config.endpoint;
        let listener = crate::tls::listener::bind(
            endpoint,
            self.shared.config.tls.as_ref(),
            crate::tls::listener::ALPN_HTTP,
        )
        .await?;
        *self.bound.lock().unwrap_or_else(PoisonError::into_inner) = listener.local_addr().ok();
        tracing::info!(exporter = %self.name, endpoint = %endpoint, "Serving Prometheus metrics.");
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(self.shared.clone());
        let timeouts = self.shared.config.timeouts();
        self.tasks.spawn(crate::tls::serve::serve(
            listener,
            app,
            timeouts,
            self.stop.clone(),
        ));
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), ComponentError> {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        Ok(())
    }
}

async fn handle(State(shared): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    // promhttp answers `/metrics` exactly, for any method.
    if uri.path() != "/metrics" {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "404 page not found\n",
        )
            .into_response();
    }
    respond(&shared, &headers)
}

fn accepts(headers: &HeaderMap, name: HeaderName, wanted: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| {
            let mut params = part.split(';');
            let value = params.next().unwrap_or("").trim();
            let refused = params.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            value.eq_ignore_ascii_case(wanted) && !refused
        })
}

fn respond(shared: &Shared, headers: &HeaderMap) -> Response {
    let open_metrics = shared.config.enable_open_metrics
        && accepts(headers, header::ACCEPT, "application/openmetrics-text");
    // Only reference counts are taken under the lock; rendering runs without it.
    let snapshot = shared
        .accumulator
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .snapshot(Instant::now());
    let rendered = render::render(
        &snapshot,
        render::Options {
            open_metrics,
            send_timestamps: shared.config.send_timestamps,
            namespace: &shared.namespace,
        },
    );
    if rendered.type_conflicts > 0 {
        tracing::error!(
            series = rendered.type_conflicts,
            "instrument type conflict: series left out of the scrape"
        );
    }
    let content_type = if open_metrics {
        render::OPENMETRICS_CONTENT_TYPE
    } else {
        render::TEXT_CONTENT_TYPE
    };
    let mut response = if accepts(headers, header::ACCEPT_ENCODING, "gzip") {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        match encoder
            .write_all(rendered.body.as_bytes())
            .and_then(|()| encoder.finish())
        {
            Ok(body) => (
                [
                    (header::CONTENT_TYPE, content_type),
                    (header::CONTENT_ENCODING, "gzip"),
                ],
                body,
            )
                .into_response(),
            Err(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("error encoding and sending metric family: {e}\n"),
            )
                .into_response(),
        }
    } else {
        ([(header::CONTENT_TYPE, content_type)], rendered.body).into_response()
    };
    for (k, v) in &shared.headers {
        response.headers_mut().insert(k.clone(), v.clone());
    }
    response
}
