use http::HeaderMap;
use serde_json::json;

use super::*;
use crate::declarative::model::{Route, Service};

fn service(path: Option<&str>) -> Service {
    serde_json::from_value(json!({
        "id": "00000000-0000-4000-8000-00000000000s", "name": "s", "protocol": "http",
        "host": "upstream.test", "port": 80, "path": path, "retries": 5,
        "connect_timeout": 60000, "write_timeout": 60000, "read_timeout": 60000, "enabled": true
    }))
    .unwrap()
}

fn route(id: &str, fields: serde_json::Value) -> Route {
    let mut base = json!({
        "id": id, "name": id, "protocols": ["http", "https"], "methods": null, "hosts": null,
        "paths": null, "headers": null, "snis": null, "strip_path": true, "preserve_host": false,
        "regex_priority": 0, "path_handling": "v0", "https_redirect_status_code": 426,
        "service": {"id": "00000000-0000-4000-8000-00000000000s"}
    });
    for (k, v) in fields.as_object().unwrap() {
        base[k] = v.clone();
    }
    serde_json::from_value(base).unwrap()
}

struct Req<'a> {
    method: &'a str,
    host: &'a str,
    path: &'a str,
    headers: HeaderMap,
}

fn req<'a>(method: &'a str, host: &'a str, path: &'a str) -> Req<'a> {
    Req {
        method,
        host,
        path,
        headers: HeaderMap::new(),
    }
}

fn find(router: &Router, r: &Req<'_>) -> Option<Match> {
    let path = normalize_path(r.path);
    router.find(&RequestView {
        method: r.method,
        host: Some(r.host),
        listen_port: 8000,
        path: &path,
        headers: &r.headers,
        sni: None,
    })
}

fn winner(router: &Router, r: &Req<'_>) -> Option<String> {
    find(router, r).map(|m| m.route.id.clone())
}

#[test]
fn path_handling_v0_truth_table() {
    let tsv = include_str!("../../tests/fixtures/router-path-handling-v0.tsv");
    let mut rows = 0;
    for line in tsv.lines().filter(|l| !l.starts_with('#')).skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let [service_path, route_path, strip, request, expected] = cols[..] else {
            panic!("bad row {line}");
        };
        let strips: &[bool] = match strip {
            "both" => &[true, false],
            "true" => &[true],
            _ => &[false],
        };
        for &strip_path in strips {
            let fields = if route_path == "-" {
                json!({"hosts": ["example.test"], "strip_path": strip_path})
            } else {
                json!({"paths": [route_path], "strip_path": strip_path})
            };
            for path_handling in ["v0", "v1"] {
                let mut fields = fields.clone();
                fields["path_handling"] = json!(path_handling);
                let r = route("00000000-0000-4000-8000-000000000001", fields);
                let router = Router::new(&[r], &[service(Some(service_path))]);
                let m = find(&router, &req("GET", "example.test", request))
                    .unwrap_or_else(|| panic!("no match: {line}"));
                let got = m.upstream_path(&normalize_path(request));
                assert_eq!(
                    got, expected,
                    "row {line} strip={strip_path} {path_handling}"
                );
            }
            rows += 1;
        }
    }
    assert!(rows >= 79, "{rows} rows ran");
}

#[test]
fn prefix_is_a_plain_string_prefix_and_longest_wins() {
    let a = route(
        "00000000-0000-4000-8000-00000000000a",
        json!({"paths": ["/coupon"]}),
    );
    let b = route(
        "00000000-0000-4000-8000-00000000000b",
        json!({"paths": ["/coupon/apply"]}),
    );
    let router = Router::new(&[a, b], &[service(None)]);
    assert_eq!(
        winner(&router, &req("GET", "h", "/couponfoo")).unwrap(),
        "00000000-0000-4000-8000-00000000000a"
    );
    assert_eq!(
        winner(&router, &req("GET", "h", "/coupon/apply?x")).unwrap(),
        "00000000-0000-4000-8000-00000000000b"
    );
    assert_eq!(winner(&router, &req("GET", "h", "/Coupon")), None);
    assert_eq!(winner(&router, &req("GET", "h", "/other")), None);
}

#[test]
fn more_attribute_kinds_beat_longer_paths_and_regex_beats_prefix() {
    let long = route(
        "00000000-0000-4000-8000-00000000000a",
        json!({"paths": ["/users/very/long/prefix"]}),
    );
    let host = route(
        "00000000-0000-4000-8000-00000000000b",
        json!({"paths": ["/users"], "hosts": ["api.test"]}),
    );
    let regex_low = route(
        "00000000-0000-4000-8000-00000000000c",
        json!({"paths": ["~/users/\\d+"], "regex_priority": 1}),
    );
    let regex_high = route(
        "00000000-0000-4000-8000-00000000000d",
        json!({"paths": ["~/users/(?<id>\\d+)$"], "regex_priority": 5}),
    );
    let router = Router::new(&[long, host, regex_low, regex_high], &[service(None)]);
    let r = |host, path| winner(&router, &req("GET", host, path)).unwrap();
    assert_eq!(
        r("api.test", "/users/very/long/prefix"),
        "00000000-0000-4000-8000-00000000000b"
    );
    assert_eq!(
        r("other.test", "/users/very/long/prefix"),
        "00000000-0000-4000-8000-00000000000a"
    );
    assert_eq!(
        r("other.test", "/users/42"),
        "00000000-0000-4000-8000-00000000000d"
    );
    assert_eq!(
        r("other.test", "/users/42/x"),
        "00000000-0000-4000-8000-00000000000c"
    );
    let m = find(&router, &req("GET", "x", "/users/42")).unwrap();
    assert_eq!(m.uri_captures.get("id").map(String::as_str), Some("42"));
    assert_eq!(
        m.uri_captures.get("0").map(String::as_str),
        Some("/users/42")
    );
    assert_eq!(m.matched_path.as_deref(), Some("/users/42"));
}

#[test]
fn hosts_wildcards_and_ports() {
    let exact = route(
        "00000000-0000-4000-8000-00000000000a",
        json!({"hosts": ["api.example.test"]}),
    );
    let suffix = route(
        "00000000-0000-4000-8000-00000000000b",
        json!({"hosts": ["*.example.org"]}),
    );
    let prefix = route(
        "00000000-0000-4000-8000-00000000000c",
        json!({"hosts": ["example.*"]}),
    );
    let port = route(
        "00000000-0000-4000-8000-00000000000d",
        json!({"hosts": ["ported.test:8080"]}),
    );
    let router = Router::new(&[exact, suffix, prefix, port], &[service(None)]);
    let r = |host| winner(&router, &req("GET", host, "/"));
    assert_eq!(
        r("api.example.test:8000").unwrap(),
        "00000000-0000-4000-8000-00000000000a"
    );
    assert_eq!(
        r("a.b.example.org").unwrap(),
        "00000000-0000-4000-8000-00000000000b"
    );
    assert_eq!(r("xexample.org"), None);
    assert_eq!(
        r("example.net").unwrap(),
        "00000000-0000-4000-8000-00000000000c"
    );
    assert_eq!(
        r("ported.test:8080").unwrap(),
        "00000000-0000-4000-8000-00000000000d"
    );
    assert_eq!(r("ported.test"), None, "listening port 8000 differs");
}

#[test]
fn methods_and_headers_must_all_match() {
    let r = route(
        "00000000-0000-4000-8000-00000000000a",
        json!({"methods": ["GET"], "paths": ["/"], "headers": {"X-Version": ["v1", "~*^v2\\."]}}),
    );
    let plain = route(
        "00000000-0000-4000-8000-00000000000b",
        json!({"paths": ["/"]}),
    );
    let router = Router::new(&[r, plain], &[service(None)]);
    let with = |method, value: &str| {
        let mut q = req(method, "h", "/");
        q.headers.insert("x-version", value.parse().unwrap());
        winner(&router, &q).unwrap()
    };
    assert_eq!(with("GET", "V1"), "00000000-0000-4000-8000-00000000000a");
    assert_eq!(with("GET", "v2.3"), "00000000-0000-4000-8000-00000000000a");
    assert_eq!(with("GET", "v3"), "00000000-0000-4000-8000-00000000000b");
    assert_eq!(with("POST", "v1"), "00000000-0000-4000-8000-00000000000b");
}

#[test]
fn equal_priorities_prefer_the_larger_id_and_disabled_services_drop_routes() {
    let a = route(
        "00000000-0000-4000-8000-00000000000a",
        json!({"paths": ["/x"]}),
    );
    let b = route(
        "00000000-0000-4000-8000-00000000000b",
        json!({"paths": ["/x"]}),
    );
    let router = Router::new(&[a.clone(), b], &[service(None)]);
    assert_eq!(
        winner(&router, &req("GET", "h", "/x")).unwrap(),
        "00000000-0000-4000-8000-00000000000b"
    );
    let mut disabled = service(None);
    disabled.enabled = false;
    let router = Router::new(&[a], &[disabled]);
    assert!(router.is_empty());
}

#[test]
fn priority_bits_follow_kong() {
    let r = route(
        "i",
        json!({"paths": ["/abc"], "hosts": ["a.test"], "headers": {"x": ["1"], "y": ["2"]}}),
    );
    let p = priority(&r, false, 4);
    assert_eq!(p >> 61, 3);
    assert_eq!((p >> 60) & 1, 1);
    assert_eq!((p >> 52) & 0xff, 2);
    assert_eq!((p >> 51) & 1, 0);
    assert_eq!(p & 0x7ffff, 4);
}
