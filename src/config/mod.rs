//! otelcol's config language, loaded in stages, each a plain function:
//! read sources → merge → expand `${…}` → unwrap an OpenTelemetryCollector resource →
//! split into sections → validate every component through the registry.
//! All of it finishes before any port opens.

pub mod decode;
pub mod duration;
mod error;
mod id;
mod model;

pub use decode::decode;
pub use error::FieldError;
pub use id::ComponentId;
pub use model::{Config, LogLevel, Pipeline, PipelineId, Service, Telemetry};
