//! Exact binomial intervals: how far a coverage measured on N independent test cases may stray
//! from its nominal level by chance alone, so that calibration tests can be judged with bounds
//! sized to the number of cases instead of ad-hoc windows.

/// The central `confidence` interval `[lo, hi]` of the number of successes X ~ Binomial(n, p):
/// `lo` is the smallest k with P(X ≤ k) ≥ (1 − confidence)/2 and `hi` the smallest k with
/// P(X ≤ k) ≥ 1 − (1 − confidence)/2, so P(X < lo) < (1 − confidence)/2 and
/// P(X > hi) ≤ (1 − confidence)/2 (the convention of scipy's `binom.interval`). Exact: the
/// probabilities are summed from the binomial mass function, evaluated in log space.
/// `p` is clamped to [0, 1] and `confidence` to [0, 1].
pub fn binomial_interval(n: usize, p: f64, confidence: f64) -> (usize, usize) {
    let p = if p.is_nan() { 0.5 } else { p.clamp(0.0, 1.0) };
    if p == 0.0 {
        return (0, 0);
    }
    if p == 1.0 {
        return (n, n);
    }
    let tail = (1.0 - if confidence.is_nan() { 0.0 } else { confidence.clamp(0.0, 1.0) }) / 2.0;
    // log P(X = k) by the recurrence P(k + 1)/P(k) = (n − k)/(k + 1) · p/(1 − p)
    let (ln_p, ln_q) = (p.ln(), (-p).ln_1p());
    let mut log_pmf = Vec::with_capacity(n + 1);
    let mut l = n as f64 * ln_q;
    for k in 0..=n {
        log_pmf.push(l);
        if k < n {
            l += ((n - k) as f64 / (k + 1) as f64).ln() + ln_p - ln_q;
        }
    }
    let max = log_pmf.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let pmf: Vec<f64> = log_pmf.iter().map(|l| (l - max).exp()).collect();
    let total: f64 = pmf.iter().sum();
    let mut cdf = 0.0;
    let (mut lo, mut hi) = (None, None);
    for (k, w) in pmf.iter().enumerate() {
        cdf += w / total;
        if lo.is_none() && cdf >= tail * (1.0 - 1e-12) {
            lo = Some(k);
        }
        if hi.is_none() && cdf >= (1.0 - tail) * (1.0 - 1e-12) {
            hi = Some(k);
        }
    }
    (lo.unwrap_or(0), hi.unwrap_or(n))
}

/// The range of coverage fractions, `[lo/n, hi/n]` of [`binomial_interval`], that calibrated
/// intervals at level `nominal` produce on `n` independent test cases with probability at least
/// `confidence`: a coverage outside it says, at that confidence, that the intervals are not
/// calibrated. (Cases must be independent: the parameters of one case are not.)
pub fn coverage_bounds(n: usize, nominal: f64, confidence: f64) -> (f64, f64) {
    let (lo, hi) = binomial_interval(n, nominal, confidence);
    let n = n.max(1) as f64;
    (lo as f64 / n, hi as f64 / n)
}

/// Judges a measured coverage: `inside` of `n` independent truths fell in the central `level`
/// intervals. Ok(the coverage fraction) when calibrated intervals produce that count with
/// probability ≥ `confidence` ([`binomial_interval`]), else Err(a sentence saying what was seen and
/// what calibrated intervals give). The judging half of [`crate::coverage`], as sbi's
/// `check_sbc` judges `run_sbc`.
pub fn check_coverage(inside: usize, n: usize, level: f64, confidence: f64) -> Result<f64, String> {
    let (lo, hi) = binomial_interval(n, level, confidence);
    let frac = inside as f64 / n.max(1) as f64;
    if (lo..=hi).contains(&inside) {
        return Ok(frac);
    }
    let nf = n.max(1) as f64;
    Err(format!(
        "{inside} of {n} truths ({frac:.3}) inside the {:.0} % intervals; calibrated intervals give {lo}–{hi} ({:.3}–{:.3}) with {} % probability",
        100.0 * level,
        lo as f64 / nf,
        hi as f64 / nf,
        100.0 * confidence
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_coverage_accepts_inside_the_interval_only() {
        let (lo, hi) = binomial_interval(400, 0.68, 0.999);
        assert_eq!(check_coverage(lo, 400, 0.68, 0.999), Ok(lo as f64 / 400.0));
        assert_eq!(check_coverage(hi, 400, 0.68, 0.999), Ok(hi as f64 / 400.0));
        let e = check_coverage(lo - 1, 400, 0.68, 0.999).unwrap_err();
        assert!(e.contains(&format!("{} of 400", lo - 1)) && e.contains(&format!("{lo}–{hi}")), "{e}");
        assert!(check_coverage(hi + 1, 400, 0.68, 0.999).is_err());
    }

    #[test]
    fn equals_scipy_binom_interval() {
        // scipy 1.17.1: scipy.stats.binom.interval(confidence, n, p)
        let cases = [
            (100, 0.6827, 0.999, (52, 83)),
            (400, 0.6827, 0.999, (242, 303)),
            (400, 0.9545, 0.999, (367, 394)),
            (40, 0.95, 0.99, (34, 40)),
            (1000, 0.5, 0.95, (469, 531)),
            (3591, 0.6827, 0.999, (2359, 2543)),
            (10, 0.3, 0.9, (1, 5)),
        ];
        for (n, p, c, want) in cases {
            assert_eq!(binomial_interval(n, p, c), want, "n {n}, p {p}, confidence {c}");
        }
        assert_eq!(binomial_interval(50, 0.0, 0.99), (0, 0));
        assert_eq!(binomial_interval(50, 1.0, 0.99), (50, 50));
        let (lo, hi) = coverage_bounds(400, 0.6827, 0.999);
        assert_eq!((lo, hi), (242.0 / 400.0, 303.0 / 400.0));
    }
}
