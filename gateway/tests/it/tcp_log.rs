//! The tcp-log plugin: a real TCP listener receives one JSON line per request.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::support::{echo_server, gateway, get, self_signed_acceptor};

/// A TCP listener that forwards every received line.
pub(crate) async fn listener() -> (u16, mpsc::UnboundedReceiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = l.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tx.send(line).ok();
                }
            });
        }
    });
    (port, rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("no log line within 20 s")
        .unwrap()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every key of `ours` exists in `kong` with the same JSON type (recursively for objects
/// whose keys are fixed by the serializer).
fn same_shape(ours: &Value, kong: &Value, path: &str) {
    let (Value::Object(o), Value::Object(k)) = (ours, kong) else {
        return;
    };
    for (key, value) in o {
        let here = format!("{path}.{key}");
        let expected = k
            .get(key)
            .unwrap_or_else(|| panic!("{here} is not in Kong's output"));
        assert_eq!(kind(value), kind(expected), "{here}");
        if !matches!(key.as_str(), "headers" | "querystring") {
            same_shape(value, expected, &here);
        }
    }
}

fn yaml(upstream: std::net::SocketAddr, port: u16, custom: bool) -> String {
    let custom = if custom {
        "    custom_fields_by_lua:\n      trace_id: local log_payload = kong.log.serialize() local trace_id = log_payload['trace_id']['w3c'] return trace_id\n"
    } else {
        ""
    };
    format!(
        r#"_format_version: "3.0"
services:
- name: ecommerce_coupon_service
  url: http://{upstream}
  routes:
  - name: ecommerce_coupon_route
    paths: [/coupon]
plugins:
- name: opentelemetry
  config:
    traces_endpoint: http://127.0.0.1:9/v1/traces
    propagation:
      default_format: "w3c"
      inject: ["w3c"]
- name: tcp-log
  instance_name: tcp-log1
  enabled: true
  config:
    host: 127.0.0.1
    port: {port}
{custom}"#
    )
}

#[tokio::test]
async fn proxied_request_line_has_kongs_fields_and_the_seed_trace_id_string() {
    let (port, mut rx) = listener().await;
    let upstream = echo_server("coupon").await;
    let gw = gateway(&yaml(upstream.addr, port, true), &[]).await;
    let proxy = format!("http://{}", gw.proxy[0]);
    // The seed snippet fails without a trace id (no route: the access phase never ran), so
    // the 404 is not logged and the first line is the proxied request.
    assert_eq!(get(&format!("{proxy}/nope"), &[]).await.status, 404);
    let reply = get(
        &format!("{proxy}/coupon/apply?code=SAVE10"),
        &[("authorization", "Bearer secret")],
    )
    .await;
    assert_eq!(reply.status, 200);
    let line = next(&mut rx).await;
    assert!(
        line.contains(r#""uri":"\/coupon\/apply?code=SAVE10""#),
        "{line}"
    );
    let v: Value = serde_json::from_str(&line).unwrap();
    let traceparent = reply.upstream_header("traceparent").unwrap();
    assert_eq!(v["trace_id"], traceparent.split('-').nth(1).unwrap());
    assert_eq!(v["request"]["headers"]["traceparent"], traceparent.as_str());
    assert_eq!(v["request"]["headers"]["authorization"], "REDACTED");
    assert!(v["request"]["headers"].get("x-forwarded-for").is_none());
    assert_eq!(v["request"]["querystring"]["code"], "SAVE10");
    assert_eq!(v["request"]["method"], "GET");
    assert_eq!(
        v["request"]["url"],
        format!(
            "http://127.0.0.1:{}/coupon/apply?code=SAVE10",
            gw.proxy[0].port()
        )
    );
    assert_eq!(v["upstream_uri"], "/apply?code=SAVE10");
    assert_eq!(v["upstream_status"], "200");
    assert_eq!(v["response"]["status"], 200);
    assert_eq!(
        v["response"]["headers"]["x-kong-request-id"],
        reply.header("x-kong-request-id").unwrap()
    );
    assert_eq!(v["source"], "upstream");
    assert_eq!(v["workspace_name"], "default");
    assert_eq!(v["route"]["name"], "ecommerce_coupon_route");
    assert_eq!(v["service"]["name"], "ecommerce_coupon_service");
    assert_eq!(v["tries"][0]["port"], upstream.addr.port());
    let l = &v["latencies"];
    assert!(
        l["request"].as_i64().unwrap() + 1
            >= l["kong"].as_i64().unwrap() + l["proxy"].as_i64().unwrap()
    );
    let wire = include_str!("../fixtures/tcp-log-wire-proxied.ndjson");
    let kong: Value = serde_json::from_str(wire.lines().nth(1).unwrap()).unwrap();
    same_shape(&v, &kong, "");
    let ours: Vec<&String> = v.as_object().unwrap().keys().collect();
    let theirs: Vec<&String> = kong.as_object().unwrap().keys().collect();
    let mut a = ours.clone();
    let mut b = theirs.clone();
    a.sort();
    b.sort();
    assert_eq!(a, b, "top-level keys");
    gw.shutdown().await;
}

#[tokio::test]
async fn no_route_line_matches_kongs_404_shape() {
    let (port, mut rx) = listener().await;
    let upstream = echo_server("coupon").await;
    let gw = gateway(&yaml(upstream.addr, port, false), &[]).await;
    let proxy = format!("http://{}", gw.proxy[0]);
    assert_eq!(get(&format!("{proxy}/nope"), &[]).await.status, 404);
    let v: Value = serde_json::from_str(&next(&mut rx).await).unwrap();
    let kong: Value =
        serde_json::from_str(include_str!("../fixtures/tcp-log-404-no-route.pretty.json")).unwrap();
    let mut a: Vec<&String> = v.as_object().unwrap().keys().collect();
    let mut b: Vec<&String> = kong.as_object().unwrap().keys().collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    same_shape(&v, &kong, "");
    assert_eq!(v["latencies"]["proxy"], -1);
    assert_eq!(v["upstream_uri"], "");
    assert_eq!(v["source"], "kong");
    assert_eq!(v["request"]["querystring"], serde_json::json!({}));
    gw.shutdown().await;
}

/// A TLS listener that forwards `(connection number, SNI, line)` for every received line.
async fn tls_listener() -> (
    u16,
    mpsc::UnboundedReceiver<(usize, Option<String>, String)>,
    tempfile::TempDir,
) {
    let (acceptor, dir) = self_signed_acceptor();
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((stream, _)) = l.accept().await {
            n += 1;
            let (tx, acceptor) = (tx.clone(), acceptor.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let sni = tls.get_ref().1.server_name().map(str::to_owned);
                let mut lines = BufReader::new(tls).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tx.send((n, sni.clone(), line)).ok();
                }
            });
        }
    });
    (port, rx, dir)
}

fn tls_yaml(upstream: std::net::SocketAddr, port: u16, sni: Option<&str>) -> String {
    let sni = sni.map_or_else(String::new, |s| format!("    tls_sni: {s}\n"));
    format!(
        r#"_format_version: "3.0"
services:
- name: svc
  url: http://{upstream}
  routes:
  - name: r
    paths: [/coupon]
plugins:
- name: tcp-log
  config:
    host: 127.0.0.1
    port: {port}
    tls: true
{sni}"#
    )
}

#[tokio::test]
async fn tls_sends_lines_with_the_configured_sni_over_one_pooled_connection() {
    let (port, mut rx, _dir) = tls_listener().await;
    let upstream = echo_server("coupon").await;
    let gw = gateway(
        &tls_yaml(upstream.addr, port, Some("logs.example.test")),
        &[],
    )
    .await;
    let proxy = format!("http://{}", gw.proxy[0]);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let reply = get(&format!("{proxy}/coupon/x"), &[]).await;
        assert_eq!(reply.status, 200);
        ids.push(reply.header("x-kong-request-id").unwrap().to_owned());
        // One line at a time: the connection is back in the pool before the next request.
        let (conn, sni, line) = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("no TLS log line within 20 s")
            .unwrap();
        assert_eq!(conn, 1, "keepalive reuses the first connection");
        assert_eq!(sni.as_deref(), Some("logs.example.test"));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["request"]["id"], ids.last().unwrap().as_str());
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn tls_without_sni_sends_no_server_name_and_expired_connections_are_replaced() {
    let (port, mut rx, _dir) = tls_listener().await;
    let upstream = echo_server("coupon").await;
    let yaml = tls_yaml(upstream.addr, port, None) + "    keepalive: 1\n";
    let gw = gateway(&yaml, &[]).await;
    let proxy = format!("http://{}", gw.proxy[0]);
    for expected in 1..=2 {
        assert_eq!(get(&format!("{proxy}/coupon/x"), &[]).await.status, 200);
        let (conn, sni, line) = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("no TLS log line within 20 s")
            .unwrap();
        assert_eq!(
            conn, expected,
            "an idle connection older than keepalive is not reused"
        );
        assert_eq!(sni, None);
        assert!(line.starts_with('{') && line.ends_with('}'), "{line}");
        // Longer than the 1 ms keepalive.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gw.shutdown().await;
}

/// Sends `request` as raw bytes and reads the whole response until the gateway closes.
async fn raw_exchange(addr: std::net::SocketAddr, request: &str) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut response))
        .await
        .expect("response within 20 s")
        .unwrap();
    response
}

#[tokio::test]
async fn request_and_response_sizes_are_the_bytes_on_the_wire() {
    let (port, mut rx) = listener().await;
    let upstream = echo_server("coupon").await;
    let gw = gateway(&yaml(upstream.addr, port, false), &[]).await;
    let addr = gw.proxy[0];
    let cases = [
        // Upstream answer with content-length.
        format!("GET /coupon/apply?code=SAVE10 HTTP/1.1\r\nhost: {addr}\r\nuser-agent: raw/1\r\nconnection: close\r\n\r\n"),
        // A request body.
        format!("POST /coupon/apply HTTP/1.1\r\nhost: {addr}\r\ncontent-type: text/plain\r\ncontent-length: 11\r\nconnection: close\r\n\r\nhello world"),
        // A chunked upstream answer (3 chunks).
        format!("GET /coupon/stream/3 HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"),
        // Kong's own 404.
        format!("GET /nope HTTP/1.1\r\nhost: {addr}\r\naccept: application/json\r\nconnection: close\r\n\r\n"),
    ];
    for request in &cases {
        let response = raw_exchange(addr, request).await;
        let v: Value = serde_json::from_str(&next(&mut rx).await).unwrap();
        let head = String::from_utf8_lossy(&response[..response.len().min(200)]).into_owned();
        assert_eq!(
            v["request"]["size"],
            request.len(),
            "request.size of {request:?}"
        );
        assert_eq!(
            v["response"]["size"],
            response.len(),
            "response.size of {head:?}"
        );
    }
    gw.shutdown().await;
}

/// Plain connections are pooled too: after the first request opens one, each line is written
/// on it whole, in request order, and the listener sees a single connection.
#[tokio::test]
async fn plain_lines_reuse_one_pooled_connection_whole_and_in_order() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut conn = 0;
        while let Ok((stream, _)) = l.accept().await {
            conn += 1;
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tx.send((conn, line)).ok();
                }
            });
        }
    });
    let upstream = echo_server("coupon").await;
    let gw = gateway(&yaml(upstream.addr, port, false), &[]).await;
    let proxy = format!("http://{}", gw.proxy[0]);
    for i in 0..20 {
        let reply = get(&format!("{proxy}/coupon/{i}"), &[]).await;
        assert_eq!(reply.status, 200);
        let (conn, line) = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("no log line within 20 s")
            .unwrap();
        assert_eq!(conn, 1, "line {i} came on a new connection");
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["request"]["uri"], format!("/coupon/{i}"));
        assert_eq!(
            v["request"]["id"],
            reply.header("x-kong-request-id").unwrap()
        );
    }
    gw.shutdown().await;
}
