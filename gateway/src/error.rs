//! The gateway's one error type and its mapping to Kong's statuses and error bodies
//! (Kong/kong:kong/pdk/response.lua `error`, kong/error_handlers.lua, kong/tools/http.lua).

use std::fmt;

/// Which side of the proxy failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client's request.
    Downstream,
    /// The upstream server.
    Upstream,
    /// The gateway itself.
    Internal,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// No route matched (404).
    NoRoute,
    /// The route has no service and no plugin answered (503).
    NoService,
    /// Plain-http request on an https-only route (426 or the route's redirect status).
    HttpsRequired {
        /// 426, 301, 302, 307 or 308.
        status: u16,
        /// `https://host/uri` for redirects.
        location: String,
    },
    /// The service host did not resolve (503).
    NameResolution,
    /// No target available in an upstream entity (503).
    NoPeer,
    /// Connection refused/reset or an invalid upstream response (502).
    BadGateway,
    /// Connect or read timeout (504).
    Timeout,
    /// A request the gateway cannot accept (400, 405, 413, 414, …).
    Status(u16),
    /// A failure inside the gateway (500).
    Internal,
}

/// A proxy error: kind, failing side, and whether another try may succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Where.
    pub side: Side,
    /// Whether the balancer may try again.
    pub retry: bool,
    /// Detail for logs.
    pub detail: String,
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:?}): {}", self.message(), self.side, self.detail)
    }
}

impl std::error::Error for GatewayError {}

impl GatewayError {
    /// An error of `kind` on `side`.
    pub fn new(kind: ErrorKind, side: Side, detail: impl Into<String>) -> Self {
        let retry = matches!(kind, ErrorKind::BadGateway | ErrorKind::Timeout);
        Self {
            kind,
            side,
            retry,
            detail: detail.into(),
        }
    }

    /// The status sent to the client.
    pub fn status(&self) -> u16 {
        match &self.kind {
            ErrorKind::NoRoute => 404,
            ErrorKind::NoService | ErrorKind::NameResolution | ErrorKind::NoPeer => 503,
            ErrorKind::HttpsRequired { status, .. } => *status,
            ErrorKind::BadGateway => 502,
            ErrorKind::Timeout => 504,
            ErrorKind::Status(494) => 400,
            ErrorKind::Status(s) => *s,
            ErrorKind::Internal => 500,
        }
    }

    /// Kong's message for the error.
    pub fn message(&self) -> String {
        match &self.kind {
            ErrorKind::NoRoute => "no Route matched with those values".into(),
            ErrorKind::NoService => "no Service found with those values".into(),
            ErrorKind::HttpsRequired { .. } => "Please use HTTPS protocol".into(),
            ErrorKind::NameResolution => "name resolution failed".into(),
            ErrorKind::NoPeer => "failure to get a peer from the ring-balancer".into(),
            ErrorKind::BadGateway
            | ErrorKind::Timeout
            | ErrorKind::Status(_)
            | ErrorKind::Internal => status_message(self.status_for_message()).into(),
        }
    }

    fn status_for_message(&self) -> u16 {
        match self.kind {
            ErrorKind::Status(s) => s,
            _ => self.status(),
        }
    }

    /// Whether the error comes from nginx's error_page path (media type falls back to the
    /// request Content-Type, then `error_default_type`) rather than `kong.response.error`.
    pub fn from_nginx(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::BadGateway | ErrorKind::Timeout | ErrorKind::Status(_) | ErrorKind::Internal
        )
    }
}

/// Kong's message for an nginx-level status.
pub fn status_message(status: u16) -> std::borrow::Cow<'static, str> {
    let text = match status {
        400 => "Bad request",
        404 => "Not found",
        405 => "Method not allowed",
        408 => "Request timeout",
        411 => "Length required",
        412 => "Precondition failed",
        413 => "Payload too large",
        414 => "URI too long",
        417 => "Expectation failed",
        494 => "Request header or cookie too large",
        500 => "An unexpected error occurred",
        502 => "An invalid response was received from the upstream server",
        503 => "The upstream server is currently unavailable",
        504 => "The upstream server is timing out",
        other => return format!("The upstream server responded with {other}").into(),
    };
    text.into()
}

/// Media types Kong renders error bodies in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    /// `application/json`
    Json,
    /// `text/plain`
    Text,
    /// `text/html`
    Html,
    /// `application/xml`
    Xml,
}

impl MediaType {
    fn from_type(t: &str) -> Option<Self> {
        match t {
            "application/json" | "*/*" | "application/*" => Some(Self::Json),
            "text/plain" | "text/*" => Some(Self::Text),
            "text/html" => Some(Self::Html),
            "application/xml" | "text/xml" => Some(Self::Xml),
            _ => None,
        }
    }

    /// The Content-Type header value.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json; charset=utf-8",
            Self::Text => "text/plain; charset=utf-8",
            Self::Html => "text/html; charset=utf-8",
            Self::Xml => "application/xml; charset=utf-8",
        }
    }
}

/// The highest-q known media type of an Accept header.
fn from_accept(accept: &str) -> Option<MediaType> {
    let mut best: Option<(f32, MediaType)> = None;
    for part in accept.split(',') {
        let mut pieces = part.split(';');
        let t = pieces
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let q = pieces
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        if let Some(m) = MediaType::from_type(&t) {
            if best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, m));
            }
        }
    }
    best.map(|(_, m)| m)
}

/// The media type of an error body: Accept first; for nginx-level errors then the request
/// Content-Type, then `error_default_type`; JSON otherwise.
pub fn media_type(
    accept: Option<&str>,
    content_type: Option<&str>,
    default_type: &str,
    nginx: bool,
) -> MediaType {
    if let Some(m) = accept.and_then(from_accept) {
        return m;
    }
    if accept.is_some() || !nginx {
        return MediaType::Json;
    }
    let base = |v: &str| {
        v.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    };
    content_type
        .and_then(|c| MediaType::from_type(&base(c)))
        .or_else(|| MediaType::from_type(&base(default_type)))
        .unwrap_or(MediaType::Text)
}

fn escape_json(s: &str) -> String {
    serde_json::to_string(s)
        .map(|q| q[1..q.len() - 1].to_owned())
        .unwrap_or_default()
}

fn escape_xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Kong's error body for `message` and `request_id` in `media`.
pub fn body(media: MediaType, message: &str, request_id: &str) -> String {
    match media {
        MediaType::Json => format!(
            "{{\n  \"message\":\"{}\",\n  \"request_id\":\"{request_id}\"\n}}",
            escape_json(message)
        ),
        MediaType::Text => format!("{message}\nrequest_id: {request_id}\n"),
        MediaType::Html => format!(
            "<!doctype html>\n<html>\n  <head>\n    <meta charset=\"utf-8\">\n    <title>Error</title>\n  </head>\n  <body>\n    <h1>Error</h1>\n    <p>{}.</p>\n    <p>request_id: {request_id}</p>\n  </body>\n</html>\n",
            escape_xml(message)
        ),
        MediaType::Xml => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<error>\n  <message>{}</message>\n  <requestid>{request_id}</requestid>\n</error>\n",
            escape_xml(message)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body of section `title` in the fixture, with `<RID>` as the request id.
    fn fixture_body(title: &str) -> String {
        let text = include_str!("../tests/fixtures/error-responses.txt");
        let start = text.find(title).expect("section");
        let section = &text[start..];
        let body_start = section.find("\n\n").expect("body") + 2;
        let rest = &section[body_start..];
        let end = rest.find("\n\n===").unwrap_or(rest.len());
        rest[..end].to_owned()
    }

    #[test]
    fn bodies_match_kong_fixture() {
        let rid = "9c0e7d2a41b34f5e8a6d1c2b3e4f5a6b";
        let msg = "no Route matched with those values";
        let json = body(MediaType::Json, msg, rid);
        assert_eq!(json, fixture_body("=== 404 no route (kong.response.error"));
        assert_eq!(json.len(), 103);
        let text = body(MediaType::Text, msg, "<RID>");
        assert_eq!(
            text.trim_end(),
            fixture_body("=== 404 no route, Accept: text/plain")
        );
        let html = body(MediaType::Html, msg, "<RID>");
        assert_eq!(
            html.trim_end(),
            fixture_body("=== 404 no route, Accept: text/html")
        );
        let xml = body(MediaType::Xml, msg, "<RID>");
        assert_eq!(
            xml.trim_end(),
            fixture_body("=== 404 no route, Accept: application/xml")
        );
    }

    #[test]
    fn media_type_rules() {
        assert_eq!(media_type(None, None, "text/plain", false), MediaType::Json);
        assert_eq!(media_type(None, None, "text/plain", true), MediaType::Text);
        assert_eq!(
            media_type(Some("*/*"), None, "text/plain", true),
            MediaType::Json
        );
        assert_eq!(
            media_type(Some("text/*"), None, "text/plain", false),
            MediaType::Text
        );
        assert_eq!(
            media_type(
                Some("text/html;q=0.5, application/xml"),
                None,
                "text/plain",
                false
            ),
            MediaType::Xml
        );
        assert_eq!(
            media_type(None, Some("application/json"), "text/plain", true),
            MediaType::Json
        );
        assert_eq!(
            media_type(Some("image/png"), None, "text/plain", true),
            MediaType::Json
        );
    }

    #[test]
    fn statuses_and_messages() {
        let e = |k| GatewayError::new(k, Side::Upstream, "");
        assert_eq!(e(ErrorKind::BadGateway).status(), 502);
        assert_eq!(
            e(ErrorKind::Timeout).message(),
            "The upstream server is timing out"
        );
        assert_eq!(e(ErrorKind::Status(494)).status(), 400);
        assert_eq!(
            e(ErrorKind::Status(494)).message(),
            "Request header or cookie too large"
        );
        assert_eq!(
            e(ErrorKind::Status(418)).message(),
            "The upstream server responded with 418"
        );
        assert!(e(ErrorKind::BadGateway).retry);
        assert!(!e(ErrorKind::NoRoute).from_nginx());
    }
}
