//! `receivers::prometheus` settings: the receiver's own keys and, under `config`, a
//! Prometheus 2.54 config file body (`global`, `scrape_configs`, …) decoded strictly.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::relabel::RelabelConfig;
use crate::config::FieldError;

/// `receivers::prometheus`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The Prometheus config.
    pub config: PromConfig,
    /// Strip unit and `_total` suffixes from metric names (experimental; default false).
    pub trim_metric_suffixes: bool,
    /// Take every cumulative's start time from `start_time_metric_regex` (default false).
    pub use_start_time_metric: bool,
    /// Which series gives the start time; default `process_start_time_seconds`.
    pub start_time_metric_regex: String,
    /// Also emit `scrape_timeout_seconds`, `scrape_sample_limit`, `scrape_body_size_bytes`.
    pub report_extra_scrape_metrics: bool,
    /// The OpenTelemetry Operator's target allocator; accepted and ignored.
    pub target_allocator: Option<yaml_serde::Value>,
}

/// A Prometheus config file body.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PromConfig {
    /// Defaults for every scrape config.
    pub global: Global,
    /// What to scrape.
    pub scrape_configs: Vec<ScrapeConfig>,
    /// More files (globs) holding `scrape_configs`.
    pub scrape_config_files: Vec<String>,
    /// Not supported by the receiver.
    pub remote_write: Option<yaml_serde::Value>,
    /// Not supported by the receiver.
    pub remote_read: Option<yaml_serde::Value>,
    /// Not supported by the receiver.
    pub rule_files: Option<yaml_serde::Value>,
    /// Not supported by the receiver (`alertmanagers`, `alert_relabel_configs`).
    pub alerting: Option<BTreeMap<String, yaml_serde::Value>>,
    /// Accepted and ignored (TSDB settings).
    pub storage: Option<yaml_serde::Value>,
    /// Accepted and ignored (Prometheus' own tracing).
    pub tracing: Option<yaml_serde::Value>,
    /// Accepted and ignored.
    pub runtime: Option<yaml_serde::Value>,
}

/// `global`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Global {
    /// Default 1m.
    #[serde(deserialize_with = "prom_duration")]
    pub scrape_interval: Duration,
    /// Default 10s.
    #[serde(deserialize_with = "prom_duration")]
    pub scrape_timeout: Duration,
    /// Accepted (no rules are evaluated).
    #[serde(deserialize_with = "opt_prom_duration")]
    pub evaluation_interval: Option<Duration>,
    /// Default scrape protocols, by preference.
    pub scrape_protocols: Vec<ScrapeProtocol>,
    /// Labels added to every scraped series that does not have them.
    pub external_labels: BTreeMap<String, String>,
    /// Default `body_size_limit` (0 = none).
    #[serde(deserialize_with = "byte_size")]
    pub body_size_limit: u64,
    /// Default `sample_limit` (0 = none).
    pub sample_limit: u64,
    /// Default `target_limit`.
    pub target_limit: u64,
    /// Default `label_limit`.
    pub label_limit: u64,
    /// Default `label_name_length_limit`.
    pub label_name_length_limit: u64,
    /// Default `label_value_length_limit`.
    pub label_value_length_limit: u64,
    /// Accepted and ignored.
    pub keep_dropped_targets: u64,
    /// Accepted and ignored.
    pub query_log_file: Option<String>,
}

impl Default for Global {
    fn default() -> Self {
        Self {
            scrape_interval: Duration::from_secs(60),
            scrape_timeout: Duration::from_secs(10),
            evaluation_interval: None,
            scrape_protocols: ScrapeProtocol::DEFAULT.to_vec(),
            external_labels: BTreeMap::new(),
            body_size_limit: 0,
            sample_limit: 0,
            target_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            keep_dropped_targets: 0,
            query_log_file: None,
        }
    }
}

/// A scrape protocol as `scrape_protocols` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum ScrapeProtocol {
    /// Prometheus protobuf (not parsed here; refused at validation).
    PrometheusProto,
    /// Prometheus text 0.0.4.
    PrometheusText0_0_4,
    /// OpenMetrics 0.0.1.
    OpenMetricsText0_0_1,
    /// OpenMetrics 1.0.0.
    OpenMetricsText1_0_0,
}

impl ScrapeProtocol {
    /// Prometheus 2.54's default without native histograms.
    pub const DEFAULT: [Self; 3] = [
        Self::OpenMetricsText1_0_0,
        Self::OpenMetricsText0_0_1,
        Self::PrometheusText0_0_4,
    ];

    fn media_type(self) -> &'static str {
        match self {
            Self::PrometheusProto => "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited",
            Self::PrometheusText0_0_4 => "text/plain;version=0.0.4",
            Self::OpenMetricsText0_0_1 => "application/openmetrics-text;version=0.0.1",
            Self::OpenMetricsText1_0_0 => "application/openmetrics-text;version=1.0.0",
        }
    }

    /// The `Accept` header Prometheus sends for `protocols`: weights from `0.5` down, then
    /// `*/*`.
    pub fn accept_header(protocols: &[Self]) -> String {
        let mut weight = 5;
        let mut parts = Vec::new();
        for p in protocols {
            parts.push(format!("{};q=0.{weight}", p.media_type()));
            weight -= 1;
        }
        parts.push(format!("*/*;q=0.{weight}"));
        parts.join(",")
    }
}

/// One `scrape_configs` entry. Unknown keys land in `other` and are refused by
/// [`Config::validate`] with a message naming them.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ScrapeConfig {
    /// Required, unique; the `job` label.
    pub job_name: String,
    /// Keep scraped labels that clash with target labels (default false: rename them
    /// `exported_<name>`).
    pub honor_labels: bool,
    /// Use exposed sample timestamps (default true).
    pub honor_timestamps: Option<bool>,
    /// Accepted.
    pub track_timestamps_staleness: bool,
    /// URL query parameters.
    pub params: BTreeMap<String, Vec<String>>,
    /// Default `global.scrape_interval`.
    #[serde(deserialize_with = "opt_prom_duration")]
    pub scrape_interval: Option<Duration>,
    /// Default `global.scrape_timeout` (capped to the interval when only that is set).
    #[serde(deserialize_with = "opt_prom_duration")]
    pub scrape_timeout: Option<Duration>,
    /// Default `global.scrape_protocols`.
    pub scrape_protocols: Option<Vec<ScrapeProtocol>>,
    /// Accepted.
    pub scrape_classic_histograms: bool,
    /// Default `/metrics`.
    pub metrics_path: Option<String>,
    /// `http` (default) or `https`.
    pub scheme: Option<String>,
    /// Ask for gzip (default true).
    pub enable_compression: Option<bool>,
    /// Largest accepted uncompressed body; `0` = none. `10MB`-style sizes.
    #[serde(deserialize_with = "opt_byte_size")]
    pub body_size_limit: Option<u64>,
    /// Most samples (after metric relabelling) per scrape; `0` = none.
    pub sample_limit: Option<u64>,
    /// Accepted.
    pub target_limit: Option<u64>,
    /// Most labels per sample; `0` = none.
    pub label_limit: Option<u64>,
    /// Longest label name; `0` = none.
    pub label_name_length_limit: Option<u64>,
    /// Longest label value; `0` = none.
    pub label_value_length_limit: Option<u64>,
    /// Accepted.
    pub native_histogram_bucket_limit: Option<u64>,
    /// Accepted.
    pub native_histogram_min_bucket_factor: Option<f64>,
    /// Accepted.
    pub keep_dropped_targets: Option<u64>,
    /// Target relabelling.
    pub relabel_configs: Vec<RelabelConfig>,
    /// Sample relabelling.
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// `basic_auth`.
    pub basic_auth: Option<BasicAuth>,
    /// `authorization`.
    pub authorization: Option<Authorization>,
    /// Deprecated `bearer_token`.
    pub bearer_token: Option<String>,
    /// Deprecated `bearer_token_file`.
    pub bearer_token_file: Option<String>,
    /// Not supported (refused at validation).
    pub oauth2: Option<yaml_serde::Value>,
    /// TLS client settings.
    pub tls_config: TlsConfig,
    /// HTTP proxy.
    pub proxy_url: Option<String>,
    /// Accepted.
    pub no_proxy: Option<String>,
    /// Accepted.
    pub proxy_from_environment: bool,
    /// Accepted.
    pub proxy_connect_header: Option<yaml_serde::Value>,
    /// Follow redirects (default true).
    pub follow_redirects: Option<bool>,
    /// Allow HTTP/2 (default true).
    pub enable_http2: Option<bool>,
    /// Extra request headers (`http_headers: {Name: {values: [..]}}`).
    pub http_headers: BTreeMap<String, HeaderValues>,
    /// Fixed targets.
    pub static_configs: Vec<StaticConfig>,
    /// Targets from files.
    pub file_sd_configs: Vec<FileSdConfig>,
    /// Targets from the Kubernetes API.
    pub kubernetes_sd_configs: Vec<KubernetesSdConfig>,
    /// Other Prometheus discoveries, not supported here.
    #[serde(flatten)]
    pub other: BTreeMap<String, yaml_serde::Value>,
}

/// `http_headers` entry.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeaderValues {
    /// Literal values.
    pub values: Vec<String>,
    /// Secret values.
    pub secrets: Vec<String>,
    /// Files holding values.
    pub files: Vec<String>,
}

/// `basic_auth`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// File holding the user name.
    pub username_file: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// File holding the password, re-read each scrape.
    pub password_file: Option<String>,
}

/// `authorization`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Authorization {
    /// Scheme; default `Bearer`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The credentials.
    pub credentials: Option<String>,
    /// File holding the credentials, re-read each scrape.
    pub credentials_file: Option<String>,
}

/// `tls_config`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// CA PEM text.
    pub ca: Option<String>,
    /// CA PEM file.
    pub ca_file: Option<String>,
    /// Client certificate PEM text.
    pub cert: Option<String>,
    /// Client certificate file.
    pub cert_file: Option<String>,
    /// Client key PEM text.
    pub key: Option<String>,
    /// Client key file.
    pub key_file: Option<String>,
    /// SNI / verification name.
    pub server_name: Option<String>,
    /// Skip server verification.
    pub insecure_skip_verify: bool,
    /// Accepted.
    pub min_version: Option<String>,
    /// Accepted.
    pub max_version: Option<String>,
}

/// `static_configs` entry.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StaticConfig {
    /// `host:port` addresses.
    pub targets: Vec<String>,
    /// Labels for every target of the group.
    #[serde(deserialize_with = "crate::config::decode::string_map")]
    pub labels: BTreeMap<String, String>,
}

/// `file_sd_configs` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileSdConfig {
    /// Paths; the last element may hold a `*`-style glob.
    pub files: Vec<String>,
    /// Re-read interval (default 5m); files are also checked for changes every second.
    #[serde(deserialize_with = "prom_duration")]
    pub refresh_interval: Duration,
}

impl Default for FileSdConfig {
    fn default() -> Self {
        Self {
            files: Vec::new(),
            refresh_interval: Duration::from_secs(300),
        }
    }
}

/// `kubernetes_sd_configs` entry.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesSdConfig {
    /// `pod`, `endpoints`, `service`, `node` (required).
    pub role: String,
    /// API server URL; absent with no kubeconfig = in-cluster config.
    pub api_server: Option<String>,
    /// kubeconfig path.
    pub kubeconfig_file: Option<String>,
    /// Which namespaces (default all).
    pub namespaces: Namespaces,
    /// Label / field selectors per role.
    pub selectors: Vec<Selector>,
    /// Accepted.
    pub attach_metadata: Option<yaml_serde::Value>,
    /// `basic_auth` towards the API server.
    pub basic_auth: Option<BasicAuth>,
    /// `authorization` towards the API server.
    pub authorization: Option<Authorization>,
    /// Deprecated `bearer_token`.
    pub bearer_token: Option<String>,
    /// Deprecated `bearer_token_file`.
    pub bearer_token_file: Option<String>,
    /// Not supported.
    pub oauth2: Option<yaml_serde::Value>,
    /// TLS towards the API server.
    pub tls_config: TlsConfig,
    /// Accepted.
    pub proxy_url: Option<String>,
    /// Accepted.
    pub no_proxy: Option<String>,
    /// Accepted.
    pub proxy_from_environment: bool,
    /// Accepted.
    pub proxy_connect_header: Option<yaml_serde::Value>,
    /// Accepted.
    pub follow_redirects: Option<bool>,
    /// Accepted.
    pub enable_http2: Option<bool>,
    /// Accepted.
    pub http_headers: Option<yaml_serde::Value>,
}

/// `namespaces`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Namespaces {
    /// Explicit names.
    pub names: Vec<String>,
    /// Also the collector's own namespace (from the service account).
    pub own_namespace: bool,
}

/// `selectors` entry.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Selector {
    /// Which role's objects the selector applies to.
    pub role: String,
    /// `labelSelector`.
    pub label: Option<String>,
    /// `fieldSelector`.
    pub field: Option<String>,
}

/// A scrape config with every default applied.
#[derive(Clone, Debug)]
pub struct Job {
    /// The config as written.
    pub config: ScrapeConfig,
    /// Interval between scrapes.
    pub interval: Duration,
    /// Per-scrape timeout.
    pub timeout: Duration,
    /// Path.
    pub metrics_path: String,
    /// `http` / `https`.
    pub scheme: String,
    /// Honour exposed timestamps.
    pub honor_timestamps: bool,
    /// Body limit, bytes; 0 = none.
    pub body_size_limit: u64,
    /// Sample limit; 0 = none.
    pub sample_limit: u64,
    /// Label count limit; 0 = none.
    pub label_limit: u64,
    /// Label name length limit; 0 = none.
    pub label_name_length_limit: u64,
    /// Label value length limit; 0 = none.
    pub label_value_length_limit: u64,
    /// The `Accept` header.
    pub accept: String,
    /// Ask for gzip.
    pub compression: bool,
}

const KNOWN_SDS: &[&str] = &[
    "azure_sd_configs",
    "consul_sd_configs",
    "digitalocean_sd_configs",
    "docker_sd_configs",
    "dockerswarm_sd_configs",
    "dns_sd_configs",
    "ec2_sd_configs",
    "eureka_sd_configs",
    "gce_sd_configs",
    "hetzner_sd_configs",
    "http_sd_configs",
    "ionos_sd_configs",
    "kuma_sd_configs",
    "lightsail_sd_configs",
    "linode_sd_configs",
    "marathon_sd_configs",
    "nerve_sd_configs",
    "nomad_sd_configs",
    "openstack_sd_configs",
    "ovhcloud_sd_configs",
    "puppetdb_sd_configs",
    "scaleway_sd_configs",
    "serverset_sd_configs",
    "triton_sd_configs",
    "uyuni_sd_configs",
    "vultr_sd_configs",
];

impl Config {
    /// Checks what otelcol checks at validation time.
    ///
    /// # Errors
    /// The first problem, located by key path.
    pub fn validate(&self) -> Result<(), FieldError> {
        let prom = &self.config;
        let mut unsupported = Vec::new();
        if prom.remote_write.is_some() {
            unsupported.push("remote_write");
        }
        if prom.remote_read.is_some() {
            unsupported.push("remote_read");
        }
        if prom.rule_files.is_some() {
            unsupported.push("rule_files");
        }
        if let Some(alerting) = &prom.alerting {
            if alerting.contains_key("alertmanagers") {
                unsupported.push("alerting.alertmanagers");
            }
            if alerting.contains_key("alert_relabel_configs") {
                unsupported.push("alerting.alert_relabel_configs");
            }
        }
        if !unsupported.is_empty() {
            return Err(FieldError::at(
                &["config"],
                format!("unsupported features:\n\t{}", unsupported.join("\n\t")),
            ));
        }
        if prom.scrape_configs.is_empty()
            && prom.scrape_config_files.is_empty()
            && self.target_allocator.is_none()
        {
            return Err(FieldError::new(
                "no Prometheus scrape_configs or target_allocator set",
            ));
        }
        if prom.global.scrape_timeout > prom.global.scrape_interval {
            return Err(FieldError::at(
                &["config", "global", "scrape_timeout"],
                "global scrape timeout greater than scrape interval",
            ));
        }
        for p in &prom.global.scrape_protocols {
            if *p == ScrapeProtocol::PrometheusProto {
                return Err(FieldError::at(
                    &["config", "global", "scrape_protocols"],
                    "PrometheusProto is not supported; use the text protocols",
                ));
            }
        }
        if self.use_start_time_metric && !self.start_time_metric_regex.is_empty() {
            regex::Regex::new(&self.start_time_metric_regex).map_err(|e| {
                FieldError::at(&["start_time_metric_regex"], format!("invalid regex: {e}"))
            })?;
        }
        let mut names = std::collections::HashSet::new();
        for (i, sc) in prom.scrape_configs.iter().enumerate() {
            let err = |field: &str, message: String| {
                let mut path = vec![
                    "config".to_owned(),
                    "scrape_configs".to_owned(),
                    i.to_string(),
                ];
                if !field.is_empty() {
                    path.push(field.to_owned());
                }
                FieldError { path, message }
            };
            if sc.job_name.is_empty() {
                return Err(err("job_name", "job_name is empty".to_owned()));
            }
            if !names.insert(sc.job_name.clone()) {
                return Err(err(
                    "job_name",
                    format!(
                        "found multiple scrape configs with job name {:?}",
                        sc.job_name
                    ),
                ));
            }
            let job = self.job(sc);
            if job.timeout > job.interval {
                return Err(err(
                    "scrape_timeout",
                    format!(
                        "scrape timeout greater than scrape interval for scrape config with job name {:?}",
                        sc.job_name
                    ),
                ));
            }
            if job.scheme != "http" && job.scheme != "https" {
                return Err(err(
                    "scheme",
                    format!(
                        "unsupported scheme {:?}; expected http or https",
                        job.scheme
                    ),
                ));
            }
            if let Some(protocols) = &sc.scrape_protocols {
                if protocols.contains(&ScrapeProtocol::PrometheusProto) {
                    return Err(err(
                        "scrape_protocols",
                        "PrometheusProto is not supported; use the text protocols".to_owned(),
                    ));
                }
            }
            if sc.oauth2.is_some() {
                return Err(err("oauth2", "oauth2 is not supported".to_owned()));
            }
            let auths = usize::from(sc.basic_auth.is_some())
                + usize::from(sc.authorization.is_some())
                + usize::from(sc.bearer_token.is_some() || sc.bearer_token_file.is_some());
            if auths > 1 {
                return Err(err(
                    "",
                    "at most one of basic_auth, authorization & bearer_token must be configured"
                        .to_owned(),
                ));
            }
            if let Some(a) = &sc.authorization {
                if a.credentials.is_some() && a.credentials_file.is_some() {
                    return Err(err(
                        "authorization",
                        "authorization is not valid: at most one of credentials & credentials_file must be configured".to_owned(),
                    ));
                }
                if a.kind
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case("basic"))
                {
                    return Err(err(
                        "authorization",
                        "authorization type cannot be set to \"basic\", use \"basic_auth\" instead"
                            .to_owned(),
                    ));
                }
            }
            if let Some(key) = sc.other.keys().next() {
                let message = if KNOWN_SDS.contains(&key.as_str()) {
                    format!("{key} is not supported; use static_configs, file_sd_configs or kubernetes_sd_configs")
                } else {
                    format!("unknown field `{key}`")
                };
                return Err(err(key, message));
            }
            for (j, rc) in sc.relabel_configs.iter().enumerate() {
                rc.validate()
                    .map_err(|m| err("relabel_configs", m).under_index(j))?;
            }
            for (j, rc) in sc.metric_relabel_configs.iter().enumerate() {
                rc.validate()
                    .map_err(|m| err("metric_relabel_configs", m).under_index(j))?;
            }
            for (j, k) in sc.kubernetes_sd_configs.iter().enumerate() {
                if !matches!(
                    k.role.as_str(),
                    "pod" | "endpoints" | "endpointslice" | "service" | "node" | "ingress"
                ) {
                    return Err(err(
                        "kubernetes_sd_configs",
                        format!("role: unknown Kubernetes SD role {:?}", k.role),
                    )
                    .under_index(j));
                }
                if matches!(k.role.as_str(), "endpointslice" | "ingress") {
                    return Err(err(
                        "kubernetes_sd_configs",
                        format!(
                            "role: {:?} is not supported; use pod, endpoints, service or node",
                            k.role
                        ),
                    )
                    .under_index(j));
                }
                if k.api_server.is_some() && k.kubeconfig_file.is_some() {
                    return Err(err(
                        "kubernetes_sd_configs",
                        "cannot use 'kubeconfig_file' and 'api_server' simultaneously".to_owned(),
                    )
                    .under_index(j));
                }
                for s in &k.selectors {
                    if !matches!(
                        s.role.as_str(),
                        "pod" | "endpoints" | "endpointslice" | "service" | "node" | "ingress"
                    ) {
                        return Err(err(
                            "kubernetes_sd_configs",
                            format!("selectors: invalid role {:?}", s.role),
                        )
                        .under_index(j));
                    }
                }
            }
        }
        Ok(())
    }

    /// `sc` with the global defaults applied.
    pub fn job(&self, sc: &ScrapeConfig) -> Job {
        let g = &self.config.global;
        let interval = sc.scrape_interval.unwrap_or(g.scrape_interval);
        // Prometheus caps the default timeout to a shorter interval.
        let timeout = sc
            .scrape_timeout
            .unwrap_or_else(|| g.scrape_timeout.min(interval));
        Job {
            config: sc.clone(),
            interval,
            timeout,
            metrics_path: sc
                .metrics_path
                .clone()
                .unwrap_or_else(|| "/metrics".to_owned()),
            scheme: sc.scheme.clone().unwrap_or_else(|| "http".to_owned()),
            honor_timestamps: sc.honor_timestamps.unwrap_or(true),
            body_size_limit: sc.body_size_limit.unwrap_or(g.body_size_limit),
            sample_limit: sc.sample_limit.unwrap_or(g.sample_limit),
            label_limit: sc.label_limit.unwrap_or(g.label_limit),
            label_name_length_limit: sc
                .label_name_length_limit
                .unwrap_or(g.label_name_length_limit),
            label_value_length_limit: sc
                .label_value_length_limit
                .unwrap_or(g.label_value_length_limit),
            accept: ScrapeProtocol::accept_header(
                sc.scrape_protocols
                    .as_deref()
                    .unwrap_or(&g.scrape_protocols),
            ),
            compression: sc.enable_compression.unwrap_or(true),
        }
    }
}

trait UnderIndex {
    fn under_index(self, index: usize) -> Self;
}

impl UnderIndex for FieldError {
    /// Inserts a list index after the last segment (`relabel_configs` → `relabel_configs::2`).
    fn under_index(mut self, index: usize) -> Self {
        self.path.push(index.to_string());
        self
    }
}

/// Parses a Prometheus duration: `1y2w3d4h5m6s7ms` parts in that order, or `0`.
///
/// # Errors
/// A message naming the text.
pub fn parse_prom_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("not a valid duration string: {text:?}");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err("empty duration string".to_owned());
    }
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3600 * 1000),
        ("w", 7 * 24 * 3600 * 1000),
        ("d", 24 * 3600 * 1000),
        ("h", 3600 * 1000),
        ("m", 60 * 1000),
        ("s", 1000),
        ("ms", 1),
    ];
    let mut rest = text;
    let mut next_unit = 0;
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let at = UNITS[next_unit..]
            .iter()
            .position(|(u, _)| *u == unit)
            .ok_or_else(bad)?
            + next_unit;
        total = n
            .checked_mul(UNITS[at].1)
            .and_then(|v| v.checked_add(total))
            .ok_or_else(bad)?;
        next_unit = at + 1;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_millis(total))
}

/// Parses a size such as `10MB`, `512KiB`, `1GB` (base 2, as Prometheus' `body_size_limit`)
/// or a plain byte count.
///
/// # Errors
/// A message naming the text.
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if let Ok(n) = t.parse::<u64>() {
        return Ok(n);
    }
    let split = t
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("invalid size {text:?}"))?;
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("invalid size {text:?}"))?;
    let shift = match unit {
        "B" => 0,
        "KB" | "KiB" => 10,
        "MB" | "MiB" => 20,
        "GB" | "GiB" => 30,
        "TB" | "TiB" => 40,
        "PB" | "PiB" => 50,
        "EB" | "EiB" => 60,
        _ => return Err(format!("invalid size {text:?}")),
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("size {text:?} too large"))
}

fn scalar_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Option::<yaml_serde::Value>::deserialize(d)?;
    Ok(match value {
        None | Some(yaml_serde::Value::Null) => None,
        Some(yaml_serde::Value::String(s)) => Some(s),
        Some(yaml_serde::Value::Number(n)) => Some(n.to_string()),
        Some(yaml_serde::Value::Bool(b)) => Some(b.to_string()),
        Some(_) => return Err(serde::de::Error::custom("expected a string")),
    })
}

fn prom_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = scalar_text(d)?.unwrap_or_default();
    parse_prom_duration(&text).map_err(serde::de::Error::custom)
}

fn opt_prom_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    scalar_text(d)?
        .map(|t| parse_prom_duration(&t).map_err(serde::de::Error::custom))
        .transpose()
}

fn byte_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(opt_byte_size(d)?.unwrap_or(0))
}

fn opt_byte_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    scalar_text(d)?
        .map(|t| parse_byte_size(&t).map_err(serde::de::Error::custom))
        .transpose()
}

/// Deserializes a scalar (string, number, bool) as its text: `regex: 8100` is `"8100"`.
///
/// # Errors
/// A list or map.
pub fn string_like<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    scalar_text(d)
}
