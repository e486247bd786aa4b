//! The tcplog receiver's `tls` block with a real TLS client (tokio-rustls) and certificates
//! generated per test: lines over TLS, mutual TLS refusing clients without a trusted
//! certificate, `min_version`, and plaintext clients on a TLS port.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsConnector;

use super::*;
use crate::pipeline::{Batch, Capture};
use crate::receivers::stanza::value;

/// A CA and the certificates it signed, as PEM files in a directory.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    dir: PathBuf,
}

impl Pki {
    fn new(dir: &Path, name: &str) -> Self {
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

    fn ca_file(&self) -> String {
        self.dir.join("ca.crt").to_str().unwrap().to_owned()
    }

    /// Writes `<name>.crt` and `<name>.key` for `localhost` / 127.0.0.1; returns the paths.
    fn issue(&self, name: &str) -> (String, String) {
        let params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        let crt = self.dir.join(format!("{name}.crt"));
        let pem = self.dir.join(format!("{name}.key"));
        std::fs::write(&crt, cert.pem()).unwrap();
        std::fs::write(&pem, key.serialize_pem()).unwrap();
        (
            crt.to_str().unwrap().to_owned(),
            pem.to_str().unwrap().to_owned(),
        )
    }
}

struct Running {
    receiver: Arc<Receiver>,
    logs: Arc<Capture>,
    addr: SocketAddr,
}

async fn start(yaml: &str) -> Result<Running, ComponentError> {
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
        .await?;
    let addr = receiver.local_addr().unwrap();
    Ok(Running {
        receiver,
        logs,
        addr,
    })
}

fn bodies(capture: &Capture) -> Vec<String> {
    capture
        .batches()
        .into_iter()
        .flat_map(|b| match b {
            Batch::Logs(rl) => rl,
            _ => Vec::new(),
        })
        .flat_map(|rl| rl.scope_logs)
        .flat_map(|sl| sl.log_records)
        .map(|r| value::as_str(r.body.as_ref().unwrap()).unwrap().to_owned())
        .collect()
}

async fn wait_for(capture: &Capture, n: usize) -> Vec<String> {
    for _ in 0..500 {
        if capture.item_count() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bodies(capture)
}

/// A client trusting `ca`, presenting `identity` (certificate and key files) when given,
/// limited to `versions`.
fn client(
    ca: &str,
    identity: Option<&(String, String)>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> TlsConnector {
    crate::tls::install_crypto_provider();
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder =
        ClientConfig::builder_with_protocol_versions(versions).with_root_certificates(roots);
    let config = match identity {
        Some((crt, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(crt)
                    .unwrap()
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_file(key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    TlsConnector::from(Arc::new(config))
}

const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Sends `data` over TLS and closes; the error if the handshake or the exchange failed
/// (the server's alert arrives on the read after the write under TLS 1.3).
async fn send_tls(addr: SocketAddr, connector: &TlsConnector, data: &[u8]) -> std::io::Result<()> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await?;
    tls.write_all(data).await?;
    tls.flush().await?;
    tls.shutdown().await?;
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut rest))
        .await
        .map_err(|_| std::io::Error::other("no answer from the server"))??;
    Ok(())
}

#[tokio::test]
async fn lines_over_tls_are_parsed_like_plain_ones() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "server");
    let (crt, key) = pki.issue("server");
    let r = start(&format!(
        "listen_address: 127.0.0.1:0\ntls: {{cert_file: {crt}, key_file: {key}}}\noperators:\n  - type: json_parser\n"
    ))
    .await
    .unwrap();
    let connector = client(&pki.ca_file(), None, BOTH);
    send_tls(r.addr, &connector, b"{\"status\":200}\r\nsecond\n")
        .await
        .unwrap();
    assert_eq!(wait_for(&r.logs, 2).await, ["{\"status\":200}", "second"]);
    r.receiver.shutdown().await.unwrap();
}

#[tokio::test]
async fn mutual_tls_refuses_clients_without_a_trusted_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "server");
    let (crt, key) = pki.issue("server");
    let trusted = pki.issue("client");
    let other = Pki::new(dir.path(), "other").issue("client");
    let ca = pki.ca_file();
    let r = start(&format!(
        "listen_address: 127.0.0.1:0\ntls: {{cert_file: {crt}, key_file: {key}, client_ca_file: {ca}}}\n"
    ))
    .await
    .unwrap();

    let anonymous = send_tls(r.addr, &client(&ca, None, BOTH), b"anonymous\n").await;
    assert!(anonymous.is_err(), "no client certificate: refused");
    let untrusted = send_tls(r.addr, &client(&ca, Some(&other), BOTH), b"untrusted\n").await;
    assert!(untrusted.is_err(), "certificate from another CA: refused");
    let mut plain = TcpStream::connect(r.addr).await.unwrap();
    plain.write_all(b"plaintext\n").await.unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), plain.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "a plaintext client is closed");

    send_tls(
        r.addr,
        &client(&ca, Some(&trusted), BOTH),
        b"trusted 1\ntrusted 2\n",
    )
    .await
    .unwrap();
    assert_eq!(wait_for(&r.logs, 2).await, ["trusted 1", "trusted 2"]);
    assert_eq!(r.receiver.active_connections(), 0);
    r.receiver.shutdown().await.unwrap();
}

#[tokio::test]
async fn min_version_refuses_older_clients() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "server");
    let (crt, key) = pki.issue("server");
    let r = start(&format!(
        "listen_address: 127.0.0.1:0\ntls: {{cert_pem: {:?}, key_pem: {:?}, min_version: '1.3'}}\n",
        std::fs::read_to_string(&crt).unwrap(),
        std::fs::read_to_string(&key).unwrap(),
    ))
    .await
    .unwrap();
    let ca = pki.ca_file();
    let old = send_tls(
        r.addr,
        &client(&ca, None, &[&rustls::version::TLS12]),
        b"tls 1.2\n",
    )
    .await;
    assert!(old.is_err(), "TLS 1.2 below min_version 1.3");
    send_tls(
        r.addr,
        &client(&ca, None, &[&rustls::version::TLS13]),
        b"tls 1.3\n",
    )
    .await
    .unwrap();
    assert_eq!(wait_for(&r.logs, 1).await, ["tls 1.3"]);
    r.receiver.shutdown().await.unwrap();
}

#[tokio::test]
async fn unreadable_certificate_fails_start_with_the_path() {
    let Err(err) = start(
        "listen_address: 127.0.0.1:0\ntls: {cert_file: /nonexistent/server.crt, key_file: /nonexistent/server.key}\n",
    )
    .await
    else {
        panic!("start must fail");
    };
    assert!(
        err.to_string()
            .contains("failed to load TLS config: read /nonexistent/server.crt"),
        "{err}"
    );
}
