//! A latency histogram in microseconds: exact below 2,048 µs, then 1,024
//! buckets per power of two (a relative error under 0.1 %), up to 2^40 µs.

/// Values below this are counted exactly.
const EXACT: u64 = 2048;
/// Sub-buckets per power of two above [`EXACT`], as a power of two.
const SUB_BITS: u32 = 10;
const SUB: u64 = 1 << SUB_BITS;
/// The largest power of two counted; larger values are clamped.
const MAX_EXP: u32 = 40;
const BUCKETS: usize = EXACT as usize + (MAX_EXP as usize - 10) * SUB as usize;

/// Counts of microsecond values.
#[derive(Clone, Debug, Default)]
pub struct Histogram {
    /// Allocated on the first value: many histograms stay empty.
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

fn index(v: u64) -> usize {
    if v < EXACT {
        return v as usize;
    }
    let v = v.min((1 << (MAX_EXP + 1)) - 1);
    let exp = 63 - v.leading_zeros(); // 11..=MAX_EXP
    let shift = exp - SUB_BITS;
    let sub = (v >> shift) - SUB;
    EXACT as usize + (exp as usize - 11) * SUB as usize + sub as usize
}

/// The middle of bucket `i`.
fn value(i: usize) -> u64 {
    if i < EXACT as usize {
        return i as u64;
    }
    let k = (i - EXACT as usize) as u64;
    let exp = 11 + (k / SUB) as u32;
    let shift = exp - SUB_BITS;
    ((SUB + k % SUB) << shift) + (1 << shift) / 2
}

impl Histogram {
    /// Counts one value.
    pub fn record(&mut self, v: u64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        self.counts[index(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        if other.total == 0 {
            return;
        }
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// How many values.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest value (exact).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0 to 1), or `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(value(i).min(self.max));
            }
        }
        Some(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_round_trip_within_a_tenth_of_a_percent() {
        for v in [0, 1, 2047, 2048, 2049, 5000, 123_456, 9_999_999, 1 << 39] {
            let got = value(index(v));
            let err = got.abs_diff(v) as f64 / (v.max(1)) as f64;
            assert!(err < 0.001, "{v} -> {got}");
        }
        assert!(index((1 << 41) + 5) < BUCKETS);
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        for v in 1..=1000 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), Some(500));
        assert_eq!(h.quantile(0.99), Some(990));
        assert_eq!(h.quantile(0.999), Some(999));
        assert_eq!(h.quantile(1.0), Some(1000));
        let mut m = Histogram::default();
        m.merge(&h);
        m.merge(&Histogram::default());
        assert_eq!(m.count(), 1000);
        assert_eq!(m.max(), 1000);
        assert_eq!(Histogram::default().quantile(0.5), None);
    }
}
