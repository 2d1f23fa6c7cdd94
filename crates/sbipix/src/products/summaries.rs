//! Reductions shared by maps and catalogue fits: percentiles of posterior draws, the
//! posterior-predictive residuals and χ², and the refinement flags — computed once here so that
//! the two products cannot drift apart.

use std::collections::BTreeMap;

/// 16/50/84 % of every parameter of object `i` of `draws` [objects × `nd` × `np`]; `buf` is
/// scratch space.
pub fn object_percentiles(draws: &[f32], i: usize, nd: usize, np: usize, buf: &mut Vec<f64>) -> Vec<[f64; 3]> {
    (0..np)
        .map(|j| {
            buf.clear();
            buf.extend((0..nd).map(|k| draws[(i * nd + k) * np + j] as f64));
            buf.sort_by(f64::total_cmp);
            [0.16, 0.5, 0.84].map(|level| sbipix_stats::quantile_sorted(buf, level))
        })
        .collect()
}

/// Draws of `objects` objects, each fitted `k` times with `nd` draws (once per redshift drawn from
/// its p(z)), merged into [objects × k·nd × np]: draw m of an object comes from fit m mod k, so one
/// draw index means one redshift across objects (sums over pixels stay consistent).
/// `block(i, j)` is fit j's [nd × np] draws of object i.
pub fn interleave_draws<'a>(objects: usize, k: usize, nd: usize, np: usize, block: impl Fn(usize, usize) -> &'a [f32]) -> Vec<f32> {
    let mut out = vec![0f32; objects * k * nd * np];
    for i in 0..objects {
        for j in 0..k {
            let b = block(i, j);
            for m in 0..nd {
                let dst = (i * k * nd + m * k + j) * np;
                out[dst..dst + np].copy_from_slice(&b[m * np..(m + 1) * np]);
            }
        }
    }
    out
}

/// The posterior-predictive check of several objects.
pub struct PredictiveCheck {
    /// Reduced χ² of the median prediction per object (NaN where no band could be compared).
    pub chi2: Vec<f64>,
    /// Median (f − f_pred)/σ per band over the objects, for bands with any comparison.
    pub median_residual_sigma: BTreeMap<String, f64>,
    /// Median of the finite per-object χ² (None if there is none).
    pub median_chi2: Option<f64>,
}

/// Compares the median predictions `pred` `[objects][bands]` (from
/// [`crate::inference::ppc::ppc_predict`]) with the photometry `flux`, `sigma`, `seen`
/// [objects × bands] (band order `bands`). `error_floor` (a fraction of the flux) is added to σ
/// in quadrature, as the fit did: catalogue fits of integrated photometry use one, pixels none.
pub fn predictive_check(
    pred: &[Vec<f64>],
    flux: &[f64],
    sigma: &[f64],
    seen: &[bool],
    bands: &[String],
    error_floor: f64,
) -> PredictiveCheck {
    let nb = bands.len();
    let mut res_b: Vec<Vec<f64>> = vec![Vec::new(); nb];
    let mut chi2 = vec![f64::NAN; pred.len()];
    for (i, p) in pred.iter().enumerate() {
        let (mut c, mut m) = (0.0, 0);
        for j in 0..nb {
            let k = i * nb + j;
            if seen[k] && p[j].is_finite() {
                let e = if error_floor > 0.0 { (sigma[k].powi(2) + (error_floor * flux[k]).powi(2)).sqrt() } else { sigma[k] };
                let x = (flux[k] - p[j]) / e;
                res_b[j].push(x);
                c += x * x;
                m += 1;
            }
        }
        if m > 0 {
            chi2[i] = c / m as f64;
        }
    }
    let median_residual_sigma = bands
        .iter()
        .zip(res_b.iter_mut())
        .filter(|(_, v)| !v.is_empty())
        .map(|(b, v)| (b.clone(), sbipix_stats::percentile(v, 0.5)))
        .collect();
    let mut finite: Vec<f64> = chi2.iter().copied().filter(|c| c.is_finite()).collect();
    let median_chi2 = (!finite.is_empty()).then(|| sbipix_stats::percentile(&mut finite, 0.5));
    PredictiveCheck { chi2, median_residual_sigma, median_chi2 }
}

/// Per output slot (pixels of a map, rows of a catalogue; `n` of them): 1 where the refined
/// posterior replaced the network's, 0 where the network's was kept, NaN where not fitted.
/// `fitted[i]` is the slot of the i-th refinement outcome.
pub fn refined_flags(outcomes: &[crate::inference::refine::RefineOutcome], fitted: &[usize], n: usize) -> Vec<f64> {
    let mut flags = vec![f64::NAN; n];
    for (o, &slot) in outcomes.iter().zip(fitted) {
        flags[slot] = if o.refined { 1.0 } else { 0.0 };
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_predictive_check_by_hand() {
        // one object, 5 draws of 2 parameters: [1..5] and [10, 20, .., 50]
        let draws: Vec<f32> = (1..=5).flat_map(|k| [k as f32, 10.0 * k as f32]).collect();
        let p = object_percentiles(&draws, 0, 5, 2, &mut Vec::new());
        // numpy.quantile([1, 2, 3, 4, 5], [0.16, 0.5, 0.84]) = [1.64, 3, 4.36]
        for (got, want) in p[0].iter().zip([1.64, 3.0, 4.36]) {
            assert!((got - want).abs() < 1e-12, "{got} {want}");
        }
        assert!((p[1][1] - 30.0).abs() < 1e-12);
        // two objects, two bands; residuals (f − pred)/σ: object 0: 1, −2; object 1: band 1 unseen
        let bands = vec!["A".to_string(), "B".to_string()];
        let pred = vec![vec![1.0, 4.0], vec![2.0, 0.0]];
        let (flux, sigma, seen) = ([2.0, 2.0, 5.0, 9.0], [1.0, 1.0, 3.0, 1.0], [true, true, true, false]);
        let c = predictive_check(&pred, &flux, &sigma, &seen, &bands, 0.0);
        assert_eq!(c.chi2, vec![2.5, 1.0]);
        assert_eq!(c.median_residual_sigma["A"], 1.0);
        assert_eq!(c.median_residual_sigma["B"], -2.0);
        assert_eq!(c.median_chi2, Some(1.75));
        // a 50 % floor on f = 2, σ = 1: σ_eff = √2
        let c = predictive_check(&pred[..1], &flux[..2], &sigma[..2], &seen[..2], &bands, 0.5);
        assert!((c.chi2[0] - 0.5 * (1.0 + 4.0) / 2.0).abs() < 1e-12);
    }
}
