//! The udplog receiver over a real UDP socket on 127.0.0.1, feeding a capture consumer.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use tokio::sync::watch;

use super::*;
use crate::pipeline::{Batch, Capture};
use crate::receivers::stanza::value;

const KONG: &str = include_str!("../../../tests/fixtures/kong/tcp-log-wire-proxied.ndjson");

async fn start(yaml: &str) -> (Arc<Receiver>, Arc<Capture>, SocketAddr) {
    let raw: RawConfig = yaml_serde::from_str(yaml).unwrap();
    let (config, input) = decode_config(&raw).unwrap();
    let logs = Arc::new(Capture::new());
    let mut consumers = ReceiverConsumers::default();
    consumers.set(Signal::Logs, logs.clone());
    let receiver = Arc::new(Receiver::new("udplog", config, input, consumers));
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
    (receiver, logs, addr)
}

async fn wait_for(capture: &Capture, n: usize) -> Vec<LogRecord> {
    for _ in 0..500 {
        if capture.item_count() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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

#[tokio::test]
async fn kong_udp_log_datagrams_are_parsed() {
    let (receiver, logs, addr) = start(
        "listen_address: 127.0.0.1:0\nadd_attributes: true\noperators:\n  - type: json_parser\n",
    )
    .await;
    let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // Kong's udp-log sends one document per datagram, without a newline.
    for line in KONG.lines() {
        client.send_to(line.as_bytes(), addr).await.unwrap();
    }
    client.send_to(b"a\nb\n", addr).await.unwrap();
    let got = wait_for(&logs, 4).await;
    assert_eq!(got.len(), 4);
    assert_eq!(
        value::get(&got[0].attributes, "started_at").unwrap().value,
        Some(any_value::Value::DoubleValue(1_738_765_016_123.0))
    );
    assert_eq!(
        value::get(&got[0].attributes, "net.transport"),
        Some(&value::string("IP.UDP"))
    );
    assert_eq!(
        value::get(&got[0].attributes, "net.peer.port"),
        Some(&value::string(
            client.local_addr().unwrap().port().to_string()
        ))
    );
    let bodies: Vec<_> = got[2..].iter().map(|r| r.body.clone().unwrap()).collect();
    assert_eq!(
        bodies,
        vec![value::string("a"), value::string("b")],
        "lines split within a datagram"
    );
    receiver.shutdown().await.unwrap();
}

#[tokio::test]
async fn one_log_per_packet_keeps_the_datagram_whole() {
    let (receiver, logs, addr) =
        start("listen_address: 127.0.0.1:0\none_log_per_packet: true").await;
    let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.send_to(b"a\nb\n", addr).await.unwrap();
    let got = wait_for(&logs, 1).await;
    assert_eq!(got[0].body, Some(value::string("a\nb\n")));
    receiver.shutdown().await.unwrap();
}

#[test]
fn config_errors() {
    let err = |y: &str| {
        decode_config(&yaml_serde::from_str(y).unwrap())
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err("one_log_per_packet: true"),
        "missing required parameter 'listen_address'"
    );
    assert!(
        err("listen_address: ':0'\noperators: [{type: json_parser, if: 'x'}]")
            .starts_with("operators::0::if: unknown name \"x\"")
    );
    assert!(
        err("listen_address: ':0'\nmax_log_size: 1MiB").contains("unknown field `max_log_size`")
    );
    assert!(decode_config(
        &yaml_serde::from_str("listen_address: ':0'\nasync: {readers: 2}").unwrap()
    )
    .is_ok());
}
