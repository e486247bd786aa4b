//! `udplog` receiver: log lines in UDP datagrams (Kong's `udp-log` plugin sends one JSON
//! document per datagram), through the same stanza operators as `tcplog`.
//!
//! ```yaml
//! receivers:
//!   udplog:
//!     listen_address: 0.0.0.0:54526
//!     operators:
//!       - type: json_parser
//! ```
//!
//! Each datagram (up to 64 KiB) is split into lines like a TCP stream that ends with the
//! datagram (so a document without a trailing newline is one entry), or kept whole with
//! `one_log_per_packet`. UDP has no back-pressure: while the pipeline is behind, the
//! kernel's socket buffer fills and drops datagrams.

mod config;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{Async, Config, MAX_UDP_SIZE};

use crate::component::{
    Component, ComponentError, CreateSettings, FactoryInfo, Host, RawConfig, ReceiverConsumers,
    ReceiverFactory, Stability,
};
use crate::config::{decode, FieldError};
use crate::pipeline::Signal;
use crate::receivers::stanza::{emit, input::Input, net, now_nanos};

/// The `udplog` receiver factory.
pub struct Factory;

/// The registry entry.
pub static FACTORY: Factory = Factory;

static INFO: FactoryInfo = FactoryInfo {
    name: "udplog",
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

/// A running `udplog` receiver.
pub struct Receiver {
    id: Arc<str>,
    config: Config,
    input: Arc<Input>,
    consumers: ReceiverConsumers,
    stop: CancellationToken,
    tasks: TaskTracker,
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
        Self {
            id: Arc::from(id),
            config,
            input: Arc::new(input),
            consumers,
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
            state: Mutex::new(State::default()),
        }
    }

    /// The address bound by `start` (for tests that listen on port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.state.lock().ok().and_then(|s| s.local_addr)
    }
}

#[async_trait]
impl Component for Receiver {
    async fn start(&self, _host: &Host) -> Result<(), ComponentError> {
        let address = crate::receivers::tcplog::listen_host(&self.config.listen_address);
        let socket = UdpSocket::bind(&address)
            .await
            .map_err(|source| ComponentError::Bind {
                endpoint: self.config.listen_address.clone(),
                source,
            })?;
        let local = socket.local_addr().ok();
        tracing::info!(receiver = %self.id, endpoint = %self.config.listen_address, "Starting UDP log receiver");
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
        let socket = Arc::new(socket);
        for _ in 0..self.config.readers() {
            let reader = Reader {
                socket: socket.clone(),
                input: self.input.clone(),
                emitter: emitter.clone(),
                add_attributes: self.config.add_attributes,
                one_log_per_packet: self.config.one_log_per_packet,
                id: self.id.clone(),
            };
            self.tasks.spawn(reader.run(self.stop.clone()));
        }
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

struct Reader {
    socket: Arc<UdpSocket>,
    input: Arc<Input>,
    emitter: emit::Emitter,
    add_attributes: bool,
    one_log_per_packet: bool,
    id: Arc<str>,
}

impl Reader {
    async fn run(self, stop: CancellationToken) {
        let mut buf = vec![0u8; MAX_UDP_SIZE];
        let host = self.socket.local_addr().ok();
        loop {
            let received = tokio::select! {
                r = self.socket.recv_from(&mut buf) => r,
                () = stop.cancelled() => return,
            };
            let (n, peer) = match received {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::debug!(receiver = %self.id, error = %e, "UDP read failed");
                    continue;
                }
            };
            let extra = match (self.add_attributes, host) {
                (true, Some(host)) => net::attributes("IP.UDP", peer, host).await,
                _ => Vec::new(),
            };
            let mut out = Vec::new();
            self.packet(&buf[..n], &extra, &mut out);
            if !self.emitter.send(out).await {
                return;
            }
        }
    }

    fn packet(
        &self,
        data: &[u8],
        extra: &[opentelemetry_proto::tonic::common::v1::KeyValue],
        out: &mut Vec<crate::receivers::stanza::Entry>,
    ) {
        let observed = now_nanos();
        if self.one_log_per_packet {
            self.input.handle_raw(data, observed, extra, out);
            return;
        }
        let splitter = &self.input.splitter;
        let mut start = 0;
        let mut eof = false;
        while start < data.len() {
            match splitter.next(&data[start..], 0, eof) {
                Ok(Some(t)) => {
                    self.input
                        .handle(&data[start + t.start..start + t.end], observed, extra, out);
                    if t.advance == 0 {
                        break;
                    }
                    start += t.advance;
                }
                Ok(None) if !eof => eof = true,
                Ok(None) | Err(_) => break,
            }
        }
    }
}
