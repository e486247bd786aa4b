//! otelcol's config language, loaded in stages, each a plain function:
//! read sources ([`source`]) → merge ([`merge`]) → expand `${…}` ([`expand`]) → unwrap an
//! OpenTelemetryCollector resource ([`operator`]) → split into sections ([`load`]) →
//! validate every component through the registry ([`validate`]). All of it finishes before
//! any port opens. Errors name the key path and, where known, file:line:col ([`location`]).

pub mod decode;
pub mod duration;
mod env;
mod error;
pub mod expand;
mod id;
mod load;
pub mod location;
pub mod merge;
mod model;
pub mod operator;
pub mod source;
mod validate;

pub use decode::decode;
pub use env::{Env, ProcessEnv};
pub use error::{ConfigError, ConfigErrors, FieldError};
pub use id::ComponentId;
pub use load::{load, Loaded};
pub use model::{Config, LogLevel, Pipeline, PipelineId, Service, Telemetry};
pub use source::Source;
pub use validate::{validate, validate_with};

#[cfg(test)]
mod tests;
