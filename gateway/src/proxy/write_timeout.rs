//! The service's `write_timeout` (nginx `proxy_send_timeout`): the longest the upstream may
//! leave a write to it blocked. [`TimedConnector`] wraps the TCP connector so that every
//! upstream connection fails a write that makes no progress for that long with
//! `TimedOut`, which the proxy answers with Kong's 504.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// A TCP connector whose connections time out blocked writes.
#[derive(Debug, Clone)]
pub struct TimedConnector {
    inner: HttpConnector,
    write_timeout: Duration,
}

impl TimedConnector {
    /// Wraps `inner`; writes blocked for `write_timeout` fail.
    pub fn new(inner: HttpConnector, write_timeout: Duration) -> Self {
        Self {
            inner,
            write_timeout,
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Uri> for TimedConnector {
    type Response = TimedIo;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<TimedIo, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let timeout = self.write_timeout;
        Box::pin(async move {
            let io = connecting.await?;
            Ok(TimedIo {
                inner: io,
                timeout,
                deadline: None,
            })
        })
    }
}

/// An upstream connection whose blocked writes time out.
#[derive(Debug)]
pub struct TimedIo {
    inner: TokioIo<TcpStream>,
    timeout: Duration,
    deadline: Option<Pin<Box<Sleep>>>,
}

impl TimedIo {
    /// Ready results clear the deadline; a pending write starts it, and fails once it passes.
    fn guard<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.deadline = None;
            return poll;
        }
        let timeout = self.timeout;
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.deadline = None;
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "upstream write timed out",
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Connection for TimedIo {
    fn connected(&self) -> Connected {
        self.inner.connected()
    }
}

impl Read for TimedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl Write for TimedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.guard(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.guard(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.guard(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
