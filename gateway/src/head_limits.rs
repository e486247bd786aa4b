//! nginx's `large_client_header_buffers` limit with Kong's default (`4 8k`): an HTTP/1
//! request line that does not fit in one 8 KiB buffer (CRLF included) is answered `414` "URI
//! too long"; a header line that does not is answered nginx's `494`, which Kong sends as
//! `400` "Request header or cookie too large". Both use Kong's error body in the media type
//! of an nginx-level error (`Accept`, then `Content-Type`, then `error_default_type`) and close
//! the connection, as nginx does. hyper's whole-head limit
//! ([`crate::listener::MAX_HEADER_BYTES`]) stays the outer bound.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode, Version};

use crate::error;
use crate::plugins::PluginList;
use crate::proxy::body::{self, LoggedBody};
use crate::proxy::context::{new_request_id, RequestContext};
use crate::state::Shared;

/// Size of one large header buffer, bytes (Kong's `large_client_header_buffers 4 8k`).
pub const LARGE_HEADER_BUFFER: usize = 8 * 1024;

/// Which limit a request head exceeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    /// The request line.
    RequestLine,
    /// One header line.
    HeaderLine,
}

/// Length of the request line `METHOD SP target SP HTTP/1.x` without its CRLF.
fn request_line_len<B>(req: &Request<B>) -> usize {
    let uri = req.uri();
    let target = match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => {
            scheme.len()
                + 3
                + authority.as_str().len()
                + uri.path_and_query().map_or(0, |p| p.as_str().len())
        }
        _ => uri.path_and_query().map_or(1, |p| p.as_str().len()),
    };
    req.method().as_str().len() + 1 + target + 1 + "HTTP/1.1".len()
}

/// The limit an HTTP/1 request head exceeds, if any.
pub fn exceeded<B>(req: &Request<B>) -> Option<Exceeded> {
    if !matches!(req.version(), Version::HTTP_10 | Version::HTTP_11) {
        return None;
    }
    if request_line_len(req) + 2 > LARGE_HEADER_BUFFER {
        return Some(Exceeded::RequestLine);
    }
    req.headers()
        .iter()
        .any(|(name, value)| name.as_str().len() + 2 + value.len() + 2 > LARGE_HEADER_BUFFER)
        .then_some(Exceeded::HeaderLine)
}

/// Kong's answer to a request head over a limit; counted in the rejected requests.
pub fn reply<B>(shared: &Arc<Shared>, req: &Request<B>, what: Exceeded) -> Response<LoggedBody> {
    shared
        .counters
        .rejected_requests
        .fetch_add(1, Ordering::Relaxed);
    let (status, message) = match what {
        Exceeded::RequestLine => (StatusCode::URI_TOO_LONG, "URI too long"),
        Exceeded::HeaderLine => (
            StatusCode::BAD_REQUEST,
            "Request header or cookie too large",
        ),
    };
    let text = |name: header::HeaderName| req.headers().get(name).and_then(|v| v.to_str().ok());
    let media = error::media_type(
        text(header::ACCEPT),
        text(header::CONTENT_TYPE),
        &shared.conf.error_default_type,
        true,
    );
    let request_id = new_request_id();
    let bytes = Bytes::from(error::body(media, message, &request_id));
    let ctx = RequestContext::new(std::net::SocketAddr::from(([0, 0, 0, 0], 0)), 0);
    let plugins: PluginList = Arc::from(Vec::new());
    let mut response = Response::new(LoggedBody::new(
        body::full(bytes),
        ctx,
        plugins,
        Box::new(|_| {}),
    ));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media.content_type()),
    );
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    if shared.conf.header_enabled("server") {
        if let Ok(v) = HeaderValue::from_str(&format!("kong/{}", shared.conf.server_version)) {
            headers.insert(header::SERVER, v);
        }
    }
    if shared.conf.header_enabled("x-kong-request-id") {
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            headers.insert("x-kong-request-id", v);
        }
    }
    response
}
