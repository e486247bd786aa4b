//! Duration histograms: explicit bounds (Prometheus `le` semantics) and base-2 exponential
//! buckets that lower their scale to stay within `max_size` buckets.

use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::{ExponentialHistogramDataPoint, HistogramDataPoint};

/// The finest scale an exponential histogram starts at.
pub const MAX_SCALE: i32 = 20;
/// The coarsest scale (bucket boundaries at powers of 2^1024).
pub const MIN_SCALE: i32 = -10;

/// Counts per explicit bucket: bucket `i` counts values in `(bounds[i-1], bounds[i]]`, the
/// last one everything above the last bound.
#[derive(Clone, Debug, PartialEq)]
pub struct Explicit {
    counts: Vec<u64>,
    count: u64,
    sum: f64,
}

impl Explicit {
    /// Empty, for `bounds.len()` bounds.
    pub fn new(bounds: usize) -> Self {
        Self {
            counts: vec![0; bounds + 1],
            count: 0,
            sum: 0.0,
        }
    }

    /// Adds one value.
    pub fn observe(&mut self, bounds: &[f64], value: f64) {
        let index = bounds.partition_point(|b| *b < value);
        if let Some(c) = self.counts.get_mut(index) {
            *c += 1;
        }
        self.count += 1;
        self.sum += value;
    }

    /// Fills the point's count, sum, bounds and bucket counts.
    pub fn fill(&self, bounds: &[f64], point: &mut HistogramDataPoint) {
        point.count = self.count;
        point.sum = Some(self.sum);
        point.explicit_bounds = bounds.to_vec();
        point.bucket_counts.clone_from(&self.counts);
    }
}

/// A base-2 exponential histogram of non-negative values: bucket `i` at scale `s` holds
/// values in `(2^(i/2^s), 2^((i+1)/2^s)]`; zeros are counted apart.
#[derive(Clone, Debug, PartialEq)]
pub struct Exponential {
    max_size: usize,
    scale: i32,
    offset: i32,
    counts: Vec<u64>,
    zero_count: u64,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Exponential {
    /// Empty, keeping at most `max_size` buckets (at least 2).
    pub fn new(max_size: usize) -> Self {
        Self {
            max_size: max_size.max(2),
            scale: MAX_SCALE,
            offset: 0,
            counts: Vec::new(),
            zero_count: 0,
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    /// The current scale.
    pub fn scale(&self) -> i32 {
        self.scale
    }

    /// Adds one value; negative and non-finite values are ignored.
    pub fn observe(&mut self, value: f64) {
        if !value.is_finite() || value < 0.0 {
            return;
        }
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        if value == 0.0 {
            self.zero_count += 1;
            return;
        }
        let mut index = map_to_index(value, self.scale);
        if !self.counts.is_empty() {
            let low = self.offset.min(index);
            let high = (self.offset + self.counts.len() as i32 - 1).max(index);
            let change = self.scale_change(low, high);
            if change > 0 {
                self.downscale(change);
                index = map_to_index(value, self.scale);
            }
        }
        self.increment(index);
    }

    /// How many halvings make `[low, high]` fit in `max_size` buckets.
    fn scale_change(&self, mut low: i32, mut high: i32) -> i32 {
        let mut change = 0;
        while i64::from(high) - i64::from(low) >= self.max_size as i64
            && self.scale - change > MIN_SCALE
        {
            high >>= 1;
            low >>= 1;
            change += 1;
        }
        change
    }

    fn downscale(&mut self, change: i32) {
        let old_offset = self.offset;
        let new_offset = old_offset >> change;
        let mut merged: Vec<u64> = Vec::new();
        for (i, c) in self.counts.iter().enumerate() {
            let index = ((old_offset + i as i32) >> change) - new_offset;
            let index = index as usize;
            if merged.len() <= index {
                merged.resize(index + 1, 0);
            }
            merged[index] += c;
        }
        self.counts = merged;
        self.offset = new_offset;
        self.scale -= change;
    }

    fn increment(&mut self, index: i32) {
        if self.counts.is_empty() {
            self.offset = index;
            self.counts.push(1);
            return;
        }
        if index < self.offset {
            let grow = (self.offset - index) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = index;
        }
        let at = (index - self.offset) as usize;
        if self.counts.len() <= at {
            self.counts.resize(at + 1, 0);
        }
        self.counts[at] += 1;
    }

    /// Fills the point's scale, zero count, buckets, count, sum, min and max.
    pub fn fill(&self, point: &mut ExponentialHistogramDataPoint) {
        point.count = self.count;
        point.sum = Some(self.sum);
        point.scale = self.scale;
        point.zero_count = self.zero_count;
        point.positive = Some(Buckets {
            offset: self.offset,
            bucket_counts: self.counts.clone(),
        });
        point.negative = Some(Buckets::default());
        if self.count > 0 {
            point.min = Some(self.min);
            point.max = Some(self.max);
        }
    }
}

/// The bucket index of a positive, finite `value` at `scale`, exact at powers of two (which
/// are the inclusive upper bound of their bucket).
pub fn map_to_index(value: f64, scale: i32) -> i32 {
    let bits = value.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i32 - 1023;
    let significand = bits & ((1u64 << 52) - 1);
    if scale <= 0 {
        let correction = if significand == 0 { -1 } else { 0 };
        return (exponent + correction) >> -scale;
    }
    if significand == 0 {
        return (exponent << scale) - 1;
    }
    let scale_factor = std::f64::consts::LOG2_E * f64::from(1u32 << scale);
    (value.ln() * scale_factor).floor() as i32
}
