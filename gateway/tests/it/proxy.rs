//! The proxy against real upstream servers on 127.0.0.1.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{closed_port, echo_server, gateway, get, send};

fn is_request_id(s: &str) -> bool {
    s.len() == 32 && s.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
}

fn coupon_config(port: u16) -> String {
    format!(
        "_format_version: \"3.0\"\nservices:\n- name: coupon\n  host: 127.0.0.1\n  port: {port}\n  routes:\n  - name: coupon\n    paths: [/coupon]\n"
    )
}

#[tokio::test]
async fn proxied_request_and_response_headers_follow_kong() {
    let echo = echo_server("a").await;
    let gw = gateway(&coupon_config(echo.addr.port()), &[]).await;
    let port = gw.proxy[0].port();
    let url = format!("http://127.0.0.1:{port}/coupon/apply?code=SAVE10");
    let r = get(
        &url,
        &[
            ("host", "localhost:8000"),
            ("user-agent", "curl/8.5.0"),
            ("accept", "*/*"),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    let report = r.json();
    assert_eq!(report["uri"], "/apply?code=SAVE10");
    let up = |name| r.upstream_header(name);
    assert_eq!(
        up("host").unwrap(),
        format!("127.0.0.1:{}", echo.addr.port())
    );
    assert_eq!(up("connection").as_deref(), Some("keep-alive"));
    assert_eq!(up("via").as_deref(), Some("1.1 kong/3.9.0"));
    assert_eq!(up("x-forwarded-for").as_deref(), Some("127.0.0.1"));
    assert_eq!(up("x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(up("x-forwarded-host").as_deref(), Some("localhost"));
    assert_eq!(up("x-forwarded-port").unwrap(), port.to_string());
    assert_eq!(up("x-forwarded-path").as_deref(), Some("/coupon/apply"));
    assert_eq!(up("x-forwarded-prefix").as_deref(), Some("/coupon"));
    assert_eq!(up("x-real-ip").as_deref(), Some("127.0.0.1"));
    assert_eq!(up("user-agent").as_deref(), Some("curl/8.5.0"));
    let rid = up("x-kong-request-id").unwrap();
    assert!(is_request_id(&rid), "{rid}");

    assert_eq!(r.header("x-kong-request-id"), Some(rid.as_str()));
    assert_eq!(r.header("x-powered-by"), Some("Echo"));
    assert_eq!(r.header("via"), Some("1.1 kong/3.9.0"));
    assert_eq!(r.header("server"), Some("kong/3.9.0"));
    assert!(r
        .header("x-kong-upstream-latency")
        .unwrap()
        .parse::<u64>()
        .is_ok());
    assert!(r
        .header("x-kong-proxy-latency")
        .unwrap()
        .parse::<u64>()
        .is_ok());
    assert!(r.header("x-kong-response-latency").is_none());
    gw.shutdown().await;
}

#[tokio::test]
async fn preserve_host_service_path_forwarded_chains_and_no_prefix_without_strip() {
    let echo = echo_server("a").await;
    let yaml = format!(
        "_format_version: \"3.0\"\nservices:\n- name: api\n  url: http://127.0.0.1:{}/v1\n  routes:\n  - name: users\n    paths: ['~/users/(?<id>\\d+)$']\n    strip_path: false\n    preserve_host: true\n",
        echo.addr.port()
    );
    let gw = gateway(&yaml, &[]).await;
    let url = format!("http://127.0.0.1:{}/users/42", gw.proxy[0].port());
    let r = get(
        &url,
        &[
            ("host", "api.example.test"),
            ("x-forwarded-for", "10.0.0.5"),
            ("via", "1.0 edge"),
        ],
    )
    .await;
    assert_eq!(r.json()["uri"], "/v1/users/42");
    assert_eq!(
        r.upstream_header("host").as_deref(),
        Some("api.example.test")
    );
    assert_eq!(
        r.upstream_header("x-forwarded-for").as_deref(),
        Some("10.0.0.5, 127.0.0.1")
    );
    assert_eq!(
        r.upstream_header("via").as_deref(),
        Some("1.0 edge, 1.1 kong/3.9.0")
    );
    assert_eq!(r.upstream_header("x-forwarded-prefix"), None);
    let r = get(
        &format!("http://127.0.0.1:{}/users/x", gw.proxy[0].port()),
        &[],
    )
    .await;
    assert_eq!(r.status, 404);
    gw.shutdown().await;
}

#[tokio::test]
async fn untrusted_forwarded_headers_are_replaced_trusted_ones_kept() {
    let echo = echo_server("a").await;
    let config = coupon_config(echo.addr.port());
    let spoof = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "evil.test"),
    ];
    let gw = gateway(&config, &[]).await;
    let r = get(
        &format!("http://127.0.0.1:{}/coupon", gw.proxy[0].port()),
        &spoof,
    )
    .await;
    assert_eq!(
        r.upstream_header("x-forwarded-proto").as_deref(),
        Some("http")
    );
    assert_eq!(
        r.upstream_header("x-forwarded-host").as_deref(),
        Some("127.0.0.1")
    );
    gw.shutdown().await;
    let gw = gateway(&config, &[("KONG_TRUSTED_IPS", "127.0.0.0/8")]).await;
    let r = get(
        &format!("http://127.0.0.1:{}/coupon", gw.proxy[0].port()),
        &spoof,
    )
    .await;
    assert_eq!(
        r.upstream_header("x-forwarded-proto").as_deref(),
        Some("https")
    );
    assert_eq!(
        r.upstream_header("x-forwarded-host").as_deref(),
        Some("evil.test")
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn no_route_is_kongs_404_in_every_media_type() {
    let gw = gateway("_format_version: \"3.0\"\n", &[]).await;
    let url = format!("http://127.0.0.1:{}/nothing", gw.proxy[0].port());
    let r = get(&url, &[]).await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let rid = r.header("x-kong-request-id").unwrap().to_owned();
    assert_eq!(
        r.text(),
        format!("{{\n  \"message\":\"no Route matched with those values\",\n  \"request_id\":\"{rid}\"\n}}")
    );
    assert_eq!(r.header("content-length"), Some("103"));
    assert_eq!(r.header("server"), Some("kong/3.9.0"));
    assert!(r.header("x-kong-response-latency").is_some());
    assert!(r.header("via").is_none());
    let r = get(&url, &[("accept", "text/plain")]).await;
    let rid = r.header("x-kong-request-id").unwrap().to_owned();
    assert_eq!(
        r.text(),
        format!("no Route matched with those values\nrequest_id: {rid}\n")
    );
    let r = get(&url, &[("accept", "text/html")]).await;
    assert!(r
        .text()
        .contains("<p>no Route matched with those values.</p>"));
    let r = get(&url, &[("accept", "application/xml")]).await;
    assert!(r
        .text()
        .contains("<message>no Route matched with those values</message>"));
    gw.shutdown().await;
}

#[tokio::test]
async fn upstream_failures_map_to_kong_statuses() {
    let echo = echo_server("a").await;
    let dead = closed_port().await;
    let yaml = format!(
        "_format_version: \"3.0\"\nservices:\n- name: dead\n  host: 127.0.0.1\n  port: {dead}\n  retries: 2\n  routes: [{{name: dead, paths: [/dead]}}]\n- name: slow\n  host: 127.0.0.1\n  port: {}\n  read_timeout: 300\n  retries: 0\n  routes: [{{name: slow, paths: [/slow], strip_path: false}}]\n- name: nodns\n  host: no-such-host.invalid\n  routes: [{{name: nodns, paths: [/nodns]}}]\n- name: tls\n  host: 127.0.0.1\n  port: {}\n  routes: [{{name: secure, paths: [/secure], protocols: [https]}}, {{name: moved, paths: [/moved], protocols: [https], https_redirect_status_code: 301}}]\n- name: error\n  host: 127.0.0.1\n  port: {}\n  routes: [{{name: error, paths: [/status], strip_path: false}}]\nroutes:\n- {{name: orphan, paths: [/orphan]}}\n",
        echo.addr.port(), echo.addr.port(), echo.addr.port()
    );
    let gw = gateway(&yaml, &[]).await;
    let base = format!("http://127.0.0.1:{}", gw.proxy[0].port());

    let r = get(&format!("{base}/dead"), &[]).await;
    assert_eq!(r.status, 502);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    let rid = r.header("x-kong-request-id").unwrap().to_owned();
    assert_eq!(
        r.text(),
        format!("An invalid response was received from the upstream server\nrequest_id: {rid}\n")
    );
    let r = get(&format!("{base}/dead"), &[("accept", "*/*")]).await;
    assert_eq!(
        r.json()["message"],
        "An invalid response was received from the upstream server"
    );
    let r = get(
        &format!("{base}/dead"),
        &[("content-type", "application/json")],
    )
    .await;
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );

    let r = get(&format!("{base}/slow"), &[("accept", "application/json")]).await;
    assert_eq!(r.status, 504);
    assert_eq!(r.json()["message"], "The upstream server is timing out");

    // A body that stops mid-way is cut after read_timeout; the client sees an incomplete body.
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<Bytes>>();
    let response = client
        .get(format!("{base}/slow/stall").parse().unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = tokio::time::timeout(
        Duration::from_secs(10),
        http_body_util::BodyExt::collect(response.into_body()),
    )
    .await
    .expect("the gateway ends the stalled body");
    assert!(body.is_err());

    let r = get(&format!("{base}/nodns"), &[]).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["message"], "name resolution failed");

    let r = get(&format!("{base}/orphan"), &[]).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["message"], "no Service found with those values");

    let r = get(&format!("{base}/secure"), &[("host", "shop.test")]).await;
    assert_eq!(r.status, 426);
    assert_eq!(r.json()["message"], "Please use HTTPS protocol");
    assert_eq!(r.header("upgrade"), Some("TLS/1.2, HTTP/1.1"));
    let r = get(&format!("{base}/moved?a=1"), &[("host", "shop.test")]).await;
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("https://shop.test/moved?a=1"));

    let r = get(&format!("{base}/status/503"), &[]).await;
    assert_eq!(r.status, 503, "upstream errors pass through");
    assert_eq!(r.json()["upstream"], "a");
    assert_eq!(r.header("via"), Some("1.1 kong/3.9.0"));
    gw.shutdown().await;
}

#[tokio::test]
async fn upstream_targets_round_robin_and_retry_past_dead_ones() {
    let a = echo_server("a").await;
    let b = echo_server("b").await;
    let dead = closed_port().await;
    let yaml = format!(
        "_format_version: \"3.0\"\nupstreams:\n- name: pool\n  targets:\n  - target: 127.0.0.1:{}\n  - target: 127.0.0.1:{}\n- name: flaky\n  targets:\n  - target: 127.0.0.1:{dead}\n  - target: 127.0.0.1:{}\nservices:\n- name: pool\n  host: pool\n  routes: [{{name: pool, paths: [/pool]}}]\n- name: flaky\n  host: flaky\n  routes: [{{name: flaky, paths: [/flaky]}}]\n",
        a.addr.port(), b.addr.port(), a.addr.port()
    );
    let gw = gateway(&yaml, &[]).await;
    let base = format!("http://127.0.0.1:{}", gw.proxy[0].port());
    let mut seen = Vec::new();
    for _ in 0..4 {
        let r = get(&format!("{base}/pool"), &[]).await;
        assert_eq!(r.upstream_header("host").as_deref(), Some("pool"));
        seen.push(r.json()["upstream"].as_str().unwrap().to_owned());
    }
    seen.sort();
    assert_eq!(seen, ["a", "a", "b", "b"]);
    for _ in 0..4 {
        let r = get(&format!("{base}/flaky"), &[]).await;
        assert_eq!(r.status, 200);
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn bodies_stream_both_ways() {
    let echo = echo_server("a").await;
    let gw = gateway(&coupon_config(echo.addr.port()), &[]).await;
    let base = format!("http://127.0.0.1:{}", gw.proxy[0].port());
    let big = Bytes::from(vec![b'y'; 3 * 1024 * 1024]);
    let r = send("POST", &format!("{base}/coupon/upload"), &[], big).await;
    assert_eq!(r.json()["body_len"], 3 * 1024 * 1024);
    assert_eq!(r.json()["method"], "POST");
    let r = get(&format!("{base}/coupon/stream/64"), &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 64 * 16 * 1024);
    gw.shutdown().await;
}

async fn raw(port: u16, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out))
        .await
        .expect("the gateway closes the connection")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn malformed_and_oversized_requests_are_refused_and_serving_continues() {
    let echo = echo_server("a").await;
    let gw = gateway(&coupon_config(echo.addr.port()), &[]).await;
    let port = gw.proxy[0].port();
    let reply = raw(port, b"THIS IS NOT HTTP\r\n\r\n").await;
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    let huge = format!(
        "GET /coupon HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let reply = raw(port, huge.as_bytes()).await;
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(
        reply.contains("Request header or cookie too large"),
        "{reply}"
    );
    let r = get(&format!("http://127.0.0.1:{port}/coupon"), &[]).await;
    assert_eq!(r.status, 200);
    gw.shutdown().await;
}

#[tokio::test]
async fn http2_clients_are_proxied_with_their_version_in_via() {
    let echo = echo_server("a").await;
    let gw = gateway(&coupon_config(echo.addr.port()), &[]).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Empty<Bytes>>();
    let uri = format!("http://127.0.0.1:{}/coupon/h2", gw.proxy[0].port());
    let response = client.get(uri.parse().unwrap()).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let report: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let via = report["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0] == "via")
        .unwrap()[1]
        .clone();
    assert_eq!(via, "2 kong/3.9.0");
    assert_eq!(report["uri"], "/h2");
    gw.shutdown().await;
}

#[tokio::test]
async fn headers_setting_controls_kong_response_headers() {
    let echo = echo_server("a").await;
    let gw = gateway(
        &coupon_config(echo.addr.port()),
        &[("KONG_HEADERS", "off"), ("KONG_HEADERS_UPSTREAM", "off")],
    )
    .await;
    let r = get(
        &format!("http://127.0.0.1:{}/coupon", gw.proxy[0].port()),
        &[],
    )
    .await;
    for h in [
        "via",
        "server",
        "x-kong-request-id",
        "x-kong-upstream-latency",
        "x-kong-proxy-latency",
    ] {
        assert!(r.header(h).is_none(), "{h}");
    }
    assert_eq!(r.upstream_header("x-kong-request-id"), None);
    gw.shutdown().await;
}

#[tokio::test]
async fn consistent_hashing_pins_a_header_value_to_one_target() {
    let a = echo_server("a").await;
    let b = echo_server("b").await;
    let yaml = format!(
        "_format_version: \"3.0\"\nupstreams:\n- name: sticky\n  algorithm: consistent-hashing\n  hash_on: header\n  hash_on_header: x-user\n  targets:\n  - target: 127.0.0.1:{}\n  - target: 127.0.0.1:{}\nservices:\n- name: sticky\n  host: sticky\n  routes: [{{name: sticky, paths: [/]}}]\n",
        a.addr.port(),
        b.addr.port()
    );
    let gw = gateway(&yaml, &[]).await;
    let url = format!("http://127.0.0.1:{}/", gw.proxy[0].port());
    let mut by_user = std::collections::HashMap::new();
    for round in 0..3 {
        for user in ["alice", "bob", "carol", "dave", "erin", "frank"] {
            let r = get(&url, &[("x-user", user)]).await;
            let upstream = r.json()["upstream"].as_str().unwrap().to_owned();
            let first = by_user.entry(user).or_insert_with(|| upstream.clone());
            assert_eq!(*first, upstream, "{user} moved in round {round}");
        }
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn websocket_upgrades_are_spliced_through() {
    let upstream = crate::support::upgrade_echo_server().await;
    let gw = gateway(&coupon_config(upstream.addr.port()), &[]).await;
    let mut stream = TcpStream::connect(gw.proxy[0]).await.unwrap();
    stream
        .write_all(b"GET /coupon/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            n,
            1,
            "connection closed early: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains("x-seen-connection: keep-alive, upgrade"),
        "{head}"
    );
    assert!(head.contains("x-seen-upgrade: websocket"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    stream.write_all(b"ping frames").await.unwrap();
    let mut echoed = [0u8; 11];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut echoed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&echoed, b"ping frames");
    gw.shutdown().await;
}

#[tokio::test]
async fn timeouts_retry_idempotent_requests_only() {
    let echo = echo_server("a").await;
    let yaml = format!(
        "_format_version: \"3.0\"\nservices:\n- name: slow\n  host: 127.0.0.1\n  port: {}\n  read_timeout: 200\n  retries: 2\n  routes: [{{name: slow, paths: [/slow], strip_path: false}}]\n",
        echo.addr.port()
    );
    let gw = gateway(&yaml, &[]).await;
    let url = format!("http://127.0.0.1:{}/slow", gw.proxy[0].port());
    let hits = || echo.hits.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(get(&url, &[]).await.status, 504);
    assert_eq!(hits(), 3, "GET: first try + 2 retries");
    assert_eq!(send("POST", &url, &[], Bytes::new()).await.status, 504);
    assert_eq!(hits(), 4, "POST is sent once");
    gw.shutdown().await;
}

#[tokio::test]
async fn http10_upstreams_answer_clients_in_http11_with_their_server_header() {
    let upstream = crate::support::http10_server().await;
    let gw = gateway(&coupon_config(upstream.addr.port()), &[]).await;
    let reply = raw(
        gw.proxy[0].port(),
        b"GET /coupon HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    let lower = reply.to_ascii_lowercase();
    assert!(lower.contains("server: old/1.0"), "{reply}");
    assert!(lower.contains("via: 1.1 kong/3.9.0"), "{reply}");
    assert!(reply.ends_with("ok"), "{reply}");
    gw.shutdown().await;
}

/// The `Name: value` lines of section `title` of the proxy-headers fixture.
fn fixture_headers(title: &str) -> Vec<(String, String)> {
    let text = include_str!("../fixtures/proxy-headers.txt");
    let start = text.find(title).expect("section") + title.len();
    let headers = text[start..]
        .lines()
        .skip(2)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect::<Vec<_>>();
    assert!(headers.len() >= 3, "{title}: {headers:?}");
    headers
}

#[tokio::test]
async fn headers_match_the_kong_transcript() {
    let echo = echo_server("a").await;
    let gw = gateway(&coupon_config(echo.addr.port()), &[]).await;
    let port = gw.proxy[0].port();
    let client: Vec<(String, String)> = fixture_headers("=== Client request");
    let client: Vec<(&str, &str)> = client
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = get(
        &format!("http://127.0.0.1:{port}/coupon/apply?code=SAVE10"),
        &client,
    )
    .await;
    assert_eq!(r.json()["uri"], "/apply?code=SAVE10");
    for (name, value) in fixture_headers("=== Request Kong sends upstream") {
        let got = r.upstream_header(&name);
        match name.as_str() {
            // Set by the opentelemetry plugin, not by the proxy.
            "traceparent" => continue,
            "host" => assert_eq!(got.unwrap(), format!("127.0.0.1:{}", echo.addr.port())),
            "x-forwarded-for" | "x-real-ip" => assert_eq!(got.as_deref(), Some("127.0.0.1")),
            "x-forwarded-port" => assert_eq!(got.unwrap(), port.to_string()),
            "x-kong-request-id" => assert!(is_request_id(&got.unwrap())),
            _ => assert_eq!(got.as_deref(), Some(value.as_str()), "upstream {name}"),
        }
    }
    for (name, value) in fixture_headers("=== Response Kong sends to the client") {
        let got = r.header(&name);
        match name.as_str() {
            // The transcript's upstream is Express; ours is the echo server.
            "content-length" | "date" | "x-powered-by" | "connection" => continue,
            "x-kong-upstream-latency" | "x-kong-proxy-latency" => {
                assert!(got.unwrap().parse::<u64>().is_ok(), "{name}")
            }
            "x-kong-request-id" => assert!(is_request_id(got.unwrap())),
            _ => assert_eq!(got, Some(value.as_str()), "response {name}"),
        }
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn https_services_are_reached_over_tls_with_the_host_as_sni() {
    let (upstream, _certs) = crate::support::tls_echo_server().await;
    let yaml = format!(
        "_format_version: \"3.0\"\nservices:\n- name: secure\n  url: https://localhost:{}/api\n  routes: [{{name: secure, paths: [/secure]}}]\n",
        upstream.addr.port()
    );
    let gw = gateway(&yaml, &[]).await;
    let url = format!("http://127.0.0.1:{}/secure/items?x=1", gw.proxy[0].port());
    for _ in 0..3 {
        let r = get(&url, &[]).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let report = r.json();
        assert_eq!(report["sni"], "localhost");
        assert_eq!(report["uri"], "/api/items?x=1");
        assert_eq!(
            report["host"],
            format!("localhost:{}", upstream.addr.port())
        );
    }
    gw.shutdown().await;
}
