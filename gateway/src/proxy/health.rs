//! Target health of upstream entities (`healthchecks`), as Kong's lua-resty-healthcheck:
//! every target starts healthy; active probes (`healthchecks.active`, a task per upstream
//! probing healthy targets every `healthy.interval` s and unhealthy ones every
//! `unhealthy.interval` s) and passive verdicts on proxied traffic
//! (`healthchecks.passive`) count successes, HTTP failures, TCP failures and timeouts. A
//! success clears the failure counts and a failure clears the success count; a target
//! changes state when a count reaches its threshold (0 = that count is off). Verdicts that
//! agree with the current state are not counted. The balancer skips unhealthy targets.
//!
//! ```yaml
//! upstreams:
//! - name: pool
//!   healthchecks:
//!     active:
//!       http_path: /health
//!       healthy: {interval: 5, successes: 2}
//!       unhealthy: {interval: 5, http_failures: 2, tcp_failures: 1, timeouts: 3}
//!     passive:
//!       unhealthy: {http_failures: 5, tcp_failures: 2}
//! ```
//!
//! [`UpstreamHealth::report`] is the read side for the Admin API (`GET
//! /upstreams/{name}/health`) and for metrics (`kong_upstream_target_health`).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::declarative::model::{Healthchecks, Healthy, Unhealthy};

/// A target's health as Kong reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthState {
    /// The upstream has no health checks configured.
    HealthchecksOff,
    /// Receiving traffic.
    Healthy,
    /// Skipped by the balancer.
    Unhealthy,
    /// The target's host name did not resolve (the balancer has no address for it).
    DnsError,
}

impl HealthState {
    /// Kong's Admin API spelling (`HEALTHY`).
    pub fn admin_name(self) -> &'static str {
        match self {
            Self::HealthchecksOff => "HEALTHCHECKS_OFF",
            Self::Healthy => "HEALTHY",
            Self::Unhealthy => "UNHEALTHY",
            Self::DnsError => "DNS_ERROR",
        }
    }

    /// The `state` label of `kong_upstream_target_health` (`healthy`).
    pub fn metric_label(self) -> &'static str {
        match self {
            Self::HealthchecksOff => "healthchecks_off",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
            Self::DnsError => "dns_error",
        }
    }

    /// The state reported for a target whose host name's last resolution failed
    /// (`dns_failed`): `DnsError` then, whatever the checks say, as Kong's balancer reports
    /// a target without addresses.
    pub fn with_dns(self, dns_failed: bool) -> Self {
        if dns_failed {
            Self::DnsError
        } else {
            self
        }
    }
}

/// One health verdict about a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A status in `healthy.http_statuses` (or a TCP connect for `tcp` checks).
    Success,
    /// A status in `unhealthy.http_statuses`.
    HttpFailure,
    /// The connection failed.
    TcpFailure,
    /// No answer in time.
    Timeout,
}

/// The counters of one target.
#[derive(Debug, Default)]
struct Counters {
    unhealthy: AtomicBool,
    successes: AtomicU32,
    http_failures: AtomicU32,
    tcp_failures: AtomicU32,
    timeouts: AtomicU32,
}

impl Counters {
    fn reset(&self) {
        for c in [
            &self.successes,
            &self.http_failures,
            &self.tcp_failures,
            &self.timeouts,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// Counts `outcome` against the thresholds; true when the state changed.
    fn count(&self, outcome: Outcome, healthy: &Healthy, unhealthy: &Unhealthy) -> bool {
        let is_unhealthy = self.unhealthy.load(Ordering::Relaxed);
        let (counter, limit, becomes_unhealthy) = match outcome {
            Outcome::Success => (&self.successes, healthy.successes, false),
            Outcome::HttpFailure => (&self.http_failures, unhealthy.http_failures, true),
            Outcome::TcpFailure => (&self.tcp_failures, unhealthy.tcp_failures, true),
            Outcome::Timeout => (&self.timeouts, unhealthy.timeouts, true),
        };
        if limit == 0 {
            return false;
        }
        // A verdict clears the opposite counts; one that agrees with the state is not
        // counted itself.
        if becomes_unhealthy {
            self.successes.store(0, Ordering::Relaxed);
        } else {
            self.http_failures.store(0, Ordering::Relaxed);
            self.tcp_failures.store(0, Ordering::Relaxed);
            self.timeouts.store(0, Ordering::Relaxed);
        }
        if becomes_unhealthy == is_unhealthy {
            return false;
        }
        if counter.fetch_add(1, Ordering::Relaxed) + 1 < limit {
            return false;
        }
        self.reset();
        self.unhealthy.store(becomes_unhealthy, Ordering::Relaxed);
        true
    }
}

/// A target's health as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetReport {
    /// The target entity's id.
    pub target_id: String,
    /// `host:port` as configured.
    pub target: String,
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Weight.
    pub weight: u32,
    /// State.
    pub state: HealthState,
}

/// One target checked.
#[derive(Debug)]
pub struct CheckedTarget {
    /// The target entity's id.
    pub target_id: String,
    /// `host:port` as configured.
    pub target: String,
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Weight.
    pub weight: u32,
    counters: Counters,
}

impl CheckedTarget {
    /// A healthy target.
    pub fn new(target_id: String, target: String, host: String, port: u16, weight: u32) -> Self {
        Self {
            target_id,
            target,
            host,
            port,
            weight,
            counters: Counters::default(),
        }
    }
}

/// The health of one upstream's targets (in the balancer's peer order).
#[derive(Debug)]
pub struct UpstreamHealth {
    /// The upstream's name.
    pub upstream: String,
    checks: Healthchecks,
    active: bool,
    passive: bool,
    targets: Vec<CheckedTarget>,
}

fn any_threshold(healthy: &Healthy, unhealthy: &Unhealthy) -> bool {
    healthy.successes > 0
        || unhealthy.http_failures > 0
        || unhealthy.tcp_failures > 0
        || unhealthy.timeouts > 0
}

impl UpstreamHealth {
    /// Health state for `targets` under `checks`.
    pub fn new(upstream: &str, checks: &Healthchecks, targets: Vec<CheckedTarget>) -> Self {
        let a = &checks.active;
        let active = (a.healthy.interval > 0.0 && a.healthy.successes > 0)
            || (a.unhealthy.interval > 0.0 && any_threshold(&Healthy::default(), &a.unhealthy));
        let passive = any_threshold(&checks.passive.healthy, &checks.passive.unhealthy);
        Self {
            upstream: upstream.to_owned(),
            checks: checks.clone(),
            active,
            passive,
            targets,
        }
    }

    /// Whether any check is configured.
    pub fn enabled(&self) -> bool {
        self.active || self.passive
    }

    /// Whether active probes run.
    pub fn active_enabled(&self) -> bool {
        self.active
    }

    /// Copies the states of `previous`'s targets with the same address, so a configuration
    /// change does not forget what the checks learned.
    pub fn inherit(&self, previous: &Self) {
        for t in &self.targets {
            if let Some(p) = previous
                .targets
                .iter()
                .find(|p| p.host == t.host && p.port == t.port)
            {
                let was = p.counters.unhealthy.load(Ordering::Relaxed);
                t.counters.unhealthy.store(was, Ordering::Relaxed);
            }
        }
    }

    /// Whether target `index` may receive traffic.
    pub fn is_healthy(&self, index: usize) -> bool {
        self.targets
            .get(index)
            .is_none_or(|t| !t.counters.unhealthy.load(Ordering::Relaxed))
    }

    /// Sets the target at `host:port` (as configured) healthy or unhealthy and clears its
    /// counts (Admin API `POST /upstreams/{u}/targets/{t}/healthy`); false when no such
    /// target is checked.
    pub fn set(&self, target: &str, healthy: bool) -> bool {
        let Some(t) = self
            .targets
            .iter()
            .find(|t| t.target == target || t.target_id == target)
        else {
            return false;
        };
        t.counters.reset();
        t.counters.unhealthy.store(!healthy, Ordering::Relaxed);
        true
    }

    /// Whether enough weight is healthy (`healthchecks.threshold`, a percentage).
    pub fn above_threshold(&self) -> bool {
        if self.checks.threshold <= 0.0 {
            return true;
        }
        let total: u64 = self.targets.iter().map(|t| u64::from(t.weight)).sum();
        let healthy: u64 = self
            .targets
            .iter()
            .enumerate()
            .filter(|(i, _)| self.is_healthy(*i))
            .map(|(_, t)| u64::from(t.weight))
            .sum();
        total > 0 && (healthy as f64) * 100.0 / (total as f64) >= self.checks.threshold
    }

    /// Counts a proxied response status for target `index` (passive checks).
    pub fn passive_status(&self, index: usize, status: u16) {
        if !self.passive {
            return;
        }
        let p = &self.checks.passive;
        let outcome = if p.unhealthy.http_statuses.contains(&status) {
            Outcome::HttpFailure
        } else if p.healthy.http_statuses.contains(&status) {
            Outcome::Success
        } else {
            return;
        };
        self.passive_outcome(index, outcome);
    }

    /// Counts a proxied request's outcome for target `index` (passive checks).
    pub fn passive_outcome(&self, index: usize, outcome: Outcome) {
        if !self.passive {
            return;
        }
        self.count(
            index,
            outcome,
            &self.checks.passive.healthy,
            &self.checks.passive.unhealthy,
        );
    }

    fn count(&self, index: usize, outcome: Outcome, healthy: &Healthy, unhealthy: &Unhealthy) {
        let Some(t) = self.targets.get(index) else {
            return;
        };
        if t.counters.count(outcome, healthy, unhealthy) {
            let state = if t.counters.unhealthy.load(Ordering::Relaxed) {
                "unhealthy"
            } else {
                "healthy"
            };
            tracing::warn!(upstream = %self.upstream, target = %t.target, state, "target health changed");
        }
    }

    /// Every target's state, in configuration order.
    pub fn report(&self) -> Vec<TargetReport> {
        self.targets
            .iter()
            .enumerate()
            .map(|(i, t)| TargetReport {
                target_id: t.target_id.clone(),
                target: t.target.clone(),
                host: t.host.clone(),
                port: t.port,
                weight: t.weight,
                state: if !self.enabled() {
                    HealthState::HealthchecksOff
                } else if self.is_healthy(i) {
                    HealthState::Healthy
                } else {
                    HealthState::Unhealthy
                },
            })
            .collect()
    }
}

/// Probes `health`'s targets until it is dropped (its runtime replaced). `tls` is the
/// client configuration of `https` probes.
pub async fn run_active(health: Weak<UpstreamHealth>, tls: Arc<rustls::ClientConfig>) {
    let Some(h) = health.upgrade() else { return };
    let a = h.checks.active.clone();
    drop(h);
    let period = |s: f64| (s > 0.0).then(|| Duration::from_secs_f64(s.max(0.01)));
    let (healthy_every, unhealthy_every) =
        (period(a.healthy.interval), period(a.unhealthy.interval));
    let tick = [healthy_every, unhealthy_every]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(Duration::from_secs(1));
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = tokio::time::Instant::now();
    let (mut next_healthy, mut next_unhealthy) = (started, started);
    loop {
        ticker.tick().await;
        let Some(h) = health.upgrade() else { return };
        let now = tokio::time::Instant::now();
        let probe_healthy = healthy_every.is_some() && now >= next_healthy;
        let probe_unhealthy = unhealthy_every.is_some() && now >= next_unhealthy;
        if probe_healthy {
            next_healthy = now + healthy_every.unwrap_or(tick);
        }
        if probe_unhealthy {
            next_unhealthy = now + unhealthy_every.unwrap_or(tick);
        }
        let mut probes = Vec::new();
        for (i, t) in h.targets.iter().enumerate() {
            let healthy = h.is_healthy(i);
            if (healthy && probe_healthy) || (!healthy && probe_unhealthy) {
                probes.push((i, t.host.clone(), t.port));
            }
        }
        let checks = h.checks.active.clone();
        drop(h);
        for (i, host, port) in probes {
            let outcome = probe(&checks, &host, port, &tls).await;
            let Some(h) = health.upgrade() else { return };
            if let Some(outcome) = outcome {
                h.count(i, outcome, &checks.healthy, &checks.unhealthy);
            }
        }
    }
}

/// One active probe; `None` when the status is in neither list.
async fn probe(
    checks: &crate::declarative::model::ActiveChecks,
    host: &str,
    port: u16,
    tls: &Arc<rustls::ClientConfig>,
) -> Option<Outcome> {
    let timeout = Duration::from_secs_f64(checks.timeout.max(0.001));
    let attempt = async {
        let Ok(stream) = TcpStream::connect((host, port)).await else {
            return Some(Outcome::TcpFailure);
        };
        match checks.kind.as_str() {
            "tcp" => Some(Outcome::Success),
            "https" | "grpcs" => {
                let sni = checks.https_sni.clone().unwrap_or_else(|| host.to_owned());
                let Ok(name) = rustls::pki_types::ServerName::try_from(sni) else {
                    return Some(Outcome::TcpFailure);
                };
                let connector = tokio_rustls::TlsConnector::from(Arc::clone(tls));
                match connector.connect(name, stream).await {
                    Ok(s) => http_probe(s, checks, host, port).await,
                    Err(_) => Some(Outcome::TcpFailure),
                }
            }
            _ => http_probe(stream, checks, host, port).await,
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or(Some(Outcome::Timeout))
}

/// Longest probe response head read.
const MAX_PROBE_HEAD: usize = 8 * 1024;

/// `GET <http_path> HTTP/1.0` and the status of the answer.
async fn http_probe<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    checks: &crate::declarative::model::ActiveChecks,
    host: &str,
    port: u16,
) -> Option<Outcome> {
    let mut request = format!(
        "GET {} HTTP/1.0\r\nHost: {host}:{port}\r\nConnection: close\r\n",
        checks.http_path
    );
    for (name, values) in checks.headers.iter().flatten() {
        for value in values {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    request.push_str("\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return Some(Outcome::TcpFailure);
    }
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.contains(&b'\n') && head.len() < MAX_PROBE_HEAD {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let status: Option<u16> = line.split_whitespace().nth(1).and_then(|s| s.parse().ok());
    let Some(status) = status else {
        return Some(Outcome::TcpFailure);
    };
    if checks.unhealthy.http_statuses.contains(&status) {
        Some(Outcome::HttpFailure)
    } else if checks.healthy.http_statuses.contains(&status) {
        Some(Outcome::Success)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(passive: serde_json::Value) -> UpstreamHealth {
        let checks: Healthchecks =
            serde_json::from_value(serde_json::json!({ "passive": passive })).unwrap();
        let targets = (0..2)
            .map(|i| {
                CheckedTarget::new(
                    format!("t{i}"),
                    format!("10.0.0.{i}:80"),
                    format!("10.0.0.{i}"),
                    80,
                    100,
                )
            })
            .collect();
        UpstreamHealth::new("pool", &checks, targets)
    }

    #[test]
    fn thresholds_change_state_and_opposite_verdicts_reset_counts() {
        let h = health(serde_json::json!({
            "healthy": {"successes": 2, "http_statuses": [200]},
            "unhealthy": {"http_failures": 3, "tcp_failures": 1, "http_statuses": [500]}
        }));
        assert!(h.enabled() && !h.active_enabled());
        h.passive_status(0, 500);
        h.passive_status(0, 500);
        h.passive_status(0, 200);
        h.passive_status(0, 500);
        h.passive_status(0, 500);
        assert!(
            h.is_healthy(0),
            "a success in between resets the failure count"
        );
        h.passive_status(0, 500);
        assert!(!h.is_healthy(0));
        assert!(h.is_healthy(1));
        h.passive_status(0, 404);
        h.passive_status(0, 200);
        assert!(!h.is_healthy(0));
        h.passive_status(0, 200);
        assert!(h.is_healthy(0));
        h.passive_outcome(1, Outcome::TcpFailure);
        assert!(!h.is_healthy(1));
        h.passive_outcome(1, Outcome::Timeout);
        let states: Vec<HealthState> = h.report().iter().map(|r| r.state).collect();
        assert_eq!(states, vec![HealthState::Healthy, HealthState::Unhealthy]);
    }

    #[test]
    fn no_thresholds_means_checks_off_and_threshold_percentage_applies() {
        let h = health(serde_json::json!({}));
        assert!(!h.enabled());
        h.passive_status(0, 500);
        assert!(h.is_healthy(0));
        assert_eq!(h.report()[0].state, HealthState::HealthchecksOff);

        let mut checks: Healthchecks = serde_json::from_value(serde_json::json!({
            "passive": {"unhealthy": {"tcp_failures": 1}}, "threshold": 60
        }))
        .unwrap();
        let targets = |n: u16| {
            (0..n)
                .map(|i| CheckedTarget::new(format!("t{i}"), String::new(), "h".into(), i, 100))
                .collect()
        };
        let h = UpstreamHealth::new("p", &checks, targets(2));
        assert!(h.above_threshold());
        h.passive_outcome(0, Outcome::TcpFailure);
        assert!(!h.above_threshold(), "50 % healthy is below 60 %");
        checks.threshold = 50.0;
        let next = UpstreamHealth::new("p", &checks, targets(2));
        next.inherit(&h);
        assert!(!next.is_healthy(0) && next.above_threshold());
    }
}
