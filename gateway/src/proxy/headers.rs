//! Headers Kong sets upstream (spec §2.3) and on responses (§2.4).

use std::net::IpAddr;

use http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::conf::KongConf;

/// Hop-by-hop headers never forwarded (a `static`: a `const` array of names would be built
/// and dropped at every use). Their lengths are 5, 7, 10, 16 and 18 ([`strip_hop_by_hop`]
/// relies on it).
static HOP_BY_HOP: [HeaderName; 7] = [
    http::header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy"),
    HeaderName::from_static("proxy-connection"),
    http::header::PROXY_AUTHENTICATE,
    http::header::UPGRADE,
    http::header::TRAILER,
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
const X_FORWARDED_PATH: HeaderName = HeaderName::from_static("x-forwarded-path");
const X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
const X_KONG_REQUEST_ID: HeaderName = HeaderName::from_static("x-kong-request-id");
const X_KONG_UPSTREAM_LATENCY: HeaderName = HeaderName::from_static("x-kong-upstream-latency");
const X_KONG_PROXY_LATENCY: HeaderName = HeaderName::from_static("x-kong-proxy-latency");
const X_KONG_UPSTREAM_STATUS: HeaderName = HeaderName::from_static("x-kong-upstream-status");
const X_KONG_RESPONSE_LATENCY: HeaderName = HeaderName::from_static("x-kong-response-latency");

/// Removes hop-by-hop headers, including the ones named in `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the names finds which hop-by-hop headers are there (most messages carry
    // none, or only `Connection: keep-alive`), instead of a lookup per name.
    let mut present = 0u8;
    let mut te = false;
    for name in headers.keys() {
        // The names' lengths sort out nearly every other header before any comparison.
        match name.as_str().len() {
            2 => te |= name == http::header::TE,
            5 | 7 | 10 | 16 | 18 => {
                if let Some(i) = HOP_BY_HOP.iter().position(|h| h == name) {
                    present |= 1 << i;
                }
            }
            _ => {}
        }
    }
    if present == 0 && !te {
        return;
    }
    // HOP_BY_HOP[0] is `Connection`: the names it lists go too (`keep-alive` is in the list).
    if present & 1 != 0 {
        let named: Vec<HeaderName> = headers
            .get_all(http::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty() && !s.eq_ignore_ascii_case("keep-alive"))
            .filter_map(|s| HeaderName::from_bytes(s.to_ascii_lowercase().as_bytes()).ok())
            .collect();
        for name in &named {
            headers.remove(name);
        }
    }
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
    if !te || !headers.contains_key(http::header::TE) {
        return;
    }
    let te_trailers = headers.get_all(http::header::TE).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.to_ascii_lowercase().contains("trailers"))
    });
    headers.remove(http::header::TE);
    if te_trailers {
        headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
    }
}

/// Whether `ip` is in kong.conf `trusted_ips` (addresses or CIDR blocks).
pub fn is_trusted(conf: &KongConf, ip: IpAddr) -> bool {
    conf.trusted_ips.iter().any(|entry| in_cidr(entry, ip))
}

fn in_cidr(entry: &str, ip: IpAddr) -> bool {
    let (net, bits) = match entry.split_once('/') {
        Some((n, b)) => (n, b.parse::<u32>().ok()),
        None => (entry, None),
    };
    let Ok(net) = net.parse::<IpAddr>() else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let bits = bits.unwrap_or(128).min(128);
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

fn value(s: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(s).ok()
}

/// kong.conf's header settings resolved once: which of Kong's headers are on, and the values
/// that never change (`Via`, `Server`), so no request formats or looks them up again.
#[derive(Debug, Clone)]
pub struct KongHeaders {
    upstream_latency: bool,
    proxy_latency: bool,
    response_latency: bool,
    via: bool,
    server: bool,
    upstream_status: bool,
    request_id: bool,
    upstream_request_id: bool,
    via_11: Option<HeaderValue>,
    via_2: Option<HeaderValue>,
    server_value: Option<HeaderValue>,
    via_11_text: String,
    via_2_text: String,
}

impl KongHeaders {
    /// The settings of `conf`.
    pub fn new(conf: &KongConf) -> Self {
        let version = &conf.server_version;
        let via_11_text = format!("1.1 kong/{version}");
        let via_2_text = format!("2 kong/{version}");
        Self {
            upstream_latency: conf.header_enabled("x-kong-upstream-latency"),
            proxy_latency: conf.header_enabled("x-kong-proxy-latency"),
            response_latency: conf.header_enabled("x-kong-response-latency"),
            via: conf.header_enabled("via"),
            server: conf.header_enabled("server"),
            upstream_status: conf.header_enabled("x-kong-upstream-status"),
            request_id: conf.header_enabled("x-kong-request-id"),
            upstream_request_id: conf
                .headers_upstream
                .iter()
                .any(|h| h == "x-kong-request-id"),
            via_11: value(&via_11_text),
            via_2: value(&via_2_text),
            server_value: value(&format!("kong/{version}")),
            via_11_text,
            via_2_text,
        }
    }
}

/// `value` after the `prev` list (`prev, value`), or `value` alone.
fn appended(
    prev: Option<&HeaderValue>,
    value: &str,
    own: Option<&HeaderValue>,
) -> Option<HeaderValue> {
    match prev.and_then(|v| v.to_str().ok()) {
        Some(prev) => HeaderValue::from_str(&format!("{prev}, {value}")).ok(),
        None => own.cloned(),
    }
}

/// What the upstream request headers are computed from.
#[derive(Debug)]
pub struct Forwarded<'a> {
    /// Connecting peer.
    pub peer: IpAddr,
    /// `peer` as text.
    pub peer_text: &'a str,
    /// Client address after real-IP processing.
    pub client_ip: &'a str,
    /// Request scheme.
    pub scheme: &'a str,
    /// Host without port, as sent.
    pub host: &'a str,
    /// Listening port.
    pub port: u16,
    /// Raw request path (no query).
    pub path: &'a str,
    /// Stripped prefix, when strip_path removed one other than `/`.
    pub prefix: Option<&'a str>,
    /// Whether the client spoke HTTP/2 (`Via: 2 kong/…`), else 1.1.
    pub http2: bool,
    /// Upstream Host header value.
    pub upstream_host: &'a str,
    /// Request id.
    pub request_id: &'a str,
}

/// Sets the headers Kong adds upstream on `headers` (the client's headers).
pub fn upstream_request(
    headers: &mut HeaderMap,
    f: &Forwarded<'_>,
    conf: &KongConf,
    kong: &KongHeaders,
) {
    strip_hop_by_hop(headers);
    // Room for Kong's headers without growing the map on the way.
    headers.reserve(10);
    let trusted = is_trusted(conf, f.peer);
    if let Some(v) = value(f.upstream_host) {
        headers.insert(http::header::HOST, v);
    }
    headers.insert(
        http::header::CONNECTION,
        HeaderValue::from_static("keep-alive"),
    );
    let peer = value(f.peer_text);
    if let Some(v) = appended(headers.get(&X_FORWARDED_FOR), f.peer_text, peer.as_ref()) {
        headers.insert(X_FORWARDED_FOR, v);
    }
    let mut set_forwarded = |name: HeaderName, own: Option<HeaderValue>| {
        if trusted && headers.contains_key(&name) {
            return;
        }
        match own {
            Some(v) => {
                headers.insert(name, v);
            }
            None => {
                headers.remove(name);
            }
        }
    };
    set_forwarded(X_FORWARDED_PROTO, value(f.scheme));
    let host = if f.host.bytes().any(|b| b.is_ascii_uppercase()) {
        value(&f.host.to_ascii_lowercase())
    } else {
        value(f.host)
    };
    set_forwarded(X_FORWARDED_HOST, host);
    set_forwarded(X_FORWARDED_PORT, Some(HeaderValue::from(f.port)));
    set_forwarded(X_FORWARDED_PATH, value(f.path));
    set_forwarded(X_FORWARDED_PREFIX, f.prefix.and_then(value));
    if let Some(v) = value(f.client_ip) {
        headers.insert(X_REAL_IP, v);
    }
    let (via, via_text) = if f.http2 {
        (kong.via_2.as_ref(), kong.via_2_text.as_str())
    } else {
        (kong.via_11.as_ref(), kong.via_11_text.as_str())
    };
    if let Some(v) = appended(headers.get(http::header::VIA), via_text, via) {
        headers.insert(http::header::VIA, v);
    }
    if kong.upstream_request_id {
        if let Some(v) = value(f.request_id) {
            headers.insert(X_KONG_REQUEST_ID, v);
        }
    }
}

/// Adds Kong's headers to a proxied response.
pub fn proxied_response(
    headers: &mut HeaderMap,
    kong: &KongHeaders,
    upstream_latency: u64,
    proxy_latency: u64,
    upstream_status: u16,
    request_id: &str,
) {
    strip_hop_by_hop(headers);
    if kong.upstream_latency {
        headers.insert(X_KONG_UPSTREAM_LATENCY, HeaderValue::from(upstream_latency));
    }
    if kong.proxy_latency {
        headers.insert(X_KONG_PROXY_LATENCY, HeaderValue::from(proxy_latency));
    }
    if kong.via {
        let via = appended(
            headers.get(http::header::VIA),
            &kong.via_11_text,
            kong.via_11.as_ref(),
        );
        if let Some(v) = via {
            headers.insert(http::header::VIA, v);
        }
    }
    if kong.server && !headers.contains_key(http::header::SERVER) {
        if let Some(v) = kong.server_value.clone() {
            headers.insert(http::header::SERVER, v);
        }
    }
    if kong.upstream_status {
        headers.insert(X_KONG_UPSTREAM_STATUS, HeaderValue::from(upstream_status));
    }
    if kong.request_id {
        if let Some(v) = value(request_id) {
            headers.insert(X_KONG_REQUEST_ID, v);
        }
    }
}

/// Adds Kong's headers to a response Kong generated itself.
pub fn kong_response(headers: &mut HeaderMap, kong: &KongHeaders, latency: u64, request_id: &str) {
    if kong.response_latency {
        headers.insert(X_KONG_RESPONSE_LATENCY, HeaderValue::from(latency));
    }
    if kong.server {
        if let Some(v) = kong.server_value.clone() {
            headers.insert(http::header::SERVER, v);
        }
    }
    if kong.request_id {
        if let Some(v) = value(request_id) {
            headers.insert(X_KONG_REQUEST_ID, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(in_cidr("10.0.0.0/8", ip("10.1.2.3")));
        assert!(!in_cidr("10.0.0.0/8", ip("11.1.2.3")));
        assert!(in_cidr("0.0.0.0/0", ip("1.2.3.4")));
        assert!(in_cidr("127.0.0.1", ip("127.0.0.1")));
        assert!(in_cidr("::/0", ip("::1")));
        assert!(!in_cidr("::/0", ip("1.2.3.4")));
    }

    #[test]
    fn hop_by_hop_only_what_is_there() {
        let mut h = HeaderMap::new();
        h.insert("x-keep", HeaderValue::from_static("1"));
        h.insert("content-length", HeaderValue::from_static("2"));
        let before = h.clone();
        strip_hop_by_hop(&mut h);
        assert_eq!(h, before);
        h.insert("connection", HeaderValue::from_static("keep-alive"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("upgrade", HeaderValue::from_static("h2c"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h, before);
        h.insert("connection", HeaderValue::from_static("x-keep"));
        strip_hop_by_hop(&mut h);
        assert!(h.get("x-keep").is_none() && h.get("connection").is_none());
        assert_eq!(h["content-length"], "2");
    }

    #[test]
    fn hop_by_hop_lengths_are_the_ones_checked() {
        for name in &HOP_BY_HOP {
            assert!([5, 7, 10, 16, 18].contains(&name.as_str().len()), "{name}");
        }
        assert_eq!(http::header::TE.as_str().len(), 2);
    }

    #[test]
    fn hop_by_hop_and_te() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("close, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("proxy-connection", HeaderValue::from_static("keep-alive"));
        h.insert("te", HeaderValue::from_static("trailers, deflate"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert!(h.get("x-secret").is_none() && h.get("connection").is_none());
        assert!(h.get("proxy-connection").is_none());
        assert_eq!(h["te"], "trailers");
        assert_eq!(h["x-keep"], "1");
    }
}
