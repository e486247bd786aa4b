//! The node-wide metric store: series are created once behind sharded read-write locks and
//! then counted with atomics. Each series keeps one cache-line-aligned slot per worker shard
//! ([`worker_shard`]), so workers counting the same series do not contend; `/metrics` sums
//! the slots.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

const SHARDS: usize = 16;

/// Counting slots per series: worker threads are spread over them round-robin.
pub const WORKER_SHARDS: usize = 8;

/// The most buckets of a histogram (+Inf included): [`KONG_BUCKETS`] has the most bounds.
const MAX_BUCKETS: usize = KONG_BUCKETS.len() + 1;

/// The calling thread's counting slot, assigned on its first use.
pub fn worker_shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % WORKER_SHARDS;
    }
    SHARD.with(|s| *s)
}

/// One counter slot on its own cache line.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Slot(AtomicU64);

/// A counter series: one slot per worker shard.
#[derive(Debug, Default)]
pub struct Counter {
    slots: [Slot; WORKER_SHARDS],
}

impl Counter {
    /// Adds `n` in the calling worker's slot.
    pub fn add(&self, n: u64) {
        self.slots[worker_shard()].0.fetch_add(n, Ordering::Relaxed);
    }

    /// The total over all slots.
    pub fn get(&self) -> u64 {
        self.slots.iter().map(|s| s.0.load(Ordering::Relaxed)).sum()
    }
}

/// One worker shard of a histogram: per-bucket (not cumulative) counts, count, sum.
#[derive(Debug, Default)]
#[repr(align(64))]
struct HistogramSlot {
    buckets: [AtomicU64; MAX_BUCKETS],
    count: AtomicU64,
    sum: AtomicU64,
}

/// Buckets of `kong_kong_latency_ms`.
pub const KONG_BUCKETS: &[u64] = &[
    1, 2, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 500, 750, 1000, 3000, 6000,
];
/// Buckets of `kong_upstream_latency_ms` and `kong_request_latency_ms`.
pub const UPSTREAM_BUCKETS: &[u64] = &[
    25, 50, 80, 100, 250, 400, 700, 1000, 2000, 5000, 10000, 30000, 60000,
];

/// One histogram series: bucket counts (+Inf last), count and sum per worker shard.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [u64],
    slots: Box<[HistogramSlot; WORKER_SHARDS]>,
}

impl Histogram {
    fn new(bounds: &'static [u64]) -> Self {
        Self {
            bounds,
            slots: Box::default(),
        }
    }

    /// Records one value in the first bucket ≥ value (+Inf past the last bound); the
    /// cumulative counts are summed when printed.
    pub fn observe(&self, value: u64) {
        let slot = &self.slots[worker_shard()];
        let bucket = self.bounds.partition_point(|b| *b < value);
        if let Some(b) = slot.buckets.get(bucket) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        slot.count.fetch_add(1, Ordering::Relaxed);
        slot.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// Cumulative bucket counts (one per bound, then +Inf), count and sum.
    pub fn snapshot(&self) -> (Vec<u64>, u64, u64) {
        let mut buckets = vec![0u64; self.bounds.len() + 1];
        let (mut count, mut sum) = (0, 0);
        for slot in self.slots.iter() {
            for (total, b) in buckets.iter_mut().zip(&slot.buckets) {
                *total += b.load(Ordering::Relaxed);
            }
            count += slot.count.load(Ordering::Relaxed);
            sum += slot.sum.load(Ordering::Relaxed);
        }
        let mut running = 0;
        for b in &mut buckets {
            running += *b;
            *b = running;
        }
        (buckets, count, sum)
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
    pub requests: Family<Counter>,
    /// `kong_bandwidth_bytes`: service, route, direction, workspace, consumer.
    pub bandwidth: Family<Counter>,
    /// `kong_kong_latency_ms`: service, route, workspace.
    pub kong_latency: Family<Histogram>,
    /// `kong_upstream_latency_ms`.
    pub upstream_latency: Family<Histogram>,
    /// `kong_request_latency_ms`.
    pub request_latency: Family<Histogram>,
}

impl Metrics {
    /// The counter series for `labels`, created the first time.
    pub fn counter(family: &Family<Counter>, labels: &[&str]) -> Option<Arc<Counter>> {
        family.get(labels, Counter::default)
    }

    /// The histogram series for `labels`, created the first time.
    pub fn histogram(
        family: &Family<Histogram>,
        bounds: &'static [u64],
        labels: &[&str],
    ) -> Option<Arc<Histogram>> {
        family.get(labels, || Histogram::new(bounds))
    }

    /// Adds `n` to a counter series.
    pub fn add(family: &Family<Counter>, labels: &[&str], n: u64) {
        if let Some(c) = Self::counter(family, labels) {
            c.add(n);
        }
    }

    /// Observes a value in a histogram series.
    pub fn observe(
        family: &Family<Histogram>,
        bounds: &'static [u64],
        labels: &[&str],
        value: u64,
    ) {
        if let Some(h) = Self::histogram(family, bounds, labels) {
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
pub fn counter_lines(name: &str, names: &[&str], family: &Family<Counter>) -> Vec<Line> {
    family
        .all()
        .into_iter()
        .map(|(values, c)| {
            let text = format!("{name}{{{}}} {}", labels(names, &values), c.get());
            (text.clone(), text)
        })
        .collect()
}

/// The lines of a histogram family (only incremented buckets).
pub fn histogram_lines(name: &str, names: &[&str], family: &Family<Histogram>) -> Vec<Line> {
    let mut out = Vec::new();
    for (values, h) in family.all() {
        let l = labels(names, &values);
        let (buckets, count, sum) = h.snapshot();
        for (i, &n) in buckets.iter().enumerate() {
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
        let count = format!("{name}_count{{{l}}} {count}");
        out.push((count.clone(), count));
        let sum = format!("{name}_sum{{{l}}} {sum}");
        out.push((sum.clone(), sum));
    }
    out
}
