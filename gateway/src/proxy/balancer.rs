//! Load balancing over an upstream entity's targets: weighted round-robin (a precomputed
//! smooth weighted schedule, nginx's algorithm), least-connections, and consistent hashing
//! on Kong's `hash_on` / `hash_fallback` inputs. Targets the health checks
//! ([`super::health`]) find unhealthy are skipped.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use http::HeaderMap;

use super::health::{CheckedTarget, UpstreamHealth};
use crate::declarative::model::{Target, Upstream};

/// One target.
#[derive(Debug)]
pub struct Peer {
    /// Host name or IP.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Weight.
    pub weight: u32,
    /// Position among the balancer's peers (its health slot).
    pub index: usize,
    active: Arc<AtomicUsize>,
}

/// Counts a request in flight to a peer until dropped (least-connections).
#[derive(Debug)]
pub struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The request attributes consistent hashing may read.
#[derive(Debug, Clone, Copy)]
pub struct HashInput<'a> {
    /// Client address.
    pub client_ip: &'a str,
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// Request path.
    pub path: &'a str,
    /// Raw query string.
    pub query: Option<&'a str>,
    /// Route regex captures.
    pub captures: &'a BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    RoundRobin,
    LeastConnections,
    ConsistentHashing,
}

/// One `hash_on` / `hash_fallback` source.
#[derive(Debug, Clone)]
enum HashOn {
    None,
    Ip,
    Path,
    Header(String),
    Cookie(String),
    QueryArg(String),
    UriCapture(String),
}

impl HashOn {
    fn of(
        kind: &str,
        header: &Option<String>,
        cookie: &Option<String>,
        query: &Option<String>,
        capture: &Option<String>,
    ) -> Self {
        let named = |v: &Option<String>, f: fn(String) -> Self| v.clone().map_or(Self::None, f);
        match kind {
            "ip" => Self::Ip,
            "path" => Self::Path,
            "header" => named(header, |h| Self::Header(h.to_ascii_lowercase())),
            "cookie" => named(cookie, Self::Cookie),
            "query_arg" => named(query, Self::QueryArg),
            "uri_capture" => named(capture, Self::UriCapture),
            // `consumer` needs an authenticated consumer; none exists without auth plugins.
            _ => Self::None,
        }
    }

    fn key(&self, input: &HashInput<'_>) -> Option<String> {
        match self {
            Self::None => None,
            Self::Ip => Some(input.client_ip.to_owned()),
            Self::Path => Some(input.path.to_owned()),
            Self::Header(name) => {
                let values: Vec<&str> = input
                    .headers
                    .get_all(name.as_str())
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                (!values.is_empty()).then(|| values.join(","))
            }
            Self::Cookie(name) => input
                .headers
                .get_all(http::header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .filter_map(|c| c.trim().split_once('='))
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.to_owned()),
            Self::QueryArg(name) => input.query.and_then(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.into_owned())
            }),
            Self::UriCapture(name) => input.captures.get(name).cloned(),
        }
    }
}

/// The balancer of one upstream entity.
#[derive(Debug)]
pub struct Balancer {
    peers: Vec<Peer>,
    schedule: Vec<usize>,
    next: AtomicUsize,
    algorithm: Algorithm,
    hash_on: HashOn,
    hash_fallback: HashOn,
    /// Host header override.
    pub host_header: Option<String>,
    /// Health of the peers, in peer order.
    pub health: Arc<UpstreamHealth>,
}

impl Balancer {
    /// The balancer of `upstream` over `targets` (weight 0 targets are left out).
    pub fn new(upstream: &Upstream, targets: &[&Target]) -> Self {
        let mut checked = Vec::new();
        let peers: Vec<Peer> = targets
            .iter()
            .filter(|t| t.weight > 0)
            .filter_map(|t| {
                let (host, port) = t.target.rsplit_once(':')?;
                let (host, port) = (host.trim_matches(['[', ']']).to_owned(), port.parse().ok()?);
                checked.push(CheckedTarget::new(
                    t.id.clone(),
                    t.target.clone(),
                    host.clone(),
                    port,
                    t.weight,
                ));
                Some(Peer {
                    host,
                    port,
                    weight: t.weight,
                    index: checked.len() - 1,
                    active: Arc::new(AtomicUsize::new(0)),
                })
            })
            .collect();
        let health = Arc::new(UpstreamHealth::new(
            &upstream.name,
            &upstream.healthchecks,
            checked,
        ));
        let algorithm = match upstream.algorithm.as_str() {
            "least-connections" => Algorithm::LeastConnections,
            "consistent-hashing" => Algorithm::ConsistentHashing,
            _ => Algorithm::RoundRobin,
        };
        let u = upstream;
        Self {
            schedule: schedule(&peers),
            peers,
            next: AtomicUsize::new(0),
            algorithm,
            hash_on: HashOn::of(
                &u.hash_on,
                &u.hash_on_header,
                &u.hash_on_cookie,
                &u.hash_on_query_arg,
                &u.hash_on_uri_capture,
            ),
            hash_fallback: HashOn::of(
                &u.hash_fallback,
                &u.hash_fallback_header,
                &None,
                &u.hash_fallback_query_arg,
                &u.hash_fallback_uri_capture,
            ),
            host_header: upstream.host_header.clone(),
            health,
        }
    }

    /// The peer for try number `attempt` (0 first) of a request, counted in flight until
    /// the returned guard drops; `None` when no target has weight.
    pub fn pick(&self, input: &HashInput<'_>, attempt: u32) -> Option<(&Peer, InFlight)> {
        if self.schedule.is_empty() {
            return None;
        }
        if self.health.enabled() {
            return self.pick_healthy(input, attempt);
        }
        let index = match self.algorithm {
            Algorithm::ConsistentHashing => {
                match self
                    .hash_on
                    .key(input)
                    .or_else(|| self.hash_fallback.key(input))
                {
                    Some(key) => {
                        let slot = (fnv1a(&key) as usize).wrapping_add(attempt as usize);
                        self.schedule[slot % self.schedule.len()]
                    }
                    None => self.round_robin(),
                }
            }
            Algorithm::LeastConnections => self.least_connections(),
            Algorithm::RoundRobin => self.round_robin(),
        };
        let peer = self.peers.get(index)?;
        peer.active.fetch_add(1, Ordering::Relaxed);
        Some((peer, InFlight(Arc::clone(&peer.active))))
    }

    /// [`Self::pick`] skipping unhealthy peers: the next healthy one in schedule order
    /// (or the least loaded healthy one); `None` when none is healthy or the healthy weight
    /// is below `healthchecks.threshold`.
    fn pick_healthy(&self, input: &HashInput<'_>, attempt: u32) -> Option<(&Peer, InFlight)> {
        let health = &self.health;
        if !health.above_threshold() {
            return None;
        }
        let start = match self.algorithm {
            Algorithm::LeastConnections => {
                let best = self
                    .peers
                    .iter()
                    .filter(|p| health.is_healthy(p.index))
                    .min_by_key(|p| {
                        (p.active.load(Ordering::Relaxed) as u64 * 1_000_000) / u64::from(p.weight)
                    })?;
                best.active.fetch_add(1, Ordering::Relaxed);
                return Some((best, InFlight(Arc::clone(&best.active))));
            }
            Algorithm::ConsistentHashing => match self
                .hash_on
                .key(input)
                .or_else(|| self.hash_fallback.key(input))
            {
                Some(key) => (fnv1a(&key) as usize).wrapping_add(attempt as usize),
                None => self.next.fetch_add(1, Ordering::Relaxed),
            },
            Algorithm::RoundRobin => self.next.fetch_add(1, Ordering::Relaxed),
        };
        let n = self.schedule.len();
        let index = (0..n)
            .map(|k| self.schedule[start.wrapping_add(k) % n])
            .find(|i| health.is_healthy(*i))?;
        let peer = self.peers.get(index)?;
        peer.active.fetch_add(1, Ordering::Relaxed);
        Some((peer, InFlight(Arc::clone(&peer.active))))
    }

    fn round_robin(&self) -> usize {
        let slot = self.next.fetch_add(1, Ordering::Relaxed) % self.schedule.len();
        self.schedule[slot]
    }

    /// Fewest requests in flight relative to weight; ties rotate.
    fn least_connections(&self) -> usize {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.peers.len();
        let mut best = start % n;
        for offset in 1..n {
            let i = (start + offset) % n;
            let (a, b) = (&self.peers[i], &self.peers[best]);
            let load_a = a.active.load(Ordering::Relaxed) as u64 * u64::from(b.weight);
            let load_b = b.active.load(Ordering::Relaxed) as u64 * u64::from(a.weight);
            if load_a < load_b {
                best = i;
            }
        }
        best
    }
}

fn fnv1a(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Largest schedule built; weights are scaled down to fit.
const MAX_SCHEDULE: u32 = 10_000;

/// The smooth weighted round-robin order of `peers` (nginx's algorithm), one cycle long.
fn schedule(peers: &[Peer]) -> Vec<usize> {
    let divisor = peers.iter().map(|p| p.weight).fold(0, gcd).max(1);
    let mut weights: Vec<i64> = peers
        .iter()
        .map(|p| i64::from(p.weight / divisor))
        .collect();
    let total: i64 = weights.iter().sum();
    if total > i64::from(MAX_SCHEDULE) {
        let scale = total as f64 / f64::from(MAX_SCHEDULE);
        for w in weights.iter_mut() {
            *w = ((*w as f64 / scale).round() as i64).max(1);
        }
    }
    let total: i64 = weights.iter().sum();
    let mut current = vec![0i64; weights.len()];
    let mut out = Vec::with_capacity(total as usize);
    for _ in 0..total {
        for (c, w) in current.iter_mut().zip(&weights) {
            *c += w;
        }
        let Some((best, _)) = current
            .iter()
            .enumerate()
            .max_by_key(|(i, c)| (**c, -(*i as i64)))
        else {
            break;
        };
        current[best] -= total;
        out.push(best);
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn balancer(algorithm: &str, weights: &[u32], extra: serde_json::Value) -> Balancer {
        let mut upstream = json!({
            "id": "u", "name": "pool", "algorithm": algorithm, "hash_on": "none",
            "hash_fallback": "none", "hash_on_header": null, "hash_fallback_header": null,
            "hash_on_cookie": null, "hash_on_query_arg": null, "hash_fallback_query_arg": null,
            "hash_on_uri_capture": null, "hash_fallback_uri_capture": null, "host_header": null
        });
        for (k, v) in extra.as_object().unwrap() {
            upstream[k] = v.clone();
        }
        let upstream: Upstream = serde_json::from_value(upstream).unwrap();
        let targets: Vec<Target> = weights
            .iter()
            .enumerate()
            .map(|(i, w)| {
                serde_json::from_value(json!({"id": format!("t{i}"), "upstream": {"id": "u"},
                    "target": format!("10.0.0.{i}:80"), "weight": w}))
                .unwrap()
            })
            .collect();
        let refs: Vec<&Target> = targets.iter().collect();
        Balancer::new(&upstream, &refs)
    }

    fn input<'a>(
        headers: &'a HeaderMap,
        captures: &'a BTreeMap<String, String>,
        ip: &'a str,
        query: Option<&'a str>,
    ) -> HashInput<'a> {
        HashInput {
            client_ip: ip,
            headers,
            path: "/p",
            query,
            captures,
        }
    }

    #[test]
    fn smooth_weighted_round_robin() {
        let weights = |b: &Balancer| b.schedule.clone();
        assert_eq!(
            weights(&balancer("round-robin", &[100, 100], json!({}))),
            vec![0, 1]
        );
        assert_eq!(
            weights(&balancer("round-robin", &[5, 1, 1], json!({}))),
            vec![0, 0, 1, 0, 2, 0, 0]
        );
        assert!(weights(&balancer("round-robin", &[0], json!({}))).is_empty());
        let big = weights(&balancer("round-robin", &[65535, 1], json!({})));
        assert!(big.len() <= MAX_SCHEDULE as usize + 1 && big.contains(&1));
    }

    #[test]
    fn least_connections_prefers_idle_peers() {
        let b = balancer("least-connections", &[100, 100], json!({}));
        let (h, c) = (HeaderMap::new(), BTreeMap::new());
        let i = input(&h, &c, "1.1.1.1", None);
        let (first, guard) = b.pick(&i, 0).unwrap();
        let first = first.host.clone();
        for _ in 0..5 {
            let (p, _g) = b.pick(&i, 0).unwrap();
            assert_ne!(p.host, first, "the busy peer is avoided");
        }
        drop(guard);
        assert!(b
            .peers
            .iter()
            .all(|p| p.active.load(Ordering::Relaxed) == 0));
    }

    #[test]
    fn consistent_hashing_is_stable_per_key_and_falls_back() {
        let b = balancer(
            "consistent-hashing",
            &[10, 10, 10, 10],
            json!({"hash_on": "header", "hash_on_header": "X-User", "hash_fallback": "ip"}),
        );
        let c = BTreeMap::new();
        let mut h = HeaderMap::new();
        h.insert("x-user", "alice".parse().unwrap());
        let pick =
            |h: &HeaderMap, ip: &str| b.pick(&input(h, &c, ip, None), 0).unwrap().0.host.clone();
        let alice = pick(&h, "1.1.1.1");
        for ip in ["2.2.2.2", "3.3.3.3", "4.4.4.4"] {
            assert_eq!(pick(&h, ip), alice);
        }
        let empty = HeaderMap::new();
        let by_ip = pick(&empty, "9.9.9.9");
        assert_eq!(pick(&empty, "9.9.9.9"), by_ip);
        let hosts: std::collections::HashSet<String> = (0..64)
            .map(|i| pick(&empty, &format!("10.1.1.{i}")))
            .collect();
        assert!(hosts.len() > 1, "different keys spread");
        let q = balancer(
            "consistent-hashing",
            &[1, 1],
            json!({"hash_on": "query_arg", "hash_on_query_arg": "k"}),
        );
        let a = q
            .pick(&input(&empty, &c, "x", Some("k=1")), 0)
            .unwrap()
            .0
            .host
            .clone();
        assert_eq!(
            q.pick(&input(&empty, &c, "y", Some("z=2&k=1")), 0)
                .unwrap()
                .0
                .host,
            a
        );
    }
}
