//! The balancer and the upstream call: peer choice, name resolution, timeouts, retries.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Method, Request, Response, StatusCode};
use hyper::upgrade::OnUpgrade;

use super::balancer::HashInput;
use super::body::{self, ProxyBody, ReadTimeout};
use super::context::{unix_ns, DnsQuery, RequestContext, Try};
use super::dns::DnsCache;
use super::h1;
use super::health::Outcome;
use crate::declarative::model::Service;
use crate::error::{ErrorKind, GatewayError, Side};
use crate::state::Runtime;

/// The parts of the upstream request that every try reuses.
#[derive(Debug)]
pub struct Outgoing {
    /// Method.
    pub method: Method,
    /// Path and query sent upstream.
    pub path_and_query: String,
    /// Headers sent upstream.
    pub headers: HeaderMap,
}

/// The upstream side of a `101 Switching Protocols` response.
pub enum Upgrade {
    /// A plain connection, taken from the HTTP/1.1 client.
    Plain(h1::Upgraded),
    /// A TLS connection, upgraded by hyper.
    Hyper(OnUpgrade),
}

/// An upstream response whose body streams under the service's `read_timeout` and holds the
/// balancer's in-flight count until it ends.
pub struct Proxied {
    /// The response.
    pub response: Response<ProxyBody>,
    /// The upgraded connection of a `101` response.
    pub upgrade: Option<Upgrade>,
}

fn classify_plain(error: &h1::Error) -> GatewayError {
    let kind = if error.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::BadGateway
    };
    let mut e = GatewayError::new(kind, Side::Upstream, error.to_string());
    e.retry = error.is_connect() || error.is_timeout();
    e
}

fn classify(error: &hyper_util::client::legacy::Error) -> GatewayError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    let mut timed_out = false;
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            timed_out |= io.kind() == std::io::ErrorKind::TimedOut;
        }
        timed_out |= e.to_string().contains("timed out") || e.to_string().contains("timeout");
        source = e.source();
    }
    let kind = if timed_out {
        ErrorKind::Timeout
    } else {
        ErrorKind::BadGateway
    };
    let mut e = GatewayError::new(kind, Side::Upstream, format!("{error:?}"));
    e.retry = error.is_connect() || timed_out;
    e
}

/// Sends the request to the service's peer, retrying connection failures and timeouts up to
/// `service.retries` times while the request body has not been streamed.
pub async fn send(
    runtime: &Runtime,
    dns: &DnsCache,
    pool: &Arc<h1::pool::Pool>,
    service: &Service,
    out: &Outgoing,
    mut request_body: Option<ProxyBody>,
    ctx: &mut RequestContext,
) -> Result<Proxied, GatewayError> {
    let tls = matches!(service.protocol.as_str(), "https" | "wss");
    if !tls && !matches!(service.protocol.as_str(), "http" | "ws") {
        return Err(GatewayError::new(
            ErrorKind::BadGateway,
            Side::Internal,
            format!("protocol {} upstreams are not supported", service.protocol),
        ));
    }
    let timeouts = h1::Timeouts {
        connect: Duration::from_millis(service.connect_timeout),
        read: Duration::from_millis(service.read_timeout),
        write: Duration::from_millis(service.write_timeout),
    };
    let balancer = runtime.balancers.get(&service.host);
    let read_timeout = Duration::from_millis(service.read_timeout);
    let mut statuses: Vec<String> = Vec::new();
    let has_body = request_body.is_some();
    let mut last_error = None;
    let uri: http::Uri = match balancer {
        Some(_) => ctx.uri.parse().unwrap_or_default(),
        None => http::Uri::default(),
    };
    for attempt in 0..=service.retries {
        // Two clock reads per try: the balancer's start and its end (which is also where
        // Kong's own latency ends); the Unix time is derived from the request's start.
        let started = std::time::Instant::now();
        let balancer_start = ctx.started_at + ms(started.saturating_duration_since(ctx.start));
        let input = HashInput {
            client_ip: &ctx.client_ip,
            headers: &out.headers,
            path: uri.path(),
            query: uri.query(),
            captures: &ctx.uri_captures,
        };
        let mut in_flight = None;
        let mut peer_index = None;
        let (host, port) = match balancer {
            Some(b) => match b.pick(&input, attempt) {
                Some((peer, guard)) => {
                    in_flight = Some(guard);
                    peer_index = Some(peer.index);
                    (peer.host.clone(), peer.port)
                }
                None => {
                    return Err(GatewayError::new(
                        ErrorKind::NoPeer,
                        Side::Upstream,
                        "no targets",
                    ))
                }
            },
            None => (service.host.clone(), service.port),
        };
        // A traced request records each host-name resolution for its `kong.dns` span.
        let traced =
            ctx.trace.is_some() && host.trim_matches(['[', ']']).parse::<IpAddr>().is_err();
        let dns_start = if traced { unix_ns() } else { 0 };
        let resolved = dns.resolve(&host, port).await;
        if traced {
            ctx.dns_queries.push(DnsQuery {
                domain: host.clone(),
                port,
                ip: resolved.as_ref().ok().map(|a| a.ip().to_string()),
                error: resolved.as_ref().err().map(ToString::to_string),
                start_ns: dns_start,
                end_ns: unix_ns(),
            });
        }
        let addr = resolved.map_err(|e| {
            GatewayError::new(
                ErrorKind::NameResolution,
                Side::Upstream,
                format!("{host}: {e}"),
            )
        })?;
        let balanced = std::time::Instant::now();
        ctx.tries.push(Try {
            balancer_start,
            ip: super::context::ip_text(addr.ip()),
            port: addr.port(),
            balancer_latency: ms(balanced.saturating_duration_since(started)),
            state: None,
            code: None,
        });
        ctx.latencies.kong = ms(balanced.saturating_duration_since(ctx.start));
        let (error, connect_failed) = if tls {
            let Some(client) = runtime.client_for(service) else {
                return Err(GatewayError::new(
                    ErrorKind::BadGateway,
                    Side::Internal,
                    "the service's upstream TLS settings are invalid",
                ));
            };
            let request = hyper_request(&host, port, out, request_body.take())?;
            match tokio::time::timeout(read_timeout, client.request(request)).await {
                Ok(Ok(mut response)) => {
                    let status = response.status();
                    if let (Some(b), Some(i)) = (balancer, peer_index) {
                        b.health.passive_status(i, status.as_u16());
                    }
                    record_status(ctx, &mut statuses, status);
                    let upgrade = (status == StatusCode::SWITCHING_PROTOCOLS)
                        .then(|| Upgrade::Hyper(hyper::upgrade::on(&mut response)));
                    let response = response.map(|incoming| {
                        body::boxed(ReadTimeout::new(
                            body::boxed(incoming),
                            read_timeout,
                            in_flight,
                        ))
                    });
                    return Ok(Proxied { response, upgrade });
                }
                Ok(Err(e)) => (classify(&e), e.is_connect()),
                Err(_) => (read_timed_out(), false),
            }
        } else {
            let plain = h1::Outgoing {
                method: &out.method,
                path_and_query: &out.path_and_query,
                headers: &out.headers,
            };
            let sent = h1::send(pool, addr, timeouts, &plain, request_body.take());
            match tokio::time::timeout(read_timeout, sent).await {
                Ok(Ok((mut response, upgraded))) => {
                    if let (Some(b), Some(i)) = (balancer, peer_index) {
                        b.health.passive_status(i, response.status().as_u16());
                    }
                    record_status(ctx, &mut statuses, response.status());
                    response.body_mut().hold(in_flight);
                    let response = response.map(body::boxed);
                    let upgrade = upgraded.map(Upgrade::Plain);
                    return Ok(Proxied { response, upgrade });
                }
                Ok(Err(e)) => (classify_plain(&e), e.is_connect()),
                Err(_) => (read_timed_out(), false),
            }
        };
        if let (Some(b), Some(i)) = (balancer, peer_index) {
            let outcome = if error.kind == ErrorKind::Timeout {
                Outcome::Timeout
            } else {
                Outcome::TcpFailure
            };
            b.health.passive_outcome(i, outcome);
        }
        let code = error.status();
        statuses.push(code.to_string());
        ctx.upstream_status = statuses.join(", ");
        // A request that reached the upstream is only sent again when it is idempotent.
        let idempotent =
            !matches!(out.method, Method::POST | Method::PATCH) && out.method.as_str() != "LOCK";
        let can_retry =
            error.retry && attempt < service.retries && !has_body && (connect_failed || idempotent);
        if let Some(t) = ctx.tries.last_mut() {
            t.state = Some(if can_retry { "next" } else { "failed" });
            t.code = Some(code);
        }
        tracing::debug!(%addr, %error, "upstream try failed");
        last_error = Some(error);
        if !can_retry {
            break;
        }
    }
    Err(last_error
        .unwrap_or_else(|| GatewayError::new(ErrorKind::BadGateway, Side::Upstream, "no try made")))
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn read_timed_out() -> GatewayError {
    GatewayError::new(ErrorKind::Timeout, Side::Upstream, "read timeout")
}

fn record_status(ctx: &mut RequestContext, statuses: &mut Vec<String>, status: StatusCode) {
    if statuses.is_empty() {
        ctx.upstream_status = status.as_str().to_owned();
    } else {
        statuses.push(status.as_str().to_owned());
        ctx.upstream_status = statuses.join(", ");
    }
}

/// The request of a TLS service, for the hyper client (which pools per host for SNI).
fn hyper_request(
    host: &str,
    port: u16,
    out: &Outgoing,
    body: Option<ProxyBody>,
) -> Result<Request<ProxyBody>, GatewayError> {
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let uri = format!("https://{host}:{port}{}", out.path_and_query);
    let mut builder = Request::builder().method(out.method.clone()).uri(uri);
    if let Some(h) = builder.headers_mut() {
        *h = out.headers.clone();
    }
    builder
        .body(body.unwrap_or_else(body::empty))
        .map_err(|e| GatewayError::new(ErrorKind::Internal, Side::Internal, e.to_string()))
}
