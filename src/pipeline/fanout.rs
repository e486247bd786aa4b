//! One producer, several consumers.
//!
//! Consumers are called one after another in a fixed order; each gets its own copy of the
//! batch except the last, which gets the original, so no pipeline sees its sibling's edits.
//! Errors are joined: the caller sees a failure if any consumer failed (otelcol's
//! `fanoutconsumer`).

use async_trait::async_trait;

use super::{Batch, BoxConsumer, ClientInfo, ConsumeError, Consumer};

/// Sends every batch to each of its consumers.
pub struct Fanout {
    consumers: Vec<BoxConsumer>,
}

impl Fanout {
    /// A fan-out over `consumers`; with a single consumer, use it directly instead
    /// (see [`Fanout::wrap`]).
    pub fn new(consumers: Vec<BoxConsumer>) -> Self {
        Self { consumers }
    }

    /// The cheapest consumer that feeds all of `consumers`: the consumer itself when
    /// there is only one, a [`Fanout`] otherwise.
    ///
    /// # Panics
    /// When `consumers` is empty; the graph never builds a node without consumers.
    pub fn wrap(mut consumers: Vec<BoxConsumer>) -> BoxConsumer {
        assert!(
            !consumers.is_empty(),
            "a fan-out needs at least one consumer"
        );
        if consumers.len() == 1 {
            consumers.remove(0)
        } else {
            std::sync::Arc::new(Self::new(consumers))
        }
    }
}

#[async_trait]
impl Consumer for Fanout {
    async fn consume(&self, batch: Batch, client: &ClientInfo) -> Result<(), ConsumeError> {
        let mut errors = Vec::new();
        let (last, rest) = self
            .consumers
            .split_last()
            .expect("a fan-out has at least one consumer");
        for consumer in rest {
            if let Err(e) = consumer.consume(batch.clone(), client).await {
                errors.push(e);
            }
        }
        if let Err(e) = last.consume(batch, client).await {
            errors.push(e);
        }
        ConsumeError::join(errors).map_or(Ok(()), Err)
    }
}
