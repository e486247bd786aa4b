//! The router, with Kong's `traditional_compatible` semantics (Kong/kong:kong/router/transform.lua,
//! atc.lua): a route matches when every configured attribute matches one of its values; among
//! matches the highest priority wins (see [`priority`]). Built once per configuration and
//! read without locks.

mod normalize;
pub mod upstream_path;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use http::HeaderMap;
use regex::Regex;

use crate::declarative::model::{Route, Service};

pub use normalize::{escape, normalize_path};

/// Compiles a route's regex path (without the `~`) as Kong does: `^` + the expression.
pub fn compile_path_regex(re: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^{re}"))
}

/// The request attributes the router reads.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// Method.
    pub method: &'a str,
    /// Host header (or `:authority`) as sent, possibly with `:port`.
    pub host: Option<&'a str>,
    /// The listening port.
    pub listen_port: u16,
    /// The normalized request path.
    pub path: &'a str,
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// TLS server name, for https requests.
    pub sni: Option<&'a str>,
}

/// A successful lookup.
#[derive(Debug, Clone)]
pub struct Match {
    /// The route.
    pub route: Arc<Route>,
    /// Its service, if it has one.
    pub service: Option<Arc<Service>>,
    /// The path text matched (prefix or regex match); `None` when the route has no paths.
    pub matched_path: Option<String>,
    /// Regex captures: unnamed by index (as strings `"0"`, `"1"`, …) and named.
    pub uri_captures: BTreeMap<String, String>,
}

impl Match {
    /// The escaped upstream path (without query) for the normalized request path `req`.
    pub fn upstream_path(&self, req: &str) -> String {
        let base = self
            .service
            .as_ref()
            .and_then(|s| s.path.as_deref())
            .unwrap_or("/");
        let prefix = self
            .matched_path
            .as_deref()
            .filter(|_| self.route.strip_path);
        escape(&upstream_path::compose(base, req, prefix))
    }
}

#[derive(Debug)]
enum HostPattern {
    Exact(String),
    Suffix(String),
    Prefix(String),
}

#[derive(Debug)]
struct HostRule {
    pattern: HostPattern,
    port: Option<u16>,
}

#[derive(Debug)]
enum PathRule {
    Any,
    Prefix(Vec<String>),
    Regex(Vec<Regex>),
}

#[derive(Debug)]
enum HeaderValue {
    Exact(String),
    Regex(Regex),
}

#[derive(Debug)]
struct Entry {
    priority: u64,
    route: Arc<Route>,
    service: Option<Arc<Service>>,
    methods: Vec<String>,
    hosts: Vec<HostRule>,
    headers: Vec<(String, Vec<HeaderValue>)>,
    snis: Vec<String>,
    paths: PathRule,
}

/// A compiled router.
#[derive(Debug, Default)]
pub struct Router {
    entries: Vec<Entry>,
}

/// Kong's 64-bit route priority (spec §2.1).
pub fn priority(route: &Route, regex: bool, prefix_len: usize) -> u64 {
    let non_empty = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|v| !v.is_empty());
    let headers = route.headers.as_ref().map_or(0, BTreeMap::len);
    let weight = [
        non_empty(&route.methods),
        non_empty(&route.hosts),
        headers > 0,
        non_empty(&route.paths),
        non_empty(&route.snis),
    ]
    .iter()
    .filter(|b| **b)
    .count() as u64;
    let plain_hosts = route
        .hosts
        .as_ref()
        .is_some_and(|h| !h.is_empty() && h.iter().all(|h| !h.contains('*')));
    let mut p = weight << 61;
    if plain_hosts {
        p |= 1 << 60;
    }
    p |= (headers.min(255) as u64) << 52;
    if regex {
        p |= 1 << 51;
        let rp = (route.regex_priority + (1i64 << 31)).clamp(0, u32::MAX as i64) as u64;
        p |= rp << 19;
    } else {
        p |= (prefix_len as u64).min((1 << 19) - 1);
    }
    p
}

fn host_rule(host: &str) -> HostRule {
    let (name, port) = match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse().ok()),
        _ => (host, None),
    };
    let pattern = if let Some(rest) = name.strip_prefix('*') {
        HostPattern::Suffix(rest.to_owned())
    } else if let Some(rest) = name.strip_suffix('*') {
        HostPattern::Prefix(rest.to_owned())
    } else {
        HostPattern::Exact(name.to_owned())
    };
    HostRule { pattern, port }
}

impl Router {
    /// Builds the router for `routes`; routes whose service is disabled are left out.
    pub fn new(routes: &[Route], services: &[Service]) -> Self {
        let services: HashMap<&str, Arc<Service>> = services
            .iter()
            .map(|s| (s.id.as_str(), Arc::new(s.clone())))
            .collect();
        let mut entries = Vec::new();
        for route in routes {
            let service = match &route.service {
                Some(fk) => match services.get(fk.id.as_str()) {
                    Some(s) if s.enabled => Some(Arc::clone(s)),
                    _ => continue,
                },
                None => None,
            };
            let route_arc = Arc::new(route.clone());
            for (paths, regex, len) in path_groups(route) {
                entries.push(Entry {
                    priority: priority(route, regex, len),
                    route: Arc::clone(&route_arc),
                    service: service.clone(),
                    methods: route.methods.clone().unwrap_or_default(),
                    hosts: route.hosts.iter().flatten().map(|h| host_rule(h)).collect(),
                    headers: header_rules(route),
                    snis: route.snis.clone().unwrap_or_default(),
                    paths,
                });
            }
        }
        entries.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then_with(|| b.route.id.cmp(&a.route.id))
        });
        Self { entries }
    }

    /// Number of internal match entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no route is present.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The best matching route for a request.
    pub fn find(&self, req: &RequestView<'_>) -> Option<Match> {
        let (host, host_port) = split_host(req.host);
        let dest_port = host_port.unwrap_or(req.listen_port);
        for entry in &self.entries {
            if !entry.methods.is_empty() && !entry.methods.iter().any(|m| m == req.method) {
                continue;
            }
            if !entry.hosts.is_empty()
                && !entry.hosts.iter().any(|h| host_matches(h, host, dest_port))
            {
                continue;
            }
            if !entry
                .headers
                .iter()
                .all(|(n, v)| header_matches(req.headers, n, v))
            {
                continue;
            }
            if !entry.snis.is_empty() {
                if let Some(sni) = req.sni {
                    if !entry.snis.iter().any(|s| s == sni) {
                        continue;
                    }
                }
            }
            let mut captures = BTreeMap::new();
            let matched = match &entry.paths {
                PathRule::Any => None,
                PathRule::Prefix(prefixes) => {
                    match prefixes.iter().find(|p| req.path.starts_with(p.as_str())) {
                        Some(p) => Some(p.clone()),
                        None => continue,
                    }
                }
                PathRule::Regex(regexes) => {
                    let Some(caps) = regexes
                        .iter()
                        .find_map(|r| Some((r, r.captures(req.path)?)))
                    else {
                        continue;
                    };
                    let (re, caps) = caps;
                    for (i, name) in re.capture_names().enumerate() {
                        if let Some(m) = caps.get(i) {
                            let key = name.map_or_else(|| i.to_string(), str::to_owned);
                            captures.insert(key, m.as_str().to_owned());
                        }
                    }
                    caps.get(0).map(|m| m.as_str().to_owned())
                }
            };
            return Some(Match {
                route: Arc::clone(&entry.route),
                service: entry.service.clone(),
                matched_path: matched,
                uri_captures: captures,
            });
        }
        None
    }
}

/// Splits a route's paths into groups that share a priority: all regex paths together, and
/// prefix paths by length.
fn path_groups(route: &Route) -> Vec<(PathRule, bool, usize)> {
    let Some(paths) = route.paths.as_ref().filter(|p| !p.is_empty()) else {
        return vec![(PathRule::Any, false, 0)];
    };
    let mut groups = Vec::new();
    let regexes: Vec<Regex> = paths
        .iter()
        .filter_map(|p| p.strip_prefix('~'))
        .filter_map(|re| compile_path_regex(re).ok())
        .collect();
    if !regexes.is_empty() {
        groups.push((PathRule::Regex(regexes), true, 0));
    }
    let mut by_len: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for p in paths.iter().filter(|p| !p.starts_with('~')) {
        by_len.entry(p.len()).or_default().push(p.clone());
    }
    for (len, prefixes) in by_len {
        groups.push((PathRule::Prefix(prefixes), false, len));
    }
    groups
}

fn header_rules(route: &Route) -> Vec<(String, Vec<HeaderValue>)> {
    route
        .headers
        .iter()
        .flatten()
        .map(|(name, values)| {
            let values = values
                .iter()
                .filter_map(|v| match v.strip_prefix("~*") {
                    Some(re) => Regex::new(&format!("(?i){re}"))
                        .ok()
                        .map(HeaderValue::Regex),
                    None => Some(HeaderValue::Exact(v.to_lowercase())),
                })
                .collect();
            (name.to_lowercase(), values)
        })
        .collect()
}

fn split_host(host: Option<&str>) -> (&str, Option<u16>) {
    let Some(host) = host else { return ("", None) };
    if let Some(rest) = host.strip_prefix('[') {
        if let Some((h, tail)) = rest.split_once(']') {
            let port = tail.strip_prefix(':').and_then(|p| p.parse().ok());
            return (&host[..h.len() + 2], port);
        }
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse().ok()),
        _ => (host, None),
    }
}

fn host_matches(rule: &HostRule, host: &str, port: u16) -> bool {
    if rule.port.is_some_and(|p| p != port) {
        return false;
    }
    match &rule.pattern {
        HostPattern::Exact(h) => h == host,
        HostPattern::Suffix(s) => host.len() > s.len() && host.ends_with(s.as_str()),
        HostPattern::Prefix(p) => host.len() > p.len() && host.starts_with(p.as_str()),
    }
}

fn header_matches(headers: &HeaderMap, name: &str, values: &[HeaderValue]) -> bool {
    headers.get_all(name).iter().any(|v| {
        let Ok(v) = v.to_str() else { return false };
        let v = v.to_lowercase();
        values.iter().any(|want| match want {
            HeaderValue::Exact(e) => *e == v,
            HeaderValue::Regex(r) => r.is_match(&v),
        })
    })
}

#[cfg(test)]
mod tests;
