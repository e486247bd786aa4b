//! `memory_limiter` settings, with otelcol's defaults and validation messages.

use std::time::Duration;

use serde::Deserialize;

use crate::config::FieldError;

const MIB: u64 = 1 << 20;

/// `processors::memory_limiter`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// How often memory use is measured. No default: 0 is invalid; 1s is the usual value.
    #[serde(with = "crate::config::duration")]
    pub check_interval: Duration,
    /// Hard limit in MiB of resident memory. Default 0 (use `limit_percentage`).
    pub limit_mib: u64,
    /// Soft limit = hard limit − spike. Default 0 = 20% of `limit_mib`.
    pub spike_limit_mib: u64,
    /// Hard limit as a percentage of total memory (the cgroup limit if set, else the host's);
    /// used only when `limit_mib` is 0. Default 0.
    pub limit_percentage: u64,
    /// Spike as a percentage of total memory. Default 0 = 20% of `limit_percentage`.
    pub spike_limit_percentage: u64,
    /// Accepted for compatibility: there is no garbage collector to force.
    #[serde(with = "crate::config::duration")]
    pub min_gc_interval_when_soft_limited: Duration,
    /// Accepted for compatibility: there is no garbage collector to force.
    #[serde(with = "crate::config::duration")]
    pub min_gc_interval_when_hard_limited: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            check_interval: Duration::ZERO,
            limit_mib: 0,
            spike_limit_mib: 0,
            limit_percentage: 0,
            spike_limit_percentage: 0,
            min_gc_interval_when_soft_limited: Duration::from_secs(10),
            min_gc_interval_when_hard_limited: Duration::ZERO,
        }
    }
}

/// The two thresholds, in bytes of resident memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// At or above: data is refused (and a GC would be forced in otelcol).
    pub hard: u64,
    /// At or above: data is refused.
    pub soft: u64,
}

impl Config {
    /// otelcol's rules, in its order.
    ///
    /// # Errors
    /// The first rule broken, at its key.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.check_interval.is_zero() {
            return Err(FieldError::at(
                &["check_interval"],
                "'check_interval' must be greater than zero",
            ));
        }
        if self.limit_mib == 0 && self.limit_percentage == 0 {
            return Err(FieldError::at(
                &["limit_mib"],
                "'limit_mib' or 'limit_percentage' must be greater than zero",
            ));
        }
        if self.limit_percentage > 100 || self.spike_limit_percentage > 100 {
            return Err(FieldError::at(
                &["limit_percentage"],
                "'limit_percentage' and 'spike_limit_percentage' must be greater than zero and less than or equal to hundred",
            ));
        }
        if self.limit_mib > 0 && self.limit_mib <= self.spike_limit_mib {
            return Err(FieldError::at(
                &["spike_limit_mib"],
                "'spike_limit_mib' must be smaller than 'limit_mib'",
            ));
        }
        if self.limit_percentage > 0 && self.limit_percentage <= self.spike_limit_percentage {
            return Err(FieldError::at(
                &["spike_limit_percentage"],
                "'spike_limit_percentage' must be smaller than 'limit_percentage'",
            ));
        }
        Ok(())
    }

    /// The limits in bytes; `total_memory` is asked for only when percentages are used.
    ///
    /// # Errors
    /// When a percentage limit is set but total memory cannot be read.
    pub fn limits(
        &self,
        total_memory: impl FnOnce() -> std::io::Result<u64>,
    ) -> std::io::Result<Limits> {
        if self.limit_mib > 0 {
            let hard = self.limit_mib * MIB;
            let spike = if self.spike_limit_mib == 0 {
                hard / 5
            } else {
                self.spike_limit_mib * MIB
            };
            return Ok(Limits {
                hard,
                soft: hard - spike,
            });
        }
        let total = total_memory()?;
        let hard = total / 100 * self.limit_percentage;
        let spike = if self.spike_limit_percentage == 0 {
            hard / 5
        } else {
            total / 100 * self.spike_limit_percentage
        };
        Ok(Limits {
            hard,
            soft: hard.saturating_sub(spike),
        })
    }
}
