//! The per-request context: what the proxy learned about one request, read by plugins.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use crate::conf::KongConf;
use crate::declarative::model::{Route, Service};

/// One balancer try (serializer `tries`).
#[derive(Debug, Clone, Default)]
pub struct Try {
    /// Unix ms when the try started.
    pub balancer_start: u64,
    /// Peer address.
    pub ip: String,
    /// Peer port.
    pub port: u16,
    /// ms spent choosing the peer.
    pub balancer_latency: u64,
    /// `next` / `failed` for failed tries.
    pub state: Option<&'static str>,
    /// Status code of a failed try.
    pub code: Option<u16>,
}

/// One resolution of an upstream host name (the `kong.dns` span); IP hosts make none.
#[derive(Debug, Clone, Default)]
pub struct DnsQuery {
    /// The name resolved.
    pub domain: String,
    /// The port asked for.
    pub port: u16,
    /// The address chosen, when resolution succeeded.
    pub ip: Option<String>,
    /// Why resolution failed.
    pub error: Option<String>,
    /// Unix ns at the start of the query.
    pub start_ns: u64,
    /// Unix ns at its end.
    pub end_ns: u64,
}

/// Latencies in ms (spec §2.6).
#[derive(Debug, Clone, Copy, Default)]
pub struct Latencies {
    /// Request start → end of the balancer (or → start of a Kong-generated response).
    pub kong: u64,
    /// End of balancer → upstream response headers; `None` when not proxied.
    pub proxy: Option<u64>,
    /// Upstream headers → last body byte sent.
    pub receive: u64,
    /// Total.
    pub request: u64,
}

/// Everything known about one request.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// 32 lowercase hex request id.
    pub request_id: String,
    /// Monotonic start.
    pub start: Instant,
    /// Unix ms at start.
    pub started_at: u64,
    /// Client address (after real-IP processing).
    pub client_ip: String,
    /// Connecting peer.
    pub peer: SocketAddr,
    /// Listening port.
    pub listen_port: u16,
    /// Request scheme (`http`).
    pub scheme: &'static str,
    /// Method.
    pub method: String,
    /// Raw request URI including query.
    pub uri: String,
    /// Host without port, as sent.
    pub host: String,
    /// Request headers after plugins' edits, before the proxy's own upstream headers
    /// (`X-Forwarded-*`, `Host`): what `kong.request.get_headers()` sees in the log phase.
    pub request_headers: http::HeaderMap,
    /// Matched route.
    pub route: Option<Arc<Route>>,
    /// Its service.
    pub service: Option<Arc<Service>>,
    /// Regex captures of the route path.
    pub uri_captures: BTreeMap<String, String>,
    /// URI sent upstream incl. query.
    pub upstream_uri: String,
    /// nginx-style `upstream_status` (`"502, 200"` after retries).
    pub upstream_status: String,
    /// Balancer tries.
    pub tries: Vec<Try>,
    /// Status sent to the client.
    pub status: u16,
    /// Response headers sent to the client.
    pub response_headers: http::HeaderMap,
    /// Bytes of the response body sent.
    pub response_body_bytes: u64,
    /// Bytes of the request line, headers and body as received (nginx `request_length`).
    pub request_size: u64,
    /// Chunk size lines a chunked response adds to its body (`<hex>\r\n` … `\r\n` per chunk).
    pub response_chunk_framing: u64,
    /// Latencies.
    pub latencies: Latencies,
    /// `upstream` when proxied, `kong` when Kong answered.
    pub source: &'static str,
    /// kong.conf in force (tracing settings, node id).
    pub conf: Option<Arc<KongConf>>,
    /// Downstream HTTP version.
    pub version: http::Version,
    /// Tracing state of the opentelemetry plugin.
    pub trace: Option<Box<crate::plugins::opentelemetry::TraceState>>,
    /// Trace ids written by injectors, per format (serializer `trace_id`).
    pub trace_ids: Vec<(&'static str, String)>,
    /// Upstream host-name resolutions, recorded while a trace is active.
    pub dns_queries: Vec<DnsQuery>,
    /// Log lines captured while handling this request (when a plugin exports logs).
    pub logs: Option<Arc<crate::observability::logs::RequestLogs>>,
    /// The TLS connection, for https requests (serializer `request.tls`).
    pub tls: Option<crate::tls::TlsInfo>,
}

impl RequestContext {
    /// A fresh context for a request received now.
    pub fn new(peer: SocketAddr, listen_port: u16) -> Self {
        Self {
            request_id: new_request_id(),
            start: Instant::now(),
            started_at: unix_ms(),
            client_ip: ip_text(peer.ip()),
            peer,
            listen_port,
            scheme: "http",
            method: String::new(),
            uri: String::new(),
            host: String::new(),
            request_headers: http::HeaderMap::new(),
            route: None,
            service: None,
            uri_captures: BTreeMap::new(),
            upstream_uri: String::new(),
            upstream_status: String::new(),
            tries: Vec::new(),
            status: 0,
            response_headers: http::HeaderMap::new(),
            response_body_bytes: 0,
            request_size: 0,
            response_chunk_framing: 0,
            latencies: Latencies::default(),
            source: "kong",
            conf: None,
            version: http::Version::HTTP_11,
            trace: None,
            trace_ids: Vec::new(),
            dns_queries: Vec::new(),
            logs: None,
            tls: None,
        }
    }

    /// ms since the request started.
    pub fn elapsed_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
}

/// `ip` as text: IPv4 written digit by digit, as it happens for every request (IPv6 through
/// `Display`).
pub fn ip_text(ip: IpAddr) -> String {
    let IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let mut text = String::with_capacity(15);
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text.push('.');
        }
        if octet >= 100 {
            text.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            text.push(char::from(b'0' + octet / 10 % 10));
        }
        text.push(char::from(b'0' + octet % 10));
    }
    text
}

/// 32 lowercase hex characters.
pub fn new_request_id() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes: [u8; 16] = rand::random();
    let mut id = String::with_capacity(32);
    for b in bytes {
        id.push(char::from(HEX[usize::from(b >> 4)]));
        id.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    id
}

/// Unix time in ns.
pub fn unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Unix time in ms.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_text_matches_display() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.30.40",
            "255.255.255.255",
            "1.0.99.100",
            "::1",
            "fe80::1:2",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(ip_text(ip), ip.to_string());
        }
    }
}
