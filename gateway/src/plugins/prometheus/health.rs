//! `kong_upstream_target_health` (spec §7.2): four series per target address of each
//! `upstreams` entity, one per state, 1 on the current state.
//!
//! The family is node-wide: it is rendered when any enabled prometheus instance sets
//! `upstream_health_metrics`. The state of a target comes from its upstream's health checks
//! ([`crate::proxy::health::UpstreamHealth::report`]): `healthchecks_off` when the upstream
//! runs none, `healthy`/`unhealthy` as the checks decide, `dns_error` when the target's
//! host name did not resolve.

use std::net::IpAddr;

use super::registry::escape;
use crate::proxy::health::{HealthState, TargetReport};
use crate::state::Shared;

/// Kong's target states, in label order of the output.
pub const STATES: [TargetHealth; 4] = [
    TargetHealth::HealthchecksOff,
    TargetHealth::Healthy,
    TargetHealth::Unhealthy,
    TargetHealth::DnsError,
];

/// The health of one target address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetHealth {
    /// The upstream runs no health checks.
    HealthchecksOff,
    /// Checks pass.
    Healthy,
    /// Checks fail.
    Unhealthy,
    /// The target's host name did not resolve.
    DnsError,
}

impl TargetHealth {
    /// The `state` label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::HealthchecksOff => "healthchecks_off",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
            Self::DnsError => "dns_error",
        }
    }
}

impl From<HealthState> for TargetHealth {
    fn from(state: HealthState) -> Self {
        match state {
            HealthState::HealthchecksOff => Self::HealthchecksOff,
            HealthState::Healthy => Self::Healthy,
            HealthState::Unhealthy => Self::Unhealthy,
            HealthState::DnsError => Self::DnsError,
        }
    }
}

/// The state of the target with entity id `target_id` (or configured `host:port`
/// `target`) among its upstream's health `reports`; `healthchecks_off` when the upstream's
/// balancer does not know it.
pub fn target_health(reports: &[TargetReport], target_id: &str, target: &str) -> TargetHealth {
    reports
        .iter()
        .find(|r| r.target_id == target_id)
        .or_else(|| reports.iter().find(|r| r.target == target))
        .map_or(TargetHealth::HealthchecksOff, |r| r.state.into())
}

/// Whether any enabled prometheus instance turns the family on.
pub fn enabled(shared: &Shared) -> bool {
    shared.runtime.load().model.plugins.iter().any(|p| {
        p.enabled
            && p.name == "prometheus"
            && p.config.get("upstream_health_metrics") == Some(&serde_json::Value::Bool(true))
    })
}

/// `ip:port` for a literal address, `[ip]:port` for IPv6.
fn address(ip: IpAddr, port: &str) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

/// The series lines, each as (sort key, text).
pub fn lines(shared: &Shared) -> Vec<(String, String)> {
    let runtime = shared.runtime.load();
    let model = &runtime.model;
    let mut out = Vec::new();
    for upstream in &model.upstreams {
        let reports = runtime
            .balancers
            .get(&upstream.name)
            .map(|b| b.health.report())
            .unwrap_or_default();
        for target in model
            .targets
            .iter()
            .filter(|t| t.upstream.id == upstream.id && t.weight > 0)
        {
            let Some((host, port)) = target.target.rsplit_once(':') else {
                continue;
            };
            let host = host.trim_matches(['[', ']']);
            // A host name reports the addresses it resolved to; until a request has resolved
            // it, the target itself stands as the address.
            // A name whose last resolution failed reports one `dns_error` series without an
            // address.
            let addresses: Vec<(String, Option<TargetHealth>)> = match host.parse::<IpAddr>() {
                Ok(ip) => vec![(address(ip, port), None)],
                Err(_) if shared.dns.failed(host) => {
                    vec![(String::new(), Some(TargetHealth::DnsError))]
                }
                Err(_) => match shared.dns.cached(host) {
                    Some(ips) if !ips.is_empty() => ips
                        .into_iter()
                        .map(|ip| (address(ip, port), None))
                        .collect(),
                    _ => vec![(target.target.clone(), None)],
                },
            };
            for (addr, forced) in addresses {
                let current =
                    forced.unwrap_or_else(|| target_health(&reports, &target.id, &target.target));
                for state in STATES {
                    let text = format!(
                        "kong_upstream_target_health{{upstream=\"{}\",target=\"{}\",address=\"{}\",state=\"{}\",subsystem=\"http\"}} {}",
                        escape(&upstream.name),
                        escape(&target.target),
                        escape(&addr),
                        state.label(),
                        u8::from(state == current)
                    );
                    out.push((text.clone(), text));
                }
            }
        }
    }
    out
}
