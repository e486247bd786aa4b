//! One proxied request: rewrite → router → access → balancer/upstream → header_filter →
//! body_filter → log.

use std::net::SocketAddr;
use std::sync::Arc;

use http::header::{HeaderValue, ACCEPT, CONTENT_TYPE, HOST};
use http::{Request, Response, StatusCode, Version};
use hyper::body::{Body, Incoming};
use hyper::upgrade::OnUpgrade;

use super::body::{self, LoggedBody};
use super::context::RequestContext;
use super::headers::{self, Forwarded};
use super::upstream::{self, Outgoing};
use super::websocket;
use crate::error::{self, ErrorKind, GatewayError, Side};
use crate::observability::logs;
use crate::plugins::{Exit, PluginList};
use crate::router::{normalize_path, RequestView};
use crate::state::{Runtime, Shared};

/// The response type of every listener.
pub type GatewayResponse = Response<LoggedBody>;

/// Handles one downstream request.
pub async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    peer: SocketAddr,
    listen_port: u16,
) -> GatewayResponse {
    match logs::request_buffer() {
        None => handle_request(shared, req, peer, listen_port, None).await,
        Some(buffer) => {
            let request = handle_request(shared, req, peer, listen_port, Some(buffer.clone()));
            logs::scope(buffer, request).await
        }
    }
}

async fn handle_request(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    peer: SocketAddr,
    listen_port: u16,
    log_buffer: Option<Arc<logs::RequestLogs>>,
) -> GatewayResponse {
    shared
        .counters
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let runtime = shared.runtime.load_full();
    let mut ctx = RequestContext::new(peer, listen_port);
    ctx.logs = log_buffer;
    let (mut parts, incoming) = req.into_parts();
    let downstream_upgrade = websocket::is_upgrade(&parts.headers)
        .then(|| parts.extensions.remove::<OnUpgrade>())
        .flatten();
    if let Some(tls) = parts.extensions.remove::<crate::tls::TlsInfo>() {
        ctx.scheme = "https";
        ctx.tls = Some(tls);
    }
    ctx.conf = Some(Arc::clone(&shared.conf));
    ctx.version = parts.version;
    // The context owns the client's headers; the router and the plugins borrow them.
    ctx.request_headers = std::mem::take(&mut parts.headers);
    ctx.method = parts.method.as_str().to_owned();
    ctx.uri = parts
        .uri
        .path_and_query()
        .map_or_else(|| "/".to_owned(), ToString::to_string);
    ctx.request_size =
        crate::plugins::prometheus::request_head_size(&ctx.method, &ctx.uri, &ctx.request_headers);
    let host_header = ctx
        .request_headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| parts.uri.authority().map(ToString::to_string));
    ctx.host = host_header
        .as_deref()
        .map(|h| strip_port(h).to_owned())
        .unwrap_or_default();
    // The peer's address as text, formatted once (RequestContext::new) for every header.
    let peer_text = ctx.client_ip.clone();
    if headers::is_trusted(&shared.conf, peer.ip()) {
        if let Some(real) = ctx
            .request_headers
            .get(shared.conf.real_ip_header.as_str())
            .and_then(|v| v.to_str().ok())
        {
            ctx.client_ip = real.trim().to_owned();
        }
    }
    let respond_error = |ctx: RequestContext, err: GatewayError, plugins: PluginList| {
        error_response(&shared, ctx, &err, plugins)
    };

    let globals = runtime.global_plugins();
    for plugin in globals.iter() {
        if let Some(exit) = plugin.rewrite(&mut ctx) {
            return exit_response(&shared, ctx, exit, globals.clone());
        }
    }

    let path = normalize_path(parts.uri.path());
    let found = runtime.router.find(&RequestView {
        method: parts.method.as_str(),
        host: host_header.as_deref(),
        listen_port,
        path: &path,
        headers: &ctx.request_headers,
        // An https request without SNI matches no route that lists snis.
        sni: ctx
            .tls
            .as_ref()
            .map(|t| t.sni.as_deref().unwrap_or_default()),
    });
    let Some(found) = found else {
        let err = GatewayError::new(ErrorKind::NoRoute, Side::Downstream, path);
        return respond_error(ctx, err, globals);
    };
    ctx.route = Some(Arc::clone(&found.route));
    ctx.service = found.service.clone();
    ctx.uri_captures = found.uri_captures.clone();
    let lists = |p: &str| found.route.protocols.iter().any(|r| r == p);
    // The forwarded protocol counts as Kong's: X-Forwarded-Proto from a trusted peer.
    let forwarded_https = || {
        headers::is_trusted(&shared.conf, peer.ip())
            && ctx
                .request_headers
                .get("x-forwarded-proto")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
    };
    if ctx.scheme != "https" && lists("https") && !lists("http") && !forwarded_https() {
        let status = found.route.https_redirect_status_code;
        let location = format!("https://{}{}", ctx.host, ctx.uri);
        let err = GatewayError::new(
            ErrorKind::HttpsRequired { status, location },
            Side::Downstream,
            "",
        );
        return respond_error(ctx, err, globals);
    }
    let plugins = runtime.route_plugins(&found.route.id);
    for plugin in plugins.iter() {
        if let Some(exit) = plugin.access(&mut ctx) {
            return exit_response(&shared, ctx, exit, plugins.clone());
        }
    }
    let Some(service) = found.service.clone() else {
        let err = GatewayError::new(ErrorKind::NoService, Side::Internal, "");
        return respond_error(ctx, err, plugins);
    };

    let upstream_path = found.upstream_path(&path);
    let path_and_query = match parts.uri.query() {
        Some(q) => format!("{upstream_path}?{q}"),
        None if parts
            .uri
            .path_and_query()
            .is_some_and(|pq| pq.as_str().ends_with('?')) =>
        {
            format!("{upstream_path}?")
        }
        None => upstream_path,
    };
    ctx.upstream_uri = path_and_query.clone();
    let upstream_host = upstream_host(
        &runtime,
        &service,
        found.route.preserve_host,
        host_header.as_deref(),
    );
    let prefix = found
        .matched_path
        .as_deref()
        .filter(|p| found.route.strip_path && *p != "/");
    // Plugins read the client's headers in the log phase: they keep a copy only when some
    // plugin runs.
    let mut out_headers = if plugins.is_empty() {
        std::mem::take(&mut ctx.request_headers)
    } else {
        ctx.request_headers.clone()
    };
    headers::upstream_request(
        &mut out_headers,
        &Forwarded {
            peer: peer.ip(),
            peer_text: &peer_text,
            client_ip: &ctx.client_ip,
            scheme: ctx.scheme,
            host: &ctx.host,
            port: listen_port,
            path: parts.uri.path(),
            prefix,
            http2: parts.version == Version::HTTP_2,
            upstream_host: &upstream_host,
            request_id: &ctx.request_id,
        },
        &shared.conf,
        &shared.kong_headers,
    );
    if downstream_upgrade.is_some() {
        websocket::set_upgrade_headers(&mut out_headers);
    }
    let request_body = (!incoming.is_end_stream()).then(|| body::boxed(incoming));
    let out = Outgoing {
        method: parts.method.clone(),
        path_and_query,
        headers: out_headers,
    };
    match upstream::send(
        &runtime,
        &shared.dns,
        &shared.pool,
        &service,
        &out,
        request_body,
        &mut ctx,
    )
    .await
    {
        Ok(proxied_response) => {
            let upstream::Proxied { response, upgrade } = proxied_response;
            let protocol = match (downstream_upgrade, upgrade) {
                (Some(downstream), Some(upstream))
                    if response.status() == StatusCode::SWITCHING_PROTOCOLS =>
                {
                    websocket::splice(downstream, upstream);
                    response.headers().get(http::header::UPGRADE).cloned()
                }
                _ => None,
            };
            let mut reply = proxied(&shared, ctx, response, plugins);
            if let Some(protocol) = protocol {
                websocket::restore_response_headers(reply.headers_mut(), protocol);
            }
            reply
        }
        Err(err) => {
            if plugins.is_empty() {
                // The error's media type follows the client's Accept / Content-Type.
                ctx.request_headers = out.headers;
            }
            tracing::debug!(error = %err, "proxy error");
            respond_error(ctx, err, plugins)
        }
    }
}

fn header_str(headers: &http::HeaderMap, name: http::header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(h, _)| &host[..h.len() + 1]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// The Host header sent upstream (spec §2.2).
fn upstream_host(
    runtime: &Runtime,
    service: &crate::declarative::model::Service,
    preserve_host: bool,
    client_host: Option<&str>,
) -> String {
    if preserve_host {
        if let Some(h) = client_host {
            return h.to_owned();
        }
    }
    if let Some(h) = runtime
        .balancers
        .get(&service.host)
        .and_then(|b| b.host_header.clone())
    {
        return h;
    }
    let default_port = match service.protocol.as_str() {
        "https" | "grpcs" | "wss" => 443,
        _ => 80,
    };
    let mut host = String::with_capacity(service.host.len() + 6);
    host.push_str(&service.host);
    if service.port != default_port {
        host.push(':');
        push_decimal(&mut host, service.port);
    }
    host
}

/// Appends `n` in decimal without the formatting machinery.
fn push_decimal(text: &mut String, n: u16) {
    let mut digits = [0u8; 5];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        text.push(char::from(d));
    }
}

fn finisher(plugins: PluginList) -> body::Finisher {
    Box::new(move |mut ctx: RequestContext| {
        ctx.latencies.request = ctx.elapsed_ms();
        if let Some(proxy) = ctx.latencies.proxy {
            ctx.latencies.receive = ctx
                .latencies
                .request
                .saturating_sub(ctx.latencies.kong + proxy);
        }
        logs::sync_scope(ctx.logs.as_ref(), || {
            for plugin in plugins.iter() {
                plugin.log(&ctx);
            }
        });
    })
}

fn proxied(
    shared: &Shared,
    mut ctx: RequestContext,
    response: Response<body::ProxyBody>,
    plugins: PluginList,
) -> GatewayResponse {
    let upstream_latency = ctx.elapsed_ms().saturating_sub(ctx.latencies.kong);
    ctx.latencies.proxy = Some(upstream_latency);
    ctx.source = "upstream";
    let (mut parts, upstream_body) = response.into_parts();
    // The client gets the gateway's HTTP version, not the upstream's (an HTTP/1.0 upstream
    // still answers an HTTP/1.1 client in HTTP/1.1).
    parts.version = Version::HTTP_11;
    let status = parts.status.as_u16();
    headers::proxied_response(
        &mut parts.headers,
        &shared.kong_headers,
        upstream_latency,
        ctx.latencies.kong,
        status,
        &ctx.request_id,
    );
    for plugin in plugins.iter() {
        plugin.header_filter(&mut ctx, &mut parts.headers);
    }
    if plugins.is_empty() {
        return Response::from_parts(parts, LoggedBody::passthrough(upstream_body));
    }
    ctx.status = status;
    ctx.response_headers = parts.headers.clone();
    let body = LoggedBody::new(upstream_body, ctx, Arc::clone(&plugins), finisher(plugins));
    Response::from_parts(parts, body)
}

fn kong_generated(
    shared: &Shared,
    mut ctx: RequestContext,
    status: u16,
    extra: Vec<(String, String)>,
    content_type: Option<&str>,
    body_bytes: bytes::Bytes,
    plugins: PluginList,
) -> GatewayResponse {
    ctx.latencies.kong = ctx.elapsed_ms();
    ctx.source = "kong";
    let mut response = Response::new(());
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    if let Some(ct) = content_type.and_then(|c| HeaderValue::from_str(c).ok()) {
        headers.insert(CONTENT_TYPE, ct);
    }
    for (name, value) in extra {
        if let (Ok(n), Ok(v)) = (
            http::header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.insert(n, v);
        }
    }
    headers::kong_response(
        headers,
        &shared.kong_headers,
        ctx.latencies.kong,
        &ctx.request_id,
    );
    for plugin in plugins.iter() {
        plugin.header_filter(&mut ctx, headers);
    }
    ctx.status = status;
    ctx.response_headers = headers.clone();
    let (parts, ()) = response.into_parts();
    let body = LoggedBody::new(
        body::full(body_bytes),
        ctx,
        Arc::clone(&plugins),
        finisher(plugins),
    );
    Response::from_parts(parts, body)
}

fn exit_response(
    shared: &Shared,
    ctx: RequestContext,
    exit: Exit,
    plugins: PluginList,
) -> GatewayResponse {
    kong_generated(
        shared,
        ctx,
        exit.status,
        exit.headers,
        None,
        exit.body,
        plugins,
    )
}

/// A Kong error response (status, headers, body by media type).
fn error_response(
    shared: &Shared,
    ctx: RequestContext,
    err: &GatewayError,
    plugins: PluginList,
) -> GatewayResponse {
    let accept = header_str(&ctx.request_headers, ACCEPT);
    let content_type = header_str(&ctx.request_headers, CONTENT_TYPE);
    let media = error::media_type(
        accept.as_deref(),
        content_type.as_deref(),
        &shared.conf.error_default_type,
        err.from_nginx(),
    );
    let text = error::body(media, &err.message(), &ctx.request_id);
    let mut extra = Vec::new();
    if let ErrorKind::HttpsRequired { status, location } = &err.kind {
        if *status == 426 {
            extra.push(("connection".to_owned(), "Upgrade".to_owned()));
            extra.push(("upgrade".to_owned(), "TLS/1.2, HTTP/1.1".to_owned()));
        } else {
            extra.push(("location".to_owned(), location.clone()));
        }
    }
    kong_generated(
        shared,
        ctx,
        err.status(),
        extra,
        Some(media.content_type()),
        text.into(),
        plugins,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn push_decimal_matches_display() {
        for n in [0u16, 7, 10, 80, 443, 8000, 65535] {
            let mut text = String::from("h:");
            super::push_decimal(&mut text, n);
            assert_eq!(text, format!("h:{n}"));
        }
    }
}
