use super::*;

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

fn build(yaml: &str) -> Arc<dyn Component> {
    let raw: RawConfig = yaml_serde::from_str(yaml).unwrap();
    FACTORY
        .create(&ComponentId::new("health_check"), &raw)
        .unwrap()
}

/// Starts the extension from `yaml` with the pipelines' readiness at `ready`.
async fn start(yaml: &str, ready: bool) -> (HealthCheck, watch::Sender<bool>) {
    let raw: RawConfig = yaml_serde::from_str(yaml).unwrap();
    let ext = HealthCheck {
        config: Arc::new(decode::<Config>(&raw).unwrap()),
        stop: CancellationToken::new(),
        tasks: TaskTracker::new(),
        bound: Mutex::new(None),
    };
    let (ready_tx, ready) = watch::channel(ready);
    let host = Host {
        ready,
        shutdown: CancellationToken::new(),
        extensions: Default::default(),
    };
    ext.start(&host).await.unwrap();
    (ext, ready_tx)
}

#[tokio::test]
async fn reports_readiness_on_every_path() {
    let (ext, ready_tx) = start("endpoint: 127.0.0.1:0", false).await;
    let addr = ext.local_addr().unwrap();

    let (status, body) = get(addr, "/").await;
    assert_eq!(status, 503);
    assert_eq!(
        body,
        r#"{"status":"Server not available","upSince":"0001-01-01T00:00:00Z","uptime":""}"#
    );

    ready_tx.send_replace(true);
    // The watcher task records the moment; poll until it has (bounded).
    let mut answer = get(addr, "/health/status").await;
    for _ in 0..100 {
        if answer.0 == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        answer = get(addr, "/health/status").await;
    }
    let (status, body) = answer;
    assert_eq!(status, 200);
    assert!(
        body.starts_with(r#"{"status":"Server available","upSince":""#),
        "{body}"
    );
    assert!(body.contains(r#""uptime":""#), "{body}");

    ready_tx.send_replace(false);
    for _ in 0..100 {
        if get(addr, "/").await.0 == 503 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(get(addr, "/").await.0, 503);

    ext.shutdown().await.unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn shutdown_without_start_is_safe() {
    build("endpoint: 127.0.0.1:0").shutdown().await.unwrap();
}

#[test]
fn config_defaults_and_errors() {
    let config = decode::<Config>(&RawConfig::Null).unwrap();
    assert_eq!(config.endpoint, "localhost:13133");
    assert_eq!(config.path, "/");
    let raw: RawConfig = yaml_serde::from_str("path: health").unwrap();
    assert_eq!(
        FACTORY.validate(&raw).unwrap_err().to_string(),
        "path: must start with \"/\""
    );
    let raw: RawConfig = yaml_serde::from_str("endpont: x").unwrap();
    let err = FACTORY.validate(&raw).unwrap_err();
    assert_eq!(err.path, vec!["endpont"]);
}

#[test]
fn server_timeouts_default_as_confighttp_and_decode() {
    let config = decode::<Config>(&RawConfig::Null).unwrap();
    assert_eq!(
        config.timeouts(),
        crate::tls::serve::Timeouts::SERVER_DEFAULTS
    );
    let raw: RawConfig = yaml_serde::from_str(
        "read_timeout: 1s\nread_header_timeout: 2s\nwrite_timeout: 3s\nidle_timeout: 4s",
    )
    .unwrap();
    let t = decode::<Config>(&raw).unwrap().timeouts();
    assert_eq!(
        (t.read, t.read_header, t.write, t.idle),
        (
            std::time::Duration::from_secs(1),
            std::time::Duration::from_secs(2),
            std::time::Duration::from_secs(3),
            std::time::Duration::from_secs(4)
        )
    );
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_idle_timeout() {
    use tokio::io::AsyncReadExt;
    let (ext, _ready_tx) = start("endpoint: 127.0.0.1:0\nidle_timeout: 200ms", true).await;
    let addr = ext.local_addr().unwrap();
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), idle.read(&mut buf))
        .await
        .expect("the server closes the idle connection");
    assert_eq!(read.unwrap_or(0), 0, "closed without an answer");
    assert_eq!(get(addr, "/").await.0, 200, "others are still served");
    ext.shutdown().await.unwrap();
}
