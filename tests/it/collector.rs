//! The collector binary end to end: config file in, OTLP over real sockets, SIGTERM out.

use std::time::Duration;

use crate::support::process::{free_port, Collector};

fn write_config(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let path = dir.path().join("collector.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn receives_otlp_http_prints_with_debug_and_stops_on_sigterm() {
    let (grpc, http, health, metrics) = (free_port(), free_port(), free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        &dir,
        &format!(
            "receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
      http:
        endpoint: 127.0.0.1:{http}
processors:
  batch:
    timeout: 50ms
exporters:
  debug:
    verbosity: normal
    use_internal_logger: false
extensions:
  health_check:
    endpoint: 127.0.0.1:{health}
service:
  extensions: [health_check]
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    logs:
      receivers: [otlp]
      processors: [batch]
      exporters: [debug]
"
        ),
    );
    let collector = Collector::start(&config, &[], http);

    let health_body = curl(&["-s", &format!("http://127.0.0.1:{health}/")]);
    assert!(
        health_body.starts_with(r#"{"status":"Server available""#),
        "{health_body}"
    );

    let record = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"hello from curl"},"attributes":[{"key":"route","value":{"stringValue":"orders"}}]}]}]}]}"#;
    let status = curl(&[
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        "Content-Type: application/json",
        "--data",
        record,
        &format!("http://127.0.0.1:{http}/v1/logs"),
    ]);
    assert_eq!(status, "200");

    // Own metrics count what the receiver accepted.
    let mut own = String::new();
    for _ in 0..50 {
        own = curl(&["-s", &format!("http://127.0.0.1:{metrics}/metrics")]);
        if own.contains("otelcol_receiver_accepted_log_records") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let accepted = own
        .lines()
        .find(|l| {
            l.starts_with("otelcol_receiver_accepted_log_records{")
                && l.contains("transport=\"http\"")
        })
        .unwrap_or_else(|| panic!("no accepted counter in:\n{own}"));
    assert!(accepted.ends_with(" 1"), "{accepted}");
    assert!(accepted.contains("service_name=\"otelpipe\""), "{accepted}");

    std::thread::sleep(Duration::from_millis(200));
    let (code, stdout, stderr) = collector.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("Logs\t{\"resource logs\": 1, \"log records\": 1}"),
        "{stdout}"
    );
    assert!(stdout.contains("hello from curl route=orders"), "{stdout}");
    assert!(stderr.contains("Everything is ready."), "{stderr}");
    assert!(stderr.contains("Shutdown complete."), "{stderr}");
}

#[test]
fn a_port_in_use_fails_start_with_exit_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        &dir,
        &format!("receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: 127.0.0.1:{port}\nexporters:\n  debug:\nservice:\n  telemetry:\n    metrics:\n      level: none\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [debug]\n"),
    );
    let out = crate::support::process::run(&["--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
}

fn curl(args: &[&str]) -> String {
    let out = std::process::Command::new("curl")
        .args(["--max-time", "10"])
        .args(args)
        .output()
        .expect("curl is installed (scripts/test installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The allocator does not ask for transparent huge pages: on a kernel whose THP mode is
/// `madvise` (Debian's and Ubuntu's default) a huge page backs a whole 2 MiB of the heap as
/// soon as one byte of it is touched, which tripled an idle collector's anonymous memory.
#[test]
fn an_idle_collector_holds_no_transparent_huge_pages() {
    let (grpc, http) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        &dir,
        &format!(
            "receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
      http:
        endpoint: 127.0.0.1:{http}
processors:
  batch:
exporters:
  debug:
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [debug]
"
        ),
    );
    let collector = Collector::start(&config, &[], http);
    let rollup = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", collector.pid()))
        .expect("read smaps_rollup");
    let field = |name: &str| -> u64 {
        rollup
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {rollup}"))
    };
    assert!(field("Anonymous:") > 0, "{rollup}");
    assert_eq!(field("AnonHugePages:"), 0, "{rollup}");
    let (code, _, stderr) = collector.terminate();
    assert_eq!(code, Some(0), "{stderr}");
}
