//! The demo (demo/, scripts/demo, examples/demo) and seeds 002–004 with it, end to end with
//! the real binaries: the shop continues Kong's traces, the span metrics count every request
//! per route and status, and a real Prometheus running the SLO rules of examples/kong-slo
//! reports the availability the shop was told to have.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::examples::{curl, root, wait_listening, Gateway, Running};
use crate::support::process::{free_port, Collector};
use crate::support::sink::Sink;

/// A binary of the workspace, next to the collector's (`cargo build --workspace` puts it there).
fn workspace_binary(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_otelpipe")).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (`cargo build --workspace`)",
        path.display()
    );
    path
}

/// One span as the debug exporter (`verbosity: detailed`) printed it.
#[derive(Clone, Debug, Default)]
struct Printed {
    service: String,
    trace_id: String,
    parent_id: String,
    id: String,
    name: String,
    kind: String,
}

/// The spans and the log records' `trace_id` attributes of a debug exporter output.
fn parse_debug_output(text: &str) -> (Vec<Printed>, Vec<String>) {
    let mut spans = Vec::new();
    let mut log_trace_ids = Vec::new();
    let mut service = String::new();
    let mut span: Option<Printed> = None;
    let field = |line: &str, name: &str| -> Option<String> {
        let rest = line.trim_start().strip_prefix(name)?;
        Some(rest.trim_start().strip_prefix(':')?.trim().to_owned())
    };
    for line in text.lines() {
        if line.starts_with("ResourceSpans #") || line.starts_with("ResourceLog #") {
            spans.extend(span.take());
            service.clear();
        } else if let Some(name) = line
            .strip_prefix("     -> service.name: Str(")
            .and_then(|r| r.strip_suffix(')'))
        {
            if span.is_none() {
                service = name.to_owned();
            }
        } else if let Some(id) = line
            .strip_prefix("     -> trace_id: Str(")
            .and_then(|r| r.strip_suffix(')'))
        {
            log_trace_ids.push(id.to_owned());
        } else if line.starts_with("Span #") {
            spans.extend(span.take());
            span = Some(Printed {
                service: service.clone(),
                ..Printed::default()
            });
        } else if let Some(s) = span.as_mut() {
            if let Some(v) = field(line, "Trace ID") {
                s.trace_id = v;
            } else if let Some(v) = field(line, "Parent ID") {
                s.parent_id = v;
            } else if let Some(v) = field(line, "ID") {
                s.id = v;
            } else if let Some(v) = field(line, "Name") {
                s.name = v;
            } else if let Some(v) = field(line, "Kind") {
                s.kind = v;
            }
        }
    }
    spans.extend(span);
    (spans, log_trace_ids)
}

/// Route → status → requests, as demo-traffic prints it.
type Counts = BTreeMap<String, BTreeMap<String, u64>>;

fn report_counts(report: &serde_json::Value) -> Counts {
    serde_json::from_value(report["routes"].clone()).expect("demo-traffic report")
}

/// scripts/demo as a user runs it (with `--duration`, so that it stops by itself): every
/// request sent through the gateway has Kong's trace, the shop's spans continue it (same
/// trace id, parent a Kong span), orders' calls to inventory and pricing are in the same
/// trace, the injected failures are the share asked for, and every tcp-log record names a
/// trace that was printed.
#[test]
fn demo_script_shows_the_shop_inside_kongs_traces() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let bin_dir = workspace_binary("demo-shop")
        .parent()
        .unwrap()
        .to_path_buf();
    workspace_binary("demo-traffic");
    workspace_binary("otelpipe-gateway");
    let mut cmd = Command::new("bash");
    cmd.arg(root().join("scripts/demo"))
        .args(["--no-build", "--duration", "3s", "--rate", "20"])
        .args(["--error-rate", "orders=0.25", "--latency", "2ms"])
        .env("DEMO_BIN_DIR", &bin_dir)
        .env("DEMO_SPANMETRICS_FLUSH", "500ms")
        .env("DEMO_OUT", &out);
    for var in [
        "PROXY",
        "ADMIN",
        "STATUS",
        "OTLP_GRPC",
        "OTLP_HTTP",
        "TCPLOG",
        "METRICS",
        "HEALTH",
        "TELEMETRY",
        "ORDERS",
        "INVENTORY",
        "PRICING",
        "COUPON",
    ] {
        cmd.env(format!("DEMO_{var}_PORT"), free_port().to_string());
    }
    let mut script = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run scripts/demo");
    let deadline = Instant::now() + Duration::from_secs(120);
    while script.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            // SIGTERM: the script's trap stops what it started.
            Command::new("kill")
                .args(["-TERM", &script.id().to_string()])
                .status()
                .expect("kill");
            let output = script.wait_with_output().expect("output");
            panic!(
                "scripts/demo did not finish within 120s: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = script.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("/metrics"), "{stdout}");

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("traffic.json")).unwrap())
            .expect("traffic.json");
    let counts = report_counts(&report);
    let sent = report["sent"].as_u64().unwrap();
    assert!(sent >= 20, "{report}");
    let orders = &counts["/orders"];
    let orders_sent: u64 = orders.values().sum();
    assert_eq!(
        orders.get("500").copied().unwrap_or(0),
        orders_sent / 4,
        "{report}"
    );
    for route in ["/inventory", "/pricing", "/coupon"] {
        assert_eq!(
            counts[route].keys().collect::<Vec<_>>(),
            ["200"],
            "{report}"
        );
    }

    let text = std::fs::read_to_string(out.join("debug.log")).unwrap();
    let (spans, log_trace_ids) = parse_debug_output(&text);
    let by_id: HashMap<(&str, &str), &Printed> = spans
        .iter()
        .map(|s| ((s.trace_id.as_str(), s.id.as_str()), s))
        .collect();
    let kong_roots: BTreeSet<&str> = spans
        .iter()
        .filter(|s| s.service == "kong-otel" && s.name == "kong")
        .map(|s| s.trace_id.as_str())
        .collect();
    assert_eq!(kong_roots.len() as u64, sent, "one Kong trace per request");

    let shop = ["orders", "inventory", "pricing", "coupon"];
    let mut under_kong = 0;
    for span in spans.iter().filter(|s| shop.contains(&s.service.as_str())) {
        assert!(
            kong_roots.contains(span.trace_id.as_str()),
            "{span:?} is not in a Kong trace"
        );
        if span.kind != "Server" {
            continue;
        }
        let parent = by_id
            .get(&(span.trace_id.as_str(), span.parent_id.as_str()))
            .unwrap_or_else(|| panic!("{span:?}: parent not printed"));
        match parent.service.as_str() {
            "kong-otel" => under_kong += 1,
            "orders" => {
                assert_eq!(parent.kind, "Client", "{parent:?}");
                assert!(["inventory", "pricing"].contains(&span.service.as_str()));
            }
            other => panic!("{span:?} has a parent in {other}"),
        }
    }
    assert_eq!(
        under_kong, sent,
        "every request reached the shop inside Kong's trace"
    );
    // Each order's trace holds the inventory and pricing answers below it.
    for order in spans
        .iter()
        .filter(|s| s.service == "orders" && s.kind == "Server")
    {
        for dependency in ["inventory", "pricing"] {
            assert!(
                spans.iter().any(|s| s.trace_id == order.trace_id
                    && s.service == dependency
                    && s.kind == "Server"),
                "{order:?}: no {dependency} span"
            );
        }
    }
    assert_eq!(
        log_trace_ids.len() as u64,
        sent,
        "a tcp-log record per request"
    );
    for id in &log_trace_ids {
        assert!(kong_roots.contains(id.as_str()), "log trace_id {id}");
    }
}

/// The values of `metric` in a Prometheus text exposition whose labels include all `labels`,
/// keyed by the values of the `by` labels.
fn samples(
    text: &str,
    metric: &str,
    labels: &[(&str, &str)],
    by: &[&str],
) -> BTreeMap<Vec<String>, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(metric).and_then(|r| r.strip_prefix('{')) else {
            continue;
        };
        let Some((label_text, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let pairs: HashMap<&str, &str> = label_text
            .split("\",")
            .filter_map(|p| {
                let (k, v) = p.split_once("=\"")?;
                Some((k.trim_start_matches(','), v.trim_end_matches('"')))
            })
            .collect();
        if labels.iter().all(|(k, v)| pairs.get(k) == Some(v)) {
            let key = by
                .iter()
                .map(|b| pairs.get(b).copied().unwrap_or_default().to_owned())
                .collect();
            *out.entry(key).or_insert(0.0) += value.trim().parse::<f64>().unwrap();
        }
    }
    out
}

/// The body at `url`, or None when it does not answer 2xx (yet).
fn try_get(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "10", url])
        .stdin(Stdio::null())
        .output()
        .expect("curl");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Waits (at most 60 s) until `url` answers and `check` holds for its text; returns the text.
fn wait_for_text(url: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = try_get(url).unwrap_or_default();
        if !text.is_empty() && check(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "{what} within 60s:\n{text}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A Prometheus instant query's vector, keyed by the value of `label`.
fn prom_query(port: u16, query: &str, label: &str) -> BTreeMap<String, f64> {
    let url = format!("http://127.0.0.1:{port}/api/v1/query");
    let body: serde_json::Value = serde_json::from_str(&curl(&[
        "-G",
        &url,
        "--data-urlencode",
        &format!("query={query}"),
    ]))
    .expect("Prometheus answers JSON");
    body["data"]["result"]
        .as_array()
        .expect("a vector")
        .iter()
        .map(|r| {
            (
                r["metric"][label].as_str().unwrap_or_default().to_owned(),
                r["value"][1].as_str().unwrap().parse::<f64>().unwrap(),
            )
        })
        .collect()
}

/// Seeds 002–004 with the demo shop: the gateway (examples/demo/kong.yaml) proxies the
/// traffic generator's requests to the shop, which fails exactly every tenth order; Kong's
/// spans and the shop's reach the collector on config/jaeger.yaml. Its span metrics on 8889
/// count Kong's requests per route and status exactly as the generator got them, the shop's
/// SERVER spans per service, and a real Prometheus evaluating examples/kong-slo's rules over
/// the gateway's Status API and the span metrics reports 90 % availability for orders and
/// fires the availability alerts, and only those.
#[test]
fn span_metrics_and_slo_rules_count_the_demo_traffic() {
    const BURST: u64 = 40;
    let tmp = tempfile::tempdir().unwrap();
    let jaeger = Sink::grpc();
    let (grpc, http, metrics, health, own) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let ports = tmp.path().join("ports.yaml");
    std::fs::write(
        &ports,
        format!(
            "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:{grpc}\n      http:\n        endpoint: 127.0.0.1:{http}\n\
             connectors:\n  spanmetrics:\n    metrics_flush_interval: 1s\n\
             exporters:\n  prometheus:\n    endpoint: 127.0.0.1:{metrics}\n\
             extensions:\n  health_check:\n    endpoint: 127.0.0.1:{health}\n\
             service:\n  telemetry:\n    metrics:\n      address: 127.0.0.1:{own}\n"
        ),
    )
    .unwrap();
    let jaeger_endpoint = jaeger.addr.to_string();
    let _collector = Collector::start_merged(
        &[&root().join("config/jaeger.yaml"), &ports],
        &[("JAEGER_ENDPOINT", &jaeger_endpoint)],
        http,
    );

    let shop_ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let mut shop = Command::new(workspace_binary("demo-shop"));
    for (flag, port) in ["--orders", "--inventory", "--pricing", "--coupon"]
        .iter()
        .zip(&shop_ports)
    {
        shop.arg(flag).arg(format!("127.0.0.1:{port}"));
    }
    let shop = shop
        .args([
            "--latency",
            "1ms",
            "--jitter",
            "0s",
            "--error-rate",
            "orders=0.1",
        ])
        .arg("--otlp-endpoint")
        .arg(format!("http://127.0.0.1:{grpc}"))
        .env("OTEL_BSP_SCHEDULE_DELAY", "200")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn demo-shop");
    let mut shop = Running(shop);
    for port in &shop_ports {
        wait_listening(&mut shop, *port);
    }

    let mut deck = std::fs::read_to_string(root().join("examples/demo/kong.yaml"))
        .unwrap()
        .replace("127.0.0.1:4318", &format!("127.0.0.1:{http}"))
        .replace("port: 54525", &format!("port: {}", free_port()));
    for (default, port) in (9101..).zip(&shop_ports) {
        deck = deck.replace(
            &format!("127.0.0.1:{default}"),
            &format!("127.0.0.1:{port}"),
        );
    }
    let deck_file = tmp.path().join("kong.yaml");
    std::fs::write(&deck_file, deck).unwrap();
    let (proxy, admin, status) = (free_port(), free_port(), free_port());
    let _gateway = Gateway::start_with(&[&deck_file], proxy, admin, status);

    // One burst: 40 requests in turn, one at a time, so each holds 10 orders (one failing).
    let mut sent = Counts::new();
    let mut burst = || {
        let out = Command::new(workspace_binary("demo-traffic"))
            .args(["--target", &format!("http://127.0.0.1:{proxy}")])
            .args(["--rate", "0", "--concurrency", "1", "--items", "0"])
            .args(["--requests", &BURST.to_string()])
            .args(["--mix", "/orders,/inventory,/pricing,/coupon"])
            .stdin(Stdio::null())
            .output()
            .expect("run demo-traffic");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let counts = report_counts(&report);
        assert_eq!(counts["/orders"]["500"], 1, "{report}");
        for (route, statuses) in counts {
            for (code, n) in statuses {
                *sent
                    .entry(route.clone())
                    .or_default()
                    .entry(code)
                    .or_default() += n;
            }
        }
    };

    let metrics_url = format!("http://127.0.0.1:{metrics}/metrics");
    let server_calls = |text: &str| {
        samples(
            text,
            "traces_span_metrics_calls_total",
            &[("span_kind", "SPAN_KIND_SERVER")],
            &["service_name"],
        )
    };
    // Everything of `bursts` bursts is counted: Kong's root spans, and the shop's SERVER spans
    // (inventory and pricing answer orders too).
    let all_counted = |bursts: u64| {
        move |text: &str| {
            let calls = server_calls(text);
            let n = |s: &str| calls.get(&vec![s.to_owned()]).copied().unwrap_or(0.0);
            let per = BURST as f64 / 4.0 * bursts as f64;
            n("kong-otel") == BURST as f64 * bursts as f64
                && n("orders") == per
                && n("inventory") == 2.0 * per
                && n("pricing") == 2.0 * per
                && n("coupon") == per
        }
    };
    burst();
    wait_for_text(
        &metrics_url,
        "the first burst's span metrics",
        all_counted(1),
    );

    // Prometheus starts after the first burst was counted: its first samples, like its
    // last, hold whole bursts, so the rates it computes keep the one-in-ten ratio exactly.
    let prom_port = free_port();
    let rules = root().join("examples/kong-slo");
    let prom_config = tmp.path().join("prometheus.yml");
    std::fs::write(
        &prom_config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n  - {}\n\
             scrape_configs:\n  - job_name: kong\n    static_configs:\n      - targets: [\"127.0.0.1:{status}\"]\n\
             \x20 - job_name: otelpipe-spanmetrics\n    static_configs:\n      - targets: [\"127.0.0.1:{metrics}\"]\n",
            rules.join("kong-slo.rules.yml").display(),
            rules.join("spanmetrics-slo.rules.yml").display(),
        ),
    )
    .unwrap();
    let prometheus = Command::new("prometheus")
        .arg(format!("--config.file={}", prom_config.display()))
        .arg(format!("--storage.tsdb.path={}", tmp.path().join("tsdb").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("prometheus could not run ({e}): install Debian's `prometheus` package (scripts/test does)")
        });
    let mut prometheus = Running(prometheus);
    wait_listening(&mut prometheus, prom_port);
    // Queries answer 503 until the TSDB is open.
    wait_for_text(
        &format!("http://127.0.0.1:{prom_port}/-/ready"),
        "Prometheus ready",
        |_| true,
    );
    let scraped = |total: f64| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let kong = prom_query(prom_port, "sum(kong_http_requests_total)", "");
            let spans = prom_query(
                prom_port,
                "sum(traces_span_metrics_calls_total{service_name=\"kong-otel\",span_name=\"kong\"})",
                "",
            );
            if kong.get("") == Some(&total) && spans.get("") == Some(&total) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus scraped {kong:?} / {spans:?}, not {total}, within 60s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    scraped(BURST as f64);
    burst();
    burst();
    let text = wait_for_text(&metrics_url, "three bursts' span metrics", all_counted(3));
    scraped(3.0 * BURST as f64);

    // Span metrics of Kong's root spans, per route and status, are what the generator got.
    let kong_calls = samples(
        &text,
        "traces_span_metrics_calls_total",
        &[("service_name", "kong-otel"), ("span_name", "kong")],
        &["http_route", "http_status_code"],
    );
    let expected: BTreeMap<Vec<String>, f64> = sent
        .iter()
        .flat_map(|(route, statuses)| {
            statuses
                .iter()
                .map(move |(code, n)| (vec![route.clone(), code.clone()], *n as f64))
        })
        .collect();
    assert_eq!(kong_calls, expected);
    assert_eq!(expected[&vec!["/orders".to_owned(), "500".to_owned()]], 3.0);
    // So are the gateway's own counters.
    let status_text = curl(&[&format!("http://127.0.0.1:{status}/metrics")]);
    let kong_requests = samples(
        &status_text,
        "kong_http_requests_total",
        &[],
        &["route", "code"],
    );
    let by_route_name: BTreeMap<Vec<String>, f64> = expected
        .iter()
        .map(|(k, v)| {
            let route = format!("{}-route", k[0].trim_start_matches('/'));
            (vec![route, k[1].clone()], *v)
        })
        .collect();
    assert_eq!(kong_requests, by_route_name);

    // Prometheus: orders at 90 % by both rule sets, everything else at 100 %; Kong's spans
    // overall at 1 - 3/120. Evaluations after the last scrape give these values exactly.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (kong_slo, span_slo) = loop {
        let kong_slo = prom_query(
            prom_port,
            "service:kong_availability:ratio_rate1h",
            "service",
        );
        let span_slo = prom_query(
            prom_port,
            "service_name:traces_span_metrics_availability:ratio_rate1h",
            "service_name",
        );
        let close = |map: &BTreeMap<String, f64>, key: &str, want: f64| {
            map.get(key).is_some_and(|v| (v - want).abs() < 1e-9)
        };
        if close(&kong_slo, "orders", 0.9)
            && ["inventory", "pricing", "coupon"]
                .iter()
                .all(|s| close(&kong_slo, s, 1.0))
            && close(&span_slo, "orders", 0.9)
            && close(&span_slo, "kong-otel", 1.0 - 3.0 / 120.0)
        {
            break (kong_slo, span_slo);
        }
        assert!(
            Instant::now() < deadline,
            "availability within 60s: kong {kong_slo:?}, spans {span_slo:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(kong_slo.len(), 4, "{kong_slo:?}");
    for service in ["inventory", "pricing", "coupon"] {
        assert!((span_slo[service] - 1.0).abs() < 1e-9, "{span_slo:?}");
    }

    let deadline = Instant::now() + Duration::from_secs(60);
    let alerts_url = format!("http://127.0.0.1:{prom_port}/api/v1/alerts");
    loop {
        let alerts: serde_json::Value = serde_json::from_str(&curl(&[&alerts_url])).unwrap();
        let mut firing: Vec<(String, String)> = alerts["data"]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["state"] == "firing")
            .map(|a| {
                let labels = &a["labels"];
                let who = labels["service"]
                    .as_str()
                    .or(labels["service_name"].as_str())
                    .unwrap_or_default();
                (
                    labels["alertname"].as_str().unwrap().to_owned(),
                    who.to_owned(),
                )
            })
            .collect();
        firing.sort();
        let want = [
            ("KongAvailabilitySLOBreached", "orders"),
            ("SpanAvailabilitySLOBreached", "kong-otel"),
            ("SpanAvailabilitySLOBreached", "orders"),
        ];
        if firing.len() == want.len()
            && firing
                .iter()
                .zip(want)
                .all(|((a, s), (wa, ws))| a == wa && s == ws)
        {
            break;
        }
        assert!(Instant::now() < deadline, "firing within 60s: {firing:?}");
        std::thread::sleep(Duration::from_millis(500));
    }

    // Jaeger got Kong's spans and the shop's over OTLP gRPC.
    let services: BTreeSet<String> = jaeger
        .received()
        .into_iter()
        .filter_map(|r| match r.batch {
            otelpipe::pipeline::Batch::Traces(resources) => Some(resources),
            _ => None,
        })
        .flatten()
        .filter_map(|rs| {
            rs.resource?
                .attributes
                .into_iter()
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| match kv.value?.value? {
                    opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s) => {
                        Some(s)
                    }
                    _ => None,
                })
        })
        .collect();
    assert_eq!(
        services.into_iter().collect::<Vec<_>>(),
        ["coupon", "inventory", "kong-otel", "orders", "pricing"]
    );
}
