//! TLS and authentication on the collector's listeners, with certificates generated here
//! and real clients: curl and the OpenTelemetry SDK's gRPC exporter.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use opentelemetry::trace::{Tracer, TracerProvider};
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

use crate::support::process::{free_port, Collector};
use crate::support::sink::Sink;

/// A CA and certificates it signed, written as PEM files into a directory.
pub(crate) struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    dir: PathBuf,
}

impl Pki {
    pub(crate) fn new(dir: &Path, name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} CA"));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
        Self { ca, dir }
    }

    pub(crate) fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// Writes `<name>.crt` and `<name>.key` for `localhost` / 127.0.0.1.
    pub(crate) fn issue(&self, name: &str) -> (PathBuf, PathBuf) {
        self.issue_for(name, &["localhost", "127.0.0.1"])
    }

    /// Writes `<name>.crt` and `<name>.key` for the subject alternative names `sans`.
    pub(crate) fn issue_for(&self, name: &str, sans: &[&str]) -> (PathBuf, PathBuf) {
        let params =
            CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        let (crt, pem) = (
            self.dir.join(format!("{name}.crt")),
            self.dir.join(format!("{name}.key")),
        );
        std::fs::write(&crt, cert.pem()).unwrap();
        std::fs::write(&pem, key.serialize_pem()).unwrap();
        (crt, pem)
    }
}

pub(crate) fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs curl; returns (exit code, stdout).
pub(crate) fn curl(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new("curl")
        .args(["--max-time", "10", "-s"])
        .args(args)
        .output()
        .expect("curl is installed (scripts/test installs it)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

const LOG: &str =
    r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"over tls"}}]}]}]}"#;

/// POSTs one log record; returns (curl exit code, HTTP status).
pub(crate) fn post_log(url: &str, extra: &[&str]) -> (i32, String) {
    let mut args = vec![
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        "Content-Type: application/json",
        "--data",
        LOG,
    ];
    args.extend_from_slice(extra);
    args.push(url);
    curl(&args)
}

pub(crate) fn write(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("collector.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn otlp_http_with_mtls_and_grpc_with_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "main");
    let (server_crt, server_key) = pki.issue("server");
    let (client_crt, client_key) = pki.issue("client");
    let other = Pki::new(dir.path(), "other");
    let (stranger_crt, stranger_key) = other.issue("stranger");
    let sink = Sink::http();
    let (grpc, http, metrics) = (free_port(), free_port(), free_port());
    let config = write(
        dir.path(),
        &format!(
            "receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
        tls:
          cert_file: {crt}
          key_file: {key}
      http:
        endpoint: 127.0.0.1:{http}
        tls:
          cert_file: {crt}
          key_file: {key}
          client_ca_file: {ca}
          min_version: \"1.2\"
exporters:
  otlphttp:
    endpoint: http://{sink}
    retry_on_failure:
      enabled: false
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [otlphttp]
    traces:
      receivers: [otlp]
      exporters: [otlphttp]
",
            crt = path(&server_crt),
            key = path(&server_key),
            ca = path(&pki.ca_file()),
            sink = sink.addr,
        ),
    );
    let collector = Collector::start(&config, &[], http);
    let url = format!("https://localhost:{http}/v1/logs");
    let ca_file = pki.ca_file();
    let ca = path(&ca_file);

    // mTLS: a client with a certificate from the CA is served.
    let with_cert = [
        "--cacert",
        ca,
        "--cert",
        path(&client_crt),
        "--key",
        path(&client_key),
    ];
    assert_eq!(post_log(&url, &with_cert), (0, "200".to_owned()));

    // Without a client certificate, or with one from another CA: refused in the handshake.
    let (code, status) = post_log(&url, &["--cacert", ca]);
    assert_ne!(code, 0, "served without a client certificate: {status}");
    let (code, status) = post_log(
        &url,
        &[
            "--cacert",
            ca,
            "--cert",
            path(&stranger_crt),
            "--key",
            path(&stranger_key),
        ],
    );
    assert_ne!(code, 0, "served a certificate of another CA: {status}");

    // A client that does not trust the server's CA refuses the server.
    let (code, _) = post_log(&url, &with_cert[2..]);
    assert_eq!(code, 60, "curl: peer certificate cannot be authenticated");

    // Plain HTTP to the TLS port gets Go's answer and the listener keeps serving.
    let (code, status) = post_log(&format!("http://127.0.0.1:{http}/v1/logs"), &[]);
    assert_eq!((code, status.as_str()), (0, "400"));
    assert_eq!(post_log(&url, &with_cert), (0, "200".to_owned()));

    // gRPC over TLS with the OpenTelemetry SDK's tonic exporter.
    let ca_pem = std::fs::read_to_string(pki.ca_file()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(&ca_pem))
            .domain_name("localhost");
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(format!("https://localhost:{grpc}"))
            .with_tls_config(tls)
            .build()
            .unwrap();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .build();
        let tracer = provider.tracer("tls");
        for i in 0..5 {
            tracer.in_span(format!("span-{i}"), |_cx| {});
        }
        provider.force_flush().unwrap();
        provider.shutdown().unwrap();
    });
    // Two log records over HTTPS and five spans over gRPC+TLS reached the backend.
    assert_eq!(sink.wait_for_items(7), 7);

    // A plaintext gRPC client is refused and the TLS listener keeps serving.
    runtime.block_on(async {
        use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
        let plain = TraceServiceClient::connect(format!("http://127.0.0.1:{grpc}")).await;
        if let Ok(mut client) = plain {
            let request =
                opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::default();
            assert!(client.export(request).await.is_err());
        }
    });
    let (code, _) = curl(&[&format!("http://127.0.0.1:{metrics}/metrics")]);
    assert_eq!(code, 0);
    let (code, _, stderr) = collector.terminate();
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn certificates_are_reloaded_on_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let first = Pki::new(dir.path(), "first");
    let second = Pki::new(dir.path(), "second");
    let (crt, key) = first.issue("server");
    let sink = Sink::http();
    let http = free_port();
    let config = write(
        dir.path(),
        &format!(
            "receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{http}
        tls:
          cert_file: {crt}
          key_file: {key}
          reload_interval: 50ms
exporters:
  otlphttp:
    endpoint: http://{sink}
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [otlphttp]
",
            crt = path(&crt),
            key = path(&key),
            sink = sink.addr,
            metrics = free_port(),
        ),
    );
    let collector = Collector::start(&config, &[], http);
    let url = format!("https://localhost:{http}/v1/logs");
    let (first_ca, second_ca) = (first.ca_file(), second.ca_file());
    let trusts_first = ["--cacert", path(&first_ca)];
    let trusts_second = ["--cacert", path(&second_ca)];
    assert_eq!(post_log(&url, &trusts_first), (0, "200".to_owned()));
    assert_ne!(post_log(&url, &trusts_second).0, 0);

    // Rotate: the second CA's certificate replaces the first, without a restart.
    let (new_crt, new_key) = second.issue("server");
    std::fs::copy(&new_key, &key).unwrap();
    std::fs::copy(&new_crt, &crt).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while post_log(&url, &trusts_second) != (0, "200".to_owned()) {
        assert!(
            Instant::now() < deadline,
            "rotated certificate never served"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_ne!(post_log(&url, &trusts_first).0, 0);
    let (code, _, stderr) = collector.terminate();
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn tls_config_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "receivers:
  otlp:
    protocols:
      grpc:
        tls:
          cert_file: /nonexistent.crt
          key_file: /nonexistent.key
          cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_FAKE_SUITE]
exporters:
  debug:
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
",
    );
    let out = crate::support::process::run(&["validate", "--config", path(&config)]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("protocols::grpc::tls::cipher_suites::1")
            && stderr.contains("invalid TLS cipher suite: \"TLS_FAKE_SUITE\""),
        "{stderr}"
    );
}

#[test]
fn prometheus_exporter_and_health_check_serve_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "main");
    let (crt, key) = pki.issue("server");
    let (http, prom, health, own) = (free_port(), free_port(), free_port(), free_port());
    let tls = format!(
        "tls: {{cert_file: {}, key_file: {}}}",
        path(&crt),
        path(&key)
    );
    let config = write(
        dir.path(),
        &format!(
            "receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{http}
exporters:
  prometheus:
    endpoint: 127.0.0.1:{prom}
    {tls}
extensions:
  health_check:
    endpoint: 127.0.0.1:{health}
    {tls}
service:
  extensions: [health_check]
  telemetry:
    metrics:
      address: 127.0.0.1:{own}
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [prometheus]
"
        ),
    );
    // Receivers start last: once the otlp port listens, the exporter and health_check do.
    let collector = Collector::start(&config, &[], http);
    let ca_file = pki.ca_file();
    let ca = path(&ca_file);
    let metric = r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"requests","sum":{"aggregationTemporality":2,"isMonotonic":true,"dataPoints":[{"asInt":"3","timeUnixNano":"1700000000000000000"}]}}]}]}]}"#;
    let (code, status) = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        "Content-Type: application/json",
        "--data",
        metric,
        &format!("http://127.0.0.1:{http}/v1/metrics"),
    ]);
    assert_eq!((code, status.as_str()), (0, "200"));
    let (code, body) = curl(&["--cacert", ca, &format!("https://localhost:{prom}/metrics")]);
    assert_eq!(code, 0);
    assert!(body.contains("requests_total 3"), "{body}");
    let (code, body) = curl(&["--cacert", ca, &format!("https://localhost:{health}/")]);
    assert_eq!(code, 0);
    assert!(body.contains("Server available"), "{body}");
    // Plaintext scrapes are refused cleanly; TLS keeps working.
    let (_, status) = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("http://127.0.0.1:{prom}/metrics"),
    ]);
    assert_eq!(status, "400");
    let (code, _) = curl(&["--cacert", ca, &format!("https://localhost:{prom}/metrics")]);
    assert_eq!(code, 0);
    let (code, _, stderr) = collector.terminate();
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn bearertokenauth_guards_otlp_http_and_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "first-token\n").unwrap();
    let sink = Sink::http();
    let (grpc, http, metrics) = (free_port(), free_port(), free_port());
    let config = write(
        dir.path(),
        &format!(
            "extensions:
  bearertokenauth:
    token: ${{env:OTLP_TOKEN}}
  bearertokenauth/file:
    filename: {file}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
        auth:
          authenticator: bearertokenauth
      http:
        endpoint: 127.0.0.1:{http}
        auth:
          authenticator: bearertokenauth/file
exporters:
  otlphttp:
    endpoint: http://{sink}
    retry_on_failure:
      enabled: false
service:
  extensions: [bearertokenauth, bearertokenauth/file]
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [otlphttp]
",
            file = path(&token_file),
            sink = sink.addr,
        ),
    );
    let collector = Collector::start(&config, &[("OTLP_TOKEN", "s3cret-grpc")], http);
    let url = format!("http://127.0.0.1:{http}/v1/logs");
    assert_eq!(
        post_log(&url, &["-H", "Authorization: Bearer first-token"]),
        (0, "200".to_owned())
    );
    assert_eq!(post_log(&url, &[]), (0, "401".to_owned()));
    let (_, body) = curl(&[
        "-H",
        "Content-Type: application/json",
        "-H",
        "Authorization: Bearer wrong-token",
        "--data",
        LOG,
        &url,
    ]);
    assert_eq!(
        body,
        r#"{"code":16,"message":"provided authorization does not match expected scheme or token"}"#
    );

    // The token file is re-read when it changes.
    std::fs::write(&token_file, "second-token\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while post_log(&url, &["-H", "Authorization: Bearer second-token"]) != (0, "200".to_owned()) {
        assert!(Instant::now() < deadline, "rotated token never accepted");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        post_log(&url, &["-H", "Authorization: Bearer first-token"]),
        (0, "401".to_owned())
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
        use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
        use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
        let request = || {
            let mut request = tonic::Request::new(ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    scope_logs: vec![ScopeLogs {
                        log_records: vec![LogRecord::default()],
                        ..ScopeLogs::default()
                    }],
                    ..ResourceLogs::default()
                }],
            });
            request
                .metadata_mut()
                .insert("authorization", "Bearer s3cret-grpc".parse().unwrap());
            request
        };
        let mut client = LogsServiceClient::connect(format!("http://127.0.0.1:{grpc}"))
            .await
            .unwrap();
        client.export(request()).await.unwrap();
        let mut wrong = request();
        wrong
            .metadata_mut()
            .insert("authorization", "Bearer nope".parse().unwrap());
        let status = client.export(wrong).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
    });
    // Three records accepted (two over HTTP, one over gRPC).
    assert_eq!(sink.wait_for_items(3), 3);
    let (_, own) = curl(&[&format!("http://127.0.0.1:{metrics}/metrics")]);
    let failures = |transport: &str| {
        own.lines()
            .find(|l| {
                l.starts_with("otelpipe_receiver_auth_failures")
                    && l.contains(&format!("transport=\"{transport}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .map(str::to_owned)
    };
    // Missing, wrong and rotated-out tokens over HTTP (plus any refused while polling for
    // the rotation); one wrong token over gRPC.
    let http_failures: u64 = failures("http").and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(http_failures >= 3, "{own}");
    assert_eq!(failures("grpc").as_deref(), Some("1"), "{own}");
    let refused_grpc = own.lines().any(|l| {
        l.starts_with("otelcol_receiver_refused_log_records")
            && l.contains("transport=\"grpc\"")
            && l.ends_with(" 1")
    });
    assert!(refused_grpc, "{own}");
    let (code, stdout, stderr) = collector.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    for secret in ["s3cret-grpc", "first-token", "second-token", "wrong-token"] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} logged"
        );
    }
}

#[test]
fn authenticator_references_are_checked_at_their_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "extensions:
  bearertokenauth:
    token: abc
receivers:
  otlp:
    protocols:
      http:
        auth:
          authenticator: bearertokenauth
      grpc:
        auth:
          authenticator: basicauth/missing
exporters:
  debug:
service:
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [debug]
",
    );
    let out = crate::support::process::run(&["validate", "--config", path(&config)]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("receivers::otlp::protocols::http::auth::authenticator")
            && stderr.contains("authenticator extension \"bearertokenauth\" is not enabled"),
        "{stderr}"
    );
    assert!(
        stderr.contains("receivers::otlp::protocols::grpc::auth::authenticator")
            && stderr.contains("\"basicauth/missing\" which is not configured"),
        "{stderr}"
    );
    assert!(!stderr.contains("abc"), "{stderr}");
}

#[test]
fn bearertokenauth_on_otlphttp_and_otlp_exporters_adds_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::http();
    let grpc_sink = Sink::grpc();
    let (http, metrics) = (free_port(), free_port());
    let config = write(
        dir.path(),
        &format!(
            "extensions:
  bearertokenauth/client:
    token: ${{env:BACKEND_TOKEN}}
    scheme: Api-Token
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{http}
exporters:
  otlphttp:
    endpoint: http://{sink}
    auth:
      authenticator: bearertokenauth/client
  otlp:
    endpoint: {grpc_sink}
    tls:
      insecure: true
    auth:
      authenticator: bearertokenauth/client
service:
  extensions: [bearertokenauth/client]
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [otlphttp, otlp]
",
            sink = sink.addr,
            grpc_sink = grpc_sink.addr,
        ),
    );
    let collector = Collector::start(&config, &[("BACKEND_TOKEN", "dt0c01.abc")], http);
    assert_eq!(
        post_log(&format!("http://127.0.0.1:{http}/v1/logs"), &[]),
        (0, "200".to_owned())
    );
    assert_eq!(sink.wait_for_items(1), 1);
    let received = sink.received();
    assert_eq!(received[0].headers["authorization"], "Api-Token dt0c01.abc");
    assert_eq!(grpc_sink.wait_for_items(1), 1);
    let received = grpc_sink.received();
    assert_eq!(received[0].headers["authorization"], "Api-Token dt0c01.abc");
    let (code, stdout, stderr) = collector.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stdout.contains("dt0c01.abc") && !stderr.contains("dt0c01.abc"));
}

#[test]
fn basicauth_htpasswd_guards_otlp_http() {
    use base64::Engine;
    use sha1::Digest;
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join(".htpasswd");
    let sha = base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest("sha-pass"));
    let bcrypt_hash = bcrypt::hash("bcrypt-pass", 4).unwrap();
    std::fs::write(&htpasswd, format!("ann:{bcrypt_hash}\nsid:{{SHA}}{sha}\n")).unwrap();
    let sink = Sink::http();
    let (http, metrics) = (free_port(), free_port());
    let config = write(
        dir.path(),
        &format!(
            "extensions:
  basicauth/server:
    htpasswd:
      file: {file}
      inline: |
        kim:${{env:KIM_PASSWORD}}
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{http}
        auth:
          authenticator: basicauth/server
exporters:
  otlphttp:
    endpoint: http://{sink}
service:
  extensions: [basicauth/server]
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [otlphttp]
",
            file = path(&htpasswd),
            sink = sink.addr,
        ),
    );
    let collector = Collector::start(&config, &[("KIM_PASSWORD", "kim-pass")], http);
    let url = format!("http://127.0.0.1:{http}/v1/logs");
    for user in ["ann:bcrypt-pass", "sid:sha-pass", "kim:kim-pass"] {
        assert_eq!(
            post_log(&url, &["-u", user]),
            (0, "200".to_owned()),
            "{user}"
        );
    }
    for user in ["ann:sha-pass", "sid:wrong", "kim:x", "nobody:kim-pass"] {
        assert_eq!(
            post_log(&url, &["-u", user]),
            (0, "401".to_owned()),
            "{user}"
        );
    }
    assert_eq!(post_log(&url, &[]), (0, "401".to_owned()));
    assert_eq!(sink.wait_for_items(3), 3);
    let (code, stdout, stderr) = collector.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stdout.contains("kim-pass") && !stderr.contains("kim-pass"));
}

#[test]
fn headers_setter_copies_request_metadata_to_otlphttp_and_otlp_exports() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::http();
    let grpc_sink = Sink::grpc();
    let (http, metrics) = (free_port(), free_port());
    let config = write(
        dir.path(),
        &format!(
            "extensions:
  headers_setter:
    headers:
      - key: X-Scope-OrgID
        from_context: tenant
        default_value: anonymous
      - key: Api-Key
        value: ${{env:API_KEY}}
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{http}
        include_metadata: true
exporters:
  otlphttp:
    endpoint: http://{sink}
    auth:
      authenticator: headers_setter
  otlp:
    endpoint: {grpc_sink}
    tls:
      insecure: true
    auth:
      authenticator: headers_setter
service:
  extensions: [headers_setter]
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [otlphttp, otlp]
",
            sink = sink.addr,
            grpc_sink = grpc_sink.addr,
        ),
    );
    let collector = Collector::start(&config, &[("API_KEY", "k3y-value")], http);
    let url = format!("http://127.0.0.1:{http}/v1/logs");
    assert_eq!(
        post_log(&url, &["-H", "Tenant: acme"]),
        (0, "200".to_owned())
    );
    assert_eq!(sink.wait_for_items(1), 1);
    assert_eq!(grpc_sink.wait_for_items(1), 1);
    assert_eq!(post_log(&url, &[]), (0, "200".to_owned()));
    assert_eq!(sink.wait_for_items(2), 2);
    assert_eq!(grpc_sink.wait_for_items(2), 2);
    for received in [sink.received(), grpc_sink.received()] {
        let tenants: Vec<&str> = received
            .iter()
            .map(|r| r.headers["x-scope-orgid"].as_str())
            .collect();
        assert_eq!(tenants, ["acme", "anonymous"]);
        assert!(received.iter().all(|r| r.headers["api-key"] == "k3y-value"));
    }
    let (code, stdout, stderr) = collector.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stdout.contains("k3y-value") && !stderr.contains("k3y-value"));
}
