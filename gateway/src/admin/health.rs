//! `GET /upstreams/{name|id}/health`: each target with its health, in Kong's shape
//! (Kong/kong:kong/api/routes/upstreams.lua): `{"data":[{…target, "health": "HEALTHY",
//! "data": {"addresses": […], "dns": "ACCEPTED", "weight": {…}}}], "next": null,
//! "node_id": …}`; `POST /upstreams/{u}/targets/{t}/healthy` and `…/unhealthy` set a
//! target's health by hand (204).

use http::StatusCode;
use serde_json::{json, Value};

use super::crud::Reply;
use crate::declarative::Kind;
use crate::proxy::health::HealthState;
use crate::state::Shared;

/// The health listing of the upstream named or identified by `key`.
pub(super) fn upstream_health(shared: &Shared, key: &str) -> Reply {
    let runtime = shared.runtime.load();
    let Some(upstream) = runtime.config.find(Kind::Upstreams, key) else {
        return (StatusCode::NOT_FOUND, Some(json!({"message": "Not found"})));
    };
    let name = upstream
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(balancer) = runtime.balancers.get(name) else {
        return (StatusCode::NOT_FOUND, Some(json!({"message": "Not found"})));
    };
    let data: Vec<Value> = balancer
        .health
        .report()
        .into_iter()
        .map(|t| {
            let mut entity = runtime
                .config
                .find(Kind::Targets, &t.target_id)
                .cloned()
                .unwrap_or_default();
            let dns_failed =
                t.host.parse::<std::net::IpAddr>().is_err() && shared.dns.failed(&t.host);
            let state = t.state.with_dns(dns_failed);
            let health = state.admin_name();
            let available = if matches!(state, HealthState::Unhealthy | HealthState::DnsError) {
                0
            } else {
                t.weight
            };
            let addresses = if dns_failed {
                json!([])
            } else {
                json!([{"health": health, "ip": t.host, "port": t.port, "weight": t.weight}])
            };
            entity.insert("health".into(), Value::from(health));
            entity.insert(
                "data".into(),
                json!({
                    "addresses": addresses,
                    "dns": if dns_failed { "DNS_ERROR" } else { "ACCEPTED" },
                    "nodeWeight": t.weight,
                    "weight": {
                        "available": available,
                        "total": t.weight,
                        "unavailable": t.weight - available,
                    },
                }),
            );
            Value::Object(entity)
        })
        .collect();
    (
        StatusCode::OK,
        Some(json!({"data": data, "next": null, "node_id": shared.conf.node_id})),
    )
}

/// Sets target `target` (id or `host:port`) of upstream `key` healthy or unhealthy.
pub(super) fn set_target_health(shared: &Shared, key: &str, target: &str, healthy: bool) -> Reply {
    let not_found = (StatusCode::NOT_FOUND, Some(json!({"message": "Not found"})));
    let runtime = shared.runtime.load();
    let Some(upstream) = runtime.config.find(Kind::Upstreams, key) else {
        return not_found;
    };
    let name = upstream
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(balancer) = runtime.balancers.get(name) else {
        return not_found;
    };
    let target = crate::declarative::normalized_target(target);
    if balancer.health.set(&target, healthy) {
        (StatusCode::NO_CONTENT, None)
    } else {
        not_found
    }
}
