//! Quantiles of samples, with linear interpolation between order statistics (numpy's default,
//! `method="linear"`), so that numbers agree with what a user computes from the same draws in
//! Python.

/// Sorts in place, ascending; NaNs compare equal to everything (their place is unspecified).
pub fn sort_f64(v: &mut [f64]) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
}

/// Quantile `q` ∈ [0, 1] (clamped) of sorted values; NaN for no values.
pub fn quantile_sorted(s: &[f64], q: f64) -> f64 {
    if s.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (s.len() - 1) as f64;
    let k = pos.floor() as usize;
    let k1 = (k + 1).min(s.len() - 1);
    s[k] + (pos - k as f64) * (s[k1] - s[k])
}

/// Quantile `q` of `v`, which is sorted in place first.
pub fn percentile(v: &mut [f64], q: f64) -> f64 {
    sort_f64(v);
    quantile_sorted(v, q)
}

/// Median of `v` (a sorted copy is made).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    percentile(&mut s, 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_numpy_linear() {
        // numpy.quantile([3, 1, 4, 1, 5], [0, 0.1, 0.5, 0.9, 1]) = [1, 1, 3, 4.6, 5]
        let v = [3.0, 1.0, 4.0, 1.0, 5.0];
        for (q, want) in [(0.0, 1.0), (0.1, 1.0), (0.5, 3.0), (0.9, 4.6), (1.0, 5.0)] {
            assert!((percentile(&mut v.to_vec(), q) - want).abs() < 1e-12, "q {q}");
        }
        // numpy.quantile([1, 2, 3, 4], 0.16) = 1.48
        assert!((percentile(&mut [4.0, 2.0, 3.0, 1.0], 0.16) - 1.48).abs() < 1e-12);
        assert_eq!(median(&[2.0, 9.0]), 5.5);
        assert!(median(&[]).is_nan());
    }
}
