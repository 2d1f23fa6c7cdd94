//! Quasi-random points: the Halton sequence.
//!
//! Written here rather than taken from a crate: the radical inverse is a few lines, and the
//! crates that offer it (`halton`, `sobol`) add a dependency for no more than this.

/// The first primes: the Halton bases of dimensions 0, 1, 2, …
const PRIMES: [u64; 16] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53];

/// Most dimensions [`halton`] supports.
pub const HALTON_MAX_DIM: usize = PRIMES.len();

/// The radical inverse of `index` in `base`: its digits mirrored about the radix point, in [0, 1).
pub fn radical_inverse(mut index: u64, base: u64) -> f64 {
    let (mut value, mut factor) = (0.0, 1.0 / base as f64);
    while index > 0 {
        value += (index % base) as f64 * factor;
        index /= base;
        factor /= base as f64;
    }
    value
}

/// Point `index` of the `dim`-dimensional Halton sequence (dimension k in base the k-th prime),
/// written to `out[..dim]`. Indices from 1 (point 0 is the origin). Panics if `dim` exceeds
/// [`HALTON_MAX_DIM`].
pub fn halton(index: u64, out: &mut [f64]) {
    assert!(out.len() <= HALTON_MAX_DIM, "Halton points have at most {HALTON_MAX_DIM} dimensions");
    for (k, o) in out.iter_mut().enumerate() {
        *o = radical_inverse(index, PRIMES[k]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radical_inverse_mirrors_the_digits() {
        // 6 = 110₂ → 0.011₂ = 0.375; 5 = 12₃ → 0.21₃ = 2/3 + 1/9
        assert_eq!(radical_inverse(6, 2), 0.375);
        assert!((radical_inverse(5, 3) - (2.0 / 3.0 + 1.0 / 9.0)).abs() < 1e-15);
        assert_eq!(radical_inverse(0, 7), 0.0);
    }

    #[test]
    fn halton_points_fill_boxes_evenly() {
        // The first 2⁴·3³ = 432 points of the 2-D sequence put exactly one point in every box
        // of a 16 × 27 grid (the sequence's defining property).
        let mut seen = vec![0u32; 16 * 27];
        let mut p = [0.0; 2];
        for i in 0..432 {
            halton(i, &mut p);
            // (+1e-9: 1/3 and 1/9 are not exact in binary, so k/27 may come out a hair low)
            seen[(p[0] * 16.0 + 1e-9) as usize * 27 + (p[1] * 27.0 + 1e-9) as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c == 1));
    }
}
