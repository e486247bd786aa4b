//! The client against real sockets on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::pool::Pool;
use super::{send, Error, Outgoing, Timeouts};
use crate::proxy::body;

/// A server answering each request on a connection with `reply(n)` (n counts requests over
/// all connections), closing the connection after it when `close_after` says so.
struct Server {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<tokio::sync::Mutex<Vec<Vec<u8>>>>,
}

async fn server(reply: fn(usize) -> Vec<u8>, close_after: bool) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let (c, r) = (Arc::clone(&connections), Arc::clone(&requests));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            let r = Arc::clone(&r);
            tokio::spawn(serve(stream, r, reply, close_after));
        }
    });
    Server {
        addr,
        connections,
        requests,
    }
}

async fn serve(
    mut stream: TcpStream,
    requests: Arc<tokio::sync::Mutex<Vec<Vec<u8>>>>,
    reply: fn(usize) -> Vec<u8>,
    close_after: bool,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // One request: its head, then a body of content-length bytes or up to "0\r\n\r\n".
        let request = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                let total = match length {
                    Some(n) => (buf.len() >= end + 4 + n).then_some(end + 4 + n),
                    None if head.contains("transfer-encoding: chunked") => buf[end + 4..]
                        .windows(5)
                        .position(|w| w == b"0\r\n\r\n")
                        .map(|p| end + 4 + p + 5),
                    None => Some(end + 4),
                };
                if let Some(total) = total {
                    break buf.drain(..total).collect::<Vec<u8>>();
                }
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let n = {
            let mut all = requests.lock().await;
            all.push(request);
            all.len()
        };
        if stream.write_all(&reply(n)).await.is_err() || close_after {
            return;
        }
    }
}

fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(5),
        read: Duration::from_secs(5),
        write: Duration::from_secs(5),
    }
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, HeaderValue::from_static(v));
    }
    h
}

async fn get(
    pool: &Arc<Pool>,
    addr: SocketAddr,
    method: &Method,
    body: Option<body::ProxyBody>,
    h: &HeaderMap,
) -> Result<(u16, HeaderMap, Bytes), Error> {
    let out = Outgoing {
        method,
        path_and_query: "/p?q=1",
        headers: h,
    };
    let (response, _) = send(pool, addr, timeouts(), &out, body).await?;
    let status = response.status().as_u16();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.map_err(|_| Error::Closed)?.to_bytes();
    Ok((status, parts.headers, bytes))
}

#[tokio::test]
async fn keep_alive_connections_are_reused_after_the_body_ends() {
    let s = server(
        |n| format!("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-N: {n}\r\n\r\nok").into_bytes(),
        false,
    )
    .await;
    let pool = Arc::new(Pool::default());
    let h = headers(&[("host", "up"), ("x-a", "1")]);
    for n in 1..=3 {
        let (status, headers, body) = get(&pool, s.addr, &Method::GET, None, &h).await.unwrap();
        assert_eq!((status, &body[..]), (200, &b"ok"[..]));
        assert_eq!(headers["x-n"], n.to_string().as_str());
        assert_eq!(pool.idle_count(s.addr), 1);
    }
    assert_eq!(s.connections.load(Ordering::SeqCst), 1);
    let first = String::from_utf8(s.requests.lock().await[0].clone()).unwrap();
    assert_eq!(first, "GET /p?q=1 HTTP/1.1\r\nhost: up\r\nx-a: 1\r\n\r\n");
}

#[tokio::test]
async fn a_connection_the_upstream_closed_is_replaced_transparently() {
    // No `Connection: close`, yet the server closes after each response.
    let s = server(
        |_| b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx".to_vec(),
        true,
    )
    .await;
    let pool = Arc::new(Pool::default());
    let h = headers(&[("host", "up")]);
    for _ in 0..3 {
        let (status, _, body) = get(&pool, s.addr, &Method::GET, None, &h).await.unwrap();
        assert_eq!((status, &body[..]), (200, &b"x"[..]));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(s.connections.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn chunked_and_close_delimited_bodies_and_connection_close() {
    let pool = Arc::new(Pool::default());
    let h = headers(&[("host", "up")]);
    let chunked = server(
        |_| b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nx-t: 1\r\n\r\n".to_vec(),
        false,
    )
    .await;
    let (_, _, body) = get(&pool, chunked.addr, &Method::GET, None, &h)
        .await
        .unwrap();
    assert_eq!(&body[..], b"abcde");
    assert_eq!(
        pool.idle_count(chunked.addr),
        1,
        "a chunked body ends cleanly"
    );

    let old = server(|_| b"HTTP/1.0 200 OK\r\n\r\nuntil close".to_vec(), true).await;
    let (_, _, body) = get(&pool, old.addr, &Method::GET, None, &h).await.unwrap();
    assert_eq!(&body[..], b"until close");
    assert_eq!(pool.idle_count(old.addr), 0);

    let closing = server(
        |_| b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n".to_vec(),
        true,
    )
    .await;
    let (status, _, body) = get(&pool, closing.addr, &Method::GET, None, &h)
        .await
        .unwrap();
    assert_eq!((status, body.len()), (204, 0));
    assert_eq!(pool.idle_count(closing.addr), 0);

    let head = server(
        |_| b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n".to_vec(),
        false,
    )
    .await;
    let (_, headers, body) = get(&pool, head.addr, &Method::HEAD, None, &h)
        .await
        .unwrap();
    assert_eq!(
        (headers["content-length"].as_bytes(), body.len()),
        (&b"99"[..], 0)
    );
    assert_eq!(pool.idle_count(head.addr), 1);
}

#[tokio::test]
async fn request_bodies_keep_their_length_or_are_chunked() {
    let s = server(
        |_| {
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
                .to_vec()
        },
        false,
    )
    .await;
    let pool = Arc::new(Pool::default());
    let sized = headers(&[("host", "up"), ("content-length", "5")]);
    let (status, _, _) = get(
        &pool,
        s.addr,
        &Method::POST,
        Some(body::full("hello")),
        &sized,
    )
    .await
    .unwrap();
    assert_eq!(status, 201, "the interim 100 is skipped");
    let open_ended = headers(&[("host", "up")]);
    get(
        &pool,
        s.addr,
        &Method::POST,
        Some(body::full("hello")),
        &open_ended,
    )
    .await
    .unwrap();
    let requests = s.requests.lock().await;
    assert!(requests[0].ends_with(b"content-length: 5\r\n\r\nhello"));
    assert!(
        requests[1].ends_with(b"transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        "{}",
        String::from_utf8_lossy(&requests[1])
    );
}

#[tokio::test]
async fn invalid_responses_refused_connections_and_stalls_are_errors() {
    let pool = Arc::new(Pool::default());
    let h = headers(&[("host", "up")]);
    let garbage = server(|_| b"SMTP ready\r\n\r\n".to_vec(), false).await;
    let e = get(&pool, garbage.addr, &Method::GET, None, &h)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e}");

    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let e = get(&pool, addr, &Method::GET, None, &h).await.unwrap_err();
    assert!(e.is_connect(), "{e}");

    let short = server(
        |_| b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec(),
        true,
    )
    .await;
    let out = Outgoing {
        method: &Method::GET,
        path_and_query: "/",
        headers: &h,
    };
    let (response, _) = send(&pool, short.addr, timeouts(), &out, None)
        .await
        .unwrap();
    assert!(response.into_body().collect().await.is_err(), "cut body");

    let stall = server(
        |_| b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec(),
        false,
    )
    .await;
    let quick = Timeouts {
        connect: Duration::from_secs(5),
        read: Duration::from_millis(100),
        write: Duration::from_secs(5),
    };
    let (response, _) = send(&pool, stall.addr, quick, &out, None).await.unwrap();
    let e = response.into_body().collect().await.unwrap_err();
    assert_eq!(e.to_string(), Error::ReadTimeout.to_string());
}
