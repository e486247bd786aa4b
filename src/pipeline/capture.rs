//! A consumer that keeps what it receives: the sink for component and graph tests, and a
//! fault injector (refuse the next N batches with a chosen error).

use std::sync::Mutex;

use async_trait::async_trait;

use super::{Batch, ClientInfo, ConsumeError, Consumer};
use crate::component::Component;

/// Records every batch; optionally refuses some first.
#[derive(Default)]
pub struct Capture {
    batches: Mutex<Vec<Batch>>,
    refusals: Mutex<Vec<ConsumeError>>,
}

impl Capture {
    /// An empty capture that accepts everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuses the next batches with `errors`, in order, before accepting again.
    pub fn refuse_next(&self, errors: Vec<ConsumeError>) {
        let mut r = self.refusals.lock().expect("capture lock");
        r.extend(errors.into_iter().rev());
    }

    /// Every accepted batch so far.
    pub fn batches(&self) -> Vec<Batch> {
        self.batches.lock().expect("capture lock").clone()
    }

    /// Total items (spans, points, records) accepted so far.
    pub fn item_count(&self) -> usize {
        self.batches
            .lock()
            .expect("capture lock")
            .iter()
            .map(Batch::item_count)
            .sum()
    }
}

#[async_trait]
impl Consumer for Capture {
    async fn consume(&self, batch: Batch, _client: &ClientInfo) -> Result<(), ConsumeError> {
        if let Some(err) = self.refusals.lock().expect("capture lock").pop() {
            return Err(err);
        }
        self.batches.lock().expect("capture lock").push(batch);
        Ok(())
    }
}

impl Component for Capture {}
