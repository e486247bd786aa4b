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
use crate::proxy::write_timeout::TimedConnector;

/// The upstream HTTP(S) client (pooled, keep-alive).
pub type UpstreamClient = Client<HttpsConnector<TimedConnector>, ProxyBody>;

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
    /// Clients by connect and write timeout (ms) and TLS profile
    /// ([`crate::proxy::tls::profile_key`]).
    clients: HashMap<PoolKey, UpstreamClient>,
    /// The client of each service (by service id).
    by_service: HashMap<String, UpstreamClient>,
    tls: Arc<rustls::ClientConfig>,
    /// `configuration_hash` (32 hex md5; zeros when empty).
    pub hash: String,
}

/// Connect and write timeouts (ms) and TLS profile of a pool.
type PoolKey = (u64, u64, String);

fn new_client(
    connect_timeout: u64,
    write_timeout: u64,
    tls: &Arc<rustls::ClientConfig>,
) -> UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_millis(connect_timeout)));
    connector.set_nodelay(true);
    connector.enforce_http(false);
    let connector = TimedConnector::new(connector, Duration::from_millis(write_timeout));
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

/// The TLS client settings of a service with `tls_verify` or a client certificate; `None`
/// when they cannot be built (a missing or unparsable certificate): its requests then fail
/// with 502 rather than go unverified.
fn service_tls(
    service: &crate::declarative::model::Service,
    model: &Model,
    conf: &KongConf,
) -> Option<Arc<rustls::ClientConfig>> {
    match crate::proxy::tls::service_client_config(service, model, conf) {
        Ok(config) => Some(config),
        Err(error) => {
            tracing::error!(
                service = service.name.as_deref().unwrap_or(&service.id),
                %error,
                "upstream TLS settings are invalid; requests to this service fail with 502"
            );
            None
        }
    }
}

/// Starts the active health checker of `balancer`'s upstream, if it has one; it stops by
/// itself once this runtime is replaced and dropped.
fn start_active_checks(
    balancer: &Balancer,
    upstream: &crate::declarative::model::Upstream,
    conf: &KongConf,
) {
    if !balancer.health.active_enabled() {
        return;
    }
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(upstream = %upstream.name, "no runtime; active health checks not started");
        return;
    };
    let active = &upstream.healthchecks.active;
    let tls = match crate::proxy::tls::probe_config(conf, active.https_verify_certificate) {
        Ok(tls) => tls,
        Err(error) => {
            tracing::error!(upstream = %upstream.name, %error, "active health checks not started");
            return;
        }
    };
    let weak = Arc::downgrade(&balancer.health);
    handle.spawn(crate::proxy::health::run_active(weak, tls));
}

impl Runtime {
    /// Builds the runtime for `config`, reusing `previous`'s connection pools.
    pub fn build(
        config: Config,
        previous: Option<&Self>,
        tls: &Arc<rustls::ClientConfig>,
        conf: &KongConf,
    ) -> Self {
        let model = Model::of(&config);
        let router = crate::router::Router::new(&model.routes, &model.services);
        let mut balancers = HashMap::new();
        for upstream in &model.upstreams {
            let targets: Vec<&crate::declarative::model::Target> = model
                .targets
                .iter()
                .filter(|t| t.upstream.id == upstream.id)
                .collect();
            let balancer = Balancer::new(upstream, &targets);
            if let Some(old) = previous.and_then(|p| p.balancers.get(&upstream.name)) {
                balancer.health.inherit(&old.health);
            }
            start_active_checks(&balancer, upstream, conf);
            balancers.insert(upstream.name.clone(), balancer);
        }
        let mut clients: HashMap<PoolKey, UpstreamClient> = HashMap::new();
        let mut by_service = HashMap::new();
        for service in &model.services {
            let (timeout, write) = (service.connect_timeout, service.write_timeout);
            let key = (
                timeout,
                write,
                crate::proxy::tls::profile_key(service, conf),
            );
            let client = match clients.get(&key) {
                Some(c) => c.clone(),
                // Default pools survive configuration changes; verifying ones are rebuilt, as
                // the certificates they trust may have changed.
                None if key.2.is_empty() => previous
                    .and_then(|p| p.clients.get(&key))
                    .cloned()
                    .unwrap_or_else(|| new_client(timeout, write, tls)),
                None => match service_tls(service, &model, conf) {
                    Some(config) => new_client(timeout, write, &config),
                    None => continue,
                },
            };
            clients.insert(key, client.clone());
            by_service.insert(service.id.clone(), client);
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
            by_service,
            tls: Arc::clone(tls),
            hash,
        }
    }

    /// The pooled client of `service` (its connect timeout and TLS settings); `None` when
    /// its TLS settings are invalid.
    pub fn client_for(
        &self,
        service: &crate::declarative::model::Service,
    ) -> Option<UpstreamClient> {
        self.by_service.get(&service.id).cloned()
    }

    /// The health of every upstream's targets, by upstream name (Admin API
    /// `/upstreams/{name}/health`; metrics `kong_upstream_target_health`).
    pub fn upstream_health(&self) -> Vec<(String, Vec<crate::proxy::health::TargetReport>)> {
        let mut out: Vec<_> = self
            .balancers
            .iter()
            .map(|(name, b)| (name.clone(), b.health.report()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Every plugin instance once (global and route-scoped).
    pub fn plugin_instances(&self) -> Vec<Arc<dyn Plugin>> {
        let mut out: Vec<Arc<dyn Plugin>> = Vec::new();
        for p in self
            .global
            .iter()
            .chain(self.by_route.values().flat_map(|l| l.iter()))
        {
            if !out.iter().any(|o| Arc::ptr_eq(o, p)) {
                out.push(Arc::clone(p));
            }
        }
        out
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
    /// TLS handshakes that failed or timed out.
    pub tls_handshake_failures: AtomicU64,
    /// Requests rejected before routing (malformed, or an oversized head).
    pub rejected_requests: Arc<AtomicU64>,
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
    /// Server certificates of the `ssl` proxy listeners, rebuilt with the configuration.
    pub server_certs: Arc<ArcSwap<crate::tls::CertTable>>,
    /// The certificate served when no sni matches (kong.conf `ssl_cert` or generated).
    pub default_cert: Arc<rustls::sign::CertifiedKey>,
}

/// The certificate table of `model`, logging the certificates left out.
fn cert_table(model: &Model, default: &Arc<rustls::sign::CertifiedKey>) -> crate::tls::CertTable {
    let (table, problems) = crate::tls::CertTable::build(model, Arc::clone(default));
    for problem in problems {
        tracing::error!(%problem, "certificate left out");
    }
    table
}

impl Shared {
    /// Shared state starting with `config`; fails when the TLS client cannot be set up or
    /// kong.conf's `ssl_cert` / `ssl_cert_key` do not load.
    pub fn new(conf: KongConf, config: Config) -> Result<Arc<Self>, crate::tls::TlsError> {
        let tls = crate::proxy::tls::client_config()?;
        let default_cert =
            crate::tls::default_cert::load(conf.ssl_cert.as_deref(), conf.ssl_cert_key.as_deref())?;
        let runtime = Runtime::build(config, None, &tls, &conf);
        let certs = cert_table(&runtime.model, &default_cert);
        Ok(Arc::new(Self {
            runtime: ArcSwap::from_pointee(runtime),
            kong_headers: crate::proxy::headers::KongHeaders::new(&conf),
            conf: Arc::new(conf),
            counters: Counters::default(),
            dns: crate::proxy::dns::DnsCache::default(),
            pool: Arc::default(),
            write_lock: tokio::sync::Mutex::new(()),
            server_certs: Arc::new(ArcSwap::from_pointee(certs)),
            default_cert,
        }))
    }

    /// Replaces the running configuration.
    pub fn apply(&self, config: Config) {
        let previous = self.runtime.load();
        let next = Runtime::build(config, Some(&previous), &previous.tls, &self.conf);
        self.server_certs
            .store(Arc::new(cert_table(&next.model, &self.default_cert)));
        self.runtime.store(Arc::new(next));
    }
}
