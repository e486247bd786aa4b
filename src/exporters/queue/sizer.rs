//! `sending_queue.sizer`: what `queue_size` counts (requests, items or bytes), and the
//! in-memory queue's capacity in that unit.
//!
//! The capacity is one atomic counter per exporter and signal, changed once per batch (taken
//! when a batch is queued, given back when the dispatcher takes it out), so the queue keeps
//! the channel's synchronisation and adds no lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Deserialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::pipeline::Batch;

/// The unit of `sending_queue.queue_size` (otelcol's `sizer`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Sizer {
    /// Batches as received, whatever their size. The default.
    #[default]
    Requests,
    /// Spans, metric data points or log records.
    Items,
    /// Bytes of the batch encoded as an OTLP protobuf request.
    Bytes,
}

impl Sizer {
    /// The size of `batch` in this unit. `Bytes` computes the encoded length without
    /// encoding.
    pub fn size_of(self, batch: &Batch) -> u64 {
        match self {
            Self::Requests => 1,
            Self::Items => batch.item_count() as u64,
            Self::Bytes => encoded_len(batch) as u64,
        }
    }
}

/// Length of [`Batch::encode_request`]'s output, computed without encoding.
fn encoded_len(batch: &Batch) -> usize {
    fn request<M: prost::Message>(items: &[M]) -> usize {
        items
            .iter()
            .map(|m| prost::encoding::message::encoded_len(1, m))
            .sum()
    }
    match batch {
        Batch::Traces(rs) => request(rs),
        Batch::Metrics(rm) => request(rm),
        Batch::Logs(rl) => request(rl),
    }
}

/// Why [`Capacity`] refused a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum Refusal {
    /// The queue holds too much to take this batch now.
    #[error("sending queue is full")]
    Full,
    /// The batch alone is bigger than the whole queue: it can never be taken.
    #[error("element size too large")]
    TooLarge,
}

/// How much of `queue_size` the queued batches use; reported as
/// `otelcol_exporter_queue_size` on every change.
pub(super) struct Capacity {
    limit: u64,
    used: AtomicU64,
    /// Signalled when room is given back, for blocking offers.
    room: Notify,
    gauge: metrics::Gauge,
}

impl Capacity {
    /// An empty queue of `limit` units, reporting its use on `gauge`.
    pub(super) fn new(limit: u64, gauge: metrics::Gauge) -> Self {
        Self {
            limit,
            used: AtomicU64::new(0),
            room: Notify::new(),
            gauge,
        }
    }

    /// Takes `size` units if they are free now.
    pub(super) fn try_take(self: &Arc<Self>, size: u64) -> Result<Held, Refusal> {
        if size > self.limit {
            return Err(Refusal::TooLarge);
        }
        let limit = self.limit;
        let before = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used + size <= limit).then_some(used + size)
            })
            .map_err(|_| Refusal::Full)?;
        self.gauge.set((before + size) as f64);
        Ok(Held {
            capacity: self.clone(),
            size,
        })
    }

    /// Takes `size` units, waiting for room; refuses as full once `stop` is cancelled.
    pub(super) async fn take(
        self: &Arc<Self>,
        size: u64,
        stop: &CancellationToken,
    ) -> Result<Held, Refusal> {
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.try_take(size) {
                Err(Refusal::Full) => {}
                taken => return taken,
            }
            tokio::select! {
                () = &mut notified => {}
                () = stop.cancelled() => return Err(Refusal::Full),
            }
        }
    }

    /// Units in use.
    #[cfg(test)]
    pub(super) fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    fn give_back(&self, size: u64) {
        let before = self.used.fetch_sub(size, Ordering::AcqRel);
        self.gauge.set((before - size) as f64);
        self.room.notify_waiters();
    }
}

/// Units of a [`Capacity`] held by one queued batch; given back when dropped.
pub(super) struct Held {
    capacity: Arc<Capacity>,
    size: u64,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.capacity.give_back(self.size);
    }
}
