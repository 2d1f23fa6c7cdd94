//! Non-parametric star-formation histories in the style of dense_basis (Iyer et al. 2019), as
//! used by SBIPIX: a tuple (log M formed, log SFR at observation, t_x) with the times t_x at which
//! fractions x = 1/(N+1), 2/(N+1), … of the mass had formed (fractions of the age of the universe)
//! becomes a smooth SFH.
//!
//! **What we use and why.** dense_basis draws the cumulative mass curve through the tuple's
//! points with a Gaussian process of *fixed* hyper-parameters (george; no optimisation), i.e. the
//! GP posterior mean — a deterministic linear smoother. We implement that same smoother (kernel
//! var(y)·[Matérn-3/2 with metric median(y) + (x·x')²/e^median(y)], point errors 0.001/√N on the
//! t_x points, george's 1.25e-12 jitter) and dense_basis' post-processing (SFR constraints near
//! the observation, clipping, renormalisation), so that the realised SFH of a tuple is the one the
//! SBIPIX atlases were made with: the recomputed t_x match the atlas' `rec_*` columns
//! (`tests/dense_basis_atlas.rs`). A monotone spline through the tuple points (PCHIP) would be
//! simpler and would reproduce the *input* t_x exactly, but then our training set would describe
//! different galaxies from the original's for the same prior draw.

use crate::error::SpsError;
use sbipix_stats::linalg::{Summation, cholesky_with, solve_cholesky};

/// A dense_basis SFH tuple.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseBasisTuple {
    /// log10 of the mass formed, M☉.
    pub log_mass_formed: f64,
    /// log10 of the SFR at observation, M☉/yr.
    pub log_sfr: f64,
    /// t_x as fractions of the age of the universe, ascending, in (0, 1).
    pub tx: Vec<f64>,
}

/// george's default white-noise variance.
const GEORGE_TINY: f64 = 1.25e-12;

impl DenseBasisTuple {
    fn check(&self) -> Result<(), SpsError> {
        let bad = |m: String| Err(SpsError::InvalidSfhTable(format!("dense_basis tuple: {m}")));
        if !self.log_mass_formed.is_finite() || !self.log_sfr.is_finite() {
            return bad(format!("log M = {}, log SFR = {} must be finite", self.log_mass_formed, self.log_sfr));
        }
        if self.tx.is_empty() || self.tx.len() > 20 {
            return bad(format!("{} t_x values (1 to 20 allowed)", self.tx.len()));
        }
        for (i, t) in self.tx.iter().enumerate() {
            if !(t.is_finite() && *t > 0.0 && *t < 1.0) {
                return bad(format!("t_x[{i}] = {t} must lie in (0, 1)"));
            }
            if i > 0 && *t < self.tx[i - 1] {
                return bad(format!("t_x must be ascending (t_x[{i}] = {t} < {})", self.tx[i - 1]));
            }
        }
        Ok(())
    }

    /// The window (Gyr) over which the SFR at observation is imposed, as dense_basis' atlas
    /// generator sets it by default (`dynamic_decouple`): 100 Myr × t_univ(z) / t_univ(0.1).
    pub fn dynamic_sfr_window_gyr(age_universe_gyr: f64, age_universe_z01_gyr: f64) -> f64 {
        0.1 * age_universe_gyr / age_universe_z01_gyr
    }

    /// Points (time fraction, mass fraction) of the cumulative mass curve the GP smooths: the t_x
    /// of the tuple, a smooth rise after the Big Bang, and the last 3, 2, 1 % of the mass formed
    /// at the observed SFR.
    fn mass_curve_points(&self, t_univ_yr: f64, mass: f64, sfr: f64) -> (Vec<f64>, Vec<f64>) {
        let n = self.tx.len();
        let mut mq: Vec<f64> = (0..n + 2).map(|i| i as f64 / (n + 1) as f64).collect();
        let mut tq: Vec<f64> = std::iter::once(0.0).chain(self.tx.iter().copied()).chain(std::iter::once(1.0)).collect();
        // SFR rising smoothly from zero after the Big Bang.
        mq.insert(1, 0.0);
        tq.insert(1, 0.01);
        // SFR at observation: the last 3, 2, 1 % of the mass formed at the given SFR.
        for c in [0.97, 0.98, 0.99] {
            let delta_t = 1.0 - mass * (1.0 - c) / sfr / t_univ_yr;
            let k = tq.len() - 1;
            if delta_t > tq[k - 1] && delta_t > 0.9 {
                mq.insert(k, c);
                tq.insert(k, delta_t);
            } else {
                let delta_m = 1.0 - t_univ_yr * (1.0 - c) * sfr / mass;
                tq.insert(k, c);
                mq.insert(k, delta_m);
            }
        }

        (tq, mq)
    }

    /// The SFH on `res` cosmic times linspace(0, t_univ) (Gyr), SFR in M☉/yr — dense_basis'
    /// `tuple_to_sfh` (gp_george interpolator, 0.05 dex SFR tolerance) with the SFR imposed over
    /// the last `sfr_window_gyr`. `res` = 1000 reproduces dense_basis.
    pub fn to_sfh(&self, age_universe_gyr: f64, sfr_window_gyr: f64, res: usize) -> Result<(Vec<f64>, Vec<f64>), SpsError> {
        self.check()?;
        if res < 10 {
            return Err(SpsError::InvalidSfhTable(format!("dense_basis resolution {res} < 10")));
        }
        let n = self.tx.len();
        let t_univ_yr = age_universe_gyr * 1e9;
        let mass = 10f64.powf(self.log_mass_formed);
        let sfr = 10f64.powf(self.log_sfr);

        let (tq, mq) = self.mass_curve_points(t_univ_yr, mass, sfr);
        let (t_pred, m_pred) = gp_mass_curve(&tq, &mq, n, res)?;

        // SFR = d(mass)/dt, clipped at zero (dense_basis' scale assumes 1000 samples).
        let scale = mass / (t_univ_yr / 1000.0);
        let mut s: Vec<f64> = std::iter::once(0.0).chain(m_pred.windows(2).map(|w| ((w[1] - w[0]) * scale).max(0.0))).collect();

        // The last `sfr_window_gyr` carry the observed SFR; the rest is renormalised to the
        // remaining mass.
        if !(sfr_window_gyr.is_finite() && sfr_window_gyr > 0.0) {
            return Err(SpsError::InvalidSfhTable(format!("SFR window {sfr_window_gyr} Gyr must be > 0")));
        }
        let mut idx = 0;
        for (i, t) in t_pred.iter().enumerate() {
            if (t * age_universe_gyr - sfr_window_gyr).abs() < (t_pred[idx] * age_universe_gyr - sfr_window_gyr).abs() {
                idx = i;
            }
        }
        if idx == 0 {
            idx = 2;
        }
        let idx = idx.min(res - 1);
        let time_yr: Vec<f64> = t_pred.iter().map(|t| t * t_univ_yr).collect();
        let trapz = |lo: usize, hi: usize| -> f64 { (lo + 1..hi).map(|i| 0.5 * (s[i] + s[i - 1]) * (time_yr[i] - time_yr[i - 1])).sum() };
        let mass_last = trapz(res - idx, res);
        let mass_remaining = (mass - mass_last).max(0.0);
        let n_init = res.saturating_sub(idx).min(1000);
        let mass_init = trapz(0, n_init);
        if mass_init > 0.0 {
            let f = mass_remaining / mass_init;
            s[..n_init].iter_mut().for_each(|v| *v *= f);
        }
        if (s[res - 1].log10() - self.log_sfr).abs() > 0.05 {
            s[res - idx..].iter_mut().for_each(|v| *v = sfr);
        }
        let time_gyr: Vec<f64> = t_pred.iter().map(|t| t * age_universe_gyr).collect();
        if !s.iter().any(|v| *v > 0.0) {
            return Err(SpsError::InvalidSfhTable("dense_basis tuple forms no stars".into()));
        }
        Ok((time_gyr, s))
    }
}

/// dense_basis' `calctimes`: (log M formed, log SFR at the last point, t_x as fractions of the
/// last time) of a tabulated SFH, with t_x from the cumulative *sum* of the SFR samples.
pub fn dense_basis_calctimes(time_gyr: &[f64], sfr: &[f64], n_param: usize) -> (f64, f64, Vec<f64>) {
    let mut cum = Vec::with_capacity(sfr.len());
    let mut acc = 0.0;
    for s in sfr {
        acc += s;
        cum.push(acc);
    }
    let max = cum.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let tmax = time_gyr.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let tx = (0..n_param)
        .map(|i| {
            let q = (i + 1) as f64 / (n_param + 1) as f64;
            let mut best = 0;
            for (k, c) in cum.iter().enumerate() {
                if (c / max - q).abs() < (cum[best] / max - q).abs() {
                    best = k;
                }
            }
            time_gyr[best] / tmax
        })
        .collect();
    let mass: f64 = (1..sfr.len()).map(|i| 0.5 * (sfr[i] + sfr[i - 1]) * (time_gyr[i] - time_gyr[i - 1]) * 1e9).sum();
    (mass.log10(), sfr[sfr.len() - 1].log10(), tx)
}

/// The GP posterior mean of the cumulative mass curve (george, fixed hyper-parameters, as
/// dense_basis) on `res` uniform times between the first and last point: (times, mass fractions).
fn gp_mass_curve(tq: &[f64], mq: &[f64], n: usize, res: usize) -> Result<(Vec<f64>, Vec<f64>), SpsError> {
    let m = tq.len();
    let mean_y = mq.iter().sum::<f64>() / m as f64;
    let var_y = mq.iter().map(|y| (y - mean_y).powi(2)).sum::<f64>() / m as f64;
    let mut sorted = mq.to_vec();
    sbipix_stats::sort_f64(&mut sorted);
    // numpy's median, as dense_basis computes it: the mean of the middle two for even m
    // (sbipix_stats::median interpolates, a + ½(b − a), which rounds differently)
    let med = if m % 2 == 1 { sorted[m / 2] } else { 0.5 * (sorted[m / 2 - 1] + sorted[m / 2]) };
    if !(med > 0.0 && var_y > 0.0) {
        return Err(SpsError::InvalidSfhTable(format!("dense_basis tuple gives a degenerate mass curve (median {med}, variance {var_y})")));
    }
    let inv_gamma2 = (-med).exp();
    let kernel = |a: f64, b: f64| {
        let r = (3.0 * (a - b) * (a - b) / med).sqrt();
        var_y * ((1.0 + r) * (-r).exp() + (a * b) * (a * b) * inv_gamma2)
    };
    let mut kmat = vec![0.0; m * m];
    for i in 0..m {
        for j in 0..m {
            kmat[i * m + j] = kernel(tq[i], tq[j]);
        }
        let yerr = if (2..2 + n).contains(&i) { 0.001 / (n as f64).sqrt() } else { 0.0 };
        kmat[i * m + i] += yerr * yerr + GEORGE_TINY;
    }
    // inner products subtracted term by term: the rounding these SFHs were always made with
    let chol = cholesky_with(&kmat, m, Summation::Running)
        .ok_or_else(|| SpsError::InvalidSfhTable("dense_basis GP covariance is not positive definite".into()))?;
    let alpha = solve_cholesky(&chol, mq, m, Summation::Running);
    let (tmin, tmax) = tq.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &t| (a.min(t), b.max(t)));
    let t_pred: Vec<f64> = (0..res).map(|i| tmin + (tmax - tmin) * i as f64 / (res - 1) as f64).collect();
    // Posterior mean on the uniform grid. The Matérn factor e^(−a|t−x|) is geometric along a
    // uniform grid, so it is advanced by multiplication instead of one exp per point.
    let a_m = (3.0 / med).sqrt();
    let dt = (tmax - tmin) / (res - 1) as f64;
    let q = (-a_m * dt).exp();
    let mut m_pred = vec![0.0; res];
    for (&x, &al) in tq.iter().zip(&alpha) {
        let first_above = t_pred.partition_point(|&t| t < x);
        // t ≥ x: ascending
        let mut e = if first_above < res { (-a_m * (t_pred[first_above] - x)).exp() } else { 0.0 };
        for i in first_above..res {
            let r = a_m * (t_pred[i] - x);
            m_pred[i] += al * var_y * ((1.0 + r) * e + (t_pred[i] * x).powi(2) * inv_gamma2);
            e *= q;
        }
        // t < x: descending
        if first_above > 0 {
            let mut e = (-a_m * (x - t_pred[first_above - 1])).exp();
            for i in (0..first_above).rev() {
                let r = a_m * (x - t_pred[i]);
                m_pred[i] += al * var_y * ((1.0 + r) * e + (t_pred[i] * x).powi(2) * inv_gamma2);
                e *= q;
            }
        }
    }

    Ok((t_pred, m_pred))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mass_and_sfr_are_honoured() {
        let t = DenseBasisTuple { log_mass_formed: 10.0, log_sfr: 0.5, tx: vec![0.3, 0.5, 0.7] };
        let (time, sfr) = t.to_sfh(5.0, 0.01, 1000).unwrap();
        let (m, s, tx) = dense_basis_calctimes(&time, &sfr, 3);
        assert!((m - 10.0).abs() < 0.02, "{m}");
        assert!((s - 0.5).abs() < 0.05, "{s}");
        assert!(tx.windows(2).all(|w| w[1] >= w[0]));
        assert!(DenseBasisTuple { log_mass_formed: 10.0, log_sfr: 0.5, tx: vec![0.7, 0.5] }.to_sfh(5.0, 0.01, 1000).is_err());
        assert!(DenseBasisTuple { log_mass_formed: 10.0, log_sfr: 0.5, tx: vec![1.5] }.to_sfh(5.0, 0.01, 1000).is_err());
    }
}
