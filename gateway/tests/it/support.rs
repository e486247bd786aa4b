//! Test support: an echo upstream on an ephemeral port, a gateway started in-process, and a
//! small HTTP client.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use otelpipe_gateway::conf::KongConf;
use otelpipe_gateway::declarative;
use otelpipe_gateway::server::Gateway;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// An upstream that answers every request with a JSON report of what it received.
///
/// Paths: `/slow` waits 3 s; `/status/<n>` answers status n; `/stream/<n>` sends n chunks of
/// 16 KiB; anything else echoes.
pub(crate) struct Echo {
    pub(crate) addr: SocketAddr,
    /// Requests received.
    pub(crate) hits: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Echo {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
    }
}

type EchoBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

async fn echo(name: String, req: Request<Incoming>) -> Response<EchoBody> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    if path.ends_with("/slow") {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    if path.ends_with("/stall") {
        return Response::new(BodyExt::boxed(Stall(false)));
    }
    if let Some(n) = path
        .rsplit_once("/stream/")
        .and_then(|(_, n)| n.parse::<usize>().ok())
    {
        return Response::new(BodyExt::boxed(Chunks(n)));
    }
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let headers: Vec<Value> = parts
        .headers
        .iter()
        .map(|(k, v)| json!([k.as_str(), v.to_str().unwrap_or_default()]))
        .collect();
    let report = json!({
        "upstream": name,
        "method": parts.method.as_str(),
        "uri": parts.uri.to_string(),
        "version": format!("{:?}", parts.version),
        "headers": headers,
        "body_len": bytes.len(),
    });
    let status = path
        .rsplit_once("/status/")
        .and_then(|(_, n)| n.parse::<u16>().ok())
        .unwrap_or(200);
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .header("x-powered-by", "Echo")
        .body(BodyExt::boxed(Full::new(Bytes::from(report.to_string()))))
        .unwrap()
}

/// A body that sends one chunk, then nothing more, ever.
struct Stall(bool);

impl hyper::body::Body for Stall {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.0 {
            return std::task::Poll::Pending;
        }
        self.0 = true;
        std::task::Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"first")))))
    }
}

/// A body of n chunks of 16 KiB, produced one at a time.
struct Chunks(usize);

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.0 == 0 {
            return std::task::Poll::Ready(None);
        }
        self.0 -= 1;
        std::task::Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'x'; 16 * 1024])))))
    }
}

/// Starts an echo upstream named `name` on 127.0.0.1:0.
pub(crate) async fn echo_server(name: &str) -> Echo {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, mut stopped) = oneshot::channel::<()>();
    let name = name.to_owned();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted { Ok(a) => a, Err(_) => continue },
                _ = &mut stopped => break,
            };
            let name = name.clone();
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let name = name.clone();
                    counter.fetch_add(1, Ordering::Relaxed);
                    async move { Ok::<_, Infallible>(echo(name, req).await) }
                });
                hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                    .ok();
            });
        }
    });
    Echo {
        addr,
        hits,
        stop: Some(stop),
    }
}

/// A port nothing listens on.
pub(crate) async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// Starts a gateway on ephemeral ports with `yaml` as its declarative configuration.
pub(crate) async fn gateway(yaml: &str, env: &[(&str, &str)]) -> Gateway {
    let mut vars: Vec<(String, String)> = vec![
        ("KONG_PROXY_LISTEN".into(), "127.0.0.1:0".into()),
        ("KONG_ADMIN_LISTEN".into(), "127.0.0.1:0".into()),
        ("KONG_STATUS_LISTEN".into(), "127.0.0.1:0".into()),
    ];
    vars.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let conf = KongConf::load(None, vars).unwrap();
    let config = if yaml.is_empty() {
        declarative::Config::default()
    } else {
        declarative::load_str("test.yaml", yaml).unwrap()
    };
    Gateway::start(conf, config).await.unwrap()
}

/// A response as the tests read it.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The upstream's report: value of request header `name`.
    pub(crate) fn upstream_header(&self, name: &str) -> Option<String> {
        self.json()["headers"]
            .as_array()?
            .iter()
            .find(|h| h[0] == name)
            .and_then(|h| h[1].as_str().map(str::to_owned))
    }
}

/// Sends one HTTP/1.1 request.
pub(crate) async fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let mut builder = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let response = tokio::time::timeout(
        Duration::from_secs(20),
        client.request(builder.body(Full::new(body.into())).unwrap()),
    )
    .await
    .expect("request timed out")
    .expect("request failed");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// GET with headers.
pub(crate) async fn get(url: &str, headers: &[(&str, &str)]) -> Reply {
    send("GET", url, headers, Bytes::new()).await
}

/// An upstream that accepts WebSocket upgrades and then echoes raw bytes; the 101 response
/// reports the `Connection` and `Upgrade` headers it received.
pub(crate) async fn upgrade_echo_server() -> Echo {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, mut stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted { Ok(a) => a, Err(_) => continue },
                _ = &mut stopped => break,
            };
            tokio::spawn(async move {
                let service = service_fn(|mut req: Request<Incoming>| async move {
                    let seen = |name| {
                        req.headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    let (connection, upgrade) = (seen("connection"), seen("upgrade"));
                    let on_upgrade = hyper::upgrade::on(&mut req);
                    tokio::spawn(async move {
                        if let Ok(upgraded) = on_upgrade.await {
                            let mut io = TokioIo::new(upgraded);
                            let mut buf = [0u8; 1024];
                            while let Ok(n) = tokio::io::AsyncReadExt::read(&mut io, &mut buf).await
                            {
                                if n == 0
                                    || tokio::io::AsyncWriteExt::write_all(&mut io, &buf[..n])
                                        .await
                                        .is_err()
                                {
                                    break;
                                }
                            }
                        }
                    });
                    Ok::<_, Infallible>(
                        Response::builder()
                            .status(101)
                            .header("connection", "Upgrade")
                            .header("upgrade", "websocket")
                            .header("x-seen-connection", connection)
                            .header("x-seen-upgrade", upgrade)
                            .body(Full::new(Bytes::new()))
                            .unwrap(),
                    )
                });
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await
                    .ok();
            });
        }
    });
    Echo {
        addr,
        hits: Arc::new(AtomicUsize::new(0)),
        stop: Some(stop),
    }
}

/// An upstream that answers every connection with one HTTP/1.0 response and closes it.
pub(crate) async fn http10_server() -> Echo {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, mut stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted { Ok(a) => a, Err(_) => continue },
                _ = &mut stopped => break,
            };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let reply = b"HTTP/1.0 200 OK\r\nServer: old/1.0\r\nContent-Length: 2\r\n\r\nok";
                tokio::io::AsyncWriteExt::write_all(&mut stream, reply)
                    .await
                    .ok();
            });
        }
    });
    Echo {
        addr,
        hits: Arc::new(AtomicUsize::new(0)),
        stop: Some(stop),
    }
}

/// A TLS acceptor with a self-signed certificate for `localhost` made with the openssl CLI
/// (the directory holding the key and certificate lives as long as the returned guard).
pub(crate) fn self_signed_acceptor() -> (tokio_rustls::TlsAcceptor, tempfile::TempDir) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(&key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    (tokio_rustls::TlsAcceptor::from(Arc::new(config)), dir)
}

/// An HTTPS upstream with a self-signed certificate for `localhost` (made with the openssl
/// CLI); it answers with the TLS server name (SNI) and the request URI it received.
pub(crate) async fn tls_echo_server() -> (Echo, tempfile::TempDir) {
    let (acceptor, dir) = self_signed_acceptor();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, mut stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted { Ok(a) => a, Err(_) => continue },
                _ = &mut stopped => break,
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let sni = tls.get_ref().1.server_name().unwrap_or_default().to_owned();
                let service = service_fn(move |req: Request<Incoming>| {
                    let report = json!({"sni": sni, "uri": req.uri().to_string(),
                        "host": req.headers().get("host").and_then(|v| v.to_str().ok())});
                    async move {
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(
                            report.to_string(),
                        ))))
                    }
                });
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await
                    .ok();
            });
        }
    });
    let echo = Echo {
        addr,
        hits: Arc::new(AtomicUsize::new(0)),
        stop: Some(stop),
    };
    (echo, dir)
}

/// An HTTPS server with `config` that answers every request with `ok`.
pub(crate) async fn tls_server(config: Arc<rustls::ServerConfig>) -> Echo {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, mut stopped) = oneshot::channel::<()>();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted { Ok(a) => a, Err(_) => continue },
                _ = &mut stopped => break,
            };
            let (acceptor, counter) = (acceptor.clone(), Arc::clone(&counter));
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = service_fn(move |_req: Request<Incoming>| {
                    counter.fetch_add(1, Ordering::Relaxed);
                    async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("ok")))) }
                });
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await
                    .ok();
            });
        }
    });
    Echo {
        addr,
        hits,
        stop: Some(stop),
    }
}
