//! Processors: per-pipeline stages that edit, group or refuse data.

pub mod attributes;
pub mod batch;
pub mod cumulativetodelta;
pub mod memory_limiter;
pub mod processor;

pub use processor::{Processor, ProcessorNode};
