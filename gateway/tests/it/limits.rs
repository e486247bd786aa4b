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
