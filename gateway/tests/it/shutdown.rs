//! Graceful shutdown of the binary: on SIGTERM the gateway finishes what it accepted and
//! flushes the opentelemetry and tcp-log queues before it exits 0.

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{echo_server, get};

const REQUESTS: usize = 20;

#[tokio::test]
async fn sigterm_after_the_last_response_loses_no_span_and_no_log_line() {
    let (otlp, mut spans) = crate::opentelemetry::sink(0).await;
    let (tcp_port, mut lines) = crate::tcp_log::listener().await;
    let upstream = echo_server("up").await;
    // A long coalescing delay keeps every span queued until the shutdown flushes it.
    let yaml = format!(
        r#"_format_version: "3.0"
services:
- name: svc
  url: http://{}
  routes:
  - name: r
    paths: [/svc]
plugins:
- name: opentelemetry
  config:
    traces_endpoint: http://{otlp}/v1/traces
    queue: {{max_coalescing_delay: 3600, max_batch_size: 100000}}
- name: tcp-log
  config:
    host: 127.0.0.1
    port: {tcp_port}
"#,
        upstream.addr
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kong.yaml");
    std::fs::write(&path, yaml).unwrap();
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (proxy, admin, status) = (free(), free(), free());
    let mut child = Command::new(env!("CARGO_BIN_EXE_otelpipe-gateway"))
        .env("KONG_DECLARATIVE_CONFIG", &path)
        .env("KONG_PROXY_LISTEN", format!("127.0.0.1:{proxy}"))
        .env("KONG_ADMIN_LISTEN", format!("127.0.0.1:{admin}"))
        .env("KONG_STATUS_LISTEN", format!("127.0.0.1:{status}"))
        .env("KONG_TRACING_INSTRUMENTATIONS", "all")
        .env("KONG_TRACING_SAMPLING_RATE", "1.0")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = format!("http://127.0.0.1:{status}/status/ready");
    let mut up = false;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", status))
            .await
            .is_ok()
            && get(&ready, &[]).await.status == 200
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !up {
        child.kill().ok();
    }
    assert!(up, "the gateway never became ready");

    for i in 0..REQUESTS {
        let r = get(&format!("http://127.0.0.1:{proxy}/svc/{i}"), &[]).await;
        assert_eq!(r.status, 200);
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut code = None;
    for _ in 0..400 {
        if let Ok(Some(status)) = child.try_wait() {
            code = status.code();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if code.is_none() {
        child.kill().ok();
    }
    assert_eq!(code, Some(0), "the gateway exits 0 after SIGTERM");

    let mut traces = HashSet::new();
    while let Ok(export) = spans.try_recv() {
        for rs in &export.request.resource_spans {
            for ss in &rs.scope_spans {
                for span in &ss.spans {
                    traces.insert(span.trace_id.clone());
                }
            }
        }
    }
    assert_eq!(traces.len(), REQUESTS, "one exported trace per request");

    let mut paths = HashSet::new();
    for _ in 0..REQUESTS {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.recv())
            .await
            .expect("a tcp-log line per request")
            .unwrap();
        let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
        paths.insert(entry["request"]["uri"].as_str().unwrap().to_owned());
    }
    assert_eq!(paths.len(), REQUESTS, "one tcp-log line per request");
}
