//! The `tcp-log` plugin (Kong 3.9, priority 7, log phase): one JSON document per line per
//! request to `host:port`, over pooled connections (spec §6).
//!
//! ```yaml
//! plugins:
//! - name: tcp-log
//!   config:
//!     host: collector
//!     port: 54525
//!     custom_fields_by_lua:
//!       trace_id: local log_payload = kong.log.serialize() local trace_id = log_payload['trace_id']['w3c'] return trace_id
//! ```
//!
//! As Kong: no queue, no retry; a failed connect or write loses the entry. A line that a
//! pooled connection's socket takes at once is written in the log phase itself; the others
//! (new connection, TLS, full socket buffer) are sent by a task. Failures are
//! counted; the first is logged, then at most one line per destination every 10 s with the
//! number of failures not logged since (`suppressed`).
//! Sends in flight are bounded; past the bound entries are dropped and counted.
//! `custom_fields_by_lua` accepts the snippet forms of [`lua`].
//!
//! Connections are pooled for `keepalive` ms of idleness (0: without limit). With `tls: true` a new connection
//! does a TLS handshake (no certificate verification, as Kong's `sslhandshake(true, sni,
//! false)`); the server name sent is `tls_sni`, none when unset. Pooled connections are reused
//! without a new handshake.

pub mod failures;
pub mod fragments;
pub mod json;
pub mod lua;
pub mod serialize;
#[cfg(test)]
mod serialize_tests;
#[cfg(test)]
mod tests;
pub mod wire;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::{Factory, Plugin};
use crate::proxy::context::RequestContext;

/// Sends in flight per instance before entries are dropped.
const MAX_IN_FLIGHT: usize = 1024;
/// Idle connections kept per instance.
const MAX_IDLE: usize = 16;

/// The plugin's config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpLogConfig {
    /// Destination host.
    pub host: String,
    /// Destination port.
    pub port: u16,
    /// Connect / send timeout, ms.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    /// Idle time of a pooled connection, ms.
    #[serde(default = "default_keepalive")]
    pub keepalive: u64,
    /// TLS to the destination.
    #[serde(default)]
    pub tls: bool,
    /// SNI for TLS.
    #[serde(default)]
    pub tls_sni: Option<String>,
    /// Field → Lua chunk.
    #[serde(default)]
    pub custom_fields_by_lua: Option<BTreeMap<String, String>>,
}

/// Checked `custom_fields_by_lua` entries: field → snippet.
type Snippets = Vec<(String, lua::Snippet)>;

fn default_timeout() -> u64 {
    10_000
}

fn default_keepalive() -> u64 {
    60_000
}

fn parse(config: &Value) -> Result<(TcpLogConfig, Snippets), Vec<(String, String)>> {
    let mut problems = Vec::new();
    if let Value::Object(map) = config {
        for field in ["host", "port"] {
            if map.get(field).is_none_or(Value::is_null) {
                problems.push((field.to_owned(), "required field missing".to_owned()));
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let conf: TcpLogConfig = serde_json::from_value(config.clone()).map_err(|e| {
        let msg = e.to_string();
        match msg.strip_prefix("unknown field `") {
            Some(rest) => vec![(
                rest.split('`').next().unwrap_or_default().to_owned(),
                "unknown field".to_owned(),
            )],
            None => vec![("@entity".to_owned(), msg)],
        }
    })?;
    if conf.port == 0 {
        problems.push((
            "port".to_owned(),
            "value should be between 0 and 65535".to_owned(),
        ));
    }
    let mut snippets = Vec::new();
    for (field, chunk) in conf.custom_fields_by_lua.iter().flatten() {
        match lua::compile(chunk) {
            Ok(s) => snippets.push((field.clone(), s)),
            Err(e) => problems.push((
                format!("custom_fields_by_lua.{field}"),
                format!("unsupported Lua snippet: {e}"),
            )),
        }
    }
    if problems.is_empty() {
        Ok((conf, snippets))
    } else {
        Err(problems)
    }
}

/// The plugin's factory.
pub struct TcpLogFactory;

impl Factory for TcpLogFactory {
    fn name(&self) -> &'static str {
        "tcp-log"
    }

    fn check_config(&self, config: &mut Value) -> Result<(), Vec<(String, String)>> {
        let (conf, _) = parse(config)?;
        if let Ok(v) = serde_json::to_value(conf) {
            *config = v;
        }
        Ok(())
    }

    fn build(&self, config: &Value) -> Result<Arc<dyn Plugin>, String> {
        Ok(Arc::new(TcpLog::new(config)?))
    }
}

/// TLS settings of a destination.
struct Tls {
    connector: TlsConnector,
    /// Server name sent in the handshake; none when `tls_sni` is unset.
    sni: Option<String>,
}

/// A connection to the destination.
enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Conn {
    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Plain(s) => s.write_all(bytes).await,
            Self::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
        }
    }
}

fn timed_out(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{what} timeout"))
}

/// Destination with its idle-connection pool.
struct Sink {
    addr: String,
    tls: Option<Tls>,
    timeout: Duration,
    keepalive: Duration,
    idle: Mutex<Vec<(Conn, Instant)>>,
    in_flight: Arc<Semaphore>,
    dropped: AtomicU64,
    failures: failures::Failures,
}

impl Sink {
    /// The most recently returned idle connection younger than `keepalive` (0: no limit, as
    /// OpenResty's `setkeepalive(0)`); older ones are closed.
    fn pooled(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().ok()?;
        while let Some((conn, since)) = idle.pop() {
            if self.keepalive.is_zero() || since.elapsed() < self.keepalive {
                return Some(conn);
            }
        }
        None
    }

    async fn connect(&self) -> std::io::Result<Conn> {
        let stream = tokio::time::timeout(self.timeout, TcpStream::connect(&self.addr))
            .await
            .map_err(|_| timed_out("connect"))??;
        stream.set_nodelay(true)?;
        let Some(tls) = &self.tls else {
            return Ok(Conn::Plain(stream));
        };
        let name = match &tls.sni {
            Some(sni) => rustls::pki_types::ServerName::try_from(sni.clone())
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?,
            // An IP address as the name: rustls then sends no server name extension.
            None => rustls::pki_types::ServerName::IpAddress(stream.peer_addr()?.ip().into()),
        };
        let tls_stream = tokio::time::timeout(self.timeout, tls.connector.connect(name, stream))
            .await
            .map_err(|_| timed_out("handshake"))??;
        Ok(Conn::Tls(Box::new(tls_stream)))
    }

    /// Writes `line` at once on a pooled plain connection when the socket takes all of it
    /// without waiting: no task, no timer. Otherwise hands back what is left to send.
    fn send_now(&self, line: String) -> Now {
        let Some(conn) = self.pooled() else {
            return Now::Later(line, None, 0);
        };
        let Conn::Plain(stream) = &conn else {
            return Now::Later(line, Some(conn), 0);
        };
        let bytes = line.as_bytes();
        let mut written = 0;
        while written < bytes.len() {
            match stream.try_write(&bytes[written..]) {
                Ok(n) if n > 0 => written += n,
                Ok(_) => return Now::Failed(std::io::ErrorKind::WriteZero.into()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    return Now::Later(line, Some(conn), written);
                }
                Err(e) => return Now::Failed(e),
            }
        }
        self.release(conn);
        Now::Sent
    }

    /// Sends `line` from byte `written` on `conn` (a new connection when `None`).
    async fn send(&self, line: String, conn: Option<Conn>, written: usize) -> std::io::Result<()> {
        let mut conn = match conn {
            Some(c) => c,
            None => self.connect().await?,
        };
        let rest = line.as_bytes().get(written..).unwrap_or_default();
        tokio::time::timeout(self.timeout, conn.write_all(rest))
            .await
            .map_err(|_| timed_out("send"))??;
        self.release(conn);
        Ok(())
    }

    /// Returns a connection to the idle pool (closed when the pool is full).
    fn release(&self, conn: Conn) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < MAX_IDLE {
                idle.push((conn, Instant::now()));
            }
        }
    }

    /// Counts a lost entry, logging the first failure and then one line per interval.
    fn failed(&self, error: &std::io::Error) {
        if let Some(suppressed) = self.failures.record() {
            tracing::error!(
                addr = %self.addr,
                %error,
                suppressed,
                "tcp-log: failed to send the log entry"
            );
        }
    }
}

/// What [`Sink::send_now`] did with a line.
enum Now {
    /// Written in full.
    Sent,
    /// The write failed: the entry is lost.
    Failed(std::io::Error),
    /// To be sent by a task: the line, the connection it started on, the bytes written.
    Later(String, Option<Conn>, usize),
}

/// One plugin instance.
pub struct TcpLog {
    sink: Arc<Sink>,
    snippets: Vec<(String, lua::Snippet)>,
}

impl TcpLog {
    /// The line this instance sends for a request; `None` when a snippet fails (Kong does
    /// not log that request).
    pub fn line(&self, ctx: &RequestContext) -> Option<String> {
        if self.snippets.is_empty() {
            return Some(wire::line(ctx));
        }
        let mut payload = serialize::serialize(ctx);
        for (field, snippet) in &self.snippets {
            match snippet.run(ctx, &payload) {
                Ok(value) => serialize::set_value(&mut payload, field, value),
                Err(error) => {
                    tracing::error!(field = %field, %error, "tcp-log: custom_fields_by_lua failed");
                    return None;
                }
            }
        }
        Some(serialize::wire_line(&payload))
    }

    /// An instance for a checked `config`.
    pub fn new(config: &Value) -> Result<Self, String> {
        let (conf, snippets) = parse(config).map_err(|p| {
            p.iter()
                .map(|(f, m)| format!("{f}: {m}"))
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        let tls = if conf.tls {
            let config = crate::proxy::tls::client_config().map_err(|e| e.to_string())?;
            Some(Tls {
                connector: TlsConnector::from(config),
                sni: conf.tls_sni.clone().filter(|s| !s.is_empty()),
            })
        } else {
            None
        };
        Ok(Self {
            sink: Arc::new(Sink {
                addr: format!("{}:{}", conf.host, conf.port),
                tls,
                timeout: Duration::from_millis(conf.timeout),
                keepalive: Duration::from_millis(conf.keepalive),
                idle: Mutex::new(Vec::new()),
                in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
                dropped: AtomicU64::new(0),
                failures: failures::Failures::default(),
            }),
            snippets,
        })
    }

    /// Entries lost to failed connects or writes since the instance was built.
    pub fn send_failures(&self) -> u64 {
        self.sink.failures.total()
    }

    /// Failure lines logged: the first failure, then at most one per
    /// [`failures::LOG_INTERVAL`] naming how many went unlogged.
    pub fn failure_lines(&self) -> u64 {
        self.sink.failures.lines()
    }
}

impl Plugin for TcpLog {
    fn name(&self) -> &'static str {
        "tcp-log"
    }

    fn drain(&self) -> Option<crate::plugins::Drain> {
        let in_flight = Arc::clone(&self.sink.in_flight);
        // Every send holds a permit until it ends: holding them all means none is left.
        Some(Box::pin(async move {
            let all = u32::try_from(MAX_IN_FLIGHT).unwrap_or(u32::MAX);
            drop(in_flight.acquire_many(all).await);
        }))
    }

    fn priority(&self) -> i32 {
        7
    }

    fn log(&self, ctx: &RequestContext) {
        let Some(line) = self.line(ctx) else {
            return;
        };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (line, conn, written) = match self.sink.send_now(line) {
            Now::Sent => return,
            Now::Failed(error) => {
                // Logged from a task, as Kong's timer logs it: a worker line, not the request's.
                let sink = Arc::clone(&self.sink);
                handle.spawn(async move { sink.failed(&error) });
                return;
            }
            Now::Later(line, conn, written) => (line, conn, written),
        };
        let Ok(permit) = Arc::clone(&self.sink.in_flight).try_acquire_owned() else {
            let n = self.sink.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::error!(
                    dropped = n,
                    "tcp-log: too many sends in flight, dropping entries"
                );
            }
            return;
        };
        let sink = Arc::clone(&self.sink);
        handle.spawn(async move {
            if let Err(error) = sink.send(line, conn, written).await {
                sink.failed(&error);
            }
            drop(permit);
        });
    }
}
