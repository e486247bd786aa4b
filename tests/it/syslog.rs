//! RFC 5424 syslog over a real TCP socket into the real binary: a `tcplog` receiver with
//! `syslog_parser`, out through otlphttp to a sink, the records carrying the attributes,
//! severity and timestamp stanza produces. One sender writes fixed lines, the other is
//! util-linux `logger`, which frames its RFC 5424 messages with a newline on TCP.

use std::io::Write;
use std::net::TcpStream;

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;

use crate::support::process::{free_port, Collector};
use crate::support::sink::Sink;

const LINE: &str = r#"<86>1 2015-08-05T21:58:59.693Z 192.168.2.132 SecureAuth0 23108 ID52020 [SecureAuth@27389 UserHostAddress="192.168.2.132" Realm="SecureAuth0" UserID="Tester2" PEN="27389"] Found the user for retrieving user's profile"#;

fn get<'a>(map: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    map.iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn text<'a>(map: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match get(map, key) {
        Some(any_value::Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

fn int(map: &[KeyValue], key: &str) -> Option<i64> {
    match get(map, key) {
        Some(any_value::Value::IntValue(i)) => Some(*i),
        _ => None,
    }
}

fn map<'a>(map: &'a [KeyValue], key: &str) -> &'a [KeyValue] {
    match get(map, key) {
        Some(any_value::Value::KvlistValue(kv)) => &kv.values,
        other => panic!("{key}: not a map: {other:?}"),
    }
}

fn body(record: &LogRecord) -> &str {
    match record
        .body
        .as_ref()
        .and_then(|b: &AnyValue| b.value.as_ref())
    {
        Some(any_value::Value::StringValue(s)) => s,
        other => panic!("body is a string: {other:?}"),
    }
}

#[test]
fn rfc5424_lines_over_tcp_arrive_with_syslog_attributes() {
    let sink = Sink::http();
    let (tcp, metrics) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("collector.yaml");
    std::fs::write(
        &config,
        format!(
            "receivers:
  tcplog:
    listen_address: 127.0.0.1:{tcp}
    operators:
      - type: syslog_parser
        protocol: rfc5424
exporters:
  otlphttp:
    endpoint: http://{}
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    logs:
      receivers: [tcplog]
      exporters: [otlphttp]
",
            sink.addr
        ),
    )
    .unwrap();
    let collector = Collector::start(&config, &[], tcp);

    // A fixed line, a line that is not syslog (sent on unchanged, on_error: send), and a
    // message from util-linux logger.
    let mut s = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    s.write_all(format!("{LINE}\r\nnot syslog at all\n").as_bytes())
        .unwrap();
    drop(s);
    let status = std::process::Command::new("logger")
        .args(["--rfc5424", "--tcp", "--server", "127.0.0.1", "--port"])
        .arg(tcp.to_string())
        .args([
            "--tag",
            "billing",
            "--id=4242",
            "--priority",
            "local3.warning",
        ])
        .args([
            "--msgid",
            "PAY1",
            "--sd-id",
            "order@32473",
            "--sd-param",
            r#"id="a\"b""#,
        ])
        .arg("payment refused")
        .status()
        .unwrap();
    assert!(status.success());

    assert_eq!(sink.wait_for_items(3), 3);
    let got = sink.log_records();
    assert_eq!(got.len(), 3);

    let fixed = got
        .iter()
        .find(|r| body(r) == LINE)
        .expect("the fixed line");
    let a = &fixed.attributes;
    assert_eq!(text(a, "appname"), Some("SecureAuth0"));
    assert_eq!(text(a, "hostname"), Some("192.168.2.132"));
    assert_eq!(text(a, "proc_id"), Some("23108"));
    assert_eq!(text(a, "msg_id"), Some("ID52020"));
    assert_eq!(
        text(a, "message"),
        Some("Found the user for retrieving user's profile")
    );
    assert_eq!(int(a, "priority"), Some(86));
    assert_eq!(int(a, "facility"), Some(10));
    assert_eq!(int(a, "version"), Some(1));
    assert!(get(a, "severity").is_none() && get(a, "timestamp").is_none());
    let element = map(map(a, "structured_data"), "SecureAuth@27389");
    assert_eq!(text(element, "UserID"), Some("Tester2"));
    assert_eq!(text(element, "PEN"), Some("27389"));
    assert_eq!(fixed.time_unix_nano, 1_438_811_939_693_000_000);
    assert_eq!(fixed.severity_number, 9);
    assert_eq!(fixed.severity_text, "info");

    let plain = got
        .iter()
        .find(|r| body(r) == "not syslog at all")
        .expect("the line that failed to parse is sent on");
    assert!(plain.attributes.is_empty());
    assert_eq!((plain.severity_number, plain.time_unix_nano), (0, 0));

    let logged = got
        .iter()
        .find(|r| text(&r.attributes, "appname") == Some("billing"))
        .expect("logger's message");
    let a = &logged.attributes;
    assert_eq!(text(a, "proc_id"), Some("4242"));
    assert_eq!(text(a, "msg_id"), Some("PAY1"));
    assert_eq!(text(a, "message"), Some("payment refused"));
    // local3 = 19, warning = 4: priority 156.
    assert_eq!(int(a, "priority"), Some(156));
    assert_eq!(int(a, "facility"), Some(19));
    assert_eq!(
        text(map(map(a, "structured_data"), "order@32473"), "id"),
        Some(r#"a"b"#)
    );
    assert_eq!(
        (logged.severity_number, logged.severity_text.as_str()),
        (13, "warning")
    );
    assert!(logged.time_unix_nano > 0);

    let (code, _, stderr) = collector.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("Failed to process entry"), "{stderr}");
}
