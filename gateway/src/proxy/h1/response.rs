//! The upstream response head: parsed with `httparse` from the connection's read buffer, the
//! header values sharing that buffer instead of being copied.

use http::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, Method, StatusCode, Version};

use super::request::is_chunked;
use super::Error;

/// Most headers accepted in a response.
pub const MAX_HEADERS: usize = 128;

/// Largest response head accepted.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How the response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    /// No body (HEAD, 1xx, 204, 304).
    Empty,
    /// `Content-Length` bytes.
    Exact(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the upstream closes the connection.
    UntilClose,
}

/// A parsed response head.
#[derive(Debug)]
pub struct Head {
    /// Status.
    pub status: StatusCode,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// Headers, as sent.
    pub headers: HeaderMap,
    /// Body delimitation.
    pub length: BodyLength,
    /// Whether the connection can carry another request after this response.
    pub keep_alive: bool,
}

/// Parses a complete head at the start of `buf` and removes it; `None` when more bytes are
/// needed.
pub fn parse(buf: &mut bytes::BytesMut, method: &Method) -> Result<Option<Head>, Error> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut slots);
    let size = match response.parse(buf) {
        Ok(httparse::Status::Complete(size)) => size,
        Ok(httparse::Status::Partial) => {
            if buf.len() >= MAX_HEAD_BYTES {
                return Err(Error::Invalid("response head too large".into()));
            }
            return Ok(None);
        }
        Err(e) => return Err(Error::Invalid(e.to_string())),
    };
    let code = response.code.unwrap_or_default();
    let status =
        StatusCode::from_u16(code).map_err(|_| Error::Invalid(format!("status code {code}")))?;
    let version = if response.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    // Offsets of every name and value within the head, so the values can share its bytes.
    let base = buf.as_ptr() as usize;
    let mut spans = [(0usize, 0usize, 0usize, 0usize); MAX_HEADERS];
    let count = response.headers.len();
    for (span, h) in spans.iter_mut().zip(response.headers.iter()) {
        let name = h.name.as_ptr() as usize - base;
        let value = h.value.as_ptr() as usize - base;
        *span = (name, h.name.len(), value, h.value.len());
    }
    let head = buf.split_to(size).freeze();
    let mut headers = HeaderMap::with_capacity(count);
    for &(name, name_len, value, value_len) in &spans[..count] {
        let name = HeaderName::from_bytes(&head[name..name + name_len])
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let value = HeaderValue::from_maybe_shared(head.slice(value..value + value_len))
            .map_err(|e| Error::Invalid(e.to_string()))?;
        headers.append(name, value);
    }
    let length = body_length(status, method, &headers)?;
    let keep_alive = length != BodyLength::UntilClose && wants_keep_alive(version, &headers);
    Ok(Some(Head {
        status,
        version,
        headers,
        length,
        keep_alive,
    }))
}

fn body_length(
    status: StatusCode,
    method: &Method,
    headers: &HeaderMap,
) -> Result<BodyLength, Error> {
    if method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(BodyLength::Empty);
    }
    if headers.contains_key(TRANSFER_ENCODING) {
        return Ok(if is_chunked(headers) {
            BodyLength::Chunked
        } else {
            BodyLength::UntilClose
        });
    }
    let mut lengths = headers.get_all(CONTENT_LENGTH).iter();
    let Some(first) = lengths.next() else {
        return Ok(BodyLength::UntilClose);
    };
    let parse = |v: &HeaderValue| {
        v.to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or_else(|| Error::Invalid("invalid content-length".into()))
    };
    let n = parse(first)?;
    for other in lengths {
        if parse(other)? != n {
            return Err(Error::Invalid("conflicting content-length".into()));
        }
    }
    Ok(if n == 0 {
        BodyLength::Empty
    } else {
        BodyLength::Exact(n)
    })
}

fn wants_keep_alive(version: Version, headers: &HeaderMap) -> bool {
    let mut close = false;
    let mut keep_alive = false;
    for value in headers.get_all(CONNECTION) {
        for token in value.to_str().unwrap_or("").split(',') {
            let token = token.trim();
            close |= token.eq_ignore_ascii_case("close");
            keep_alive |= token.eq_ignore_ascii_case("keep-alive");
        }
    }
    if version == Version::HTTP_10 {
        keep_alive && !close
    } else {
        !close
    }
}
