//! Name resolution of upstream hosts with a short-lived cache, so the proxy does not call the
//! system resolver per request. Reads are lock-free (an `ArcSwap` of the table); a miss
//! resolves and publishes a new table.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

/// How long resolved addresses are reused.
pub const TTL: Duration = Duration::from_secs(30);

/// Most host names kept; the table is cleared when it would grow past this.
const MAX_ENTRIES: usize = 4096;

#[derive(Debug)]
struct Entry {
    addrs: Vec<IpAddr>,
    expires: Instant,
    next: AtomicUsize,
}

/// Cached name resolution, rotating over the addresses of a name.
#[derive(Debug, Default)]
pub struct DnsCache {
    table: ArcSwap<HashMap<String, Arc<Entry>>>,
    /// Names whose last resolution failed (prometheus `dns_error`); touched only on misses.
    failed: ArcSwap<HashSet<String>>,
}

impl DnsCache {
    /// The addresses last resolved for `host`, if it was resolved (expired entries included);
    /// never resolves.
    pub fn cached(&self, host: &str) -> Option<Vec<IpAddr>> {
        self.table.load().get(host).map(|e| e.addrs.clone())
    }

    /// Whether the last resolution of `host` failed.
    pub fn failed(&self, host: &str) -> bool {
        self.failed.load().contains(host)
    }

    fn mark_failed(&self, host: &str, failed: bool) {
        if self.failed.load().contains(host) == failed {
            return;
        }
        self.failed.rcu(|set| {
            let mut next = if set.len() >= MAX_ENTRIES {
                HashSet::new()
            } else {
                HashSet::clone(set)
            };
            if failed {
                next.insert(host.to_owned());
            } else {
                next.remove(host);
            }
            next
        });
    }

    /// The address to connect to for `host:port`; IP literals are used as they are.
    pub async fn resolve(&self, host: &str, port: u16) -> std::io::Result<SocketAddr> {
        let literal = host.trim_matches(['[', ']']);
        if let Ok(ip) = literal.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, port));
        }
        if let Some(entry) = self.table.load().get(host) {
            if entry.expires > Instant::now() && !entry.addrs.is_empty() {
                let i = entry.next.fetch_add(1, Ordering::Relaxed) % entry.addrs.len();
                return Ok(SocketAddr::new(entry.addrs[i], port));
            }
        }
        let addrs: Vec<IpAddr> = match tokio::net::lookup_host((host, port)).await {
            Ok(found) => found.map(|a| a.ip()).collect(),
            Err(e) => {
                self.mark_failed(host, true);
                return Err(e);
            }
        };
        let Some(first) = addrs.first().copied() else {
            self.mark_failed(host, true);
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no address",
            ));
        };
        self.mark_failed(host, false);
        let entry = Arc::new(Entry {
            addrs,
            expires: Instant::now() + TTL,
            next: AtomicUsize::new(1),
        });
        self.table.rcu(|table| {
            let mut next = if table.len() >= MAX_ENTRIES {
                HashMap::new()
            } else {
                HashMap::clone(table)
            };
            next.insert(host.to_owned(), Arc::clone(&entry));
            next
        });
        Ok(SocketAddr::new(first, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn literals_and_names() {
        let cache = DnsCache::default();
        let a = cache.resolve("127.0.0.1", 80).await.unwrap();
        assert_eq!(a, "127.0.0.1:80".parse().unwrap());
        let v6 = cache.resolve("[::1]", 81).await.unwrap();
        assert_eq!(v6, "[::1]:81".parse().unwrap());
        let local = cache.resolve("localhost", 82).await.unwrap();
        assert!(local.ip().is_loopback());
        assert_eq!(cache.table.load().len(), 1);
        assert!(!cache.failed("localhost"));
        assert!(cache.resolve("no-such-host.invalid", 1).await.is_err());
        assert!(cache.failed("no-such-host.invalid"));
    }
}
