//! Downstream TLS: certificates chosen by SNI from certificates + snis entities, the
//! default certificate, ALPN, routes' `snis` and `protocols` (real curl and openssl
//! clients against the gateway's `ssl` listener).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

use crate::support::{echo_server, gateway, get};

/// A CA and leaf certificates it signs, written as PEM files in a temporary directory.
pub(crate) struct TestPki {
    pub(crate) dir: tempfile::TempDir,
    issuer: Issuer<'static, KeyPair>,
}

impl TestPki {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "otelpipe test CA");
        let ca = params.self_signed(&key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        Self {
            dir,
            issuer: Issuer::new(params, key),
        }
    }

    pub(crate) fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub(crate) fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.ca_file()).unwrap()
    }

    /// A leaf for `names` (first one is the CN): (cert PEM, key PEM).
    pub(crate) fn leaf(&self, names: &[&str]) -> (String, String) {
        leaf_by(&self.issuer, names)
    }

    /// A leaf signed by an intermediate CA: (leaf + intermediate PEM chain, key PEM).
    pub(crate) fn leaf_via_intermediate(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "otelpipe test intermediate");
        let intermediate = params.signed_by(&key, &self.issuer).unwrap();
        let issuer = Issuer::new(params, key);
        let (leaf, leaf_key) = leaf_by(&issuer, names);
        (format!("{leaf}{}", intermediate.pem()), leaf_key)
    }
}

fn leaf_by(issuer: &Issuer<'static, KeyPair>, names: &[&str]) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, names[0]);
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// YAML block scalar of a PEM text, indented by `indent` spaces.
pub(crate) fn block(pem: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mut out = String::from("|\n");
    for line in pem.lines() {
        out.push_str(&pad);
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Runs a command off the runtime thread and returns (status ok, stdout, stderr).
pub(crate) async fn run(program: &str, args: Vec<String>) -> (bool, String, String) {
    let program = program.to_owned();
    let out = tokio::task::spawn_blocking(move || Command::new(program).args(args).output())
        .await
        .unwrap()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `curl` over https to `name` (resolved to 127.0.0.1) trusting `ca`; returns
/// (exit ok, `<status> <http version>`, body, stderr).
async fn curl(
    name: &str,
    port: u16,
    path: &str,
    ca: &Path,
    extra: &[&str],
) -> (bool, String, String) {
    let mut args: Vec<String> = vec![
        "-sS".into(),
        "--max-time".into(),
        "20".into(),
        "--cacert".into(),
        ca.display().to_string(),
        "--resolve".into(),
        format!("{name}:{port}:127.0.0.1"),
        "-w".into(),
        "\n%{http_code} %{http_version}".into(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.push(format!("https://{name}:{port}{path}"));
    let (ok, out, err) = run("curl", args).await;
    let (body, status) = out.rsplit_once('\n').unwrap_or((&out, ""));
    (ok, format!("{status}{err}"), body.to_owned())
}

/// The subject of the certificate the server at `port` presents for `sni` (none: no SNI).
async fn served_subject(port: u16, sni: Option<&str>) -> String {
    let mut args: Vec<String> = vec![
        "s_client".into(),
        "-connect".into(),
        format!("127.0.0.1:{port}"),
    ];
    match sni {
        Some(name) => args.extend(["-servername".into(), name.to_owned()]),
        None => args.push("-noservername".into()),
    }
    let program = "sh".to_owned();
    let line = format!(
        "openssl {} </dev/null 2>/dev/null | openssl x509 -noout -subject -nameopt compat",
        args.join(" ")
    );
    let (_, out, _) = run(&program, vec!["-c".into(), line]).await;
    out.trim().to_owned()
}

fn config(pki: &TestPki, upstream: u16) -> String {
    let (wild_cert, wild_key) = pki.leaf(&["*.example.com"]);
    let (api_cert, api_key) = pki.leaf(&["api.test"]);
    format!(
        r#"_format_version: "3.0"
certificates:
- cert: {}
  key: {}
  snis:
  - name: "*.example.com"
- cert: {}
  key: {}
  snis:
  - name: api.test
services:
- name: echo
  host: 127.0.0.1
  port: {upstream}
  routes:
  - name: secure
    protocols: [https]
    paths: [/secure]
  - name: redirect
    protocols: [https]
    https_redirect_status_code: 301
    paths: [/moved]
  - name: by-sni
    protocols: [https]
    snis: [api.test]
    paths: [/sni]
  - name: open
    paths: [/open]
"#,
        block(&wild_cert, 4),
        block(&wild_key, 4),
        block(&api_cert, 4),
        block(&api_key, 4),
    )
}

const LISTEN: (&str, &str) = ("KONG_PROXY_LISTEN", "127.0.0.1:0, 127.0.0.1:0 http2 ssl");

#[tokio::test]
async fn certificates_follow_sni_and_alpn_offers_h2() {
    let pki = TestPki::new();
    let echo = echo_server("a").await;
    let gw = gateway(&config(&pki, echo.addr.port()), &[LISTEN]).await;
    let tls_port = gw.proxy[1].port();
    let ca = pki.ca_file();

    // A wildcard sni entity: curl verifies the chain against the test CA.
    let (ok, status, body) =
        curl("www.example.com", tls_port, "/secure/x", &ca, &["--http2"]).await;
    assert!(ok, "{status}");
    assert_eq!(status, "200 2");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    let header = |name: &str| {
        report["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h[0] == name)
            .map(|h| h[1].as_str().unwrap().to_owned())
    };
    assert_eq!(header("x-forwarded-proto").as_deref(), Some("https"));
    assert_eq!(header("x-forwarded-port"), Some(tls_port.to_string()));
    assert_eq!(header("via").as_deref(), Some("2 kong/3.9.0"));

    // HTTP/1.1 when the client offers only that.
    let (ok, status, _) = curl("api.test", tls_port, "/sni", &ca, &["--http1.1"]).await;
    assert!(ok, "{status}");
    assert_eq!(status, "200 1.1");

    // A name that no sni covers gets the default certificate, which the CA did not sign.
    let (ok, status, _) = curl("nomatch.test", tls_port, "/secure", &ca, &[]).await;
    assert!(!ok, "verification must fail: {status}");
    assert!(served_subject(tls_port, Some("nomatch.test"))
        .await
        .contains("CN=localhost"));
    let no_sni = served_subject(tls_port, None).await;
    assert!(
        no_sni.contains("O=Kong") && no_sni.contains("CN=localhost"),
        "{no_sni}"
    );
    assert!(served_subject(tls_port, Some("a.example.com"))
        .await
        .contains("CN=*.example.com"));
    gw.shutdown().await;
}

#[tokio::test]
async fn route_snis_and_https_only_protocols() {
    let pki = TestPki::new();
    let echo = echo_server("a").await;
    let gw = gateway(&config(&pki, echo.addr.port()), &[LISTEN]).await;
    let (plain, tls_port) = (gw.proxy[0].port(), gw.proxy[1].port());
    let ca = pki.ca_file();

    // The route with snis: [api.test] does not match another server name.
    let (ok, status, body) = curl("www.example.com", tls_port, "/sni", &ca, &[]).await;
    assert!(ok, "{status}");
    assert!(status.starts_with("404"), "{status}");
    assert!(
        body.contains("no Route matched with those values"),
        "{body}"
    );
    let (_, status, _) = curl("www.example.com", tls_port, "/open", &ca, &[]).await;
    assert!(status.starts_with("200"), "{status}");

    // https-only routes over plain http: 426 with Kong's headers, or the redirect.
    let r = get(
        &format!("http://127.0.0.1:{plain}/secure"),
        &[("host", "shop.example.com"), ("accept", "application/json")],
    )
    .await;
    assert_eq!(r.status, 426);
    assert_eq!(r.header("connection"), Some("Upgrade"));
    assert_eq!(r.header("upgrade"), Some("TLS/1.2, HTTP/1.1"));
    assert_eq!(r.json()["message"], "Please use HTTPS protocol");
    let r = get(
        &format!("http://127.0.0.1:{plain}/moved/a?b=1"),
        &[("host", "shop.example.com:8000")],
    )
    .await;
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location"),
        Some("https://shop.example.com/moved/a?b=1")
    );
    assert_eq!(echo.hits.load(std::sync::atomic::Ordering::Relaxed), 1);
    // X-Forwarded-Proto counts only from trusted peers.
    let forwarded = [("host", "shop.example.com"), ("x-forwarded-proto", "https")];
    let r = get(&format!("http://127.0.0.1:{plain}/secure"), &forwarded).await;
    assert_eq!(r.status, 426);
    gw.shutdown().await;
    let gw = gateway(
        &config(&pki, echo.addr.port()),
        &[LISTEN, ("KONG_TRUSTED_IPS", "127.0.0.1")],
    )
    .await;
    let r = get(&format!("http://{}/secure", gw.proxy[0]), &forwarded).await;
    assert_eq!(r.status, 200, "{}", r.text());
    gw.shutdown().await;
}

#[tokio::test]
async fn kong_conf_ssl_cert_replaces_the_generated_default() {
    let pki = TestPki::new();
    let (cert, key) = pki.leaf(&["default.test"]);
    let gw = gateway(
        "",
        &[
            LISTEN,
            ("KONG_SSL_CERT", cert.as_str()),
            ("KONG_SSL_CERT_KEY", key.as_str()),
        ],
    )
    .await;
    let tls_port = gw.proxy[1].port();
    assert!(served_subject(tls_port, None)
        .await
        .contains("CN=default.test"));
    let (ok, status, body) = curl("default.test", tls_port, "/", &pki.ca_file(), &[]).await;
    assert!(ok, "{status}");
    assert!(status.starts_with("404"), "{status}");
    assert!(body.contains("no Route matched"));
    // A plain-text client fails the handshake; it is counted and the listener keeps serving.
    let mut raw = tokio::net::TcpStream::connect(("127.0.0.1", tls_port))
        .await
        .unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut sink = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), raw.read_to_end(&mut sink)).await;
    assert!(read.is_ok(), "the gateway closes the connection");
    let failures = || {
        gw.shared
            .counters
            .tls_handshake_failures
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    for _ in 0..500 {
        if failures() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(failures(), 1);
    let (ok, status, _) = curl("default.test", tls_port, "/", &pki.ca_file(), &[]).await;
    assert!(ok && status.starts_with("404"), "{status}");
    gw.shutdown().await;
}

/// An HTTPS upstream on 127.0.0.1 serving `chain`/`key` that answers `ok`; with
/// `client_ca`, it requires a client certificate signed by that CA.
async fn tls_upstream(chain: &str, key: &str, client_ca: Option<&str>) -> crate::support::Echo {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain.as_bytes())
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                roots.add(c.unwrap()).unwrap();
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(certs, key).unwrap();
    crate::support::tls_server(Arc::new(config)).await
}

/// A route per service: `/<name>` → service `<name>`.
fn upstream_tls_config(pki: &TestPki, other: &TestPki, ports: [u16; 3]) -> String {
    let (client_cert, client_key) = pki.leaf(&["gateway-client"]);
    let [plain, deep, mtls] = ports;
    let service = |name: &str, port: u16, extra: &str| {
        format!(
            "- name: {name}\n  protocol: https\n  host: localhost\n  port: {port}\n  retries: 0\n{extra}  routes:\n  - name: {name}\n    paths: [/{name}]\n"
        )
    };
    let mut yaml = format!(
        "_format_version: \"3.0\"\nca_certificates:\n- id: {CA}\n  cert: {}- id: {OTHER}\n  cert: {}certificates:\n- id: {CLIENT}\n  cert: {}  key: {}services:\n",
        block(&pki.ca_pem(), 4),
        block(&other.ca_pem(), 4),
        block(&client_cert, 4),
        block(&client_key, 4),
    );
    let ca = |id: &str| format!("  tls_verify: true\n  ca_certificates: [{id}]\n");
    yaml += &service("verified", plain, &ca(CA));
    yaml += &service("wrong-ca", plain, &ca(OTHER));
    yaml += &service(
        "unverified",
        plain,
        &format!("  tls_verify: false\n  ca_certificates: [{OTHER}]\n"),
    );
    yaml += &service(
        "depth0",
        deep,
        &format!("{}  tls_verify_depth: 0\n", ca(CA)),
    );
    yaml += &service("depth1", deep, &ca(CA));
    yaml += &service("conf-trust", plain, "  tls_verify: true\n");
    yaml += &service("no-client-cert", mtls, &ca(CA));
    yaml += &service(
        "client-cert",
        mtls,
        &format!("{}  client_certificate: {CLIENT}\n", ca(CA)),
    );
    yaml
}

const CA: &str = "7b1e5f4e-8f0a-4a57-9d2a-1a2b3c4d5e01";
const OTHER: &str = "7b1e5f4e-8f0a-4a57-9d2a-1a2b3c4d5e02";
const CLIENT: &str = "7b1e5f4e-8f0a-4a57-9d2a-1a2b3c4d5e03";

#[tokio::test]
async fn upstream_certificates_are_verified_per_service() {
    let (pki, other) = (TestPki::new(), TestPki::new());
    let (cert, key) = pki.leaf(&["localhost"]);
    let plain = tls_upstream(&cert, &key, None).await;
    let (chain, key2) = pki.leaf_via_intermediate(&["localhost"]);
    let deep = tls_upstream(&chain, &key2, None).await;
    let mtls = tls_upstream(&cert, &key, Some(&pki.ca_pem())).await;
    let yaml = upstream_tls_config(
        &pki,
        &other,
        [plain.addr.port(), deep.addr.port(), mtls.addr.port()],
    );
    let trust = pki.ca_file().display().to_string();
    let gw = gateway(
        &yaml,
        &[("KONG_LUA_SSL_TRUSTED_CERTIFICATE", trust.as_str())],
    )
    .await;
    let port = gw.proxy[0].port();
    let call = |name: &str| {
        let url = format!("http://127.0.0.1:{port}/{name}");
        async move { get(&url, &[("accept", "application/json")]).await }
    };
    for name in [
        "verified",
        "unverified",
        "depth1",
        "conf-trust",
        "client-cert",
    ] {
        let r = call(name).await;
        assert_eq!(r.status, 200, "{name}: {}", r.text());
        assert_eq!(r.text(), "ok", "{name}");
    }
    for name in ["wrong-ca", "depth0", "no-client-cert"] {
        let r = call(name).await;
        assert_eq!(r.status, 502, "{name}: {}", r.text());
        assert_eq!(
            r.json()["message"],
            "An invalid response was received from the upstream server",
            "{name}"
        );
    }
    gw.shutdown().await;
}
