//! Requests rejected before routing get Kong's (nginx's) 400 bodies, and the listener keeps
//! serving.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{gateway, get};

async fn raw(port: u16, request: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("the gateway closes the connection")
        .ok();
    String::from_utf8_lossy(&out).into_owned()
}

fn body_and_id(reply: &str) -> (String, String) {
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    let rid = head
        .lines()
        .find_map(|l| l.strip_prefix("x-kong-request-id: "))
        .unwrap()
        .to_owned();
    (body.to_owned(), rid)
}

#[tokio::test]
async fn oversized_and_malformed_requests_get_kongs_400() {
    let gw = gateway("", &[]).await;
    let port = gw.proxy[0].port();

    let mut big = b"GET / HTTP/1.1\r\nhost: x\r\nx-big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 70 * 1024));
    big.extend_from_slice(b"\r\n\r\n");
    let reply = raw(port, &big).await;
    assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{reply}");
    assert!(reply.contains("content-type: text/plain; charset=utf-8\r\n"));
    assert!(reply.contains("server: kong/3.9.0\r\n"));
    let (body, rid) = body_and_id(&reply);
    assert_eq!(
        body,
        format!("Request header or cookie too large\nrequest_id: {rid}\n")
    );

    let reply = raw(port, b"GARBAGE\r\n\r\n").await;
    assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{reply}");
    let (body, rid) = body_and_id(&reply);
    assert_eq!(body, format!("Bad request\nrequest_id: {rid}\n"));

    let r = get(&format!("http://127.0.0.1:{port}/"), &[]).await;
    assert_eq!(r.status, 404, "the listener keeps serving");
    assert_eq!(
        gw.shared
            .counters
            .rejected_requests
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn a_blocked_upstream_write_times_out_with_504_after_write_timeout() {
    // An upstream that accepts connections and never reads from them.
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_port = upstream.local_addr().unwrap().port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = upstream.accept().await {
            held.push(s);
        }
    });
    let yaml = format!(
        "_format_version: \"3.0\"\nservices:\n- name: sink\n  host: 127.0.0.1\n  port: {upstream_port}\n  retries: 0\n  write_timeout: 200\n  routes:\n  - name: sink\n    paths: [/sink]\n"
    );
    let gw = gateway(&yaml, &[]).await;
    let port = gw.proxy[0].port();
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let total: usize = 256 * 1024 * 1024;
    let writer = tokio::spawn(async move {
        let head = format!("POST /sink HTTP/1.1\r\nhost: x\r\ncontent-length: {total}\r\n\r\n");
        if write.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..total / chunk.len() {
            if write.write_all(&chunk).await.is_err() {
                return;
            }
        }
    });
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Duration::from_secs(30);
    let status = tokio::time::timeout(deadline, async {
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => reply.extend_from_slice(&buf[..n]),
            }
            if String::from_utf8_lossy(&reply).contains("request_id: ") {
                break;
            }
        }
    })
    .await;
    assert!(
        status.is_ok(),
        "the gateway answers before the read timeout"
    );
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 504"), "{reply}");
    assert!(
        reply.contains("The upstream server is timing out"),
        "{reply}"
    );
    writer.abort();
    holder.abort();
    gw.shutdown().await;
}

/// A request line of exactly `len` bytes (CRLF excluded) for `GET /<path> HTTP/1.1`.
fn request_line(len: usize) -> String {
    let fixed = "GET / HTTP/1.1".len();
    format!("GET /{} HTTP/1.1", "p".repeat(len - fixed))
}

/// Sends `request` on a fresh connection and returns the status line of the reply.
async fn status_line(port: u16, request: &str) -> String {
    let reply = raw(port, request.as_bytes()).await;
    reply.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn request_and_header_lines_over_8k_get_414_and_400() {
    let gw = gateway("", &[]).await;
    let port = gw.proxy[0].port();
    // A keep-alive connection opened before the oversized requests keeps being served.
    let mut kept = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let close = "host: x\r\nconnection: close\r\n\r\n";

    // One 8 KiB buffer holds the line with its CRLF; one byte more is too long.
    let fits = format!("{}\r\n{close}", request_line(8190));
    assert_eq!(status_line(port, &fits).await, "HTTP/1.1 404 Not Found");
    let long = format!("{}\r\n{close}", request_line(8191));
    let reply = raw(port, long.as_bytes()).await;
    assert!(reply.starts_with("HTTP/1.1 414 "), "{reply}");
    assert!(reply.contains("content-type: text/plain; charset=utf-8\r\n"));
    assert!(reply.contains("connection: close\r\n"));
    assert!(reply.contains("server: kong/3.9.0\r\n"));
    let (body, rid) = body_and_id(&reply);
    assert_eq!(body, format!("URI too long\nrequest_id: {rid}\n"));

    let header = |len: usize| format!("x-big: {}", "h".repeat(len - "x-big: ".len()));
    let fits = format!("GET / HTTP/1.1\r\n{}\r\n{close}", header(8190));
    assert_eq!(status_line(port, &fits).await, "HTTP/1.1 404 Not Found");
    let big = format!(
        "GET / HTTP/1.1\r\naccept: application/json\r\n{}\r\n{close}",
        header(8191)
    );
    let reply = raw(port, big.as_bytes()).await;
    assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{reply}");
    assert!(reply.contains("content-type: application/json; charset=utf-8\r\n"));
    let (body, rid) = body_and_id(&reply);
    assert_eq!(
        body,
        format!("{{\n  \"message\":\"Request header or cookie too large\",\n  \"request_id\":\"{rid}\"\n}}")
    );

    kept.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), kept.read_to_end(&mut out))
        .await
        .expect("the earlier connection is answered")
        .unwrap();
    assert!(out.starts_with(b"HTTP/1.1 404 Not Found\r\n"));
    let r = get(&format!("http://127.0.0.1:{port}/"), &[]).await;
    assert_eq!(r.status, 404, "other clients keep being served");
    assert_eq!(
        gw.shared
            .counters
            .rejected_requests
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn request_lines_in_heads_over_64k_still_get_414() {
    let gw = gateway("", &[]).await;
    let port = gw.proxy[0].port();
    // A request line alone over hyper's 64 KiB head bound.
    let long = format!("{}\r\nhost: x\r\n\r\n", request_line(70 * 1024));
    let reply = raw(port, long.as_bytes()).await;
    assert!(reply.starts_with("HTTP/1.1 414 "), "{reply}");
    assert!(reply.contains("connection: close\r\n"));
    let (body, rid) = body_and_id(&reply);
    assert_eq!(body, format!("URI too long\nrequest_id: {rid}\n"));

    // The second request of a keep-alive connection.
    let mut pipelined = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n".to_vec();
    pipelined.extend_from_slice(long.as_bytes());
    let reply = raw(port, &pipelined).await;
    assert!(reply.starts_with("HTTP/1.1 404 "), "{reply}");
    let at = reply.find("HTTP/1.1 414 URI Too Long\r\n").expect(&reply);
    let second = &reply[at..];
    assert!(
        second.contains("\r\n\r\nURI too long\nrequest_id: "),
        "{reply}"
    );

    // A request line over 8 KiB that ended, then a header block over 64 KiB.
    let headers: String = (0..6000).map(|i| format!("x-h{i}: {i}\r\n")).collect();
    let big = format!("{}\r\n{headers}\r\n", request_line(10 * 1024));
    let reply = raw(port, big.as_bytes()).await;
    assert!(reply.starts_with("HTTP/1.1 414 "), "{reply}");

    // A short request line with a header block over 64 KiB stays Kong's 400.
    let big = format!("GET / HTTP/1.1\r\n{headers}\r\n");
    let reply = raw(port, big.as_bytes()).await;
    assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{reply}");
    assert!(
        reply.contains("Request header or cookie too large"),
        "{reply}"
    );
    assert_eq!(
        gw.shared
            .counters
            .rejected_requests
            .load(std::sync::atomic::Ordering::Relaxed),
        4
    );
    gw.shutdown().await;
}
