//! Property tests of the operators and the expression subset: any line through any parser,
//! and any expression text, give entries or errors, never a panic. Fixed case budgets.

use proptest::prelude::*;

use super::*;

fn pipeline(yaml: &str) -> Pipeline {
    let ops: Vec<yaml_serde::Value> = yaml_serde::from_str(yaml).unwrap();
    build(&ops).unwrap()
}

/// Every parser and transformer, each routing errors onward (`send_quiet`) so all of them
/// see every line.
const CHAIN: &str = "
- {type: json_parser, on_error: send_quiet}
- {type: regex_parser, regex: '^(?P<method>[A-Z]+) (?P<path>\\S+) (?P<status>\\d+)', on_error: send_quiet}
- {type: key_value_parser, on_error: send_quiet}
- {type: csv_parser, header: 'a,b,c', on_error: send_quiet, parse_to: attributes.csv}
- {type: severity_parser, parse_from: attributes.status, on_error: send_quiet}
- {type: time_parser, parse_from: attributes.ts, layout: '%Y-%m-%dT%H:%M:%S%z', on_error: send_quiet}
- {type: trace_parser, trace_id: {parse_from: attributes.tid}, on_error: send_quiet}
- {type: move, from: attributes.method, to: attributes.verb, on_error: send_quiet}
- {type: copy, from: attributes.path, to: attributes.route, on_error: send_quiet}
- {type: add, field: attributes.seen, value: 'yes'}
- {type: remove, field: attributes.a, on_error: send_quiet}
- {type: uri_parser, parse_from: attributes.path, parse_to: attributes.uri, on_error: send_quiet}
- {type: uri_parser, id: uri_whole, parse_to: attributes.whole, on_error: send_quiet}
- {type: json_array_parser, parse_to: attributes.list, on_error: send_quiet}
- {type: json_array_parser, id: columns, header: 'x,y', parse_to: attributes.cols, on_error: send_quiet}
- {type: assign_keys, field: attributes.list, keys: [p, q], on_error: send_quiet}
- {type: copy, id: copy_body, from: body, to: attributes.quoted, on_error: send_quiet}
- {type: syslog_parser, protocol: rfc5424, parse_to: attributes.s5424, on_error: send_quiet}
- {type: syslog_parser, id: bsd, protocol: rfc3164, allow_skip_pri_header: true, on_error: send_quiet}
- {type: unquote, field: attributes.quoted, on_error: send_quiet}
- {type: recombine, combine_field: body, is_last_entry: 'body matches \"\\\\}$\"', max_batch_size: 3, on_error: send_quiet}
- {type: filter, expr: 'attributes.verb == \"DROP\"'}
";

/// Lines that look like what the parsers expect, mutated.
fn line() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("\"".to_owned()),
        Just(":".to_owned()),
        Just(",".to_owned()),
        Just("=".to_owned()),
        Just(" ".to_owned()),
        Just("GET /a 503".to_owned()),
        Just("status=".to_owned()),
        Just("ts=2025-02-05T14:16:56+0000".to_owned()),
        Just("tid=4bf92f3577b34da6a3ce929d0e0e4736".to_owned()),
        Just("\"level\":\"error\"".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("\\".to_owned()),
        Just("`".to_owned()),
        Just("'".to_owned()),
        Just("\\u00e9\\x41\\101".to_owned()),
        Just("https://u:p@[::1]:8080/a%20b?x=1&x=2".to_owned()),
        Just("?q=%zz".to_owned()),
        Just("<86>1 2015-08-05T21:58:59.693Z host app 1 ID ".to_owned()),
        Just("[id@1 a=\"b\\\"\"]".to_owned()),
        Just("<34>Jan 12 06:30:00 h tag[1]: ".to_owned()),
        Just(" - ".to_owned()),
        "[ -~]{0,6}",
        "\\PC{0,3}",
    ];
    proptest::collection::vec(piece, 0..16).prop_map(|p| p.concat())
}

/// Expression text built from the subset's tokens, mutated.
fn expression() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("body".to_owned()),
        Just("attributes.status".to_owned()),
        Just("attributes[\"a b\"]".to_owned()),
        Just("resource.host".to_owned()),
        Just(" == ".to_owned()),
        Just(" != ".to_owned()),
        Just(" and ".to_owned()),
        Just(" or ".to_owned()),
        Just("not ".to_owned()),
        Just(" matches ".to_owned()),
        Just(" contains ".to_owned()),
        Just(" startsWith ".to_owned()),
        Just(" < ".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just("\"x\"".to_owned()),
        Just("'[a-'".to_owned()),
        Just("503".to_owned()),
        Just("1.5".to_owned()),
        Just("true".to_owned()),
        Just("nil".to_owned()),
        "[ -~]{0,3}",
    ];
    proptest::collection::vec(piece, 0..10).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any line, twice, through every operator (recombine included, flushed at the end)
    /// yields at most two entries and never panics.
    #[test]
    fn any_line_through_every_operator(text in line()) {
        let p = pipeline(CHAIN);
        let mut out = Vec::new();
        p.process(Entry::new(value::string(&text), 1), &mut out);
        p.process(Entry::new(value::string(&text), 1), &mut out);
        p.flush(true, &mut out);
        prop_assert!(out.len() <= 2);
    }

    /// Any expression text compiles or is refused with a message; a compiled one evaluates
    /// against any entry to a value or an error.
    #[test]
    fn any_expression_compiles_or_is_refused(source in expression(), text in line()) {
        match expr::Expr::compile(&source) {
            Ok(e) => {
                let p = pipeline("[{type: key_value_parser, on_error: send_quiet}]");
                let mut out = Vec::new();
                p.process(Entry::new(value::string(&text), 1), &mut out);
                for entry in &out {
                    let _value = e.eval(entry);
                    let _truth = e.eval_bool(entry);
                }
            }
            Err(message) => prop_assert!(!message.is_empty()),
        }
    }

    /// Any YAML list given as `operators` builds or is refused; it never panics.
    #[test]
    fn any_operator_list_builds_or_is_refused(
        kind in prop_oneof![Just("json_parser"), Just("regex_parser"), Just("router"), Just("move"), Just("add"), Just("filter"), Just("severity_parser"), Just("unquote"), Just("assign_keys"), Just("uri_parser"), Just("json_array_parser"), Just("nope")],
        key in prop_oneof![Just("regex"), Just("expr"), Just("from"), Just("to"), Just("field"), Just("routes"), Just("output"), Just("id"), Just("if"), Just("on_error"), Just("keys"), Just("header"), Just("parse_to")],
        value in expression(),
    ) {
        let yaml = format!("[{{type: {kind}, {key}: {value:?}}}]");
        if let Ok(ops) = yaml_serde::from_str::<Vec<yaml_serde::Value>>(&yaml) {
            let _built = build(&ops).is_ok();
        }
    }
}
