//! Counting failed sends to one destination and deciding which of them get a log line: the
//! first failure, then at most one per [`LOG_INTERVAL`] with the number left unlogged since.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Least time between two failure lines of one destination.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// `last_logged` before the first line.
const NEVER: u64 = u64::MAX;

/// Failed sends of one destination.
#[derive(Debug)]
pub struct Failures {
    /// Reference point of the `*_ms` values.
    origin: Instant,
    /// Least ms between two lines.
    interval_ms: u64,
    /// ms after `origin` of the last line, [`NEVER`] before the first.
    last_logged: AtomicU64,
    /// Failures not logged since the last line.
    suppressed: AtomicU64,
    /// All failures.
    total: AtomicU64,
    /// Lines logged.
    lines: AtomicU64,
}

impl Default for Failures {
    fn default() -> Self {
        Self::new(LOG_INTERVAL)
    }
}

impl Failures {
    /// No failures yet; at most one line per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            origin: Instant::now(),
            interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            last_logged: AtomicU64::new(NEVER),
            suppressed: AtomicU64::new(0),
            total: AtomicU64::new(0),
            lines: AtomicU64::new(0),
        }
    }

    /// Counts a failure now; `Some(n)` when it is to be logged, `n` failures having gone
    /// unlogged since the previous line.
    pub fn record(&self) -> Option<u64> {
        let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.record_at(now)
    }

    /// [`Self::record`] at `now_ms` after the reference point.
    pub fn record_at(&self, now_ms: u64) -> Option<u64> {
        self.total.fetch_add(1, Ordering::Relaxed);
        let last = self.last_logged.load(Ordering::Relaxed);
        let due = last == NEVER || now_ms.saturating_sub(last) >= self.interval_ms;
        // One of the callers racing past the interval logs; the others count as suppressed.
        if due
            && self
                .last_logged
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.lines.fetch_add(1, Ordering::Relaxed);
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// All failures counted.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Failure lines logged.
    pub fn lines(&self) -> u64 {
        self.lines.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_failure_is_logged_then_one_line_per_interval_with_the_suppressed_count() {
        let f = Failures::new(Duration::from_secs(10));
        assert_eq!(f.record_at(0), Some(0));
        assert_eq!(f.record_at(1), None);
        assert_eq!(f.record_at(9_999), None);
        assert_eq!(f.record_at(10_000), Some(2));
        assert_eq!(f.record_at(15_000), None);
        assert_eq!(f.record_at(19_999), None);
        assert_eq!(f.record_at(19_999), None);
        assert_eq!(f.record_at(60_000), Some(3));
        assert_eq!(f.record_at(60_001), None);
        assert_eq!(f.total(), 9);
        assert_eq!(f.lines(), 3);
    }

    #[test]
    fn a_late_first_failure_is_logged() {
        let f = Failures::new(Duration::from_secs(10));
        assert_eq!(f.record_at(3), Some(0));
        assert_eq!(f.record_at(10_002), None);
        assert_eq!(f.record_at(10_003), Some(1));
    }
}
