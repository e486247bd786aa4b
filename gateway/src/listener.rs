//! Accept loops shared by the proxy, Admin and Status listeners: HTTP/1.1 and HTTP/2 (h2c
//! prior knowledge, or ALPN `h2` on `ssl` listeners) on one socket, bounded header sizes and
//! header read time, bounded TLS handshakes, graceful stop.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::rejected::KongErrors;
use crate::state::Shared;
use crate::tls::TlsInfo;

/// Largest request head accepted (request line + headers); larger gets 431.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// How long a stopping listener lets its open connections finish their requests (as
/// nginx's `worker_shutdown_timeout`); connections still open then are closed.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Longest a client may take to complete the TLS handshake (nginx's
/// `client_header_timeout`, 60 s).
pub const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Serves `listener` until `stop` turns true; `handler` answers each request. With `tls`,
/// every connection starts with a TLS handshake and its requests carry a [`TlsInfo`]
/// extension.
pub async fn serve<H, Fut, B>(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    handler: H,
    tls: Option<TlsAcceptor>,
) where
    H: Fn(Request<Incoming>, SocketAddr, u16) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    let connections = tokio_util::task::TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                continue;
            }
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "set_nodelay failed");
        }
        let shared = Arc::clone(&shared);
        let handler = handler.clone();
        let mut stop = stop.clone();
        shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
        shared.counters.active.fetch_add(1, Ordering::Relaxed);
        let tls = tls.clone();
        let (conf, rejected) = (
            Arc::clone(&shared.conf),
            Arc::clone(&shared.counters.rejected_requests),
        );
        let header_timeout = conf.client_header_timeout;
        connections.spawn(async move {
            match tls {
                None => {
                    let io = KongErrors::new(stream, conf, rejected);
                    serve_connection(io, peer, port, None, header_timeout, handler, &mut stop)
                        .await;
                }
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(stream)) => {
                            let info = TlsInfo::of(stream.get_ref().1);
                            let io = KongErrors::new(stream, conf, rejected);
                            serve_connection(
                                io,
                                peer,
                                port,
                                Some(info),
                                header_timeout,
                                handler,
                                &mut stop,
                            )
                            .await;
                        }
                        Ok(Err(error)) => {
                            shared
                                .counters
                                .tls_handshake_failures
                                .fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(%peer, %error, "TLS handshake failed");
                        }
                        Err(_) => {
                            shared
                                .counters
                                .tls_handshake_failures
                                .fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(%peer, "TLS handshake timed out");
                        }
                    }
                }
            }
            shared.counters.active.fetch_sub(1, Ordering::Relaxed);
            shared.counters.handled.fetch_add(1, Ordering::Relaxed);
        });
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            port,
            open = connections.len(),
            "connections still open after the shutdown grace period"
        );
    }
}

/// Serves HTTP on one accepted connection (plain or TLS) until it closes or `stop` turns
/// true.
async fn serve_connection<I, H, Fut, B>(
    io: I,
    peer: SocketAddr,
    port: u16,
    tls: Option<TlsInfo>,
    header_timeout: std::time::Duration,
    handler: H,
    stop: &mut watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>, SocketAddr, u16) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let service = service_fn(move |mut req: Request<Incoming>| {
        if let Some(info) = &tls {
            req.extensions_mut().insert(info.clone());
        }
        // The request's future is large (the whole proxy path, some 4 KiB). Allocated first and
        // then written, it is built in place: hyper's dispatcher holds a pointer to it instead
        // of copying it on every request.
        let response = Box::into_pin(Box::write(Box::new_uninit(), handler(req, peer, port)));
        async move { Ok::<_, Infallible>(response.await) }
    });
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .max_buf_size(MAX_HEADER_BYTES)
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    builder
        .http2()
        .max_header_list_size(MAX_HEADER_BYTES as u32);
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "connection closed with error");
            }
        }
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            if let Err(error) = conn.await {
                tracing::debug!(%peer, %error, "connection closed with error");
            }
        }
    }
}
