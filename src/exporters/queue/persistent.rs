//! The persistent sending queue: batches are encoded (OTLP protobuf) and written to a
//! storage extension's log inside `consume`, so a client's success means "on disk".
//!
//! Records stay in the log until exported or dropped as a permanent or exhausted failure,
//! then are acknowledged. What was written but not acknowledged when the process stopped
//! (however it stopped, `kill -9` included) is sent again after a restart: at-least-once,
//! so a batch in flight at the moment of the crash may arrive twice. Memory holds the
//! waiting batches' bytes, bounded by `queue_size`.
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

use crate::extensions::file_storage::log::LogError;
use crate::extensions::storage::Client;
use crate::pipeline::{Batch, Signal};

/// Why an offer was refused.
#[derive(Debug, thiserror::Error)]
pub(super) enum OfferError {
    /// `queue_size` batches are waiting.
    #[error("sending queue is full")]
    Full,
    /// The log could not be written.
    #[error("cannot write to the persistent queue: {0}")]
    Log(#[from] LogError),
}

struct State {
    client: Client,
    waiting: VecDeque<(u64, Vec<u8>)>,
    /// Rooms held by [`Slot`]s not yet committed.
    reserved: usize,
}

/// A bounded FIFO of encoded batches backed by a storage log.
pub(super) struct PersistentQueue {
    state: Mutex<State>,
    capacity: usize,
    /// Signalled when a batch is offered (one dispatcher waits).
    offered: Notify,
    /// Signalled when a batch leaves, for blocking offers.
    space: Notify,
}

impl PersistentQueue {
    /// The queue over `client`, holding what it recovered; `capacity` batches at most are
    /// accepted (recovered ones may exceed it).
    pub(super) fn new(mut client: Client, capacity: usize) -> Self {
        let waiting = std::mem::take(&mut client.recovered.pending).into();
        Self {
            state: Mutex::new(State {
                client,
                waiting,
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

    /// Writes `payload` to the log and queues it; returns the queue length, or the error
    /// with the payload given back.
    pub(super) fn offer(&self, payload: Vec<u8>) -> Result<usize, (OfferError, Vec<u8>)> {
        let state = self.lock();
        if state.waiting.len() + state.reserved >= self.capacity {
            return Err((OfferError::Full, payload));
        }
        self.append(state, payload)
    }

    fn append(
        &self,
        mut state: std::sync::MutexGuard<'_, State>,
        payload: Vec<u8>,
    ) -> Result<usize, (OfferError, Vec<u8>)> {
        let seq = match state.client.log.append(&payload) {
            Ok(seq) => seq,
            Err(e) => return Err((e.into(), payload)),
        };
        state.waiting.push_back((seq, payload));
        let len = state.waiting.len();
        drop(state);
        self.offered.notify_one();
        Ok(len)
    }

    /// Holds room for one batch, if there is some.
    pub(super) fn try_reserve(self: &Arc<Self>) -> Option<Slot> {
        let mut state = self.lock();
        if state.waiting.len() + state.reserved >= self.capacity {
            return None;
        }
        state.reserved += 1;
        Some(Slot(Some(self.clone())))
    }

    /// Waits until there is room (blocking offers).
    pub(super) async fn room(&self) {
        loop {
            let notified = self.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let used = {
                let state = self.lock();
                state.waiting.len() + state.reserved
            };
            if used < self.capacity {
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
        let item = self.lock().waiting.pop_front();
        if item.is_some() {
            self.space.notify_waiters();
        }
        item
    }

    /// Batches waiting.
    pub(super) fn len(&self) -> usize {
        self.lock().waiting.len()
    }

    /// Marks `seq` done: it will not be sent again after a restart.
    pub(super) fn ack(&self, seq: u64, exporter: &str) {
        if let Err(e) = self.lock().client.log.ack(seq) {
            tracing::error!(exporter, error = %e, "Cannot record a sent batch in the persistent queue; it may be sent again after a restart.");
        }
    }
}

/// Room held in a [`PersistentQueue`]; given back when dropped uncommitted.
pub(super) struct Slot(Option<Arc<PersistentQueue>>);

impl Slot {
    /// Writes `payload` into the held room; returns the queue length.
    pub(super) fn commit(mut self, payload: Vec<u8>) -> Result<usize, OfferError> {
        let queue = self.0.take().expect("a slot is committed once");
        let mut state = queue.lock();
        state.reserved -= 1;
        queue.append(state, payload).map_err(|(e, _)| e)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(queue) = self.0.take() {
            queue.lock().reserved -= 1;
            queue.space.notify_waiters();
        }
    }
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
