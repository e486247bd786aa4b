//! The upstream HTTP/1.1 client of plain (`http`, `ws`) services.
//!
//! One request per pooled keep-alive connection at a time, written and read by the request's
//! own task: the head is encoded straight from the header map, the response head parsed with
//! `httparse` from the read buffer (header values share it), and the body streamed from the
//! same buffer (see [`body::UpstreamBody`]). No connection task, channel or second header map
//! per request, which is what a general-purpose client costs on this path. TLS services keep
//! using the hyper client.

pub mod body;
pub mod chunked;
pub mod pool;
pub mod request;
pub mod response;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Method, Response};
use tokio::net::TcpStream;

pub use body::{Upgraded, UpstreamBody};
use pool::{Conn, Pool};

use crate::proxy::body::{BoxError, ProxyBody};

/// Bytes read from an upstream connection at a time.
pub const READ_CHUNK: usize = 16 * 1024;

/// Why an upstream exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The connection could not be opened.
    #[error("connect: {0}")]
    Connect(std::io::Error),
    /// The connection was not opened within `connect_timeout`.
    #[error("connect timed out")]
    ConnectTimeout,
    /// Writing the request failed.
    #[error("write: {0}")]
    Write(std::io::Error),
    /// A write stayed blocked for `write_timeout`.
    #[error("upstream write timed out")]
    WriteTimeout,
    /// Reading the client's request body failed.
    #[error("request body: {0}")]
    RequestBody(BoxError),
    /// Reading the response failed.
    #[error("read: {0}")]
    Read(std::io::Error),
    /// The upstream closed the connection before the response was complete.
    #[error("upstream closed the connection")]
    Closed,
    /// No bytes within `read_timeout`.
    #[error("upstream read timed out")]
    ReadTimeout,
    /// The response is not valid HTTP/1.x.
    #[error("invalid response: {0}")]
    Invalid(String),
    /// More header lines than the parser was given room for.
    #[error("too many response headers")]
    TooManyHeaders,
}

impl Error {
    /// Whether the connection was never established (safe to try another peer).
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Connect(_) | Self::ConnectTimeout)
    }

    /// Whether a timeout caused it.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            Self::ConnectTimeout | Self::ReadTimeout | Self::WriteTimeout
        )
    }

    /// Whether a reused connection turned out closed by the upstream before any byte of the
    /// response: the request is sent again on a new connection.
    fn is_stale(&self) -> bool {
        match self {
            Self::Closed => true,
            Self::Write(e) | Self::Read(e) => matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
            ),
            _ => false,
        }
    }
}

/// The request sent upstream.
#[derive(Debug)]
pub struct Outgoing<'a> {
    /// Method.
    pub method: &'a Method,
    /// Path and query.
    pub path_and_query: &'a str,
    /// Headers (including `Host`).
    pub headers: &'a HeaderMap,
}

/// The client: the idle connection pool and the timeouts of one service.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// `connect_timeout`.
    pub connect: Duration,
    /// `read_timeout` (between two reads of the response).
    pub read: Duration,
    /// `write_timeout` (the longest one write of the request may stay blocked).
    pub write: Duration,
}

async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Conn, Error> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| Error::ConnectTimeout)?
        .map_err(Error::Connect)?;
    // Nagle would hold a small request body back behind its head.
    stream.set_nodelay(true).map_err(Error::Connect)?;
    Ok(Conn::new(stream))
}

/// Reads until a complete final response head is buffered (1xx other than 101 skipped).
async fn read_head(conn: &mut Conn, method: &Method) -> Result<response::Head, Error> {
    use tokio::io::AsyncReadExt;
    let mut read_any = false;
    loop {
        if !conn.buf.is_empty() {
            if let Some(head) = response::parse(&mut conn.buf, method)? {
                let interim = head.status.is_informational()
                    && head.status != http::StatusCode::SWITCHING_PROTOCOLS;
                if !interim {
                    return Ok(head);
                }
                // What followed the interim response is the next head.
                conn.buf.extend_from_slice(&head.rest);
                continue;
            }
        }
        conn.buf.reserve(READ_CHUNK);
        let n = conn
            .stream
            .read_buf(&mut conn.buf)
            .await
            .map_err(Error::Read)?;
        if n == 0 {
            return Err(if read_any {
                Error::Invalid("connection closed within the response head".into())
            } else {
                Error::Closed
            });
        }
        read_any = true;
    }
}

/// Sends `out` to `addr` over a pooled connection (a new one when none is idle) and returns
/// the response once its head arrived; the body streams from the connection. A reused
/// connection the upstream had closed is replaced once when the request has no body.
pub async fn send(
    pool: &Arc<Pool>,
    addr: SocketAddr,
    timeouts: Timeouts,
    out: &Outgoing<'_>,
    body: Option<ProxyBody>,
) -> Result<(Response<UpstreamBody>, Option<Upgraded>), Error> {
    let has_body = body.is_some();
    let framing = request::framing(out.headers, has_body);
    let head = request::encode_head(out.method, out.path_and_query, out.headers, framing);
    let mut body = body;
    let (mut conn, mut reused) = match pool.checkout(addr) {
        Some(conn) => (conn, true),
        None => (connect(addr, timeouts.connect).await?, false),
    };
    let response = loop {
        let exchanged = async {
            request::write(
                &mut conn.stream,
                &head,
                body.take(),
                framing,
                timeouts.write,
            )
            .await?;
            read_head(&mut conn, out.method).await
        }
        .await;
        match exchanged {
            Ok(response) => break response,
            Err(e) if reused && !has_body && e.is_stale() => {
                conn = connect(addr, timeouts.connect).await?;
                reused = false;
            }
            Err(e) => return Err(e),
        }
    };
    let upgraded = response.status == http::StatusCode::SWITCHING_PROTOCOLS;
    let (body, upgraded) = if upgraded {
        let upgraded = Upgraded {
            stream: conn.stream,
            read_ahead: response.rest,
        };
        (UpstreamBody::empty(Arc::clone(pool), addr), Some(upgraded))
    } else {
        let body = UpstreamBody::new(
            conn,
            response.rest,
            response.length,
            response.keep_alive,
            Arc::clone(pool),
            addr,
            timeouts.read,
        );
        (body, None)
    };
    let mut reply = Response::new(body);
    *reply.status_mut() = response.status;
    *reply.version_mut() = response.version;
    *reply.headers_mut() = response.headers;
    Ok((reply, upgraded))
}
