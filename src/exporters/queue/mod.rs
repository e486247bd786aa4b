//! The sending queue and retry loop every queued exporter shares.
//!
//! An exporter implements [`Export`]: send one batch, say whether a failure is retryable.
//! [`QueuedExporter`] puts it in the pipeline: `consume` enqueues into a bounded queue and
//! returns (a full queue refuses with a retryable error: backpressure, never a silent drop);
//! up to `num_consumers` exports run at once, each retried with exponential backoff and
//! jitter, waiting at least what the server asked (`Retry-After`), until
//! `max_elapsed_time`. Permanent failures are dropped, logged and counted.
//!
//! `queue_size` counts what `sending_queue.sizer` says ([`Sizer`]): requests (the
//! default), items, or the batches' encoded OTLP protobuf bytes. A batch bigger than the
//! whole queue is refused (`element size too large`, as otelcol); an empty one is accepted
//! and dropped when counting items or bytes.
//!
//! Shutdown interrupts waiting retries, then gives every queued batch one attempt.
//!
//! With `sending_queue.storage` set, the queue is persistent ([`persistent`]): `consume`
//! writes the encoded batch to the storage extension's log before returning; a batch is
//! acknowledged in the log once sent or dropped; what shutdown could not send stays on
//! disk and is sent after the next start.

mod config;
mod persistent;
mod sizer;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, Mutex, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{QueueConfig, RetryConfig};
pub use sizer::Sizer;

use crate::component::{Component, ComponentError, Host};
use crate::config::ComponentId;
use crate::extensions::storage::client_name;
use crate::pipeline::{Batch, ClientInfo, ConsumeError, Consumer, Reservation, Signal};
use crate::telemetry::names;
use persistent::{OfferError, PersistentQueue};
use sizer::{Capacity, Held, Refusal};

/// Why one export attempt failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// May succeed later; `throttle` is the wait the server asked for.
    #[error("{message}")]
    Retryable {
        /// What happened.
        message: String,
        /// `Retry-After` / `RetryInfo`, when given.
        throttle: Option<Duration>,
    },
    /// Will never succeed; the data is dropped.
    #[error("Permanent error: {message}")]
    Permanent {
        /// What happened.
        message: String,
    },
}

impl ExportError {
    /// A retryable failure without a hint.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self::Retryable {
            message: message.into(),
            throttle: None,
        }
    }

    /// A permanent failure.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::Permanent {
            message: message.into(),
        }
    }
}

/// Sends one batch somewhere.
#[async_trait]
pub trait Export: Send + Sync + 'static {
    /// One attempt. Called again with the same batch on retryable failures.
    ///
    /// # Errors
    /// [`ExportError`], classified by the exporter.
    async fn export(&self, batch: &Batch) -> Result<(), ExportError>;

    /// Called once at start, before any export (resolves client authenticators).
    ///
    /// # Errors
    /// What the exporter needs from the host is missing.
    async fn start(&self, host: &Host) -> Result<(), ComponentError> {
        let _ = host;
        Ok(())
    }
}

/// Own-metric handles of one exporter instance, created once.
struct Counters {
    sent: metrics::Counter,
    failed: metrics::Counter,
    enqueue_failed: metrics::Counter,
    queue_size: metrics::Gauge,
}

struct Shared<E> {
    exporter: E,
    name: String,
    timeout: Duration,
    retry: RetryConfig,
    counters: Counters,
    /// Cancelled at shutdown: waiting retries give up.
    stop: CancellationToken,
    /// Batches interrupted by shutdown are kept (in the persistent queue), not dropped.
    keep_interrupted: bool,
    signal: Signal,
}

/// Why [`Shared::send`] did not deliver a batch.
enum Undelivered {
    /// Given up on: logged and counted as failed.
    Dropped,
    /// Interrupted by shutdown while the persistent queue still holds it.
    Kept,
}

/// A batch in the in-memory queue, with the capacity it holds until dispatched.
type Queued = (Batch, ClientInfo, Held);

/// An [`Export`] with a sending queue and retries: the node the graph holds.
pub struct QueuedExporter<E> {
    shared: Arc<Shared<E>>,
    queue: QueueConfig,
    /// What the in-memory queue holds, in the sizer's unit.
    capacity: Arc<Capacity>,
    tx: mpsc::Sender<Queued>,
    rx: Mutex<Option<mpsc::Receiver<Queued>>>,
    tasks: TaskTracker,
    /// Set at start when `sending_queue.storage` names a storage extension.
    persistent: OnceLock<Arc<PersistentQueue>>,
}

impl<E: Export> QueuedExporter<E> {
    /// Wraps `exporter` (own metrics name it `name`, for `signal`).
    pub fn new(
        exporter: E,
        name: &str,
        signal: Signal,
        timeout: Duration,
        retry: RetryConfig,
        queue: QueueConfig,
    ) -> Self {
        let labels = [("exporter", name.to_owned())];
        let gauge_labels = [
            ("exporter", name.to_owned()),
            ("data_type", signal.as_str().to_owned()),
        ];
        let counters = Counters {
            sent: metrics::counter!(names::with_items(names::EXPORTER_SENT, signal), &labels),
            failed: metrics::counter!(
                names::with_items(names::EXPORTER_SEND_FAILED, signal),
                &labels
            ),
            enqueue_failed: metrics::counter!(
                names::with_items(names::EXPORTER_ENQUEUE_FAILED, signal),
                &labels
            ),
            queue_size: metrics::gauge!(names::EXPORTER_QUEUE_SIZE, &gauge_labels),
        };
        let limit = if queue.enabled {
            queue.queue_size.max(1)
        } else {
            1
        };
        if queue.enabled {
            metrics::gauge!(names::EXPORTER_QUEUE_CAPACITY, &gauge_labels).set(limit as f64);
        }
        let capacity = Arc::new(Capacity::new(limit as u64, counters.queue_size.clone()));
        // Every queued batch holds at least one unit of `limit`, so the channel never fills
        // before the capacity does; its own bound is only a backstop.
        let (tx, rx) = mpsc::channel(limit.min(Semaphore::MAX_PERMITS));
        Self {
            shared: Arc::new(Shared {
                exporter,
                name: name.to_owned(),
                timeout,
                retry,
                counters,
                stop: CancellationToken::new(),
                keep_interrupted: queue.enabled && queue.storage.is_some(),
                signal,
            }),
            queue,
            capacity,
            tx,
            rx: Mutex::new(Some(rx)),
            tasks: TaskTracker::new(),
            persistent: OnceLock::new(),
        }
    }

    /// The wrapped exporter.
    pub fn exporter(&self) -> &E {
        &self.shared.exporter
    }
}

impl<E: Export> Shared<E> {
    /// Exports with retries. Returns the final error, already logged and counted.
    async fn send(&self, batch: Batch) -> Result<(), ExportError> {
        self.deliver(batch).await.map_err(|(e, _)| e)
    }

    /// [`Shared::send`], saying whether an undelivered batch was dropped or kept.
    async fn deliver(&self, batch: Batch) -> Result<(), (ExportError, Undelivered)> {
        let items = batch.item_count() as u64;
        let started = Instant::now();
        let mut interval = self.retry.initial_interval;
        loop {
            let attempt =
                match tokio::time::timeout(self.timeout, self.exporter.export(&batch)).await {
                    Ok(result) => result,
                    Err(_) => Err(ExportError::retryable(format!(
                        "request timed out after {}",
                        crate::config::duration::format(self.timeout)
                    ))),
                };
            let error = match attempt {
                Ok(()) => {
                    self.counters.sent.increment(items);
                    return Ok(());
                }
                Err(e) => e,
            };
            let throttle = match &error {
                ExportError::Permanent { .. } => {
                    return Err(self.drop_batch(error, items, "not retryable error"))
                }
                ExportError::Retryable { throttle, .. } => *throttle,
            };
            if !self.retry.enabled {
                return Err(self.drop_batch(error, items, "retries disabled"));
            }
            if self.stop.is_cancelled() {
                return Err(self.interrupted(error, items));
            }
            let wait =
                jitter(interval, self.retry.randomization_factor).max(throttle.unwrap_or_default());
            let max = self.retry.max_elapsed_time;
            if !max.is_zero() && started.elapsed() + wait > max {
                return Err(self.drop_batch(error, items, "no more retries left"));
            }
            tracing::info!(
                exporter = %self.name,
                error = %error,
                interval = %crate::config::duration::format(wait),
                "Exporting failed. Will retry the request after interval."
            );
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.stop.cancelled() => {
                    return Err(self.interrupted(error, items));
                }
            }
            interval = interval
                .mul_f64(self.retry.multiplier)
                .min(self.retry.max_interval);
        }
    }

    fn drop_batch(&self, error: ExportError, items: u64, why: &str) -> (ExportError, Undelivered) {
        self.counters.failed.increment(items);
        tracing::error!(
            exporter = %self.name,
            error = %format!("{why}: {error}"),
            dropped_items = items,
            "Exporting failed. Dropping data."
        );
        (error, Undelivered::Dropped)
    }

    /// Counts and logs a refusal by a full in-memory queue.
    fn refuse_full(&self, items: u64, reason: &str) -> ConsumeError {
        self.counters.enqueue_failed.increment(items);
        tracing::warn!(exporter = %self.name, dropped_items = items, "Dropping data because sending_queue is full. Try increasing queue_size.");
        ConsumeError::retryable(reason)
    }

    /// Counts and logs a refusal by the in-memory queue's capacity.
    fn refuse(&self, items: u64, refusal: Refusal) -> ConsumeError {
        match refusal {
            Refusal::Full => self.refuse_full(items, "sending queue is full"),
            Refusal::TooLarge => {
                self.counters.enqueue_failed.increment(items);
                tracing::warn!(exporter = %self.name, dropped_items = items, "Dropping data because the request is larger than the whole sending_queue. Try increasing queue_size.");
                ConsumeError::retryable(refusal.to_string())
            }
        }
    }

    /// Counts and logs a refusal by the persistent queue.
    fn refuse_persistent(&self, error: &OfferError, items: u64) -> ConsumeError {
        self.counters.enqueue_failed.increment(items);
        match error {
            OfferError::Full => {
                tracing::warn!(exporter = %self.name, dropped_items = items, "Dropping data because sending_queue is full. Try increasing queue_size.")
            }
            OfferError::TooLarge => {
                tracing::warn!(exporter = %self.name, dropped_items = items, "Dropping data because the request is larger than the whole sending_queue. Try increasing queue_size.")
            }
            OfferError::Log(e) => {
                tracing::error!(exporter = %self.name, error = %e, dropped_items = items, "Cannot write to the persistent queue.")
            }
        }
        ConsumeError::retryable(error.to_string())
    }

    fn interrupted(&self, error: ExportError, items: u64) -> (ExportError, Undelivered) {
        if !self.keep_interrupted {
            return self.drop_batch(error, items, "interrupted due to shutdown");
        }
        tracing::info!(
            exporter = %self.name,
            error = %error,
            kept_items = items,
            "Exporting interrupted by shutdown; the batch stays in the persistent queue."
        );
        (error, Undelivered::Kept)
    }

    /// Exports one batch of the persistent queue and acknowledges it unless it was kept.
    async fn deliver_persisted(&self, queue: &PersistentQueue, seq: u64, payload: &[u8]) -> bool {
        let batch = match persistent::decode(self.signal, payload) {
            Ok(batch) => batch,
            Err(e) => {
                tracing::error!(exporter = %self.name, error = %e, "Cannot decode a batch of the persistent queue. Dropping data.");
                queue.ack(seq, &self.name);
                return true;
            }
        };
        match self.deliver(batch).await {
            Ok(()) | Err((_, Undelivered::Dropped)) => {
                queue.ack(seq, &self.name);
                true
            }
            Err((_, Undelivered::Kept)) => false,
        }
    }
}

/// `base` spread uniformly over `[base·(1−f), base·(1+f)]`.
fn jitter(base: Duration, factor: f64) -> Duration {
    if factor <= 0.0 {
        return base;
    }
    let spread = rand::random::<f64>() * 2.0 - 1.0;
    base.mul_f64((1.0 + factor * spread).max(0.0))
}

impl<E: Export> QueuedExporter<E> {
    /// The size of `batch` in the sizer's unit; `None` for an empty batch counted
    /// in items or bytes, which is accepted and dropped (as otelcol).
    fn size_of(&self, batch: &Batch) -> Option<u64> {
        let size = self.queue.sizer.size_of(batch);
        (size > 0).then_some(size)
    }

    async fn offer_persistent(&self, batch: &Batch, items: u64) -> Result<(), ConsumeError> {
        let shared = &self.shared;
        let Some(queue) = self.persistent.get() else {
            return Err(ConsumeError::retryable("exporter is not started"));
        };
        let mut payload = persistent::encode(batch);
        let size = match self.queue.sizer {
            Sizer::Requests => 1,
            Sizer::Items => items,
            Sizer::Bytes => payload.len() as u64,
        };
        if size == 0 {
            return Ok(());
        }
        loop {
            let error = match queue.offer(payload, size) {
                Ok(used) => {
                    shared.counters.queue_size.set(used as f64);
                    return Ok(());
                }
                Err((OfferError::Full, back)) if self.queue.blocks() => {
                    payload = back;
                    tokio::select! {
                        () = queue.room(size) => continue,
                        () = shared.stop.cancelled() => OfferError::Full,
                    }
                }
                Err((e, _)) => e,
            };
            return Err(shared.refuse_persistent(&error, items));
        }
    }

    /// Opens the persistent queue named by `storage` and starts its dispatcher.
    fn start_persistent(&self, storage_id: &str, host: &Host) -> Result<(), ComponentError> {
        let shared = self.shared.clone();
        let storage = host
            .extensions
            .get(storage_id)
            .and_then(|e| e.storage())
            .ok_or_else(|| {
                ComponentError::Other(format!("storage extension \"{storage_id}\" not found"))
            })?;
        let id = ComponentId::parse(&shared.name).map_err(ComponentError::Config)?;
        let client = storage
            .open(&client_name("exporter", &id, shared.signal.as_str()))
            .map_err(|e| ComponentError::Other(e.to_string()))?;
        let queue = Arc::new(PersistentQueue::new(
            client,
            self.queue.queue_size.max(1) as u64,
            self.queue.sizer,
            shared.signal,
        ));
        shared.counters.queue_size.set(queue.used() as f64);
        let _first = self.persistent.set(queue.clone());
        let slots = Arc::new(Semaphore::new(self.queue.num_consumers));
        let tasks = self.tasks.clone();
        self.tasks.spawn(async move {
            loop {
                let (seq, payload) = tokio::select! {
                    biased;
                    () = shared.stop.cancelled() => break,
                    item = queue.pop() => item,
                };
                shared.counters.queue_size.set(queue.used() as f64);
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    break;
                };
                let worker = shared.clone();
                let queue = queue.clone();
                tasks.spawn(async move {
                    worker.deliver_persisted(&queue, seq, &payload).await;
                    drop(permit);
                });
            }
            // Shutdown: one attempt each while the backend answers; the rest stays on disk.
            while let Some((seq, payload)) = queue.try_pop() {
                shared.counters.queue_size.set(queue.used() as f64);
                if !shared.deliver_persisted(&queue, seq, &payload).await {
                    break;
                }
            }
        });
        Ok(())
    }
}

#[async_trait]
impl<E: Export> Consumer for QueuedExporter<E> {
    async fn consume(&self, batch: Batch, client: &ClientInfo) -> Result<(), ConsumeError> {
        let shared = &self.shared;
        if !self.queue.enabled {
            let sent = crate::pipeline::client::scope(client.clone(), shared.send(batch));
            return sent.await.map_err(|e| match e {
                ExportError::Permanent { message } => ConsumeError::permanent(message),
                ExportError::Retryable { message, throttle } => ConsumeError {
                    kind: crate::pipeline::ErrorKind::Retryable {
                        retry_after: throttle,
                    },
                    message,
                },
            });
        }
        let items = batch.item_count() as u64;
        if self.queue.storage.is_some() {
            return self.offer_persistent(&batch, items).await;
        }
        let Some(size) = self.size_of(&batch) else {
            return Ok(());
        };
        let held = if self.queue.blocks() {
            self.capacity.take(size, &shared.stop).await
        } else {
            self.capacity.try_take(size)
        };
        let held = held.map_err(|refusal| shared.refuse(items, refusal))?;
        self.tx
            .try_send((batch, client.clone(), held))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => shared.refuse(items, Refusal::Full),
                mpsc::error::TrySendError::Closed(_) => {
                    shared.refuse_full(items, "exporter is shutting down")
                }
            })
    }

    fn try_reserve(&self, batch: &Batch) -> Result<Option<Reservation>, ConsumeError> {
        // Blocking queues wait in `consume`; without a queue the export runs there.
        if !self.queue.enabled || self.queue.blocks() {
            return Ok(None);
        }
        let items = batch.item_count() as u64;
        let shared = self.shared.clone();
        if self.queue.storage.is_some() {
            let Some(queue) = self.persistent.get() else {
                return Err(ConsumeError::retryable("exporter is not started"));
            };
            let Some(size) = self.size_of(batch) else {
                return Ok(None);
            };
            let slot = queue
                .try_reserve(size)
                .map_err(|e| shared.refuse_persistent(&e, items))?;
            return Ok(Some(Reservation::new(move |batch, _client| {
                match slot.commit(persistent::encode(&batch)) {
                    Ok(used) => {
                        shared.counters.queue_size.set(used as f64);
                        Ok(())
                    }
                    Err(e) => Err(shared.refuse_persistent(&e, items)),
                }
            })));
        }
        let Some(size) = self.size_of(batch) else {
            return Ok(None);
        };
        let held = self
            .capacity
            .try_take(size)
            .map_err(|refusal| shared.refuse(items, refusal))?;
        match self.tx.clone().try_reserve_owned() {
            Ok(permit) => Ok(Some(Reservation::new(move |batch, client| {
                let _sender = permit.send((batch, client.clone(), held));
                Ok(())
            }))),
            Err(mpsc::error::TrySendError::Full(_)) => Err(shared.refuse(items, Refusal::Full)),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                Err(ConsumeError::retryable("exporter is shutting down"))
            }
        }
    }
}

#[async_trait]
impl<E: Export> Component for QueuedExporter<E> {
    async fn start(&self, host: &Host) -> Result<(), ComponentError> {
        self.shared.exporter.start(host).await?;
        let Some(mut rx) = self.rx.lock().await.take() else {
            return Ok(());
        };
        if !self.queue.enabled {
            return Ok(());
        }
        if let Some(storage) = &self.queue.storage {
            return self.start_persistent(storage, host);
        }
        let shared = self.shared.clone();
        let slots = Arc::new(Semaphore::new(self.queue.num_consumers));
        let tasks = self.tasks.clone();
        self.tasks.spawn(async move {
            loop {
                let (batch, client, held) = tokio::select! {
                    biased;
                    () = shared.stop.cancelled() => break,
                    item = rx.recv() => match item {
                        Some(item) => item,
                        None => break,
                    },
                };
                drop(held);
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    break;
                };
                let worker = shared.clone();
                tasks.spawn(async move {
                    // The error was logged and counted where it was decided.
                    let sent = crate::pipeline::client::scope(client, worker.send(batch));
                    let _sent = sent.await.is_ok();
                    drop(permit);
                });
            }
            // Shutdown: what is still queued gets one attempt each (retries are off now).
            rx.close();
            while let Some((batch, client, held)) = rx.recv().await {
                drop(held);
                let sent = crate::pipeline::client::scope(client, shared.send(batch));
                let _sent = sent.await.is_ok();
            }
        });
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), ComponentError> {
        self.shared.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
