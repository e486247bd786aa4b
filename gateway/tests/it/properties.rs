//! Property tests of the gateway's parsers: decK files, router paths, trace propagation
//! headers and Admin API form bodies. Whatever a client or a file holds, parsing returns a
//! value or an error and never panics. Fixed case budgets keep the suite fast.

use otelpipe_gateway::admin::form::parse_body;
use otelpipe_gateway::declarative::load_str;
use otelpipe_gateway::plugins::opentelemetry::propagation::extract;
use otelpipe_gateway::router::normalize_path;
use otelpipe_gateway::router::upstream_path::compose;
use proptest::prelude::*;

/// Paths made of what normalisation cares about.
fn path() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("/".to_owned()),
        Just("//".to_owned()),
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just("%2F".to_owned()),
        Just("%2e".to_owned()),
        Just("%".to_owned()),
        Just("%zz".to_owned()),
        Just("%C3%A9".to_owned()),
        Just("?".to_owned()),
        "[a-z0-9~_-]{0,4}",
        "\\PC{0,2}",
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|p| p.concat())
}

/// decK documents built from entity keys, mutated.
fn deck() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("_format_version: \"3.0\"\n".to_owned()),
        Just("services:\n".to_owned()),
        Just("- name: s\n".to_owned()),
        Just("  url: http://127.0.0.1:1/a\n".to_owned()),
        Just("  routes:\n".to_owned()),
        Just("  - name: r\n".to_owned()),
        Just("    paths: [/a, \"~/b/(?<x>\\\\d+)$\"]\n".to_owned()),
        Just("    hosts: ['*.example.com']\n".to_owned()),
        Just("    methods: [GET]\n".to_owned()),
        Just("  plugins:\n".to_owned()),
        Just("  - name: opentelemetry\n".to_owned()),
        Just("    config: {traces_endpoint: http://x:4318/v1/traces}\n".to_owned()),
        Just("upstreams:\n- name: u\n  targets: [{target: '127.0.0.1:1'}]\n".to_owned()),
        Just("consumers:\n- username: c\n".to_owned()),
        "[ -~]{0,8}\n",
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Normalisation never panics, is idempotent, and leaves no dot segments.
    #[test]
    fn router_paths_normalize(p in path(), req in path()) {
        let once = normalize_path(&p);
        prop_assert_eq!(normalize_path(&once), once.as_str());
        prop_assert!(!once.split('/').any(|s| s == ".." || s == "."), "{once}");
        let _composed = compose(&once, &normalize_path(&req), Some("/a"));
        let _plain = compose("/", &req, None);
    }

    /// Any decK text loads or is refused with an error.
    #[test]
    fn deck_files_load_or_fail(text in deck(), json in "[\\[\\]{}\":,a-z0-9 ]{0,64}") {
        let _yaml = load_str("kong.yaml", &text).is_ok();
        let _json = load_str("kong.json", &json).is_ok();
    }

    /// Any propagation headers extract a context or none; ids have their fixed sizes.
    #[test]
    fn propagation_headers_extract_or_not(
        traceparent in "[0-9a-fA-F-]{0,60}",
        b3 in "[0-9a-fd-]{0,70}",
        uber in "[0-9a-f:]{0,60}",
        dd in "[0-9]{0,24}",
        amzn in "[ -~]{0,80}",
        gcp in "[0-9a-f/;o=]{0,60}",
    ) {
        let mut headers = http::HeaderMap::new();
        for (name, value) in [
            ("traceparent", &traceparent),
            ("b3", &b3),
            ("x-b3-traceid", &b3),
            ("x-b3-spanid", &dd),
            ("uber-trace-id", &uber),
            ("ot-tracer-traceid", &traceparent),
            ("x-datadog-trace-id", &dd),
            ("x-datadog-parent-id", &dd),
            ("x-amzn-trace-id", &amzn),
            ("x-cloud-trace-context", &gcp),
        ] {
            if let Ok(v) = http::HeaderValue::from_str(value) {
                headers.insert(name, v);
            }
        }
        let order: Vec<String> = ["w3c", "b3", "jaeger", "ot", "datadog", "aws", "gcp"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        if let Some(found) = extract(&headers, &order) {
            prop_assert!(found.trace_id_len <= 32);
        }
    }

    /// Admin API bodies in each content type parse to an object or a 400-worthy error.
    #[test]
    fn admin_form_bodies_parse_or_fail(body in "[ -~]{0,80}", bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        for ct in [
            Some("application/x-www-form-urlencoded"),
            Some("application/json"),
            Some("multipart/form-data; boundary=b"),
            Some("text/plain"),
            None,
        ] {
            let _text = parse_body(ct, body.as_bytes(), None).is_ok();
            let _raw = parse_body(ct, &bytes, None).is_ok();
        }
    }
}
