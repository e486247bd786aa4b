//! Loader and validator tests: each rule with its message and location.

use std::collections::HashMap;

use super::*;
use crate::registry::BUILTIN;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

fn load_text(text: &str, env: &HashMap<String, String>) -> Result<Loaded, ConfigErrors> {
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "c.yaml", text);
    load(&[Source::Uri(file)], &[], env)
}

fn errors_of(text: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "c.yaml", text);
    let result = load(&[Source::Uri(file.clone())], &[], &env(&[]))
        .and_then(|l| validate_with(&l, &BUILTIN).map(|()| l));
    match result {
        Ok(_) => Vec::new(),
        Err(e) => {
            e.0.iter()
                .map(|e| e.to_string().replace(&file, "c.yaml"))
                .collect()
        }
    }
}

const MINIMAL: &str = "receivers:\n  nop:\nexporters:\n  nop:\nservice:\n  pipelines:\n    traces:\n      receivers: [nop]\n      exporters: [nop]\n";

#[test]
fn files_merge_left_to_right_and_set_comes_last() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(&dir, "a.yaml", "exporters:\n  debug:\n    verbosity: basic\n    sampling_initial: 5\nprocessors:\n  batch:\n    timeout: 1s\n");
    let b = write(
        &dir,
        "b.yaml",
        "exporters:\n  debug:\n    verbosity: normal\n",
    );
    let loaded = load(
        &[Source::Uri(a), Source::Uri(format!("file:{b}"))],
        &[
            "exporters.debug.verbosity=detailed".to_owned(),
            "processors::batch::timeout=2s".to_owned(),
        ],
        &env(&[]),
    )
    .unwrap();
    let debug = &loaded.config.exporters[&ComponentId::new("debug")];
    assert_eq!(debug["verbosity"], "detailed");
    assert_eq!(debug["sampling_initial"], 5);
    assert_eq!(
        loaded.config.processors[&ComponentId::new("batch")]["timeout"],
        "2s"
    );
}

#[test]
fn yaml_and_env_sources() {
    let e = env(&[("CONFIG", "receivers:\n  otlp:\n")]);
    let loaded = load(
        &[
            Source::Uri("env:CONFIG".into()),
            Source::Uri("yaml:exporters::debug::verbosity: detailed".into()),
        ],
        &[],
        &e,
    )
    .unwrap();
    assert!(loaded
        .config
        .receivers
        .contains_key(&ComponentId::new("otlp")));
    assert_eq!(
        loaded.config.exporters[&ComponentId::new("debug")]["verbosity"],
        "detailed"
    );
}

#[test]
fn expansion_happens_after_merge() {
    let e = env(&[("TOKEN", "s3cr3t"), ("PORT", "4317")]);
    let loaded = load_text(
        "exporters:\n  otlphttp:\n    headers:\n      Authorization: \"Api-Token ${env:TOKEN}\"\n    port: ${env:PORT}\n    fallback: ${env:NOPE:-x}\n",
        &e,
    )
    .unwrap();
    let section = &loaded.config.exporters[&ComponentId::new("otlphttp")];
    assert_eq!(section["headers"]["Authorization"], "Api-Token s3cr3t");
    assert_eq!(section["port"], 4317);
    assert_eq!(section["fallback"], "x");
    // print-config redacts the header value.
    let printed = loaded.print();
    assert!(printed.contains("[REDACTED]"), "{printed}");
    assert!(!printed.contains("s3cr3t"), "{printed}");
}

#[test]
fn operator_resource_env_values_are_defaults() {
    let text = "apiVersion: opentelemetry.io/v1beta1\nkind: OpenTelemetryCollector\nspec:\n  env:\n    - name: NAME\n      value: from-cr\n  config:\n    processors:\n      attributes:\n        actions:\n          - key: k\n            value: \"${NAME}\"\n            action: insert\n";
    let loaded = load_text(text, &env(&[])).unwrap();
    let actions = &loaded.config.processors[&ComponentId::new("attributes")]["actions"];
    assert_eq!(actions[0]["value"], "from-cr");
    let loaded = load_text(text, &env(&[("NAME", "from-env")])).unwrap();
    let actions = &loaded.config.processors[&ComponentId::new("attributes")]["actions"];
    assert_eq!(actions[0]["value"], "from-env");
}

#[test]
fn pipelines_and_telemetry_are_split() {
    let loaded = load_text(
        "receivers: {otlp: }\nexporters: {debug: }\nservice:\n  telemetry:\n    logs: {level: warn}\n    metrics: {address: 0.0.0.0:9999}\n  pipelines:\n    traces/kong:\n      receivers: [otlp]\n      exporters: [debug]\n",
        &env(&[]),
    )
    .unwrap();
    let (pid, p) = loaded.config.service.pipelines.iter().next().unwrap();
    assert_eq!(pid.to_string(), "traces/kong");
    assert_eq!(p.receivers, vec![ComponentId::new("otlp")]);
    assert_eq!(loaded.config.service.telemetry.log_level, LogLevel::Warn);
    assert_eq!(
        loaded.config.service.telemetry.metrics_address.as_deref(),
        Some("0.0.0.0:9999")
    );
}

#[test]
fn unknown_top_level_key_is_located_with_suggestion() {
    let errors = errors_of("recievers:\n  otlp:\n");
    assert_eq!(
        errors,
        vec!["c.yaml:1:1: recievers: has invalid keys: recievers (did you mean `receivers`?)"]
    );
}

#[test]
fn service_rules_have_otelcol_wording() {
    let errors = errors_of("receivers:\n  health_check:\n");
    assert!(
        errors.contains(&"no exporter configuration specified in config".to_owned()),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.ends_with("service: must have at least one pipeline")),
        "{errors:?}"
    );

    let errors = errors_of("{}");
    assert_eq!(errors, vec!["empty configuration file"]);

    let errors = errors_of("receivers: {x: }\nexporters: {y: }\nextensions: {health_check: }\nservice:\n  extensions: [health_check, zpages]\n  pipelines:\n    traces:\n      receivers: [x, missing]\n      processors: [p]\n      exporters: []\n");
    let joined = errors.join("\n");
    for expected in [
        "c.yaml:5:30: service::extensions::1: references extension \"zpages\" which is not configured",
        "service::pipelines::traces: must have at least one exporter",
        "c.yaml:8:22: service::pipelines::traces::receivers::1: references receiver \"missing\" which is not configured",
        "service::pipelines::traces::processors::0: references processor \"p\" which is not configured",
    ] {
        assert!(joined.contains(expected), "missing {expected:?} in\n{joined}");
    }
    let errors = errors_of("receivers: {x: }\nexporters: {y: }\nservice:\n  pipelines:\n    foo:\n      receivers: [x]\n");
    assert_eq!(
        errors,
        vec!["c.yaml:5:5: service::pipelines::foo: pipeline \"foo\": unknown signal \"foo\""]
    );
}

#[test]
fn unknown_types_list_valid_values() {
    let errors = errors_of("receivers: {x: }\nexporters: {logging: }\nextensions:\n  health_chek:\nservice:\n  pipelines:\n    traces: {receivers: [x], exporters: [logging]}\n");
    let joined = errors.join("\n");
    assert!(
        joined.contains("c.yaml:1:13: receivers::x: unknown type: \"x\" for id: \"x\""),
        "{joined}"
    );
    assert!(
        joined.contains("use the debug exporter instead"),
        "{joined}"
    );
    assert!(joined.contains("c.yaml:4:3: extensions::health_chek: unknown type: \"health_chek\" for id: \"health_chek\" (valid values: [basicauth bearertokenauth file_storage "), "{joined}");
    assert!(joined.contains(" health_check]"), "{joined}");
    assert!(
        joined.contains("(did you mean \"health_check\"?)"),
        "{joined}"
    );
}

#[test]
fn component_errors_are_prefixed_and_located() {
    let errors = errors_of("extensions:\n  health_check:\n    endpoint: localhost:13133\n    pth: /x\nreceivers: {x: }\nexporters: {y: }\nservice:\n  extensions: [health_check]\n  pipelines: {traces: {receivers: [x], exporters: [y]}}\n");
    let joined = errors.join("\n");
    assert!(
        joined.contains("c.yaml:4:5: extensions::health_check::pth: unknown field `pth`"),
        "{joined}"
    );
}

#[test]
fn duplicate_keys_and_bad_ids_are_errors() {
    let errors = errors_of("receivers:\n  otlp:\n  otlp:\n");
    assert_eq!(errors.len(), 1);
    assert!(errors[0].starts_with("c.yaml:3:3: "), "{errors:?}");
    assert!(errors[0].contains("duplicate"), "{errors:?}");

    let errors = errors_of("receivers:\n  otlp/:\n");
    assert_eq!(
        errors,
        vec!["c.yaml:2:3: receivers::otlp/: in \"otlp/\" id: the part after / should not be empty"]
    );
}

#[test]
fn invalid_env_names_are_errors() {
    let errors = errors_of("exporters:\n  debug:\n    verbosity: ${env:1X}\n");
    assert_eq!(
        errors,
        vec!["c.yaml:3:5: exporters::debug::verbosity: environment variable \"1X\" has invalid name: must match ^[a-zA-Z_][a-zA-Z0-9_]*$"]
    );
}

#[test]
fn minimal_shape_parses() {
    let loaded = load_text(MINIMAL, &env(&[])).unwrap();
    assert_eq!(loaded.config.service.pipelines.len(), 1);
}

#[test]
fn print_config_redacts_tls_keys_tokens_and_htpasswd() {
    let e = env(&[("TOKEN", "t0k3n"), ("PASS", "pa55")]);
    let loaded = load_text(
        "extensions:\n  bearertokenauth:\n    token: ${env:TOKEN}\n    tokens: [one1, two2]\n  basicauth/server:\n    htpasswd:\n      inline: \"user:${env:PASS}\"\n      file: /etc/htpasswd\n  basicauth/client:\n    client_auth:\n      username: user\n      password: ${env:PASS}\nreceivers:\n  otlp:\n    protocols:\n      http:\n        tls:\n          cert_file: /etc/server.crt\n          key_pem: \"-----BEGIN PRIVATE KEY-----x\"\n",
        &e,
    )
    .unwrap();
    let printed = loaded.print();
    for secret in ["t0k3n", "one1", "two2", "pa55", "BEGIN PRIVATE KEY"] {
        assert!(!printed.contains(secret), "{secret} in {printed}");
    }
    // What is not a secret stays readable.
    for visible in ["/etc/htpasswd", "/etc/server.crt", "username: user"] {
        assert!(printed.contains(visible), "{visible} missing in {printed}");
    }
}

#[test]
fn print_config_redacts_headers_setter_values_but_keeps_keys() {
    let loaded = load_text(
        "extensions:\n  headers_setter:\n    headers:\n      - key: Api-Key\n        value: ${env:KEY}\n      - key: X-Tenant\n        from_context: tenant\n        default_value: hidden-default\n",
        &env(&[("KEY", "s3cr3t")]),
    )
    .unwrap();
    let printed = loaded.print();
    for visible in ["Api-Key", "from_context: tenant", "X-Tenant"] {
        assert!(printed.contains(visible), "{visible} missing in {printed}");
    }
    for secret in ["s3cr3t", "hidden-default"] {
        assert!(!printed.contains(secret), "{secret} in {printed}");
    }
}

#[test]
fn environment_values_never_appear_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "c.yaml",
        "receivers:\n  otlp:\n    protocols:\n      http:\n        max_request_body_size: ${env:SIZE}\nexporters:\n  otlphttp:\n    endpoint: \"${env:URL}\"\nservice:\n  pipelines:\n    logs: {receivers: [otlp], exporters: [otlphttp]}\n",
    );
    let e = env(&[("SIZE", "hunter2big"), ("URL", "ftp://user:pw@host")]);
    let errors = match load(&[Source::Uri(file)], &[], &e) {
        Ok(loaded) => crate::config::validate::validate(&loaded)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default(),
        Err(e) => e.to_string(),
    };
    assert!(errors.contains("max_request_body_size"), "{errors}");
    assert!(errors.contains("[REDACTED]"), "{errors}");
    for secret in ["hunter2big", "user:pw"] {
        assert!(!errors.contains(secret), "{secret} in {errors}");
    }
}
