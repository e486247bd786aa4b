//! Every edge of the pipeline graph is a [`Consumer`].
//!
//! A call returns once the next component has taken responsibility for the data: for an
//! exporter, once it sits in the sending queue. The error says whether the sender may retry,
//! so receivers answer their clients correctly (see [`ConsumeError`]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{Batch, ClientInfo};

/// Something that takes batches: a processor, a fan-out, an exporter or a connector.
#[async_trait]
pub trait Consumer: Send + Sync + 'static {
    /// Takes ownership of `batch`. Returns when the data is safely handed on.
    ///
    /// # Errors
    /// A [`ConsumeError`] when the data was not accepted; whether a retry may succeed is in
    /// its [`ErrorKind`].
    async fn consume(&self, batch: Batch, client: &ClientInfo) -> Result<(), ConsumeError>;

    /// Reserves room for `batch` ahead of handing it over, so a fan-out can refuse a batch
    /// before any of its consumers took it (all-or-nothing). `Ok(None)`: this consumer does
    /// not reserve; call [`Consumer::consume`]. The default never reserves.
    ///
    /// # Errors
    /// The refusal `consume` would return now (e.g. `sending queue is full`).
    fn try_reserve(&self, batch: &Batch) -> Result<Option<Reservation>, ConsumeError> {
        let _ = batch;
        Ok(None)
    }
}

/// Room held in a consumer for one batch; dropping it unused gives the room back.
pub struct Reservation(Box<Commit>);

/// What a [`Reservation`] does with the batch and its client when committed.
type Commit = dyn FnOnce(Batch, &ClientInfo) -> Result<(), ConsumeError> + Send;

impl Reservation {
    /// A reservation that hands the batch over with `commit`.
    pub fn new(
        commit: impl FnOnce(Batch, &ClientInfo) -> Result<(), ConsumeError> + Send + 'static,
    ) -> Self {
        Self(Box::new(commit))
    }

    /// Hands `batch` (sent by `client`) over into the reserved room, without waiting.
    ///
    /// # Errors
    /// When the consumer fails to store it after all (a disk write failing).
    pub fn commit(self, batch: Batch, client: &ClientInfo) -> Result<(), ConsumeError> {
        (self.0)(batch, client)
    }
}

/// A shared consumer, as held by the component feeding it.
pub type BoxConsumer = Arc<dyn Consumer>;

/// Whether a refused batch may be sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Temporary: a full queue, memory pressure, a busy downstream. The client should retry,
    /// after `retry_after` when given. gRPC `UNAVAILABLE`, HTTP 503.
    Retryable {
        /// How long the client should wait before retrying, when known.
        retry_after: Option<Duration>,
    },
    /// The data can never be accepted. gRPC `INTERNAL`, HTTP 500 (otelcol's mapping).
    Permanent,
}

/// Why a consumer refused a batch.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConsumeError {
    /// Retryable or permanent, decided where the error is created.
    pub kind: ErrorKind,
    /// Lowercase, no final period: it gets wrapped.
    pub message: String,
}

impl ConsumeError {
    /// A retryable error with no retry hint.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Retryable { retry_after: None },
            message: message.into(),
        }
    }

    /// A retryable error asking the client to wait `after`.
    pub fn retry_after(message: impl Into<String>, after: Duration) -> Self {
        Self {
            kind: ErrorKind::Retryable {
                retry_after: Some(after),
            },
            message: message.into(),
        }
    }

    /// A permanent error.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Permanent,
            message: message.into(),
        }
    }

    /// True when a retry may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::Retryable { .. })
    }

    /// Joins the errors of several consumers (a fan-out): retryable if any is retryable,
    /// waiting for the longest hint; messages joined with `; `.
    pub fn join(errors: Vec<Self>) -> Option<Self> {
        let mut iter = errors.into_iter();
        let first = iter.next()?;
        Some(iter.fold(first, |acc, e| {
            let kind = match (acc.kind, e.kind) {
                (
                    ErrorKind::Retryable { retry_after: a },
                    ErrorKind::Retryable { retry_after: b },
                ) => ErrorKind::Retryable {
                    retry_after: a.max(b),
                },
                (k @ ErrorKind::Retryable { .. }, ErrorKind::Permanent)
                | (ErrorKind::Permanent, k @ ErrorKind::Retryable { .. }) => k,
                (ErrorKind::Permanent, ErrorKind::Permanent) => ErrorKind::Permanent,
            };
            Self {
                kind,
                message: format!("{}; {}", acc.message, e.message),
            }
        }))
    }
}
