//! `timeout`, `retry_on_failure` and `sending_queue`: the settings every queued exporter
//! shares (otelcol's exporterhelper).

use std::time::Duration;

use serde::Deserialize;

use super::Sizer;
use crate::config::FieldError;

/// `retry_on_failure`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Retry retryable failures at all. Default true.
    pub enabled: bool,
    /// First wait. Default 5s.
    #[serde(with = "crate::config::duration")]
    pub initial_interval: Duration,
    /// Jitter: each wait is drawn from `[w·(1−f), w·(1+f)]`. Default 0.5.
    pub randomization_factor: f64,
    /// Growth of the wait per attempt. Default 1.5.
    pub multiplier: f64,
    /// Longest single wait. Default 30s.
    #[serde(with = "crate::config::duration")]
    pub max_interval: Duration,
    /// Give up after this long since the first attempt; 0 = never. Default 300s.
    #[serde(with = "crate::config::duration")]
    pub max_elapsed_time: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            initial_interval: Duration::from_secs(5),
            randomization_factor: 0.5,
            multiplier: 1.5,
            max_interval: Duration::from_secs(30),
            max_elapsed_time: Duration::from_secs(300),
        }
    }
}

impl RetryConfig {
    /// otelcol's rules, checked only when enabled.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), FieldError> {
        if !self.enabled {
            return Ok(());
        }
        let at = |k: &str, m: &str| FieldError::at(&["retry_on_failure", k], m);
        if !(0.0..=1.0).contains(&self.randomization_factor) {
            return Err(at(
                "randomization_factor",
                "'randomization_factor' must be within [0, 1]",
            ));
        }
        if self.multiplier <= 0.0 {
            return Err(at("multiplier", "'multiplier' must be positive"));
        }
        if !self.max_elapsed_time.is_zero() {
            if self.max_elapsed_time < self.initial_interval {
                return Err(at(
                    "max_elapsed_time",
                    "'max_elapsed_time' must not be less than 'initial_interval'",
                ));
            }
            if self.max_elapsed_time < self.max_interval {
                return Err(at(
                    "max_elapsed_time",
                    "'max_elapsed_time' must not be less than 'max_interval'",
                ));
            }
        }
        Ok(())
    }
}

/// `sending_queue`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Queue at all; without a queue the export runs inside the caller. Default true.
    pub enabled: bool,
    /// Concurrent exports. Default 10.
    pub num_consumers: usize,
    /// Capacity, in the unit of `sizer`. Default 1000.
    pub queue_size: usize,
    /// Wait for room instead of refusing when full. Default false.
    pub blocking: bool,
    /// Later name of `blocking`.
    pub block_on_overflow: Option<bool>,
    /// What `queue_size` counts: `requests` (batches as received, the default), `items`
    /// (spans, data points, log records) or `bytes` (the batches' encoded OTLP protobuf
    /// size), in memory and in the persistent queue.
    pub sizer: Sizer,
    /// Accepted for compatibility.
    pub wait_for_result: Option<bool>,
    /// Accepted for compatibility (queue batching is done by the `batch` processor).
    pub batch: Option<yaml_serde::Value>,
    /// The storage extension (e.g. `file_storage`) of a persistent queue; it must be
    /// configured and listed in `service.extensions`.
    pub storage: Option<String>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            num_consumers: 10,
            queue_size: 1000,
            blocking: false,
            block_on_overflow: None,
            sizer: Sizer::Requests,
            wait_for_result: None,
            batch: None,
            storage: None,
        }
    }
}

impl QueueConfig {
    /// Whether a full queue waits rather than refuses.
    pub fn blocks(&self) -> bool {
        self.block_on_overflow.unwrap_or(self.blocking)
    }

    /// otelcol's rules, checked only when enabled.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), FieldError> {
        if !self.enabled {
            return Ok(());
        }
        let at = |k: &str, m: &str| FieldError::at(&["sending_queue", k], m);
        if self.queue_size == 0 {
            return Err(at("queue_size", "`queue_size` must be positive"));
        }
        if self.num_consumers == 0 {
            return Err(at("num_consumers", "`num_consumers` must be positive"));
        }
        Ok(())
    }
}
