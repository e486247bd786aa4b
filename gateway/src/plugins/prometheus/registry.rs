//! The node-wide metric store: series are created once behind sharded read-write locks, then
//! counted with atomics (a request takes only read locks and atomic adds).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

const SHARDS: usize = 16;

/// Buckets of `kong_kong_latency_ms`.
pub const KONG_BUCKETS: &[u64] = &[
    1, 2, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 500, 750, 1000, 3000, 6000,
];
/// Buckets of `kong_upstream_latency_ms` and `kong_request_latency_ms`.
pub const UPSTREAM_BUCKETS: &[u64] = &[
    25, 50, 80, 100, 250, 400, 700, 1000, 2000, 5000, 10000, 30000, 60000,
];

/// One histogram series: cumulative bucket counts (+Inf last), count, sum.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [u64],
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [u64]) -> Self {
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
        }
    }

    /// Records one value: every bucket ≥ value and +Inf.
    pub fn observe(&self, value: u64) {
        let first = self.bounds.partition_point(|b| *b < value);
        for bucket in &self.buckets[first..] {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }
}

/// One shard: joined label values → (label values, series).
type Shard<T> = HashMap<String, (Vec<String>, Arc<T>)>;

/// A labelled family of counters or histograms.
#[derive(Debug)]
pub struct Family<T> {
    shards: Vec<RwLock<Shard<T>>>,
    hasher: std::collections::hash_map::RandomState,
}

impl<T> Default for Family<T> {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }
}

impl<T> Family<T> {
    /// The series for `labels`, created by `make` the first time.
    pub fn get(&self, labels: &[&str], make: impl FnOnce() -> T) -> Option<Arc<T>> {
        let key = labels.join("\u{1}");
        let shard = &self.shards[(self.hasher.hash_one(&key) as usize) % SHARDS];
        if let Some((_, found)) = shard.read().ok()?.get(&key) {
            return Some(Arc::clone(found));
        }
        let values: Vec<String> = labels.iter().map(|s| (*s).to_owned()).collect();
        let mut w = shard.write().ok()?;
        let entry = w.entry(key).or_insert_with(|| (values, Arc::new(make())));
        Some(Arc::clone(&entry.1))
    }

    /// Every series (label values, value).
    pub fn all(&self) -> Vec<(Vec<String>, Arc<T>)> {
        self.shards
            .iter()
            .filter_map(|s| s.read().ok())
            .flat_map(|m| {
                m.values()
                    .map(|(k, v)| (k.clone(), Arc::clone(v)))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// The counters and histograms the plugin fills.
#[derive(Debug, Default)]
pub struct Metrics {
    /// `kong_http_requests_total`: service, route, code, source, workspace, consumer.
    pub requests: Family<AtomicU64>,
    /// `kong_bandwidth_bytes`: service, route, direction, workspace, consumer.
    pub bandwidth: Family<AtomicU64>,
    /// `kong_kong_latency_ms`: service, route, workspace.
    pub kong_latency: Family<Histogram>,
    /// `kong_upstream_latency_ms`.
    pub upstream_latency: Family<Histogram>,
    /// `kong_request_latency_ms`.
    pub request_latency: Family<Histogram>,
}

impl Metrics {
    /// Adds `n` to a counter series.
    pub fn add(family: &Family<AtomicU64>, labels: &[&str], n: u64) {
        if let Some(c) = family.get(labels, || AtomicU64::new(0)) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Observes a value in a histogram series.
    pub fn observe(
        family: &Family<Histogram>,
        bounds: &'static [u64],
        labels: &[&str],
        value: u64,
    ) {
        if let Some(h) = family.get(labels, || Histogram::new(bounds)) {
            h.observe(value);
        }
    }
}

/// One printed line: sort key (zero-padded `le`) and text.
pub type Line = (String, String);

/// Escapes a label value (`\` and `"`).
pub fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"")
}

fn labels(names: &[&str], values: &[String]) -> String {
    names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}=\"{}\"", escape(v)))
        .collect::<Vec<_>>()
        .join(",")
}

/// The lines of a counter family.
pub fn counter_lines(name: &str, names: &[&str], family: &Family<AtomicU64>) -> Vec<Line> {
    family
        .all()
        .into_iter()
        .map(|(values, c)| {
            let text = format!(
                "{name}{{{}}} {}",
                labels(names, &values),
                c.load(Ordering::Relaxed)
            );
            (text.clone(), text)
        })
        .collect()
}

/// The lines of a histogram family (only incremented buckets).
pub fn histogram_lines(name: &str, names: &[&str], family: &Family<Histogram>) -> Vec<Line> {
    let mut out = Vec::new();
    for (values, h) in family.all() {
        let l = labels(names, &values);
        for (i, bucket) in h.buckets.iter().enumerate() {
            let n = bucket.load(Ordering::Relaxed);
            if n == 0 {
                continue;
            }
            let (key_le, le) = match h.bounds.get(i) {
                Some(b) => (format!("{b:05}.0"), b.to_string()),
                None => ("Inf".to_owned(), "+Inf".to_owned()),
            };
            out.push((
                format!("{name}_bucket{{{l},le=\"{key_le}\"}}"),
                format!("{name}_bucket{{{l},le=\"{le}\"}} {n}"),
            ));
        }
        let count = format!("{name}_count{{{l}}} {}", h.count.load(Ordering::Relaxed));
        out.push((count.clone(), count));
        let sum = format!("{name}_sum{{{l}}} {}", h.sum.load(Ordering::Relaxed));
        out.push((sum.clone(), sum));
    }
    out
}
