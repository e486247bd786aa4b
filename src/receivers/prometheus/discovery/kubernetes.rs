//! `kubernetes_sd_configs`: targets from the Kubernetes API by list + watch, roles `pod`,
//! `service`, `endpoints` and `node`, with Prometheus' `__meta_kubernetes_*` labels.
//!
//! The API server is `api_server`, the current context of `kubeconfig_file`, or the
//! in-cluster service (`KUBERNETES_SERVICE_HOST`/`_PORT`, the service-account token re-read
//! on every request, its CA). Each namespace (or all) is listed, then watched from the
//! list's `resourceVersion`; a watch that ends is resumed, a `410 Gone` or an error re-lists
//! after a pause. A failure is logged and leaves the last known targets in place.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{TargetGroup, Update};
use crate::receivers::prometheus::config::{KubernetesSdConfig, TlsConfig};
use crate::receivers::prometheus::labels::Labels;
use crate::receivers::prometheus::scrape;

const SERVICE_ACCOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
const RETRY: Duration = Duration::from_secs(5);
/// Largest single watch event line.
const MAX_EVENT_BYTES: usize = 16 << 20;
/// How long one watch request lasts before it is renewed.
const WATCH_SECONDS: u64 = 300;

/// Why discovery could not start or a request failed.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// No way to reach an API server.
    #[error("unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined")]
    NotInCluster,
    /// The kubeconfig file is unusable.
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A request failed.
    #[error("{0}")]
    Request(String),
    /// The API answered an error status (RBAC, say).
    #[error("{status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The API's message.
        message: String,
    },
}

/// How to reach the API server.
#[derive(Clone)]
struct Api {
    base: String,
    client: reqwest::Client,
    token: Option<Token>,
}

#[derive(Clone)]
enum Token {
    Fixed(String),
    File(String),
}

impl Api {
    fn auth(&self) -> Option<String> {
        match &self.token {
            Some(Token::Fixed(t)) => Some(format!("Bearer {t}")),
            Some(Token::File(f)) => std::fs::read_to_string(f)
                .ok()
                .map(|t| format!("Bearer {}", t.trim())),
            None => None,
        }
    }

    async fn get(
        &self,
        path: &str,
        query: &[(String, String)],
    ) -> Result<reqwest::Response, KubeError> {
        let mut url = format!("{}{path}", self.base);
        if !query.is_empty() {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (k, v) in query {
                q.append_pair(k, v);
            }
            url.push('?');
            url.push_str(&q.finish());
        }
        let mut request = self.client.get(url);
        if let Some(auth) = self.auth() {
            request = request.header(http::header::AUTHORIZATION, auth);
        }
        let response = request
            .send()
            .await
            .map_err(|e| KubeError::Request(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            let message = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_owned))
                .unwrap_or(body);
            return Err(KubeError::Status {
                status: status.as_u16(),
                message,
            });
        }
        Ok(response)
    }
}

fn client(
    tls: &TlsConfig,
    insecure: bool,
    ca_pem: Option<Vec<u8>>,
) -> Result<reqwest::Client, KubeError> {
    crate::tls::install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .no_proxy();
    builder = scrape::tls(builder, tls).map_err(|e| KubeError::Request(e.to_string()))?;
    if let Some(pem) = ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| KubeError::Request(format!("invalid CA certificate: {e}")))?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if insecure {
        builder = builder.danger_accept_invalid_certs(true);
    }
    builder
        .build()
        .map_err(|e| KubeError::Request(e.to_string()))
}

fn api(config: &KubernetesSdConfig) -> Result<(Api, Option<String>), KubeError> {
    if let Some(server) = &config.api_server {
        let token = match (
            &config.authorization,
            &config.bearer_token,
            &config.bearer_token_file,
        ) {
            (Some(a), _, _) => match (&a.credentials_file, &a.credentials) {
                (Some(f), _) => Some(Token::File(f.clone())),
                (None, Some(c)) => Some(Token::Fixed(c.clone())),
                _ => None,
            },
            (None, Some(t), _) => Some(Token::Fixed(t.clone())),
            (None, None, Some(f)) => Some(Token::File(f.clone())),
            (None, None, None) => None,
        };
        let client = client(&config.tls_config, false, None)?;
        return Ok((
            Api {
                base: server.trim_end_matches('/').to_owned(),
                client,
                token,
            },
            None,
        ));
    }
    if let Some(path) = &config.kubeconfig_file {
        return kubeconfig(path);
    }
    let (Ok(host), Ok(port)) = (
        std::env::var("KUBERNETES_SERVICE_HOST"),
        std::env::var("KUBERNETES_SERVICE_PORT"),
    ) else {
        return Err(KubeError::NotInCluster);
    };
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    let ca = std::fs::read(format!("{SERVICE_ACCOUNT}/ca.crt")).ok();
    let client = client(&config.tls_config, false, ca)?;
    let own = std::fs::read_to_string(format!("{SERVICE_ACCOUNT}/namespace"))
        .ok()
        .map(|s| s.trim().to_owned());
    Ok((
        Api {
            base: format!("https://{host}:{port}"),
            client,
            token: Some(Token::File(format!("{SERVICE_ACCOUNT}/token"))),
        },
        own,
    ))
}

fn kubeconfig(path: &str) -> Result<(Api, Option<String>), KubeError> {
    let bad = |message: String| KubeError::Kubeconfig {
        path: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let doc: yaml_serde::Value = yaml_serde::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let current = doc["current-context"].as_str().unwrap_or_default();
    let named = |list: &str, name: &str, field: &str| -> Option<yaml_serde::Value> {
        doc[list]
            .as_sequence()?
            .iter()
            .find(|e| e["name"].as_str() == Some(name))
            .map(|e| e[field].clone())
    };
    let context = named("contexts", current, "context")
        .ok_or_else(|| bad(format!("context {current:?} not found")))?;
    let cluster_name = context["cluster"].as_str().unwrap_or_default();
    let cluster = named("clusters", cluster_name, "cluster")
        .ok_or_else(|| bad(format!("cluster {cluster_name:?} not found")))?;
    let user = context["user"]
        .as_str()
        .and_then(|u| named("users", u, "user"))
        .unwrap_or(yaml_serde::Value::Null);
    let server = cluster["server"]
        .as_str()
        .ok_or_else(|| bad("cluster has no server".to_owned()))?;
    let b64 = |v: &yaml_serde::Value| -> Option<Vec<u8>> {
        use base64::Engine as _;
        v.as_str()
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
    };
    let ca = b64(&cluster["certificate-authority-data"]).or_else(|| {
        cluster["certificate-authority"]
            .as_str()
            .and_then(|f| std::fs::read(f).ok())
    });
    let mut tls = TlsConfig::default();
    if let (Some(c), Some(k)) = (
        b64(&user["client-certificate-data"]),
        b64(&user["client-key-data"]),
    ) {
        tls.cert = Some(String::from_utf8_lossy(&c).into_owned());
        tls.key = Some(String::from_utf8_lossy(&k).into_owned());
    }
    tls.cert_file = user["client-certificate"].as_str().map(str::to_owned);
    tls.key_file = user["client-key"].as_str().map(str::to_owned);
    let insecure = cluster["insecure-skip-tls-verify"]
        .as_bool()
        .unwrap_or(false);
    let token = user["token"]
        .as_str()
        .map(|t| Token::Fixed(t.to_owned()))
        .or_else(|| {
            user["tokenFile"]
                .as_str()
                .map(|f| Token::File(f.to_owned()))
        });
    let client = client(&tls, insecure, ca)?;
    Ok((
        Api {
            base: server.trim_end_matches('/').to_owned(),
            client,
            token,
        },
        context["namespace"].as_str().map(str::to_owned),
    ))
}

/// Replaces every character outside `[a-zA-Z0-9_]` with `_`.
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn str_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

fn map_labels(labels: &mut Labels, prefix: &str, map: &Value) {
    if let Some(map) = map.as_object() {
        for (k, v) in map {
            let name = sanitize(k);
            labels.set(&format!("{prefix}_{name}"), str_of(v));
            labels.set(&format!("{prefix}present_{name}"), "true".to_owned());
        }
    }
}

const META: &str = "__meta_kubernetes_";

/// The target group of one pod, as Prometheus' pod role builds it.
pub fn pod_group(pod: &Value) -> TargetGroup {
    let meta = &pod["metadata"];
    let ns = str_of(&meta["namespace"]);
    let name = str_of(&meta["name"]);
    let mut labels = Labels::new();
    labels.set(&format!("{META}namespace"), ns.clone());
    labels.set(&format!("{META}pod_name"), name.clone());
    let ip = str_of(&pod["status"]["podIP"]);
    labels.set(&format!("{META}pod_ip"), ip.clone());
    let ready = pod["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .map_or_else(
            || "unknown".to_owned(),
            |c| str_of(&c["status"]).to_lowercase(),
        );
    labels.set(&format!("{META}pod_ready"), ready);
    labels.set(&format!("{META}pod_phase"), str_of(&pod["status"]["phase"]));
    labels.set(
        &format!("{META}pod_node_name"),
        str_of(&pod["spec"]["nodeName"]),
    );
    labels.set(
        &format!("{META}pod_host_ip"),
        str_of(&pod["status"]["hostIP"]),
    );
    labels.set(&format!("{META}pod_uid"), str_of(&meta["uid"]));
    if let Some(owner) = meta["ownerReferences"]
        .as_array()
        .and_then(|o| o.iter().find(|o| o["controller"] == true))
    {
        labels.set(
            &format!("{META}pod_controller_kind"),
            str_of(&owner["kind"]),
        );
        labels.set(
            &format!("{META}pod_controller_name"),
            str_of(&owner["name"]),
        );
    }
    map_labels(&mut labels, &format!("{META}pod_label"), &meta["labels"]);
    map_labels(
        &mut labels,
        &format!("{META}pod_annotation"),
        &meta["annotations"],
    );
    let mut targets = Vec::new();
    if !ip.is_empty() {
        let statuses: Vec<&Value> = ["containerStatuses", "initContainerStatuses"]
            .iter()
            .filter_map(|k| pod["status"][k].as_array())
            .flatten()
            .collect();
        let containers = pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| (c, false));
        let inits = pod["spec"]["initContainers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| (c, true));
        for (c, init) in containers.chain(inits) {
            let cname = str_of(&c["name"]);
            let id = statuses
                .iter()
                .find(|s| s["name"].as_str() == Some(&cname))
                .map(|s| str_of(&s["containerID"]))
                .unwrap_or_default();
            let base = |address: String| {
                let mut t = Labels::new();
                t.set("__address__", address);
                t.set(&format!("{META}pod_container_name"), cname.clone());
                t.set(&format!("{META}pod_container_image"), str_of(&c["image"]));
                t.set(&format!("{META}pod_container_id"), id.clone());
                t.set(&format!("{META}pod_container_init"), init.to_string());
                t
            };
            let ports = c["ports"].as_array().filter(|p| !p.is_empty());
            match ports {
                None => targets.push(base(ip.clone())),
                Some(ports) => {
                    for p in ports {
                        let number = str_of(&p["containerPort"]);
                        let mut t = base(join_host_port(&ip, &number));
                        t.set(&format!("{META}pod_container_port_number"), number);
                        t.set(
                            &format!("{META}pod_container_port_name"),
                            str_of(&p["name"]),
                        );
                        let protocol = p["protocol"].as_str().unwrap_or("TCP").to_owned();
                        t.set(&format!("{META}pod_container_port_protocol"), protocol);
                        targets.push(t);
                    }
                }
            }
        }
    }
    TargetGroup {
        source: format!("pod/{ns}/{name}"),
        targets,
        labels,
    }
}

fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The target group of one service: one target per port at `<name>.<ns>.svc:<port>`.
pub fn service_group(svc: &Value) -> TargetGroup {
    let meta = &svc["metadata"];
    let ns = str_of(&meta["namespace"]);
    let name = str_of(&meta["name"]);
    let mut labels = Labels::new();
    labels.set(&format!("{META}namespace"), ns.clone());
    labels.set(&format!("{META}service_name"), name.clone());
    map_labels(
        &mut labels,
        &format!("{META}service_label"),
        &meta["labels"],
    );
    map_labels(
        &mut labels,
        &format!("{META}service_annotation"),
        &meta["annotations"],
    );
    let spec = &svc["spec"];
    let kind = str_of(&spec["type"]);
    let mut targets = Vec::new();
    for p in spec["ports"].as_array().into_iter().flatten() {
        let number = str_of(&p["port"]);
        let mut t = Labels::new();
        t.set("__address__", format!("{name}.{ns}.svc:{number}"));
        t.set(&format!("{META}service_port_name"), str_of(&p["name"]));
        t.set(&format!("{META}service_port_number"), number);
        t.set(
            &format!("{META}service_port_protocol"),
            p["protocol"].as_str().unwrap_or("TCP").to_owned(),
        );
        t.set(&format!("{META}service_type"), kind.clone());
        if kind == "ExternalName" {
            t.set(
                &format!("{META}service_external_name"),
                str_of(&spec["externalName"]),
            );
        } else {
            t.set(
                &format!("{META}service_cluster_ip"),
                str_of(&spec["clusterIP"]),
            );
        }
        targets.push(t);
    }
    TargetGroup {
        source: format!("svc/{ns}/{name}"),
        targets,
        labels,
    }
}

/// The target group of one node: its kubelet at the preferred address.
pub fn node_group(node: &Value) -> TargetGroup {
    let meta = &node["metadata"];
    let name = str_of(&meta["name"]);
    let mut labels = Labels::new();
    labels.set(&format!("{META}node_name"), name.clone());
    labels.set(
        &format!("{META}node_provider_id"),
        str_of(&node["spec"]["providerID"]),
    );
    map_labels(&mut labels, &format!("{META}node_label"), &meta["labels"]);
    map_labels(
        &mut labels,
        &format!("{META}node_annotation"),
        &meta["annotations"],
    );
    let addresses: Vec<(String, String)> = node["status"]["addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| (str_of(&a["type"]), str_of(&a["address"])))
        .collect();
    let mut targets = Vec::new();
    let preferred = [
        "InternalIP",
        "InternalDNS",
        "ExternalIP",
        "ExternalDNS",
        "Hostname",
    ]
    .iter()
    .find_map(|kind| {
        addresses
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, a)| a.clone())
    });
    if let Some(address) = preferred {
        let port = str_of(&node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]);
        let mut t = Labels::new();
        t.set("__address__", join_host_port(&address, &port));
        t.set("instance", name.clone());
        for (kind, addr) in &addresses {
            let key = format!("{META}node_address_{}", sanitize(kind));
            if t.get(&key).is_none() {
                t.set(&key, addr.clone());
            }
        }
        targets.push(t);
    }
    TargetGroup {
        source: format!("node/{name}"),
        targets,
        labels,
    }
}

/// The target group of one Endpoints object: one target per address and port.
pub fn endpoints_group(ep: &Value) -> TargetGroup {
    let meta = &ep["metadata"];
    let ns = str_of(&meta["namespace"]);
    let name = str_of(&meta["name"]);
    let mut labels = Labels::new();
    labels.set(&format!("{META}namespace"), ns.clone());
    labels.set(&format!("{META}endpoints_name"), name.clone());
    map_labels(
        &mut labels,
        &format!("{META}endpoints_label"),
        &meta["labels"],
    );
    let mut targets = Vec::new();
    for subset in ep["subsets"].as_array().into_iter().flatten() {
        for port in subset["ports"].as_array().into_iter().flatten() {
            for (key, ready) in [("addresses", "true"), ("notReadyAddresses", "false")] {
                for a in subset[key].as_array().into_iter().flatten() {
                    let ip = str_of(&a["ip"]);
                    let mut t = Labels::new();
                    t.set("__address__", join_host_port(&ip, &str_of(&port["port"])));
                    t.set(&format!("{META}endpoint_port_name"), str_of(&port["name"]));
                    t.set(
                        &format!("{META}endpoint_port_protocol"),
                        port["protocol"].as_str().unwrap_or("TCP").to_owned(),
                    );
                    t.set(&format!("{META}endpoint_ready"), ready.to_owned());
                    if let Some(h) = a["hostname"].as_str() {
                        t.set(&format!("{META}endpoint_hostname"), h.to_owned());
                    }
                    if let Some(n) = a["nodeName"].as_str() {
                        t.set(&format!("{META}endpoint_node_name"), n.to_owned());
                    }
                    if a["targetRef"].is_object() {
                        t.set(
                            &format!("{META}endpoint_address_target_kind"),
                            str_of(&a["targetRef"]["kind"]),
                        );
                        t.set(
                            &format!("{META}endpoint_address_target_name"),
                            str_of(&a["targetRef"]["name"]),
                        );
                    }
                    targets.push(t);
                }
            }
        }
    }
    TargetGroup {
        source: format!("endpoints/{ns}/{name}"),
        targets,
        labels,
    }
}

fn resource(role: &str) -> (&'static str, bool, fn(&Value) -> TargetGroup) {
    match role {
        "service" => ("services", true, service_group),
        "endpoints" => ("endpoints", true, endpoints_group),
        "node" => ("nodes", false, node_group),
        _ => ("pods", true, pod_group),
    }
}

/// Runs discovery for one `kubernetes_sd_configs` entry until `stop`.
pub async fn run(
    index: usize,
    job: String,
    config: KubernetesSdConfig,
    tx: mpsc::Sender<Update>,
    stop: CancellationToken,
) {
    let (api, own_namespace) = match api(&config) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(job = %job, error = %e, "Cannot create service discovery");
            return;
        }
    };
    let (kind, namespaced, build) = resource(&config.role);
    let mut namespaces: Vec<String> = config.namespaces.names.clone();
    if config.namespaces.own_namespace {
        if let Some(own) = own_namespace {
            namespaces.push(own);
        }
    }
    if namespaces.is_empty() || !namespaced {
        namespaces = vec![String::new()];
    }
    let selector = config.selectors.iter().find(|s| s.role == config.role);
    let mut query = Vec::new();
    if let Some(l) = selector.and_then(|s| s.label.clone()) {
        query.push(("labelSelector".to_owned(), l));
    }
    if let Some(f) = selector.and_then(|s| s.field.clone()) {
        query.push(("fieldSelector".to_owned(), f));
    }
    let (events_tx, mut events_rx) = mpsc::channel::<(usize, BTreeMap<String, TargetGroup>)>(16);
    for (i, ns) in namespaces.iter().enumerate() {
        let path = if ns.is_empty() {
            format!("/api/v1/{kind}")
        } else {
            format!("/api/v1/namespaces/{ns}/{kind}")
        };
        tokio::spawn(watch_path(
            i,
            api.clone(),
            path,
            query.clone(),
            build,
            events_tx.clone(),
            stop.clone(),
        ));
    }
    drop(events_tx);
    let mut per_namespace: BTreeMap<usize, BTreeMap<String, TargetGroup>> = BTreeMap::new();
    while let Some((i, groups)) = events_rx.recv().await {
        per_namespace.insert(i, groups);
        let all: Vec<TargetGroup> = per_namespace
            .values()
            .flat_map(|g| g.values().cloned())
            .collect();
        if tx.send((index, all)).await.is_err() {
            return;
        }
    }
}

fn key_of(obj: &Value) -> String {
    format!(
        "{}/{}",
        str_of(&obj["metadata"]["namespace"]),
        str_of(&obj["metadata"]["name"])
    )
}

async fn watch_path(
    i: usize,
    api: Api,
    path: String,
    query: Vec<(String, String)>,
    build: fn(&Value) -> TargetGroup,
    tx: mpsc::Sender<(usize, BTreeMap<String, TargetGroup>)>,
    stop: CancellationToken,
) {
    loop {
        let listed = tokio::select! {
            () = stop.cancelled() => return,
            r = list(&api, &path, &query, build) => r,
        };
        let (mut known, mut version) = match listed {
            Ok((groups, version)) => {
                if tx.send((i, groups.clone())).await.is_err() {
                    return;
                }
                (groups, version)
            }
            Err(e) => {
                tracing::error!(path = %path, error = %e, "Kubernetes list failed");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(RETRY) => continue,
                }
            }
        };
        // Watch until the server says the version is gone or an error happens; a watch that
        // simply ends is resumed from the last version seen.
        loop {
            let result = tokio::select! {
                () = stop.cancelled() => return,
                r = watch(&api, &path, &query, &version, build, &mut known, &tx, i) => r,
            };
            match result {
                Ok(Some(v)) => version = v,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(path = %path, error = %e, "Kubernetes watch failed");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(RETRY) => {}
                    }
                    break;
                }
            }
        }
    }
}

async fn list(
    api: &Api,
    path: &str,
    query: &[(String, String)],
    build: fn(&Value) -> TargetGroup,
) -> Result<(BTreeMap<String, TargetGroup>, String), KubeError> {
    let response = api.get(path, query).await?;
    let body = response
        .bytes()
        .await
        .map_err(|e| KubeError::Request(e.to_string()))?;
    let list: Value = serde_json::from_slice(&body)
        .map_err(|e| KubeError::Request(format!("invalid list response: {e}")))?;
    let version = str_of(&list["metadata"]["resourceVersion"]);
    let groups = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| (key_of(item), build(item)))
        .collect();
    Ok((groups, version))
}

/// One watch request. `Ok(Some(version))`: ended normally, resume from `version`;
/// `Ok(None)`: re-list (410 Gone).
#[allow(clippy::too_many_arguments)]
async fn watch(
    api: &Api,
    path: &str,
    query: &[(String, String)],
    version: &str,
    build: fn(&Value) -> TargetGroup,
    known: &mut BTreeMap<String, TargetGroup>,
    tx: &mpsc::Sender<(usize, BTreeMap<String, TargetGroup>)>,
    i: usize,
) -> Result<Option<String>, KubeError> {
    let mut q = query.to_vec();
    q.push(("watch".to_owned(), "true".to_owned()));
    q.push(("resourceVersion".to_owned(), version.to_owned()));
    q.push(("allowWatchBookmarks".to_owned(), "true".to_owned()));
    q.push(("timeoutSeconds".to_owned(), WATCH_SECONDS.to_string()));
    let mut response = match api.get(path, &q).await {
        Err(KubeError::Status { status: 410, .. }) => return Ok(None),
        other => other?,
    };
    let mut version = version.to_owned();
    let mut buffer: Vec<u8> = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| KubeError::Request(e.to_string()))?
    {
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let event: Value = serde_json::from_slice(&line)
                .map_err(|e| KubeError::Request(format!("invalid watch event: {e}")))?;
            let object = &event["object"];
            match event["type"].as_str().unwrap_or_default() {
                "ADDED" | "MODIFIED" => {
                    known.insert(key_of(object), build(object));
                }
                "DELETED" => {
                    known.remove(&key_of(object));
                }
                "BOOKMARK" => {}
                "ERROR" => {
                    if object["code"].as_u64() == Some(410) {
                        return Ok(None);
                    }
                    return Err(KubeError::Status {
                        status: u16::try_from(object["code"].as_u64().unwrap_or(500))
                            .unwrap_or(500),
                        message: str_of(&object["message"]),
                    });
                }
                other => tracing::debug!(kind = %other, "Unknown watch event type"),
            }
            let v = str_of(&object["metadata"]["resourceVersion"]);
            if !v.is_empty() {
                version = v;
            }
            if event["type"] != "BOOKMARK" && tx.send((i, known.clone())).await.is_err() {
                return Ok(Some(version));
            }
        }
        if buffer.len() > MAX_EVENT_BYTES {
            return Err(KubeError::Request(
                "watch event larger than 16 MiB".to_owned(),
            ));
        }
    }
    Ok(Some(version))
}
