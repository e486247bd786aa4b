//! Kong's answers to requests rejected before routing. hyper answers an HTTP/1 request it
//! cannot parse with a bare `400 Bad Request` and an oversized request head with a bare
//! `431`; nginx (and so Kong) sends `400` with Kong's error body instead, and reports an
//! oversized head as `494`, sent as `400` "Request header or cookie too large". [`KongErrors`]
//! wraps a connection and replaces exactly those bare responses (status line, then
//! `connection: close`, `content-length: 0`, `date`, nothing else) with Kong's: the media
//! type of kong.conf `error_default_type` (the request's `Accept` is unknown), a fresh
//! request id, `Server` and `X-Kong-Request-Id` as `headers` allows.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::conf::KongConf;
use crate::error::{self, MediaType};

/// hyper's bare error heads, and Kong's message for each.
const BARE: &[(&[u8], &str)] = &[
    (
        b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: ",
        "Bad request",
    ),
    (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: ",
        "Request header or cookie too large",
    ),
];

/// The replacement for a bare error head in `buf`, if it is one.
pub fn replacement(buf: &[u8], conf: &KongConf) -> Option<Vec<u8>> {
    let (prefix, message) = BARE.iter().find(|(p, _)| buf.starts_with(p))?;
    let rest = &buf[prefix.len()..];
    let date_end = rest.windows(4).position(|w| w == b"\r\n\r\n")?;
    if date_end + 4 != rest.len() || rest[..date_end].contains(&b'\n') {
        return None;
    }
    let date = String::from_utf8_lossy(&rest[..date_end]);
    let request_id = crate::proxy::context::new_request_id();
    let media = error::media_type(None, None, &conf.error_default_type, true);
    let body = error::body(media, message, &request_id);
    let mut head = format!(
        "HTTP/1.1 400 Bad Request\r\ndate: {date}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n",
        content_type(media),
        body.len()
    );
    if conf.header_enabled("server") {
        head.push_str(&format!("server: kong/{}\r\n", conf.server_version));
    }
    if conf.header_enabled("x-kong-request-id") {
        head.push_str(&format!("x-kong-request-id: {request_id}\r\n"));
    }
    head.push_str("\r\n");
    head.push_str(&body);
    Some(head.into_bytes())
}

fn content_type(media: MediaType) -> &'static str {
    media.content_type()
}

/// A connection whose bare hyper error responses are rewritten as Kong's; counts them in
/// `rejected`.
pub struct KongErrors<I> {
    inner: I,
    conf: Arc<KongConf>,
    rejected: Arc<AtomicU64>,
    /// Replacement bytes still to write, the position reached, and the length of the
    /// buffer hyper asked to write.
    pending: Option<(Vec<u8>, usize, usize)>,
}

impl<I> KongErrors<I> {
    /// Wraps `inner`.
    pub fn new(inner: I, conf: Arc<KongConf>, rejected: Arc<AtomicU64>) -> Self {
        Self {
            inner,
            conf,
            rejected,
            pending: None,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for KongErrors<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for KongErrors<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pending.is_none() && buf.starts_with(b"HTTP/1.1 4") {
            if let Some(bytes) = replacement(buf, &this.conf) {
                this.rejected.fetch_add(1, Ordering::Relaxed);
                this.pending = Some((bytes, 0, buf.len()));
            }
        }
        let Some((bytes, pos, asked)) = this.pending.as_mut() else {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        };
        while *pos < bytes.len() {
            match Pin::new(&mut this.inner).poll_write(cx, &bytes[*pos..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *pos += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        let asked = *asked;
        this.pending = None;
        Poll::Ready(Ok(asked))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // A bare error head is written on its own; everything else passes through as is.
        let first = bufs.iter().find(|b| !b.is_empty());
        if self.pending.is_some() || first.is_some_and(|b| b.starts_with(b"HTTP/1.1 4")) {
            if let Some(first) = first {
                return self.poll_write(cx, first);
            }
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(env: &[(&str, &str)]) -> KongConf {
        let vars = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        KongConf::load(None, vars).unwrap()
    }

    #[test]
    fn only_hypers_bare_heads_are_replaced() {
        let c = conf(&[]);
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Tue, 01 Dec 2026 23:02:18 GMT\r\n\r\n";
        let out = String::from_utf8(replacement(bare, &c).unwrap()).unwrap();
        assert!(
            out.starts_with("HTTP/1.1 400 Bad Request\r\ndate: Tue, 01 Dec 2026 23:02:18 GMT\r\n")
        );
        assert!(out.contains("content-type: text/plain; charset=utf-8\r\n"));
        assert!(out.contains("server: kong/3.9.0\r\n"));
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(body.starts_with("Request header or cookie too large\nrequest_id: "));
        let rid = head
            .lines()
            .find_map(|l| l.strip_prefix("x-kong-request-id: "))
            .unwrap();
        assert_eq!(
            body,
            format!("Request header or cookie too large\nrequest_id: {rid}\n")
        );
        assert!(head.contains(&format!("content-length: {}", body.len())));

        let proxied = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\nserver: up\r\n\r\n";
        assert!(replacement(proxied, &c).is_none());
        assert!(replacement(b"HTTP/1.1 404 Not Found\r\n\r\n", &c).is_none());

        let json = conf(&[
            ("KONG_ERROR_DEFAULT_TYPE", "application/json"),
            ("KONG_HEADERS", "off"),
        ]);
        let bad = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: d\r\n\r\n";
        let out = String::from_utf8(replacement(bad, &json).unwrap()).unwrap();
        assert!(out.contains("content-type: application/json; charset=utf-8"));
        assert!(out.contains("\"message\":\"Bad request\""));
        assert!(!out.contains("server:") && !out.contains("x-kong-request-id"));
    }
}
