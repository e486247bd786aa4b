//! Kong's answers to requests rejected before routing. hyper answers an HTTP/1 request it
//! cannot parse with a bare `400 Bad Request` and an oversized request head with a bare
//! `431`; nginx (and so Kong) sends `400` with Kong's error body instead, and reports an
//! oversized head as `494`, sent as `400` "Request header or cookie too large". [`KongErrors`]
//! wraps a connection and replaces exactly those bare responses (status line, then
//! `connection: close`, `content-length: 0`, `date`, nothing else) with Kong's: the media
//! type of kong.conf `error_default_type` (the request's `Accept` is unknown), a fresh
//! request id, `Server` and `X-Kong-Request-Id` as `headers` allows. A head over hyper's
//! bound whose request line is itself over nginx's 8 KiB line buffer is answered `414` "URI
//! too long", as nginx does: [`Lines`] follows the line breaks read on the connection for that.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::conf::KongConf;
use crate::error::{self, MediaType};

/// hyper's bare error heads, and Kong's status and message for each.
const BARE: &[(&[u8], &str, &str)] = &[
    (
        b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: ",
        "400 Bad Request",
        "Bad request",
    ),
    (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: ",
        "400 Bad Request",
        "Request header or cookie too large",
    ),
    // hyper's answer to a request target over 65534 bytes within a complete request line.
    (
        b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-length: 0\r\ndate: ",
        URI_TOO_LONG.0,
        URI_TOO_LONG.1,
    ),
];

/// Kong's answer to an oversized head whose request line is over the line buffer.
const URI_TOO_LONG: (&str, &str) = ("414 URI Too Long", "URI too long");

/// Where the bytes read on a connection stand, line by line: enough to tell, when hyper
/// refuses a head as too large, whether its request line was the line too long. A head starts
/// after an empty line (or at the connection's start); request bodies are not told apart, so
/// a body holding an empty line makes its next line count as a request line.
#[derive(Debug, Clone, Copy)]
pub struct Lines {
    /// Bytes of the line not yet ended, saturating.
    open: usize,
    /// Whether the line not yet ended is a head's first line.
    first: bool,
    /// Length of the last first line that ended, line break excluded.
    first_len: usize,
    /// The last byte read.
    last: u8,
}

impl Default for Lines {
    fn default() -> Self {
        Self {
            open: 0,
            first: true,
            first_len: 0,
            last: b'\n',
        }
    }
}

impl Lines {
    /// Follows the bytes `read` next on the connection.
    pub fn read(&mut self, read: &[u8]) {
        let Some(&last) = read.last() else {
            return;
        };
        let mut start = 0;
        for at in memchr::memchr_iter(b'\n', read) {
            let len = self.open.saturating_add(at - start);
            let before = if at > 0 { read[at - 1] } else { self.last };
            let empty = len == 0 || (len == 1 && before == b'\r');
            if self.first && !empty {
                self.first_len = len;
            }
            // After an empty line comes a head's first line (or, before one, more empty
            // lines, which nginx and hyper skip).
            self.first = empty;
            self.open = 0;
            start = at + 1;
        }
        self.open = self.open.saturating_add(read.len() - start);
        self.last = last;
    }

    /// Whether the current head's request line is over `limit` bytes with its CRLF (ended or
    /// still open).
    pub fn request_line_over(&self, limit: usize) -> bool {
        let len = if self.first {
            self.open
        } else {
            self.first_len
        };
        len.saturating_add(2) > limit
    }
}

/// The replacement for a bare error head in `buf`, if it is one; `uri_too_long` turns hyper's
/// oversized-head answer into nginx's `414` for a request line over the line buffer.
pub fn replacement(buf: &[u8], conf: &KongConf, uri_too_long: bool) -> Option<Vec<u8>> {
    let index = BARE.iter().position(|(p, _, _)| buf.starts_with(p))?;
    let (prefix, status, message) = BARE[index];
    let (status, message) = if index == 1 && uri_too_long {
        URI_TOO_LONG
    } else {
        (status, message)
    };
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
        "HTTP/1.1 {status}\r\ndate: {date}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n",
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
    /// The line breaks read so far.
    lines: Lines,
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
            lines: Lines::default(),
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
        let before = buf.filled().len();
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if polled.is_ready() {
            this.lines.read(&buf.filled()[before..]);
        }
        polled
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
            let uri_too_long = this
                .lines
                .request_line_over(crate::head_limits::LARGE_HEADER_BUFFER);
            if let Some(bytes) = replacement(buf, &this.conf, uri_too_long) {
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
        let out = String::from_utf8(replacement(bare, &c, false).unwrap()).unwrap();
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
        assert!(replacement(proxied, &c, true).is_none());
        assert!(replacement(b"HTTP/1.1 404 Not Found\r\n\r\n", &c, true).is_none());

        let json = conf(&[
            ("KONG_ERROR_DEFAULT_TYPE", "application/json"),
            ("KONG_HEADERS", "off"),
        ]);
        let bad = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: d\r\n\r\n";
        let out = String::from_utf8(replacement(bad, &json, true).unwrap()).unwrap();
        assert!(out.contains("content-type: application/json; charset=utf-8"));
        assert!(out.contains("\"message\":\"Bad request\""));
        assert!(!out.contains("server:") && !out.contains("x-kong-request-id"));
    }

    #[test]
    fn an_oversized_head_with_a_long_request_line_is_414() {
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: d\r\n\r\n";
        let out = String::from_utf8(replacement(bare, &conf(&[]), true).unwrap()).unwrap();
        assert!(out.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{out}");
        let (_, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(body.starts_with("URI too long\nrequest_id: "), "{body}");
        let bare = b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-length: 0\r\ndate: d\r\n\r\n";
        let out = String::from_utf8(replacement(bare, &conf(&[]), false).unwrap()).unwrap();
        assert!(out.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{out}");
        assert!(out.contains("\r\n\r\nURI too long\nrequest_id: "), "{out}");
    }

    fn lines(chunks: &[&[u8]]) -> Lines {
        let mut lines = Lines::default();
        for chunk in chunks {
            lines.read(chunk);
        }
        lines
    }

    #[test]
    fn lines_tell_the_request_line_from_the_headers() {
        let long = vec![b'a'; 9000];
        // An open request line, read in pieces.
        let l = lines(&[b"GET /", &long, &long]);
        assert!(l.request_line_over(8192));
        // A short request line, then an open header line of any length.
        let l = lines(&[b"GET / HTTP/1.1\r\nhost: x\r\nx-big: ", &long, &long]);
        assert!(!l.request_line_over(8192));
        // A long request line that ended, then headers.
        let mut head = b"GET /".to_vec();
        head.extend_from_slice(&long);
        head.extend_from_slice(b" HTTP/1.1\r");
        let l = lines(&[&head, b"\nhost: x\r\nx-a: b"]);
        assert!(l.request_line_over(8192));
        // The next head on a keep-alive connection, after leading empty lines.
        let l = lines(&[b"GET /a HTTP/1.1\r\nhost: x\r\n\r", b"\n\r\nGET /", &long]);
        assert!(l.request_line_over(8192));
        let l = lines(&[
            b"GET /a HTTP/1.1\r\nhost: x\r\n\r\nGET /b HTTP/1.1\r\nx: ",
            &long,
        ]);
        assert!(!l.request_line_over(8192));
        // The limit counts the CRLF: 8190 bytes fit, 8191 do not.
        let fits = lines(&[&[b'a'; 8190]]);
        assert!(!fits.request_line_over(8192));
        assert!(lines(&[&[b'a'; 8191]]).request_line_over(8192));
    }
}
