//! Kong's plugin queue (spec §9): bounded, drops the oldest entry when full, batches up to
//! `max_batch_size` or `max_coalescing_delay`, retries a failing batch with doubling delays
//! until `max_retry_time`. One background task per queue; producers never wait.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::config::QueueConfig;

/// Turns a batch into one request and delivers it.
pub trait Sender: Send + Sync + 'static {
    /// The queued entry.
    type Item: Send + 'static;

    /// Encodes a batch once (retries resend the same bytes).
    fn encode(&self, batch: Vec<Self::Item>) -> Bytes;

    /// Delivers one encoded batch.
    fn send(&self, body: Bytes) -> impl Future<Output = Result<(), String>> + Send;
}

/// What a full queue does with a new entry.
#[derive(Debug, Clone, Copy)]
enum Full {
    DropOldest,
    DropNew,
}

/// A bounded queue drained by one background task.
pub struct Queue<S: Sender> {
    name: String,
    conf: QueueConfig,
    entries: Mutex<VecDeque<S::Item>>,
    notify: Notify,
    closed: AtomicBool,
    started: AtomicBool,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    warned: AtomicBool,
    dropped: AtomicU64,
    sender: S,
}

impl<S: Sender> Queue<S> {
    /// A queue named `name` (Kong: `<plugin id>:traces`).
    pub fn new(name: String, conf: QueueConfig, sender: S) -> Arc<Self> {
        Arc::new(Self {
            name,
            conf,
            entries: Mutex::new(VecDeque::new()),
            notify: Notify::new(),
            closed: AtomicBool::new(false),
            started: AtomicBool::new(false),
            task: Mutex::new(None),
            warned: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            sender,
        })
    }

    /// The sender.
    pub fn sender(&self) -> &S {
        &self.sender
    }

    /// Entries dropped because the queue was full or a batch gave up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Adds entries (one lock for all of them); the oldest are dropped when full.
    pub fn push_all(self: &Arc<Self>, items: Vec<S::Item>) {
        self.push(items, Full::DropOldest);
    }

    /// Adds entries while there is room; the rest are dropped (Kong's OTel logs queue checks
    /// capacity first instead of evicting old records).
    pub fn push_while_room(self: &Arc<Self>, items: Vec<S::Item>) {
        self.push(items, Full::DropNew);
    }

    fn push(self: &Arc<Self>, items: Vec<S::Item>, full: Full) {
        if items.is_empty() {
            return;
        }
        self.ensure_started();
        let capacity = self.conf.max_entries.max(1) as usize;
        let mut dropped = 0u64;
        let len = {
            let Ok(mut q) = self.entries.lock() else {
                return;
            };
            for item in items {
                if q.len() >= capacity {
                    dropped += 1;
                    match full {
                        Full::DropOldest => {
                            q.pop_front();
                        }
                        Full::DropNew => continue,
                    }
                }
                q.push_back(item);
            }
            q.len()
        };
        if dropped > 0 {
            let total = self.dropped.fetch_add(dropped, Ordering::Relaxed) + dropped;
            // Logged on the first drop and then at each power of two, so a saturated queue
            // does not log per entry.
            if total == dropped || total.is_power_of_two() {
                let what = match full {
                    Full::DropOldest => "dropping old entries until processing is successful again",
                    Full::DropNew => "dropping new entries",
                };
                tracing::error!(dropped = total, "queue {}: queue full, {what}", self.name);
            }
        }
        if len * 5 >= capacity * 4 {
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!("queue {}: queue at 80% capacity", self.name);
            }
        } else {
            self.warned.store(false, Ordering::Relaxed);
        }
        self.notify.notify_one();
    }

    /// Stops accepting waits: queued entries are flushed (coalescing 0.05 s) and the task ends.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.notify.notify_one();
    }

    /// Closes the queue and waits until its task has sent (or given up on) every entry.
    pub async fn drain(self: Arc<Self>) {
        self.close();
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            if let Err(error) = task.await {
                tracing::warn!(%error, "queue {}: task failed", self.name);
            }
        }
    }

    fn ensure_started(self: &Arc<Self>) {
        if self.started.load(Ordering::Relaxed) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if !self.started.swap(true, Ordering::AcqRel) {
            let task = handle.spawn(Arc::clone(self).run());
            if let Ok(mut slot) = self.task.lock() {
                *slot = Some(task);
            }
        }
    }

    fn len(&self) -> usize {
        self.entries.lock().map(|q| q.len()).unwrap_or(0)
    }

    fn take(&self, n: usize) -> Vec<S::Item> {
        let Ok(mut q) = self.entries.lock() else {
            return Vec::new();
        };
        let n = n.min(q.len());
        q.drain(..n).collect()
    }

    async fn run(self: Arc<Self>) {
        let batch_size = self.conf.max_batch_size.max(1) as usize;
        loop {
            while self.len() == 0 {
                if self.closed.load(Ordering::Relaxed) {
                    return;
                }
                self.notify.notified().await;
            }
            if batch_size > 1 {
                let delay = if self.closed.load(Ordering::Relaxed) {
                    0.05
                } else {
                    self.conf.max_coalescing_delay
                };
                let deadline = Instant::now() + Duration::from_secs_f64(delay);
                while self.len() < batch_size && !self.closed.load(Ordering::Relaxed) {
                    if tokio::time::timeout_at(deadline, self.notify.notified())
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
            let batch = self.take(batch_size);
            if batch.is_empty() {
                continue;
            }
            self.deliver(batch).await;
        }
    }

    async fn deliver(&self, batch: Vec<S::Item>) {
        let count = batch.len() as u64;
        let body = self.sender.encode(batch);
        let started = Instant::now();
        let give_up = Duration::from_secs_f64(self.conf.max_retry_time);
        let mut delay = self.conf.initial_retry_delay;
        loop {
            match self.sender.send(body.clone()).await {
                Ok(()) => return,
                Err(error) => {
                    if started.elapsed() + Duration::from_secs_f64(delay) > give_up {
                        self.dropped.fetch_add(count, Ordering::Relaxed);
                        tracing::error!(
                            "queue {}: could not send entries due to max_retry_time exceeded. \
                             {count} queue entries were lost",
                            self.name
                        );
                        return;
                    }
                    tracing::warn!(
                        "queue {}: handler could not process entries: {error}",
                        self.name
                    );
                    tokio::time::sleep(Duration::from_secs_f64(delay)).await;
                    delay = (delay * 2.0).min(self.conf.max_retry_delay);
                }
            }
        }
    }
}
