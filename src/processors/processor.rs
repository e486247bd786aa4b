//! The shape shared by simple processors: a function from batch to batch.
//!
//! [`ProcessorNode`] wraps a [`Processor`] into a graph node: it counts items in and out,
//! drops batches that became empty, and calls the next consumer.

use std::sync::Arc;

use async_trait::async_trait;

use crate::component::Component;
use crate::pipeline::{Batch, BoxConsumer, ClientInfo, ConsumeError, Consumer};
use crate::telemetry::names;

/// Edits a batch and returns what goes on.
pub trait Processor: Send + Sync + 'static {
    /// Transforms `batch`.
    ///
    /// # Errors
    /// A [`ConsumeError`] refusing the batch (e.g. memory pressure).
    fn process(&self, batch: Batch, client: &ClientInfo) -> Result<Batch, ConsumeError>;
}

/// A [`Processor`] placed in a pipeline.
pub struct ProcessorNode<P> {
    processor: P,
    next: BoxConsumer,
    labels: Arc<[(&'static str, String); 2]>,
}

impl<P: Processor> ProcessorNode<P> {
    /// Wraps `processor` (named `id` in own metrics, for `signal`) in front of `next`.
    pub fn new(
        processor: P,
        id: String,
        signal: crate::pipeline::Signal,
        next: BoxConsumer,
    ) -> Self {
        Self {
            processor,
            next,
            labels: Arc::new([
                ("processor", id),
                ("otel_signal", signal.as_str().to_owned()),
            ]),
        }
    }
}

#[async_trait]
impl<P: Processor> Consumer for ProcessorNode<P> {
    async fn consume(&self, batch: Batch, client: &ClientInfo) -> Result<(), ConsumeError> {
        metrics::counter!(names::PROCESSOR_INCOMING_ITEMS, self.labels.as_slice())
            .increment(batch.item_count() as u64);
        let out = self.processor.process(batch, client)?;
        let items = out.item_count();
        metrics::counter!(names::PROCESSOR_OUTGOING_ITEMS, self.labels.as_slice())
            .increment(items as u64);
        if items == 0 {
            return Ok(());
        }
        self.next.consume(out, client).await
    }
}

impl<P: Processor> Component for ProcessorNode<P> {}
