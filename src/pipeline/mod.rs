//! Data and the edges it moves along: batches, consumers, fan-out, and the graph built
//! from `service.pipelines`.

mod batch;
mod capture;
pub mod client;
mod consumer;
mod fanout;
pub mod graph;
mod signal;
mod value;

pub use batch::{data_point_count, Batch};
pub use capture::Capture;
pub use client::{ClientInfo, Metadata};
pub use consumer::{BoxConsumer, ConsumeError, Consumer, ErrorKind, Reservation};
pub use fanout::Fanout;
pub use signal::Signal;
pub use value::as_string;
