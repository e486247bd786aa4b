//! The direct writer ([`super::wire::line`]) against the `Value` path it replaces on the
//! hot path: byte-identical lines over varied contexts.

use std::sync::Arc;

use serde_json::json;

use super::serialize::serialize;
use super::wire;
use crate::proxy::context::{RequestContext, Try};

/// The line as the `Value` path wrote it: a `serde_json::Map` tree, compact, `/` → `\/`.
fn value_path_line(ctx: &RequestContext) -> String {
    let mut text = serde_json::to_string(&serialize(ctx))
        .unwrap()
        .replace('/', "\\/");
    text.push('\n');
    text
}

fn assert_same(ctx: &RequestContext) {
    let direct = wire::line(ctx);
    assert_eq!(direct, value_path_line(ctx));
    let parsed: serde_json::Value = serde_json::from_str(direct.trim_end()).unwrap();
    assert_eq!(parsed, serialize(ctx));
}

fn header(map: &mut http::HeaderMap, name: &'static str, value: &[u8]) {
    map.append(name, http::HeaderValue::from_bytes(value).unwrap());
}

fn full_route() -> crate::declarative::model::Route {
    serde_json::from_value(json!({
        "id": "r-1", "name": "ecommerce/route", "protocols": ["http", "https"],
        "methods": ["GET", "POST"], "hosts": ["shop.example", "*.example:8000"],
        "paths": ["/coupon", "~/item/(?<id>\\d+)$"],
        "headers": {"x-version": ["v1", "v2"], "a-first": ["1"]},
        "snis": ["shop.example"], "strip_path": true, "preserve_host": false,
        "regex_priority": -3, "path_handling": "v0", "https_redirect_status_code": 426,
        "service": {"id": "s-1"}, "request_buffering": true, "response_buffering": false,
        "tags": ["t\"1", "é"], "created_at": 1_700_000_000_i64, "updated_at": 1_700_000_001_i64
    }))
    .unwrap()
}

fn bare_route() -> crate::declarative::model::Route {
    serde_json::from_value(json!({
        "id": "r-2", "protocols": ["http"], "strip_path": false, "preserve_host": true,
        "regex_priority": 0, "path_handling": "v1", "https_redirect_status_code": 301
    }))
    .unwrap()
}

fn service(full: bool) -> crate::declarative::model::Service {
    let mut v = json!({
        "id": "s-1", "protocol": "http", "host": "upstream.local", "port": 8080,
        "retries": 5, "connect_timeout": 60000, "write_timeout": 60001,
        "read_timeout": 60002, "enabled": true
    });
    if full {
        let extra = json!({"name": "svc", "path": "/api/v1", "tags": ["a/b"],
            "created_at": 1, "updated_at": 2, "tls_verify": true});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
    }
    serde_json::from_value(v).unwrap()
}

#[test]
fn a_fresh_context_writes_the_same_line() {
    assert_same(&RequestContext::new("127.0.0.1:1".parse().unwrap(), 8000));
    assert_same(&RequestContext::new("[::1]:1".parse().unwrap(), 8443));
}

#[test]
fn a_full_context_writes_the_same_line() {
    let mut ctx = RequestContext::new("10.0.0.7:5555".parse().unwrap(), 8000);
    ctx.method = "POST".into();
    ctx.host = "shop.example".into();
    ctx.uri = "/coupon/apply?b=2&a=1&b=3&flag&&x%2Fy=%E2%82%AC+z&a=&c=%ZZ&b".into();
    ctx.upstream_uri = "/apply?b=2".into();
    ctx.upstream_status = "502, 200".into();
    ctx.status = 200;
    ctx.request_size = 321;
    ctx.response_body_bytes = 42;
    ctx.source = "upstream";
    ctx.latencies.kong = 3;
    ctx.latencies.proxy = Some(17);
    ctx.latencies.receive = 1;
    ctx.latencies.request = 21;
    let h = &mut ctx.request_headers;
    header(h, "host", b"shop.example");
    header(h, "authorization", b"Bearer secret");
    header(h, "proxy-authorization", b"Basic x");
    header(h, "proxy-authorization", b"Basic y");
    header(h, "x-multi", b"one");
    header(h, "x-multi", b"two/three");
    header(h, "x-quote", b"a\"b\\c\td");
    header(h, "x-latin", b"caf\xe9");
    header(h, "accept", b"*/*");
    let h = &mut ctx.response_headers;
    header(h, "content-type", b"application/json");
    header(h, "set-cookie", b"a=1; Path=/");
    header(h, "set-cookie", b"b=2");
    header(h, "authorization", b"kept in responses");
    ctx.tries = vec![
        Try {
            balancer_start: 1_733_100_000_123,
            ip: "127.0.0.1".into(),
            port: 8080,
            balancer_latency: 0,
            state: Some("failed"),
            code: Some(502),
        },
        Try {
            balancer_start: 1_733_100_000_124,
            ip: "::1".into(),
            port: 8081,
            balancer_latency: 2,
            state: None,
            code: None,
        },
    ];
    ctx.trace_ids = vec![
        ("w3c", "4bf92f3577b34da6a3ce929d0e0e4736".into()),
        ("b3", "first".into()),
        ("b3", "last".into()),
        ("aws", "1-5759e988-bd862e3fe1be46a994272793".into()),
    ];
    ctx.route = Some(Arc::new(full_route()));
    ctx.service = Some(Arc::new(service(true)));
    assert_same(&ctx);
    ctx.route = Some(Arc::new(bare_route()));
    ctx.service = Some(Arc::new(service(false)));
    ctx.latencies.proxy = None;
    assert_same(&ctx);
}

#[test]
fn varied_query_strings_and_headers_write_the_same_line() {
    let keys = ["a", "b", "a%20b", "b+c", "", "%", "é", "z/"];
    let values = ["", "1", "x y", "%2F", "+", "a=b", "%C3%A9"];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for round in 0..200 {
        let mut ctx = RequestContext::new("127.0.0.1:1".parse().unwrap(), 8000);
        ctx.host = format!("h{round}");
        let mut uri = String::from("/p");
        if round % 5 != 0 {
            uri.push('?');
            for i in 0..next(6) {
                if i > 0 {
                    uri.push('&');
                }
                uri.push_str(keys[next(keys.len())]);
                if next(3) > 0 {
                    uri.push('=');
                    uri.push_str(values[next(values.len())]);
                }
            }
        }
        ctx.uri = uri;
        for _ in 0..next(5) {
            let name = ["x-a", "x-b", "authorization", "cookie"][next(4)];
            header(
                &mut ctx.request_headers,
                name,
                values[next(values.len())].as_bytes(),
            );
            header(
                &mut ctx.response_headers,
                name,
                keys[next(keys.len())].as_bytes(),
            );
        }
        assert_same(&ctx);
    }
}

#[test]
fn route_and_service_objects_follow_the_entities_of_each_request() {
    let mut ctx = RequestContext::new("127.0.0.1:1".parse().unwrap(), 8000);
    ctx.route = Some(Arc::new(full_route()));
    ctx.service = Some(Arc::new(service(true)));
    // Written once, then copied: the same bytes every time.
    assert_same(&ctx);
    assert_same(&ctx);
    // A configuration change brings new entities: their own objects, never the old ones.
    for _ in 0..3 {
        ctx.route = Some(Arc::new(bare_route()));
        ctx.service = Some(Arc::new(service(false)));
        assert_same(&ctx);
        let line = wire::line(&ctx);
        assert!(line.contains(r#""id":"r-2""#) && !line.contains("ecommerce"));
        ctx.route = Some(Arc::new(full_route()));
        ctx.service = Some(Arc::new(service(true)));
        assert_same(&ctx);
    }
}
