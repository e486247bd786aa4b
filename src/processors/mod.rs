//! Processors: per-pipeline stages that edit, group or refuse data.

pub mod processor;

pub use processor::{Processor, ProcessorNode};
