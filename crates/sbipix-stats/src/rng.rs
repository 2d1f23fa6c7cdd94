//! Seeds and small generators: SplitMix64 (Steele, Lea & Flood 2014), the mixing function that
//! turns (seed, index) pairs into independent-looking seeds for the PCG streams of simulations,
//! pixels and test cases, and a counter-based generator where a stream must depend on nothing
//! but its numbers.

/// The golden-ratio increment 2⁶⁴/φ (odd) of SplitMix64 and of the Weyl sequences that spread
/// indices over seeds.
pub const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output for state `z`: z + γ, then the mixing finaliser (Stafford's variant 13).
/// A bijection of u64 that scatters nearby inputs (0, 1, 2 …) over the whole range.
#[inline]
pub fn splitmix64(z: u64) -> u64 {
    let mut z = z.wrapping_add(GOLDEN_GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of item `index` of a batch seeded with `seed`: seed XOR index·γ (a Weyl sequence),
/// so that items of one batch, and the same item under different seeds, get different streams.
#[inline]
pub fn index_seed(seed: u64, index: u64) -> u64 {
    seed ^ index.wrapping_mul(GOLDEN_GAMMA)
}

/// The SplitMix64 generator: a 64-bit state advanced by γ, each output [`splitmix64`] of the
/// previous state. Tiny and counter-based: the stream is a function of the starting state only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitMix64 {
    /// The current state.
    pub state: u64,
}

impl SplitMix64 {
    /// A generator starting at `state`.
    pub fn new(state: u64) -> Self {
        Self { state }
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let out = splitmix64(self.state);
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        out
    }

    /// A uniform in [0, 1): the top 53 bits over 2⁵³.
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform in (0, 1), never 0 or 1: the top 53 bits, plus one half, over 2⁵³ (safe for
    /// logarithms, as in Box–Muller).
    #[inline]
    pub fn next_f64_open(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference outputs of SplitMix64 seeded with 1234567 (from the C reference
    /// implementation, splitmix64.c by Sebastiano Vigna, as quoted by many ports).
    #[test]
    fn splitmix64_reference_stream() {
        let mut g = SplitMix64::new(1234567);
        let want = [6457827717110365317u64, 3203168211198807973, 9817491932198370423, 4593380528125082431, 16408922859458223821];
        for w in want {
            assert_eq!(g.next_u64(), w);
        }
        assert_eq!(splitmix64(1234567), want[0]);
    }

    #[test]
    fn uniforms_and_seeds() {
        let mut g = SplitMix64::new(0);
        let (mut lo, mut hi) = (1.0f64, 0.0f64);
        let mut sum = 0.0;
        for _ in 0..100_000 {
            let u = g.next_f64_open();
            assert!(u > 0.0 && u < 1.0);
            lo = lo.min(u);
            hi = hi.max(u);
            sum += u;
        }
        // mean of 10⁵ uniforms: 0.5 ± 5 s.e. (s.e. = √(1/12/n))
        assert!((sum / 1e5 - 0.5).abs() < 5.0 * (1.0 / 12.0 / 1e5f64).sqrt());
        assert!(lo < 1e-3 && hi > 1.0 - 1e-3);
        let u = SplitMix64::new(7).next_f64();
        assert!((0.0..1.0).contains(&u));
        assert_eq!(index_seed(5, 0), 5);
        assert_eq!(index_seed(0, 1), GOLDEN_GAMMA);
        assert_ne!(index_seed(5, 1), index_seed(5, 2));
    }
}
