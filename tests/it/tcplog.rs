//! Kong's tcp-log wire lines over a real TCP socket into the real binary, out through
//! otlphttp to a sink: the records carry what otelcol-contrib's `json_parser` produces.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};

use crate::support::process::{free_port, Collector};
use crate::support::sink::Sink;

const KONG: &str = include_str!("../fixtures/kong/tcp-log-wire-proxied.ndjson");

/// Checks `got` is what pdata holds after stanza's json_parser read `want`: numbers as
/// doubles, objects as maps (any key order), arrays as slices, null as an empty value.
fn assert_same(path: &str, want: &serde_json::Value, got: &AnyValue) {
    use serde_json::Value as J;
    match (want, &got.value) {
        (J::Null, None) => {}
        (J::Bool(b), Some(any_value::Value::BoolValue(g))) => assert_eq!(b, g, "{path}"),
        (J::Number(n), Some(any_value::Value::DoubleValue(g))) => {
            assert_eq!(n.as_f64().unwrap(), *g, "{path}");
        }
        (J::String(s), Some(any_value::Value::StringValue(g))) => assert_eq!(s, g, "{path}"),
        (J::Array(items), Some(any_value::Value::ArrayValue(g))) => {
            assert_eq!(items.len(), g.values.len(), "{path}");
            for (i, (w, g)) in items.iter().zip(&g.values).enumerate() {
                assert_same(&format!("{path}[{i}]"), w, g);
            }
        }
        (J::Object(map), Some(any_value::Value::KvlistValue(g))) => {
            assert_eq!(map.len(), g.values.len(), "{path}: keys");
            for kv in &g.values {
                let w = map
                    .get(&kv.key)
                    .unwrap_or_else(|| panic!("{path}.{}: unexpected", kv.key));
                assert_same(&format!("{path}.{}", kv.key), w, kv.value.as_ref().unwrap());
            }
        }
        (w, g) => panic!("{path}: want {w}, got {g:?}"),
    }
}

#[test]
fn kong_tcp_log_lines_arrive_as_parsed_log_records() {
    let sink = Sink::http();
    let (tcp, metrics) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("collector.yaml");
    // The seed's logs pipeline, on a free port.
    std::fs::write(
        &config,
        format!(
            "receivers:
  tcplog:
    listen_address: 127.0.0.1:{tcp}
    max_log_size: 64KiB
    operators:
      - type: json_parser
exporters:
  otlphttp:
    endpoint: http://{}/api/v2/otlp
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

    // Kong writes one document per line on a pooled connection; send each line twice on
    // two connections, then a line over max_log_size on a third.
    for _ in 0..2 {
        let mut s = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
        s.write_all(KONG.as_bytes()).unwrap();
    }
    let mut long = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    let mut line = vec![b'x'; 70 << 10];
    line.push(b'\n');
    // The receiver closes this connection; a write may fail then.
    long.write_all(&line).ok();
    long.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    long.read_to_end(&mut Vec::new()).ok();

    assert_eq!(sink.wait_for_items(4), 4);
    let got = sink.log_records();
    let lines: Vec<&str> = KONG.lines().collect();
    for record in &got {
        let body = record.body.as_ref().unwrap();
        let Some(any_value::Value::StringValue(text)) = &body.value else {
            panic!("body is a string: {body:?}");
        };
        let line = lines
            .iter()
            .find(|l| *l == text)
            .expect("body is a raw wire line");
        let want: serde_json::Value = serde_json::from_str(line).unwrap();
        let attributes = AnyValue {
            value: Some(any_value::Value::KvlistValue(
                opentelemetry_proto::tonic::common::v1::KeyValueList {
                    values: record.attributes.clone(),
                },
            )),
        };
        assert_same("attributes", &want, &attributes);
        assert_eq!(record.time_unix_nano, 0);
        assert_eq!(record.severity_number, 0);
        assert!(record.observed_time_unix_nano > 0);
    }
    assert!(sink
        .received()
        .iter()
        .all(|r| r.path == "/api/v2/otlp/v1/logs"));

    // The counter is incremented once the pipeline took the batch; poll until it shows.
    let mut own = String::new();
    for _ in 0..250 {
        let out = std::process::Command::new("curl")
            .args(["-s", "--max-time", "10"])
            .arg(format!("http://127.0.0.1:{metrics}/metrics"))
            .output()
            .unwrap();
        own = String::from_utf8_lossy(&out.stdout).into_owned();
        if own
            .lines()
            .any(|l| l.starts_with("otelcol_receiver_accepted_log_records{") && l.ends_with(" 4"))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let value = |prefix: &str| {
        own.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .map(str::to_owned)
    };
    let accepted = own
        .lines()
        .find(|l| l.starts_with("otelcol_receiver_accepted_log_records{"))
        .unwrap_or_else(|| panic!("{own}"));
    assert!(accepted.contains("receiver=\"tcplog\""), "{accepted}");
    assert!(accepted.contains("transport=\"\""), "{accepted}");
    assert!(accepted.ends_with(" 4"), "{accepted}");
    assert_eq!(
        value("otelpipe_receiver_tcplog_tokens_too_long{").as_deref(),
        Some("1"),
        "{own}"
    );

    let (code, _, stderr) = collector.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("Scanner error"), "{stderr}");
    assert!(stderr.contains("token too long"), "{stderr}");
}

#[test]
fn full_dynatrace_seed_tcplog_section_validates_unchanged() {
    let seed = format!(
        "{}/tests/fixtures/seeds/000-dynatrace-traces-metrics-logs.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = crate::support::process::run(&["print-config", "--config", &seed]);
    assert!(out.status.success());
    let printed: yaml_serde::Value = yaml_serde::from_slice(&out.stdout).unwrap();
    let section = &printed["receivers"]["tcplog"];
    let factory = otelpipe::registry::receiver("tcplog").unwrap();
    factory.validate(section).unwrap();
    assert_eq!(factory.endpoints(section), vec!["0.0.0.0:54525".to_owned()]);
}

/// Writes a CA, a server certificate and a client certificate (for localhost / 127.0.0.1)
/// into `dir`; returns the CA file.
fn tls_files(dir: &std::path::Path) -> String {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "tcplog test CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
    for name in ["server", "client"] {
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        std::fs::write(dir.join(format!("{name}.crt")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    }
    dir.join("ca.crt").to_str().unwrap().to_owned()
}

/// Sends `data` with `openssl s_client` (closing after stdin ends); extra args add a
/// client certificate.
fn s_client(port: u16, ca: &str, extra: &[&str], data: &[u8]) {
    let mut child = std::process::Command::new("timeout")
        .args(["20", "openssl", "s_client", "-quiet", "-no_ign_eof"])
        .args([
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            "localhost",
        ])
        .args(["-CAfile", ca, "-verify_return_error"])
        .args(extra)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl is installed (scripts/test installs it)");
    child.stdin.take().unwrap().write_all(data).ok();
    child.wait().unwrap();
}

#[test]
fn tls_with_client_certificates_refuses_anonymous_clients_and_counts_them() {
    let sink = Sink::http();
    let (tcp, metrics) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let ca = tls_files(dir.path());
    let file = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let config = dir.path().join("collector.yaml");
    std::fs::write(
        &config,
        format!(
            "receivers:
  tcplog:
    listen_address: 127.0.0.1:{tcp}
    tls:
      cert_file: {}
      key_file: {}
      client_ca_file: {ca}
    operators:
      - type: json_parser
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
            file("server.crt"),
            file("server.key"),
            sink.addr
        ),
    )
    .unwrap();
    let collector = Collector::start(&config, &[], tcp);

    // Two failed handshakes: the start-up probe's plain connect, and the client without a
    // certificate.
    s_client(tcp, &ca, &[], b"{\"who\":\"anonymous\"}\n");
    let mut own = String::new();
    let counted = (0..250).any(|_| {
        let out = std::process::Command::new("curl")
            .args(["-s", "--max-time", "10"])
            .arg(format!("http://127.0.0.1:{metrics}/metrics"))
            .output()
            .unwrap();
        own = String::from_utf8_lossy(&out.stdout).into_owned();
        let found = own.lines().any(|l| {
            l.starts_with("otelpipe_receiver_tcplog_tls_handshake_failures{") && l.ends_with(" 2")
        });
        if !found {
            std::thread::sleep(Duration::from_millis(20));
        }
        found
    });
    assert!(counted, "the refused handshake is counted: {own}");

    let (crt, key) = (file("client.crt"), file("client.key"));
    s_client(
        tcp,
        &ca,
        &["-cert", &crt, "-key", &key],
        b"{\"who\":\"trusted\",\"n\":1}\n",
    );
    assert_eq!(sink.wait_for_items(1), 1);
    let got = sink.log_records();
    assert_eq!(got.len(), 1);
    let who = got[0].attributes.iter().find(|kv| kv.key == "who").unwrap();
    assert_eq!(
        who.value.as_ref().unwrap().value,
        Some(any_value::Value::StringValue("trusted".into()))
    );
    let (code, _, stderr) = collector.terminate();
    assert_eq!(code, Some(0), "{stderr}");
}
