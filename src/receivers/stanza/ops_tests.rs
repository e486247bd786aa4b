//! Table tests of `unquote`, `assign_keys`, `uri_parser`, `json_array_parser`,
//! `syslog_parser` and `recombine`, from the input → output examples of stanza's operator
//! docs, with their `on_error` modes and config errors.

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, ArrayValue};

use super::*;

fn pipeline(yaml: &str) -> Pipeline {
    let ops: Vec<yaml_serde::Value> = yaml_serde::from_str(yaml).unwrap();
    build(&ops).unwrap()
}

fn error(yaml: &str) -> String {
    let ops: Vec<yaml_serde::Value> = yaml_serde::from_str(yaml).unwrap();
    build(&ops).unwrap_err().to_string()
}

fn run_entry(p: &Pipeline, entry: Entry) -> Vec<Entry> {
    let mut out = Vec::new();
    p.process(entry, &mut out);
    out
}

fn run(p: &Pipeline, body: &str) -> Vec<Entry> {
    run_entry(p, Entry::new(value::string(body), 1))
}

fn attr<'a>(e: &'a Entry, key: &str) -> Option<&'a AnyValue> {
    value::get(&e.attributes, key)
}

fn double(d: f64) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::DoubleValue(d)),
    }
}

fn int(i: i64) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::IntValue(i)),
    }
}

fn boolean(b: bool) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::BoolValue(b)),
    }
}

fn list(values: Vec<AnyValue>) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::ArrayValue(ArrayValue { values })),
    }
}

fn strings(items: &[&str]) -> AnyValue {
    list(items.iter().map(|s| value::string(*s)).collect())
}

/// The keys of a map value, in order.
fn keys(v: &AnyValue) -> Vec<&str> {
    value::as_map(v)
        .unwrap()
        .iter()
        .map(|kv| kv.key.as_str())
        .collect()
}

fn get<'a>(v: &'a AnyValue, key: &str) -> Option<&'a AnyValue> {
    value::get(value::as_map(v)?, key)
}

/// Every on_error mode on an entry the operator fails on: send modes pass it on
/// unchanged, drop modes drop it.
fn check_on_error(operator: &str, failing_body: &str) {
    for (mode, passes) in [
        ("send", true),
        ("send_quiet", true),
        ("drop", false),
        ("drop_quiet", false),
    ] {
        let p = pipeline(&format!("[{{{operator}, on_error: {mode}}}]"));
        let out = run(&p, failing_body);
        assert_eq!(out.len(), usize::from(passes), "{operator} {mode}");
        if passes {
            assert_eq!(
                out[0].body,
                value::string(failing_body),
                "{operator} {mode}"
            );
            assert!(out[0].attributes.is_empty(), "{operator} {mode}");
        }
    }
}

#[test]
fn unquote_examples() {
    let p = pipeline("[{type: unquote, field: body}]");
    assert_eq!(run(&p, r#""hello""#)[0].body, value::string("hello"));
    let p = pipeline("[{type: add, field: attributes.foo, value: '`bar`'}, {type: unquote, field: attributes.foo}]");
    assert_eq!(attr(&run(&p, "x")[0], "foo"), Some(&value::string("bar")));
    // A missing field passes unchanged; a non-string is an error.
    let p = pipeline("[{type: unquote, field: attributes.nope, on_error: drop}]");
    assert_eq!(run(&p, "x").len(), 1);
    let p = pipeline("[{type: add, field: attributes.n, value: 1}, {type: unquote, field: attributes.n, on_error: drop}]");
    assert!(run(&p, "x").is_empty());
    check_on_error("type: unquote, field: body", "not quoted");
    assert!(error("[{type: unquote}]").contains("missing required field 'field'"));
    assert!(error("[{type: unquote, field: body, extra: 1}]").contains("extra"));
}

#[test]
fn assign_keys_examples() {
    let p = pipeline(
        r#"
- {type: json_array_parser, parse_to: body}
- {type: assign_keys, field: body, keys: [foo, bar, charlie, foxtrot]}
"#,
    );
    let e = &run(&p, r#"[1, "debug", "Debug Message", true]"#)[0];
    assert_eq!(keys(&e.body), vec!["foo", "bar", "charlie", "foxtrot"]);
    assert_eq!(get(&e.body, "foo"), Some(&double(1.0)));
    assert_eq!(get(&e.body, "bar"), Some(&value::string("debug")));
    assert_eq!(get(&e.body, "foxtrot"), Some(&boolean(true)));

    let p = pipeline(
        r#"
- {type: json_array_parser, parse_to: attributes.input}
- {type: add, field: attributes.field2, value: unchanged}
- {type: assign_keys, field: attributes.input, keys: [foo, bar]}
"#,
    );
    let e = &run(&p, r#"[1, "debug"]"#)[0];
    let input = attr(e, "input").unwrap();
    assert_eq!(keys(input), vec!["foo", "bar"]);
    assert_eq!(get(input, "bar"), Some(&value::string("debug")));
    assert_eq!(attr(e, "field2"), Some(&value::string("unchanged")));

    // Wrong length, not a list, missing: errors.
    let e = run(&p, r#"[1, "debug", 3]"#);
    assert_eq!(
        attr(&e[0], "input"),
        Some(&list(vec![
            double(1.0),
            value::string("debug"),
            double(3.0)
        ]))
    );
    check_on_error("type: assign_keys, field: body, keys: [a]", "a string");
    check_on_error("type: assign_keys, field: attributes.nope, keys: [a]", "x");
    assert!(error("[{type: assign_keys, field: body}]").contains("keys"));
    assert!(error("[{type: assign_keys, keys: [a]}]").contains("'field'"));
    assert!(error("[{type: assign_keys, field: body, keys: [a], nope: 1}]").contains("nope"));
}

#[test]
fn uri_parser_examples() {
    let p = pipeline("[{type: uri_parser, parse_to: body}]");
    let e = &run(&p, "https://dev:pass@google.com/app?user_id=2&token=001")[0];
    assert_eq!(
        keys(&e.body),
        vec!["scheme", "user", "host", "path", "query"]
    );
    assert_eq!(get(&e.body, "scheme"), Some(&value::string("https")));
    assert_eq!(get(&e.body, "user"), Some(&value::string("dev")));
    assert_eq!(get(&e.body, "host"), Some(&value::string("google.com")));
    assert_eq!(get(&e.body, "path"), Some(&value::string("/app")));
    let q = get(&e.body, "query").unwrap();
    assert_eq!(get(q, "user_id"), Some(&strings(&["2"])));
    assert_eq!(get(q, "token"), Some(&strings(&["001"])));

    let e = &run(&p, "/app?user=admin")[0];
    assert_eq!(keys(&e.body), vec!["path", "query"]);
    assert_eq!(
        get(get(&e.body, "query").unwrap(), "user"),
        Some(&strings(&["admin"]))
    );

    let e = &run(&p, "?request=681e6fc4&env=stage&env=dev&msg=a+b%21")[0];
    let q = get(&e.body, "query").unwrap();
    assert_eq!(keys(&e.body), vec!["query"]);
    assert_eq!(get(q, "env"), Some(&strings(&["stage", "dev"])));
    assert_eq!(get(q, "msg"), Some(&strings(&["a b!"])));

    let e = &run(&p, "HTTP://[::1]:8443/a%20b")[0];
    assert_eq!(get(&e.body, "scheme"), Some(&value::string("http")));
    assert_eq!(get(&e.body, "host"), Some(&value::string("::1")));
    assert_eq!(get(&e.body, "port"), Some(&value::string("8443")));
    assert_eq!(get(&e.body, "path"), Some(&value::string("/a%20b")));

    // Into attributes (the default), with the body left as it was.
    let p = pipeline("[{type: uri_parser}]");
    let e = &run(&p, "http://h:80/p")[0];
    assert_eq!(e.body, value::string("http://h:80/p"));
    assert_eq!(attr(e, "port"), Some(&value::string("80")));

    check_on_error("type: uri_parser", "relative/path");
    check_on_error("type: uri_parser", "");
    check_on_error("type: uri_parser", "http://h:port/");
    check_on_error("type: uri_parser", "/bad%zzescape");
    check_on_error("type: uri_parser", "?a=1;b=2");
    assert!(error("[{type: uri_parser, regex: x}]").contains("regex"));
}

#[test]
fn json_array_parser_examples() {
    let line = r#"[1,"debug","Debug Message", true]"#;
    let p = pipeline("[{type: json_array_parser, parse_from: body, parse_to: attributes.output}]");
    let e = &run(&p, line)[0];
    assert_eq!(
        attr(e, "output"),
        Some(&list(vec![
            double(1.0),
            value::string("debug"),
            value::string("Debug Message"),
            boolean(true)
        ]))
    );
    let p = pipeline("[{type: json_array_parser, parse_to: body}]");
    assert!(matches!(
        run(&p, line)[0].body.value,
        Some(any_value::Value::ArrayValue(_))
    ));

    let p = pipeline(
        "[{type: json_array_parser, parse_to: attributes, header: 'origin,sev,message,isBool'}]",
    );
    let e = &run(&p, line)[0];
    assert_eq!(e.body, value::string(line));
    let names: Vec<&str> = e.attributes.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(names, vec!["origin", "sev", "message", "isBool"]);
    assert_eq!(attr(e, "origin"), Some(&double(1.0)));
    assert_eq!(attr(e, "isBool"), Some(&boolean(true)));

    check_on_error("type: json_array_parser, header: 'a,b'", "[1]");
    check_on_error("type: json_array_parser, parse_to: body", r#"{"a":1}"#);
    check_on_error("type: json_array_parser, parse_to: body", "[1,");
    // Without a header the list cannot become the whole attributes map.
    check_on_error("type: json_array_parser", "[1]");
    assert!(error("[{type: json_array_parser, header: ''}]").contains("header"));
    assert!(error("[{type: json_array_parser, delimiter: ','}]").contains("delimiter"));
}

const RFC5424_LINE: &str = r#"<86>1 2015-08-05T21:58:59.693Z 192.168.2.132 SecureAuth0 23108 ID52020 [SecureAuth@27389 UserHostAddress="192.168.2.132" Realm="SecureAuth0" UserID="Tester2" PEN="27389"] Found the user for retrieving user's profile"#;

/// Unix ns of `month day hh:mm:ss` this year, UTC.
fn this_year(month: u32, day: u32, h: u32, m: u32, s: u32) -> u64 {
    use chrono::Datelike;
    let year = chrono::Utc::now().year();
    let t = chrono::NaiveDate::from_ymd_opt(year, month, day)
        .unwrap()
        .and_hms_opt(h, m, s)
        .unwrap()
        .and_utc();
    u64::try_from(t.timestamp_nanos_opt().unwrap()).unwrap()
}

#[test]
fn syslog_rfc5424() {
    let p = pipeline("[{type: syslog_parser, protocol: rfc5424}]");
    let e = &run(&p, RFC5424_LINE)[0];
    assert_eq!(e.body, value::string(RFC5424_LINE), "the body stays");
    assert_eq!(e.timestamp, 1_438_811_939_693_000_000);
    assert_eq!((e.severity, e.severity_text.as_str()), (9, "info"));
    let mut names: Vec<&str> = e.attributes.iter().map(|kv| kv.key.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        vec![
            "appname",
            "facility",
            "hostname",
            "message",
            "msg_id",
            "priority",
            "proc_id",
            "structured_data",
            "version"
        ]
    );
    assert_eq!(attr(e, "appname"), Some(&value::string("SecureAuth0")));
    assert_eq!(attr(e, "hostname"), Some(&value::string("192.168.2.132")));
    assert_eq!(attr(e, "proc_id"), Some(&value::string("23108")));
    assert_eq!(attr(e, "msg_id"), Some(&value::string("ID52020")));
    assert_eq!(
        attr(e, "message"),
        Some(&value::string(
            "Found the user for retrieving user's profile"
        ))
    );
    assert_eq!(attr(e, "priority"), Some(&int(86)));
    assert_eq!(attr(e, "facility"), Some(&int(10)));
    assert_eq!(attr(e, "version"), Some(&int(1)));
    let sd = attr(e, "structured_data").unwrap();
    let element = get(sd, "SecureAuth@27389").unwrap();
    assert_eq!(
        keys(element),
        vec!["UserHostAddress", "Realm", "UserID", "PEN"]
    );
    assert_eq!(get(element, "UserID"), Some(&value::string("Tester2")));

    // Nil parts are left out; an escaped value is unescaped; a nil timestamp fails after
    // the fields were written (stanza's implicit time parser finds none).
    let e = &run(
        &p,
        r#"<165>1 2003-10-11T22:14:15.003000-07:00 - - - - [ex@1 a="x\"y\]z"]"#,
    )[0];
    assert_eq!(e.timestamp, 1_065_935_655_003_000_000);
    assert_eq!((e.severity, e.severity_text.as_str()), (10, "notice"));
    assert!(attr(e, "hostname").is_none() && attr(e, "message").is_none());
    let sd = attr(e, "structured_data").unwrap();
    assert_eq!(
        get(get(sd, "ex@1").unwrap(), "a"),
        Some(&value::string("x\"y]z"))
    );
    let p2 = pipeline("[{type: syslog_parser, protocol: rfc5424, on_error: drop}]");
    assert!(run(&p2, "<13>1 - host app - - - hi").is_empty());

    // Octet counting and trailers.
    let p = pipeline("[{type: syslog_parser, protocol: rfc5424, enable_octet_counting: true}]");
    let e = &run(
        &p,
        "77 <86>1 2015-08-05T21:58:59.693Z 192.168.2.132 inactive - - -  partition is p2 ",
    )[0];
    assert_eq!(
        attr(e, "message"),
        Some(&value::string(" partition is p2 "))
    );
    let p = pipeline(
        "[{type: syslog_parser, protocol: rfc5424, non_transparent_framing_trailer: NUL}]",
    );
    let e = &run(&p, &format!("{RFC5424_LINE}\0junk"))[0];
    assert_eq!(
        attr(e, "message"),
        Some(&value::string(
            "Found the user for retrieving user's profile"
        ))
    );

    // allow_skip_pri_header: priority, facility and severity are left out.
    let p = pipeline("[{type: syslog_parser, protocol: rfc5424, allow_skip_pri_header: true}]");
    let e = &run(&p, &RFC5424_LINE[4..])[0];
    assert!(attr(e, "priority").is_none() && attr(e, "facility").is_none());
    assert_eq!(e.severity, 0);
    assert_eq!(attr(e, "appname"), Some(&value::string("SecureAuth0")));
    let e = &run(&p, &RFC5424_LINE.replacen("<86>", "<123>", 1))[0];
    assert_eq!((e.severity, e.severity_text.as_str()), (17, "err"));
    assert_eq!(attr(e, "facility"), Some(&int(15)));

    for bad in [
        "",
        "no pri",
        "<192>1 - - - - - -",
        "<86>0 - - - - - -",
        "<86>1 2015-08-05 - - - - -",
        "<86>1 2015-08-05T21:58:59.6931234Z h a p m -",
        "<86>1 - h a p m [unclosed",
        "<86>1 - h a p m [a b]",
        "<86>1 - h a p m x",
    ] {
        check_on_error("type: syslog_parser, protocol: rfc5424", bad);
    }
}

#[test]
fn syslog_rfc3164() {
    let p = pipeline("[{type: syslog_parser, protocol: rfc3164}]");
    let line = "<34>Jan 12 06:30:00 1.2.3.4 apache_server: test message";
    let e = &run(&p, line)[0];
    assert_eq!(e.timestamp, this_year(1, 12, 6, 30, 0));
    assert_eq!((e.severity, e.severity_text.as_str()), (18, "crit"));
    let mut names: Vec<&str> = e.attributes.iter().map(|kv| kv.key.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        vec!["appname", "facility", "hostname", "message", "priority"]
    );
    assert_eq!(attr(e, "appname"), Some(&value::string("apache_server")));
    assert_eq!(attr(e, "hostname"), Some(&value::string("1.2.3.4")));
    assert_eq!(attr(e, "message"), Some(&value::string("test message")));
    assert_eq!(attr(e, "priority"), Some(&int(34)));
    assert_eq!(attr(e, "facility"), Some(&int(4)));

    let e = &run(
        &p,
        "<13>Feb  5 17:32:18 host sshd[4242]: Accepted publickey",
    )[0];
    assert_eq!(e.timestamp, this_year(2, 5, 17, 32, 18));
    assert_eq!(attr(e, "appname"), Some(&value::string("sshd")));
    assert_eq!(attr(e, "proc_id"), Some(&value::string("4242")));
    assert_eq!(
        attr(e, "message"),
        Some(&value::string("Accepted publickey"))
    );
    let e = &run(&p, "<13>Feb  5 17:32:18 host no tag here")[0];
    assert!(attr(e, "appname").is_none());
    assert_eq!(attr(e, "message"), Some(&value::string("no tag here")));

    let p = pipeline("[{type: syslog_parser, protocol: rfc3164, allow_skip_pri_header: true}]");
    let e = &run(&p, "Jan 12 06:30:00 1.2.3.4 apache_server: test message")[0];
    assert!(attr(e, "priority").is_none());
    assert_eq!(e.severity, 0);
    assert_eq!(attr(e, "appname"), Some(&value::string("apache_server")));

    // The parsed map can go elsewhere; a `timestamp:` block takes over the time.
    let p = pipeline(
        "- type: syslog_parser
  protocol: rfc3164
  parse_to: body
  on_error: send_quiet
",
    );
    let e = &run(&p, line)[0];
    assert_eq!(
        get(&e.body, "appname"),
        Some(&value::string("apache_server"))
    );
    assert_eq!(
        e.severity, 0,
        "stanza reads the severity back from attributes only"
    );

    for bad in [
        "<34>Jnu 12 06:30:00 h a: m",
        "<34>Jan 12 6:30 h a: m",
        "<34>",
        "Jan 12 06:30:00 h a: m",
    ] {
        check_on_error("type: syslog_parser, protocol: rfc3164", bad);
    }
    let p = pipeline("[{type: add, field: body, value: {a: 1}}, {type: syslog_parser, protocol: rfc3164, on_error: drop}]");
    assert!(run(&p, "x").is_empty(), "a map cannot be parsed");
}

#[test]
fn syslog_config_errors() {
    for (yaml, want) in [
        ("[{type: syslog_parser}]", "missing field 'protocol'"),
        ("[{type: syslog_parser, protocol: rfc9999}]", "unsupported protocol version: rfc9999"),
        ("[{type: syslog_parser, protocol: rfc3164, enable_octet_counting: true}]", "only compatible with protocol rfc5424"),
        ("[{type: syslog_parser, protocol: rfc5424, enable_octet_counting: true, non_transparent_framing_trailer: LF}]", "only one of octet_counting or non_transparent_framing"),
        ("[{type: syslog_parser, protocol: rfc5424, non_transparent_framing_trailer: CR}]", "Must be either 'LF' or 'NUL'"),
        ("[{type: syslog_parser, protocol: rfc3164, location: Mars/Olympus}]", "failed to load location"),
        ("[{type: syslog_parser, protocol: rfc3164, octets: 1}]", "octets"),
    ] {
        let got = error(yaml);
        assert!(got.contains(want), "{yaml}: {got}");
    }
    assert!(!pipeline("[{type: syslog_parser, protocol: RFC5424, location: Local}]").is_empty());
}

#[test]
fn new_operators_are_listed() {
    for t in [
        "unquote",
        "assign_keys",
        "uri_parser",
        "json_array_parser",
        "syslog_parser",
        "recombine",
    ] {
        assert!(TYPES.contains(&t), "{t}");
    }
}

fn bodies(out: &[Entry]) -> Vec<String> {
    out.iter()
        .map(|e| {
            value::as_str(&e.body)
                .unwrap_or("<not a string>")
                .to_owned()
        })
        .collect()
}

/// Feeds `lines` one by one, then flushes as at shutdown.
fn recombine(p: &Pipeline, lines: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for line in lines {
        p.process(Entry::new(value::string(*line), 1), &mut out);
    }
    p.flush(true, &mut out);
    bodies(&out)
}

#[test]
fn recombine_stack_traces_by_first_entry() {
    let p = pipeline(
        r#"[{type: recombine, combine_field: body, is_first_entry: 'body matches "^[^\\s]"'}]"#,
    );
    assert!(p.has_state());
    let got = recombine(
        &p,
        &[
            "Log message 1",
            "Error: java.lang.Exception: Stack trace",
            "        at java.lang.Thread.dumpStack(Thread.java:1336)",
            "        at Main.demo3(Main.java:15)",
            "Another log message",
        ],
    );
    assert_eq!(
        got,
        vec![
            "Log message 1",
            "Error: java.lang.Exception: Stack trace\n        at java.lang.Thread.dumpStack(Thread.java:1336)\n        at Main.demo3(Main.java:15)",
            "Another log message",
        ]
    );
}

#[test]
fn recombine_cri_by_last_entry_into_the_newest_entry() {
    let p = pipeline(
        r#"
- type: regex_parser
  regex: '^(?P<timestamp>[^\s]+) (?P<stream>\w+) (?P<logtag>\w) (?P<message>.*)'
  parse_to: body
- type: recombine
  combine_field: body.message
  combine_with: ""
  is_last_entry: "body.logtag == 'F'"
  overwrite_with: newest
"#,
    );
    let mut out = Vec::new();
    for line in [
        "2016-10-06T00:17:09.669794202Z stdout F Single entry log 1",
        "2016-10-06T00:17:10.113242941Z stdout P This is a very very long line th",
        "2016-10-06T00:17:10.113242941Z stdout P at is really really long and spa",
        "2016-10-06T00:17:10.113242941Z stdout F ns across multiple log entries",
    ] {
        p.process(Entry::new(value::string(line), 1), &mut out);
    }
    assert_eq!(out.len(), 2, "both batches completed without a flush");
    assert_eq!(
        get(&out[0].body, "message"),
        Some(&value::string("Single entry log 1"))
    );
    assert_eq!(
        get(&out[1].body, "message"),
        Some(&value::string("This is a very very long line that is really really long and spans across multiple log entries"))
    );
    assert_eq!(get(&out[1].body, "logtag"), Some(&value::string("F")));
    let mut rest = Vec::new();
    p.flush(true, &mut rest);
    assert!(rest.is_empty());
}

#[test]
fn recombine_max_unmatched_batch_size_examples() {
    let first = |n: u32| {
        pipeline(&format!(
            "[{{type: recombine, combine_field: body, is_first_entry: \"body == 'log1'\", max_unmatched_batch_size: {n}}}]"
        ))
    };
    let lines = [
        "log2", "log3", "log4", "log1", "log5", "log6", "log7", "log1",
    ];
    assert_eq!(
        recombine(&first(0), &lines),
        vec!["log2\nlog3\nlog4", "log1\nlog5\nlog6\nlog7", "log1"]
    );
    assert_eq!(
        recombine(&first(1), &lines),
        vec!["log2", "log3", "log4", "log1\nlog5\nlog6\nlog7", "log1"]
    );
    let lines = [
        "log2", "log3", "log4", "log5", "log1", "log6", "log7", "log1", "log8", "log1",
    ];
    assert_eq!(
        recombine(&first(3), &lines),
        vec![
            "log2\nlog3\nlog4",
            "log5",
            "log1\nlog6\nlog7",
            "log1\nlog8",
            "log1"
        ]
    );
    let last = pipeline("[{type: recombine, combine_field: body, is_last_entry: \"body == 'log1'\", max_unmatched_batch_size: 3}]");
    assert_eq!(
        recombine(&last, &lines),
        vec![
            "log2\nlog3\nlog4",
            "log5\nlog1",
            "log6\nlog7\nlog1",
            "log8\nlog1"
        ]
    );
}

#[test]
fn recombine_limits_sources_timer_and_oldest() {
    // max_batch_size and max_log_size close a batch early.
    let p = pipeline("[{type: recombine, combine_field: body, is_first_entry: 'body == \"start\"', max_batch_size: 2}]");
    assert_eq!(
        recombine(&p, &["start", "a", "b", "c"]),
        vec!["start\na", "b\nc"]
    );
    let p = pipeline("[{type: recombine, combine_field: body, is_first_entry: 'body == \"start\"', max_log_size: 8}]");
    assert_eq!(
        recombine(&p, &["start", "abcd", "e"]),
        vec!["start\nabcd", "e"]
    );

    // Sources are kept apart; over max_sources everything is flushed first.
    let p = pipeline(
        "[{type: recombine, combine_field: body, is_first_entry: 'body == \"start\"', source_identifier: attributes.src, max_sources: 2, overwrite_with: oldest}]",
    );
    let entry = |body: &str, src: &str| {
        let mut e = Entry::new(value::string(body), 1);
        value::insert(&mut e.attributes, "src".into(), value::string(src));
        e.attributes
            .push(opentelemetry_proto::tonic::common::v1::KeyValue {
                key_strindex: 0,
                key: "n".into(),
                value: Some(value::string(body)),
            });
        e
    };
    let mut out = Vec::new();
    for (b, s) in [("start", "a"), ("start", "b"), ("a1", "a"), ("b1", "b")] {
        p.process(entry(b, s), &mut out);
    }
    assert!(out.is_empty());
    p.process(entry("c1", "c"), &mut out);
    let mut got = bodies(&out);
    got.sort();
    assert_eq!(got, vec!["start\na1", "start\nb1"]);
    assert_eq!(
        attr(&out[0], "n"),
        Some(&value::string("start")),
        "oldest keeps the first entry"
    );

    // The timer flushes batches whose first entry is older than force_flush_period only.
    let p = pipeline("[{type: recombine, combine_field: body, is_first_entry: 'body == \"start\"', source_identifier: attributes.src}, {type: add, field: attributes.after, value: yes}]");
    let mut out = Vec::new();
    p.process(entry("old", "a"), &mut out);
    p.process(Entry::new(value::string("fresh"), now_nanos()), &mut out);
    p.flush(false, &mut out);
    assert_eq!(bodies(&out), vec!["old"]);
    assert_eq!(
        attr(&out[0], "after"),
        Some(&value::string("yes")),
        "flushed entries go on down the chain"
    );
    p.flush(true, &mut out);
    assert_eq!(bodies(&out), vec!["old", "fresh"]);
}

#[test]
fn recombine_on_error_and_config_errors() {
    // A match expression that fails: send passes the entry on, drop drops it.
    for (mode, passes) in [
        ("send", true),
        ("send_quiet", true),
        ("drop", false),
        ("drop_quiet", false),
    ] {
        let p = pipeline(&format!("[{{type: recombine, combine_field: body, is_first_entry: 'body > 1', on_error: {mode}}}]"));
        assert_eq!(
            recombine(&p, &["text"]).len(),
            usize::from(passes),
            "{mode}"
        );
    }
    // `if` false: the entry passes by unchanged.
    let p = pipeline(
        "[{type: recombine, combine_field: body, is_first_entry: 'true', if: 'body == \"skip\"'}]",
    );
    let mut out = Vec::new();
    p.process(Entry::new(value::string("x"), 1), &mut out);
    assert_eq!(bodies(&out), vec!["x"]);
    for (yaml, want) in [
        ("[{type: recombine, combine_field: body}]", "one of is_first_entry and is_last_entry must be set"),
        ("[{type: recombine, combine_field: body, is_first_entry: 'true', is_last_entry: 'true'}]", "only one of is_first_entry and is_last_entry can be set"),
        ("[{type: recombine, is_first_entry: 'true'}]", "missing required argument 'combine_field'"),
        ("[{type: recombine, combine_field: body, is_first_entry: 'true', overwrite_with: middle}]", "invalid value 'middle' for parameter 'overwrite_with'"),
        ("[{type: recombine, combine_field: body, is_first_entry: 'body ~~ 1'}]", "failed to compile is_first_entry"),
        ("[{type: recombine, combine_field: body, is_first_entry: 'true', force_flush_period: 0s}]", "force_flush_period"),
        ("[{type: recombine, combine_field: body, is_first_entry: 'true', max_lines: 3}]", "max_lines"),
    ] {
        let got = error(yaml);
        assert!(got.contains(want), "{yaml}: {got}");
    }
    assert!(!pipeline("[{type: noop}]").has_state());
}
