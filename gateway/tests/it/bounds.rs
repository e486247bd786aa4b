//! Resource bounds of the proxy listener under abuse, with real sockets: slow-loris clients
//! are cut off after `client_header_timeout`, oversized request heads are refused, and
//! connections opened and dropped leave no file descriptors or connection tasks behind,
//! while well-behaved clients keep being served.

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{echo_server, gateway, get, send};

fn coupon_config(port: u16) -> String {
    format!(
        "_format_version: \"3.0\"\nservices:\n- name: coupon\n  host: 127.0.0.1\n  port: {port}\n  routes:\n  - name: coupon\n    paths: [/coupon]\n"
    )
}

/// Sends `head` one byte at a time until the gateway closes the connection; returns what
/// the gateway wrote back. Bounded: a gateway that never cuts the client off fails the test.
async fn trickle(port: u16, head: &'static [u8]) -> Vec<u8> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        for &b in head.iter().cycle() {
            if write.write_all(&[b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut out = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(20), read.read_to_end(&mut out)).await;
    writer.abort();
    assert!(
        closed.is_ok(),
        "the slow client was not cut off; it got {:?}",
        String::from_utf8_lossy(&out)
    );
    out
}

#[tokio::test]
async fn slow_loris_clients_are_cut_off_while_others_are_served() {
    let echo = echo_server("a").await;
    let gw = gateway(
        &coupon_config(echo.addr.port()),
        &[("KONG_NGINX_PROXY_CLIENT_HEADER_TIMEOUT", "1s")],
    )
    .await;
    let port = gw.proxy[0].port();
    let url = format!("http://127.0.0.1:{port}/coupon");
    let slow = tokio::spawn(trickle(port, b"GET /coupon HTTP/1.1\r\nX-Slow: a"));
    let slow_header = tokio::spawn(trickle(
        port,
        b"GET /coupon HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaa",
    ));
    // While both trickle, other connections are answered.
    for _ in 0..5 {
        let r = get(&url, &[]).await;
        assert_eq!(r.status, 200);
    }
    // nginx closes a connection whose head did not arrive in time without a response.
    assert_eq!(String::from_utf8_lossy(&slow.await.unwrap()), "");
    assert_eq!(String::from_utf8_lossy(&slow_header.await.unwrap()), "");
    assert_eq!(get(&url, &[]).await.status, 200);
    // A client that sends its head in time keeps its keep-alive connection.
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    for _ in 0..2 {
        stream
            .write_all(b"GET /coupon HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        assert!(
            String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
    gw.shutdown().await;
}

async fn raw(port: u16, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(request).await.ok();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .expect("the gateway closes the connection")
        .ok();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn oversized_request_lines_are_refused_and_serving_continues() {
    let echo = echo_server("a").await;
    let gw = gateway(&coupon_config(echo.addr.port()), &[]).await;
    let port = gw.proxy[0].port();
    // Over nginx's 8 KiB large_client_header_buffers, within the 64 KiB head bound.
    let long_line = format!(
        "GET /coupon/{} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    let reply = raw(port, long_line.as_bytes()).await;
    let status = reply.split(' ').nth(1).unwrap_or_default();
    assert!(
        status == "414",
        "an oversized request line is refused: {reply}"
    );
    let many_headers: String = (0..4000).map(|i| format!("X-H{i}: {i}\r\n")).collect();
    let reply = raw(
        port,
        format!("GET /coupon HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n").as_bytes(),
    )
    .await;
    // nginx (so Kong) answers an oversized header block 400, not 431.
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(
        reply.contains("Request header or cookie too large"),
        "{reply}"
    );
    assert_eq!(
        get(&format!("http://127.0.0.1:{port}/coupon"), &[])
            .await
            .status,
        200
    );
    gw.shutdown().await;
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The gateway binary as a child process, so that its descriptors can be counted alone.
struct Process {
    child: Child,
    proxy: u16,
    status: u16,
}

impl Drop for Process {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Process {
    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .unwrap()
            .count()
    }

    async fn status(&self) -> Value {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.status)).await else {
            return Value::Null;
        };
        let request = b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let mut out = Vec::new();
        if stream.write_all(request).await.is_err()
            || tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
                .await
                .is_err()
        {
            return Value::Null;
        }
        let reply = String::from_utf8_lossy(&out);
        let body = reply.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        serde_json::from_str(body).unwrap_or(Value::Null)
    }

    /// Waits (bounded) until only the status request itself is open and the descriptor
    /// count is at most `fds`; returns the last count seen.
    async fn settle(&self, fds: usize) -> (usize, Value) {
        let mut last = (usize::MAX, Value::Null);
        for _ in 0..100 {
            let status = self.status().await;
            let count = self.fds();
            let active = status["server"]["connections_active"].as_u64();
            if active == Some(1) && count <= fds {
                return (count, status);
            }
            last = (count, status);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        last
    }
}

async fn spawn_gateway(config: &str) -> Process {
    let (proxy, status) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_otelpipe-gateway"))
        .env("KONG_PROXY_LISTEN", format!("127.0.0.1:{proxy}"))
        .env("KONG_STATUS_LISTEN", format!("127.0.0.1:{status}"))
        .env("KONG_ADMIN_LISTEN", "off")
        .env("KONG_DECLARATIVE_CONFIG_STRING", config)
        .env("KONG_NGINX_PROXY_CLIENT_HEADER_TIMEOUT", "1s")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let process = Process {
        child,
        proxy,
        status,
    };
    for _ in 0..100 {
        if process.status().await.is_object() {
            return process;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the gateway did not start");
}

#[tokio::test]
async fn connections_opened_and_dropped_leave_no_descriptors_or_tasks() {
    let echo = echo_server("a").await;
    let gw = spawn_gateway(&coupon_config(echo.addr.port())).await;
    let url = format!("http://127.0.0.1:{}/coupon", gw.proxy);
    assert_eq!(get(&url, &[]).await.status, 200);
    let (before, _) = gw.settle(usize::MAX).await;

    let mut held = Vec::new();
    for i in 0..300 {
        let mut stream = TcpStream::connect(("127.0.0.1", gw.proxy)).await.unwrap();
        match i % 4 {
            // Connect and drop.
            0 => drop(stream),
            // Half a request line, then drop.
            1 => {
                stream.write_all(b"GET /cou").await.unwrap();
                drop(stream);
            }
            // Garbage: answered 400 and closed by the gateway.
            2 => {
                stream
                    .write_all(b"\x16\x03\x01 not http\r\n\r\n")
                    .await
                    .ok();
                drop(stream);
            }
            // Half a head, kept open until the header timeout cuts it.
            _ => {
                stream
                    .write_all(b"GET /coupon HTTP/1.1\r\nHost: x\r\n")
                    .await
                    .unwrap();
                held.push(stream);
            }
        }
        if i % 50 == 0 {
            assert_eq!(get(&url, &[]).await.status, 200, "served under abuse");
        }
    }
    let during = gw.fds();
    assert!(during > before, "the held connections use descriptors");
    for mut stream in held {
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut out))
            .await
            .expect("held connections are cut off by the header timeout")
            .ok();
    }
    let (after, status) = gw.settle(before).await;
    assert!(
        after <= before,
        "descriptors before {before}, after {after}: {status}"
    );
    assert_eq!(
        status["server"]["connections_active"], 1,
        "only the status request is open: {status}"
    );
    assert!(status["server"]["connections_handled"].as_u64() >= Some(300));
    assert_eq!(get(&url, &[]).await.status, 200);
}

#[tokio::test]
async fn admin_api_refuses_hostile_bodies_and_keeps_serving() {
    let gw = gateway("", &[]).await;
    let admin = format!("http://{}", gw.admin[0]);
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let huge_index = format!("name=s&host=h&tags[{}]=x", u64::MAX);
    let r = send("POST", &format!("{admin}/services"), &form, huge_index).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("index above 1000"));
    let deep = format!("name=s&host=h&{}=x", vec!["a"; 10_000].join("."));
    let r = send("POST", &format!("{admin}/services"), &form, deep).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("deeper than 32"));
    let nested_json = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let json = [("content-type", "application/json")];
    let r = send("POST", &format!("{admin}/services"), &json, nested_json).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let big = vec![b'a'; 16 * 1024 * 1024 + 1];
    let r = send("POST", &format!("{admin}/services"), &form, big).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.json()["message"], "Payload too large");
    let r = send("GET", &format!("{admin}/services"), &[], "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["data"], serde_json::json!([]));
    gw.shutdown().await;
}
