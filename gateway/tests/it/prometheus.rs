//! The prometheus plugin: proxied requests, then `/metrics` on the Status and Admin APIs,
//! checked by promtool.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::{echo_server, gateway, get};

#[tokio::test]
async fn seed_flags_count_requests_and_promtool_accepts_the_exposition() {
    let upstream = echo_server("prom").await;
    let yaml = format!(
        r#"_format_version: "3.0"
services:
- name: prom_metrics_service
  url: http://{}
  routes:
  - name: prom_metrics_route
    paths: [/prom]
plugins:
- name: prometheus
  instance_name: prometheus1
  config:
    per_consumer: true
    status_code_metrics: true
    latency_metrics: true
    bandwidth_metrics: true
    upstream_health_metrics: true
    ai_metrics: true
"#,
        upstream.addr
    );
    let gw = gateway(&yaml, &[]).await;
    let proxy = format!("http://{}", gw.proxy[0]);
    for path in ["/prom/a", "/prom/b", "/prom/status/503"] {
        get(&format!("{proxy}{path}"), &[]).await;
    }
    assert_eq!(
        get(&format!("{proxy}/no-such-route"), &[]).await.status,
        404
    );
    let status = get(&format!("http://{}/metrics", gw.status[0]), &[]).await;
    assert_eq!(
        status.header("content-type"),
        Some("text/plain; charset=UTF-8")
    );
    let text = status.text();
    let labels = r#"service="prom_metrics_service",route="prom_metrics_route""#;
    assert!(text.contains(&format!(
        "kong_http_requests_total{{{labels},code=\"200\",source=\"service\",workspace=\"default\",consumer=\"\"}} 2\n"
    )), "{text}");
    assert!(text.contains(&format!(
        "kong_http_requests_total{{{labels},code=\"503\",source=\"service\",workspace=\"default\",consumer=\"\"}} 1\n"
    )));
    assert!(!text.contains("no-such-route"));
    assert!(text.contains(&format!(
        "kong_kong_latency_ms_count{{{labels},workspace=\"default\"}} 3\n"
    )));
    assert!(text.contains(&format!(
        "kong_upstream_latency_ms_count{{{labels},workspace=\"default\"}} 3\n"
    )));
    assert!(text.contains(&format!(
        "kong_upstream_latency_ms_bucket{{{labels},workspace=\"default\",le=\"+Inf\"}} 3\n"
    )));
    for direction in ["ingress", "egress"] {
        assert!(text.contains(&format!(
            "kong_bandwidth_bytes{{{labels},direction=\"{direction}\""
        )));
    }
    assert!(text.contains("kong_datastore_reachable 1\n"));
    assert!(text.contains("kong_nginx_metric_errors_total 0\n"));
    assert!(text.contains("# TYPE kong_kong_latency_ms histogram\n"));
    assert!(text.contains(&format!(
        "kong_node_info{{node_id=\"{}\",version=\"3.9.0\"}} 1",
        gw_node_id(&gw).await
    )));
    assert!(!text.contains("# EOF"));
    // Families in name order; within a histogram all _bucket lines precede _count and _sum.
    let families: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    let mut sorted = families.clone();
    sorted.sort_unstable();
    assert_eq!(families, sorted);
    let hist: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("kong_request_latency_ms"))
        .collect();
    let first_count = hist.iter().position(|l| l.contains("_count")).unwrap();
    assert!(hist[..first_count].iter().all(|l| l.contains("_bucket")));
    assert!(hist[first_count..].iter().all(|l| !l.contains("_bucket")));

    let admin = get(&format!("http://{}/metrics", gw.admin[0]), &[]).await;
    assert!(admin
        .text()
        .contains("kong_http_requests_total{service=\"prom_metrics_service\""));

    // Debian's promtool always lints names; Kong's own family names (kong_*_ms,
    // kong_bandwidth_bytes, kong_nginx_*_total gauges) draw naming remarks on Kong's output
    // too, so the exposition must parse and draw no remark beyond those.
    let ours = promtool(&text);
    let kong = promtool(include_str!("../fixtures/prometheus-metrics.txt"));
    assert!(
        !ours.iter().any(|l| l.contains("error")),
        "{ours:?}\n{text}"
    );
    for remark in &ours {
        assert!(kong.contains(remark), "promtool: {remark}\n{text}");
    }
    gw.shutdown().await;
}

async fn gw_node_id(gw: &otelpipe_gateway::server::Gateway) -> String {
    let r = get(&format!("http://{}/", gw.admin[0]), &[]).await.json();
    r["node_id"].as_str().unwrap().to_owned()
}

/// promtool's remarks on an exposition, one per line.
fn promtool(text: &str) -> Vec<String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed by scripts/test");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .lines()
    .map(str::to_owned)
    .collect()
}

/// The `kong_upstream_target_health` series of an exposition.
fn health_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.starts_with("kong_upstream_target_health{"))
        .collect()
}

#[tokio::test]
async fn upstream_health_metrics_report_healthchecks_off_per_target_address() {
    let upstream = echo_server("prom").await;
    let port = upstream.addr.port();
    let yaml = |flag: bool| {
        format!(
            r#"_format_version: "3.0"
upstreams:
- name: pool
  targets:
  - target: 127.0.0.1:{port}
  - target: localhost:{port}
  - target: 127.0.0.2:{port}
    weight: 0
- name: broken
  targets:
  - target: no-such-host.invalid:80
services:
- name: broken_svc
  host: broken
  routes:
  - name: b
    paths: [/broken]
- name: svc
  host: pool
  routes:
  - name: r
    paths: [/pool]
plugins:
- name: prometheus
  config:
    upstream_health_metrics: {flag}
"#
        )
    };
    let gw = gateway(&yaml(true), &[]).await;
    let metrics = format!("http://{}/metrics", gw.status[0]);
    let before = get(&metrics, &[]).await.text();
    let states = ["dns_error", "healthchecks_off", "healthy", "unhealthy"];
    let series = |upstream: &str, address: &str, target: &str| -> Vec<String> {
        states
            .iter()
            .map(|s| {
                let v = u8::from(*s == "healthchecks_off");
                format!("kong_upstream_target_health{{upstream=\"{upstream}\",target=\"{target}\",address=\"{address}\",state=\"{s}\",subsystem=\"http\"}} {v}")
            })
            .collect()
    };
    let ip_target = format!("127.0.0.1:{port}");
    let name_target = format!("localhost:{port}");
    // Before any request the host name is unresolved: the target stands as its address.
    let broken = "no-such-host.invalid:80";
    let mut expected = series("pool", &ip_target, &ip_target);
    expected.extend(series("pool", &name_target, &name_target));
    expected.extend(series("broken", broken, broken));
    expected.sort();
    assert_eq!(health_lines(&before), expected, "{before}");
    assert!(before.contains(
        "# HELP kong_upstream_target_health Health status of targets of upstream. States = healthchecks_off|healthy|unhealthy|dns_error, value is 1 when state is populated.\n# TYPE kong_upstream_target_health gauge\n"
    ));
    // Requests resolve `localhost`; its series then name the resolved address.
    for _ in 0..4 {
        assert_eq!(
            get(&format!("http://{}/pool/x", gw.proxy[0]), &[])
                .await
                .status,
            200
        );
    }
    assert!(get(&format!("http://{}/broken/x", gw.proxy[0]), &[])
        .await
        .status
        .is_server_error());
    let after = get(&metrics, &[]).await.text();
    let dns_error: Vec<&str> = health_lines(&after)
        .into_iter()
        .filter(|l| l.contains("upstream=\"broken\""))
        .collect();
    let mut expected_broken: Vec<String> = states
        .iter()
        .map(|s| {
            let v = u8::from(*s == "dns_error");
            format!("kong_upstream_target_health{{upstream=\"broken\",target=\"{broken}\",address=\"\",state=\"{s}\",subsystem=\"http\"}} {v}")
        })
        .collect();
    expected_broken.sort();
    assert_eq!(dns_error, expected_broken, "{after}");
    let lines = health_lines(&after);
    assert!(
        lines
            .iter()
            .all(|l| !l.contains(&format!("address=\"{name_target}\""))),
        "{after}"
    );
    assert!(
        lines.iter().any(|l| l.contains(&format!(
            "target=\"{name_target}\",address=\"127.0.0.1:{port}\",state=\"healthchecks_off\""
        )) || l.contains(&format!(
            "target=\"{name_target}\",address=\"[::1]:{port}\",state=\"healthchecks_off\""
        ))),
        "{after}"
    );
    assert!(
        !after.contains("127.0.0.2"),
        "weight 0 targets are not reported"
    );
    let remarks = promtool(&after);
    assert!(!remarks.iter().any(|l| l.contains("error")), "{remarks:?}");
    gw.shutdown().await;

    let gw = gateway(&yaml(false), &[]).await;
    let off = get(&format!("http://{}/metrics", gw.status[0]), &[])
        .await
        .text();
    assert!(!off.contains("kong_upstream_target_health"), "{off}");
    gw.shutdown().await;
}

/// The four `kong_upstream_target_health` series of `target` (its own address) with 1 on
/// `current`, sorted as the exposition prints them.
fn target_series(upstream: &str, target: &str, current: &str) -> Vec<String> {
    let mut out: Vec<String> = ["dns_error", "healthchecks_off", "healthy", "unhealthy"]
        .iter()
        .map(|s| {
            let v = u8::from(*s == current);
            format!("kong_upstream_target_health{{upstream=\"{upstream}\",target=\"{target}\",address=\"{target}\",state=\"{s}\",subsystem=\"http\"}} {v}")
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn upstream_health_metrics_follow_active_health_checks() {
    let echo = echo_server("live").await;
    let spare = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = spare.local_addr().unwrap().to_string();
    drop(spare);
    let live = format!("127.0.0.1:{}", echo.addr.port());
    let yaml = format!(
        r#"_format_version: "3.0"
upstreams:
- name: checked
  healthchecks:
    active:
      timeout: 2
      http_path: /probe
      healthy: {{interval: 0.05, successes: 1}}
      unhealthy: {{interval: 0.05, tcp_failures: 1, http_failures: 1}}
  targets:
  - target: {live}
  - target: {dead}
- name: unchecked
  targets:
  - target: {live}
plugins:
- name: prometheus
  config:
    upstream_health_metrics: true
"#
    );
    let gw = gateway(&yaml, &[]).await;
    let metrics = format!("http://{}/metrics", gw.status[0]);
    let mut expected = target_series("checked", &live, "healthy");
    expected.extend(target_series("checked", &dead, "unhealthy"));
    expected.extend(target_series("unchecked", &live, "healthchecks_off"));
    expected.sort();
    // The probes take the dead target out within a few intervals (bounded: 10 s).
    let mut text = String::new();
    for _ in 0..500 {
        text = get(&metrics, &[]).await.text();
        if health_lines(&text) == expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(health_lines(&text), expected, "{text}");
    let remarks = promtool(&text);
    assert!(!remarks.iter().any(|l| l.contains("error")), "{remarks:?}");
    gw.shutdown().await;
}
