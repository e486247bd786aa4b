//! Entity-level rules of Kong's schemas beyond field types: the service `url` shorthand,
//! route matching attributes, consumer identity, target addresses.

use regex::Regex;
use serde_json::{Map, Value};

use super::schema::{self, Field};
use super::Kind;
use crate::plugins;

type Problems = Vec<(String, String)>;

fn fields(kind: Kind) -> &'static [Field] {
    match kind {
        Kind::Services => schema::SERVICE,
        Kind::Routes => schema::ROUTE,
        Kind::Consumers => schema::CONSUMER,
        Kind::Plugins => schema::PLUGIN,
        Kind::Upstreams => schema::UPSTREAM,
        Kind::Targets => schema::TARGET,
        Kind::CaCertificates => schema::CA_CERTIFICATE,
        Kind::Certificates => schema::CERTIFICATE,
        Kind::Snis => schema::SNI,
    }
}

/// Checks one raw entity and returns it in stored form.
pub(crate) fn normalize(
    kind: Kind,
    mut obj: Map<String, Value>,
) -> Result<Map<String, Value>, Problems> {
    let mut problems = Vec::new();
    if kind == Kind::Services {
        if let Some(url) = obj.remove("url") {
            if let Err(message) = apply_url(&mut obj, &url) {
                problems.push(("url".to_owned(), message));
            }
        }
    }
    let mut stored = match schema::check(fields(kind), &obj) {
        Ok(stored) => stored,
        Err(mut errors) => {
            problems.append(&mut errors);
            return Err(problems);
        }
    };
    match kind {
        Kind::Services => check_service(&stored, &mut problems),
        Kind::Routes => check_route(&stored, &mut problems),
        Kind::Consumers => {
            if stored["username"].is_null() && stored["custom_id"].is_null() {
                problems.push((
                    "@entity".to_owned(),
                    "at least one of these fields must be non-empty: 'custom_id', 'username'"
                        .to_owned(),
                ));
            }
        }
        Kind::Plugins => check_plugin(&mut stored, &mut problems),
        Kind::Upstreams => {
            let checks = schema::healthchecks_with_defaults(&stored["healthchecks"]);
            stored.insert("healthchecks".into(), checks);
            let name = stored["name"].as_str().unwrap_or_default();
            if !is_hostname(name) {
                problems.push((
                    "name".to_owned(),
                    format!("Invalid name ('{name}'); must be a valid hostname"),
                ));
            }
        }
        Kind::Targets => {
            let target = stored["target"].as_str().unwrap_or_default().to_owned();
            match normalize_target(&target) {
                Some(t) => {
                    stored.insert("target".into(), Value::from(t));
                }
                None => problems.push((
                    "target".to_owned(),
                    "Invalid target; not a valid hostname or ip address".to_owned(),
                )),
            }
        }
        Kind::CaCertificates | Kind::Certificates | Kind::Snis => {}
    }
    if problems.is_empty() {
        Ok(stored)
    } else {
        Err(problems)
    }
}

/// Splits the `url` shorthand into protocol, host, port and path.
fn apply_url(obj: &mut Map<String, Value>, url: &Value) -> Result<(), String> {
    let url = url.as_str().ok_or("expected a string")?;
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| "missing host in url".to_owned())?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
            let port: u16 = p.parse().map_err(|_| format!("invalid port: {p}"))?;
            (h, Some(port))
        }
        _ => (authority, None),
    };
    if host.is_empty() {
        return Err("missing host in url".to_owned());
    }
    let port = port.unwrap_or(if scheme == "https" || scheme == "grpcs" {
        443
    } else {
        80
    });
    obj.insert("protocol".into(), Value::from(scheme));
    obj.insert("host".into(), Value::from(host));
    obj.insert("port".into(), Value::from(port));
    obj.insert(
        "path".into(),
        path.filter(|p| !p.is_empty())
            .map(Value::from)
            .unwrap_or(Value::Null),
    );
    Ok(())
}

fn is_hostname(host: &str) -> bool {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if h.parse::<std::net::Ipv6Addr>().is_ok() {
        return true;
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

fn check_service(s: &Map<String, Value>, problems: &mut Problems) {
    let host = s["host"].as_str().unwrap_or_default();
    if !is_hostname(host) {
        problems.push(("host".to_owned(), format!("invalid hostname: {host}")));
    }
    let protocol = s["protocol"].as_str().unwrap_or_default();
    if let Some(path) = s["path"].as_str() {
        if !matches!(protocol, "http" | "https" | "ws" | "wss") {
            problems.push((
                "path".to_owned(),
                "value must be null when 'protocol' is not 'http', 'https', 'ws' or 'wss'"
                    .to_owned(),
            ));
        } else if !path.starts_with('/') {
            problems.push(("path".to_owned(), "should start with: /".to_owned()));
        } else if path.contains("//") {
            problems.push(("path".to_owned(), "must not have empty segments".to_owned()));
        }
    }
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn check_route(r: &Map<String, Value>, problems: &mut Problems) {
    let protocols = strings(&r["protocols"]);
    let groups: [&[&str]; 4] = [
        &["http", "https", "ws", "wss"],
        &["tcp", "tls", "udp"],
        &["tls_passthrough"],
        &["grpc", "grpcs"],
    ];
    let used = groups
        .iter()
        .filter(|g| protocols.iter().any(|p| g.contains(p)))
        .count();
    if used > 1 {
        problems.push((
            "protocols".to_owned(),
            "mixing protocol groups is not allowed (http/https, tcp/tls/udp, tls_passthrough, grpc/grpcs)"
                .to_owned(),
        ));
    }
    for method in strings(&r["methods"]) {
        if method.is_empty() || !method.chars().all(|c| c.is_ascii_uppercase()) {
            problems.push(("methods".to_owned(), format!("invalid value: {method}")));
        }
    }
    for host in strings(&r["hosts"]) {
        if let Err(message) = check_route_host(host) {
            problems.push(("hosts".to_owned(), message));
        }
    }
    for path in strings(&r["paths"]) {
        if let Err(message) = check_route_path(path) {
            problems.push(("paths".to_owned(), message));
        }
    }
    if let Some(headers) = r["headers"].as_object() {
        if headers.keys().any(|k| k.eq_ignore_ascii_case("host")) {
            problems.push((
                "headers".to_owned(),
                "cannot contain 'host' header, which must be specified in the 'hosts' attribute"
                    .to_owned(),
            ));
        }
        for values in headers.values() {
            for value in strings(values) {
                if let Some(re) = value.strip_prefix("~*") {
                    if Regex::new(re).is_err() {
                        problems.push(("headers".to_owned(), format!("invalid regex: '{value}'")));
                    }
                }
            }
        }
    }
    let has = |k: &str| r[k].as_array().is_some_and(|a| !a.is_empty()) || r[k].is_object();
    let http = protocols.iter().any(|p| matches!(*p, "http" | "ws"));
    let https = protocols.iter().any(|p| matches!(*p, "https" | "wss"));
    if !has("snis") {
        if http
            && !["methods", "hosts", "headers", "paths"]
                .iter()
                .any(|k| has(k))
        {
            problems.push((
                "@entity".to_owned(),
                "must set one of 'methods', 'hosts', 'headers', 'paths' when 'protocols' is 'http'"
                    .to_owned(),
            ));
        } else if https
            && !["methods", "hosts", "headers", "paths"]
                .iter()
                .any(|k| has(k))
        {
            problems.push((
                "@entity".to_owned(),
                "must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' when 'protocols' is 'https'"
                    .to_owned(),
            ));
        }
    } else if !protocols
        .iter()
        .any(|p| matches!(*p, "https" | "grpcs" | "tls" | "tls_passthrough" | "wss"))
    {
        problems.push((
            "snis".to_owned(),
            "'snis' can only be set when 'protocols' is 'grpcs', 'https', 'tls', 'tls_passthrough' or 'wss'"
                .to_owned(),
        ));
    }
}

fn check_route_host(host: &str) -> Result<(), String> {
    let name = match host.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') => {
            port.parse::<u16>()
                .map_err(|_| format!("invalid port number: {port}"))?;
            h
        }
        _ => host,
    };
    let stars = name.matches('*').count();
    if stars > 1 {
        return Err("invalid wildcard: must have at most one wildcard".to_owned());
    }
    if stars == 1 && !(name.starts_with("*.") || name.ends_with(".*")) {
        return Err("invalid wildcard: must be placed at leftmost or rightmost label".to_owned());
    }
    let plain = name.replace('*', "x");
    if !is_hostname(&plain) {
        return Err(format!("invalid hostname: {host}"));
    }
    Ok(())
}

fn check_route_path(path: &str) -> Result<(), String> {
    if let Some(re) = path.strip_prefix('~') {
        if !re.starts_with('/') {
            return Err("should start with: / (fixed path) or ~/ (regex path)".to_owned());
        }
        return crate::router::compile_path_regex(re)
            .map(|_| ())
            .map_err(|e| format!("invalid regex: '{re}' ({e})"));
    }
    if !path.starts_with('/') {
        return Err("should start with: / (fixed path) or ~/ (regex path)".to_owned());
    }
    if path.contains("//") {
        return Err("must not have empty segments".to_owned());
    }
    if crate::router::normalize_path(path) != path {
        return Err(format!(
            "non-normalized path, consider use '{}' instead",
            crate::router::normalize_path(path)
        ));
    }
    Ok(())
}

/// Format 1.1/2.1 migration: plain paths that look like regexes get the `~` prefix
/// (Kong/kong:kong/db/declarative/migrations/route_path.lua).
pub(crate) fn migrate_legacy_paths(route: &mut Map<String, Value>) {
    let Some(Value::Array(paths)) = route.get_mut("paths") else {
        return;
    };
    for path in paths.iter_mut() {
        if let Some(p) = path.as_str() {
            let plain = p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~/%".contains(c));
            if !plain && !p.starts_with('~') {
                *path = Value::from(format!("~{p}"));
            }
        }
    }
}

fn check_plugin(p: &mut Map<String, Value>, problems: &mut Problems) {
    let name = p["name"].as_str().unwrap_or_default().to_owned();
    if !plugins::is_known(&name) {
        problems.push((
            "name".to_owned(),
            format!("plugin '{name}' not enabled; add it to the 'plugins' configuration property"),
        ));
        return;
    }
    if let Some(config) = p.get_mut("config") {
        if let Err(errors) = plugins::check_config(&name, config) {
            for (field, message) in errors {
                problems.push((format!("config.{field}"), message));
            }
        }
    }
}

/// `host` → `host:8000`, `[v6]` kept bracketed; `None` when not an address.
pub(crate) fn normalize_target(target: &str) -> Option<String> {
    let (host, port) = if let Some(rest) = target.strip_prefix('[') {
        let (h, tail) = rest.split_once(']')?;
        let port = match tail.strip_prefix(':') {
            Some(p) => p.parse::<u16>().ok()?,
            None if tail.is_empty() => 8000,
            None => return None,
        };
        (format!("[{h}]"), port)
    } else {
        match target.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), p.parse::<u16>().ok()?),
            None => (target.to_owned(), 8000),
        }
    };
    if !is_hostname(&host) {
        return None;
    }
    Some(format!("{host}:{port}"))
}
