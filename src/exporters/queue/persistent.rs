//! The persistent sending queue: batches are encoded (OTLP protobuf) and written to a
//! storage extension's log inside `consume`, so a client's success means "on disk".
//!
//! Records stay in the log until exported or dropped as a permanent or exhausted failure,
//! then are acknowledged. What was written but not acknowledged when the process stopped
//! (however it stopped, `kill -9` included) is sent again after a restart: at-least-once,
//! so a batch in flight at the moment of the crash may arrive twice. Memory holds the
//! waiting batches' bytes, bounded by `queue_size`.
//!
//! `queue_size` counts in the unit of `sizer`: batches, items, or the records' bytes (the
//! encoded payload's length, known without further work). Counting items in the records
//! recovered at start decodes each of them once.
//!
//! The write happens on the calling task, under the queue's mutex (one per exporter and
//! signal, taken once per batch, never per item): a `write` into the page cache, plus a
//! device flush with `fsync: true`, which then bounds the throughput of that exporter.
//! Opening the log at start reads what is pending and may wait `timeout` for the lock.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tokio::sync::Notify;

use super::Sizer;
use crate::extensions::file_storage::log::LogError;
use crate::extensions::storage::Client;
use crate::pipeline::{Batch, Signal};

/// Why an offer was refused.
#[derive(Debug, thiserror::Error)]
pub(super) enum OfferError {
    /// What is waiting leaves no room for the batch.
    #[error("sending queue is full")]
    Full,
    /// The batch alone is bigger than the whole queue.
    #[error("element size too large")]
    TooLarge,
    /// The log could not be written.
    #[error("cannot write to the persistent queue: {0}")]
    Log(#[from] LogError),
}

struct State {
    client: Client,
    /// Sequence number, payload and size (in the sizer's unit) of each waiting batch.
    waiting: VecDeque<(u64, Vec<u8>, u64)>,
    /// Sum of the waiting batches' sizes.
    used: u64,
    /// Room held by [`Slot`]s not yet committed.
    reserved: u64,
}

impl State {
    /// Whether `size` more fits in `capacity` now.
    fn fits(&self, size: u64, capacity: u64) -> bool {
        self.used + self.reserved + size <= capacity
    }
}

/// A bounded FIFO of encoded batches backed by a storage log.
pub(super) struct PersistentQueue {
    state: Mutex<State>,
    capacity: u64,
    /// Signalled when a batch is offered (one dispatcher waits).
    offered: Notify,
    /// Signalled when a batch leaves, for blocking offers.
    space: Notify,
}

impl PersistentQueue {
    /// The queue over `client`, holding what it recovered; `capacity` units of `sizer` at
    /// most are accepted (recovered batches may exceed it).
    pub(super) fn new(mut client: Client, capacity: u64, sizer: Sizer, signal: Signal) -> Self {
        let waiting: VecDeque<(u64, Vec<u8>, u64)> = std::mem::take(&mut client.recovered.pending)
            .into_iter()
            .map(|(seq, payload)| {
                let size = recovered_size(sizer, signal, &payload);
                (seq, payload, size)
            })
            .collect();
        let used = waiting.iter().map(|w| w.2).sum();
        Self {
            state: Mutex::new(State {
                client,
                waiting,
                used,
                reserved: 0,
            }),
            capacity,
            offered: Notify::new(),
            space: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state consistent (each step is one
        // push, pop or write), so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes `payload` (of `size` units) to the log and queues it; returns the units now
    /// in use, or the error with the payload given back.
    pub(super) fn offer(&self, payload: Vec<u8>, size: u64) -> Result<u64, (OfferError, Vec<u8>)> {
        if size > self.capacity {
            return Err((OfferError::TooLarge, payload));
        }
        let state = self.lock();
        if !state.fits(size, self.capacity) {
            return Err((OfferError::Full, payload));
        }
        self.append(state, payload, size)
    }

    fn append(
        &self,
        mut state: std::sync::MutexGuard<'_, State>,
        payload: Vec<u8>,
        size: u64,
    ) -> Result<u64, (OfferError, Vec<u8>)> {
        let seq = match state.client.log.append(&payload) {
            Ok(seq) => seq,
            Err(e) => return Err((e.into(), payload)),
        };
        state.waiting.push_back((seq, payload, size));
        state.used += size;
        let used = state.used;
        drop(state);
        self.offered.notify_one();
        Ok(used)
    }

    /// Holds room for a batch of `size` units, if there is some.
    pub(super) fn try_reserve(self: &Arc<Self>, size: u64) -> Result<Slot, OfferError> {
        if size > self.capacity {
            return Err(OfferError::TooLarge);
        }
        let mut state = self.lock();
        if !state.fits(size, self.capacity) {
            return Err(OfferError::Full);
        }
        state.reserved += size;
        Ok(Slot(Some((self.clone(), size))))
    }

    /// Waits until `size` units fit (blocking offers).
    pub(super) async fn room(&self, size: u64) {
        loop {
            let notified = self.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.lock().fits(size, self.capacity) {
                return;
            }
            notified.await;
        }
    }

    /// The next batch, waiting for one.
    pub(super) async fn pop(&self) -> (u64, Vec<u8>) {
        loop {
            if let Some(item) = self.try_pop() {
                return item;
            }
            self.offered.notified().await;
        }
    }

    /// The next batch, if one is waiting.
    pub(super) fn try_pop(&self) -> Option<(u64, Vec<u8>)> {
        let (seq, payload, _) = {
            let mut state = self.lock();
            let item = state.waiting.pop_front()?;
            state.used -= item.2;
            item
        };
        self.space.notify_waiters();
        Some((seq, payload))
    }

    /// Units of the sizer the waiting batches use.
    pub(super) fn used(&self) -> u64 {
        self.lock().used
    }

    /// Marks `seq` done: it will not be sent again after a restart.
    pub(super) fn ack(&self, seq: u64, exporter: &str) {
        if let Err(e) = self.lock().client.log.ack(seq) {
            tracing::error!(exporter, error = %e, "Cannot record a sent batch in the persistent queue; it may be sent again after a restart.");
        }
    }
}

/// Room (in units of the sizer) held in a [`PersistentQueue`]; given back when dropped
/// uncommitted.
pub(super) struct Slot(Option<(Arc<PersistentQueue>, u64)>);

impl Slot {
    /// Writes `payload` into the held room; returns the units now in use.
    pub(super) fn commit(mut self, payload: Vec<u8>) -> Result<u64, OfferError> {
        let Some((queue, size)) = self.0.take() else {
            return Err(OfferError::Full);
        };
        let mut state = queue.lock();
        state.reserved -= size;
        queue.append(state, payload, size).map_err(|(e, _)| e)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((queue, size)) = self.0.take() {
            queue.lock().reserved -= size;
            queue.space.notify_waiters();
        }
    }
}

/// The size of a recovered record: items need the record decoded (once, at start); one
/// that does not decode counts as one unit and is dropped when dispatched.
fn recovered_size(sizer: Sizer, signal: Signal, payload: &[u8]) -> u64 {
    match sizer {
        Sizer::Requests => 1,
        Sizer::Bytes => payload.len() as u64,
        Sizer::Items => decode(signal, payload).map_or(1, |b| b.item_count() as u64),
    }
    .max(1)
}

/// The OTLP request protobuf of `batch`, encoded without copying it into a request.
pub(super) fn encode(batch: &Batch) -> Vec<u8> {
    batch.encode_request()
}

/// The batch of `signal` encoded by [`encode`].
///
/// # Errors
/// When the bytes are not such a request.
pub(super) fn decode(signal: Signal, payload: &[u8]) -> Result<Batch, prost::DecodeError> {
    Ok(match signal {
        Signal::Traces => Batch::Traces(ExportTraceServiceRequest::decode(payload)?.resource_spans),
        Signal::Metrics => {
            Batch::Metrics(ExportMetricsServiceRequest::decode(payload)?.resource_metrics)
        }
        Signal::Logs => Batch::Logs(ExportLogsServiceRequest::decode(payload)?.resource_logs),
    })
}
