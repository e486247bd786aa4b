use serde_json::json;

use super::lua::compile;
use super::serialize::{set_value, wire_line};
use super::TcpLogFactory;
use crate::plugins::Factory;
use crate::proxy::context::RequestContext;

const SEED: &str = "local log_payload = kong.log.serialize() local trace_id = log_payload['trace_id']['w3c'] return trace_id";

fn ctx() -> RequestContext {
    RequestContext::new("127.0.0.1:1".parse().unwrap(), 8000)
}

#[test]
fn seed_snippet_flattens_the_trace_id_and_fails_without_one() {
    let s = compile(SEED).unwrap();
    let payload = json!({"trace_id": {"w3c": "4bf92f3577b34da6a3ce929d0e0e4736"}});
    assert_eq!(
        s.run(&ctx(), &payload).unwrap(),
        Some(json!("4bf92f3577b34da6a3ce929d0e0e4736"))
    );
    assert!(
        s.run(&ctx(), &json!({})).is_err(),
        "indexing nil fails as in Lua"
    );
    let s = compile("return kong.request.get_header(\"x-missing\")").unwrap();
    assert_eq!(s.run(&ctx(), &json!({})).unwrap(), None);
    assert_eq!(
        compile("return 'static'")
            .unwrap()
            .run(&ctx(), &json!({}))
            .unwrap(),
        Some(json!("static"))
    );
}

#[test]
fn unsupported_snippets_are_config_errors() {
    for bad in [
        "os.execute('rm -rf /')",
        "return string.upper('x')",
        "local t = {} return t",
        "return kong.log.serialize() .. 'x'",
    ] {
        assert!(compile(bad).is_err(), "{bad}");
    }
    let mut config =
        json!({"host": "h", "port": 1, "custom_fields_by_lua": {"f": "return io.open('x')"}});
    let err = TcpLogFactory.check_config(&mut config).unwrap_err();
    assert_eq!(err[0].0, "custom_fields_by_lua.f");
    assert!(err[0].1.starts_with("unsupported Lua snippet"), "{err:?}");
}

#[test]
fn config_defaults_and_required_fields() {
    let mut config = json!({"host": "collector", "port": 54525});
    TcpLogFactory.check_config(&mut config).unwrap();
    assert_eq!(config["timeout"], 10000);
    assert_eq!(config["keepalive"], 60000);
    assert_eq!(config["tls"], false);
    let err = TcpLogFactory.check_config(&mut json!({})).unwrap_err();
    assert_eq!(
        err,
        vec![
            ("host".to_owned(), "required field missing".to_owned()),
            ("port".to_owned(), "required field missing".to_owned())
        ]
    );
}

#[test]
fn set_serialize_value_nests_dotted_keys_and_deletes_nil() {
    let mut v = json!({"a": {"x": 1}, "gone": 2});
    set_value(&mut v, "a.b.c", Some(json!(3)));
    set_value(&mut v, "lit\\.dot", Some(json!(true)));
    set_value(&mut v, "gone", None);
    assert_eq!(v, json!({"a": {"x": 1, "b": {"c": 3}}, "lit.dot": true}));
}

#[test]
fn wire_lines_escape_slashes_like_cjson() {
    let line = wire_line(&json!({"uri": "/coupon/apply", "n": 1}));
    assert!(line.ends_with("}\n"));
    assert!(line.contains(r#""uri":"\/coupon\/apply""#), "{line}");
    let back: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
    assert_eq!(back["uri"], "/coupon/apply");
}

#[test]
fn index_zero_is_nil_as_in_lua() {
    // Found by the snippet property test: `[0]` was refused, though Lua reads it as nil.
    let s = compile("return kong.log.serialize()['tries'][0]").unwrap();
    let payload = json!({"tries": [{"ip": "127.0.0.1"}]});
    assert_eq!(s.run(&ctx(), &payload).unwrap(), None);
    let s = compile("return kong.log.serialize()['tries'][1]['ip']").unwrap();
    assert_eq!(s.run(&ctx(), &payload).unwrap(), Some(json!("127.0.0.1")));
}

#[tokio::test]
async fn a_down_destination_counts_every_lost_entry_without_a_line_each() {
    use crate::plugins::Plugin;

    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let plugin = super::TcpLog::new(&json!({"host": "127.0.0.1", "port": port})).unwrap();
    let ctx = ctx();
    let sent = 50;
    for _ in 0..sent {
        plugin.log(&ctx);
    }
    let counted = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while plugin.send_failures() < sent {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(
        counted.is_ok(),
        "{} of {sent} failures counted",
        plugin.send_failures()
    );
    assert_eq!(plugin.send_failures(), sent);
    assert!(plugin.failure_lines() >= 1, "the first failure is logged");
    assert!(
        plugin.failure_lines() < sent,
        "not one line per failure: {} lines",
        plugin.failure_lines()
    );
}
