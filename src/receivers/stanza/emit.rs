//! From operators to the pipeline: entries are batched (up to 100, or every 100 ms),
//! converted to OTLP logs once, and handed to the logs consumer, counted in the
//! receiver's accepted/refused counters (`transport=""`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::input::Retry;
use super::{into_resource_logs, Entry};
use crate::pipeline::{Batch, BoxConsumer, ClientInfo, Signal};
use crate::telemetry::names;

/// Entries per `ConsumeLogs`.
pub const MAX_BATCH: usize = 100;
/// Longest time an entry waits for its batch.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// Entry groups buffered between the inputs and the batcher.
const CHANNEL_CAPACITY: usize = 256;

/// Where inputs put entries.
#[derive(Clone, Debug)]
pub struct Emitter {
    tx: mpsc::Sender<Vec<Entry>>,
}

impl Emitter {
    /// Hands entries on; waits while the batcher is behind (back-pressure to the reader).
    /// Returns false when the receiver stopped.
    pub async fn send(&self, entries: Vec<Entry>) -> bool {
        if entries.is_empty() {
            return true;
        }
        self.tx.send(entries).await.is_ok()
    }
}

/// Flushes operator state (`recombine`) into the batch: `true` at the end, when all of
/// it goes.
pub type Flush = Arc<dyn Fn(bool, &mut Vec<Entry>) + Send + Sync>;

/// Starts the batcher task for receiver `id`; it ends, after flushing, when every
/// [`Emitter`] is dropped.
pub fn start(
    id: &str,
    consumer: Option<BoxConsumer>,
    retry: Retry,
    stop: CancellationToken,
) -> (Emitter, tokio::task::JoinHandle<()>) {
    start_flushing(id, consumer, retry, stop, None)
}

/// [`start`], with `flush` called on every batch tick and once when the inputs are done.
pub fn start_flushing(
    id: &str,
    consumer: Option<BoxConsumer>,
    retry: Retry,
    stop: CancellationToken,
    flush: Option<Flush>,
) -> (Emitter, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let labels = [("receiver", id.to_owned()), ("transport", String::new())];
    let sink = Sink {
        id: id.to_owned(),
        consumer,
        retry,
        stop,
        accepted: metrics::counter!(
            names::with_items(names::RECEIVER_ACCEPTED, Signal::Logs),
            &labels
        ),
        refused: metrics::counter!(
            names::with_items(names::RECEIVER_REFUSED, Signal::Logs),
            &labels
        ),
    };
    let handle = tokio::spawn(run(rx, sink, flush));
    (Emitter { tx }, handle)
}

struct Sink {
    id: String,
    consumer: Option<BoxConsumer>,
    retry: Retry,
    stop: CancellationToken,
    accepted: metrics::Counter,
    refused: metrics::Counter,
}

impl Sink {
    async fn deliver(&self, entries: Vec<Entry>) {
        let Some(consumer) = &self.consumer else {
            return;
        };
        let count = entries.len() as u64;
        let batch = Batch::Logs(into_resource_logs(entries));
        let client = ClientInfo::default();
        if !self.retry.enabled {
            match consumer.consume(batch, &client).await {
                Ok(()) => self.accepted.increment(count),
                Err(e) => {
                    self.refused.increment(count);
                    tracing::error!(receiver = %self.id, error = %e.message, "ConsumeLogs() failed");
                }
            }
            return;
        }
        let mut wait = self.retry.initial_interval;
        let started = tokio::time::Instant::now();
        loop {
            match consumer.consume(batch.clone(), &client).await {
                Ok(()) => {
                    self.accepted.increment(count);
                    return;
                }
                Err(e) => {
                    let expired = !self.retry.max_elapsed_time.is_zero()
                        && started.elapsed() + wait > self.retry.max_elapsed_time;
                    if expired || self.stop.is_cancelled() {
                        self.refused.increment(count);
                        tracing::error!(receiver = %self.id, error = %e.message, "ConsumeLogs() failed");
                        return;
                    }
                    tracing::debug!(receiver = %self.id, error = %e.message, "ConsumeLogs() failed, retrying");
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = self.stop.cancelled() => {}
                    }
                    wait = (wait * 2).min(self.retry.max_interval);
                }
            }
        }
    }
}

async fn deliver_all(sink: &Sink, pending: &mut Vec<Entry>) {
    while !pending.is_empty() {
        let rest = pending.split_off(MAX_BATCH.min(pending.len()));
        sink.deliver(std::mem::replace(pending, rest)).await;
    }
}

async fn run(mut rx: mpsc::Receiver<Vec<Entry>>, sink: Sink, flush: Option<Flush>) {
    let mut pending: Vec<Entry> = Vec::with_capacity(MAX_BATCH);
    let mut ticker = tokio::time::interval(FLUSH_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            got = rx.recv() => {
                let Some(entries) = got else { break };
                pending.extend(entries);
                while pending.len() >= MAX_BATCH {
                    let rest = pending.split_off(MAX_BATCH);
                    sink.deliver(std::mem::replace(&mut pending, rest)).await;
                }
            }
            _ = ticker.tick() => {
                if let Some(f) = &flush {
                    f(false, &mut pending);
                }
                deliver_all(&sink, &mut pending).await;
            }
        }
    }
    if let Some(f) = &flush {
        f(true, &mut pending);
    }
    deliver_all(&sink, &mut pending).await;
}
