use serde_json::{json, Value};

use super::*;

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn errors(text: &str) -> Vec<String> {
    match load_str("kong.yaml", text) {
        Err(LoadError::Invalid(errors)) => errors.iter().map(ToString::to_string).collect(),
        other => panic!("expected validation errors, got {other:?}"),
    }
}

fn by_name<'a>(config: &'a Config, kind: Kind, name: &str) -> &'a Entity {
    config
        .find(kind, name)
        .unwrap_or_else(|| panic!("{name} missing"))
}

#[test]
fn example_fills_kong_defaults_and_resolves_references() {
    let config = load_files(&[fixture("declarative-example.yaml")]).unwrap();
    let coupon = by_name(&config, Kind::Services, "ecommerce_coupon_service");
    assert_eq!(coupon["id"], "7a68f69e-9561-5beb-a1d2-44ba1d9fb83a");
    assert_eq!(coupon["path"], Value::Null);
    assert_eq!(coupon["enabled"], true);
    assert_eq!(coupon["tags"], json!(["kong-services-routes"]));
    let api = by_name(&config, Kind::Services, "backend-api");
    assert_eq!(
        (&api["protocol"], &api["host"], &api["port"], &api["path"]),
        (
            &json!("http"),
            &json!("backend-api"),
            &json!(7001),
            &json!("/v1")
        )
    );
    assert_eq!(api["retries"], 5);
    assert_eq!(api["read_timeout"], 60000);
    let route = by_name(&config, Kind::Routes, "ecommerce_coupon_route");
    assert_eq!(route["id"], "2a2e03ff-18f9-5463-97aa-eec924957e82");
    assert_eq!(route["service"], json!({"id": coupon["id"]}));
    assert_eq!(route["strip_path"], true);
    assert_eq!(route["preserve_host"], false);
    assert_eq!(route["protocols"], json!(["http", "https"]));
    assert_eq!(route["path_handling"], "v0");
    assert_eq!(route["https_redirect_status_code"], 426);
    assert_eq!(route["regex_priority"], 0);
    assert_eq!(route["methods"], Value::Null);
    let health = by_name(&config, Kind::Routes, "health");
    assert_eq!(health["service"], json!({"id": api["id"]}));
    let users = by_name(&config, Kind::Routes, "users-by-id");
    assert_eq!(users["headers"], json!({"x-version": ["v1", "~*^v1\\."]}));

    let plugins = config.get(Kind::Plugins);
    assert_eq!(plugins.len(), 7);
    let scoped = |field: &str, id: &Value| {
        plugins
            .iter()
            .filter(|p| p[field].get("id") == Some(id))
            .count()
    };
    assert_eq!(scoped("route", &users["id"]), 1);
    assert_eq!(scoped("route", &health["id"]), 1);
    assert_eq!(scoped("service", &api["id"]), 1);
    let alice = by_name(&config, Kind::Consumers, "alice");
    assert_eq!(scoped("consumer", &alice["id"]), 1);
    let global = by_name(&config, Kind::Plugins, "opentelemetry1");
    assert_eq!(
        global["id"],
        ids::entity_id("plugins", "plugins:*:opentelemetry:::")
    );
    assert_eq!(
        global["protocols"],
        json!(["grpc", "grpcs", "http", "https"])
    );
    assert_eq!(global["route"], Value::Null);
    assert!(global["created_at"].as_i64().unwrap() > 1_700_000_000);
}

#[test]
fn seed_files_load_alone_and_merged_with_their_own_select_tags() {
    let routes = fixture("seeds/000-kong-services-routes.yaml");
    let plugins = fixture("seeds/000-kong-plugins-all.yaml");
    for file in [
        &routes,
        &plugins,
        &fixture("seeds/000-kong-plugins-traces.yaml"),
    ] {
        load_files(&[file]).unwrap();
    }
    let config = load_files(&[&routes, &plugins]).unwrap();
    assert_eq!(config.get(Kind::Services).len(), 3);
    assert_eq!(config.get(Kind::Routes).len(), 3);
    assert_eq!(config.get(Kind::Plugins).len(), 3);
    for route in config.get(Kind::Routes) {
        assert_eq!(route["tags"], json!(["kong-services-routes"]));
    }
    for plugin in config.get(Kind::Plugins) {
        assert_eq!(plugin["tags"], json!(["kong-plugins"]));
        assert_eq!(plugin["enabled"], true);
    }
    let tcp = by_name(&config, Kind::Plugins, "tcp-log1");
    assert_eq!(tcp["config"]["port"], 54525);
}

#[test]
fn a_directory_loads_its_files_in_order() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["000-kong-services-routes.yaml", "000-kong-plugins-all.yaml"] {
        std::fs::copy(fixture(&format!("seeds/{name}")), dir.path().join(name)).unwrap();
    }
    std::fs::write(dir.path().join("notes.txt"), "not a config").unwrap();
    let config = load_files(&[dir.path()]).unwrap();
    assert_eq!(config.get(Kind::Services).len(), 3);
    assert_eq!(config.get(Kind::Plugins).len(), 3);
}

#[test]
fn seed_fragments_load_after_a_versioned_head() {
    let base = fixture("seeds/base.yaml");
    for fragment in [
        "001-kong-append.yaml",
        "001-kong-plugin-3.8.yaml",
        "001-kong-plugin-pre-3.8.yaml",
    ] {
        let config = load_files(&[base.clone(), fixture(&format!("seeds/{fragment}"))]).unwrap();
        assert_eq!(config.get(Kind::Plugins).len(), 1, "{fragment}");
    }
    let config = load_files(&[base.clone(), fixture("seeds/001-kong-append.yaml")]).unwrap();
    let api = by_name(&config, Kind::Services, "backend-api");
    assert_eq!(
        (api["port"].as_i64(), api["path"].is_null()),
        (Some(7001), true)
    );
    // The propagation snippet elides the rest of the plugin's config ("# ..."), endpoint
    // included: as printed Kong refuses it, and with an endpoint filled in it loads.
    let propagation = fixture("seeds/001-kong-plugin-propagation.yaml");
    let err = load_files(&[base.clone(), propagation.clone()]).unwrap_err();
    assert!(
        err.to_string().contains(
            "at least one of these fields must be non-empty: 'config.traces_endpoint', 'config.logs_endpoint'"
        ),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let completed = dir.path().join("propagation.yaml");
    let text = std::fs::read_to_string(&propagation).unwrap().replace(
        "    # ...\n",
        "    traces_endpoint: http://collector:4318/v1/traces\n",
    );
    std::fs::write(&completed, text).unwrap();
    let config = load_files(&[base, completed.to_string_lossy().into_owned()]).unwrap();
    assert_eq!(config.get(Kind::Plugins).len(), 1);
    let entities = fixture("seeds/001-scope-entities.yaml");
    for scope in ["service", "route", "consumer"] {
        let file = fixture(&format!("seeds/001-kong-plugin-{scope}-scope.yaml"));
        let config = load_files(&[entities.clone(), file]).unwrap();
        let plugin = &config.get(Kind::Plugins)[0];
        let kind = Kind::from_name(&format!("{scope}s")).unwrap();
        assert_eq!(plugin[scope]["id"], config.get(kind)[0]["id"], "{scope}");
    }
    let err = load_files(&[fixture("seeds/001-kong-plugin-3.8.yaml")]).unwrap_err();
    assert!(
        err.to_string()
            .contains("_format_version: required field missing"),
        "{err}"
    );
}

#[test]
fn field_errors_name_entity_and_field() {
    let errs =
        errors("_format_version: \"3.0\"\nservices:\n- name: a\n  port: 99999\n  colour: red\n");
    assert!(
        errs.contains(
            &"kong.yaml: in 'services' entry 'a': port: value should be between 0 and 65535"
                .to_owned()
        ),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.ends_with("'a': colour: unknown field")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.ends_with("'a': host: required field missing")),
        "{errs:?}"
    );

    let errs = errors("_format_version: \"3.0\"\nroutes:\n- name: r\n  protocols: [http]\n");
    assert!(
        errs[0].contains(
            "must set one of 'methods', 'hosts', 'headers', 'paths' when 'protocols' is 'http'"
        ),
        "{errs:?}"
    );

    let errs = errors("_format_version: \"3.0\"\nroutes:\n- name: r\n  paths: [coupon]\n  hosts: ['a.*.b']\n  methods: [get]\n");
    assert!(
        errs.iter()
            .any(|e| e.contains("paths: should start with: / (fixed path) or ~/ (regex path)")),
        "{errs:?}"
    );
    assert!(
        errs.iter().any(|e| e.contains("hosts: invalid wildcard")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("methods: invalid value: get")),
        "{errs:?}"
    );

    let errs = errors("_format_version: \"3.0\"\nplugins:\n- name: no-such-plugin\n");
    assert!(errs[0].contains("name: plugin 'no-such-plugin' not enabled; add it to the 'plugins' configuration property"), "{errs:?}");

    let errs =
        errors("_format_version: \"3.0\"\nroutes:\n- name: r\n  paths: [/x]\n  service: missing\n");
    assert!(
        errs[0].contains(
            "service: invalid reference 'service: missing' (no such entry in 'services')"
        ),
        "{errs:?}"
    );

    let errs =
        errors("_format_version: \"3.0\"\nservices:\n- {name: a, host: h}\n- {name: a, host: h}\n");
    assert!(
        errs.iter().any(|e| e.contains(
            "uniqueness violation: 'services' entity with name set to 'a' already declared"
        )),
        "{errs:?}"
    );

    let errs = errors("_format_version: \"3.0\"\nconsumers:\n- tags: [x]\n");
    assert!(
        errs[0].contains("at least one of these fields must be non-empty"),
        "{errs:?}"
    );
}

#[test]
fn envelope_is_checked() {
    assert!(errors("services: []\n")[0].contains("_format_version: required field missing"));
    assert!(errors("_format_version: \"4.0\"\n")[0].contains("expected one of: 1.1, 2.1, 3.0"));
    assert!(errors("_format_version: 3.0\n")[0].contains("expected a string"));
    assert!(errors("_format_version: \"3.0\"\nservice: []\n")[0].contains("service: unknown field"));
    assert!(
        errors("_format_version: \"3.0\"\n_transform: yes please\n")[0]
            .contains("_transform: expected a boolean")
    );
    let a = parse_document("a.yaml", "_format_version: \"3.0\"\n_workspace: one\n").unwrap();
    let b = parse_document("b.yaml", "_format_version: \"3.0\"\n_workspace: two\n").unwrap();
    let err = build(vec![a, b]).unwrap_err().to_string();
    assert!(
        err.contains("b.yaml: _workspace: files with different values cannot be merged"),
        "{err}"
    );
}

#[test]
fn decks_info_defaults_and_comments_apply() {
    let config = load_str(
        "kong.yaml",
        "_format_version: \"3.0\"\n_comment: hi\n_info:\n  defaults:\n    service:\n      port: 8080\n      read_timeout: 5000\nservices:\n- name: a\n  host: h\n  _comment: x\n- name: b\n  host: h\n  port: 9000\n",
    )
    .unwrap();
    assert_eq!(by_name(&config, Kind::Services, "a")["port"], 8080);
    assert_eq!(by_name(&config, Kind::Services, "a")["read_timeout"], 5000);
    assert_eq!(by_name(&config, Kind::Services, "b")["port"], 9000);
}

#[test]
fn legacy_format_versions_prefix_regex_paths() {
    let config = load_str(
        "kong.yaml",
        "_format_version: \"1.1\"\nroutes:\n- name: r\n  paths: [/plain, /users/\\d+, ~/kept]\n",
    )
    .unwrap();
    let route = by_name(&config, Kind::Routes, "r");
    assert_eq!(route["paths"], json!(["/plain", "~/users/\\d+", "~/kept"]));
}

#[test]
fn json_documents_and_references_by_id_or_object() {
    let text = r#"{"_format_version":"3.0","services":[{"id":"00000000-0000-4000-8000-000000000001","name":"s","host":"h"}],
        "routes":[{"name":"a","paths":["/a"],"service":{"id":"00000000-0000-4000-8000-000000000001"}},
                  {"name":"b","paths":["/b"],"service":{"name":"s"}}],
        "upstreams":[{"name":"pool","targets":[{"target":"10.0.0.1"},{"target":"10.0.0.2:9000","weight":5}]}],
        "certificates":[{"cert":"C","key":"K","snis":[{"name":"example.test"}]}]}"#;
    let config = load_str("kong.json", text).unwrap();
    for route in config.get(Kind::Routes) {
        assert_eq!(
            route["service"],
            json!({"id": "00000000-0000-4000-8000-000000000001"})
        );
    }
    let targets = config.get(Kind::Targets);
    assert_eq!(targets[0]["target"], "10.0.0.1:8000");
    assert_eq!(targets[0]["weight"], 100);
    assert_eq!(targets[1]["weight"], 5);
    let pool = by_name(&config, Kind::Upstreams, "pool");
    assert_eq!(targets[0]["upstream"], json!({"id": pool["id"]}));
    assert_eq!(pool["algorithm"], "round-robin");
    assert_eq!(pool["healthchecks"]["active"]["http_path"], "/");
    let sni = by_name(&config, Kind::Snis, "example.test");
    assert_eq!(
        sni["certificate"]["id"],
        config.get(Kind::Certificates)[0]["id"]
    );
}

#[test]
fn digest_follows_the_input_not_the_load_time() {
    let text = "_format_version: \"3.0\"\nservices:\n- {name: a, host: h}\n- {host: unnamed}\n";
    let mut a = load_str("a", text).unwrap();
    let b = load_str("b", text).unwrap();
    a.get_mut(Kind::Services)[0].insert("created_at".into(), json!(1));
    assert_ne!(
        a.digest_input(),
        b.digest_input(),
        "edited entities are digested"
    );
    let a = load_str("a", text).unwrap();
    assert_eq!(a.digest_input(), b.digest_input());
    let other = load_str(
        "c",
        "_format_version: \"3.0\"\nservices:\n- {name: a, host: other}\n",
    )
    .unwrap();
    assert_ne!(other.digest_input(), b.digest_input());
}

#[test]
fn partial_healthchecks_keep_kongs_nested_defaults_and_ca_certificates_load() {
    let text = "_format_version: \"3.0\"\nupstreams:\n- name: pool\n  healthchecks:\n    active:\n      healthy: {interval: 5}\n    threshold: 25\nca_certificates:\n- id: 00000000-0000-4000-8000-0000000000ca\n  cert: C\n";
    let config = load_str("kong.yaml", text).unwrap();
    let pool = by_name(&config, Kind::Upstreams, "pool");
    let checks = &pool["healthchecks"];
    assert_eq!(checks["active"]["healthy"]["interval"], 5);
    assert_eq!(
        checks["active"]["healthy"]["http_statuses"],
        json!([200, 302])
    );
    assert_eq!(checks["active"]["healthy"]["successes"], 0);
    assert_eq!(checks["active"]["unhealthy"]["http_statuses"][0], 429);
    assert_eq!(
        checks["passive"]["unhealthy"]["http_statuses"],
        json!([429, 500, 503])
    );
    assert_eq!(checks["threshold"], 25);
    let ca = &config.get(Kind::CaCertificates)[0];
    assert_eq!(ca["cert"], "C");
    assert_eq!(ca["cert_digest"], serde_json::Value::Null);
}
