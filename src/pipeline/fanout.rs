//! One producer, several consumers.
//!
//! Consumers are called one after another in a fixed order; each gets its own copy of the
//! batch except the last, which gets the original, so no pipeline sees its sibling's edits.
//! Errors are joined: the caller sees a failure if any consumer failed (otelcol's
//! `fanoutconsumer`).
//!
//! All-or-nothing where the consumers allow it: before sending, room is reserved in every
//! consumer that can reserve (sending queues); if one of them is full the batch is refused
//! before any consumer took it, so the client's retry duplicates nothing. Consumers that
//! cannot reserve (processors) are called as before.

use async_trait::async_trait;

use super::{Batch, BoxConsumer, ClientInfo, ConsumeError, Consumer, Reservation};

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
        if self.consumers.is_empty() {
            return Ok(());
        }
        let mut reserved = Vec::with_capacity(self.consumers.len());
        for consumer in &self.consumers {
            // A refusal here releases the rooms reserved so far (dropped unused).
            reserved.push(consumer.try_reserve(&batch)?);
        }
        let mut errors = Vec::new();
        let last = self.consumers.len() - 1;
        let mut batch = Some(batch);
        for (i, (consumer, reservation)) in self.consumers.iter().zip(reserved).enumerate() {
            let copy = if i == last {
                batch
                    .take()
                    .expect("the original goes to the last consumer")
            } else {
                batch.clone().expect("kept until the last consumer")
            };
            let result = match reservation {
                Some(r) => r.commit(copy, client),
                None => consumer.consume(copy, client).await,
            };
            if let Err(e) = result {
                errors.push(e);
            }
        }
        ConsumeError::join(errors).map_or(Ok(()), Err)
    }

    fn try_reserve(&self, batch: &Batch) -> Result<Option<Reservation>, ConsumeError> {
        // Reserving for the whole fan-out needs every consumer to reserve.
        if self.consumers.is_empty() {
            return Ok(None);
        }
        let mut reserved = Vec::with_capacity(self.consumers.len());
        for consumer in &self.consumers {
            match consumer.try_reserve(batch)? {
                Some(r) => reserved.push(r),
                None => return Ok(None),
            }
        }
        Ok(Some(Reservation::new(move |batch, client| {
            let last = reserved.len() - 1;
            let mut batch = Some(batch);
            let mut errors = Vec::new();
            for (i, r) in reserved.into_iter().enumerate() {
                let copy = if i == last {
                    batch
                        .take()
                        .expect("the original goes to the last consumer")
                } else {
                    batch.clone().expect("kept until the last consumer")
                };
                if let Err(e) = r.commit(copy, client) {
                    errors.push(e);
                }
            }
            ConsumeError::join(errors).map_or(Ok(()), Err)
        })))
    }
}
