//! `batch` processor: groups data into larger requests before export.
//!
//! ```yaml
//! processors:
//!   batch:
//!     send_batch_size: 8192
//!     timeout: 200ms
//! ```
//!
//! `consume` hands the batch to a bounded channel and returns (waiting only while the
//! channel is full); a background task appends incoming data to the pending batch and sends
//! it when it reaches `send_batch_size` items or when `timeout` passes, split at
//! `send_batch_max_size`. As in otelcol, a downstream error is logged and the data is lost:
//! nothing after `batch` can push back on the client. Shutdown sends what is pending once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::component::{
    BoxNode, Component, ComponentError, CreateSettings, FactoryInfo, Host, ProcessorFactory,
    RawConfig, Stability,
};
use crate::config::{decode, FieldError};
use crate::pipeline::{Batch, BoxConsumer, ClientInfo, ConsumeError, Consumer};
use crate::telemetry::names;

/// `processors::batch`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Items (spans, data points, log records) that trigger a send. Default 8192.
    pub send_batch_size: usize,
    /// Longest an item waits before being sent. Default 200ms; 0 sends every request at once.
    #[serde(with = "crate::config::duration")]
    pub timeout: Duration,
    /// Upper bound on a sent batch; larger ones are split. 0 = no bound.
    pub send_batch_max_size: usize,
    /// Client metadata keys whose values partition batches.
    pub metadata_keys: Vec<String>,
    /// Most distinct metadata value combinations. Default 1000.
    pub metadata_cardinality_limit: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            send_batch_size: 8192,
            timeout: Duration::from_millis(200),
            send_batch_max_size: 0,
            metadata_keys: Vec::new(),
            metadata_cardinality_limit: 1000,
        }
    }
}

impl Config {
    /// Cross-field rules.
    ///
    /// # Errors
    /// otelcol's messages.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.send_batch_max_size > 0 && self.send_batch_max_size < self.send_batch_size {
            return Err(FieldError::new(
                "send_batch_max_size must be greater or equal to send_batch_size",
            ));
        }
        let mut seen = HashSet::new();
        for key in &self.metadata_keys {
            if !seen.insert(key.to_ascii_lowercase()) {
                return Err(FieldError::at(
                    &["metadata_keys"],
                    format!("duplicate entry in metadata_keys: {key:?} (case-insensitive)"),
                ));
            }
        }
        Ok(())
    }
}

/// The `batch` factory.
pub struct Factory;

/// The registry entry.
pub static FACTORY: Factory = Factory;

static INFO: FactoryInfo = FactoryInfo {
    name: "batch",
    aliases: &[],
    stability: [Stability::Beta; 3],
};

impl ProcessorFactory for Factory {
    fn info(&self) -> &FactoryInfo {
        &INFO
    }

    fn validate(&self, config: &RawConfig) -> Result<(), FieldError> {
        decode::<Config>(config)?.validate()
    }

    fn create(
        &self,
        settings: &CreateSettings,
        config: &RawConfig,
        next: BoxConsumer,
    ) -> Result<BoxNode, ComponentError> {
        let config = decode::<Config>(config)?;
        config.validate()?;
        Ok(Arc::new(BatchProcessor::new(
            config,
            settings.id.to_string(),
            next,
        )))
    }
}

type Item = (Batch, ClientInfo);

/// A `batch` processor instance (one per pipeline).
pub struct BatchProcessor {
    config: Config,
    tx: mpsc::Sender<Item>,
    rx: Mutex<Option<mpsc::Receiver<Item>>>,
    next: BoxConsumer,
    partitions: Mutex<HashSet<Vec<String>>>,
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
    name: String,
}

impl BatchProcessor {
    /// A processor sending to `next`; its background task starts with `start`.
    pub fn new(config: Config, name: String, next: BoxConsumer) -> Self {
        let capacity = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .max(1);
        let (tx, rx) = mpsc::channel(capacity);
        Self {
            config,
            tx,
            rx: Mutex::new(Some(rx)),
            next,
            partitions: Mutex::new(HashSet::new()),
            stop: CancellationToken::new(),
            task: Mutex::new(None),
            name,
        }
    }
}

#[async_trait]
impl Consumer for BatchProcessor {
    async fn consume(&self, batch: Batch, client: &ClientInfo) -> Result<(), ConsumeError> {
        if !self.config.metadata_keys.is_empty() {
            let key = partition_key(&self.config.metadata_keys, client);
            let mut seen = self.partitions.lock().expect("batch partitions lock");
            if !seen.contains(&key) {
                if seen.len() >= self.config.metadata_cardinality_limit {
                    return Err(ConsumeError::permanent(
                        "too many batcher metadata-value combinations",
                    ));
                }
                seen.insert(key);
            }
        }
        self.tx
            .send((batch, client.clone()))
            .await
            .map_err(|_| ConsumeError::retryable("batch processor is shutting down"))
    }
}

#[async_trait]
impl Component for BatchProcessor {
    async fn start(&self, _host: &Host) -> Result<(), ComponentError> {
        let Some(rx) = self.rx.lock().expect("batch rx lock").take() else {
            return Ok(());
        };
        let worker = Worker {
            config: self.config.clone(),
            next: self.next.clone(),
            pending: HashMap::new(),
            size_trigger: metrics::counter!(names::BATCH_SIZE_TRIGGER_SEND, "processor" => self.name.clone()),
            timeout_trigger: metrics::counter!(names::BATCH_TIMEOUT_TRIGGER_SEND, "processor" => self.name.clone()),
            send_size: metrics::histogram!(names::BATCH_SEND_SIZE, "processor" => self.name.clone()),
        };
        let handle = tokio::spawn(worker.run(rx, self.stop.clone()));
        *self.task.lock().expect("batch task lock") = Some(handle);
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), ComponentError> {
        self.stop.cancel();
        let handle = self.task.lock().expect("batch task lock").take();
        if let Some(handle) = handle {
            handle
                .await
                .map_err(|e| ComponentError::Other(format!("batch worker failed: {e}")))?;
        }
        Ok(())
    }
}

/// Data waiting to be sent, for one metadata partition.
struct Pending {
    batch: Batch,
    items: usize,
    client: ClientInfo,
}

struct Worker {
    config: Config,
    next: BoxConsumer,
    pending: HashMap<Vec<String>, Pending>,
    size_trigger: metrics::Counter,
    timeout_trigger: metrics::Counter,
    send_size: metrics::Histogram,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Item>, stop: CancellationToken) {
        let timeout = self.config.timeout;
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            let timer = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                item = rx.recv() => match item {
                    Some((batch, client)) => {
                        self.add(batch, client).await;
                        if timeout.is_zero() {
                            self.flush_all(false).await;
                        } else if self.pending.is_empty() {
                            deadline = None;
                        } else if deadline.is_none() {
                            deadline = Some(tokio::time::Instant::now() + timeout);
                        }
                    }
                    None => break,
                },
                () = timer => {
                    self.flush_all(true).await;
                    deadline = None;
                }
            }
        }
        // Shutdown: take whatever is still queued, then send everything once.
        rx.close();
        while let Some((batch, client)) = rx.recv().await {
            self.add(batch, client).await;
        }
        self.flush_all(false).await;
    }

    async fn add(&mut self, batch: Batch, client: ClientInfo) {
        let key = partition_key(&self.config.metadata_keys, &client);
        let items = batch.item_count();
        let pending = self.pending.entry(key.clone()).or_insert_with(|| Pending {
            batch: Batch::empty(batch.signal()),
            items: 0,
            client: partition_client(&self.config.metadata_keys, &client),
        });
        append(&mut pending.batch, batch);
        pending.items += items;
        if pending.items >= self.config.send_batch_size {
            if let Some(p) = self.pending.remove(&key) {
                self.size_trigger.increment(1);
                self.send(p).await;
            }
        }
    }

    async fn flush_all(&mut self, by_timer: bool) {
        let all: Vec<Pending> = self.pending.drain().map(|(_, p)| p).collect();
        for p in all {
            if by_timer {
                self.timeout_trigger.increment(1);
            }
            self.send(p).await;
        }
    }

    async fn send(&self, pending: Pending) {
        let max = self.config.send_batch_max_size;
        let parts = if max > 0 && pending.items > max {
            split(pending.batch, max)
        } else {
            vec![pending.batch]
        };
        for part in parts {
            self.send_size.record(part.item_count() as f64);
            if let Err(e) = self.next.consume(part, &pending.client).await {
                tracing::warn!(error = %e, "Sender failed.");
            }
        }
    }
}

/// The values of the partitioning metadata keys for `client` (multiple values joined by `;`).
fn partition_key(keys: &[String], client: &ClientInfo) -> Vec<String> {
    keys.iter()
        .map(|k| client.metadata_values(k).collect::<Vec<_>>().join(";"))
        .collect()
}

/// The client a partition's batches are sent with: only the partitioning metadata.
fn partition_client(keys: &[String], client: &ClientInfo) -> ClientInfo {
    if keys.is_empty() {
        return ClientInfo::default();
    }
    let metadata = client
        .metadata
        .iter()
        .filter(|(k, _)| keys.iter().any(|m| m.eq_ignore_ascii_case(k)))
        .cloned()
        .collect();
    ClientInfo {
        addr: None,
        metadata: Arc::new(metadata),
    }
}

/// Appends `more` to `into` (same signal): resources are appended, not merged.
fn append(into: &mut Batch, more: Batch) {
    match (into, more) {
        (Batch::Traces(a), Batch::Traces(b)) => a.extend(b),
        (Batch::Metrics(a), Batch::Metrics(b)) => a.extend(b),
        (Batch::Logs(a), Batch::Logs(b)) => a.extend(b),
        (into, more) => {
            tracing::error!(expected = %into.signal(), got = %more.signal(), "Batch of the wrong signal dropped.");
        }
    }
}

/// Splits `batch` into parts of at most `max` items, copying resource and scope into each.
pub fn split(batch: Batch, max: usize) -> Vec<Batch> {
    match batch {
        Batch::Traces(rs) => split_nested(rs, max, |r| &mut r.scope_spans, |s| &mut s.spans, 1)
            .into_iter()
            .map(Batch::Traces)
            .collect(),
        Batch::Logs(rl) => split_nested(rl, max, |r| &mut r.scope_logs, |s| &mut s.log_records, 1)
            .into_iter()
            .map(Batch::Logs)
            .collect(),
        // Metrics split at metric granularity, counting data points.
        Batch::Metrics(rm) => {
            split_nested(rm, max, |r| &mut r.scope_metrics, |s| &mut s.metrics, 0)
                .into_iter()
                .map(Batch::Metrics)
                .collect()
        }
    }
}

/// Generic split over resource → scope → item. `unit` is the item weight (1 for spans and
/// records); 0 means "weigh by data points" (metrics).
fn split_nested<R, S, I>(
    resources: Vec<R>,
    max: usize,
    scopes: fn(&mut R) -> &mut Vec<S>,
    items: fn(&mut S) -> &mut Vec<I>,
    unit: usize,
) -> Vec<Vec<R>>
where
    R: Clone,
    S: Clone,
    I: Weigh,
{
    let mut parts: Vec<Vec<R>> = Vec::new();
    let mut current: Vec<R> = Vec::new();
    let mut count = 0usize;
    for mut resource in resources {
        let taken_scopes = std::mem::take(scopes(&mut resource));
        let mut out_resource = resource.clone();
        for mut scope in taken_scopes {
            let taken_items = std::mem::take(items(&mut scope));
            let mut out_scope = scope.clone();
            for item in taken_items {
                let weight = if unit == 0 { item.weight() } else { unit };
                if count > 0 && count + weight > max {
                    if !items(&mut out_scope).is_empty() {
                        scopes(&mut out_resource).push(out_scope);
                    }
                    if !scopes(&mut out_resource).is_empty() {
                        current.push(out_resource);
                    }
                    parts.push(std::mem::take(&mut current));
                    out_resource = resource.clone();
                    out_scope = scope.clone();
                    count = 0;
                }
                items(&mut out_scope).push(item);
                count += weight;
            }
            if !items(&mut out_scope).is_empty() {
                scopes(&mut out_resource).push(out_scope);
            }
        }
        if !scopes(&mut out_resource).is_empty() {
            current.push(out_resource);
        }
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts
}

/// How many items an element counts as when splitting.
trait Weigh {
    fn weight(&self) -> usize;
}

impl Weigh for opentelemetry_proto::tonic::trace::v1::Span {
    fn weight(&self) -> usize {
        1
    }
}

impl Weigh for opentelemetry_proto::tonic::logs::v1::LogRecord {
    fn weight(&self) -> usize {
        1
    }
}

impl Weigh for opentelemetry_proto::tonic::metrics::v1::Metric {
    fn weight(&self) -> usize {
        crate::pipeline::data_point_count(self).max(1)
    }
}

#[cfg(test)]
mod tests;
