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
    /// Bytes read past the head.
    pub rest: bytes::Bytes,
}

/// Header slots tried first: enough for nearly every response, and cheap to set up.
const FEW_HEADERS: usize = 24;

/// Parses a complete head at the start of `buf` and takes the whole buffer: the head, and the
/// bytes read past it (the start of the body) as [`Head::rest`]. `None` (the buffer left as
/// it was) when more bytes are needed.
pub fn parse(buf: &mut bytes::BytesMut, method: &Method) -> Result<Option<Head>, Error> {
    // Parse from frozen bytes so header values can be slices of them, not copies.
    let bytes = buf.split().freeze();
    let mut few = [httparse::EMPTY_HEADER; FEW_HEADERS];
    let parsed = match parse_into(&bytes, &mut few, method) {
        Err(Error::TooManyHeaders) => {
            let mut many = vec![httparse::EMPTY_HEADER; MAX_HEADERS];
            parse_into(&bytes, &mut many, method)
        }
        other => other,
    };
    match parsed {
        Ok(Some((mut head, size))) => {
            head.rest = bytes.slice(size..);
            Ok(Some(head))
        }
        Ok(None) => {
            buf.extend_from_slice(&bytes);
            if buf.len() >= MAX_HEAD_BYTES {
                return Err(Error::Invalid("response head too large".into()));
            }
            Ok(None)
        }
        Err(Error::TooManyHeaders) => Err(Error::Invalid("too many headers".into())),
        Err(e) => Err(e),
    }
}

fn parse_into<'b>(
    bytes: &'b bytes::Bytes,
    slots: &mut [httparse::Header<'b>],
    method: &Method,
) -> Result<Option<(Head, usize)>, Error> {
    let mut response = httparse::Response::new(slots);
    let size = match response.parse(bytes) {
        Ok(httparse::Status::Complete(size)) => size,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Error::TooManyHeaders),
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
    // Room for the headers the proxy adds to the response.
    let mut headers = HeaderMap::with_capacity(response.headers.len() + 8);
    for h in response.headers.iter() {
        let name =
            HeaderName::from_bytes(h.name.as_bytes()).map_err(|e| Error::Invalid(e.to_string()))?;
        let value = HeaderValue::from_maybe_shared(bytes.slice_ref(h.value))
            .map_err(|e| Error::Invalid(e.to_string()))?;
        headers.append(name, value);
    }
    let length = body_length(status, method, &headers)?;
    let keep_alive = length != BodyLength::UntilClose && wants_keep_alive(version, &headers);
    let head = Head {
        status,
        version,
        headers,
        length,
        keep_alive,
        rest: bytes::Bytes::new(),
    };
    Ok(Some((head, size)))
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

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;

    #[test]
    fn heads_with_many_headers_and_the_body_start_after_them() {
        let mut text = String::from("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n");
        for i in 0..40 {
            text.push_str(&format!("X-H{i}: {i}\r\n"));
        }
        text.push_str("\r\nbody");
        let mut buf = BytesMut::from(text.as_bytes());
        let head = parse(&mut buf, &Method::GET).unwrap().unwrap();
        assert_eq!(head.headers.len(), 41);
        assert_eq!(head.headers["x-h39"], "39");
        assert_eq!(head.length, BodyLength::Exact(4));
        assert_eq!(&head.rest[..], b"body");
        assert!(buf.is_empty());
    }

    #[test]
    fn partial_heads_stay_buffered_and_bad_ones_are_refused() {
        let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Le"[..]);
        assert!(parse(&mut buf, &Method::GET).unwrap().is_none());
        assert_eq!(&buf[..], b"HTTP/1.1 200 OK\r\nContent-Le");
        buf.extend_from_slice(b"ngth: 0\r\nConnection: close\r\n\r\n");
        let head = parse(&mut buf, &Method::GET).unwrap().unwrap();
        assert_eq!(head.length, BodyLength::Empty);
        assert!(!head.keep_alive);
        let mut too_many = String::from("HTTP/1.1 200 OK\r\n");
        for i in 0..=MAX_HEADERS {
            too_many.push_str(&format!("X-H{i}: {i}\r\n"));
        }
        too_many.push_str("\r\n");
        let mut buf = BytesMut::from(too_many.as_bytes());
        assert!(parse(&mut buf, &Method::GET).is_err());
        let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"[..]);
        assert!(parse(&mut buf, &Method::GET).is_err());
    }
}
