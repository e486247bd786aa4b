use std::sync::Arc;

use http::HeaderMap;

use super::*;
use crate::component::ExtensionFactory;

fn config(yaml: &str) -> RawConfig {
    yaml_serde::from_str(yaml).unwrap()
}

fn setter(yaml: &str) -> HeadersSetter {
    let config: Config = decode(&config(yaml)).unwrap();
    config.validate().unwrap();
    HeadersSetter::new(&config).unwrap()
}

fn client(metadata: &[(&str, &str)]) -> ClientInfo {
    ClientInfo {
        addr: None,
        metadata: Arc::new(
            metadata
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
    }
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(k, v)| {
            (
                http::HeaderName::from_static(k),
                http::HeaderValue::from_static(v),
            )
        })
        .collect()
}

#[test]
fn validation_uses_otelcols_messages_at_the_entry() {
    let err = |yaml: &str| FACTORY.validate(&config(yaml)).unwrap_err();
    assert_eq!(err("headers: []").message, "missing headers configuration");
    let e = err("headers: [{value: x}]");
    assert_eq!(e.message, "missing header name");
    assert_eq!(e.path, ["headers", "0"]);
    let e = err("headers: [{key: a, value: x}, {key: b}]");
    assert_eq!(
        e.message,
        "missing header source, must be 'from_context' or 'value'"
    );
    assert_eq!(e.path, ["headers", "1"]);
    assert_eq!(
        err("headers: [{key: a, value: x, from_context: y}]").message,
        "invalid header source, must either 'from_context' or 'value'"
    );
    assert!(err("headers: [{key: a, value: x, action: replace}]")
        .message
        .contains("unknown action"));
    assert!(FACTORY
        .validate(&config("headers: [{key: a, action: DELETE}]"))
        .is_ok());
}

#[test]
fn actions_insert_update_upsert_delete() {
    let s = setter(
        "headers:
  - {key: x-insert, value: new, action: insert}
  - {key: x-update, value: new, action: update}
  - {key: x-upsert, value: new}
  - {key: x-delete, action: delete}
  - {key: x-absent-update, value: new, action: update}
  - {key: x-absent-insert, value: new, action: INSERT}",
    );
    let mut h = headers(&[
        ("x-insert", "old"),
        ("x-update", "old"),
        ("x-upsert", "old"),
        ("x-delete", "old"),
    ]);
    s.apply_for(&mut h, None);
    assert_eq!(h["x-insert"], "old");
    assert_eq!(h["x-update"], "new");
    assert_eq!(h["x-upsert"], "new");
    assert!(!h.contains_key("x-delete"));
    assert!(!h.contains_key("x-absent-update"));
    assert_eq!(h["x-absent-insert"], "new");
    assert!(h["x-upsert"].is_sensitive());
}

#[test]
fn from_context_takes_the_first_metadata_value_then_the_default() {
    let s = setter(
        "headers:
  - {key: X-Scope-OrgID, from_context: tenant, default_value: anonymous}
  - {key: X-Team, from_context: team}",
    );
    let mut h = HeaderMap::new();
    s.apply_for(
        &mut h,
        Some(&client(&[("Tenant", "acme"), ("tenant", "other")])),
    );
    assert_eq!(h["x-scope-orgid"], "acme");
    assert!(!h.contains_key("x-team"), "no value and no default: unset");
    let mut h = HeaderMap::new();
    s.apply_for(&mut h, Some(&client(&[])));
    assert_eq!(h["x-scope-orgid"], "anonymous");
    let mut h = HeaderMap::new();
    s.apply_for(&mut h, None);
    assert_eq!(h["x-scope-orgid"], "anonymous");
}

#[tokio::test]
async fn the_exported_batchs_client_is_read_inside_its_scope() {
    let s = setter("headers: [{key: x-tenant, from_context: tenant}]");
    let mut outside = HeaderMap::new();
    s.apply(&mut outside);
    assert!(outside.is_empty());
    let inside = crate::pipeline::client::scope(client(&[("tenant", "acme")]), async {
        let mut h = HeaderMap::new();
        s.apply(&mut h);
        h
    })
    .await;
    assert_eq!(inside["x-tenant"], "acme");
}
