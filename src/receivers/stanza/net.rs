//! `add_attributes`: the `net.*` attributes of network inputs, with reverse DNS names
//! looked up once per address and cached.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, OnceLock};

use opentelemetry_proto::tonic::common::v1::KeyValue;

use super::value;

/// Cached names; cleared when it grows past this many addresses.
const CACHE_LIMIT: usize = 10_000;

fn cache() -> &'static Mutex<HashMap<IpAddr, String>> {
    static CACHE: OnceLock<Mutex<HashMap<IpAddr, String>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The host name for `ip` by reverse DNS (trailing dot removed), or the ip text when the
/// lookup fails, as stanza's resolver answers.
pub async fn host_name(ip: IpAddr) -> String {
    if let Some(name) = cache().lock().ok().and_then(|c| c.get(&ip).cloned()) {
        return name;
    }
    let name = tokio::task::spawn_blocking(move || dns_lookup::lookup_addr(&ip).ok())
        .await
        .ok()
        .flatten()
        .map_or_else(|| ip.to_string(), |n| n.trim_end_matches('.').to_owned());
    if let Ok(mut c) = cache().lock() {
        if c.len() >= CACHE_LIMIT {
            c.clear();
        }
        c.insert(ip, name.clone());
    }
    name
}

fn kv(key: &str, v: String) -> KeyValue {
    KeyValue {
        key_strindex: 0,
        key: key.to_owned(),
        value: Some(value::string(v)),
    }
}

/// `net.transport`, `net.peer.{ip,port,name}`, `net.host.{ip,port,name}`, all strings.
pub async fn attributes(transport: &str, peer: SocketAddr, host: SocketAddr) -> Vec<KeyValue> {
    vec![
        kv("net.transport", transport.to_owned()),
        kv("net.peer.ip", peer.ip().to_string()),
        kv("net.peer.port", peer.port().to_string()),
        kv("net.peer.name", host_name(peer.ip()).await),
        kv("net.host.ip", host.ip().to_string()),
        kv("net.host.port", host.port().to_string()),
        kv("net.host.name", host_name(host.ip()).await),
    ]
}
