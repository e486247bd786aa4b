//! Per-series state: the previous cumulative point of every identity, with staleness and a
//! hard bound on the number of series.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::config::InitialValue;

/// Most series tracked at once. A new series past this bound is not tracked: its points are
/// dropped (never sent on as cumulative data) and counted.
pub const MAX_SERIES: usize = 1_000_000;

/// The previous point's value.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Value {
    /// Integer sum.
    Int(i64),
    /// Floating-point sum.
    Double(f64),
    /// Histogram totals.
    Histogram(HistogramValue),
}

/// A histogram point's cumulative totals.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct HistogramValue {
    /// Observation count.
    pub(super) count: u64,
    /// Observation sum (NaN when the point has none).
    pub(super) sum: f64,
    /// Per-bucket counts.
    pub(super) buckets: Vec<u64>,
}

/// One incoming cumulative point.
pub(super) struct Point {
    /// Start timestamp (ns).
    pub(super) start: u64,
    /// Timestamp (ns).
    pub(super) time: u64,
    /// Cumulative value.
    pub(super) value: Value,
}

/// What to emit for a point.
#[derive(Debug, PartialEq)]
pub(super) struct Delta {
    /// Output start timestamp.
    pub(super) start: u64,
    /// Output value.
    pub(super) value: Value,
}

/// Why a point was not converted.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Skip {
    /// First point of its series, dropped by the initial-value policy.
    Initial,
    /// A sum went down, or a histogram changed its bucket layout: the baseline moved.
    Reset,
    /// The series bound was reached.
    Full,
}

struct Entry {
    prev: Value,
    time: u64,
    seen: Instant,
}

/// Previous points by identity.
pub(super) struct Tracker {
    series: HashMap<Vec<u8>, Entry>,
    initial: InitialValue,
    /// The processor's start time (ns since the epoch), for `initial_value: auto`.
    started: u64,
    max_staleness: Duration,
    last_sweep: Instant,
    limit: usize,
}

impl Tracker {
    /// An empty tracker.
    pub(super) fn new(
        initial: InitialValue,
        started: u64,
        max_staleness: Duration,
        limit: usize,
    ) -> Self {
        Self {
            series: HashMap::new(),
            initial,
            started,
            max_staleness,
            last_sweep: Instant::now(),
            limit,
        }
    }

    /// Number of tracked series.
    pub(super) fn len(&self) -> usize {
        self.series.len()
    }

    /// Forgets series not updated for `max_staleness`, at most once per `max_staleness`.
    pub(super) fn sweep(&mut self, now: Instant) {
        if self.max_staleness.is_zero() || now.duration_since(self.last_sweep) < self.max_staleness
        {
            return;
        }
        self.last_sweep = now;
        let keep_after = now.checked_sub(self.max_staleness);
        self.series
            .retain(|_, e| keep_after.is_none_or(|limit| e.seen >= limit));
    }

    /// Converts `point` of series `key`.
    pub(super) fn convert(
        &mut self,
        key: Vec<u8>,
        point: Point,
        now: Instant,
    ) -> Result<Delta, Skip> {
        let Some(entry) = self.series.get_mut(&key) else {
            if self.series.len() >= self.limit {
                return Err(Skip::Full);
            }
            let emit = match self.initial {
                InitialValue::Keep => true,
                InitialValue::Drop => false,
                InitialValue::Auto => point.start >= self.started && point.time != point.start,
            };
            let delta = Delta {
                start: point.start,
                value: point.value.clone(),
            };
            self.series.insert(
                key,
                Entry {
                    prev: point.value,
                    time: point.time,
                    seen: now,
                },
            );
            return if emit { Ok(delta) } else { Err(Skip::Initial) };
        };
        let start = entry.time;
        entry.time = point.time;
        entry.seen = now;
        let result = match (&entry.prev, point.value) {
            (Value::Int(prev), Value::Int(cur)) => {
                let prev = *prev;
                entry.prev = Value::Int(cur);
                if cur < prev {
                    Err(Skip::Reset)
                } else {
                    Ok(Value::Int(cur.wrapping_sub(prev)))
                }
            }
            (Value::Double(prev), Value::Double(cur)) => {
                let prev = *prev;
                entry.prev = Value::Double(cur);
                if cur < prev {
                    Err(Skip::Reset)
                } else {
                    Ok(Value::Double(cur - prev))
                }
            }
            (Value::Histogram(prev), Value::Histogram(mut cur)) => {
                if cur.sum.is_nan() {
                    cur.sum = prev.sum;
                }
                let same_layout = cur.buckets.len() == prev.buckets.len();
                let mut delta = cur.clone();
                // A count that went down is a reset: the point is its own delta.
                if same_layout && cur.count >= prev.count {
                    delta.count -= prev.count;
                    delta.sum -= prev.sum;
                    for (d, p) in delta.buckets.iter_mut().zip(&prev.buckets) {
                        *d = d.saturating_sub(*p);
                    }
                }
                entry.prev = Value::Histogram(cur);
                if same_layout {
                    Ok(Value::Histogram(delta))
                } else {
                    Err(Skip::Reset)
                }
            }
            // The identity includes the value type, so this cannot happen; restart the
            // baseline rather than emit nonsense.
            (_, other) => {
                entry.prev = other;
                Err(Skip::Reset)
            }
        };
        result.map(|value| Delta { start, value })
    }
}
