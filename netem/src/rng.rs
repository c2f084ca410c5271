//! A small, seeded, portable pseudo-random generator.
//!
//! xoshiro256** seeded through SplitMix64, written out here so that the
//! emulator's output for a given seed never changes with a dependency's
//! version. Not for cryptography.

/// xoshiro256** state.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose whole output is determined by `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut splitmix = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng {
            s: [splitmix(), splitmix(), splitmix(), splitmix()],
        }
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)` with 53 bits of precision.
    fn unit(&mut self) -> f64 {
        const SCALE: f64 = 1.0 / (1u64 << 53) as f64;
        (self.next_u64() >> 11) as f64 * SCALE
    }

    /// `true` with probability `p`. Draws nothing when `p` is 0 or less,
    /// NaN, or 1 or more, so a perfect link costs no randomness.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        if p.is_nan() || p <= 0.0 {
            false
        } else if p >= 1.0 {
            true
        } else {
            self.unit() < p
        }
    }

    /// Uniform in `0..=max`, without modulo bias (Lemire's method).
    /// Draws nothing when `max` is 0.
    pub(crate) fn up_to(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        if max == u64::MAX {
            return self.next_u64();
        }
        let range = max + 1;
        let threshold = range.wrapping_neg() % range;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(range);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn matches_reference_vectors() {
        // SplitMix64 from 0 (Vigna's reference) gives the first state word.
        assert_eq!(Rng::new(0).s[0], 0xE220_A839_7B1D_CDAF);
        // xoshiro256** from state [1, 2, 3, 4] (as in rand_xoshiro's tests).
        let mut rng = Rng { s: [1, 2, 3, 4] };
        let got: [u64; 4] = core::array::from_fn(|_| rng.next_u64());
        assert_eq!(got, [11520, 0, 1509978240, 1215971899390074240]);
    }

    #[test]
    fn same_seed_same_stream() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let mut c = Rng::new(43);
        let differs = (0..10).any(|_| a.next_u64() != c.next_u64());
        assert!(differs);
    }

    #[test]
    fn up_to_stays_in_range_and_covers_it() {
        let mut rng = Rng::new(1);
        let mut seen = [false; 5];
        for _ in 0..10_000 {
            let v = rng.up_to(4);
            assert!(v <= 4);
            seen[v as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(rng.up_to(0), 0);
        let _ = rng.up_to(u64::MAX);
    }

    #[test]
    fn chance_edges() {
        let mut rng = Rng::new(9);
        for _ in 0..1000 {
            assert!(!rng.chance(0.0));
            assert!(!rng.chance(-1.0));
            assert!(!rng.chance(f64::NAN));
            assert!(rng.chance(1.0));
            assert!(rng.chance(2.0));
        }
    }
}
