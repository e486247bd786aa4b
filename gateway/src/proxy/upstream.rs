//! The balancer and the upstream call: peer choice, name resolution, timeouts, retries.

use std::net::IpAddr;
use std::time::Duration;

use http::{HeaderMap, Method, Request, Response};
use hyper::body::Incoming;

use super::balancer::{HashInput, InFlight};
use super::body::{self, ProxyBody};
use super::context::{unix_ms, unix_ns, DnsQuery, RequestContext, Try};
use super::dns::DnsCache;
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
    service: &Service,
    out: &Outgoing,
    mut request_body: Option<ProxyBody>,
    ctx: &mut RequestContext,
) -> Result<(Response<Incoming>, Option<InFlight>), GatewayError> {
    let tls = matches!(service.protocol.as_str(), "https" | "wss");
    if !tls && !matches!(service.protocol.as_str(), "http" | "ws") {
        return Err(GatewayError::new(
            ErrorKind::BadGateway,
            Side::Internal,
            format!("protocol {} upstreams are not supported", service.protocol),
        ));
    }
    let Some(client) = runtime.client_for(service) else {
        return Err(GatewayError::new(
            ErrorKind::BadGateway,
            Side::Internal,
            "the service's upstream TLS settings are invalid",
        ));
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
        let balancer_start = unix_ms();
        let started = std::time::Instant::now();
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
        let ip = addr.ip().to_string();
        ctx.tries.push(Try {
            balancer_start,
            ip: ip.clone(),
            port: addr.port(),
            balancer_latency: started.elapsed().as_millis() as u64,
            state: None,
            code: None,
        });
        let body = request_body.take().unwrap_or_else(body::empty);
        // TLS connections name the host (SNI) and pool per host; plain ones connect to the
        // resolved address directly.
        let uri = if tls {
            let host = if host.contains(':') && !host.starts_with('[') {
                format!("[{host}]")
            } else {
                host.clone()
            };
            format!("https://{host}:{port}{}", out.path_and_query)
        } else {
            let port = addr.port();
            if addr.is_ipv6() {
                format!("http://[{ip}]:{port}{}", out.path_and_query)
            } else {
                format!("http://{ip}:{port}{}", out.path_and_query)
            }
        };
        let mut builder = Request::builder().method(out.method.clone()).uri(uri);
        if let Some(h) = builder.headers_mut() {
            *h = out.headers.clone();
        }
        let request = builder
            .body(body)
            .map_err(|e| GatewayError::new(ErrorKind::Internal, Side::Internal, e.to_string()))?;
        ctx.latencies.kong = ctx.elapsed_ms();
        let result = tokio::time::timeout(read_timeout, client.request(request)).await;
        let (error, connect_failed) = match result {
            Ok(Ok(response)) => {
                if let (Some(b), Some(i)) = (balancer, peer_index) {
                    b.health.passive_status(i, response.status().as_u16());
                }
                statuses.push(response.status().as_u16().to_string());
                ctx.upstream_status = statuses.join(", ");
                return Ok((response, in_flight));
            }
            Ok(Err(e)) => (classify(&e), e.is_connect()),
            Err(_) => (
                GatewayError::new(ErrorKind::Timeout, Side::Upstream, "read timeout"),
                false,
            ),
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
