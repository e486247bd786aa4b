//! The operator chain as configured in YAML: every operator, every `on_error` mode, `if`,
//! routing, and the config errors users see.

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};

use super::*;

fn pipeline(yaml: &str) -> Pipeline {
    let ops: Vec<yaml_serde::Value> = yaml_serde::from_str(yaml).unwrap();
    build(&ops).unwrap()
}

fn error(yaml: &str) -> String {
    let ops: Vec<yaml_serde::Value> = yaml_serde::from_str(yaml).unwrap();
    build(&ops).unwrap_err().to_string()
}

fn run(p: &Pipeline, body: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    p.process(Entry::new(value::string(body), 1), &mut out);
    out
}

fn attr<'a>(e: &'a Entry, key: &str) -> Option<&'a AnyValue> {
    value::get(&e.attributes, key)
}

fn double(d: f64) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::DoubleValue(d)),
    }
}

const KONG_LINE: &str = r#"{"request":{"method":"GET","uri":"\/a"},"response":{"status":503},"started_at":1738765016123,"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","level":"error"}"#;

#[test]
fn json_parser_keeps_the_body_and_fills_attributes() {
    let out = run(&pipeline("[{type: json_parser}]"), KONG_LINE);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].body, value::string(KONG_LINE));
    assert_eq!(
        attr(&out[0], "started_at"),
        Some(&double(1_738_765_016_123.0))
    );
    let response = value::as_map(attr(&out[0], "response").unwrap()).unwrap();
    assert_eq!(value::get(response, "status"), Some(&double(503.0)));
}

#[test]
fn parse_to_body_parse_from_and_embedded_blocks() {
    let p = pipeline(
        "- type: json_parser
  parse_to: body
  timestamp: {parse_from: body.started_at, layout_type: epoch, layout: ms}
  severity: {parse_from: body.level}
  trace: {trace_id: {parse_from: body.trace_id}}
  scope_name: {parse_from: body.request.method}
- type: regex_parser
  parse_from: body.request.uri
  parse_to: attributes.uri
  regex: '^/(?P<first>\\w+)'
",
    );
    let out = run(&p, KONG_LINE);
    let e = &out[0];
    assert!(
        value::as_map(&e.body).is_some(),
        "parse_to: body replaces the body"
    );
    assert_eq!(e.timestamp, 1_738_765_016_123_000_000);
    assert_eq!((e.severity, e.severity_text.as_str()), (17, "error"));
    assert_eq!(hex::encode(&e.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(e.scope_name, "GET");
    let uri = value::as_map(attr(e, "uri").unwrap()).unwrap();
    assert_eq!(value::get(uri, "first"), Some(&value::string("a")));
}

#[test]
fn on_error_modes() {
    // Not JSON: send passes the entry on unchanged, drop drops it; quiet only logs lower.
    for (mode, passes) in [
        ("send", true),
        ("send_quiet", true),
        ("drop", false),
        ("drop_quiet", false),
    ] {
        let p = pipeline(&format!("[{{type: json_parser, on_error: {mode}}}, {{type: add, field: attributes.after, value: yes}}]"));
        let out = run(&p, "not json");
        assert_eq!(out.len(), usize::from(passes), "{mode}");
        if passes {
            assert_eq!(out[0].body, value::string("not json"));
            assert_eq!(
                attr(&out[0], "after"),
                Some(&value::string("yes")),
                "later operators still run"
            );
        }
    }
    // A sub-parser error comes after the main parse: with send, the parsed keys stay.
    let p = pipeline("[{type: json_parser, timestamp: {parse_from: attributes.nope, layout_type: epoch, layout: s}}]");
    let out = run(&p, r#"{"a":1}"#);
    assert_eq!(attr(&out[0], "a"), Some(&double(1.0)));
    let p =
        pipeline("[{type: json_parser, on_error: drop, severity: {parse_from: attributes.nope}}]");
    assert!(run(&p, r#"{"a":1}"#).is_empty());
}

#[test]
fn if_skips_and_errors_follow_on_error() {
    let p = pipeline(
        "- type: json_parser
- type: add
  if: 'attributes.response.status >= 500'
  field: attributes.alert
  value: true
- type: add
  id: never
  if: 'attributes.missing > 1'
  field: attributes.never
  value: 1
  on_error: send_quiet
",
    );
    let out = run(&p, KONG_LINE);
    assert_eq!(
        attr(&out[0], "alert").unwrap().value,
        Some(any_value::Value::BoolValue(true))
    );
    assert!(attr(&out[0], "never").is_none());
    let out = run(&p, r#"{"response":{"status":200}}"#);
    assert!(attr(&out[0], "alert").is_none());
    let p = pipeline("[{type: noop, output: x}, {type: remove, id: x, if: 'body > 1', field: body, on_error: drop}]");
    assert!(
        run(&p, "text").is_empty(),
        "an if that fails to evaluate is an error"
    );
}

#[test]
fn field_operators() {
    let p = pipeline(
        r#"
- type: json_parser
- type: move
  from: attributes.request.method
  to: attributes["http.method"]
- type: copy
  from: attributes.level
  to: resource.level
- type: add
  id: note
  field: attributes.note
  value: EXPR(attributes.level)
- type: add
  field: attributes.static
  value: {a: 1, b: [x]}
- type: flatten
  field: body.n
  on_error: send_quiet
- type: remove
  field: attributes.trace_id
- type: retain
  fields: ['attributes["http.method"]', attributes.static, attributes.note]
"#,
    );
    let out = run(&p, KONG_LINE);
    let e = &out[0];
    assert_eq!(attr(e, "http.method"), Some(&value::string("GET")));
    assert_eq!(
        value::get(&e.resource, "level"),
        Some(&value::string("error"))
    );
    let names: Vec<&str> = e.attributes.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(names, vec!["http.method", "static", "note"]);
    assert_eq!(attr(e, "note"), Some(&value::string("error")));
    let stat = value::as_map(attr(e, "static").unwrap()).unwrap();
    assert_eq!(
        value::get(stat, "a").unwrap().value,
        Some(any_value::Value::IntValue(1))
    );
}

#[test]
fn move_of_a_missing_field_is_an_error() {
    let p = pipeline("[{type: move, from: body.a, to: body.b, on_error: drop}]");
    assert!(run(&p, "x").is_empty());
    let p = pipeline("[{type: add, field: body.a, value: 1}, {type: flatten, field: body.a}]");
    let out = run(&p, "x");
    assert_eq!(out.len(), 1, "send passes it on");
}

#[test]
fn other_parsers_and_standalone_sub_parsers() {
    let p = pipeline(
        "- type: key_value_parser
- type: severity_parser
  parse_from: attributes.status
  mapping: {error: 5xx, info: 2xx}
  overwrite_text: true
- type: time_parser
  parse_from: attributes.ts
  layout: '%Y-%m-%dT%H:%M:%S%z'
- type: trace_parser
  trace_id: {parse_from: attributes.tid}
- type: scope_name_parser
  parse_from: attributes.logger
",
    );
    let out = run(
        &p,
        "status=503 ts=2025-02-05T14:16:56+0000 tid=4bf92f3577b34da6a3ce929d0e0e4736 logger=kong",
    );
    let e = &out[0];
    assert_eq!((e.severity, e.severity_text.as_str()), (17, "ERROR"));
    assert_eq!(e.timestamp, 1_738_765_016_000_000_000);
    assert_eq!(e.trace_id.len(), 16);
    assert_eq!(e.scope_name, "kong");
    let p = pipeline("[{type: csv_parser, header: 'a,b,c', parse_to: body}]");
    let out = run(&p, "1,two,\"th,ree\"");
    assert_eq!(
        value::get(value::as_map(&out[0].body).unwrap(), "c"),
        Some(&value::string("th,ree"))
    );
    let p = pipeline("[{type: csv_parser, header: 'a|b', delimiter: '|'}]");
    assert_eq!(attr(&run(&p, "1|2")[0], "b"), Some(&value::string("2")));
}

#[test]
fn router_filter_and_outputs() {
    let p = pipeline(
        "- type: json_parser
- type: router
  routes:
    - expr: 'attributes.response.status >= 500'
      output: errors
      attributes: {routed: error}
    - expr: 'attributes.request.method in [\"GET\", \"HEAD\"]'
      output: [reads, copy]
  default: rest
- type: add
  id: errors
  field: attributes.kind
  value: error
  output: end
- type: add
  id: reads
  field: attributes.kind
  value: read
  output: end
- type: add
  id: copy
  field: attributes.kind
  value: copy
  output: end
- type: filter
  id: rest
  expr: 'attributes.drop == true'
- type: noop
  id: end
",
    );
    let out = run(&p, KONG_LINE);
    assert_eq!(out.len(), 1);
    assert_eq!(attr(&out[0], "kind"), Some(&value::string("error")));
    assert_eq!(attr(&out[0], "routed"), Some(&value::string("error")));
    let out = run(
        &p,
        r#"{"request":{"method":"GET"},"response":{"status":200}}"#,
    );
    let kinds: Vec<_> = out.iter().map(|e| attr(e, "kind").cloned()).collect();
    assert_eq!(
        kinds,
        vec![Some(value::string("read")), Some(value::string("copy"))],
        "a list output fans out"
    );
    let out = run(&p, r#"{"request":{"method":"POST"},"drop":true}"#);
    assert!(out.is_empty(), "the filter drops it");
    let out = run(&p, r#"{"request":{"method":"POST"}}"#);
    assert_eq!(out.len(), 1, "default route, not filtered");
    let p = pipeline(
        "[{type: router, routes: [{expr: 'body == \"a\"', output: n}]}, {type: noop, id: n}]",
    );
    assert!(run(&p, "b").is_empty(), "no match and no default drops");
    let p = pipeline("[{type: filter, expr: 'true', drop_ratio: 0.0}]");
    assert_eq!(run(&p, "x").len(), 1);
}

#[test]
fn config_errors() {
    for (yaml, want) in [
        ("[{id: x}]", "0::type: missing required field 'type'"),
        ("[{type: nope}]", "0::type: unsupported type 'nope'"),
        (
            "[{type: json_parser}, {type: json_parser}]",
            "1::id: duplicate operator id \"json_parser\"",
        ),
        (
            "[{type: json_parser, output: ghost}]",
            "0::output: operator \"ghost\" does not exist",
        ),
        (
            "[{type: json_parser, on_error: ignore}]",
            "0::on_error: invalid value \"ignore\"",
        ),
        (
            "[{type: json_parser, parse_intz: true}]",
            "0::parse_intz: unknown field `parse_intz`",
        ),
        (
            "[{type: regex_parser, regex: 'a+'}]",
            "0::regex: no named capture groups in regex pattern",
        ),
        (
            "[{type: regex_parser, regex: '(?P<a>'}]",
            "0::regex: compiling regex",
        ),
        (
            "[{type: move, from: body.a}]",
            "0::to: missing required field 'to'",
        ),
        (
            "[{type: add, field: body.a}]",
            "0::value: missing required field 'value'",
        ),
        (
            "[{type: add, field: 'body..a', value: 1}]",
            "0::field: invalid field",
        ),
        (
            "[{type: remove, field: body, if: 'len(body) > 0'}]",
            "0::if: function \"len\"",
        ),
        (
            "[{type: filter, expr: 'body.a + 1'}]",
            "0::expr: arithmetic",
        ),
        (
            "[{type: filter, expr: 'true', drop_ratio: 2}]",
            "0::drop_ratio: drop_ratio must be a number between 0 and 1",
        ),
        (
            "[{type: json_parser, parse_to: body, body: attributes.x}]",
            "0::body: `body` cannot be combined",
        ),
        (
            "[{type: json_parser, timestamp: {parse_from: body.t, layout_type: epoch}}]",
            "0::timestamp: missing required configuration parameter `layout`",
        ),
        (
            "[{type: json_parser, severity: {parse_from: body.l, preset: loud}}]",
            "0::severity: unknown severity preset",
        ),
        ("[{type: csv_parser}]", "0: missing header"),
        (
            "[{type: flatten, field: body}]",
            "0::field: flatten: field must be a body field below the root",
        ),
        (
            "[{type: noop, id: a, output: b}, {type: noop, id: b, output: a}]",
            "operator pipeline has a cycle",
        ),
        (
            "[{type: router, routes: [{expr: 'true'}]}]",
            "0::routes::0::output: missing required field 'output'",
        ),
        (
            "[{type: key_value_parser, delimiter: ' ', pair_delimiter: ' '}]",
            "0::pair_delimiter: delimiter and pair_delimiter cannot be the same value",
        ),
        ("[plain]", "0: an operator must be a map"),
    ] {
        let got = error(yaml);
        assert!(got.starts_with(want), "{yaml}: {got}");
    }
}
