//! The binary: `config parse`, startup errors, `KONG_*` environment.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_otelpipe-gateway"))
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn config_parse_prints_merged_defaulted_entities() {
    let out = bin()
        .args(["config", "parse"])
        .arg(fixture("seeds/000-kong-services-routes.yaml"))
        .arg(fixture("seeds/000-kong-plugins-all.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["services"].as_array().unwrap().len(), 3);
    assert_eq!(doc["routes"][0]["strip_path"], true);
    assert_eq!(doc["plugins"].as_array().unwrap().len(), 3);
}

#[test]
fn invalid_files_exit_2_with_one_line_per_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "_format_version: \"3.0\"\nservices:\n- name: a\n  port: x\n",
    )
    .unwrap();
    for args in [
        vec!["config", "parse", path.to_str().unwrap()],
        vec!["--config", path.to_str().unwrap()],
    ] {
        let out = bin().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{err}");
        assert!(
            lines
                .iter()
                .any(|l| l.ends_with("in 'services' entry 'a': port: expected an integer")),
            "{err}"
        );
    }
}

#[test]
fn binary_serves_kong_env_and_stops_on_sigterm() {
    let free = |_: u8| {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (proxy, admin, status) = (free(0), free(1), free(2));
    let mut child = bin()
        .env(
            "KONG_DECLARATIVE_CONFIG",
            fixture("seeds/000-kong-services-routes.yaml"),
        )
        .env("KONG_PROXY_LISTEN", format!("127.0.0.1:{proxy}"))
        .env("KONG_ADMIN_LISTEN", format!("127.0.0.1:{admin}"))
        .env("KONG_STATUS_LISTEN", format!("127.0.0.1:{status}"))
        .env("KONG_NGINX_WORKER_PROCESSES", "2")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut body = String::new();
    for _ in 0..100 {
        if let Ok(out) = Command::new("curl")
            .args(["-s", &format!("http://127.0.0.1:{status}/status/ready")])
            .output()
        {
            body = String::from_utf8_lossy(&out.stdout).into_owned();
            if body.contains("ready") {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(body.contains("\"message\":\"ready\""), "{body}");
    let out = Command::new("curl")
        .args(["-s", "-i", &format!("http://127.0.0.1:{proxy}/nothing")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 404"), "{text}");
    assert!(text.contains("no Route matched with those values"));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut code = None;
    for _ in 0..100 {
        if let Ok(Some(status)) = child.try_wait() {
            code = status.code();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if code.is_none() {
        child.kill().unwrap();
    }
    assert_eq!(code, Some(0));
}

#[test]
fn declarative_config_string_is_read_and_checked_before_any_port_opens() {
    let out = bin()
        .env("KONG_DECLARATIVE_CONFIG_STRING", "{\"_format_version\":\"3.0\",\"routes\":[{\"name\":\"r\",\"paths\":[\"/x\"],\"service\":\"missing\"}]}")
        .env("KONG_PROXY_LISTEN", "127.0.0.1:0")
        .env("KONG_ADMIN_LISTEN", "127.0.0.1:0")
        .env("KONG_STATUS_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("in 'routes' entry 'r': service: invalid reference 'service: missing' (no such entry in 'services')"),
        "{err}"
    );
    let out = bin()
        .env("KONG_TRACING_SAMPLING_RATE", "7")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tracing_sampling_rate"));
}
