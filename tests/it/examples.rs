//! The examples and ready configs (`examples/`, `config/`, `docker-compose.yml`,
//! `Dockerfile`) as a user runs them: every collector config validates through the real
//! binary (only component types not yet in the registry may be reported), every decK file
//! parses with the real gateway, the SLO rules pass `promtool check` and `promtool test`,
//! and the Admin API script of the ARMS example creates its plugin on a running gateway.

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use yaml_serde::Value;

use crate::support::process::{free_port, run_env, Collector};
use crate::support::sink::Sink;

/// What the Kubernetes secrets and the example READMEs put in the environment.
const ENV: [(&str, &str); 3] = [
    (
        "DT_ENDPOINT",
        "https://abc12345.live.dynatrace.com/api/v2/otlp",
    ),
    ("DT_API_TOKEN", "dt0c01.sample"),
    ("KONG_DEPLOYMENT_NAME", "kong-ecommerce-deployment"),
];

const KINDS: [&str; 5] = [
    "receivers",
    "processors",
    "exporters",
    "connectors",
    "extensions",
];

pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.yaml` / `.yml` file under `dir`, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The YAML documents of a file (Kubernetes manifests hold several).
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("read yaml");
    yaml_serde::Deserializer::from_str(&text)
        .map(|doc| {
            serde::Deserialize::deserialize(doc)
                .unwrap_or_else(|e| panic!("{}: invalid YAML: {e}", path.display()))
        })
        .collect()
}

/// The collector config a document holds: itself, or an OpenTelemetryCollector's `spec.config`.
fn collector_config(doc: &Value) -> Option<&Value> {
    if doc["kind"] == "OpenTelemetryCollector" {
        return Some(&doc["spec"]["config"]);
    }
    doc.get("service").and_then(|_| doc.get("receivers"))?;
    Some(doc)
}

/// Every collector config file in `examples/` and `config/`, with its config.
fn collector_files() -> Vec<(PathBuf, Value)> {
    let mut out = Vec::new();
    for dir in ["examples", "config"] {
        for path in yaml_files(&root().join(dir)) {
            let docs = documents(&path);
            if let [doc] = docs.as_slice() {
                if let Some(config) = collector_config(doc) {
                    out.push((path, config.clone()));
                }
            }
        }
    }
    out
}

fn registered(kind: &str, ty: &str) -> bool {
    match kind {
        "receivers" => otelpipe::registry::receiver(ty).is_some(),
        "processors" => otelpipe::registry::processor(ty).is_some(),
        "exporters" => otelpipe::registry::exporter(ty).is_some(),
        "connectors" => otelpipe::registry::connector(ty).is_some(),
        _ => otelpipe::registry::extension(ty).is_some(),
    }
}

/// `(type, id)` of every configured component whose type the registry does not have yet.
fn unregistered(config: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for kind in KINDS {
        let Some(components) = config.get(kind).and_then(Value::as_mapping) else {
            continue;
        };
        for id in components.keys().filter_map(Value::as_str) {
            let ty = id.split('/').next().unwrap_or(id);
            if !registered(kind, ty) {
                out.push((ty.to_owned(), id.to_owned()));
            }
        }
    }
    out.sort();
    out
}

/// `otelpipe validate` accepts the file, or (exit 2) reports exactly the component types not
/// yet in the registry, one line each, and nothing else.
fn assert_validates(path: &Path, config: &Value, env: &[(&str, &str)]) {
    let file = path.to_str().expect("utf-8 path");
    let out = run_env(&["validate", "--config", file], env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let missing = unregistered(config);
    let mut reported: Vec<(String, String)> = stderr
        .lines()
        .filter_map(|line| {
            let rest = line.split("unknown type: \"").nth(1)?;
            let (ty, rest) = rest.split_once('"')?;
            let id = rest.split("for id: \"").nth(1)?.split('"').next()?;
            Some((ty.to_owned(), id.to_owned()))
        })
        .collect();
    reported.sort();
    assert_eq!(reported, missing, "{file}: {stderr}");
    assert_eq!(stderr.lines().count(), missing.len(), "{file}: {stderr}");
    assert_eq!(
        out.status.code(),
        Some(if missing.is_empty() { 0 } else { 2 }),
        "{file}: {stderr}"
    );
}

#[test]
fn every_collector_config_validates() {
    let files = collector_files();
    let names: Vec<String> = files
        .iter()
        .map(|(p, _)| {
            p.strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    for expected in [
        "config/default.yaml",
        "config/dynatrace.yaml",
        "config/jaeger.yaml",
        "examples/kong-dynatrace/collector-traces.yaml",
        "examples/kong-dynatrace/collector-traces-metrics-logs.yaml",
        "examples/kubernetes/collector-dynatrace-traces.yaml",
        "examples/kubernetes/collector-dynatrace-traces-metrics-logs.yaml",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected}: {names:?}");
    }
    for (path, config) in &files {
        assert_validates(path, config, &ENV);
    }
}

#[test]
fn kubernetes_collectors_are_the_seed_resources_on_the_otelpipe_image() {
    let fixtures = root().join("tests/fixtures/seeds");
    for (example, seed) in [
        (
            "collector-dynatrace-traces.yaml",
            "000-dynatrace-traces.yaml",
        ),
        (
            "collector-dynatrace-traces-metrics-logs.yaml",
            "000-dynatrace-traces-metrics-logs.yaml",
        ),
    ] {
        let mut ours = documents(&root().join("examples/kubernetes").join(example)).remove(0);
        let mut printed = documents(&fixtures.join(seed)).remove(0);
        assert_eq!(ours["spec"]["image"], "otelpipe:0.1.0", "{example}");
        ours["spec"]["image"] = Value::Null;
        printed["spec"]["image"] = Value::Null;
        assert_eq!(
            ours, printed,
            "{example} differs from the seed beyond its image"
        );
    }
}

/// The gateway binary `cargo build --workspace` puts next to the collector's.
pub(crate) fn gateway_binary() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_otelpipe")).with_file_name("otelpipe-gateway");
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (`cargo build --workspace`)",
        path.display()
    );
    path
}

fn config_parse(files: &[&Path]) -> Output {
    let out = Command::new(gateway_binary())
        .args(["config", "parse"])
        .args(files)
        .stdin(Stdio::null())
        .output()
        .expect("run otelpipe-gateway");
    assert!(
        out.status.success(),
        "config parse {files:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn parsed(files: &[&Path]) -> serde_json::Value {
    serde_json::from_slice(&config_parse(files).stdout).expect("config parse prints JSON")
}

#[test]
fn every_deck_file_parses_with_the_gateway() {
    let mut decks = Vec::new();
    for path in yaml_files(&root().join("examples")) {
        let docs = documents(&path);
        if let [doc] = docs.as_slice() {
            if doc.get("_format_version").is_some() {
                config_parse(&[&path]);
                decks.push(path);
            }
        }
    }
    assert!(decks.len() >= 6, "{decks:?}");

    // Seed 000 syncs the services file, then each plugins file, into one gateway.
    let dir = root().join("examples/kong-dynatrace");
    let routes = dir.join("kong-services-routes.yaml");
    let traces = parsed(&[&routes, &dir.join("kong-plugins-traces.yaml")]);
    assert_eq!(traces["services"].as_array().unwrap().len(), 3);
    assert_eq!(traces["plugins"].as_array().unwrap().len(), 1);
    let all = parsed(&[&routes, &dir.join("kong-plugins.yaml")]);
    let names: Vec<&str> = all["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["opentelemetry", "prometheus", "tcp-log"]);

    // Unchanged: the files are the seed's, as the gateway's seed fixtures keep them.
    let fixtures = root().join("gateway/tests/fixtures/seeds");
    for (example, seed) in [
        ("kong-services-routes.yaml", "000-kong-services-routes.yaml"),
        ("kong-plugins-traces.yaml", "000-kong-plugins-traces.yaml"),
        ("kong-plugins.yaml", "000-kong-plugins-all.yaml"),
    ] {
        assert_eq!(
            std::fs::read_to_string(dir.join(example)).unwrap(),
            std::fs::read_to_string(fixtures.join(seed)).unwrap(),
            "{example}"
        );
    }
}

#[test]
fn kubernetes_gateway_configmap_holds_the_seed_deck_files() {
    let docs = documents(&root().join("examples/kubernetes/gateway.yaml"));
    let map = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap")
        .expect("a ConfigMap");
    let tmp = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for name in ["kong-services-routes.yaml", "kong-plugins.yaml"] {
        let body = map["data"][name].as_str().expect("ConfigMap key");
        let path = tmp.path().join(name);
        std::fs::write(&path, body).unwrap();
        files.push(path);
    }
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let doc = parsed(&refs);
    let plugins = doc["plugins"].as_array().unwrap();
    assert_eq!(plugins.len(), 3);
    // The seed's collector finds the pods: container `proxy`, port 8100, pods kong-kong-….
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    assert_eq!(deployment["metadata"]["name"], "kong-kong");
    assert_eq!(deployment["metadata"]["namespace"], "kong");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["name"], "proxy");
    let ports: Vec<i64> = container["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|p| p["containerPort"].as_i64())
        .collect();
    assert!(ports.contains(&8100), "{ports:?}");
}

fn promtool(args: &[&str], dir: &Path) -> Output {
    match Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!(
            "promtool could not run ({e}): install Debian's `prometheus` package (scripts/test does)"
        ),
    }
}

#[test]
fn slo_rules_pass_promtool_checks_and_unit_tests() {
    let dir = root().join("examples/kong-slo");
    let mut checks = Vec::new();
    for (subcommand, suffix) in [
        (["check", "rules"], ".rules.yml"),
        (["test", "rules"], ".test.yml"),
        (["check", "config"], "prometheus"),
    ] {
        let files: Vec<String> = yaml_files(&dir)
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned())
            .filter(|name| {
                if suffix == "prometheus" {
                    name.starts_with(suffix)
                } else {
                    name.ends_with(suffix)
                }
            })
            .collect();
        assert_eq!(files.len(), 2, "{subcommand:?}: {files:?}");
        let mut args: Vec<&str> = subcommand.to_vec();
        args.extend(files.iter().map(String::as_str));
        let out = promtool(&args, &dir);
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        checks.push(files);
    }
    // The unit tests cover every alert, firing and not firing.
    let tests: String = checks[1]
        .iter()
        .map(|f| std::fs::read_to_string(dir.join(f)).unwrap())
        .collect();
    for alert in [
        "KongAvailabilitySLOBreached",
        "KongLatencySLOBreached",
        "SpanAvailabilitySLOBreached",
        "SpanLatencySLOBreached",
    ] {
        assert!(tests.contains(&format!("alertname: {alert}")), "{alert}");
    }
    assert!(tests.matches("exp_alerts: []").count() >= 4);
}

/// A child process, killed on drop.
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        if self
            .0
            .kill()
            .and_then(|()| self.0.wait().map(drop))
            .is_err()
        {
            eprintln!("child process could not be killed");
        }
    }
}

/// Waits (at most 30 s) until `port` on 127.0.0.1 accepts connections.
pub(crate) fn wait_listening(child: &mut Running, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            child.0.try_wait().expect("wait").is_none(),
            "child exited before listening on {port}"
        );
        assert!(Instant::now() < deadline, "nothing on {port} within 30s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running otelpipe-gateway.
pub(crate) struct Gateway;

impl Gateway {
    fn start_proxying(config: &Path, proxy: u16, admin: u16) -> Running {
        Self::start_with(&[config], proxy, admin, free_port())
    }

    pub(crate) fn start_with(configs: &[&Path], proxy: u16, admin: u16, status: u16) -> Running {
        let mut cmd = Command::new(gateway_binary());
        for config in configs {
            cmd.arg("--config").arg(config);
        }
        let child = cmd
            // As the examples' READMEs run it: every span, every request sampled.
            .env("KONG_TRACING_INSTRUMENTATIONS", "all")
            .env("KONG_TRACING_SAMPLING_RATE", "1.0")
            .env("KONG_PROXY_LISTEN", format!("127.0.0.1:{proxy}"))
            .env("KONG_ADMIN_LISTEN", format!("127.0.0.1:{admin}"))
            .env("KONG_STATUS_LISTEN", format!("127.0.0.1:{status}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn otelpipe-gateway");
        let mut gateway = Running(child);
        wait_listening(&mut gateway, admin);
        gateway
    }
}

/// Seed 001, method 2: the guide's Admin API curl (create-plugin.sh) creates the global
/// opentelemetry plugin on a running gateway, and the next requests' spans arrive at the
/// configured endpoint with the guide's `X-Auth-Token` header and service name.
#[test]
fn arms_script_creates_the_plugin_through_the_admin_api() {
    let dir = root().join("examples/kong-arms");
    let arms = Sink::http();
    let tmp = tempfile::tempdir().unwrap();
    let upstream_port = free_port();
    let upstream = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1"])
        .arg(upstream_port.to_string())
        .current_dir(tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 -m http.server");
    let mut upstream = Running(upstream);
    wait_listening(&mut upstream, upstream_port);
    let deck = std::fs::read_to_string(dir.join("kong.yaml"))
        .unwrap()
        .replace("127.0.0.1:7001", &format!("127.0.0.1:{upstream_port}"));
    let deck_file = tmp.path().join("kong.yaml");
    std::fs::write(&deck_file, deck).unwrap();
    let (proxy, admin) = (free_port(), free_port());
    let _gateway = Gateway::start_proxying(&deck_file, proxy, admin);
    let admin_url = format!("http://127.0.0.1:{admin}");
    // The guide's endpoint shape (…/adapt_<token>/api/otlp/traces), on the ARMS stand-in.
    let endpoint = format!("http://{}/adapt_xxxxx/api/otlp/traces", arms.addr);
    let out = Command::new("sh")
        .arg(dir.join("create-plugin.sh"))
        .env("KONG_ADMIN_URL", &admin_url)
        .env("HTTP_ENDPOINT", &endpoint)
        .env("SERVICE_NAME", "kong-gateway-prod")
        .stdin(Stdio::null())
        .output()
        .expect("run create-plugin.sh");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON answer");
    assert_eq!(created["name"], "opentelemetry");

    let listed = Command::new("curl")
        .args(["-sS", "--fail", &format!("{admin_url}/plugins")])
        .output()
        .expect("curl");
    assert!(listed.status.success());
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let plugins = listed["data"].as_array().unwrap();
    assert_eq!(plugins.len(), 1);
    let config = &plugins[0]["config"];
    assert_eq!(config["traces_endpoint"], endpoint.as_str());
    assert_eq!(config["headers"]["X-Auth-Token"], "secret-token");
    assert_eq!(
        config["resource_attributes"]["service.name"],
        "kong-gateway-prod"
    );

    // The plugin works at once: the next requests' traces reach the endpoint.
    const REQUESTS: usize = 3;
    for _ in 0..REQUESTS {
        curl(&[&format!("http://127.0.0.1:{proxy}/hello")]);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let roots = loop {
        let received = arms.received();
        let mut roots = 0;
        for r in &received {
            assert_eq!(r.path, "/adapt_xxxxx/api/otlp/traces");
            assert_eq!(
                r.headers.get("x-auth-token").map(String::as_str),
                Some("secret-token")
            );
            let otelpipe::pipeline::Batch::Traces(resources) = &r.batch else {
                panic!("not traces: {r:?}");
            };
            for rs in resources {
                let attrs = rs.resource.as_ref().map(|r| r.attributes.as_slice());
                assert_eq!(
                    string_attr(attrs.unwrap_or_default(), "service.name"),
                    Some("kong-gateway-prod")
                );
                roots += rs
                    .scope_spans
                    .iter()
                    .flat_map(|ss| &ss.spans)
                    .filter(|s| s.name == "kong")
                    .count();
            }
        }
        if roots >= REQUESTS {
            break roots;
        }
        assert!(
            Instant::now() < deadline,
            "{roots} of {REQUESTS} kong spans within 60s"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(roots, REQUESTS);
}

/// `docker compose config` when the command exists; otherwise the structure it would check.
#[test]
fn compose_file_is_consistent() {
    let file = root().join("docker-compose.yml");
    let compose = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if compose {
        let out = Command::new("docker")
            .args(["compose", "-f"])
            .arg(&file)
            .args(["config", "--quiet"])
            .output()
            .expect("docker compose config");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let doc = documents(&file).remove(0);
    let services = doc["services"].as_mapping().expect("services");
    let names: Vec<&str> = services.keys().filter_map(Value::as_str).collect();
    for expected in [
        "collector",
        "gateway",
        "jaeger",
        "prometheus",
        "shop",
        "traffic",
    ] {
        assert!(names.contains(&expected), "{names:?}");
    }
    for (name, service) in services {
        assert!(
            service.get("image").is_some() || service.get("build").is_some(),
            "{name:?}"
        );
        for dep in service["depends_on"].as_sequence().into_iter().flatten() {
            assert!(services.contains_key(dep), "{name:?} depends on {dep:?}");
        }
    }

    // Bind mounts exist; the mounted files are what the services are told to load.
    let mounts = |service: &str| -> BTreeMap<String, PathBuf> {
        doc["services"][service]["volumes"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|v| {
                let mut parts = v.split(':');
                let host = root().join(parts.next().unwrap());
                assert!(host.exists(), "{service}: {v}: no {}", host.display());
                (parts.next().unwrap().to_owned(), host)
            })
            .collect()
    };
    let args = |service: &str| -> Vec<String> {
        doc["services"][service]["command"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    let mounted = |service: &str, arg_prefix: &str| -> PathBuf {
        let arg = args(service)
            .into_iter()
            .find_map(|a| a.strip_prefix(arg_prefix).map(str::to_owned))
            .unwrap_or_else(|| panic!("{service}: no {arg_prefix}"));
        let mounts = mounts(service);
        mounts
            .iter()
            .find_map(|(target, host)| {
                let rest = Path::new(&arg).strip_prefix(target).ok()?;
                Some(if rest.as_os_str().is_empty() {
                    host.clone()
                } else {
                    host.join(rest)
                })
            })
            .unwrap_or_else(|| panic!("{service}: {arg} is not in a mounted volume"))
    };

    // The collector's config validates with the compose environment.
    let collector = mounted("collector", "--config=");
    let env: Vec<(String, String)> = doc["services"]["collector"]["environment"]
        .as_mapping()
        .expect("collector environment")
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                other => yaml_serde::to_string(other).unwrap().trim().to_owned(),
            };
            (k.as_str().unwrap().to_owned(), v)
        })
        .collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let config = documents(&collector).remove(0);
    assert_validates(&collector, &config, &env);
    let exporter = &config["exporters"]["otlp/jaeger"]["endpoint"];
    assert!(exporter.as_str().unwrap().contains("JAEGER_ENDPOINT"));
    assert!(env.contains(&("JAEGER_ENDPOINT", "jaeger:4317")));

    // The gateway's file parses; its plugin sends to the collector service.
    let gateway = mounted("gateway", "--config=");
    let parsed = parsed(&[&gateway]);
    let otel = parsed["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "opentelemetry")
        .expect("opentelemetry plugin");
    assert_eq!(
        otel["config"]["traces_endpoint"],
        "http://collector:4318/v1/traces"
    );
    // Every upstream is a compose service; the shop listens where the gateway sends.
    let shop_args = args("shop");
    for service in parsed["services"].as_array().unwrap() {
        let host = service["host"].as_str().unwrap();
        assert!(
            services.contains_key(host),
            "upstream {host} is not a service"
        );
        if host == "shop" {
            let listen = format!("=0.0.0.0:{}", service["port"]);
            assert!(
                shop_args.iter().any(|a| a.ends_with(&listen)),
                "{shop_args:?} {listen}"
            );
        }
    }
    assert!(shop_args.contains(&"--otlp-endpoint=http://collector:4317".to_owned()));
    assert_eq!(
        args("traffic"),
        ["--target=http://gateway:8000", "--rate=5"]
    );

    // Prometheus loads the SLO rules and scrapes the gateway and the collector.
    let prometheus = mounted("prometheus", "--config.file=");
    let out = promtool(&["check", "config", prometheus.to_str().unwrap()], &root());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let prom = documents(&prometheus).remove(0);
    let targets: Vec<&str> = prom["scrape_configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|c| c["static_configs"][0]["targets"].as_sequence().unwrap())
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(targets, ["gateway:8100", "collector:8889"]);
    assert_eq!(prom["rule_files"].as_sequence().unwrap().len(), 2);
}

#[test]
fn dockerfile_builds_both_binaries_into_a_non_root_image() {
    let text = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let froms: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "{froms:?}");
    assert!(
        froms[0].contains("rust:") && froms[0].contains("bookworm"),
        "{froms:?}"
    );
    assert!(froms[1].contains("debian:bookworm-slim"), "{froms:?}");
    let user = text
        .lines()
        .filter_map(|l| l.strip_prefix("USER "))
        .next_back()
        .expect("a USER");
    assert!(
        !user.starts_with('0') && !user.starts_with("root"),
        "{user}"
    );
    let exposed: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("EXPOSE "))
        .flat_map(str::split_whitespace)
        .collect();
    for port in [
        "4317", "4318", "8888", "8889", "13133", "54525", "8000", "8100",
    ] {
        assert!(exposed.contains(&port), "{port}: {exposed:?}");
    }
    assert!(text.contains("ENTRYPOINT [\"otelpipe\"]"));
    // The demo's binaries too: docker-compose.yml runs them from the same image.
    for binary in ["otelpipe", "otelpipe-gateway", "demo-shop", "demo-traffic"] {
        assert!(
            text.contains(&format!("/out/{binary} ")) || text.contains(&format!("/out/{binary}\n")),
            "{binary}"
        );
    }
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    assert!(ignore.lines().any(|l| l.trim() == "target"));
}

/// OTLP/JSON for `ok` + `failed` Kong root spans (`kong`, SERVER) on route /demo, 5 ms each.
fn kong_spans(ok: usize, failed: usize) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let spans: Vec<serde_json::Value> = (0..ok + failed)
        .map(|i| {
            let status = if i < ok { 200 } else { 503 };
            serde_json::json!({
                "traceId": format!("{:032x}", now + i as u128),
                "spanId": format!("{:016x}", i + 1),
                "name": "kong",
                "kind": 2,
                "startTimeUnixNano": (now - 5_000_000).to_string(),
                "endTimeUnixNano": now.to_string(),
                "attributes": [
                    {"key": "http.method", "value": {"stringValue": "GET"}},
                    {"key": "http.status_code", "value": {"intValue": status.to_string()}},
                    {"key": "http.route", "value": {"stringValue": "/demo"}}
                ]
            })
        })
        .collect();
    serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "kong-otel"}}
        ]},
        "scopeSpans": [{"spans": spans}]
    }]})
    .to_string()
}

pub(crate) fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "10"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A config fragment for config/jaeger.yaml in `dir`: this test's OTLP/HTTP and prometheus
/// exporter ports, ephemeral ports for everything else it listens on, and a short spanmetrics
/// flush so that the counters grow while the test watches.
fn jaeger_config_ports(dir: &Path, http: u16, metrics: u16) -> PathBuf {
    let (grpc, health, own) = (free_port(), free_port(), free_port());
    let ports = dir.join("ports.yaml");
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
    ports
}

/// config/jaeger.yaml end to end: Kong's spans reach Jaeger (an OTLP gRPC sink stands in for
/// it) and, as span metrics scraped by a real Prometheus with the SLO rules loaded, fire the
/// availability alert when 3 % of the requests fail.
#[test]
fn jaeger_config_feeds_jaeger_and_the_spanmetrics_slo_rules() {
    let jaeger = Sink::grpc();
    let (http, metrics) = (free_port(), free_port());
    let tmp = tempfile::tempdir().unwrap();
    let ports = jaeger_config_ports(tmp.path(), http, metrics);
    let jaeger_endpoint = jaeger.addr.to_string();
    let config = root().join("config/jaeger.yaml");
    let _collector = Collector::start_merged(
        &[&config, &ports],
        &[("JAEGER_ENDPOINT", &jaeger_endpoint)],
        http,
    );

    let prom_port = free_port();
    let rules = root().join("examples/kong-slo/spanmetrics-slo.rules.yml");
    let prom_config = tmp.path().join("prometheus.yml");
    std::fs::write(
        &prom_config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: otelpipe-spanmetrics\n    static_configs:\n      - targets: [\"127.0.0.1:{metrics}\"]\n",
            rules.display()
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

    let traces_url = format!("http://127.0.0.1:{http}/v1/traces");
    let alerts_url = format!("http://127.0.0.1:{prom_port}/api/v1/alerts");
    let body = kong_spans(97, 3);
    let deadline = Instant::now() + Duration::from_secs(120);
    let firing = loop {
        curl(&[
            "-H",
            "Content-Type: application/json",
            "--data",
            &body,
            &traces_url,
        ]);
        let alerts: serde_json::Value = serde_json::from_str(&curl(&[&alerts_url])).unwrap();
        let firing: Vec<serde_json::Value> = alerts["data"]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["state"] == "firing")
            .cloned()
            .collect();
        if !firing.is_empty() {
            break firing;
        }
        assert!(
            Instant::now() < deadline,
            "no alert within 120s: {alerts}\n{}",
            curl(&[&format!("http://127.0.0.1:{metrics}/metrics")])
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(firing.len(), 1, "{firing:?}");
    assert_eq!(
        firing[0]["labels"]["alertname"],
        "SpanAvailabilitySLOBreached"
    );
    assert_eq!(firing[0]["labels"]["service_name"], "kong-otel");
    let availability: f64 = firing[0]["value"].as_str().unwrap().parse().unwrap();
    assert!((availability - 0.97).abs() < 1e-9, "{availability}");

    // The same spans went to Jaeger over OTLP gRPC.
    assert!(jaeger.wait_for_items(100) >= 100);
    let received = jaeger.received();
    assert!(received
        .iter()
        .all(|r| r.path == "traces" && r.status == 200));
}

/// The spanmetrics example with nothing standing in: the real gateway proxies requests to a
/// real upstream, its opentelemetry plugin exports Kong's spans to the real collector running
/// config/jaeger.yaml, which forwards them to Jaeger (an OTLP gRPC sink) and turns them into
/// span metrics on its prometheus exporter; the gateway's prometheus plugin counts the same
/// requests on its Status API.
#[test]
fn gateway_plugins_feed_the_collector_end_to_end() {
    const REQUESTS: usize = 10;
    let jaeger = Sink::grpc();
    let (http, metrics) = (free_port(), free_port());
    let tmp = tempfile::tempdir().unwrap();
    let ports = jaeger_config_ports(tmp.path(), http, metrics);
    let jaeger_endpoint = jaeger.addr.to_string();
    let _collector = Collector::start_merged(
        &[&root().join("config/jaeger.yaml"), &ports],
        &[("JAEGER_ENDPOINT", &jaeger_endpoint)],
        http,
    );

    // The upstream: Python's HTTP server answering 200 for /.
    let upstream_port = free_port();
    let upstream = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1"])
        .arg(upstream_port.to_string())
        .current_dir(tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 -m http.server");
    let mut upstream = Running(upstream);
    wait_listening(&mut upstream, upstream_port);

    // The example's decK file, pointed at this test's upstream and collector.
    let deck = std::fs::read_to_string(root().join("examples/kong-spanmetrics-jaeger/kong.yaml"))
        .unwrap()
        .replace("127.0.0.1:9000", &format!("127.0.0.1:{upstream_port}"))
        .replace("127.0.0.1:4318", &format!("127.0.0.1:{http}"));
    let deck_file = tmp.path().join("kong.yaml");
    std::fs::write(&deck_file, deck).unwrap();
    let (proxy, admin) = (free_port(), free_port());
    let _gateway = Gateway::start_proxying(&deck_file, proxy, admin);
    for _ in 0..REQUESTS {
        curl(&[&format!("http://127.0.0.1:{proxy}/demo")]);
    }

    // Kong's root spans reach Jaeger, one per request, with the plugin's resource.
    let deadline = Instant::now() + Duration::from_secs(60);
    let roots = loop {
        let roots: Vec<_> = jaeger
            .received()
            .into_iter()
            .filter_map(|r| match r.batch {
                otelpipe::pipeline::Batch::Traces(resources) => Some(resources),
                _ => None,
            })
            .flatten()
            .flat_map(|rs| {
                let service = rs
                    .resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .find(|kv| kv.key == "service.name")
                    .and_then(|kv| kv.value.clone());
                rs.scope_spans
                    .into_iter()
                    .flat_map(|ss| ss.spans)
                    .filter(|span| span.name == "kong")
                    .map(move |span| (service.clone(), span))
            })
            .collect();
        if roots.len() >= REQUESTS {
            break roots;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {REQUESTS} kong spans within 60s",
            roots.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(roots.len(), REQUESTS);
    for (service, span) in &roots {
        assert_eq!(
            format!("{service:?}"),
            format!(
                "{:?}",
                Some(opentelemetry_proto::tonic::common::v1::AnyValue {
                    value: Some(
                        opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                            "kong-otel".into()
                        )
                    )
                })
            )
        );
        assert_eq!(span.kind, 2, "kong root span is SERVER");
    }

    // The connector counted every request; the prometheus exporter serves the count.
    let calls = |text: &str| -> Option<f64> {
        text.lines()
            .filter(|l| {
                l.starts_with("traces_span_metrics_calls_total{")
                    && l.contains("service_name=\"kong-otel\"")
                    && l.contains("span_name=\"kong\"")
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .reduce(|a, b| a + b)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = curl(&[&format!("http://127.0.0.1:{metrics}/metrics")]);
        if calls(&text) == Some(REQUESTS as f64) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no {REQUESTS} calls within 60s:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The gateway's prometheus plugin counted the same requests (Admin API /metrics).
    let text = curl(&[&format!("http://127.0.0.1:{admin}/metrics")]);
    let requests: f64 = text
        .lines()
        .filter(|l| {
            l.starts_with("kong_http_requests_total{")
                && l.contains("service=\"demo\"")
                && l.contains("code=\"200\"")
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(requests, REQUESTS as f64, "{text}");
}

/// A string attribute's value, if `key` is there and a string.
fn string_attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        }
    })
}

/// Seed 000 end to end with the project's own binaries: the gateway runs the seed's decK files
/// (hosts and ports pointed at this test), the collector runs the seed's traces + metrics +
/// logs config, and the Dynatrace stand-in receives Kong's spans, its tcp-log lines parsed by
/// `json_parser` (their `trace_id` custom field naming a received trace), and its prometheus
/// plugin's counters scraped and turned into deltas that add up to the requests sent after
/// the first scrape.
#[test]
fn dynatrace_seed_runs_end_to_end() {
    const REQUESTS: usize = 5;
    let dynatrace = Sink::dynatrace("dt0c01.e2e");
    let tmp = tempfile::tempdir().unwrap();
    let (grpc, http, tcplog, exporter, own, health) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let (proxy, admin, status) = (free_port(), free_port(), free_port());
    let ports = tmp.path().join("ports.yaml");
    std::fs::write(
        &ports,
        format!(
            "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:{grpc}\n      http:\n        endpoint: 127.0.0.1:{http}\n  \
             tcplog:\n    listen_address: 127.0.0.1:{tcplog}\n\
             exporters:\n  prometheus:\n    endpoint: 127.0.0.1:{exporter}\n\
             extensions:\n  health_check:\n    endpoint: 127.0.0.1:{health}\n\
             service:\n  telemetry:\n    metrics:\n      address: 127.0.0.1:{own}\n"
        ),
    )
    .unwrap();
    let endpoint = format!("http://{}/api/v2/otlp", dynatrace.addr);
    let target = format!("127.0.0.1:{status}");
    let _collector = Collector::start_merged(
        &[
            &root().join("examples/kong-dynatrace/collector-traces-metrics-logs.yaml"),
            &ports,
        ],
        &[
            ("DT_ENDPOINT", &endpoint),
            ("DT_API_TOKEN", "dt0c01.e2e"),
            ("KONG_DEPLOYMENT_NAME", "kong-e2e"),
            ("KONG_STATUS_TARGET", &target),
        ],
        tcplog,
    );

    let upstream_port = free_port();
    let upstream = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1"])
        .arg(upstream_port.to_string())
        .current_dir(tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 -m http.server");
    let mut upstream = Running(upstream);
    wait_listening(&mut upstream, upstream_port);

    // The seed's files with this machine's hosts and this test's ports, as run-gateway.sh does.
    let dir = root().join("examples/kong-dynatrace");
    let services = regex::Regex::new(r"host: (coupon|inventory|pricing)\.default\n(\s+)port: 8080")
        .unwrap()
        .replace_all(
            &std::fs::read_to_string(dir.join("kong-services-routes.yaml")).unwrap(),
            format!("host: 127.0.0.1\n${{2}}port: {upstream_port}").as_str(),
        )
        .into_owned();
    let plugins = std::fs::read_to_string(dir.join("kong-plugins.yaml"))
        .unwrap()
        .replace(
            "collector-kong-collector.opentelemetry-operator-system.svc.cluster.local:4318",
            &format!("127.0.0.1:{http}"),
        )
        .replace(
            "collector-kong-collector.opentelemetry-operator-system.svc.cluster.local",
            "127.0.0.1",
        )
        .replace("port: 54525", &format!("port: {tcplog}"));
    let (services_file, plugins_file) = (tmp.path().join("s.yaml"), tmp.path().join("p.yaml"));
    std::fs::write(&services_file, services).unwrap();
    std::fs::write(&plugins_file, plugins).unwrap();
    let _gateway = Gateway::start_with(&[&services_file, &plugins_file], proxy, admin, status);
    let send = || {
        for _ in 0..REQUESTS {
            curl(&[&format!("http://127.0.0.1:{proxy}/coupon")]);
        }
    };
    // What the Dynatrace stand-in holds: Kong's root span trace ids, the tcp-log records'
    // `trace_id` fields, and the coupon service's 200s as delta points (None before the first).
    let observe = || {
        let received = dynatrace.received();
        let mut trace_ids = Vec::new();
        let mut log_trace_ids = Vec::new();
        let mut requests_counted: Option<f64> = None;
        for r in &received {
            assert_eq!(
                r.headers.get("authorization").map(String::as_str),
                Some("Api-Token dt0c01.e2e")
            );
            match &r.batch {
                otelpipe::pipeline::Batch::Traces(resources) => {
                    assert!(r.path.ends_with("/api/v2/otlp/v1/traces"), "{}", r.path);
                    trace_ids.extend(
                        resources
                            .iter()
                            .flat_map(|rs| &rs.scope_spans)
                            .flat_map(|ss| &ss.spans)
                            .filter(|span| span.name == "kong")
                            .map(|span| hex::encode(&span.trace_id)),
                    );
                }
                otelpipe::pipeline::Batch::Logs(resources) => {
                    for record in resources
                        .iter()
                        .flat_map(|rl| &rl.scope_logs)
                        .flat_map(|sl| &sl.log_records)
                    {
                        if let Some(id) = string_attr(&record.attributes, "trace_id") {
                            log_trace_ids.push(id.to_owned());
                        }
                    }
                }
                otelpipe::pipeline::Batch::Metrics(resources) => {
                    for metric in resources
                        .iter()
                        .flat_map(|rm| &rm.scope_metrics)
                        .flat_map(|sm| &sm.metrics)
                        .filter(|m| m.name == "kong_http_requests_total")
                    {
                        let Some(metric::Data::Sum(sum)) = &metric.data else {
                            panic!("{} is not a sum", metric.name);
                        };
                        assert_eq!(
                            sum.aggregation_temporality, 1,
                            "cumulativetodelta made it delta"
                        );
                        for point in &sum.data_points {
                            assert_eq!(
                                string_attr(&point.attributes, "kong.deployment.name"),
                                Some("kong-e2e")
                            );
                            if string_attr(&point.attributes, "service")
                                == Some("ecommerce_coupon_service")
                                && string_attr(&point.attributes, "code") == Some("200")
                            {
                                *requests_counted.get_or_insert(0.0) += match point.value {
                                    Some(number_data_point::Value::AsDouble(v)) => v,
                                    Some(number_data_point::Value::AsInt(v)) => v as f64,
                                    None => 0.0,
                                };
                            }
                        }
                    }
                }
            }
        }
        (trace_ids, log_trace_ids, requests_counted)
    };

    // Prometheus-scraped counters reach Dynatrace from their second scrape on: the first
    // scrape of a series is cumulativetodelta's baseline (otelcol's `initial_value: auto`).
    send();
    let deadline = Instant::now() + Duration::from_secs(90);
    while observe().2.is_none() {
        assert!(
            Instant::now() < deadline,
            "no kong_http_requests_total point within 90s"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        observe().2,
        Some(0.0),
        "the first scrape is the baseline, not a delta"
    );
    send();
    loop {
        let (trace_ids, log_trace_ids, requests_counted) = observe();
        let logs_match = log_trace_ids.len() >= 2 * REQUESTS
            && log_trace_ids.iter().all(|id| trace_ids.contains(id));
        if trace_ids.len() >= 2 * REQUESTS
            && logs_match
            && requests_counted == Some(REQUESTS as f64)
        {
            assert_eq!(trace_ids.len(), 2 * REQUESTS);
            assert_eq!(log_trace_ids.len(), 2 * REQUESTS);
            // Nothing the collector sent broke Dynatrace's contract.
            assert_eq!(dynatrace.refusals(), Vec::<String>::new());
            assert!(dynatrace.received().iter().all(|r| r.status == 200));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "within 90s: {} kong spans, log trace ids {log_trace_ids:?} of {trace_ids:?}, {requests_counted:?} requests counted",
            trace_ids.len()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// POSTs `body` (a file) with `headers` and returns the status and the answer's body.
fn post(url: &str, headers: &[&str], body: &Path) -> (u16, Vec<u8>) {
    let mut args = vec!["-sS", "--max-time", "30", "-o", "-", "-w", "\n%{http_code}"];
    for h in headers {
        args.extend(["-H", h]);
    }
    let data = format!("@{}", body.display());
    args.extend(["--data-binary", &data, url]);
    let out = Command::new("curl")
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let split = out.stdout.iter().rposition(|b| *b == b'\n').unwrap();
    let code = std::str::from_utf8(&out.stdout[split + 1..]).unwrap();
    (code.parse().unwrap(), out.stdout[..split].to_vec())
}

/// The Dynatrace stand-in of the seed 000 test answers as Dynatrace documents: 401 without
/// the Api-Token, 415 for anything but protobuf, 400 for a body that does not decode, 413
/// over the size limit, rejected data points for cumulative sums, 429 when throttling.
#[test]
fn dynatrace_stand_in_enforces_the_documented_contract() {
    use opentelemetry_proto::tonic::collector::metrics::v1::{
        ExportMetricsServiceRequest, ExportMetricsServiceResponse,
    };
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::metrics::v1::{
        Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    };
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;

    let dynatrace = Sink::dynatrace("dt0c01.contract");
    let tmp = tempfile::tempdir().unwrap();
    let base = format!("http://{}/api/v2/otlp/v1", dynatrace.addr);
    let auth = "Authorization: Api-Token dt0c01.contract";
    let proto = "Content-Type: application/x-protobuf";
    let file = |name: &str, bytes: &[u8]| {
        let path = tmp.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let sum = |temporality: i32| {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "kong_http_requests_total".into(),
                        data: Some(metric::Data::Sum(Sum {
                            data_points: vec![NumberDataPoint {
                                value: Some(number_data_point::Value::AsDouble(5.0)),
                                ..NumberDataPoint::default()
                            }],
                            aggregation_temporality: temporality,
                            is_monotonic: true,
                        })),
                        ..Metric::default()
                    }],
                    ..ScopeMetrics::default()
                }],
                ..ResourceMetrics::default()
            }],
        }
        .encode_to_vec()
    };
    let delta = file("delta.pb", &sum(1));
    let cumulative = file("cumulative.pb", &sum(2));
    let metrics = format!("{base}/metrics");

    assert_eq!(post(&metrics, &[proto], &delta).0, 401);
    assert_eq!(
        post(&metrics, &["Authorization: Api-Token wrong", proto], &delta).0,
        401
    );
    assert_eq!(
        post(&metrics, &[auth, "Content-Type: application/json"], &delta).0,
        415
    );
    let garbage = file("garbage.pb", b"not protobuf");
    assert_eq!(post(&metrics, &[auth, proto], &garbage).0, 400);
    let huge = file("huge.pb", &vec![0u8; (4 << 20) + 1]);
    assert_eq!(post(&metrics, &[auth, proto], &huge).0, 413);
    // Traces may be twice as large: a 5 MB span is taken.
    let span = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![1; 16],
                    span_id: vec![2; 8],
                    name: "x".repeat(5 << 20),
                    ..Span::default()
                }],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    };
    let large = file("large.pb", &span.encode_to_vec());
    let traces = format!("{base}/traces");
    assert_eq!(post(&traces, &[auth, proto], &large).0, 200);
    assert_eq!(post(&traces, &[auth, proto], &huge).0, 400);
    let too_large = file("too-large.pb", &vec![0u8; (8 << 20) + 1]);
    assert_eq!(post(&traces, &[auth, proto], &too_large).0, 413);

    let (status, body) = post(&metrics, &[auth, proto], &delta);
    assert_eq!(status, 200);
    let answer = ExportMetricsServiceResponse::decode(body.as_slice()).unwrap();
    assert_eq!(answer.partial_success, None);
    let (status, body) = post(&metrics, &[auth, proto], &cumulative);
    assert_eq!(status, 200);
    let partial = ExportMetricsServiceResponse::decode(body.as_slice())
        .unwrap()
        .partial_success
        .expect("partial success");
    assert_eq!(partial.rejected_data_points, 1);
    assert_eq!(
        partial.error_message,
        "UNSUPPORTED_METRIC_TYPE_MONOTONIC_CUMULATIVE_SUM"
    );

    dynatrace.script(vec![crate::support::sink::Answer {
        status: 429,
        headers: vec![("retry-after", "1".to_owned())],
    }]);
    assert_eq!(post(&metrics, &[auth, proto], &delta).0, 429);
    assert_eq!(post(&metrics, &[auth, proto], &delta).0, 200);
    // Each refusal was recorded with its reason; the scripted 429 is not one.
    let refusals = dynatrace.refusals();
    let codes: Vec<&str> = refusals
        .iter()
        .map(|r| r.split(':').next().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "401",
            "401",
            "415",
            "400",
            "413",
            "400",
            "413",
            "1 data points"
        ],
        "{refusals:?}"
    );
}
