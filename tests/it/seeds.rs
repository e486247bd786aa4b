//! Every collector config printed in the seed documents goes through the loader; those
//! whose components exist validate.

use crate::support::process::{run, run_env};

/// What the Kubernetes secrets provide in the seed's deployment.
const SECRETS: [(&str, &str); 2] = [
    (
        "DT_ENDPOINT",
        "https://abc12345.live.dynatrace.com/api/v2/otlp",
    ),
    ("DT_API_TOKEN", "dt0c01.sample"),
];

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/seeds/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn dynatrace_traces_seed_validates_and_resolves() {
    let file = fixture("000-dynatrace-traces.yaml");
    let out = run_env(&["validate", "--config", &file], &SECRETS);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The operator resource's `spec.env` literal value fills ${KONG_DEPLOYMENT_NAME}; the
    // token header is redacted.
    let out = run_env(&["print-config", "--config", &file], &SECRETS);
    assert!(out.status.success());
    let printed: yaml_serde::Value = yaml_serde::from_slice(&out.stdout).unwrap();
    assert_eq!(
        printed["processors"]["attributes"]["actions"][0]["value"],
        "kong-ecommerce-deployment"
    );
    assert_eq!(
        printed["exporters"]["otlphttp"]["headers"]["Authorization"],
        "[REDACTED]"
    );
    assert_eq!(
        printed["service"]["pipelines"]["traces"]["exporters"][0],
        "otlphttp"
    );
}

#[test]
fn full_dynatrace_seed_loads_and_names_only_the_missing_components() {
    let file = fixture("000-dynatrace-traces-metrics-logs.yaml");
    let out = run_env(&["print-config", "--config", &file], &SECRETS);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: yaml_serde::Value = yaml_serde::from_slice(&out.stdout).unwrap();
    assert_eq!(
        printed["receivers"]["tcplog"]["listen_address"],
        "0.0.0.0:54525"
    );

    let out = run_env(&["validate", "--config", &file], &SECRETS);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let unknown: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.split("unknown type: \"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .collect();
    let mut expected = Vec::new();
    for (kind, name) in [
        ("receiver", "prometheus"),
        ("receiver", "tcplog"),
        ("processor", "cumulativetodelta"),
        ("exporter", "prometheus"),
    ] {
        let lookup = match kind {
            "receiver" => otelpipe::registry::receiver(name).is_some(),
            "processor" => otelpipe::registry::processor(name).is_some(),
            _ => otelpipe::registry::exporter(name).is_some(),
        };
        if !lookup {
            expected.push(name);
        }
    }
    let mut unknown_sorted = unknown.clone();
    unknown_sorted.sort_unstable();
    expected.sort_unstable();
    assert_eq!(unknown_sorted, expected, "{stderr}");
    // Every other line would be a real problem with the seed.
    assert_eq!(stderr.lines().count(), unknown.len(), "{stderr}");
    assert_eq!(
        out.status.code(),
        Some(if expected.is_empty() { 0 } else { 2 })
    );
}

#[test]
fn spanmetrics_fragment_merges_into_a_users_config() {
    let base = fixture("spanmetrics-base.yaml");
    let fragment = fixture("003-kong-spanmetrics.yaml");
    let out = run(&["print-config", "--config", &base, "--config", &fragment]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: yaml_serde::Value = yaml_serde::from_slice(&out.stdout).unwrap();
    assert_eq!(
        printed["connectors"]["spanmetrics"]["metrics_flush_interval"],
        "15s"
    );
    assert_eq!(
        printed["service"]["pipelines"]["metrics"]["receivers"][0],
        "spanmetrics"
    );
    let out = run(&["validate", "--config", &base, "--config", &fragment]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if otelpipe::registry::connector("spanmetrics").is_some() {
        assert!(out.status.success(), "{stderr}");
    } else {
        assert_eq!(
            stderr.trim(),
            format!("{fragment}:2:3: connectors::spanmetrics: unknown type: \"spanmetrics\" for id: \"spanmetrics\" (valid values: [])")
        );
    }
}
