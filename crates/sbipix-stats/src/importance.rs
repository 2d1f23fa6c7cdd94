//! Weighted samples: the effective sample size of importance weights and systematic resampling.

/// Indices of a systematic resample of `n` points from weights `w` (their sum `sw`, passed so a
/// caller that has it does not sum again), with offset `u0` ∈ [0, 1): point k takes the index
/// whose cumulative weight first reaches (k + u0)/n · sw. Index i appears ⌊n wᵢ/sw⌋ or
/// ⌈n wᵢ/sw⌉ times unless a target falls exactly on a cumulative weight (Kitagawa 1996; Douc,
/// Cappé & Moulines 2005). The cumulative weights are summed left to right; indices never pass
/// the last one.
pub fn systematic(w: &[f64], sw: f64, n: usize, u0: f64) -> Vec<usize> {
    let mut out = Vec::with_capacity(n);
    let mut cum = 0.0;
    let mut j = 0;
    for k in 0..n {
        let t = (k as f64 + u0) / n as f64 * sw;
        while j + 1 < w.len() && cum + w[j] < t {
            cum += w[j];
            j += 1;
        }
        out.push(j);
    }
    out
}

/// Kish's effective sample size of importance weights, (Σw)²/Σw² (sums left to right); 0 when
/// every weight is 0. The weights need not be normalised.
pub fn effective_sample_size(weights: impl IntoIterator<Item = f64>) -> f64 {
    let (s1, s2) = weights.into_iter().fold((0.0, 0.0), |(a, b), w| (a + w, b + w * w));
    if s2 == 0.0 { 0.0 } else { s1 * s1 / s2 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systematic_counts_of_known_weights() {
        // weights 1 : 2 : 5 (sum 8), 8 draws: exactly 1, 2, 5 of each, in order
        let w = [1.0, 2.0, 5.0];
        for u0 in [0.3, 0.5, 0.999] {
            assert_eq!(systematic(&w, 8.0, 8, u0), vec![0, 1, 1, 2, 2, 2, 2, 2], "u0 {u0}");
        }
        // 4 draws from weights 0.1, 0.6, 0.3 (n·w = 0.4, 2.4, 1.2): counts within one of n·w
        for u0 in [0.0, 0.2, 0.5, 0.9] {
            let idx = systematic(&[0.1, 0.6, 0.3], 1.0, 4, u0);
            let count = |i| idx.iter().filter(|&&j| j == i).count() as f64;
            for (i, nw) in [0.4f64, 2.4, 1.2].into_iter().enumerate() {
                assert!(count(i) == nw.floor() || count(i) == nw.ceil(), "u0 {u0}: {idx:?}");
            }
            assert!(idx.windows(2).all(|p| p[0] <= p[1]));
        }
        // u0 = 0.5, 4 draws: targets 0.125, 0.375, 0.625, 0.875
        assert_eq!(systematic(&[0.1, 0.6, 0.3], 1.0, 4, 0.5), vec![1, 1, 1, 2]);
        // a zero weight is never chosen; the last index is never passed
        assert_eq!(systematic(&[0.0, 1.0, 0.0], 1.0, 3, 0.5), vec![1, 1, 1]);
        assert_eq!(systematic(&[1.0], 1.0, 2, 0.7), vec![0, 0]);
    }

    #[test]
    fn effective_sample_size_of_known_weights() {
        assert_eq!(effective_sample_size([1.0; 10]), 10.0);
        assert_eq!(effective_sample_size([3.0, 0.0, 0.0]), 1.0);
        // (1 + 2 + 3)² / (1 + 4 + 9) = 36/14
        assert_eq!(effective_sample_size([1.0, 2.0, 3.0]), 36.0 / 14.0);
        assert_eq!(effective_sample_size([0.0, 0.0]), 0.0);
        assert_eq!(effective_sample_size(std::iter::empty()), 0.0);
    }
}
