//! Accept loops shared by the proxy, Admin and Status listeners: HTTP/1.1 and HTTP/2 (h2c
//! prior knowledge) on one socket, bounded header sizes and header read time, graceful stop.

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
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::state::Shared;

/// Largest request head accepted (request line + headers); larger gets 431.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Serves `listener` until `stop` turns true; `handler` answers each request.
pub async fn serve<H, Fut, B>(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    handler: H,
) where
    H: Fn(Request<Incoming>, SocketAddr, u16) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
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
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler(req, peer, port).await) }
            });
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .max_buf_size(MAX_HEADER_BYTES)
                .timer(TokioTimer::new())
                .header_read_timeout(shared.conf.client_header_timeout)
                .keep_alive(true);
            builder
                .http2()
                .max_header_list_size(MAX_HEADER_BYTES as u32);
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
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
            shared.counters.active.fetch_sub(1, Ordering::Relaxed);
            shared.counters.handled.fetch_add(1, Ordering::Relaxed);
        });
    }
}
