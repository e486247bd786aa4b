//! From discovered groups to scrape targets: Prometheus' `PopulateLabels`.

use std::time::Duration;

use super::config::Job;
use super::discovery::TargetGroup;
use super::labels::Labels;
use super::relabel::{self, Rule};

/// One target to scrape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    /// Public labels (no `__*`), including `job` and `instance`.
    pub labels: Labels,
    /// Labels before relabelling (with `__meta_*`).
    pub discovered: Labels,
    /// The URL to scrape.
    pub url: String,
    /// `http` / `https`.
    pub scheme: String,
}

/// Formats like Prometheus' `model.Duration` (`5s`, `1m30s`, `1h`, `0s`).
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("y", 365 * 24 * 3600 * 1000u128),
        ("w", 7 * 24 * 3600 * 1000),
        ("d", 24 * 3600 * 1000),
        ("h", 3600 * 1000),
        ("m", 60 * 1000),
        ("s", 1000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

/// Builds the targets of `groups` for `job`, relabelled by `rules`. Targets without an
/// address after relabelling are logged and skipped.
pub fn targets(job: &Job, rules: &[Rule], groups: &[TargetGroup]) -> Vec<Target> {
    let mut out = Vec::new();
    for group in groups {
        for t in &group.targets {
            let mut labels = group.labels.clone();
            for (k, v) in t.iter() {
                labels.set(k, v.to_owned());
            }
            if let Some(target) = populate(job, rules, labels) {
                if !out.contains(&target) {
                    out.push(target);
                }
            }
        }
    }
    out
}

fn populate(job: &Job, rules: &[Rule], mut labels: Labels) -> Option<Target> {
    for (name, value) in [
        ("job", job.config.job_name.clone()),
        ("__scrape_interval__", format_duration(job.interval)),
        ("__scrape_timeout__", format_duration(job.timeout)),
        ("__metrics_path__", job.metrics_path.clone()),
        ("__scheme__", job.scheme.clone()),
    ] {
        if labels.get(name).unwrap_or("").is_empty() {
            labels.set(name, value);
        }
    }
    for (k, v) in &job.config.params {
        let name = format!("__param_{k}");
        if let Some(first) = v.first() {
            if labels.get(&name).unwrap_or("").is_empty() {
                labels.set(&name, first.clone());
            }
        }
    }
    let discovered = labels.clone();
    if !relabel::process(&mut labels, rules) {
        return None;
    }
    let Some(address) = labels.get("__address__").filter(|a| !a.is_empty()) else {
        tracing::warn!(job = %job.config.job_name, "Target has no __address__ after relabelling; skipped.");
        return None;
    };
    let scheme = labels.get("__scheme__").unwrap_or("http").to_owned();
    let address = with_port(address, &scheme);
    labels.set("__address__", address.clone());
    if labels.get("instance").unwrap_or("").is_empty() {
        labels.set("instance", address.clone());
    }
    let path = labels
        .get("__metrics_path__")
        .unwrap_or("/metrics")
        .to_owned();
    let mut query = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (k, values) in &job.config.params {
        let over = labels.get(&format!("__param_{k}"));
        match over {
            Some(v) => {
                query.append_pair(k, v);
                any = true;
            }
            None => {
                for v in values {
                    query.append_pair(k, v);
                    any = true;
                }
            }
        }
    }
    for (k, v) in labels.iter() {
        if let Some(name) = k.strip_prefix("__param_") {
            if !job.config.params.contains_key(name) {
                query.append_pair(name, v);
                any = true;
            }
        }
    }
    let mut url = format!("{scheme}://{address}{path}");
    if any {
        url.push('?');
        url.push_str(&query.finish());
    }
    labels.retain(|k| !k.starts_with("__"));
    Some(Target {
        labels,
        discovered,
        url,
        scheme,
    })
}

/// Adds the scheme's default port when the address has none (Prometheus 2.x).
fn with_port(address: &str, scheme: &str) -> String {
    let has_port = if let Some(rest) = address.strip_prefix('[') {
        rest.split_once(']')
            .is_some_and(|(_, p)| p.starts_with(':'))
    } else {
        address.matches(':').count() == 1
    };
    if has_port || address.matches(':').count() > 1 {
        return address.to_owned();
    }
    let port = if scheme == "https" { 443 } else { 80 };
    format!("{address}:{port}")
}
