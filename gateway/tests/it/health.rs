//! Upstream health checks: passive verdicts on proxied traffic, active probes, the balancer
//! skipping unhealthy targets, and `GET /upstreams/{name}/health`.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{echo_server, gateway, get};

async fn health(admin: u16, upstream: &str) -> Value {
    let r = get(
        &format!("http://127.0.0.1:{admin}/upstreams/{upstream}/health"),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn states(report: &Value) -> Vec<(String, String)> {
    report["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["target"].as_str().unwrap().to_owned(),
                t["health"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Polls the health endpoint until `target` reports `want` (bounded: 10 s).
async fn wait_for(admin: u16, upstream: &str, target: &str, want: &str) {
    for _ in 0..500 {
        let report = health(admin, upstream).await;
        if states(&report)
            .iter()
            .any(|(t, h)| t == target && h == want)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "{target} never became {want}: {}",
        health(admin, upstream).await
    );
}

#[tokio::test]
async fn passive_failures_take_targets_out_until_none_is_left() {
    let (a, b) = (echo_server("a").await, echo_server("b").await);
    let yaml = format!(
        r#"_format_version: "3.0"
upstreams:
- name: pool
  healthchecks:
    passive:
      unhealthy: {{http_failures: 2, http_statuses: [500]}}
  targets:
  - target: 127.0.0.1:{}
  - target: 127.0.0.1:{}
- name: plain
  targets:
  - target: 127.0.0.1:{}
services:
- name: svc
  host: pool
  retries: 0
  routes:
  - name: r
    paths: [/pool]
"#,
        a.addr.port(),
        b.addr.port(),
        a.addr.port()
    );
    let gw = gateway(&yaml, &[]).await;
    let (port, admin) = (gw.proxy[0].port(), gw.admin[0].port());
    let report = health(admin, "pool").await;
    assert_eq!(report["next"], Value::Null);
    assert_eq!(report["node_id"], gw.shared.conf.node_id.as_str());
    let t = &report["data"][0];
    assert_eq!(t["health"], "HEALTHY");
    assert_eq!(t["weight"], 100);
    assert_eq!(t["data"]["addresses"][0]["ip"], "127.0.0.1");
    assert_eq!(t["data"]["weight"]["available"], 100);
    assert!(t["id"].is_string() && t["upstream"]["id"].is_string());
    assert!(states(&health(admin, "plain").await)
        .iter()
        .all(|(_, h)| h == "HEALTHCHECKS_OFF"));

    let url = format!("http://127.0.0.1:{port}/pool/status/500");
    // Round-robin: two failures each take both targets out.
    for _ in 0..4 {
        assert_eq!(get(&url, &[]).await.status, 500);
    }
    let report = health(admin, "pool").await;
    assert!(
        states(&report).iter().all(|(_, h)| h == "UNHEALTHY"),
        "{report}"
    );
    assert_eq!(report["data"][0]["data"]["weight"]["available"], 0);
    let hits = a.hits.load(std::sync::atomic::Ordering::Relaxed)
        + b.hits.load(std::sync::atomic::Ordering::Relaxed);
    let r = get(
        &format!("http://127.0.0.1:{port}/pool/x"),
        &[("accept", "application/json")],
    )
    .await;
    assert_eq!(r.status, 503);
    assert_eq!(
        r.json()["message"],
        "failure to get a peer from the ring-balancer"
    );
    let after = a.hits.load(std::sync::atomic::Ordering::Relaxed)
        + b.hits.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(hits, after, "no unhealthy target is tried");
    let missing = get(
        &format!("http://127.0.0.1:{admin}/upstreams/nope/health"),
        &[],
    )
    .await;
    assert_eq!(missing.status, 404);

    // Kong's manual override brings a target back.
    let target = format!("127.0.0.1:{}", a.addr.port());
    let set = crate::support::send(
        "POST",
        &format!("http://127.0.0.1:{admin}/upstreams/pool/targets/{target}/healthy"),
        &[],
        bytes::Bytes::new(),
    )
    .await;
    assert_eq!(set.status, 204);
    assert!(states(&health(admin, "pool").await).contains(&(target, "HEALTHY".into())));
    let r = get(&format!("http://127.0.0.1:{port}/pool/x"), &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["upstream"], "a");
    let unknown = crate::support::send(
        "POST",
        &format!("http://127.0.0.1:{admin}/upstreams/pool/targets/10.9.9.9:1/unhealthy"),
        &[],
        bytes::Bytes::new(),
    )
    .await;
    assert_eq!(unknown.status, 404);
    gw.shutdown().await;
}

/// A server on `addr` answering every connection with `HTTP/1.0 200 OK`.
async fn ok_server(listener: TcpListener) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _read = s.read(&mut buf).await;
                s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .await
                    .ok();
            });
        }
    })
}

#[tokio::test]
async fn active_probes_take_a_dead_target_out_and_bring_it_back() {
    let echo = echo_server("a").await;
    let spare = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = spare.local_addr().unwrap();
    drop(spare);
    let yaml = format!(
        r#"_format_version: "3.0"
upstreams:
- name: pool
  healthchecks:
    active:
      timeout: 2
      http_path: /probe
      healthy: {{interval: 0.05, successes: 1}}
      unhealthy: {{interval: 0.05, tcp_failures: 1, http_failures: 1}}
  targets:
  - target: 127.0.0.1:{}
  - target: {dead}
services:
- name: svc
  host: pool
  retries: 0
  routes:
  - name: r
    paths: [/pool]
"#,
        echo.addr.port()
    );
    let gw = gateway(&yaml, &[]).await;
    let (port, admin) = (gw.proxy[0].port(), gw.admin[0].port());
    wait_for(admin, "pool", &dead.to_string(), "UNHEALTHY").await;
    let live = format!("127.0.0.1:{}", echo.addr.port());
    assert!(states(&health(admin, "pool").await).contains(&(live.clone(), "HEALTHY".into())));
    for _ in 0..6 {
        let r = get(&format!("http://127.0.0.1:{port}/pool/x"), &[]).await;
        assert_eq!(r.status, 200, "only the live target is used");
        assert_eq!(r.json()["upstream"], "a");
    }
    let Ok(listener) = TcpListener::bind(dead).await else {
        // Another process took the port meanwhile; the part above was checked.
        gw.shutdown().await;
        return;
    };
    let server = ok_server(listener).await;
    wait_for(admin, "pool", &dead.to_string(), "HEALTHY").await;
    let mut seen_revived = false;
    for _ in 0..6 {
        let r = get(&format!("http://127.0.0.1:{port}/pool/x"), &[]).await;
        assert_eq!(r.status, 200);
        seen_revived |= r.text() == "ok";
    }
    assert!(seen_revived, "the recovered target receives traffic again");
    server.abort();
    gw.shutdown().await;
}

#[tokio::test]
async fn a_target_whose_name_does_not_resolve_reports_dns_error() {
    let yaml = r#"_format_version: "3.0"
upstreams:
- name: broken
  targets:
  - target: no-such-host.invalid:80
services:
- name: svc
  host: broken
  routes:
  - name: r
    paths: [/broken]
"#;
    let gw = gateway(yaml, &[]).await;
    let (port, admin) = (gw.proxy[0].port(), gw.admin[0].port());
    let before = health(admin, "broken").await;
    assert_eq!(before["data"][0]["health"], "HEALTHCHECKS_OFF", "{before}");
    let r = get(&format!("http://127.0.0.1:{port}/broken/x"), &[]).await;
    assert!(r.status.is_server_error(), "{}", r.status);
    let after = health(admin, "broken").await;
    let t = &after["data"][0];
    assert_eq!(t["health"], "DNS_ERROR", "{after}");
    assert_eq!(t["data"]["dns"], "DNS_ERROR");
    assert_eq!(t["data"]["addresses"], serde_json::json!([]));
    assert_eq!(t["data"]["weight"]["available"], 0);
    gw.shutdown().await;
}
