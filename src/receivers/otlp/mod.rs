//! `otlp` receiver: OTLP over gRPC (default `localhost:4317`) and HTTP
//! (default `localhost:4318`), traces, metrics and logs.
//!
//! ```yaml
//! receivers:
//!   otlp:
//!     protocols:
//!       grpc:
//!         endpoint: 0.0.0.0:4317
//!       http:
//!         endpoint: 0.0.0.0:4318
//! ```
//!
//! One server per protocol serves every signal a pipeline uses this receiver for; a signal
//! no pipeline uses answers gRPC `UNIMPLEMENTED` / HTTP 404. A request is answered only
//! after the pipeline took the data (it is then in every exporter's queue); a refusal
//! reaches the client as `UNAVAILABLE`/503 (retryable, with `Retry-After` when known) or
//! `INTERNAL`/500 (permanent). Bad input gets `INVALID_ARGUMENT`/400 and never stops the
//! server.
//!
//! Each listener keeps at most 4096 connections open (otelcol has no such setting, so it
//! is fixed); a connection over the bound is closed as soon as it is accepted and counted
//! in `otelpipe_receiver_connections_refused`. The HTTP server applies `read_timeout`,
//! `read_header_timeout`, `write_timeout` and `idle_timeout` as Go's server does (all
//! none by default, as otelcol's otlp receiver); gRPC applies `max_concurrent_streams`
//! per connection as HTTP/2 SETTINGS.
//!
//! ```yaml
//! receivers:
//!   otlp:
//!     protocols:
//!       grpc:
//!         max_concurrent_streams: 100
//!       http:
//!         read_header_timeout: 10s
//!         idle_timeout: 1m
//! ```

mod config;
mod grpc;
mod http;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{Config, Cors, Grpc, Http, Protocols};

use crate::component::{
    Component, ComponentError, CreateSettings, FactoryInfo, Host, RawConfig, ReceiverConsumers,
    ReceiverFactory, Stability,
};
use crate::config::{decode, FieldError};
use crate::extensions::auth::Authenticator;
use crate::pipeline::{Batch, BoxConsumer, ClientInfo, ConsumeError, Signal};
use crate::telemetry::names;
use crate::tls::listener::{self as tls_listener, ALPN_GRPC, ALPN_HTTP};

/// The `otlp` receiver factory.
pub struct Factory;

/// The registry entry.
pub static FACTORY: Factory = Factory;

static INFO: FactoryInfo = FactoryInfo {
    name: "otlp",
    aliases: &[],
    stability: [Stability::Stable, Stability::Stable, Stability::Stable],
};

fn decode_config(raw: &RawConfig) -> Result<Config, FieldError> {
    let mut config: Config = decode(raw)?;
    config.validate()?;
    Ok(config)
}

impl ReceiverFactory for Factory {
    fn info(&self) -> &FactoryInfo {
        &INFO
    }

    fn validate(&self, config: &RawConfig) -> Result<(), FieldError> {
        decode_config(config).map(drop)
    }

    fn endpoints(&self, config: &RawConfig) -> Vec<String> {
        decode_config(config)
            .map(|c| {
                let grpc = c.protocols.grpc.map(|g| g.endpoint);
                let http = c.protocols.http.map(|h| h.endpoint);
                grpc.into_iter().chain(http).collect()
            })
            .unwrap_or_default()
    }

    fn create(
        &self,
        settings: &CreateSettings,
        config: &RawConfig,
        consumers: ReceiverConsumers,
    ) -> Result<Arc<dyn Component>, ComponentError> {
        let config = decode_config(config)?;
        Ok(Arc::new(Receiver {
            id: settings.id.to_string(),
            config,
            consumers,
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
            bound: Mutex::new(Bound::default()),
        }))
    }
}

/// Addresses the servers listen on, once started.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bound {
    /// The gRPC server's address.
    pub grpc: Option<SocketAddr>,
    /// The HTTP server's address.
    pub http: Option<SocketAddr>,
}

/// A running `otlp` receiver.
pub struct Receiver {
    id: String,
    config: Config,
    consumers: ReceiverConsumers,
    stop: CancellationToken,
    tasks: TaskTracker,
    bound: Mutex<Bound>,
}

impl Receiver {
    /// The addresses bound by `start` (for tests that listen on port 0).
    pub fn bound(&self) -> Bound {
        *self.bound.lock().expect("otlp bound lock")
    }
}

#[async_trait]
impl Component for Receiver {
    async fn start(&self, host: &Host) -> Result<(), ComponentError> {
        if let Some(grpc) = &self.config.protocols.grpc {
            let auth = Authenticator::resolve(host, grpc.auth.as_ref())?;
            let limit = connection_limit(&self.id, "grpc");
            let listener =
                tls_listener::bind_limited(&grpc.endpoint, grpc.tls.as_ref(), ALPN_GRPC, limit)
                    .await?;
            self.bound.lock().expect("otlp bound lock").grpc = listener.local_addr().ok();
            tracing::info!(endpoint = %grpc.endpoint, receiver = %self.id, "Starting GRPC server.");
            let server = grpc::serve(
                grpc,
                &self.id,
                &self.consumers,
                listener,
                auth,
                self.stop.clone(),
            );
            self.tasks.spawn(server);
        }
        if let Some(http) = &self.config.protocols.http {
            let auth = Authenticator::resolve(host, http.auth.as_ref())?;
            let limit = connection_limit(&self.id, "http");
            let listener =
                tls_listener::bind_limited(&http.endpoint, http.tls.as_ref(), ALPN_HTTP, limit)
                    .await?;
            self.bound.lock().expect("otlp bound lock").http = listener.local_addr().ok();
            tracing::info!(endpoint = %http.endpoint, receiver = %self.id, "Starting HTTP server.");
            let server = http::serve(
                http,
                &self.id,
                &self.consumers,
                listener,
                auth,
                self.stop.clone(),
            );
            self.tasks.spawn(server);
        }
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), ComponentError> {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        Ok(())
    }
}

/// The bound on one listener's open connections, [`tls_listener::MAX_CONNECTIONS`];
/// connections over it are counted in `otelpipe_receiver_connections_refused`.
fn connection_limit(id: &str, transport: &'static str) -> Option<tls_listener::ConnectionLimit> {
    let labels = [
        ("receiver", id.to_owned()),
        ("transport", transport.to_owned()),
    ];
    Some(tls_listener::ConnectionLimit::new(
        tls_listener::MAX_CONNECTIONS,
        metrics::counter!(names::RECEIVER_CONNECTIONS_REFUSED, &labels),
    ))
}

/// One signal's consumer with its own-metric counters for one transport.
#[derive(Clone)]
pub(crate) struct Sink {
    consumer: BoxConsumer,
    accepted: metrics::Counter,
    refused: metrics::Counter,
}

impl Sink {
    fn new(id: &str, transport: &'static str, signal: Signal, consumer: BoxConsumer) -> Self {
        let labels = [
            ("receiver", id.to_owned()),
            ("transport", transport.to_owned()),
        ];
        Self {
            consumer,
            accepted: metrics::counter!(
                names::with_items(names::RECEIVER_ACCEPTED, signal),
                &labels
            ),
            refused: metrics::counter!(names::with_items(names::RECEIVER_REFUSED, signal), &labels),
        }
    }

    /// Counts `items` refused before reaching the pipeline (authentication).
    pub(crate) fn refuse(&self, items: u64) {
        self.refused.increment(items);
    }

    /// Hands `batch` to the pipeline and counts it. An empty request is answered without
    /// calling the pipeline and is not counted (as otelcol).
    pub(crate) async fn deliver(
        &self,
        batch: Batch,
        client: &ClientInfo,
    ) -> Result<(), ConsumeError> {
        let items = batch.item_count() as u64;
        if items == 0 {
            return Ok(());
        }
        let result = self.consumer.consume(batch, client).await;
        match &result {
            Ok(()) => self.accepted.increment(items),
            Err(_) => self.refused.increment(items),
        }
        result
    }
}

/// The sinks of one transport, one per signal some pipeline uses this receiver for.
#[derive(Clone)]
pub(crate) struct Sinks {
    /// Requests the authenticator refused.
    pub(crate) auth_failures: metrics::Counter,
    pub(crate) traces: Option<Sink>,
    pub(crate) metrics: Option<Sink>,
    pub(crate) logs: Option<Sink>,
}

impl Sinks {
    pub(crate) fn new(id: &str, transport: &'static str, consumers: &ReceiverConsumers) -> Self {
        let make = |signal| {
            consumers
                .get(signal)
                .map(|c| Sink::new(id, transport, signal, c.clone()))
        };
        let labels = [
            ("receiver", id.to_owned()),
            ("transport", transport.to_owned()),
        ];
        Self {
            auth_failures: metrics::counter!(names::RECEIVER_AUTH_FAILURES, &labels),
            traces: make(Signal::Traces),
            metrics: make(Signal::Metrics),
            logs: make(Signal::Logs),
        }
    }
}
