use std::time::Duration;

use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point, Metric};

use super::config::{parse_byte_size, parse_prom_duration, Config, ScrapeProtocol};
use super::convert::{Options, TargetInfo, TargetState};
use super::labels::Labels;
use super::parse::{self, Format};
use super::relabel::{self, RelabelConfig};
use super::target;
use crate::config::decode;

fn yaml(text: &str) -> yaml_serde::Value {
    yaml_serde::from_str(text).unwrap()
}

fn config(text: &str) -> Result<Config, crate::config::FieldError> {
    super::decode_config(&yaml(text))
}

fn rules(text: &str) -> Vec<relabel::Rule> {
    let configs: Vec<RelabelConfig> = yaml_serde::from_str(text).unwrap();
    relabel::rules(&configs).unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

#[test]
fn the_seed_section_decodes_with_prometheus_defaults() {
    let c = config(
        "config:
  scrape_configs:
    - job_name: 'otel-collector'
      scrape_interval: 5s
      kubernetes_sd_configs:
        - role: pod
      scheme: http
      tls_config:
        ca_file: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt
      authorization:
        credentials_file: /var/run/secrets/kubernetes.io/serviceaccount/token
      metrics_path: /metrics
      relabel_configs:
        - source_labels: [__meta_kubernetes_namespace]
          action: keep
          regex: \"kong\"
        - source_labels: [__meta_kubernetes_pod_container_port_number]
          action: keep
          regex: 8100
",
    )
    .unwrap();
    let job = c.job(&c.config.scrape_configs[0]);
    assert_eq!(job.interval, Duration::from_secs(5));
    // The global 10s timeout is capped to the 5s interval.
    assert_eq!(job.timeout, Duration::from_secs(5));
    assert!(job.honor_timestamps);
    assert_eq!(
        job.accept,
        "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
    );
    assert_eq!(
        ScrapeProtocol::accept_header(&[ScrapeProtocol::PrometheusText0_0_4]),
        "text/plain;version=0.0.4;q=0.5,*/*;q=0.4"
    );
}

#[test]
fn config_errors_name_the_problem() {
    let cases: &[(&str, &str, &str)] = &[
        ("config: {}", "", "no Prometheus scrape_configs or target_allocator set"),
        (
            "config: {remote_write: [{url: x}], rule_files: [a], scrape_configs: [{job_name: a}]}",
            "config",
            "unsupported features:\n\tremote_write\n\trule_files",
        ),
        (
            "config: {scrape_configs: [{job_name: a}, {job_name: a}]}",
            "config::scrape_configs::1::job_name",
            "found multiple scrape configs with job name \"a\"",
        ),
        (
            "config: {scrape_configs: [{job_name: a, scrape_interval: 5s, scrape_timeout: 10s}]}",
            "config::scrape_configs::0::scrape_timeout",
            "scrape timeout greater than scrape interval for scrape config with job name \"a\"",
        ),
        (
            "config: {scrape_configs: [{job_name: a, relabel_configs: [{action: hashmod, target_label: x}]}]}",
            "config::scrape_configs::0::relabel_configs::0",
            "relabel configuration for hashmod requires non-zero modulus",
        ),
        (
            "config: {scrape_configs: [{job_name: a, relabel_configs: [{action: explode}]}]}",
            "config::scrape_configs::0::relabel_configs::0",
            "unknown relabel action \"explode\"",
        ),
        (
            "config: {scrape_configs: [{job_name: a, relabel_configs: [{action: replace}]}]}",
            "config::scrape_configs::0::relabel_configs::0",
            "relabel configuration for replace action requires 'target_label' value",
        ),
        (
            "config: {scrape_configs: [{job_name: a, relabel_configs: [{action: labeldrop, regex: x, source_labels: [a]}]}]}",
            "config::scrape_configs::0::relabel_configs::0",
            "labeldrop action requires only 'regex', and no other fields",
        ),
        (
            "config: {scrape_configs: [{job_name: a, dns_sd_configs: [{names: [x]}]}]}",
            "config::scrape_configs::0::dns_sd_configs",
            "dns_sd_configs is not supported",
        ),
        (
            "config: {scrape_configs: [{job_name: a, scrape_intervall: 5s}]}",
            "config::scrape_configs::0::scrape_intervall",
            "unknown field `scrape_intervall`",
        ),
        (
            "config: {scrape_configs: [{job_name: a, kubernetes_sd_configs: [{role: pods}]}]}",
            "config::scrape_configs::0::kubernetes_sd_configs::0",
            "unknown Kubernetes SD role \"pods\"",
        ),
        (
            "config: {scrape_configs: [{job_name: a, scrape_interval: 5x}]}",
            "config::scrape_configs::0::scrape_interval",
            "not a valid duration string",
        ),
    ];
    for (text, path, message) in cases {
        let err = config(text).expect_err(text);
        assert_eq!(err.path_string(), *path, "{text}: {err}");
        assert!(err.message.contains(message), "{text}: {err}");
    }
}

#[test]
fn prometheus_durations_and_sizes() {
    assert_eq!(
        parse_prom_duration("1m30s").unwrap(),
        Duration::from_secs(90)
    );
    assert_eq!(
        parse_prom_duration("1d").unwrap(),
        Duration::from_secs(86400)
    );
    assert_eq!(
        parse_prom_duration("250ms").unwrap(),
        Duration::from_millis(250)
    );
    assert_eq!(parse_prom_duration("0").unwrap(), Duration::ZERO);
    assert!(parse_prom_duration("30s1m").is_err());
    assert!(parse_prom_duration("1.5s").is_err());
    assert_eq!(target::format_duration(Duration::from_secs(90)), "1m30s");
    assert_eq!(target::format_duration(Duration::from_secs(5)), "5s");
    assert_eq!(parse_byte_size("10MB").unwrap(), 10 << 20);
    assert_eq!(parse_byte_size("512KiB").unwrap(), 512 << 10);
    assert_eq!(parse_byte_size("1000").unwrap(), 1000);
    assert!(parse_byte_size("10 parsecs").is_err());
}

#[test]
fn relabel_actions() {
    // (rules, input labels, expected output or None when dropped)
    type Case<'a> = (
        &'a str,
        &'a [(&'a str, &'a str)],
        Option<&'a [(&'a str, &'a str)]>,
    );
    let cases: &[Case<'_>] = &[
        (
            "[{source_labels: [a, b], regex: '(.+);(.+)', target_label: c, replacement: '$2-$1'}]",
            &[("a", "x"), ("b", "y")],
            Some(&[("a", "x"), ("b", "y"), ("c", "y-x")]),
        ),
        // No match: nothing changes. The regex is anchored.
        (
            "[{source_labels: [a], regex: 'x', target_label: c}]",
            &[("a", "xx")],
            Some(&[("a", "xx")]),
        ),
        // An empty replacement deletes the target label; a template target label.
        (
            "[{source_labels: [a], regex: '(.*)', target_label: b, replacement: ''}, {source_labels: [a], regex: '(.+)', target_label: 'l_$1', replacement: v}]",
            &[("a", "k"), ("b", "gone")],
            Some(&[("a", "k"), ("l_k", "v")]),
        ),
        ("[{source_labels: [a], regex: 'k.*', action: keep}]", &[("a", "kong")], Some(&[("a", "kong")])),
        ("[{source_labels: [a], regex: 'k', action: keep}]", &[("a", "kong")], None),
        ("[{source_labels: [a], regex: 'kong', action: drop}]", &[("a", "kong")], None),
        ("[{source_labels: [missing], regex: '', action: DROP}]", &[("a", "1")], None),
        ("[{source_labels: [a], target_label: b, action: keepequal}]", &[("a", "1"), ("b", "1")], Some(&[("a", "1"), ("b", "1")])),
        ("[{source_labels: [a], target_label: b, action: keepequal}]", &[("a", "1"), ("b", "2")], None),
        ("[{source_labels: [a], target_label: b, action: dropequal}]", &[("a", "1"), ("b", "1")], None),
        ("[{source_labels: [a], target_label: b, action: lowercase}]", &[("a", "KoNg")], Some(&[("a", "KoNg"), ("b", "kong")])),
        ("[{source_labels: [a], target_label: b, action: uppercase}]", &[("a", "KoNg")], Some(&[("a", "KoNg"), ("b", "KONG")])),
        (
            "[{regex: '__meta_kubernetes_pod_label_(.+)', action: labelmap}]",
            &[("__meta_kubernetes_pod_label_app", "kong"), ("x", "1")],
            Some(&[("__meta_kubernetes_pod_label_app", "kong"), ("app", "kong"), ("x", "1")]),
        ),
        ("[{regex: 'tmp_.*', action: labeldrop}]", &[("tmp_a", "1"), ("keep", "2")], Some(&[("keep", "2")])),
        ("[{regex: 'keep|job', action: labelkeep}]", &[("tmp_a", "1"), ("keep", "2")], Some(&[("keep", "2")])),
    ];
    for (text, input, expected) in cases {
        let mut l = labels(input);
        let kept = relabel::process(&mut l, &rules(text));
        match expected {
            None => assert!(!kept, "{text}: kept {l:?}"),
            Some(want) => {
                assert!(kept, "{text}: dropped");
                assert_eq!(l, labels(want), "{text}");
            }
        }
    }
}

#[test]
fn hashmod_matches_prometheus() {
    // Prometheus: md5 of the joined value, low 8 bytes big-endian, mod modulus.
    let mut l = labels(&[("__address__", "10.0.0.1:8100")]);
    relabel::process(
        &mut l,
        &rules("[{source_labels: [__address__], modulus: 1000000, target_label: shard, action: hashmod}]"),
    );
    use md5::Digest as _;
    let digest = md5::Md5::digest(b"10.0.0.1:8100");
    let expected = u64::from_be_bytes(digest[8..16].try_into().unwrap()) % 1_000_000;
    assert_eq!(l.get("shard"), Some(expected.to_string().as_str()));
}

#[test]
fn annotation_rules_after_dollar_expansion_select_and_address_pods() {
    // The config loader turns `$$1:$$2` into `$1:$2` before the receiver sees it.
    let r = rules(
        "[
  {source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape], action: keep, regex: 'true'},
  {source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_path], action: replace, target_label: __metrics_path__, regex: '(.+)'},
  {source_labels: [__address__, __meta_kubernetes_pod_annotation_prometheus_io_port], action: replace, regex: '([^:]+)(?::\\d+)?;(\\d+)', replacement: '$1:$2', target_label: __address__}
]",
    );
    let mut l = labels(&[
        ("__address__", "10.1.2.3:8000"),
        (
            "__meta_kubernetes_pod_annotation_prometheus_io_scrape",
            "true",
        ),
        (
            "__meta_kubernetes_pod_annotation_prometheus_io_port",
            "8100",
        ),
        (
            "__meta_kubernetes_pod_annotation_prometheus_io_path",
            "/status/metrics",
        ),
    ]);
    assert!(relabel::process(&mut l, &r));
    assert_eq!(l.get("__address__"), Some("10.1.2.3:8100"));
    assert_eq!(l.get("__metrics_path__"), Some("/status/metrics"));
    let mut unannotated = labels(&[("__address__", "10.1.2.4:8000")]);
    assert!(!relabel::process(&mut unannotated, &r));
}

#[test]
fn targets_get_job_instance_port_and_params() {
    let c = config(
        "config:
  scrape_configs:
    - job_name: j
      params: {module: [http_2xx]}
      static_configs:
        - targets: ['example.org', '10.0.0.1:9100']
          labels: {team: a}
      relabel_configs:
        - source_labels: [__address__]
          regex: '10\\..*'
          target_label: __param_target
          replacement: override
",
    )
    .unwrap();
    let job = c.job(&c.config.scrape_configs[0]);
    let rules = relabel::rules(&job.config.relabel_configs).unwrap();
    let groups = super::discovery::r#static::groups(&job.config.static_configs);
    let t = target::targets(&job, &rules, &groups);
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].url, "http://example.org:80/metrics?module=http_2xx");
    assert_eq!(
        t[0].labels,
        labels(&[("instance", "example.org:80"), ("job", "j"), ("team", "a")])
    );
    assert_eq!(
        t[1].url,
        "http://10.0.0.1:9100/metrics?module=http_2xx&target=override"
    );
    assert_eq!(t[1].discovered.get("__scrape_interval__"), Some("1m"));
}

fn values(metrics: &[Metric], name: &str) -> Vec<(u64, u64, Option<f64>, u32)> {
    let Some(m) = metrics.iter().find(|m| m.name == name) else {
        return Vec::new();
    };
    let points = match m.data.as_ref().unwrap() {
        metric::Data::Sum(s) => &s.data_points,
        metric::Data::Gauge(g) => &g.data_points,
        other => panic!("{other:?}"),
    };
    points
        .iter()
        .map(|p| {
            let v = match p.value {
                Some(number_data_point::Value::AsDouble(d)) => Some(d),
                _ => None,
            };
            (p.start_time_unix_nano, p.time_unix_nano, v, p.flags)
        })
        .collect()
}

fn target_info() -> TargetInfo {
    TargetInfo {
        labels: labels(&[("job", "kong"), ("instance", "10.0.0.7:8100")]),
        discovered: labels(&[
            ("__meta_kubernetes_pod_name", "kong-kong-1"),
            ("__meta_kubernetes_namespace", "kong"),
            ("__meta_kubernetes_pod_controller_kind", "ReplicaSet"),
            ("__meta_kubernetes_pod_controller_name", "kong-kong-5d"),
        ]),
        scheme: "http".to_owned(),
    }
}

fn convert(state: &mut TargetState, body: &str, options: &Options, at_ms: i64) -> Vec<Metric> {
    let families = parse::parse(body, Format::Prometheus).unwrap();
    state
        .convert(&families, &target_info(), options, at_ms)
        .unwrap()
        .metrics
        .into_iter()
        .map(|(_, m)| m)
        .collect()
}

#[test]
fn counter_start_times_reset_on_decrease_and_stale_series_are_flagged() {
    let mut state = TargetState::default();
    let options = Options {
        honor_timestamps: true,
        ..Options::default()
    };
    let body = |v: u32| {
        format!("# TYPE kong_http_requests_total counter\nkong_http_requests_total{{code=\"200\"}} {v}\n# TYPE g gauge\ng 1\n")
    };
    let first = convert(&mut state, &body(10), &options, 1000);
    assert_eq!(
        values(&first, "kong_http_requests_total"),
        vec![(1_000_000_000, 1_000_000_000, Some(10.0), 0)]
    );
    let second = convert(&mut state, &body(15), &options, 2000);
    assert_eq!(
        values(&second, "kong_http_requests_total"),
        vec![(1_000_000_000, 2_000_000_000, Some(15.0), 0)]
    );
    let reset = convert(&mut state, &body(3), &options, 3000);
    assert_eq!(
        values(&reset, "kong_http_requests_total"),
        vec![(3_000_000_000, 3_000_000_000, Some(3.0), 0)]
    );
    // The counter disappears: a stale marker with its start time and no value.
    let gone = convert(&mut state, "# TYPE g gauge\ng 2\n", &options, 4000);
    assert_eq!(
        values(&gone, "kong_http_requests_total"),
        vec![(3_000_000_000, 4_000_000_000, None, 1)]
    );
    assert_eq!(values(&gone, "g"), vec![(0, 4_000_000_000, Some(2.0), 0)]);
    let m = gone
        .iter()
        .find(|m| m.name == "kong_http_requests_total")
        .unwrap();
    let Some(metric::Data::Sum(s)) = &m.data else {
        panic!()
    };
    assert!(s.is_monotonic);
}

#[test]
fn target_labels_win_unless_honor_labels_and_limits_fail_the_scrape() {
    let body = "m{job=\"scraped\",instance=\"x\",a=\"1\",empty=\"\"} 1 5000\n";
    let families = parse::parse(body, Format::Prometheus).unwrap();
    let mut state = TargetState::default();
    let converted = state
        .convert(&families, &target_info(), &Options::default(), 9000)
        .unwrap();
    let (metrics, stats): (Vec<Metric>, _) = (
        converted.metrics.into_iter().map(|(_, m)| m).collect(),
        converted.stats,
    );
    let m = &metrics[0];
    let Some(metric::Data::Gauge(g)) = &m.data else {
        panic!()
    };
    let p = &g.data_points[0];
    let keys: Vec<&str> = p.attributes.iter().map(|a| a.key.as_str()).collect();
    assert_eq!(keys, vec!["a", "exported_instance", "exported_job"]);
    // honor_timestamps is false here: the scrape time is used.
    assert_eq!(p.time_unix_nano, 9_000_000_000);
    assert_eq!(stats.scraped, 1);

    let honor = Options {
        honor_labels: true,
        honor_timestamps: true,
        ..Options::default()
    };
    let metrics: Vec<Metric> = TargetState::default()
        .convert(&families, &target_info(), &honor, 9000)
        .unwrap()
        .metrics
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    let Some(metric::Data::Gauge(g)) = &metrics[0].data else {
        panic!()
    };
    assert_eq!(g.data_points[0].attributes.len(), 1);
    assert_eq!(g.data_points[0].time_unix_nano, 5_000_000_000);

    let two = parse::parse("a 1\nb 2\n", Format::Prometheus).unwrap();
    let limited = Options {
        sample_limit: 1,
        ..Options::default()
    };
    assert_eq!(
        TargetState::default()
            .convert(&two, &target_info(), &limited, 0)
            .unwrap_err(),
        super::convert::LimitError::SampleLimit
    );
}

#[test]
fn summaries_histograms_and_resource() {
    let body = "# HELP rpc RPC latency.
# TYPE rpc summary
rpc{quantile=\"0.5\"} 0.2
rpc{quantile=\"0.9\"} 0.8
rpc_sum 12
rpc_count 30
# TYPE lat histogram
lat_bucket{le=\"1\"} 2
lat_bucket{le=\"0.5\"} 1
lat_bucket{le=\"+Inf\"} 5
lat_count 5
# TYPE target_info gauge
target_info{region=\"eu\"} 1
";
    let families = parse::parse(body, Format::Prometheus).unwrap();
    let mut state = TargetState::default();
    let converted = state
        .convert(&families, &target_info(), &Options::default(), 1000)
        .unwrap();
    let extra = converted.target_info;
    let metrics: Vec<Metric> = converted.metrics.into_iter().map(|(_, m)| m).collect();
    let rpc = metrics.iter().find(|m| m.name == "rpc").unwrap();
    assert_eq!(rpc.description, "RPC latency.");
    let Some(metric::Data::Summary(s)) = &rpc.data else {
        panic!()
    };
    assert_eq!(s.data_points[0].count, 30);
    assert_eq!(s.data_points[0].sum, 12.0);
    assert_eq!(s.data_points[0].quantile_values.len(), 2);
    let lat = metrics.iter().find(|m| m.name == "lat").unwrap();
    let Some(metric::Data::Histogram(h)) = &lat.data else {
        panic!()
    };
    assert_eq!(h.data_points[0].explicit_bounds, vec![0.5, 1.0]);
    assert_eq!(h.data_points[0].bucket_counts, vec![1, 1, 3]);
    assert_eq!(h.data_points[0].sum, None);
    assert!(metrics.iter().all(|m| m.name != "target_info"));
    assert_eq!(extra, vec![("region".to_owned(), "eu".to_owned())]);

    let resource = super::convert::resource(&target_info(), &extra);
    let get = |k: &str| {
        resource
            .attributes
            .iter()
            .find(|a| a.key == k)
            .map(|a| crate::pipeline::as_string(a.value.as_ref()))
    };
    assert_eq!(get("service.name").as_deref(), Some("kong"));
    assert_eq!(get("service.instance.id").as_deref(), Some("10.0.0.7:8100"));
    assert_eq!(get("server.address").as_deref(), Some("10.0.0.7"));
    assert_eq!(get("server.port").as_deref(), Some("8100"));
    assert_eq!(get("k8s.pod.name").as_deref(), Some("kong-kong-1"));
    assert_eq!(get("k8s.namespace.name").as_deref(), Some("kong"));
    assert_eq!(get("k8s.replicaset.name").as_deref(), Some("kong-kong-5d"));
    assert_eq!(get("region").as_deref(), Some("eu"));
}

#[test]
fn pod_role_yields_a_target_per_port_with_meta_labels() {
    let pod: serde_json::Value = serde_json::from_str(
        r#"{"metadata":{"name":"kong-kong-1","namespace":"kong","uid":"u1",
            "labels":{"app.kubernetes.io/name":"kong"},
            "annotations":{"prometheus.io/scrape":"true"},
            "ownerReferences":[{"kind":"ReplicaSet","name":"kong-kong-5d","controller":true}]},
          "spec":{"nodeName":"n1","containers":[
            {"name":"proxy","image":"kong:3.9","ports":[{"name":"status","containerPort":8100},{"containerPort":8000,"protocol":"TCP"}]},
            {"name":"sidecar","image":"busybox"}]},
          "status":{"podIP":"10.0.0.7","hostIP":"192.0.2.1","phase":"Running",
            "conditions":[{"type":"Ready","status":"True"}],
            "containerStatuses":[{"name":"proxy","containerID":"containerd://abc"}]}}"#,
    )
    .unwrap();
    let g = super::discovery::kubernetes::pod_group(&pod);
    assert_eq!(g.source, "pod/kong/kong-kong-1");
    assert_eq!(
        g.labels
            .get("__meta_kubernetes_pod_label_app_kubernetes_io_name"),
        Some("kong")
    );
    assert_eq!(
        g.labels
            .get("__meta_kubernetes_pod_labelpresent_app_kubernetes_io_name"),
        Some("true")
    );
    assert_eq!(
        g.labels
            .get("__meta_kubernetes_pod_annotation_prometheus_io_scrape"),
        Some("true")
    );
    assert_eq!(g.labels.get("__meta_kubernetes_pod_ready"), Some("true"));
    assert_eq!(
        g.labels.get("__meta_kubernetes_pod_controller_kind"),
        Some("ReplicaSet")
    );
    assert_eq!(g.targets.len(), 3);
    assert_eq!(g.targets[0].get("__address__"), Some("10.0.0.7:8100"));
    assert_eq!(
        g.targets[0].get("__meta_kubernetes_pod_container_port_name"),
        Some("status")
    );
    assert_eq!(
        g.targets[0].get("__meta_kubernetes_pod_container_id"),
        Some("containerd://abc")
    );
    assert_eq!(
        g.targets[1].get("__meta_kubernetes_pod_container_port_protocol"),
        Some("TCP")
    );
    assert_eq!(g.targets[2].get("__address__"), Some("10.0.0.7"));
    assert_eq!(
        g.targets[2].get("__meta_kubernetes_pod_container_init"),
        Some("false")
    );
}

#[test]
fn file_sd_reads_yaml_and_json_groups() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.yaml"),
        "- targets: ['h1:1', 'h2:2']\n  labels: {team: a}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("b.json"), r#"[{"targets": ["h3:3"]}]"#).unwrap();
    std::fs::write(dir.path().join("c.txt"), "ignored").unwrap();
    let pattern = format!("{}/*.*", dir.path().display());
    let files = super::discovery::file::expand(&pattern);
    assert_eq!(files.len(), 3);
    let files = super::discovery::file::expand(&format!("{}/*.yaml", dir.path().display()));
    let groups = super::discovery::file::read_groups(&files[0]).unwrap();
    assert_eq!(groups[0].targets.len(), 2);
    assert_eq!(groups[0].labels.get("team"), Some("a"));
    assert!(groups[0]
        .labels
        .get("__meta_filepath")
        .unwrap()
        .ends_with("a.yaml"));
    let json = super::discovery::file::read_groups(&dir.path().join("b.json")).unwrap();
    assert_eq!(json[0].targets[0].get("__address__"), Some("h3:3"));
    std::fs::write(dir.path().join("bad.yaml"), "- targets: 5\n").unwrap();
    assert!(super::discovery::file::read_groups(&dir.path().join("bad.yaml")).is_err());
}

#[test]
fn decode_accepts_numbers_where_prometheus_takes_strings() {
    let r: RelabelConfig =
        decode(&yaml("{source_labels: [port], regex: 8100, action: keep}")).unwrap();
    assert_eq!(r.regex.unwrap().source, "8100");
}

mod running {
    //! The receiver itself: real HTTP endpoints on 127.0.0.1, a capture consumer behind it.

    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point, ResourceMetrics};
    use tokio::sync::watch;
    use tokio_util::sync::CancellationToken;

    use crate::component::{Component, CreateSettings, Host, ReceiverConsumers, ReceiverFactory};
    use crate::config::ComponentId;
    use crate::pipeline::{Batch, Capture, Signal};

    /// An exposition endpoint whose answer the test changes; records `Accept` headers.
    struct Endpoint {
        port: u16,
        answer: Arc<Mutex<(String, String)>>,
        accepts: Arc<Mutex<Vec<String>>>,
        stop: CancellationToken,
    }

    impl Endpoint {
        async fn start(content_type: &str, body: &str) -> Self {
            let answer = Arc::new(Mutex::new((content_type.to_owned(), body.to_owned())));
            let accepts = Arc::new(Mutex::new(Vec::new()));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let (a, seen) = (answer.clone(), accepts.clone());
            let app = axum::Router::new().route(
                "/metrics",
                axum::routing::get(move |headers: axum::http::HeaderMap| {
                    let (a, seen) = (a.clone(), seen.clone());
                    async move {
                        let accept = headers
                            .get("accept")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        seen.lock().unwrap().push(accept);
                        let (ct, body) = a.lock().unwrap().clone();
                        ([("content-type", ct)], body)
                    }
                }),
            );
            let stop = CancellationToken::new();
            let token = stop.clone();
            tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move { token.cancelled().await })
                    .await
                    .unwrap();
            });
            Self {
                port,
                answer,
                accepts,
                stop,
            }
        }

        fn set(&self, content_type: &str, body: &str) {
            *self.answer.lock().unwrap() = (content_type.to_owned(), body.to_owned());
        }
    }

    impl Drop for Endpoint {
        fn drop(&mut self) {
            self.stop.cancel();
        }
    }

    async fn start(yaml: &str) -> (Arc<dyn Component>, Arc<Capture>) {
        let capture = Arc::new(Capture::new());
        let mut consumers = ReceiverConsumers::default();
        consumers.set(Signal::Metrics, capture.clone());
        let receiver = super::super::FACTORY
            .create(
                &CreateSettings {
                    id: ComponentId::new("prometheus"),
                    signal: Signal::Metrics,
                    pipeline: String::new(),
                },
                &yaml_serde::from_str(yaml).unwrap(),
                consumers,
            )
            .unwrap();
        let (_tx, ready) = watch::channel(true);
        receiver
            .start(&Host {
                ready,
                shutdown: CancellationToken::new(),
                extensions: Default::default(),
            })
            .await
            .unwrap();
        (receiver, capture)
    }

    fn scrapes(capture: &Capture) -> Vec<ResourceMetrics> {
        capture
            .batches()
            .into_iter()
            .flat_map(|b| match b {
                Batch::Metrics(rm) => rm,
                _ => Vec::new(),
            })
            .collect()
    }

    fn instance(rm: &ResourceMetrics) -> String {
        rm.resource
            .as_ref()
            .unwrap()
            .attributes
            .iter()
            .find(|a| a.key == "service.instance.id")
            .map(|a| crate::pipeline::as_string(a.value.as_ref()))
            .unwrap_or_default()
    }

    fn up(rm: &ResourceMetrics) -> Option<f64> {
        let m = rm.scope_metrics[0]
            .metrics
            .iter()
            .find(|m| m.name == "up")?;
        match &m.data {
            Some(metric::Data::Gauge(g)) => match g.data_points[0].value {
                Some(number_data_point::Value::AsDouble(d)) => Some(d),
                _ => None,
            },
            _ => None,
        }
    }

    fn has_metric(rm: &ResourceMetrics, name: &str) -> bool {
        rm.scope_metrics[0].metrics.iter().any(|m| m.name == name)
    }

    async fn wait(capture: &Capture, what: &str, check: impl Fn(&[ResourceMetrics]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !check(&scrapes(capture)) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn openmetrics_is_negotiated_and_malformed_bodies_fail_only_that_scrape() {
        let body = "# TYPE kong_bandwidth_bytes counter\n# UNIT kong_bandwidth_bytes bytes\nkong_bandwidth_bytes_total{direction=\"egress\"} 10\n# EOF\n";
        let ep = Endpoint::start(
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            body,
        )
        .await;
        let (receiver, capture) = start(&format!(
            "config:\n  scrape_configs:\n    - job_name: om\n      scrape_interval: 100ms\n      static_configs: [{{targets: ['127.0.0.1:{}']}}]\n",
            ep.port
        ))
        .await;
        wait(&capture, "an OpenMetrics scrape", |s| {
            s.iter()
                .any(|rm| has_metric(rm, "kong_bandwidth_bytes_total"))
        })
        .await;
        let rm = scrapes(&capture)
            .into_iter()
            .find(|rm| has_metric(rm, "kong_bandwidth_bytes_total"))
            .unwrap();
        let m = rm.scope_metrics[0]
            .metrics
            .iter()
            .find(|m| m.name == "kong_bandwidth_bytes_total")
            .unwrap();
        assert_eq!(m.unit, "By");
        assert!(matches!(&m.data, Some(metric::Data::Sum(s)) if s.is_monotonic));
        assert!(ep.accepts.lock().unwrap()[0]
            .starts_with("application/openmetrics-text;version=1.0.0;q=0.5"));

        // Missing `# EOF`: the scrape fails (up = 0, series stale), the loop goes on.
        ep.set("application/openmetrics-text; version=1.0.0", "kong_x 1\n");
        wait(&capture, "a failed scrape", |s| {
            s.iter().any(|rm| up(rm) == Some(0.0))
        })
        .await;
        let failed = scrapes(&capture)
            .into_iter()
            .find(|rm| up(rm) == Some(0.0))
            .unwrap();
        assert!(
            has_metric(&failed, "kong_bandwidth_bytes_total"),
            "stale marker"
        );
        ep.set("text/plain; version=0.0.4", "recovered 1\n");
        wait(&capture, "recovery", |s| {
            s.iter().any(|rm| has_metric(rm, "recovered"))
        })
        .await;
        receiver.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn body_size_limit_fails_the_scrape() {
        let big = format!("big{{v=\"{}\"}} 1\n", "x".repeat(4096));
        let ep = Endpoint::start("text/plain; version=0.0.4", &big).await;
        let (receiver, capture) = start(&format!(
            "config:\n  scrape_configs:\n    - job_name: b\n      scrape_interval: 100ms\n      body_size_limit: 1KB\n      static_configs: [{{targets: ['127.0.0.1:{}']}}]\n",
            ep.port
        ))
        .await;
        wait(&capture, "a failed scrape", |s| {
            s.iter().any(|rm| up(rm) == Some(0.0))
        })
        .await;
        assert!(scrapes(&capture).iter().all(|rm| !has_metric(rm, "big")));
        receiver.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn file_sd_reloads_when_the_file_changes() {
        let a = Endpoint::start("text/plain", "from_a 1\n").await;
        let b = Endpoint::start("text/plain", "from_b 1\n").await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("targets.yaml");
        std::fs::write(
            &file,
            format!(
                "- targets: ['127.0.0.1:{}']\n  labels: {{team: a}}\n",
                a.port
            ),
        )
        .unwrap();
        let (receiver, capture) = start(&format!(
            "config:\n  scrape_configs:\n    - job_name: f\n      scrape_interval: 100ms\n      file_sd_configs: [{{files: ['{}/*.yaml']}}]\n",
            dir.path().display()
        ))
        .await;
        let a_instance = format!("127.0.0.1:{}", a.port);
        let b_instance = format!("127.0.0.1:{}", b.port);
        wait(&capture, "a scrape of the first target", |s| {
            s.iter()
                .any(|rm| instance(rm) == a_instance && has_metric(rm, "from_a"))
        })
        .await;
        // Replace the file's content (the size changes with the port digits or not, the
        // modification time does).
        std::fs::write(
            &file,
            format!(
                "- targets: ['127.0.0.1:{}']\n  labels: {{team: b}}\n",
                b.port
            ),
        )
        .unwrap();
        wait(&capture, "a scrape of the new target", |s| {
            s.iter()
                .any(|rm| instance(rm) == b_instance && has_metric(rm, "from_b"))
        })
        .await;
        // The old target stopped with stale markers.
        wait(&capture, "stale markers of the old target", |s| {
            s.iter().any(|rm| {
                instance(rm) == a_instance
                    && rm.scope_metrics[0].metrics.iter().any(|m| {
                        matches!(&m.data, Some(metric::Data::Gauge(g)) if m.name == "from_a" && g.data_points[0].flags == 1)
                    })
            })
        })
        .await;
        receiver.shutdown().await.unwrap();
    }
}

#[test]
fn otel_scope_labels_choose_the_scope() {
    let body = "# TYPE otel_scope_info gauge
otel_scope_info{otel_scope_name=\"kong\",otel_scope_version=\"3.9\",team=\"edge\"} 1
# TYPE requests_total counter
requests_total{otel_scope_name=\"kong\",otel_scope_version=\"3.9\",route=\"a\"} 1
other 2
";
    let families = parse::parse(body, Format::Prometheus).unwrap();
    let converted = TargetState::default()
        .convert(&families, &target_info(), &Options::default(), 1000)
        .unwrap();
    let rm = super::convert::resource_metrics(
        super::convert::resource(&target_info(), &[]),
        converted.metrics,
        &converted.scope_attributes,
    );
    assert_eq!(rm.scope_metrics.len(), 2);
    let own = rm.scope_metrics[0].scope.as_ref().unwrap();
    assert_eq!(own.name, super::convert::SCOPE_NAME);
    assert_eq!(rm.scope_metrics[0].metrics[0].name, "other");
    let kong = &rm.scope_metrics[1];
    let scope = kong.scope.as_ref().unwrap();
    assert_eq!(
        (scope.name.as_str(), scope.version.as_str()),
        ("kong", "3.9")
    );
    assert_eq!(scope.attributes[0].key, "team");
    assert_eq!(kong.metrics.len(), 1);
    let Some(metric::Data::Sum(s)) = &kong.metrics[0].data else {
        panic!()
    };
    let keys: Vec<&str> = s.data_points[0]
        .attributes
        .iter()
        .map(|a| a.key.as_str())
        .collect();
    assert_eq!(keys, vec!["route"]);
}

#[test]
fn use_start_time_metric_sets_every_cumulative_start() {
    let options = Options {
        start_time_metric: Some(regex::Regex::new("^process_start_time_seconds$").unwrap()),
        ..Options::default()
    };
    let body = "process_start_time_seconds 1700000000.5\n# TYPE c_total counter\nc_total 3\n";
    let mut state = TargetState::default();
    let metrics = convert(&mut state, body, &options, 1_800_000_000_000);
    assert_eq!(values(&metrics, "c_total")[0].0, 1_700_000_000_500_000_000);
    let families = parse::parse("# TYPE c_total counter\nc_total 3\n", Format::Prometheus).unwrap();
    assert_eq!(
        state
            .convert(&families, &target_info(), &options, 0)
            .unwrap_err(),
        super::convert::LimitError::NoStartTimeMetric
    );
}

#[test]
fn trim_metric_suffixes_drops_total_and_units() {
    let options = Options {
        trim_metric_suffixes: true,
        ..Options::default()
    };
    let body = "# TYPE kong_bandwidth_bytes_total counter\nkong_bandwidth_bytes_total 1\n# TYPE g_total gauge\ng_total 1\n";
    let metrics = convert(&mut TargetState::default(), body, &options, 1);
    let names: Vec<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
    // Without a UNIT only `_total` goes, and only from sums.
    assert_eq!(names, vec!["kong_bandwidth_bytes", "g_total"]);
    let om = "# TYPE kong_latency_seconds gauge\n# UNIT kong_latency_seconds seconds\nkong_latency_seconds 1\n# EOF\n";
    let families = parse::parse(om, Format::OpenMetrics).unwrap();
    let converted = TargetState::default()
        .convert(&families, &target_info(), &options, 1)
        .unwrap();
    assert_eq!(converted.metrics[0].1.name, "kong_latency");
    assert_eq!(converted.metrics[0].1.unit, "s");
}

#[tokio::test]
async fn the_seed_receiver_starts_outside_a_cluster_and_stops() {
    use crate::component::{CreateSettings, Host, ReceiverConsumers, ReceiverFactory};
    let mut consumers = ReceiverConsumers::default();
    consumers.set(
        crate::pipeline::Signal::Metrics,
        std::sync::Arc::new(crate::pipeline::Capture::new()),
    );
    let section = yaml(
        "config:
  scrape_configs:
    - job_name: 'otel-collector'
      scrape_interval: 5s
      kubernetes_sd_configs:
        - role: pod
      authorization:
        credentials_file: /var/run/secrets/kubernetes.io/serviceaccount/token
",
    );
    let receiver = super::FACTORY
        .create(
            &CreateSettings {
                id: crate::config::ComponentId::new("prometheus"),
                signal: crate::pipeline::Signal::Metrics,
                pipeline: String::new(),
            },
            &section,
            consumers,
        )
        .unwrap();
    let (_tx, ready) = tokio::sync::watch::channel(true);
    receiver
        .start(&Host {
            ready,
            shutdown: tokio_util::sync::CancellationToken::new(),
            extensions: Default::default(),
        })
        .await
        .unwrap();
    // Without KUBERNETES_SERVICE_HOST discovery logs and yields no targets; nothing breaks.
    tokio::time::sleep(Duration::from_millis(50)).await;
    receiver.shutdown().await.unwrap();
}

#[test]
fn scrape_config_files_add_jobs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kong.yml"),
        "scrape_configs:\n  - job_name: kong\n    static_configs: [{targets: ['k:8100']}]\n",
    )
    .unwrap();
    let c = config(&format!(
        "config:\n  scrape_config_files: ['{}/*.yml']\n  scrape_configs: [{{job_name: a}}]\n",
        dir.path().display()
    ))
    .unwrap();
    let names: Vec<&str> = c
        .config
        .scrape_configs
        .iter()
        .map(|s| s.job_name.as_str())
        .collect();
    assert_eq!(names, vec!["a", "kong"]);
    std::fs::write(
        dir.path().join("dup.yml"),
        "scrape_configs:\n  - job_name: a\n",
    )
    .unwrap();
    let err = config(&format!(
        "config:\n  scrape_config_files: ['{}/*.yml']\n  scrape_configs: [{{job_name: a}}]\n",
        dir.path().display()
    ))
    .unwrap_err();
    assert!(
        err.message.contains("found multiple scrape configs"),
        "{err}"
    );
}

#[test]
fn service_endpoints_and_node_roles() {
    use super::discovery::kubernetes::{endpoints_group, node_group, service_group};
    let svc: serde_json::Value = serde_json::from_str(
        r#"{"metadata":{"name":"kong-proxy","namespace":"kong","labels":{"app":"kong"}},
            "spec":{"type":"ClusterIP","clusterIP":"10.96.0.5","ports":[{"name":"status","port":8100,"protocol":"TCP"}]}}"#,
    )
    .unwrap();
    let g = service_group(&svc);
    assert_eq!(
        g.targets[0].get("__address__"),
        Some("kong-proxy.kong.svc:8100")
    );
    assert_eq!(
        g.targets[0].get("__meta_kubernetes_service_cluster_ip"),
        Some("10.96.0.5")
    );
    assert_eq!(
        g.labels.get("__meta_kubernetes_service_label_app"),
        Some("kong")
    );

    let ep: serde_json::Value = serde_json::from_str(
        r#"{"metadata":{"name":"kong-proxy","namespace":"kong"},
            "subsets":[{"addresses":[{"ip":"10.0.0.7","nodeName":"n1","targetRef":{"kind":"Pod","name":"kong-kong-1"}}],
                        "notReadyAddresses":[{"ip":"10.0.0.8"}],
                        "ports":[{"name":"status","port":8100}]}]}"#,
    )
    .unwrap();
    let g = endpoints_group(&ep);
    assert_eq!(g.targets.len(), 2);
    assert_eq!(g.targets[0].get("__address__"), Some("10.0.0.7:8100"));
    assert_eq!(
        g.targets[0].get("__meta_kubernetes_endpoint_ready"),
        Some("true")
    );
    assert_eq!(
        g.targets[0].get("__meta_kubernetes_endpoint_address_target_name"),
        Some("kong-kong-1")
    );
    assert_eq!(
        g.targets[1].get("__meta_kubernetes_endpoint_ready"),
        Some("false")
    );

    let node: serde_json::Value = serde_json::from_str(
        r#"{"metadata":{"name":"n1","labels":{"kubernetes.io/os":"linux"}},
            "status":{"addresses":[{"type":"Hostname","address":"n1"},{"type":"InternalIP","address":"192.0.2.10"}],
                      "daemonEndpoints":{"kubeletEndpoint":{"Port":10250}}}}"#,
    )
    .unwrap();
    let g = node_group(&node);
    assert_eq!(g.targets[0].get("__address__"), Some("192.0.2.10:10250"));
    assert_eq!(g.targets[0].get("instance"), Some("n1"));
    assert_eq!(
        g.targets[0].get("__meta_kubernetes_node_address_InternalIP"),
        Some("192.0.2.10")
    );
    assert_eq!(
        g.labels
            .get("__meta_kubernetes_node_label_kubernetes_io_os"),
        Some("linux")
    );
}
