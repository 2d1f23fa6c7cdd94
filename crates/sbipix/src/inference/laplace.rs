//! Laplace approximations in the shape space of [`ShapeLikelihood`]: modes found by
//! Levenberg–Marquardt in logit coordinates with their covariances, and Gaussians fitted to
//! (weighted) points — the proposals of the likelihood refinement ([`super::refine`]).

use super::likelihood::ShapeLikelihood;
use sbipix_stats::linalg::{Summation, cholesky, inverse_from_cholesky, log_det_from_cholesky, normal_equations, solve_lower, solve_spd};

/// A Gaussian fitted to weighted points (widened 1.2×, small ridge), as a [`Mode`].
pub(super) fn weighted_gaussian(pts: &[Vec<f64>], w: &[f64], d: usize) -> Option<Mode> {
    let sw: f64 = w.iter().sum();
    if pts.len() < 2 || sw.is_nan() || sw <= 0.0 {
        return None;
    }
    let mean: Vec<f64> = (0..d).map(|k| pts.iter().zip(w).map(|(p, w)| p[k] * w).sum::<f64>() / sw).collect();
    let mut cov = vec![0.0; d * d];
    for (p, wi) in pts.iter().zip(w) {
        for i in 0..d {
            for j in 0..d {
                cov[i * d + j] += wi * (p[i] - mean[i]) * (p[j] - mean[j]) / sw;
            }
        }
    }
    for (i, c) in cov.iter_mut().enumerate() {
        *c *= 1.2 * 1.2;
        if i % (d + 1) == 0 {
            *c += 1e-8;
        }
    }
    let chol = cholesky(&cov, d)?;
    let log_det = log_det_from_cholesky(&chol, d);
    Some(Mode { u: mean, chol, log_weight: 0.0, log_det })
}

/// A Gaussian fitted to points (mean and covariance, widened 1.5× and with a small ridge), as a
/// [`Mode`]; None with fewer than 2·d points.
pub(super) fn gaussian_fit(pts: &[Vec<f64>], d: usize) -> Option<Mode> {
    let n = pts.len();
    if n < 2 * d {
        return None;
    }
    let mean: Vec<f64> = (0..d).map(|k| pts.iter().map(|p| p[k]).sum::<f64>() / n as f64).collect();
    let mut cov = vec![0.0; d * d];
    for p in pts {
        for i in 0..d {
            for j in 0..d {
                cov[i * d + j] += (p[i] - mean[i]) * (p[j] - mean[j]) / (n - 1) as f64;
            }
        }
    }
    for (i, c) in cov.iter_mut().enumerate() {
        *c *= 1.5 * 1.5;
        if i % (d + 1) == 0 {
            *c += 1e-4;
        }
    }
    let chol = cholesky(&cov, d)?;
    let log_det = log_det_from_cholesky(&chol, d);
    Some(Mode { u: mean, chol, log_weight: 0.0, log_det })
}

/// A mode of the posterior in the logit coordinates of the shape space with its Laplace
/// approximation.
#[derive(Clone)]
pub(super) struct Mode {
    /// The mode (logit coordinates).
    pub(super) u: Vec<f64>,
    /// Lower Cholesky factor of the covariance (row-major).
    pub(super) chol: Vec<f64>,
    /// log of the Laplace evidence: ln π(v̂) + ½ ln det Σ (π: likelihood × prior density in v).
    pub(super) log_weight: f64,
    /// ln det Σ
    pub(super) log_det: f64,
}

impl Mode {
    pub(super) fn d(&self) -> usize {
        self.u.len()
    }
    /// Squared Mahalanobis distance of `x` from the mode. Forward substitution as
    /// [`solve_lower`] ([`Summation::Accumulated`], the same bits) without allocating: the
    /// refinement evaluates it for every pooled point under every component of every round.
    pub(super) fn distance2(&self, x: &[f64]) -> f64 {
        let d = self.d();
        if d > MAX_DIM {
            let diff: Vec<f64> = x.iter().zip(&self.u).map(|(x, u)| x - u).collect();
            return solve_lower(&self.chol, &diff, d, Summation::Accumulated).iter().map(|v| v * v).sum();
        }
        let mut y = [0.0f64; MAX_DIM];
        for i in 0..d {
            let mut acc = -0.0;
            for (l, yk) in self.chol[i * d..i * d + i].iter().zip(&y[..i]) {
                acc += l * yk;
            }
            y[i] = ((x[i] - self.u[i]) - acc) / self.chol[i * d + i];
        }
        y[..d].iter().map(|v| v * v).sum()
    }
    /// Density of N(û, s²Σ) at `x`.
    #[cfg(test)]
    pub(super) fn density(&self, x: &[f64], s: f64) -> f64 {
        self.density_at_distance2(self.distance2(x), s)
    }
    /// [`Self::density`] from the squared distance `q` of [`Self::distance2`] (one distance
    /// serves every width `s` the mode is drawn at).
    pub(super) fn density_at_distance2(&self, q: f64, s: f64) -> f64 {
        let d = self.d() as f64;
        let q = q / (s * s);
        (-0.5 * q - 0.5 * self.log_det - d * s.ln() - 0.5 * d * (std::f64::consts::TAU).ln()).exp()
    }
    /// û + s L z.
    pub(super) fn draw(&self, z: &[f64], s: f64) -> Vec<f64> {
        let d = self.d();
        (0..d).map(|i| self.u[i] + s * (0..=i).map(|k| self.chol[i * d + k] * z[k]).sum::<f64>()).collect()
    }
}

/// Largest |v| of the logit coordinates (u within 3·10⁻⁷ of the prior's edges).
pub(super) const V_LIMIT: f64 = 15.0;

pub(super) fn to_u(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| 1.0 / (1.0 + (-x.clamp(-V_LIMIT, V_LIMIT)).exp())).collect()
}

pub(super) fn to_v(u: &[f64]) -> Vec<f64> {
    u.iter()
        .map(|x| {
            let x = x.clamp(1e-6, 1.0 - 1e-6);
            (x / (1.0 - x)).ln()
        })
        .collect()
}

/// Largest shape-space dimension whose distances are computed on the stack.
const MAX_DIM: usize = 16;

/// The first value of [`prior_term`] at `to_u(v)` — Σ −ln u(1−u) — without allocating (the
/// same bits): every importance draw and every proposal density needs it.
pub(super) fn prior_term_at_v(v: &[f64]) -> f64 {
    v.iter()
        .map(|x| {
            let u = 1.0 / (1.0 + (-x.clamp(-V_LIMIT, V_LIMIT)).exp());
            -(u * (1.0 - u)).max(1e-300).ln()
        })
        .sum()
}

/// The first value of [`prior_term`] alone (nothing allocated).
pub(super) fn prior_value(u: &[f64]) -> f64 {
    u.iter().map(|x| -(x * (1.0 - x)).max(1e-300).ln()).sum()
}

/// −ln of the uniform prior's density in logit coordinates, Σ −ln u(1−u), and its gradient
/// 2u − 1 and curvature 2u(1−u) per coordinate.
pub(super) fn prior_term(u: &[f64]) -> (f64, Vec<f64>, Vec<f64>) {
    let f = prior_value(u);
    (f, u.iter().map(|x| 2.0 * x - 1.0).collect(), u.iter().map(|x| 2.0 * x * (1.0 - x)).collect())
}

/// Levenberg–Marquardt from `u` in the logit coordinates v = logit(u), on the objective
/// F(v) = ½χ²(profile) − ln(prior density in v) — the prior term keeps modes at the prior's
/// edges finite and gives unconstrained directions the prior's width; the Laplace covariance is
/// the inverse of JᵀJ + the prior term's curvature at the end.
pub(super) fn levenberg_marquardt(lk: &ShapeLikelihood, u: Vec<f64>, evaluations: &mut usize) -> Option<Mode> {
    let d = u.len();
    let nb = lk.n_bands();
    let mut v = to_v(&u);
    let mut r = vec![0.0; nb];
    let objective = |v: &[f64], r: &mut [f64], ev: &mut usize| -> Option<f64> {
        let u = to_u(v);
        let chi2 = lk.residuals(&u, r)?;
        *ev += 1;
        Some(0.5 * chi2 + prior_value(&u))
    };
    let mut f = objective(&v, &mut r, evaluations)?;
    let mut lambda = 1e-3;
    let mut jac = vec![0.0; nb * d];
    let mut rp = vec![0.0; nb];
    let jacobian = |v: &[f64], r: &[f64], jac: &mut [f64], rp: &mut [f64], ev: &mut usize| -> Option<()> {
        for k in 0..d {
            let h = if v[k] < V_LIMIT - 1e-3 { 1e-4 } else { -1e-4 };
            let mut vp = v.to_vec();
            vp[k] += h;
            lk.residuals(&to_u(&vp), rp)?;
            *ev += 1;
            for b in 0..nb {
                jac[b * d + k] = (rp[b] - r[b]) / h;
            }
        }
        Some(())
    };
    let system = |v: &[f64], r: &[f64], jac: &[f64]| {
        let (mut a, mut g) = normal_equations(jac, r, nb, d);
        let (_, pg, pc) = prior_term(&to_u(v));
        for i in 0..d {
            g[i] += pg[i];
            a[i * d + i] += pc[i] + 1e-9;
        }
        (a, g)
    };
    for _ in 0..30 {
        jacobian(&v, &r, &mut jac, &mut rp, evaluations)?;
        let (a, g) = system(&v, &r, &jac);
        let mut improved = false;
        while lambda < 1e10 {
            let mut m = a.clone();
            for i in 0..d {
                m[i * d + i] += lambda * a[i * d + i];
            }
            let step = solve_spd(&m, &g.iter().map(|x| -x).collect::<Vec<_>>(), d)?;
            let vn: Vec<f64> = v.iter().zip(&step).map(|(x, s)| (x + s).clamp(-V_LIMIT, V_LIMIT)).collect();
            let Some(fn_) = objective(&vn, &mut rp, evaluations) else {
                lambda *= 4.0;
                continue;
            };
            if fn_ < f {
                let gain = f - fn_;
                v = vn;
                r.copy_from_slice(&rp);
                f = fn_;
                lambda = (lambda / 3.0).max(1e-7);
                improved = gain > 1e-3;
                break;
            }
            lambda *= 4.0;
        }
        if !improved {
            break;
        }
    }
    jacobian(&v, &r, &mut jac, &mut rp, evaluations)?;
    let (a, _) = system(&v, &r, &jac);
    let la = cholesky(&a, d)?;
    let sigma = inverse_from_cholesky(&la, d);
    let chol = cholesky(&sigma, d)?;
    let log_det = log_det_from_cholesky(&chol, d);
    let u = to_u(&v);
    let (l, _) = lk.eval(&u);
    *evaluations += 1;
    let log_target = l - prior_value(&u);
    log_target.is_finite().then_some(Mode { u: v, chol, log_weight: log_target + 0.5 * log_det, log_det })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_density_is_normalised_and_draws_match() {
        let chol = vec![0.1, 0.0, 0.05, 0.2];
        let m = Mode { u: vec![0.5, 0.5], log_det: 2.0 * (0.1f64.ln() + 0.2f64.ln()), chol, log_weight: 0.0 };
        // ∫ density over a fine grid = 1
        let n = 400;
        let mut s = 0.0;
        for i in 0..n {
            for j in 0..n {
                let x = [-0.5 + 2.0 * (i as f64 + 0.5) / n as f64, -0.5 + 2.0 * (j as f64 + 0.5) / n as f64];
                s += m.density(&x, 1.3) * (2.0 / n as f64).powi(2);
            }
        }
        assert!((s - 1.0).abs() < 1e-3, "{s}");
        // a draw at z has Mahalanobis distance |z|²
        let x = m.draw(&[1.0, -2.0], 1.0);
        assert!((m.distance2(&x) - 5.0).abs() < 1e-9);
    }
}
