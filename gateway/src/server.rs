//! Process startup: kong.conf, the declarative configuration, the three listeners.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::server::ResolvesServerCert;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::conf::{KongConf, Listen};
use crate::declarative::{self, Config, LoadError};
use crate::listener;
use crate::proxy::handler;
use crate::state::Shared;
use crate::tls::{CertTable, SniResolver};

/// Loads kong.conf (`conf`), the environment and the declarative files (`files`, else
/// `declarative_config` / `declarative_config_string`).
pub fn load(files: &[String], conf: Option<&str>) -> Result<(KongConf, Config), String> {
    let kong = KongConf::from_env_and_file(conf).map_err(|e| e.to_string())?;
    let result = if !files.is_empty() {
        declarative::load_files(files)
    } else if let Some(path) = &kong.declarative_config {
        declarative::load_files(&[path])
    } else if let Some(text) = &kong.declarative_config_string {
        declarative::load_str("declarative_config_string", text)
    } else {
        Ok(Config::default())
    };
    let config = result.map_err(|e| match e {
        LoadError::Invalid(errors) => {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            lines.join("\n")
        }
        other => other.to_string(),
    })?;
    Ok((kong, config))
}

/// A running gateway: its shared state, bound addresses, and the stop switch.
pub struct Gateway {
    /// Shared state (configuration, counters).
    pub shared: Arc<Shared>,
    /// Bound proxy addresses.
    pub proxy: Vec<SocketAddr>,
    /// Bound Admin API addresses.
    pub admin: Vec<SocketAddr>,
    /// Bound Status API addresses.
    pub status: Vec<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// A bound socket and its TLS acceptor (`ssl` entries).
type Bound = (TcpListener, Option<TlsAcceptor>);

async fn bind(
    listens: &[Listen],
    what: &str,
    resolver: &Arc<dyn ResolvesServerCert>,
) -> std::io::Result<Vec<Bound>> {
    let mut out = Vec::new();
    for listen in listens {
        let socket = TcpListener::bind(listen.addr)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("{what} {}: {e}", listen.addr)))?;
        let tls = if listen.ssl {
            let config = crate::tls::server_config(Arc::clone(resolver), listen.http2)
                .map_err(|e| std::io::Error::other(format!("{what} {}: {e}", listen.addr)))?;
            Some(TlsAcceptor::from(config))
        } else {
            None
        };
        out.push((socket, tls));
    }
    Ok(out)
}

/// Warns when the Admin API listens beyond the loopback interface, as Kong's docs advise
/// against it: anyone who reaches it can reconfigure the gateway.
fn warn_public_admin(listens: &[Listen]) {
    for listen in public(listens) {
        tracing::warn!(
            address = %listen.addr,
            "admin_listen: the Admin API is reachable beyond 127.0.0.1 and has no authentication; restrict access to it"
        );
    }
}

/// The entries of `listens` reachable beyond the loopback interface.
fn public(listens: &[Listen]) -> impl Iterator<Item = &Listen> {
    listens.iter().filter(|l| !l.addr.ip().is_loopback())
}

/// How long the stopping gateway waits for the plugins' queues to send what they hold.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

impl Gateway {
    /// Binds every listener and starts serving.
    pub async fn start(conf: KongConf, config: Config) -> std::io::Result<Self> {
        let shared = Shared::new(conf, config).map_err(|e| std::io::Error::other(e.to_string()))?;
        let conf = Arc::clone(&shared.conf);
        warn_public_admin(&conf.admin_listen);
        // The proxy picks certificates by SNI; Admin and Status serve the default one.
        let by_sni: Arc<dyn ResolvesServerCert> =
            Arc::new(SniResolver(Arc::clone(&shared.server_certs)));
        let fixed: Arc<dyn ResolvesServerCert> = Arc::new(SniResolver(Arc::new(
            ArcSwap::from_pointee(CertTable::only(Arc::clone(&shared.default_cert))),
        )));
        let proxy = bind(&conf.proxy_listen, "proxy_listen", &by_sni).await?;
        let admin = bind(&conf.admin_listen, "admin_listen", &fixed).await?;
        let status = bind(&conf.status_listen, "status_listen", &fixed).await?;
        let (stop, stop_rx) = watch::channel(false);
        let addrs = |l: &[Bound]| l.iter().filter_map(|(l, _)| l.local_addr().ok()).collect();
        let (proxy_addrs, admin_addrs, status_addrs) =
            (addrs(&proxy), addrs(&admin), addrs(&status));
        let mut tasks = Vec::new();
        for (l, tls) in proxy {
            let s = Arc::clone(&shared);
            let h = {
                let s = Arc::clone(&shared);
                move |req: http::Request<hyper::body::Incoming>, peer, port| {
                    let s = Arc::clone(&s);
                    async move {
                        match crate::head_limits::exceeded(&req) {
                            Some(what) => crate::head_limits::reply(&s, &req, what),
                            None => handler::handle(s, req, peer, port).await,
                        }
                    }
                }
            };
            tasks.push(tokio::spawn(listener::serve(l, s, stop_rx.clone(), h, tls)));
        }
        for (l, tls) in admin {
            let s = Arc::clone(&shared);
            let h = {
                let s = Arc::clone(&shared);
                move |req, _peer, _port| {
                    let s = Arc::clone(&s);
                    async move { crate::admin::handle(&s, req).await }
                }
            };
            tasks.push(tokio::spawn(listener::serve(l, s, stop_rx.clone(), h, tls)));
        }
        for (l, tls) in status {
            let s = Arc::clone(&shared);
            let h = {
                let s = Arc::clone(&shared);
                move |req, _peer, _port| {
                    let s = Arc::clone(&s);
                    async move { crate::status::handle(&s, &req) }
                }
            };
            tasks.push(tokio::spawn(listener::serve(l, s, stop_rx.clone(), h, tls)));
        }
        Ok(Self {
            shared,
            proxy: proxy_addrs,
            admin: admin_addrs,
            status: status_addrs,
            stop,
            tasks,
        })
    }

    /// Stops accepting, lets open connections finish their requests (bounded by
    /// [`listener::SHUTDOWN_GRACE`]), then flushes the plugins' export queues and sends in
    /// flight (bounded by [`DRAIN_TIMEOUT`]).
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        for task in self.tasks {
            if let Err(error) = task.await {
                tracing::warn!(%error, "listener task failed");
            }
        }
        let mut drains = tokio::task::JoinSet::new();
        for drain in self
            .shared
            .runtime
            .load()
            .plugin_instances()
            .iter()
            .filter_map(|p| p.drain())
        {
            drains.spawn(drain);
        }
        let all = async { while drains.join_next().await.is_some() {} };
        if tokio::time::timeout(DRAIN_TIMEOUT, all).await.is_err() {
            tracing::warn!("plugin queues not flushed within the shutdown timeout");
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    if let Err(error) = tokio::signal::ctrl_c().await {
        tracing::warn!(%error, "cannot wait for signals");
    }
}

fn init_logging(kong_level: &str) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;

    let level = match kong_level {
        "debug" => "debug",
        "info" | "notice" => "info",
        "warn" => "warn",
        _ => "error",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(filter);
    // The opentelemetry plugin's logs_endpoint sees the lines at or above kong.conf log_level.
    let capture = crate::observability::logs::CaptureLayer
        .with_filter(crate::observability::logs::level_filter(kong_level));
    if tracing_subscriber::registry()
        .with(stderr)
        .with(capture)
        .try_init()
        .is_err()
    {
        eprintln!("logging was already initialised");
    }
}

/// Entry point of the binary: exit 2 on configuration errors before opening any port.
pub fn main(files: Vec<String>, conf: Option<String>) -> ExitCode {
    let (kong, config) = match load(&files, conf.as_deref()) {
        Ok(loaded) => loaded,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    init_logging(&kong.log_level);
    // One worker: a current-thread runtime, which skips the work-stealing scheduler's
    // cross-thread wake-ups and atomics on every task switch.
    let mut builder = if kong.worker_threads == Some(1) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        if let Some(n) = kong.worker_threads {
            builder.worker_threads(n);
        }
        builder
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let gateway = match Gateway::start(kong, config).await {
            Ok(g) => g,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(proxy = ?gateway.proxy, admin = ?gateway.admin, status = ?gateway.status, "otelpipe-gateway started");
        wait_for_signal().await;
        tracing::info!("stopping");
        gateway.shutdown().await;
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_beyond_loopback_is_flagged() {
        let listens = crate::conf::parse_listen(
            "admin_listen",
            "127.0.0.1:8001, [::1]:8001, 0.0.0.0:8444 ssl, 10.0.0.5:8001",
        )
        .unwrap();
        let flagged: Vec<String> = public(&listens).map(|l| l.addr.to_string()).collect();
        assert_eq!(flagged, vec!["0.0.0.0:8444", "10.0.0.5:8001"]);
        let default = crate::conf::KongConf::load(None, Vec::new()).unwrap();
        assert_eq!(public(&default.admin_listen).count(), 0);
    }
}
