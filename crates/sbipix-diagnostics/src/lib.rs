//! # sbipix-diagnostics — is a posterior estimator accurate and calibrated?
//!
//! Computed from plain arrays: for N test cases, the true parameter vector and n posterior draws
//! each. Pairs in the style of sbi: functions that compute (`metrics`, `sbc_ranks`, `tarp`, …)
//! and, separately, the judgement the caller makes of them. Figures in [`plots`].
//!
//! Conventions: Δ = posterior median − truth; bias = median(Δ); NMAD = 1.4826·median|Δ − bias|;
//! an outlier has |Δ − bias| > 3·NMAD (with a Gaussian error 0.27 % would); coverage at level α is
//! the fraction of truths inside the central α credible interval of their posterior.
//! Two more scores judge the whole posterior rather than its median: the R² of the posterior
//! *mean* (what a squared error rewards; for skewed posteriors, such as ages, the median's R²
//! favours a prior that leans to the long tail) and the CRPS (continuous ranked probability
//! score, a proper scoring rule: lower is better, in the parameter's units; it rewards sharp
//! posteriors only where they are also right).

pub mod binomial;
pub mod plots;
pub mod recalibration;

pub use binomial::{binomial_interval, check_coverage, coverage_bounds};
pub use recalibration::{QuantileMap, pit};
use sbipix_stats::{median, quantile_sorted, sort_f64};
use serde::{Deserialize, Serialize};

/// Posterior draws of one parameter for N cases: `draws[i·n + k]`.
pub struct Draws<'a> {
    pub truth: &'a [f64],
    pub draws: &'a [f64],
    pub n_draws: usize,
}

/// The accuracy and calibration of one parameter.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ParamMetrics {
    /// R² of the posterior medians.
    pub r2: f64,
    /// R² of the posterior means.
    #[serde(default = "nan")]
    pub r2_mean: f64,
    /// Mean CRPS of the draws' empirical distribution ([`crps_sorted`]).
    #[serde(default = "nan")]
    pub crps: f64,
    pub bias: f64,
    pub nmad: f64,
    pub outlier_frac: f64,
    pub median_width_68: f64,
    pub coverage_68: f64,
    pub coverage_95: f64,
    /// KS test of the SBC ranks against uniform: p-value.
    pub sbc_ks_pvalue: f64,
}

fn nan() -> f64 {
    f64::NAN
}

/// Sorted copy.
fn sorted(v: &[f64]) -> Vec<f64> {
    let mut s = v.to_vec();
    sort_f64(&mut s);
    s
}

/// 1 − Σ(pred − truth)² / Σ(truth − mean)².
pub fn r2(truth: &[f64], pred: &[f64]) -> f64 {
    let m = truth.iter().sum::<f64>() / truth.len() as f64;
    let ss_res: f64 = truth.iter().zip(pred).map(|(t, p)| (p - t).powi(2)).sum();
    let ss_tot: f64 = truth.iter().map(|t| (t - m).powi(2)).sum();
    1.0 - ss_res / ss_tot
}

/// CRPS of the empirical distribution of `sorted` draws (ascending) at the truth `y`:
/// E|X − y| − ½ E|X − X′| (Gneiting & Raftery 2007, eq. 21), with E|X − X′| over all ordered
/// pairs = (2/n²) Σᵢ (2i − n − 1) x₍ᵢ₎ (i = 1…n), exact for the n draws, O(n). Written here
/// rather than taken from a crate: it is these two sums over draws we already sort.
pub fn crps_sorted(sorted: &[f64], y: f64) -> f64 {
    let n = sorted.len() as f64;
    let abs_err = sorted.iter().map(|x| (x - y).abs()).sum::<f64>() / n;
    let spread = sorted.iter().enumerate().map(|(i, x)| (2.0 * (i + 1) as f64 - n - 1.0) * x).sum::<f64>() * 2.0 / (n * n);
    abs_err - 0.5 * spread
}

/// Fraction of truths inside the central `level` interval of their draws, for each level.
pub fn coverage(d: &Draws, levels: &[f64]) -> Vec<f64> {
    let n_cases = d.truth.len();
    let mut hits = vec![0usize; levels.len()];
    for i in 0..n_cases {
        let s = sorted(&d.draws[i * d.n_draws..(i + 1) * d.n_draws]);
        for (h, &a) in hits.iter_mut().zip(levels) {
            let (lo, hi) = (quantile_sorted(&s, 0.5 - a / 2.0), quantile_sorted(&s, 0.5 + a / 2.0));
            *h += (d.truth[i] >= lo && d.truth[i] <= hi) as usize;
        }
    }
    hits.iter().map(|&h| h as f64 / n_cases as f64).collect()
}

/// SBC ranks (Talts et al. 2018): the number of draws below the truth, 0…n.
pub fn sbc_ranks(d: &Draws) -> Vec<usize> {
    (0..d.truth.len()).map(|i| d.draws[i * d.n_draws..(i + 1) * d.n_draws].iter().filter(|&&s| s < d.truth[i]).count()).collect()
}

/// Kolmogorov–Smirnov p-value of ranks 0…n_draws against the discrete uniform: the ranks are
/// mapped to (r + ½)/(n + 1) and compared with U(0, 1) (asymptotic Kolmogorov distribution).
pub fn sbc_ks_pvalue(ranks: &[usize], n_draws: usize) -> f64 {
    let u: Vec<f64> = ranks.iter().map(|&r| (r as f64 + 0.5) / (n_draws + 1) as f64).collect();
    ks_uniform_pvalue(&u)
}

/// KS test of samples in [0, 1] against U(0, 1): p-value.
pub fn ks_uniform_pvalue(u: &[f64]) -> f64 {
    let s = sorted(u);
    let n = s.len() as f64;
    let d = s.iter().enumerate().map(|(i, v)| (v - i as f64 / n).abs().max(((i + 1) as f64 / n - v).abs())).fold(0.0, f64::max);
    kolmogorov_q((n.sqrt() + 0.12 + 0.11 / n.sqrt()) * d)
}

/// Q_KS(λ) = 2 Σ (−1)^(k−1) e^(−2k²λ²) (Numerical Recipes §14.3).
pub fn kolmogorov_q(lambda: f64) -> f64 {
    if lambda < 1e-3 {
        return 1.0;
    }
    let mut sum = 0.0;
    let mut sign = 1.0;
    for k in 1..=100 {
        let term = sign * 2.0 * (-2.0 * (k * k) as f64 * lambda * lambda).exp();
        sum += term;
        if term.abs() < 1e-12 {
            break;
        }
        sign = -sign;
    }
    sum.clamp(0.0, 1.0)
}

/// (bias, NMAD) of errors Δ, as the crate's conventions define them: median(Δ) and
/// 1.4826·median|Δ − bias| (medians interpolated as numpy's); NaN for no errors.
pub fn bias_nmad(delta: &[f64]) -> (f64, f64) {
    let bias = median(delta);
    (bias, 1.4826 * median(&delta.iter().map(|x| (x - bias).abs()).collect::<Vec<_>>()))
}

/// All metrics of one parameter.
pub fn metrics(d: &Draws) -> ParamMetrics {
    let n = d.truth.len();
    let meds: Vec<f64> = (0..n).map(|i| median(&d.draws[i * d.n_draws..(i + 1) * d.n_draws])).collect();
    let delta: Vec<f64> = meds.iter().zip(d.truth).map(|(m, t)| m - t).collect();
    let (bias, nmad) = bias_nmad(&delta);
    let outliers = delta.iter().filter(|x| (*x - bias).abs() > 3.0 * nmad).count();
    let means: Vec<f64> = (0..n).map(|i| d.draws[i * d.n_draws..(i + 1) * d.n_draws].iter().sum::<f64>() / d.n_draws as f64).collect();
    let (widths, crps): (Vec<f64>, Vec<f64>) = (0..n)
        .map(|i| {
            let s = sorted(&d.draws[i * d.n_draws..(i + 1) * d.n_draws]);
            (quantile_sorted(&s, 0.84) - quantile_sorted(&s, 0.16), crps_sorted(&s, d.truth[i]))
        })
        .unzip();
    let cov = coverage(d, &[0.68, 0.95]);
    ParamMetrics {
        r2: r2(d.truth, &meds),
        r2_mean: r2(d.truth, &means),
        crps: crps.iter().sum::<f64>() / n as f64,
        bias,
        nmad,
        outlier_frac: outliers as f64 / n as f64,
        median_width_68: median(&widths),
        coverage_68: cov[0],
        coverage_95: cov[1],
        sbc_ks_pvalue: sbc_ks_pvalue(&sbc_ranks(d), d.n_draws),
    }
}

/// TARP (Lemos et al. 2023) result: expected coverage probability at each credibility level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tarp {
    pub alpha: Vec<f64>,
    pub ecp: Vec<f64>,
    /// max |ECP(α) − α|.
    pub max_deviation: f64,
    /// ∫ |ECP(α) − α| dα.
    pub area: f64,
}

/// TARP coverage test over all parameters jointly. `truth[i·p + j]`, `draws[(i·n + k)·p + j]`.
/// Parameters are scaled by the spread of the truths; each case gets a reference point drawn
/// uniformly in the bounding box of the truths (seeded).
pub fn tarp(truth: &[f64], draws: &[f64], n_params: usize, n_draws: usize, seed: u64) -> Tarp {
    use rand::{RngExt, SeedableRng};
    let p = n_params;
    let n = truth.len() / p;
    let (mut lo, mut hi) = (vec![f64::INFINITY; p], vec![f64::NEG_INFINITY; p]);
    for i in 0..n {
        for j in 0..p {
            lo[j] = lo[j].min(truth[i * p + j]);
            hi[j] = hi[j].max(truth[i * p + j]);
        }
    }
    let scale: Vec<f64> = (0..p).map(|j| if hi[j] > lo[j] { hi[j] - lo[j] } else { 1.0 }).collect();
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
    let dist = |a: &[f64], b: &[f64]| -> f64 { (0..p).map(|j| ((a[j] - b[j]) / scale[j]).powi(2)).sum::<f64>() };
    let mut f = Vec::with_capacity(n);
    for i in 0..n {
        let r: Vec<f64> = (0..p).map(|j| lo[j] + (hi[j] - lo[j]) * rng.random::<f64>()).collect();
        let t = &truth[i * p..(i + 1) * p];
        let dt = dist(t, &r);
        let inside = (0..n_draws).filter(|&k| dist(&draws[(i * n_draws + k) * p..(i * n_draws + k + 1) * p], &r) < dt).count();
        f.push(inside as f64 / n_draws as f64);
    }
    let alpha: Vec<f64> = (0..=50).map(|k| k as f64 / 50.0).collect();
    let ecp: Vec<f64> = alpha.iter().map(|&a| f.iter().filter(|&&x| x < a).count() as f64 / n as f64).collect();
    let dev: Vec<f64> = alpha.iter().zip(&ecp).map(|(a, e)| (e - a).abs()).collect();
    let area = dev.windows(2).map(|w| 0.5 * (w[0] + w[1]) / 50.0).sum();
    Tarp { max_deviation: dev.iter().cloned().fold(0.0, f64::max), area, alpha, ecp }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn bias_and_nmad_by_hand() {
        // median 3; |Δ − 3| = 2, 1, 0, 1, 7 → median 1; even counts interpolate as numpy
        assert_eq!(bias_nmad(&[1.0, 2.0, 3.0, 4.0, 10.0]), (3.0, 1.4826));
        assert_eq!(bias_nmad(&[0.0, 1.0, 2.0, 4.0]).0, 1.5);
        assert!(bias_nmad(&[]).0.is_nan());
    }
    use sbipix_stats::std_normal as normal;

    /// N cases; posterior N(μ_i, s²) while the truth is N(μ_i, 1): calibrated iff s = 1.
    fn gaussian_cases(s: f64, n: usize, n_draws: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
        let mut truth = Vec::new();
        let mut draws = Vec::new();
        for _ in 0..n {
            let mu = 3.0 * normal(&mut rng);
            truth.push(mu + normal(&mut rng));
            for _ in 0..n_draws {
                draws.push(mu + s * normal(&mut rng));
            }
        }
        (truth, draws)
    }

    #[test]
    fn calibrated_gaussian_passes_and_narrow_one_fails() {
        let (t, d) = gaussian_cases(1.0, 2000, 500, 1);
        let m = metrics(&Draws { truth: &t, draws: &d, n_draws: 500 });
        // 2000 independent cases: coverage within exact 99.9 % binomial bounds of the nominal level
        for (c, level) in [(m.coverage_68, 0.68), (m.coverage_95, 0.95)] {
            let (lo, hi) = coverage_bounds(2000, level, 0.999);
            assert!((lo..=hi).contains(&c), "coverage {c} at {level}: calibrated gives {lo}–{hi}; {m:?}");
        }
        assert!(m.sbc_ks_pvalue > 0.01, "{m:?}");
        assert!((m.nmad - 1.0).abs() < 0.08 && m.bias.abs() < 0.06 && (m.median_width_68 - 2.0).abs() < 0.05, "{m:?}");
        // r² = var(μ)/var(t) = 9/10
        assert!((m.r2 - 0.9).abs() < 0.02, "{m:?}");
        let tp = tarp(&t, &d, 1, 500, 3);
        assert!(tp.max_deviation < 0.05, "{tp:?}");

        let (t, d) = gaussian_cases(0.5, 2000, 500, 2);
        let m = metrics(&Draws { truth: &t, draws: &d, n_draws: 500 });
        assert!(m.coverage_68 < coverage_bounds(2000, 0.68, 0.999).0 && m.sbc_ks_pvalue < 1e-6, "{m:?}");
        assert!(tarp(&t, &d, 1, 500, 3).max_deviation > 0.1);
    }

    #[test]
    fn crps_matches_the_gaussian_closed_form() {
        // n draws at the Gaussian's quantiles (i − ½)/n: their CRPS → the closed form
        // σ[z(2Φ(z) − 1) + 2φ(z) − 1/√π], z = (y − μ)/σ (Gneiting & Raftery 2007, eq. 5).
        let (mu, sigma, n) = (1.5, 0.7, 200_000);
        let draws: Vec<f64> = (0..n).map(|i| mu + sigma * sbipix_stats::normal::quantile((i as f64 + 0.5) / n as f64)).collect();
        for y in [1.5, 2.0, -0.5, 4.0] {
            let z = (y - mu) / sigma;
            let pdf = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
            let exact = sigma * (z * (2.0 * sbipix_stats::normal::cdf(z) - 1.0) + 2.0 * pdf - 1.0 / std::f64::consts::PI.sqrt());
            let got = crps_sorted(&draws, y);
            assert!((got - exact).abs() < 1e-4, "y {y}: {got} vs {exact}");
        }
        // one draw: the absolute error; draws 0 and 2 at y = 0: E|X − y| = 1, E|X − X′| = 1, so 0.5
        assert_eq!(crps_sorted(&[3.0], 1.0), 2.0);
        assert_eq!(crps_sorted(&[0.0, 2.0], 0.0), 0.5);
    }

    #[test]
    fn the_mean_r2_differs_from_the_median_r2_on_skewed_posteriors() {
        // each case's draws {0, 0, 3t} (median 0, mean t): the means are exact, the medians not
        let truth = [1.0, 2.0, 3.0, 4.0];
        let draws: Vec<f64> = truth.iter().flat_map(|&t| [0.0, 0.0, 3.0 * t]).collect();
        let m = metrics(&Draws { truth: &truth, draws: &draws, n_draws: 3 });
        assert!((m.r2_mean - 1.0).abs() < 1e-12, "{m:?}");
        // medians all 0: Σt² / Σ(t − 2.5)² = 30 / 5 → r² = −5
        assert!((m.r2 - (-5.0)).abs() < 1e-12, "{m:?}");
    }

    #[test]
    fn exact_small_cases() {
        assert_eq!(r2(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), 1.0);
        assert_eq!(sbc_ranks(&Draws { truth: &[0.5], draws: &[0.1, 0.2, 0.9], n_draws: 3 }), vec![2]);
        assert_eq!(quantile_sorted(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.5);
        assert!((kolmogorov_q(1.36) - 0.049).abs() < 0.002);
        let u: Vec<f64> = (0..1000).map(|i| (i as f64 + 0.5) / 1000.0).collect();
        assert!(ks_uniform_pvalue(&u) > 0.99);
    }
}
