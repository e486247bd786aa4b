//! The tcplog receiver over real sockets on 127.0.0.1, feeding a capture consumer.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::*;
use crate::pipeline::{Batch, Capture};
use crate::receivers::stanza::value;

const KONG: &str = include_str!("../../../tests/fixtures/kong/tcp-log-wire-proxied.ndjson");

struct Running {
    receiver: Arc<Receiver>,
    logs: Arc<Capture>,
    addr: SocketAddr,
}

async fn start(yaml: &str) -> Running {
    let raw: RawConfig = yaml_serde::from_str(yaml).unwrap();
    let (config, input) = decode_config(&raw).unwrap();
    let logs = Arc::new(Capture::new());
    let mut consumers = ReceiverConsumers::default();
    consumers.set(Signal::Logs, logs.clone());
    let receiver = Arc::new(Receiver::new("tcplog", config, input, consumers));
    let (_tx, ready) = watch::channel(true);
    receiver
        .start(&Host {
            ready,
            shutdown: CancellationToken::new(),
            extensions: Default::default(),
        })
        .await
        .unwrap();
    let addr = receiver.local_addr().unwrap();
    Running {
        receiver,
        logs,
        addr,
    }
}

fn records(capture: &Capture) -> Vec<LogRecord> {
    capture
        .batches()
        .into_iter()
        .flat_map(|b| match b {
            Batch::Logs(rl) => rl,
            _ => Vec::new(),
        })
        .flat_map(|rl| rl.scope_logs)
        .flat_map(|sl| sl.log_records)
        .collect()
}

async fn wait_for(capture: &Capture, n: usize) -> Vec<LogRecord> {
    for _ in 0..500 {
        if capture.item_count() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    records(capture)
}

fn body(r: &LogRecord) -> String {
    value::as_str(r.body.as_ref().unwrap()).unwrap().to_owned()
}

fn attr<'a>(r: &'a LogRecord, key: &str) -> Option<&'a AnyValue> {
    value::get(&r.attributes, key)
}

async fn send(addr: SocketAddr, data: &[u8]) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(data).await.unwrap();
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn kong_lines_become_records_with_parsed_attributes() {
    let r = start("listen_address: 127.0.0.1:0\noperators:\n  - type: json_parser\n").await;
    send(r.addr, KONG.as_bytes()).await;
    let got = wait_for(&r.logs, 2).await;
    assert_eq!(got.len(), 2);
    let lines: Vec<&str> = KONG.lines().collect();
    assert_eq!(body(&got[0]), lines[0], "the body stays the raw line");
    assert_eq!(got[0].time_unix_nano, 0);
    assert!(got[0].observed_time_unix_nano > 0);
    let status = value::get(
        value::as_map(attr(&got[0], "response").unwrap()).unwrap(),
        "status",
    )
    .unwrap();
    assert_eq!(status.value, Some(any_value::Value::DoubleValue(200.0)));
    assert_eq!(
        attr(&got[0], "started_at").unwrap().value,
        Some(any_value::Value::DoubleValue(1_738_765_016_123.0))
    );
    assert_eq!(attr(&got[0], "client_ip"), Some(&value::string("10.0.0.5")));
    let uri = value::get(
        value::as_map(attr(&got[0], "request").unwrap()).unwrap(),
        "uri",
    )
    .unwrap();
    assert_eq!(
        uri,
        &value::string("/coupon/apply?code=SAVE10"),
        "\\/ unescaped"
    );
    assert!(matches!(
        attr(&got[0], "tries").unwrap().value,
        Some(any_value::Value::ArrayValue(_))
    ));
    assert!(value::as_map(attr(&got[0], "trace_id").unwrap()).is_some());
    assert_eq!(
        attr(&got[1], "trace_id"),
        Some(&value::string("4bf92f3577b34da6a3ce929d0e0e4736"))
    );
    r.receiver.shutdown().await.unwrap();
}

#[tokio::test]
async fn splitting_crlf_empty_lines_eof_flush_and_bad_bytes() {
    let r = start("listen_address: 127.0.0.1:0").await;
    send(r.addr, b"one\r\n\n  two \nbad\xff\x00byte\nlast").await;
    let got = wait_for(&r.logs, 5).await;
    let bodies: Vec<String> = got.iter().map(body).collect();
    assert_eq!(
        bodies,
        vec!["one", "", "two", "bad\u{fffd}\u{0}byte", "last"]
    );
    r.receiver.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_over_long_line_closes_only_its_connection_and_is_counted() {
    let r = start("listen_address: 127.0.0.1:0\nmax_log_size: 64KiB").await;
    let mut long = b"before\n".to_vec();
    long.extend(std::iter::repeat_n(b'x', 70 << 10));
    long.extend_from_slice(b"\nafter\n");
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    // The receiver may close while this is still writing.
    s.write_all(&long).await.ok();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the receiver closes the connection");
    send(r.addr, b"other\n").await;
    let got = wait_for(&r.logs, 2).await;
    let bodies: Vec<String> = got.iter().map(body).collect();
    assert!(bodies.contains(&"before".to_owned()), "{bodies:?}");
    assert!(bodies.contains(&"other".to_owned()), "{bodies:?}");
    assert!(
        !bodies.contains(&"after".to_owned()),
        "the rest of that stream is lost"
    );
    r.receiver.shutdown().await.unwrap();
}

#[tokio::test]
async fn thousands_of_dropped_connections_leave_nothing_behind() {
    let r = start("listen_address: 127.0.0.1:0").await;
    for _ in 0..20 {
        let mut batch = Vec::new();
        for _ in 0..100 {
            batch.push(TcpStream::connect(r.addr).await.unwrap());
        }
        for (i, mut s) in batch.into_iter().enumerate() {
            if i % 2 == 0 {
                s.write_all(b"half a li").await.ok();
            }
        }
    }
    for _ in 0..500 {
        if r.receiver.active_connections() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(r.receiver.active_connections(), 0);
    send(r.addr, b"still here\n").await;
    let got = wait_for(&r.logs, 1001).await;
    assert!(got.iter().any(|g| body(g) == "still here"));
    assert_eq!(
        got.iter().filter(|g| body(g) == "half a li").count(),
        1000,
        "partial lines are flushed at EOF"
    );
    r.receiver.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_stalled_client_does_not_block_others_and_connections_are_bounded() {
    let r = start("listen_address: 127.0.0.1:0\nmax_connections: 2").await;
    let mut slow = TcpStream::connect(r.addr).await.unwrap();
    slow.write_all(b"{\"partial\": ").await.unwrap();
    let mut second = TcpStream::connect(r.addr).await.unwrap();
    second.write_all(b"fast\n").await.unwrap();
    let got = wait_for(&r.logs, 1).await;
    assert_eq!(body(&got[0]), "fast");
    for _ in 0..500 {
        if r.receiver.active_connections() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut third = TcpStream::connect(r.addr).await.unwrap();
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(10), third.read(&mut buf))
        .await
        .unwrap();
    assert!(
        matches!(n, Ok(0) | Err(_)),
        "the connection over the bound is closed"
    );
    slow.write_all(b"1}\n").await.unwrap();
    let got = wait_for(&r.logs, 2).await;
    assert_eq!(body(&got[1]), "{\"partial\": 1}");
    drop(second);
    r.receiver.shutdown().await.unwrap();
}

#[tokio::test]
async fn add_attributes_one_log_per_packet_and_config_attributes() {
    let r = start("listen_address: 127.0.0.1:0\nadd_attributes: true\none_log_per_packet: true\nattributes: {source: kong}\nresource: {service.name: gw}").await;
    send(r.addr, b"line one\nline two\n").await;
    let got = wait_for(&r.logs, 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(body(&got[0]), "line one\nline two\n");
    assert_eq!(
        attr(&got[0], "net.transport"),
        Some(&value::string("IP.TCP"))
    );
    assert_eq!(
        attr(&got[0], "net.peer.ip"),
        Some(&value::string("127.0.0.1"))
    );
    assert_eq!(
        attr(&got[0], "net.host.port"),
        Some(&value::string(r.addr.port().to_string()))
    );
    assert!(value::as_str(attr(&got[0], "net.peer.port").unwrap())
        .unwrap()
        .parse::<u16>()
        .is_ok());
    assert!(attr(&got[0], "net.peer.name").is_some());
    assert_eq!(attr(&got[0], "source"), Some(&value::string("kong")));
    let batches = r.logs.batches();
    let Batch::Logs(rl) = &batches[0] else {
        panic!("logs")
    };
    assert_eq!(
        value::get(&rl[0].resource.as_ref().unwrap().attributes, "service.name"),
        Some(&value::string("gw"))
    );
    r.receiver.shutdown().await.unwrap();
}

#[tokio::test]
async fn multiline_and_timestamp_block() {
    let r = start("listen_address: 127.0.0.1:0\nmultiline: {line_start_pattern: '^\\{'}\noperators:\n  - type: json_parser\n    timestamp: {parse_from: attributes.t, layout_type: epoch, layout: ms}").await;
    send(r.addr, b"{\"t\": 1000,\n \"a\": 1}\n{\"t\": 2000}\n").await;
    let got = wait_for(&r.logs, 2).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].time_unix_nano, 1_000_000_000);
    assert_eq!(got[1].time_unix_nano, 2_000_000_000);
    r.receiver.shutdown().await.unwrap();
}

#[test]
fn config_errors_name_the_field() {
    let err = |yaml: &str| {
        decode_config(&yaml_serde::from_str(yaml).unwrap())
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err("max_log_size: 1MiB"),
        "missing required parameter 'listen_address'"
    );
    assert!(err("listen_address: 'no-such-host.invalid:1'")
        .contains("failed to resolve listen_address"));
    assert!(err("listen_address: ':0'\nmax_log_size: 1KiB")
        .contains("must be equal to or greater than 65536"));
    assert_eq!(
        err("listen_address: ':0'\ntls: {cert_file: a}"),
        "tls: for auth via TLS, provide both certificate and key, or neither"
    );
    assert_eq!(
        err("listen_address: ':0'\ntls: {cert_file: a, key_file: b, min_version: '1.4'}"),
        "tls::min_version: invalid TLS min_version: unsupported TLS version: \"1.4\""
    );
    assert!(
        err("listen_address: ':0'\nmultiline: {line_start_pattern: a, line_end_pattern: b}")
            .contains("only one of")
    );
    assert!(
        err("listen_address: ':0'\nencoding: nop\nmultiline: {line_start_pattern: a}")
            .contains("nop encoding")
    );
    assert!(err("listen_address: ':0'\nencoding: klingon")
        .starts_with("encoding: unsupported encoding"));
    assert_eq!(err("listen_address: ':0'\nlisten: x"), "listen: unknown field `listen`, expected one of `listen_address`, `max_log_size`, `encoding`, `multiline`, `preserve_leading_whitespaces`, `preserve_trailing_whitespaces`, `one_log_per_packet`, `add_attributes`, `attributes`, `resource`, `tls`, `operators`, `storage`, `retry_on_failure`, `max_connections`, `connection_idle_timeout`");
    assert!(
        err("listen_address: ':0'\noperators: [{type: regex_parser}]")
            .starts_with("operators::0::regex: missing required field 'regex'")
    );
}

#[tokio::test]
async fn a_refused_batch_is_dropped_unless_retry_is_enabled() {
    use crate::pipeline::ConsumeError;
    let r = start("listen_address: 127.0.0.1:0").await;
    r.logs.refuse_next(vec![ConsumeError::retryable("full")]);
    send(r.addr, b"lost\n").await;
    // Later lines go in later batches once the refused one is gone.
    for i in 0..200 {
        if r.logs.item_count() > 0 {
            break;
        }
        send(r.addr, format!("kept {i}\n").as_bytes()).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = wait_for(&r.logs, 1).await;
    assert!(got.iter().all(|g| body(g) != "lost"));
    assert!(got.iter().any(|g| body(g).starts_with("kept")));
    r.receiver.shutdown().await.unwrap();

    let r = start(
        "listen_address: 127.0.0.1:0\nretry_on_failure: {enabled: true, initial_interval: 10ms}",
    )
    .await;
    r.logs.refuse_next(vec![
        ConsumeError::retryable("full"),
        ConsumeError::retryable("full"),
    ]);
    send(r.addr, b"retried\n").await;
    let got = wait_for(&r.logs, 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(body(&got[0]), "retried");
    r.receiver.shutdown().await.unwrap();
}

#[tokio::test]
async fn utf16_and_nop_encodings() {
    let r = start("listen_address: 127.0.0.1:0\nencoding: utf-16le").await;
    let text: Vec<u8> = "héllo\r\nwörld\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    send(r.addr, &text).await;
    let got = wait_for(&r.logs, 2).await;
    assert_eq!(
        got.iter().map(body).collect::<Vec<_>>(),
        vec!["héllo", "wörld"]
    );
    r.receiver.shutdown().await.unwrap();

    let r = start("listen_address: 127.0.0.1:0\nencoding: nop").await;
    send(r.addr, b"raw\nbytes\n").await;
    let got = wait_for(&r.logs, 1).await;
    assert_eq!(got.len(), 1, "nop does not split");
    assert_eq!(
        got[0].body.as_ref().unwrap().value,
        Some(any_value::Value::BytesValue(b"raw\nbytes\n".to_vec()))
    );
    r.receiver.shutdown().await.unwrap();
}

#[tokio::test]
async fn idle_connections_are_closed_when_configured() {
    let r = start("listen_address: 127.0.0.1:0\nconnection_idle_timeout: 50ms").await;
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    s.write_all(b"partial").await.unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the receiver closed the idle connection");
    let got = wait_for(&r.logs, 1).await;
    assert_eq!(body(&got[0]), "partial", "what was read is flushed");
    r.receiver.shutdown().await.unwrap();
}

#[tokio::test]
async fn recombine_flushes_on_its_timer_and_at_shutdown() {
    // A short flush period: the open batch comes out on the timer, with no later line.
    let r = start(
        "listen_address: 127.0.0.1:0
preserve_leading_whitespaces: true
operators:
  - type: recombine
    combine_field: body
    is_first_entry: 'body matches \"^[^\\\\s]\"'
    force_flush_period: 200ms
",
    )
    .await;
    send(r.addr, b"first\n  more\nsecond\n  tail\n").await;
    let got = wait_for(&r.logs, 2).await;
    let bodies: Vec<String> = got.iter().map(body).collect();
    assert_eq!(bodies, vec!["first\n  more", "second\n  tail"]);
    r.receiver.shutdown().await.unwrap();

    // A long period: the open batch comes out when the receiver shuts down.
    let r = start(
        "listen_address: 127.0.0.1:0
operators:
  - type: recombine
    combine_field: body
    is_last_entry: 'body == \"end\"'
    force_flush_period: 1h
",
    )
    .await;
    send(r.addr, b"a\nb\nend\nopen\n").await;
    let got = wait_for(&r.logs, 1).await;
    assert_eq!(got.iter().map(body).collect::<Vec<_>>(), vec!["a\nb\nend"]);
    r.receiver.shutdown().await.unwrap();
    let bodies: Vec<String> = records(&r.logs).iter().map(body).collect();
    assert_eq!(bodies, vec!["a\nb\nend", "open"]);
}
