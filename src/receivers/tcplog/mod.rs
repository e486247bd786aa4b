//! `tcplog` receiver: log lines over TCP (Kong's `tcp-log` plugin sends one JSON document
//! per line), run through stanza operators, emitted as OTLP logs.
//!
//! ```yaml
//! receivers:
//!   tcplog:
//!     listen_address: 0.0.0.0:54525
//!     max_log_size: 1MiB        # longest line; a longer one closes the connection
//!     add_attributes: false     # net.* attributes
//!     tls:                      # optional: serve TLS (otelcol's configtls server settings)
//!       cert_file: /etc/otelpipe/server.crt
//!       key_file: /etc/otelpipe/server.key
//!       client_ca_file: /etc/otelpipe/ca.crt   # mTLS: client certificates required
//!     operators:
//!       - type: json_parser     # body stays the raw line; parsed keys go to attributes
//! ```
//!
//! Each connection is read by its own task, so a slow client only slows itself. Lines are
//! split on `\n` (a trailing `\r` dropped, whitespace trimmed); data left at EOF is a
//! final line. A line longer than `max_log_size` ends the connection with `Scanner error`
//! (`bufio.Scanner: token too long`), as otelcol does; lines before it are kept and the
//! event is counted. Invalid UTF-8 becomes U+FFFD; NUL bytes are kept. There is no
//! acknowledgement to the client: entries are batched (100 or 100 ms) and a refused batch
//! is logged and dropped unless `retry_on_failure.enabled`. Connections beyond
//! `max_connections` (default 4096) are closed at once and counted;
//! `connection_idle_timeout` (default none) closes connections that went quiet.
//!
//! With `tls`, each connection's handshake runs in its own task (within
//! `max_connections` and a 10 s limit); a failed handshake (no or an untrusted client
//! certificate under `client_ca_file`, a plaintext client, a version below `min_version`)
//! closes that connection only and is counted.

mod config;
mod conn;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tls_tests;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub(crate) use config::listen_host;
pub use config::{
    Config, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_LOG_SIZE, MAX_MAX_LOG_SIZE, MIN_MAX_LOG_SIZE,
};

use crate::component::{
    Component, ComponentError, CreateSettings, FactoryInfo, Host, RawConfig, ReceiverConsumers,
    ReceiverFactory, Stability,
};
use crate::config::{decode, FieldError};
use crate::pipeline::Signal;
use crate::receivers::stanza::{emit, input::Input, net};
use crate::telemetry::names;
use crate::tls::listener::HANDSHAKE_TIMEOUT;
use crate::tls::server::Acceptor;

/// The `tcplog` receiver factory.
pub struct Factory;

/// The registry entry.
pub static FACTORY: Factory = Factory;

static INFO: FactoryInfo = FactoryInfo {
    name: "tcplog",
    aliases: &[],
    stability: [Stability::Undefined, Stability::Undefined, Stability::Alpha],
};

fn decode_config(raw: &RawConfig) -> Result<(Config, Input), FieldError> {
    let config: Config = decode(raw)?;
    let input = config.validate()?;
    Ok((config, input))
}

impl ReceiverFactory for Factory {
    fn info(&self) -> &FactoryInfo {
        &INFO
    }

    fn validate(&self, config: &RawConfig) -> Result<(), FieldError> {
        decode_config(config).map(drop)
    }

    fn endpoints(&self, config: &RawConfig) -> Vec<String> {
        decode::<Config>(config)
            .map(|c| vec![c.listen_address])
            .unwrap_or_default()
    }

    fn create(
        &self,
        settings: &CreateSettings,
        config: &RawConfig,
        consumers: ReceiverConsumers,
    ) -> Result<Arc<dyn Component>, ComponentError> {
        let (config, input) = decode_config(config)?;
        Ok(Arc::new(Receiver::new(
            &settings.id.to_string(),
            config,
            input,
            consumers,
        )))
    }
}

/// A running `tcplog` receiver.
pub struct Receiver {
    id: Arc<str>,
    config: Config,
    input: Arc<Input>,
    consumers: ReceiverConsumers,
    stop: CancellationToken,
    tasks: TaskTracker,
    connections: Arc<Semaphore>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    local_addr: Option<SocketAddr>,
    batcher: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    /// A receiver for `config` feeding `consumers` (not yet listening).
    pub fn new(id: &str, config: Config, input: Input, consumers: ReceiverConsumers) -> Self {
        let max = config.max_connections();
        Self {
            id: Arc::from(id),
            config,
            input: Arc::new(input),
            consumers,
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
            connections: Arc::new(Semaphore::new(max)),
            state: Mutex::new(State::default()),
        }
    }

    /// The address bound by `start` (for tests that listen on port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.state.lock().ok().and_then(|s| s.local_addr)
    }

    /// Connections being served now.
    pub fn active_connections(&self) -> usize {
        self.config.max_connections() - self.connections.available_permits()
    }
}

#[async_trait]
impl Component for Receiver {
    async fn start(&self, _host: &Host) -> Result<(), ComponentError> {
        let tls = self
            .config
            .tls
            .as_ref()
            .map(|c| Acceptor::new(c, &[]))
            .transpose()
            .map_err(|e| ComponentError::Other(e.to_string()))?
            .map(Arc::new);
        let listener = crate::net::bind(&self.config.listen_address).await?;
        let local = listener.local_addr().ok();
        tracing::info!(receiver = %self.id, endpoint = %self.config.listen_address, "Starting TCP log receiver");
        let (emitter, batcher) = emit::start_flushing(
            &self.id,
            self.consumers.get(Signal::Logs).cloned(),
            self.config.retry_on_failure.clone(),
            self.stop.clone(),
            self.input.flusher(),
        );
        if let Ok(mut s) = self.state.lock() {
            s.local_addr = local;
            s.batcher = Some(batcher);
        }
        let labels = [("receiver", self.id.to_string())];
        let too_long = metrics::counter!(names::RECEIVER_TCPLOG_TOKENS_TOO_LONG, &labels);
        let refused = metrics::counter!(names::RECEIVER_TCPLOG_CONNECTIONS_REFUSED, &labels);
        let handshake_failed =
            metrics::counter!(names::RECEIVER_TCPLOG_TLS_HANDSHAKE_FAILURES, &labels);
        let accept = AcceptLoop {
            id: self.id.clone(),
            input: self.input.clone(),
            emitter,
            add_attributes: self.config.add_attributes,
            one_log_per_packet: self.config.one_log_per_packet,
            connections: self.connections.clone(),
            tasks: self.tasks.clone(),
            stop: self.stop.clone(),
            too_long,
            refused,
            tls,
            handshake_failed,
            idle_timeout: Some(self.config.connection_idle_timeout).filter(|d| !d.is_zero()),
        };
        self.tasks.spawn(accept.run(listener));
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), ComponentError> {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        let batcher = self.state.lock().ok().and_then(|mut s| s.batcher.take());
        if let Some(b) = batcher {
            if let Err(e) = b.await {
                tracing::error!(receiver = %self.id, error = %e, "log batcher failed");
            }
        }
        Ok(())
    }
}

struct AcceptLoop {
    id: Arc<str>,
    input: Arc<Input>,
    emitter: emit::Emitter,
    add_attributes: bool,
    one_log_per_packet: bool,
    connections: Arc<Semaphore>,
    tasks: TaskTracker,
    stop: CancellationToken,
    too_long: metrics::Counter,
    refused: metrics::Counter,
    tls: Option<Arc<Acceptor>>,
    handshake_failed: metrics::Counter,
    idle_timeout: Option<Duration>,
}

impl AcceptLoop {
    async fn run(self, listener: tokio::net::TcpListener) {
        let mut backoff = Duration::from_millis(5);
        loop {
            let accepted = tokio::select! {
                r = listener.accept() => r,
                () = self.stop.cancelled() => return,
            };
            let (stream, peer) = match accepted {
                Ok(pair) => {
                    backoff = Duration::from_millis(5);
                    pair
                }
                Err(e) => {
                    tracing::warn!(receiver = %self.id, error = %e, "accept failed");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = self.stop.cancelled() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(3));
                    continue;
                }
            };
            let Ok(permit) = self.connections.clone().try_acquire_owned() else {
                self.refused.increment(1);
                tracing::debug!(receiver = %self.id, %peer, "too many connections; closing");
                drop(stream);
                continue;
            };
            let host = stream.local_addr().ok();
            let conn = conn::Connection {
                input: self.input.clone(),
                emitter: self.emitter.clone(),
                extra: Vec::new(),
                one_log_per_packet: self.one_log_per_packet,
                too_long: self.too_long.clone(),
                receiver: self.id.clone(),
                idle_timeout: self.idle_timeout,
            };
            let add = self.add_attributes;
            let stop = self.stop.clone();
            let tls = self.tls.as_ref().map(|a| a.current());
            let handshake_failed = self.handshake_failed.clone();
            self.tasks.spawn(async move {
                let mut conn = conn;
                if add {
                    if let Some(host) = host {
                        conn.extra = net::attributes("IP.TCP", peer, host).await;
                    }
                }
                match tls {
                    None => conn.serve(stream, stop).await,
                    Some(config) => {
                        let accept = tokio_rustls::TlsAcceptor::from(config).accept(stream);
                        let handshake = tokio::select! {
                            r = tokio::time::timeout(HANDSHAKE_TIMEOUT, accept) => r,
                            () = stop.cancelled() => return,
                        };
                        match handshake {
                            Ok(Ok(tls)) => conn.serve(tls, stop).await,
                            Ok(Err(e)) => {
                                handshake_failed.increment(1);
                                tracing::debug!(receiver = %conn.receiver, %peer, error = %e, "TLS handshake error");
                            }
                            Err(_) => {
                                handshake_failed.increment(1);
                                tracing::debug!(receiver = %conn.receiver, %peer, "TLS handshake timed out");
                            }
                        }
                    }
                }
                drop(permit);
            });
        }
    }
}
