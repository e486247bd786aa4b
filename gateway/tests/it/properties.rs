//! Property tests of the gateway's parsers under arbitrary input, each with a fixed case
//! budget (the whole set runs in a few seconds): nothing panics, errors are Kong's, and
//! generated valid input round-trips.

use http::{HeaderMap, HeaderName, HeaderValue};
use otelpipe_gateway::admin::form::parse_body;
use otelpipe_gateway::conf::{ConfError, KongConf};
use otelpipe_gateway::declarative::model::Model;
use otelpipe_gateway::declarative::{self, Kind, LoadError};
use otelpipe_gateway::plugins::opentelemetry::propagation::{self, Outgoing, EXTRACTORS};
use otelpipe_gateway::plugins::tcp_log::lua;
use otelpipe_gateway::proxy::context::RequestContext;
use otelpipe_gateway::router::upstream_path::compose;
use otelpipe_gateway::router::{normalize_path, RequestView, Router};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Arbitrary JSON values, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        "(/|~/)[a-z{}()0-9\\[\\]*+?^$.]{0,10}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("name".to_owned()),
                    Just("host".to_owned()),
                    Just("port".to_owned()),
                    Just("paths".to_owned()),
                    Just("routes".to_owned()),
                    Just("service".to_owned()),
                    Just("plugins".to_owned()),
                    Just("config".to_owned()),
                    Just("id".to_owned()),
                    Just("url".to_owned()),
                    Just("targets".to_owned()),
                    "[a-z_]{1,10}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An arbitrary top-level declarative document.
fn declarative_doc() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(
        prop_oneof![
            Just("_format_version".to_owned()),
            Just("services".to_owned()),
            Just("routes".to_owned()),
            Just("plugins".to_owned()),
            Just("upstreams".to_owned()),
            Just("targets".to_owned()),
            Just("consumers".to_owned()),
            Just("certificates".to_owned()),
            "[a-z_]{1,10}",
        ],
        json_value(),
        0..5,
    )
    .prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn assert_kong_error(error: &LoadError) {
    let text = error.to_string();
    assert!(!text.is_empty());
    match error {
        LoadError::Invalid(errors) => {
            assert!(!errors.is_empty(), "an invalid config names its problems");
            for e in errors {
                assert!(!e.to_string().is_empty());
            }
        }
        LoadError::Syntax { path, .. } => {
            assert!(
                text.contains("failed parsing declarative configuration"),
                "{text}"
            );
            assert!(text.starts_with(path.as_str()), "{text}");
        }
        LoadError::Read { .. } => panic!("no file is read: {text}"),
    }
}

/// One generated service with its routes: (name, host, port, path, routes (name, path, strip)).
type GenService = (
    String,
    String,
    u16,
    Option<String>,
    Vec<(String, String, bool)>,
);

fn valid_services() -> impl Strategy<Value = Vec<GenService>> {
    let route = ("/[a-z0-9]{1,8}(/[a-z0-9]{1,8})?", any::<bool>());
    let service = (
        "[a-z][a-z0-9]{0,6}(\\.[a-z][a-z0-9]{0,6}){0,2}",
        1u16..,
        proptest::option::of("/[a-z0-9]{1,8}/?"),
        prop::collection::vec(route, 0..4),
    );
    prop::collection::vec(service, 1..5).prop_map(|list| {
        list.into_iter()
            .enumerate()
            .map(|(i, (host, port, path, routes))| {
                let routes = routes
                    .into_iter()
                    .enumerate()
                    .map(|(j, (p, strip))| (format!("r{i}-{j}"), p, strip))
                    .collect();
                (format!("s{i}"), host, port, path, routes)
            })
            .collect()
    })
}

fn services_document(services: &[GenService]) -> Value {
    let list: Vec<Value> = services
        .iter()
        .map(|(name, host, port, path, routes)| {
            let routes: Vec<Value> = routes
                .iter()
                .map(|(n, p, strip)| json!({"name": n, "paths": [p], "strip_path": strip}))
                .collect();
            json!({"name": name, "host": host, "port": port, "path": path, "routes": routes})
        })
        .collect();
    json!({"_format_version": "3.0", "services": list})
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn declarative_arbitrary_text_never_panics(text in "\\PC{0,200}") {
        if let Err(e) = declarative::load_str("kong.yaml", &text) {
            assert_kong_error(&e);
        }
    }

    #[test]
    fn declarative_arbitrary_documents_give_kong_errors(doc in declarative_doc(), yaml in any::<bool>()) {
        let text = if yaml {
            yaml_serde::to_string(&doc).unwrap_or_default()
        } else {
            doc.to_string()
        };
        if let Err(e) = declarative::load_str("kong.yaml", &text) {
            assert_kong_error(&e);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn generated_configs_load_and_parse_output_reloads_to_the_same_entities(
        services in valid_services(),
        yaml in any::<bool>(),
    ) {
        let doc = services_document(&services);
        let text = if yaml { yaml_serde::to_string(&doc).unwrap() } else { doc.to_string() };
        let config = declarative::load_str("kong.yaml", &text).unwrap();
        let routes: usize = services.iter().map(|s| s.4.len()).sum();
        assert_eq!(config.get(Kind::Services).len(), services.len());
        assert_eq!(config.get(Kind::Routes).len(), routes);
        for (name, host, port, path, _) in &services {
            let s = config.find(Kind::Services, name).unwrap();
            assert_eq!(&s["host"], &json!(host));
            assert_eq!(&s["port"], &json!(port));
            assert_eq!(&s["path"], &json!(path));
        }
        let printed = serde_json::to_string_pretty(&config.to_json()).unwrap();
        let again = declarative::load_str("parsed.json", &printed).unwrap();
        assert_eq!(again.to_json(), config.to_json());
    }
}

const CONF_KEYS: &[&str] = &[
    "proxy_listen",
    "admin_listen",
    "status_listen",
    "tracing_instrumentations",
    "tracing_sampling_rate",
    "headers",
    "headers_upstream",
    "real_ip_recursive",
    "log_level",
    "untrusted_lua",
    "nginx_worker_processes",
    "nginx_proxy_client_header_timeout",
    "opentelemetry_tracing",
];

fn conf_error_key(result: Result<KongConf, ConfError>) -> Option<String> {
    match result {
        Ok(_) => None,
        Err(ConfError::Invalid { key, message }) => {
            assert!(!message.is_empty());
            Some(key)
        }
        Err(e @ ConfError::Read { .. }) => panic!("nothing is read: {e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn kong_conf_arbitrary_text_never_panics(text in "([a-z_]{0,12}[ =#\\\\]{0,3}\\PC{0,20}\n){0,8}") {
        let parsed = otelpipe_gateway::conf::parse_file_text(&text);
        for key in parsed.keys() {
            assert_eq!(key.trim(), key.as_str());
        }
        if let Some(key) = conf_error_key(KongConf::load(Some(&text), Vec::new())) {
            assert!(!key.is_empty());
        }
    }

    #[test]
    fn kong_env_values_are_accepted_or_name_their_key(
        index in 0..CONF_KEYS.len(),
        value in prop_oneof!["\\PC{0,30}", "[0-9.:*a-z, ]{0,30}"],
    ) {
        let key = CONF_KEYS[index];
        let env = vec![(format!("KONG_{}", key.to_uppercase()), value.clone())];
        if let Some(bad) = conf_error_key(KongConf::load(None, env)) {
            let expected = if key == "opentelemetry_tracing" { "tracing_instrumentations" } else { key };
            assert_eq!(bad, expected, "value {value:?}");
        }
    }

    #[test]
    fn kong_conf_values_survive_comments_and_spaces(
        key in "[a-z][a-z_]{0,15}",
        value in "[a-zA-Z0-9:/.,_-][a-zA-Z0-9:/.,_ -]{0,20}[a-zA-Z0-9:/.,_-]",
    ) {
        let text = format!("  {key} =  {value}   # a comment\n# {key} = other\n");
        let parsed = otelpipe_gateway::conf::parse_file_text(&text);
        assert_eq!(parsed.get(&key), Some(&value));
    }
}

/// Request paths built from characters that matter to normalization.
fn raw_path() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            "[a-zA-Z0-9_~-]{1,4}",
            Just(".".to_owned()),
            Just("..".to_owned()),
            Just("".to_owned()),
            "%[0-9a-fA-F]{2}",
            Just("%2e".to_owned()),
            Just("%2F".to_owned()),
            Just("%".to_owned()),
            "\\PC{1,2}",
        ],
        0..8,
    )
    .prop_map(|segments| format!("/{}", segments.join("/")))
}

fn segment_path() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-zA-Z0-9_-]{1,6}", 0..4).prop_map(|s| format!("/{}", s.join("/")))
}

fn test_router(yaml: &str) -> Router {
    let config = declarative::load_str("router.yaml", yaml).unwrap();
    let model = Model::of(&config);
    Router::new(&model.routes, &model.services)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn normalized_paths_have_no_dot_segments_or_double_slashes(path in raw_path()) {
        let n = normalize_path(&path);
        assert!(n.starts_with('/'), "{path:?} -> {n:?}");
        assert!(!n.contains("//"), "{path:?} -> {n:?}");
        for segment in n.split('/') {
            assert!(segment != "." && segment != "..", "{path:?} -> {n:?}");
        }
        assert_eq!(normalize_path(&n), n.clone(), "normalization is idempotent for {path:?}");
    }

    #[test]
    fn strip_path_removes_exactly_the_matched_prefix(
        prefix in segment_path(),
        rest in segment_path(),
        base in prop_oneof![Just("/".to_owned()), "/[a-z]{1,6}/?"],
    ) {
        let req = if rest == "/" { prefix.clone() } else { format!("{}{rest}", prefix.trim_end_matches('/')) };
        let stripped = compose(&base, &req, Some(&prefix));
        assert!(stripped.starts_with('/'), "{base} {req} {prefix} -> {stripped}");
        let remainder = req.strip_prefix(prefix.as_str()).unwrap_or_default().trim_start_matches('/');
        let base_dir = base.trim_end_matches('/');
        if remainder.is_empty() {
            assert!(stripped == base || stripped == format!("{base_dir}/") || stripped == base_dir,
                "{base} {req} {prefix} -> {stripped}");
        } else {
            assert_eq!(&stripped, &format!("{base_dir}/{remainder}"));
        }
        let kept = compose(&base, &req, None);
        assert!(kept.starts_with('/'));
        if req != "/" {
            assert_eq!(kept, format!("{base_dir}{req}"));
        }
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn router_matches_prefixes_and_upstream_paths_start_with_a_slash(
        prefix in "/[a-z]{1,6}",
        suffix in segment_path(),
        raw in raw_path(),
        strip in any::<bool>(),
    ) {
        let router = test_router(&format!(
            "_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://127.0.0.1:1\n  routes:\n  - name: r\n    strip_path: {strip}\n    paths: [\"{prefix}\"]\n  - name: users\n    paths: [\"~/users/(?<id>[0-9]+)$\"]\n"
        ));
        let headers = HeaderMap::new();
        let view = |path| RequestView { method: "GET", host: Some("h"), listen_port: 8000, path, headers: &headers, sni: None };
        let req = normalize_path(&format!("{prefix}{suffix}"));
        let m = router.find(&view(&req)).expect("the prefix route matches");
        assert_eq!(m.route.name.as_deref(), Some("r"));
        assert_eq!(m.matched_path.as_deref(), Some(prefix.as_str()));
        let up = m.upstream_path(&req);
        assert!(up.starts_with('/'), "{}", up);
        if strip {
            let rest = req[prefix.len()..].trim_start_matches('/');
            assert_eq!(up.trim_start_matches('/'), rest);
        } else {
            assert_eq!(&up, &req);
        }
        let any = normalize_path(&raw);
        if let Some(m) = router.find(&view(&any)) {
            assert!(m.upstream_path(&any).starts_with('/'));
        }
    }

    #[test]
    fn regex_routes_capture_what_they_match(id in "[0-9]{1,12}", tail in "[a-z]{0,3}") {
        let router = test_router(
            "_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://127.0.0.1:1/base\n  routes:\n  - name: users\n    paths: [\"~/users/(?<id>[0-9]+)$\"]\n"
        );
        let headers = HeaderMap::new();
        let path = format!("/users/{id}{tail}");
        let view = RequestView { method: "GET", host: None, listen_port: 8000, path: &path, headers: &headers, sni: None };
        match router.find(&view) {
            Some(m) => {
                assert!(tail.is_empty());
                assert_eq!(m.uri_captures.get("id"), Some(&id));
                assert_eq!(m.upstream_path(&path), "/base".to_owned());
            }
            None => assert!(!tail.is_empty()),
        }
    }

    #[test]
    fn arbitrary_regex_paths_load_or_name_the_field(re in "[a-z(){}\\[\\]*+?^$|\\\\.0-9<>]{0,16}") {
        let yaml = format!(
            "_format_version: \"3.0\"\nroutes:\n- name: r\n  paths: [{}]\n",
            serde_json::to_string(&format!("~/{re}")).unwrap()
        );
        match declarative::load_str("kong.yaml", &yaml) {
            Ok(config) => {
                let model = Model::of(&config);
                Router::new(&model.routes, &model.services);
            }
            Err(e) => {
                assert_kong_error(&e);
                assert!(e.to_string().contains("paths"), "{}", e);
            }
        }
    }
}

const TRIGGER_HEADERS: &[&str] = &[
    "traceparent",
    "tracestate",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-sampled",
    "x-b3-flags",
    "uber-trace-id",
    "uberctx-k",
    "ot-tracer-traceid",
    "ot-tracer-spanid",
    "ot-tracer-sampled",
    "ot-baggage-k",
    "x-datadog-trace-id",
    "x-datadog-parent-id",
    "x-datadog-sampling-priority",
    "x-amzn-trace-id",
    "x-cloud-trace-context",
];

fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..80),
        "[0-9a-fA-F:;=/,o.d -]{0,80}".prop_map(String::into_bytes),
        "(00|01|ff)-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}".prop_map(String::into_bytes),
        "Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=[01x]"
            .prop_map(String::into_bytes),
        "[0-9a-f]{32}/[0-9]{1,21}(;o=[0-9])?".prop_map(String::into_bytes),
        "[0-9a-f]{1,33}:[0-9a-f]{1,17}:[0-9a-f]{1,2}:[0-9a-f]{1,3}".prop_map(String::into_bytes),
    ]
}

fn all_extractors() -> Vec<String> {
    EXTRACTORS.iter().map(|s| (*s).to_owned()).collect()
}

fn context() -> impl Strategy<Value = Outgoing> {
    (
        any::<[u8; 16]>().prop_filter("non-zero trace id", |t| t[8..] != [0; 8]),
        any::<[u8; 8]>().prop_filter("non-zero span id", |s| *s != [0; 8]),
        proptest::option::of(any::<[u8; 8]>().prop_filter("non-zero", |s| *s != [0; 8])),
        any::<bool>(),
    )
        .prop_map(|(trace_id, span_id, parent_id, sampled)| Outgoing {
            trace_id,
            trace_id_len: Some(16),
            span_id,
            parent_id,
            sampled,
            debug: false,
        })
}

fn w3c(value: &str) -> Option<propagation::Extracted> {
    let mut headers = HeaderMap::new();
    headers.insert("traceparent", HeaderValue::from_str(value).ok()?);
    propagation::extract(&headers, &["w3c".to_owned()])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn extracting_arbitrary_headers_never_panics_or_yields_invalid_ids(
        values in prop::collection::vec((0..TRIGGER_HEADERS.len(), header_value()), 0..6),
        rotate in 0..EXTRACTORS.len(),
    ) {
        let mut headers = HeaderMap::new();
        for (index, value) in values {
            if let Ok(v) = HeaderValue::from_bytes(&value) {
                headers.append(HeaderName::from_static(TRIGGER_HEADERS[index]), v);
            }
        }
        let mut order = all_extractors();
        order.rotate_left(rotate);
        if let Some(found) = propagation::extract(&headers, &order) {
            assert!(EXTRACTORS.contains(&found.format));
            if found.trace_id.is_some() {
                assert!(matches!(found.trace_id_len, 8 | 16), "{found:?}");
            }
            if matches!(found.format, "w3c" | "jaeger") {
                assert_ne!(found.trace_id, Some([0; 16]));
                assert_ne!(found.span_id, Some([0; 8]));
                assert!(found.trace_id.is_some() && found.span_id.is_some());
            }
        }
    }

    #[test]
    fn inject_then_extract_round_trips_the_context(ctx in context(), baggage in "[a-z]{1,8}") {
        let formats = [
            ("w3c", "w3c"), ("b3", "b3"), ("b3-single", "b3"), ("jaeger", "jaeger"),
            ("ot", "ot"), ("datadog", "datadog"), ("aws", "aws"), ("gcp", "gcp"),
        ];
        let bag = vec![("tenant".to_owned(), baggage)];
        for (injector, extractor) in formats {
            let mut headers = HeaderMap::new();
            let logged = propagation::inject(&mut headers, injector, &ctx, &bag);
            assert!(logged.is_some(), "{}", injector);
            let found = propagation::extract(&headers, &[extractor.to_owned()])
                .unwrap_or_else(|| panic!("{injector} headers are extracted: {headers:?}"));
            let expected_trace = if injector == "datadog" {
                let mut t = [0u8; 16];
                t[8..].copy_from_slice(&ctx.trace_id[8..]);
                t
            } else {
                ctx.trace_id
            };
            assert_eq!(found.trace_id, Some(expected_trace), "{injector}");
            assert_eq!(found.span_id, Some(ctx.span_id), "{injector}");
            assert_eq!(found.sampled, Some(ctx.sampled), "{injector}");
            assert_eq!(found.single, injector == "b3-single");
            if matches!(injector, "jaeger" | "ot") {
                assert_eq!(&found.baggage, &bag, "{injector}");
            }
        }
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn w3c_traceparent_follows_the_version_and_id_rules(
        version in "[0-9a-f]{2}",
        trace in "[0-9a-f]{32}",
        span in "[0-9a-f]{16}",
        flags in "[0-9a-f]{2}",
        state in prop::collection::vec("[a-z0-9@_*/-]{1,16}=[ -+\\--<>-~]{0,32}", 0..33),
    ) {
        let value = format!("{version}-{trace}-{span}-{flags}");
        let found = w3c(&value);
        let zero = trace.bytes().all(|b| b == b'0') || span.bytes().all(|b| b == b'0');
        if version != "00" || zero {
            assert!(found.is_none(), "{}", value);
        } else {
            let found = found.expect("a valid version 00 traceparent is extracted");
            assert_eq!(propagation::hex(&found.trace_id.unwrap()), trace);
            assert_eq!(propagation::hex(&found.span_id.unwrap()), span);
            let odd = u8::from_str_radix(&flags, 16).unwrap() & 1 == 1;
            assert_eq!(found.sampled, Some(odd));
            // Kong reads the fields with Lua's %x, which takes either case.
            assert_eq!(w3c(&value.to_uppercase()).map(|f| f.trace_id), Some(found.trace_id));
            // The w3c extractor does not read tracestate, whatever its size.
            let mut headers = HeaderMap::new();
            headers.insert("traceparent", HeaderValue::from_str(&value).unwrap());
            headers.insert("tracestate", HeaderValue::from_str(&state.join(",")).unwrap());
            assert_eq!(propagation::extract(&headers, &["w3c".to_owned()]), Some(found));
        }
        // Version ff is invalid and future versions are not read by Kong's extractor.
        assert!(w3c(&format!("ff-{trace}-{span}-{flags}")).is_none());
        assert!(w3c(&format!("01-{trace}-{span}-{flags}-extra")).is_none());
        assert!(w3c(&format!("00-{trace}-{span}-{flags}-extra")).is_none());
        assert!(w3c(&format!("00-{}-{span}-{flags}", "0".repeat(32))).is_none());
        assert!(w3c(&format!("00-{trace}-{}-{flags}", "0".repeat(16))).is_none());
        assert!(w3c(&format!("00-{trace}0-{span}-{flags}")).is_none());
    }
}

const CONTENT_TYPES: &[&str] = &[
    "application/x-www-form-urlencoded",
    "application/json",
    "multipart/form-data; boundary=XyZ",
    "multipart/form-data",
    "multipart/form-data; boundary=",
    "text/plain",
];

fn multipart(pairs: &[(String, String)]) -> String {
    let mut body = String::new();
    for (k, v) in pairs {
        body.push_str(&format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
        ));
    }
    body.push_str("--XyZ--\r\n");
    body
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn admin_bodies_of_any_shape_never_panic(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            "([a-z.\\[\\]0-9]{0,12}=[a-z%0-9]{0,8}&?){0,8}".prop_map(String::into_bytes),
            "(--XyZ\r\n(Content-Disposition: form-data; name=\"[a-z.\\[\\]0-9]{0,8}\"\r\n)?(\r\n)?[a-z]{0,8}\r\n){0,4}(--XyZ--)?".prop_map(String::into_bytes),
        ],
        ct in 0..=CONTENT_TYPES.len(),
        kind in proptest::option::of(0..Kind::ALL.len()),
    ) {
        let content_type = CONTENT_TYPES.get(ct).copied();
        let kind = kind.map(|k| Kind::ALL[k]);
        if let Err(e) = parse_body(content_type, &body, kind) {
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn urlencoded_and_multipart_forms_agree(
        pairs in prop::collection::btree_map("[a-z]{1,8}", "[a-zA-Z ]{1,12}", 1..6),
        kind in proptest::option::of(0..Kind::ALL.len()),
    ) {
        let pairs: Vec<(String, String)> = pairs.into_iter().collect();
        let kind = kind.map(|k| Kind::ALL[k]);
        let encoded: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
        let form = parse_body(Some("application/x-www-form-urlencoded"), encoded.as_bytes(), kind).unwrap();
        let parts = parse_body(Some("multipart/form-data; boundary=XyZ"), multipart(&pairs).as_bytes(), kind).unwrap();
        assert_eq!(&form, &parts);
        assert_eq!(form.len(), pairs.len());
        let json = Value::Object(pairs.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<Map<_, _>>());
        let from_json = parse_body(Some("application/json"), json.to_string().as_bytes(), kind).unwrap();
        assert_eq!(from_json.len(), pairs.len());
    }
}

fn snippet() -> impl Strategy<Value = String> {
    let call = prop_oneof![
        Just("kong.log.serialize()".to_owned()),
        "kong\\.request\\.get_header\\(\"[a-z-]{1,8}\"\\)",
        Just("kong.request.get_headers()".to_owned()),
        Just("kong.request.get_method()".to_owned()),
        Just("kong.request.get_path()".to_owned()),
        Just("kong.response.get_status()".to_owned()),
        "kong\\.response\\.get_header\\('[a-z-]{1,8}'\\)",
        Just("kong.response.get_headers()".to_owned()),
        Just("nil".to_owned()),
        Just("true".to_owned()),
        "[0-9]{1,5}",
        "\"[a-z ]{0,8}\"",
        Just("v".to_owned()),
    ];
    let index = prop_oneof![
        "\\[\"[a-z_]{1,8}\"\\]",
        "\\[[0-9]{1,3}\\]",
        "\\.[a-z_]{1,8}",
    ];
    let indexable = prop_oneof![
        Just("kong.log.serialize()".to_owned()),
        Just("kong.request.get_headers()".to_owned()),
        Just("kong.response.get_headers()".to_owned()),
        Just("v".to_owned()),
    ];
    (
        call.clone(),
        prop::collection::vec(index, 0..4),
        indexable,
        call,
    )
        .prop_map(|(local, path, indexable, plain)| {
            if path.is_empty() {
                format!("local v = {local}\nreturn {plain}")
            } else {
                format!("local v = {local}\nreturn {indexable}{}", path.concat())
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn lua_arbitrary_snippets_are_accepted_or_config_errors(src in prop_oneof![
        "\\PC{0,80}",
        "(local [a-z]{1,3} = |return |kong\\.|[()\\[\\]=.,\"'0-9a-z_ -]){0,30}",
    ]) {
        if let Ok(snippet) = lua::compile(&src) {
            let ctx = RequestContext::new("127.0.0.1:1".parse().unwrap(), 8000);
            snippet.run(&ctx, &json!({"a": [1, {"b": 2}]})).ok();
        }
    }

    #[test]
    fn lua_supported_snippets_compile_and_run_in_bounded_steps(src in snippet(), depth in 0usize..64) {
        let snippet = lua::compile(&src).unwrap_or_else(|e| panic!("{src}: {e}"));
        let mut ctx = RequestContext::new("127.0.0.1:1".parse().unwrap(), 8000);
        ctx.request_headers.insert("x-a", HeaderValue::from_static("1"));
        let mut serialized = json!({"leaf": 1});
        for _ in 0..depth {
            serialized = json!({"a": serialized, "b": [serialized.clone()]});
            if serialized.to_string().len() > 4096 {
                break;
            }
        }
        snippet.run(&ctx, &serialized).ok();
    }
}

#[test]
fn deeply_nested_documents_are_errors_not_stack_overflows() {
    for text in [
        "[".repeat(100_000),
        format!("services: {}", "[".repeat(100_000)),
        format!("{}1{}", "{\"a\":".repeat(50_000), "}".repeat(50_000)),
        format!("services:\n{}", "- ".repeat(20_000)),
        "&a [*a, *a]".to_owned(),
    ] {
        let error = declarative::load_str("kong.yaml", &text).unwrap_err();
        assert_kong_error(&error);
    }
    // Found by the document test: 100k open brackets took minutes in the YAML reader.
    let deep = format!("services: {}", "[".repeat(100_000));
    let error = declarative::load_str("kong.yaml", &deep)
        .unwrap_err()
        .to_string();
    assert!(
        error.ends_with("recursion limit exceeded at line 1 column 139"),
        "{error}"
    );
    // Shallower nesting, and brackets inside quotes and comments, reach the schema check.
    let shallow = format!(
        "services: {}{} # {}\ntags: ['[[[[', \"{{{{\\\"[[\"]\n",
        "[".repeat(100),
        "]".repeat(100),
        "[".repeat(200)
    );
    match declarative::load_str("kong.yaml", &shallow) {
        Err(LoadError::Invalid(_)) => {}
        other => panic!("expected schema errors, got {other:?}"),
    }
}
