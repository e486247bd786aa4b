//! The running configuration: built once per change, swapped atomically, read lock-free.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use md5::{Digest, Md5};

use crate::conf::KongConf;
use crate::declarative::model::{Model, Plugin as PluginEntity};
use crate::declarative::Config;
use crate::plugins::{self, Plugin, PluginList};
use crate::proxy::balancer::Balancer;
use crate::proxy::body::ProxyBody;

/// The upstream HTTP(S) client (pooled, keep-alive).
pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, ProxyBody>;

/// A built plugin instance and its scope.
#[derive(Clone)]
pub struct Instance {
    entity: PluginEntity,
    priority: i32,
    plugin: Arc<dyn Plugin>,
}

/// Everything derived from one configuration.
pub struct Runtime {
    /// The stored entities.
    pub config: Config,
    /// Typed entities.
    pub model: Model,
    /// The router.
    pub router: crate::router::Router,
    /// Upstream entities by name.
    pub balancers: HashMap<String, Balancer>,
    /// Global plugin instances (rewrite phase, no-route requests).
    global: PluginList,
    /// The plugin instances of each route (by route id).
    by_route: HashMap<String, PluginList>,
    /// Clients by connect timeout (ms).
    clients: HashMap<u64, UpstreamClient>,
    tls: Arc<rustls::ClientConfig>,
    /// `configuration_hash` (32 hex md5; zeros when empty).
    pub hash: String,
}

fn new_client(connect_timeout: u64, tls: &Arc<rustls::ClientConfig>) -> UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_millis(connect_timeout)));
    connector.set_nodelay(true);
    connector.enforce_http(false);
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(rustls::ClientConfig::clone(tls))
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(512)
        .build(connector)
}

impl Runtime {
    /// Builds the runtime for `config`, reusing `previous`'s connection pools.
    pub fn build(config: Config, previous: Option<&Self>, tls: &Arc<rustls::ClientConfig>) -> Self {
        let model = Model::of(&config);
        let router = crate::router::Router::new(&model.routes, &model.services);
        let mut balancers = HashMap::new();
        for upstream in &model.upstreams {
            let targets: Vec<&crate::declarative::model::Target> = model
                .targets
                .iter()
                .filter(|t| t.upstream.id == upstream.id)
                .collect();
            balancers.insert(upstream.name.clone(), Balancer::new(upstream, &targets));
        }
        let mut clients = HashMap::new();
        for service in model.services.iter().filter(|s| s.tls_verify == Some(true)) {
            tracing::warn!(
                service = service.name.as_deref().unwrap_or(&service.id),
                "tls_verify is not supported; the upstream certificate is not verified"
            );
        }
        for service in &model.services {
            let timeout = service.connect_timeout;
            let reused = previous.and_then(|p| p.clients.get(&timeout)).cloned();
            clients
                .entry(timeout)
                .or_insert_with(|| reused.unwrap_or_else(|| new_client(timeout, tls)));
        }
        let instances = build_instances(&model.plugins);
        let global: PluginList = select(&instances, None, None).into();
        let by_route = model
            .routes
            .iter()
            .map(|r| {
                let service = r.service.as_ref().map(|s| s.id.as_str());
                let list: PluginList = select(&instances, Some(&r.id), service).into();
                (r.id.clone(), list)
            })
            .collect();
        let hash = config_hash(&config);
        Self {
            config,
            model,
            router,
            balancers,
            global,
            by_route,
            clients,
            tls: Arc::clone(tls),
            hash,
        }
    }

    /// The client for a service's connect timeout.
    pub fn client(&self, connect_timeout: u64) -> UpstreamClient {
        self.clients
            .get(&connect_timeout)
            .cloned()
            .unwrap_or_else(|| new_client(connect_timeout, &self.tls))
    }

    /// Global plugin instances, by priority (rewrite phase, and no-route requests).
    pub fn global_plugins(&self) -> PluginList {
        Arc::clone(&self.global)
    }

    /// The plugin instances that run for requests matched to `route_id`.
    pub fn route_plugins(&self, route_id: &str) -> PluginList {
        self.by_route
            .get(route_id)
            .map_or_else(|| Arc::clone(&self.global), Arc::clone)
    }
}

/// The instance of each plugin name that applies to a route/service, most specific first:
/// route+service, route, service, global; by priority, highest first. Consumer-scoped
/// instances need an authenticated consumer and are left out; instances whose `protocols`
/// do not list `http` never run on this http listener.
fn select(
    instances: &[Instance],
    route: Option<&str>,
    service: Option<&str>,
) -> Vec<Arc<dyn Plugin>> {
    let id = |fk: &Option<crate::declarative::model::ForeignKey>| fk.as_ref().map(|f| f.id.clone());
    let mut chosen: HashMap<&str, (u8, &Instance)> = HashMap::new();
    for inst in instances {
        let e = &inst.entity;
        if e.consumer.is_some() || !e.protocols.iter().any(|p| p == "http") {
            continue;
        }
        let (r, s) = (id(&e.route), id(&e.service));
        let rank = match (r.as_deref(), s.as_deref()) {
            (Some(r), Some(s)) if Some(r) == route && Some(s) == service => 4,
            (Some(r), None) if Some(r) == route => 3,
            (None, Some(s)) if Some(s) == service => 2,
            (None, None) => 1,
            _ => continue,
        };
        let entry = chosen.entry(e.name.as_str()).or_insert((rank, inst));
        if rank > entry.0 {
            *entry = (rank, inst);
        }
    }
    let mut list: Vec<&Instance> = chosen.into_values().map(|(_, i)| i).collect();
    list.sort_by_key(|i| std::cmp::Reverse(i.priority));
    list.into_iter().map(|i| Arc::clone(&i.plugin)).collect()
}

fn build_instances(entities: &[PluginEntity]) -> Vec<Instance> {
    let registry = plugins::registry();
    let mut out = Vec::new();
    for entity in entities.iter().filter(|p| p.enabled) {
        let Some(factory) = registry.iter().find(|f| f.name() == entity.name) else {
            tracing::warn!(plugin = %entity.name, "plugin is not implemented; it will not run");
            continue;
        };
        match factory.build(&entity.config) {
            Ok(plugin) => out.push(Instance {
                priority: plugin.priority(),
                entity: entity.clone(),
                plugin,
            }),
            Err(error) => tracing::error!(plugin = %entity.name, %error, "plugin failed to start"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Named(&'static str, i32);

    impl Plugin for Named {
        fn name(&self) -> &'static str {
            self.0
        }
        fn priority(&self) -> i32 {
            self.1
        }
    }

    fn instance(name: &'static str, priority: i32, scope: serde_json::Value) -> Instance {
        let mut entity = serde_json::json!({
            "id": format!("{name}-{scope}"), "name": name, "instance_name": null, "config": {},
            "enabled": true, "protocols": ["grpc", "grpcs", "http", "https"],
            "route": null, "service": null, "consumer": null
        });
        for (k, v) in scope.as_object().unwrap() {
            entity[k] = v.clone();
        }
        Instance {
            entity: serde_json::from_value(entity).unwrap(),
            priority,
            plugin: Arc::new(Named(name, priority)),
        }
    }

    #[test]
    fn most_specific_instance_per_name_by_priority() {
        let fk = |id: &str| serde_json::json!({"id": id});
        let instances = vec![
            instance("tcp-log", 7, serde_json::json!({})),
            instance("opentelemetry", 14, serde_json::json!({})),
            instance("opentelemetry", 14, serde_json::json!({"service": fk("s")})),
            instance("prometheus", 13, serde_json::json!({"route": fk("r")})),
            instance(
                "prometheus",
                13,
                serde_json::json!({"route": fk("r"), "service": fk("s")}),
            ),
            instance("zipkin", 100, serde_json::json!({"consumer": fk("c")})),
            instance("http-log", 12, serde_json::json!({"protocols": ["grpc"]})),
        ];
        let names = |route, service| {
            select(&instances, route, service)
                .iter()
                .map(|p| (p.name(), p.priority()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(Some("r"), Some("s")),
            vec![("opentelemetry", 14), ("prometheus", 13), ("tcp-log", 7)]
        );
        assert_eq!(
            names(None, None),
            vec![("opentelemetry", 14), ("tcp-log", 7)]
        );
        let chosen = select(&instances, Some("r"), Some("s"));
        let otel_scope = instances
            .iter()
            .find(|i| Arc::ptr_eq(&i.plugin, &chosen[0]))
            .map(|i| i.entity.service.clone());
        assert_eq!(otel_scope.flatten().map(|f| f.id), Some("s".to_owned()));
        let prom = instances
            .iter()
            .find(|i| Arc::ptr_eq(&i.plugin, &chosen[1]))
            .unwrap();
        assert!(prom.entity.route.is_some() && prom.entity.service.is_some());
    }
}

/// `configuration_hash`: md5 of the stored configuration, 32 zeros when empty.
pub(crate) fn config_hash(config: &Config) -> String {
    if config.is_empty() {
        return "0".repeat(32);
    }
    Md5::digest(config.digest_input().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Connection and request counters of the proxy (Status API `server`).
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Connections handled (closed).
    pub handled: AtomicU64,
    /// Connections open now.
    pub active: AtomicU64,
    /// Requests received.
    pub requests: AtomicU64,
}

/// State shared by every listener.
pub struct Shared {
    /// The current runtime.
    pub runtime: ArcSwap<Runtime>,
    /// kong.conf settings.
    pub conf: Arc<KongConf>,
    /// kong.conf's header settings, resolved for the proxy path.
    pub kong_headers: crate::proxy::headers::KongHeaders,
    /// Counters.
    pub counters: Counters,
    /// Resolved upstream host names.
    pub dns: crate::proxy::dns::DnsCache,
    /// Idle connections to plain upstreams.
    pub pool: Arc<crate::proxy::h1::pool::Pool>,
    /// Serializes configuration writes (Admin API), never taken on the proxy path.
    pub write_lock: tokio::sync::Mutex<()>,
}

impl Shared {
    /// Shared state starting with `config`; fails only when no TLS client can be set up.
    pub fn new(conf: KongConf, config: Config) -> Result<Arc<Self>, rustls::Error> {
        let tls = crate::proxy::tls::client_config()?;
        Ok(Arc::new(Self {
            runtime: ArcSwap::from_pointee(Runtime::build(config, None, &tls)),
            kong_headers: crate::proxy::headers::KongHeaders::new(&conf),
            conf: Arc::new(conf),
            counters: Counters::default(),
            dns: crate::proxy::dns::DnsCache::default(),
            pool: Arc::default(),
            write_lock: tokio::sync::Mutex::new(()),
        }))
    }

    /// Replaces the running configuration.
    pub fn apply(&self, config: Config) {
        let previous = self.runtime.load();
        let next = Runtime::build(config, Some(&previous), &previous.tls);
        self.runtime.store(Arc::new(next));
    }
}
