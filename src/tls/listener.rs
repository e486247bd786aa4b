//! A TCP listener that terminates TLS when configured, for the tonic and HTTP servers alike.
//!
//! Handshakes run in their own tasks (bounded in number and time), so a slow or broken
//! client never holds up the accept loop; a failed handshake closes that connection only.
//! A plain HTTP request sent to a TLS port is answered as Go's server does (`400 Client
//! sent an HTTP request to an HTTPS server.`) and closed. With a [`ConnectionLimit`],
//! connections over the bound are closed as soon as they are accepted (before any TLS
//! handshake) and counted; each accepted [`Stream`] holds its slot until it is dropped.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::server::TlsStream;

use super::server::Acceptor;

/// Longest a client may take to complete its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once.
const MAX_HANDSHAKES: usize = 256;
/// Established connections waiting for the server to take them.
const BACKLOG: usize = 64;

/// ALPN for a gRPC server.
pub const ALPN_GRPC: &[&[u8]] = &[b"h2"];
/// ALPN for an HTTP server: h2 and http/1.1, as otelcol offers.
pub const ALPN_HTTP: &[&[u8]] = &[b"h2", b"http/1.1"];

/// Concurrent connections the otlp receiver's listeners keep open, per listener; further
/// ones are closed at once (as tcplog's `max_connections` default).
pub const MAX_CONNECTIONS: usize = 4096;

/// A bound on a listener's open connections: one over it is closed as soon as it is
/// accepted, and counted.
#[derive(Clone, Debug)]
pub struct ConnectionLimit {
    slots: Arc<Semaphore>,
    refused: metrics::Counter,
}

impl ConnectionLimit {
    /// At most `max` connections open at once (at least one); `refused` counts the
    /// connections closed because all were taken.
    pub fn new(max: usize, refused: metrics::Counter) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max.clamp(1, Semaphore::MAX_PERMITS))),
            refused,
        }
    }

    /// A slot for a new connection from `peer`, or [`Full`] (counted) when all are taken.
    fn admit(&self, peer: SocketAddr) -> Result<OwnedSemaphorePermit, Full> {
        self.slots.clone().try_acquire_owned().map_err(|_| {
            self.refused.increment(1);
            tracing::debug!(%peer, "Connection closed: too many connections open.");
            Full
        })
    }
}

/// Every slot of a [`ConnectionLimit`] is taken.
struct Full;

/// The slot a connection from `peer` holds under `limit` (none without a limit).
fn slot_for(
    limit: Option<&ConnectionLimit>,
    peer: SocketAddr,
) -> Result<Option<OwnedSemaphorePermit>, Full> {
    limit.map(|limit| limit.admit(peer)).transpose()
}

/// Accepted connections, plain or TLS.
pub struct Incoming {
    source: Source,
    limit: Option<ConnectionLimit>,
}

enum Source {
    /// No TLS: connections as accepted.
    Plain(TcpListener),
    /// TLS: connections whose handshake completed (the accept task applied the limit).
    Tls {
        /// Established connections from the accept task.
        established: mpsc::Receiver<(Stream, SocketAddr)>,
        /// The bound address.
        local: SocketAddr,
    },
}

/// Binds `endpoint` (see [`crate::net::bind`]) and terminates TLS on it when `tls` is given,
/// offering `alpn`.
///
/// # Errors
/// The bind error, or TLS material that cannot be loaded.
pub async fn bind(
    endpoint: &str,
    tls: Option<&super::server::Config>,
    alpn: &[&'static [u8]],
) -> Result<Incoming, crate::component::ComponentError> {
    bind_limited(endpoint, tls, alpn, None).await
}

/// As [`bind`], with at most `limit` connections open at once.
///
/// # Errors
/// As [`bind`].
pub async fn bind_limited(
    endpoint: &str,
    tls: Option<&super::server::Config>,
    alpn: &[&'static [u8]],
    limit: Option<ConnectionLimit>,
) -> Result<Incoming, crate::component::ComponentError> {
    let acceptor = tls
        .map(|config| Acceptor::new(config, alpn))
        .transpose()
        .map_err(|e| crate::component::ComponentError::Other(e.to_string()))?;
    let listener = crate::net::bind(endpoint).await?;
    Ok(incoming(listener, acceptor.map(Arc::new), limit))
}

/// Wraps `listener`; with `tls`, an accept task is spawned (it ends when the `Incoming` is
/// dropped). Must be called inside the runtime.
pub fn incoming(
    listener: TcpListener,
    tls: Option<Arc<Acceptor>>,
    limit: Option<ConnectionLimit>,
) -> Incoming {
    let Some(tls) = tls else {
        return Incoming {
            source: Source::Plain(listener),
            limit,
        };
    };
    let local = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let (tx, established) = mpsc::channel(BACKLOG);
    tokio::spawn(accept_loop(listener, tls, limit.clone(), tx));
    Incoming {
        source: Source::Tls { established, local },
        limit,
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Arc<Acceptor>,
    limit: Option<ConnectionLimit>,
    tx: mpsc::Sender<(Stream, SocketAddr)>,
) {
    let permits = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let accepted = tokio::select! {
            () = tx.closed() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                accept_error(e).await;
                continue;
            }
        };
        let Ok(slot) = slot_for(limit.as_ref(), peer) else {
            continue;
        };
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let config = tls.current();
        let tx = tx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let handshake = async {
                if is_plain_http(&tcp).await {
                    refuse_plain_http(tcp).await;
                    return Err(io::Error::other("plain HTTP request on a TLS port"));
                }
                tokio_rustls::TlsAcceptor::from(config).accept(tcp).await
            };
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                Ok(Ok(stream)) => {
                    let stream = Stream {
                        io: Io::Tls(Box::new(stream)),
                        _slot: slot,
                    };
                    if tx.send((stream, peer)).await.is_err() {
                        tracing::debug!(%peer, "Listener closed during the TLS handshake.");
                    }
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake error."),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out."),
            }
        });
    }
}

/// Whether the first bytes read like an HTTP/1 request line rather than a TLS record.
async fn is_plain_http(tcp: &TcpStream) -> bool {
    let mut head = [0u8; 8];
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tcp.peek(&mut head)).await {
        Ok(Ok(n)) if n >= 3 => {
            let method = head[..n].split(|b| *b == b' ').next().unwrap_or_default();
            method.len() >= 3 && method.iter().all(u8::is_ascii_uppercase)
        }
        _ => false,
    }
}

/// Answers as Go does, then reads (a bounded amount of) what the client sent so that
/// closing does not reset the connection before the client read the answer.
async fn refuse_plain_http(mut tcp: TcpStream) {
    use tokio::io::AsyncReadExt;
    let answer =
        b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";
    if tcp.write_all(answer).await.is_err() || tcp.shutdown().await.is_err() {
        return;
    }
    let mut buf = [0u8; 4096];
    let mut left: usize = 64 * 1024;
    while left > 0 {
        match tokio::time::timeout(Duration::from_secs(1), tcp.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
            _ => break,
        }
    }
}

async fn accept_error(e: io::Error) {
    let per_connection = matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    );
    if !per_connection {
        tracing::error!(error = %e, "Accept failed.");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Incoming {
    /// The next connection and its peer address.
    pub async fn next(&mut self) -> (Stream, SocketAddr) {
        match &mut self.source {
            Source::Plain(listener) => loop {
                match listener.accept().await {
                    Ok((tcp, peer)) => {
                        let Ok(slot) = slot_for(self.limit.as_ref(), peer) else {
                            continue;
                        };
                        let stream = Stream {
                            io: Io::Plain(tcp),
                            _slot: slot,
                        };
                        return (stream, peer);
                    }
                    Err(e) => accept_error(e).await,
                }
            },
            Source::Tls { established, .. } => match established.recv().await {
                Some(pair) => pair,
                None => std::future::pending().await,
            },
        }
    }

    /// The bound address.
    ///
    /// # Errors
    /// As [`TcpListener::local_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.source {
            Source::Plain(listener) => listener.local_addr(),
            Source::Tls { local, .. } => Ok(*local),
        }
    }
}

impl futures::Stream for Incoming {
    type Item = Result<Stream, io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match &mut this.source {
            Source::Plain(listener) => loop {
                match listener.poll_accept(cx) {
                    Poll::Ready(Ok((tcp, peer))) => {
                        let Ok(slot) = slot_for(this.limit.as_ref(), peer) else {
                            continue;
                        };
                        let stream = Stream {
                            io: Io::Plain(tcp),
                            _slot: slot,
                        };
                        return Poll::Ready(Some(Ok(stream)));
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e))),
                    Poll::Pending => return Poll::Pending,
                }
            },
            Source::Tls { established, .. } => match established.poll_recv(cx) {
                Poll::Ready(Some((stream, _))) => Poll::Ready(Some(Ok(stream))),
                Poll::Ready(None) | Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// One accepted connection; it holds its slot of the listener's [`ConnectionLimit`] until
/// dropped.
pub struct Stream {
    io: Io,
    _slot: Option<OwnedSemaphorePermit>,
}

enum Io {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

impl tonic::transport::server::Connected for Stream {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        match &self.io {
            Io::Plain(tcp) => tcp.connect_info(),
            Io::Tls(tls) => tls.get_ref().0.connect_info(),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }
}
