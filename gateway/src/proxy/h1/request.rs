//! The upstream request: head written straight from the header map, body framed by its
//! `Content-Length` or chunked.

use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, Method};
use http_body_util::BodyExt;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

use tokio::net::TcpStream;

use super::Error;
use crate::proxy::body::ProxyBody;

/// How the request body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// As many bytes as `Content-Length` says.
    Length,
    /// Chunked transfer coding.
    Chunked,
}

/// Whether the last transfer coding of `headers` is `chunked`.
pub fn is_chunked(headers: &HeaderMap) -> bool {
    headers
        .get_all(TRANSFER_ENCODING)
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
}

/// The framing of a request with these headers; `has_body` when a body stream follows.
pub fn framing(headers: &HeaderMap, has_body: bool) -> Framing {
    if headers.contains_key(TRANSFER_ENCODING) {
        Framing::Chunked
    } else if headers.contains_key(CONTENT_LENGTH) {
        Framing::Length
    } else if has_body {
        Framing::Chunked
    } else {
        Framing::None
    }
}

/// The request line and headers, ending with the blank line; adds
/// `Transfer-Encoding: chunked` when the body is chunked and the client did not say so.
pub fn encode_head(
    method: &Method,
    path_and_query: &str,
    headers: &HeaderMap,
    framing: Framing,
) -> Vec<u8> {
    let size = headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum::<usize>()
        + path_and_query.len()
        + 64;
    let mut head = Vec::with_capacity(size);
    head.extend_from_slice(method.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(path_and_query.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if framing == Framing::Chunked && !headers.contains_key(TRANSFER_ENCODING) {
        head.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// Writes all of `buf`, failing with [`Error::WriteTimeout`] when the upstream leaves the
/// write blocked for `timeout` (nginx `proxy_send_timeout`). A write the socket takes at
/// once, the usual case, arms no timer.
async fn put(stream: &mut TcpStream, mut buf: &[u8], timeout: Duration) -> Result<(), Error> {
    while !buf.is_empty() {
        match stream.try_write(buf) {
            Ok(0) => return Err(Error::Write(std::io::ErrorKind::WriteZero.into())),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                return tokio::time::timeout(timeout, stream.write_all(buf))
                    .await
                    .map_err(|_| Error::WriteTimeout)?
                    .map_err(Error::Write);
            }
            Err(e) => return Err(Error::Write(e)),
        }
    }
    Ok(())
}

/// Writes `head`, then the body (if any) in `framing`; each write may stay blocked for at
/// most `timeout`.
pub async fn write(
    stream: &mut TcpStream,
    head: &[u8],
    body: Option<ProxyBody>,
    framing: Framing,
    timeout: Duration,
) -> Result<(), Error> {
    put(stream, head, timeout).await?;
    let Some(mut body) = body else {
        if framing == Framing::Chunked {
            put(stream, b"0\r\n\r\n", timeout).await?;
        }
        return Ok(());
    };
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(Error::RequestBody)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        if framing == Framing::Chunked {
            let size = format!("{:x}\r\n", data.len());
            put(stream, size.as_bytes(), timeout).await?;
            put(stream, &data, timeout).await?;
            put(stream, b"\r\n", timeout).await?;
        } else {
            put(stream, &data, timeout).await?;
        }
    }
    if framing == Framing::Chunked {
        put(stream, b"0\r\n\r\n", timeout).await?;
    }
    Ok(())
}
