//! The command line as a user types it.

use crate::support::process::run;

#[test]
fn version_and_components() {
    let out = run(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("otelpipe {}", env!("CARGO_PKG_VERSION"))
    );

    let out = run(&["components"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let listing: yaml_serde::Value = yaml_serde::from_str(&text).expect("components prints YAML");
    assert_eq!(listing["buildinfo"]["command"], "otelpipe");
    let extensions: Vec<&str> = listing["extensions"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(extensions.contains(&"health_check"), "{text}");
}

#[test]
fn validate_reports_every_problem_with_its_location_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "receivers:\n  nope:\nexporters:\n  also_nope:\nservice:\n  pipelines:\n    traces:\n      receivers: [nope]\n      exporters: [missing]\n",
    )
    .unwrap();
    let file = path.to_str().unwrap();
    let out = run(&["validate", "--config", file]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{file}:2:3: receivers::nope: unknown type"))),
        "{stderr}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{file}:4:3: exporters::also_nope: unknown type"))),
        "{stderr}"
    );
    assert!(lines.contains(&format!("{file}:9:19: service::pipelines::traces::exporters::0: references exporter \"missing\" which is not configured").as_str()), "{stderr}");
}

#[test]
fn missing_config_file_is_a_config_error() {
    let out = run(&["validate", "--config", "/no/such/otelpipe.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .starts_with("cannot read config file \"/no/such/otelpipe.yaml\""));
}
