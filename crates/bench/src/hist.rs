//! A log-linear latency histogram in nanoseconds: each power of two is split into
//! [`SUB_BUCKETS`] linear buckets, so any recorded value is reported within 1/[`SUB_BUCKETS`]
//! (under 0.8 %) of itself, with fixed memory and no allocation per sample.

/// Linear buckets per power of two (and the number of exact buckets below it).
pub const SUB_BUCKETS: u64 = 128;
const SUB_BITS: u32 = 7; // log2(SUB_BUCKETS)
/// Values at or above 2^MAX_BITS ns (about 18 minutes) are clamped into the last bucket.
const MAX_BITS: u32 = 40;
const BUCKETS: usize = (SUB_BUCKETS as usize / 2) * (MAX_BITS - SUB_BITS + 2) as usize;

/// A latency histogram. Merge per-session histograms with [`Histogram::merge`].
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    min: u64,
    max: u64,
    sum: u128,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.total)
            .field("min", &self.min)
            .field("max", &self.max)
            .finish()
    }
}

/// The bucket a value falls in.
fn index_of(v: u64) -> usize {
    if v < SUB_BUCKETS {
        return v as usize;
    }
    let v = v.min((1u64 << MAX_BITS) - 1);
    let msb = 63 - v.leading_zeros(); // >= SUB_BITS
    let shift = msb - (SUB_BITS - 1); // keep the top SUB_BITS bits (64..127)
    let mantissa = (v >> shift) as usize; // in [SUB_BUCKETS/2, SUB_BUCKETS)
    (shift as usize) * (SUB_BUCKETS as usize / 2) + mantissa
}

/// The smallest and largest value of a bucket.
fn bounds_of(i: usize) -> (u64, u64) {
    if (i as u64) < SUB_BUCKETS {
        return (i as u64, i as u64);
    }
    let half = SUB_BUCKETS as usize / 2;
    let shift = (i - half) / half;
    let mantissa = (i - shift * half) as u64;
    let lo = mantissa << shift;
    (lo, lo + (1u64 << shift) - 1)
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            min: u64::MAX,
            max: 0,
            sum: 0,
        }
    }

    /// Records one value (nanoseconds).
    #[inline]
    pub fn record(&mut self, v: u64) {
        self.counts[index_of(v)] += 1;
        self.total += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += v as u128;
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Largest sample (exact), 0 when empty.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Smallest sample (exact), 0 when empty.
    pub fn min(&self) -> u64 {
        if self.total == 0 {
            0
        } else {
            self.min
        }
    }

    /// Arithmetic mean, 0 when empty.
    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    /// The value at quantile `q` (0..=1) by the nearest-rank method: the smallest recorded
    /// value such that at least `q` of all samples are at or below it. Reported as the upper
    /// bound of its bucket, clamped to the exact min and max; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let q = q.clamp(0.0, 1.0);
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bounds_of(i).1.clamp(self.min, self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_cover_values() {
        let mut prev_hi = None;
        for i in 0..BUCKETS {
            let (lo, hi) = bounds_of(i);
            assert!(lo <= hi);
            if let Some(p) = prev_hi {
                assert_eq!(lo, p + 1, "gap before bucket {i}");
            }
            prev_hi = Some(hi);
            assert_eq!(index_of(lo), i);
            assert_eq!(index_of(hi), i);
        }
    }

    #[test]
    fn relative_error_is_bounded() {
        for v in [
            1u64,
            127,
            128,
            129,
            1000,
            12_345,
            999_999,
            1_234_567_890,
            77_777_777_777,
        ] {
            let (lo, hi) = bounds_of(index_of(v));
            assert!(lo <= v && v <= hi, "{v} not in [{lo},{hi}]");
            assert!(
                (hi - lo) as f64 <= v as f64 / 64.0,
                "bucket too wide for {v}"
            );
        }
    }

    #[test]
    fn empty_histogram() {
        let h = Histogram::new();
        assert_eq!(h.quantile(0.5), 0);
        assert_eq!(h.max(), 0);
        assert_eq!(h.min(), 0);
        assert_eq!(h.mean(), 0.0);
    }

    #[test]
    fn exact_small_values_nearest_rank() {
        let mut h = Histogram::new();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), 50);
        assert_eq!(h.quantile(0.9), 90);
        assert_eq!(h.quantile(0.99), 99);
        assert_eq!(h.quantile(0.999), 100);
        assert_eq!(h.quantile(1.0), 100);
        assert_eq!(h.quantile(0.0), 1);
        assert_eq!(h.max(), 100);
        assert!((h.mean() - 50.5).abs() < 1e-9);
    }

    #[test]
    fn large_values_within_one_percent() {
        let mut h = Histogram::new();
        // 1..=10000 microseconds.
        for us in 1..=10_000u64 {
            h.record(us * 1000);
        }
        for (q, want) in [(0.5, 5_000_000u64), (0.9, 9_000_000), (0.99, 9_900_000)] {
            let got = h.quantile(q);
            let err = (got as f64 - want as f64).abs() / want as f64;
            assert!(err < 0.01, "q{q}: got {got}, want {want}");
        }
        assert_eq!(h.quantile(1.0), 10_000_000);
    }

    #[test]
    fn outlier_is_the_max_and_the_tail() {
        let mut h = Histogram::new();
        for _ in 0..999 {
            h.record(1_000);
        }
        h.record(5_000_000_000);
        // Reported as the upper bound of 1,000's bucket (within 1/128 of it).
        let (_, hi) = bounds_of(index_of(1_000));
        assert_eq!(h.quantile(0.99), hi);
        assert_eq!(h.quantile(0.999), hi);
        assert!(hi - 1_000 <= 1_000 / 128);
        assert_eq!(h.quantile(0.9995), 5_000_000_000);
        assert_eq!(h.max(), 5_000_000_000);
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        for v in 0..50 {
            a.record(v * 10);
        }
        for v in 50..100 {
            b.record(v * 10);
        }
        a.merge(&b);
        assert_eq!(a.count(), 100);
        assert_eq!(a.min(), 0);
        assert_eq!(a.max(), 990);
        let med = a.quantile(0.5);
        assert!((490..=495).contains(&med), "median {med}");
    }

    #[test]
    fn huge_values_clamp() {
        let mut h = Histogram::new();
        h.record(u64::MAX);
        assert_eq!(h.max(), u64::MAX);
        assert_eq!(h.quantile(0.5), u64::MAX);
    }
}
