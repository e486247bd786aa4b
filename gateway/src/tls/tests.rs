use std::sync::Arc;

use rcgen::{CertificateParams, KeyPair};
use serde_json::json;

use super::*;
use crate::declarative::model::Model;

fn cert_pem(name: &str) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

fn model(snis: &[(&str, &str)]) -> Model {
    let mut certs = Vec::new();
    let mut names = Vec::new();
    for (i, (name, cert_id)) in snis.iter().enumerate() {
        if !certs
            .iter()
            .any(|c: &serde_json::Value| c["id"] == *cert_id)
        {
            let (cert, key) = cert_pem(name);
            certs.push(json!({"id": cert_id, "cert": cert, "key": key}));
        }
        names.push(json!({"id": format!("s{i}"), "name": name, "certificate": {"id": cert_id}}));
    }
    Model {
        certificates: serde_json::from_value(json!(certs)).unwrap(),
        snis: serde_json::from_value(json!(names)).unwrap(),
        ..Model::default()
    }
}

fn served(table: &CertTable, sni: Option<&str>) -> Vec<u8> {
    table
        .select(sni, &[rustls::SignatureScheme::ECDSA_NISTP256_SHA256])
        .cert[0]
        .to_vec()
}

#[test]
fn sni_selection_follows_kongs_order() {
    let m = model(&[
        ("api.example.com", "exact"),
        ("*.example.com", "prefix"),
        ("example.*", "suffix"),
        ("other.test", "exact"),
    ]);
    let default = default_cert::generate().unwrap();
    let (table, problems) = CertTable::build(&m, Arc::clone(&default));
    assert!(problems.is_empty(), "{problems:?}");
    let leaf = |id: &str| {
        let sni = m.snis.iter().find(|s| s.certificate.id == id).unwrap();
        served(&table, Some(&sni.name.replace('*', "x")))
    };
    let (exact, prefix, suffix) = (leaf("exact"), leaf("prefix"), leaf("suffix"));
    assert_ne!(exact, prefix);
    assert_ne!(prefix, suffix);
    assert_eq!(served(&table, Some("api.example.com")), exact);
    assert_eq!(served(&table, Some("other.test")), exact);
    assert_eq!(served(&table, Some("www.example.com")), prefix);
    assert_eq!(served(&table, Some("example.org")), suffix);
    // Only one label is replaced: a deeper name does not match `*.example.com`.
    let default_der = default.cert[0].to_vec();
    assert_eq!(served(&table, Some("a.b.example.com")), default_der);
    assert_eq!(served(&table, Some("nomatch.test")), default_der);
    assert_eq!(served(&table, None), default_der);
}

#[test]
fn catch_all_sni_beats_the_default_but_not_a_missing_sni() {
    let m = model(&[("*", "any")]);
    let default = default_cert::generate().unwrap();
    let (table, _) = CertTable::build(&m, Arc::clone(&default));
    assert_ne!(
        served(&table, Some("whatever.test")),
        default.cert[0].to_vec()
    );
    assert_eq!(served(&table, None), default.cert[0].to_vec());
}

#[test]
fn bad_pem_is_reported_and_left_out() {
    let m: Model = Model {
        certificates: serde_json::from_value(json!([{"id": "c1", "cert": "nope", "key": "nope"}]))
            .unwrap(),
        snis: serde_json::from_value(
            json!([{"id": "s", "name": "a.test", "certificate": {"id": "c1"}}]),
        )
        .unwrap(),
        ..Model::default()
    };
    let (table, problems) = CertTable::build(&m, default_cert::generate().unwrap());
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].starts_with("certificate c1: invalid certificate"),
        "{problems:?}"
    );
    assert!(table.is_empty());
}

#[test]
fn mismatched_key_is_rejected() {
    let (cert, _) = cert_pem("a.test");
    let (_, other_key) = cert_pem("b.test");
    let err = pem::certified_key("c", &cert, &other_key)
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not match"), "{err}");
}

#[test]
fn kong_conf_certificate_inline_or_file_and_pairs_required() {
    let (cert, key) = cert_pem("conf.test");
    let inline = default_cert::load(Some(&cert), Some(&key)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (c, k) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    std::fs::write(&c, &cert).unwrap();
    std::fs::write(&k, &key).unwrap();
    let from_file = default_cert::load(c.to_str(), k.to_str()).unwrap();
    assert_eq!(inline.cert[0], from_file.cert[0]);
    assert!(default_cert::load(Some(&cert), None).is_err());
    let missing = default_cert::load(Some("/nonexistent.pem"), Some("/nonexistent.key"));
    assert!(missing
        .unwrap_err()
        .to_string()
        .contains("/nonexistent.pem"));
}
