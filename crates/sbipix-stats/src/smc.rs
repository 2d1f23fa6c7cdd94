//! A reference sampler for validating amortised posteriors: sequential Monte Carlo with adaptive
//! likelihood tempering (Del Moral, Doucet & Jasra 2006; the adaptive schedule of Jasra et al.
//! 2011) on the unit hypercube, where the prior is uniform.
//!
//! Particles start as prior draws; the likelihood is switched on in steps β₀ = 0 < β₁ < … = 1,
//! each chosen so that the effective sample size of the reweighted particles is a fixed fraction
//! of their number; after each step the particles are resampled (systematic) and moved by
//! random-walk Metropolis with the particles' own covariance, scaled to keep the acceptance
//! rate useful. Separated modes keep their correct weights through the reweighting, which is
//! why this is used rather than a single MCMC chain. The log-evidence comes for free.
//!
//! Written here rather than taken from a crate: no maintained Rust crate offers tempered SMC,
//! and the algorithm is short; it is checked against exact Gaussian and bimodal posteriors
//! (tests below). Used for the reference posteriors of `sbipix validate --reference` and as the
//! exact fallback of the production refinement (`--refine`); [`metropolis_sweeps`] also moves
//! the refinement's resampled importance sample.

use crate::importance::{effective_sample_size, systematic};
use crate::linalg::cholesky;
use crate::normal::std_normal;
use rand::{RngExt, SeedableRng};

/// The random generator handed to the start samplers of [`smc_from`].
pub type SmcRng = rand_pcg::Pcg64Mcg;

/// Settings of [`smc`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SmcSettings {
    /// Number of particles (= posterior samples returned).
    pub particles: usize,
    /// Target effective sample size after each reweighting, as a fraction of `particles`.
    pub ess_fraction: f64,
    /// Metropolis sweeps per tempering step: at least `min_sweeps`, then more until the particles
    /// have moved `target_moves` times on average, at most `max_sweeps`.
    pub min_sweeps: usize,
    /// The most Metropolis sweeps per tempering step (see `min_sweeps`).
    pub max_sweeps: usize,
    /// Moves per particle, on average, after which the sweeps of a step stop (see `min_sweeps`).
    pub target_moves: f64,
    /// Seed of the sampler's random stream: the same seed gives the same result.
    pub seed: u64,
    /// Whether to run the Metropolis moves when β reaches 1 in the first step (the start
    /// distribution was good enough for plain importance sampling): false saves their cost.
    pub move_when_one_step: bool,
}

impl Default for SmcSettings {
    fn default() -> Self {
        Self { particles: 1000, ess_fraction: 0.5, min_sweeps: 2, max_sweeps: 40, target_moves: 2.0, seed: 0, move_when_one_step: true }
    }
}

/// The result of [`smc`]: equally weighted posterior samples and what they cost.
#[derive(Debug, Clone)]
pub struct SmcResult<A> {
    /// [particles, d], points of the unit cube.
    pub samples: Vec<f64>,
    /// What the likelihood returned with each sample (`aux` of [`smc`]'s closure).
    pub aux: Vec<A>,
    /// ln ∫ L(u) du over the unit cube (for [`smc_from`]: ln ∫π relative to q's normalisation);
    /// −∞ when no start particle had a finite target (then `steps` is 0 and the samples are the
    /// start particles).
    pub log_evidence: f64,
    /// Tempering steps taken.
    pub steps: usize,
    /// Likelihood evaluations.
    pub evaluations: usize,
    /// Effective sample size of the start particles weighted by π/q (plain importance sampling).
    pub first_ess: f64,
}

/// Samples the posterior ∝ L(u) on [0, 1]^d. `log_like(u)` returns ln L(u) (−∞ allowed) and an
/// auxiliary value kept with the particle (e.g. quantities derived by the forward model).
/// Deterministic for a given seed.
pub fn smc<A: Clone + Default>(d: usize, settings: SmcSettings, log_like: &dyn Fn(&[f64]) -> (f64, A)) -> SmcResult<A> {
    let inside = |x: &[f64]| x.iter().all(|v| (0.0..=1.0).contains(v));
    smc_from(
        d,
        settings,
        &|rng: &mut rand_pcg::Pcg64Mcg| (0..d).map(|_| rng.random::<f64>()).collect(),
        &|x: &[f64]| if inside(x) { 0.0 } else { f64::NEG_INFINITY },
        &|x: &[f64]| if inside(x) { log_like(x) } else { (f64::NEG_INFINITY, A::default()) },
    )
}

/// Tempered SMC from a starting distribution q to a target π on ℝ^d: particles drawn by `init`
/// (density `log_q`, up to a constant) are moved through q^(1−β) π^β, β from 0 to 1.
/// `log_target` returns ln π (unnormalised; −∞ allowed) and an auxiliary value. With q close to
/// π this is importance sampling finished in one step; where q misses, the tempering and the
/// Metropolis moves carry the particles over. `log_evidence` is ln ∫π relative to q's
/// normalisation.
pub fn smc_from<A: Clone + Default>(
    d: usize,
    settings: SmcSettings,
    init: &dyn Fn(&mut rand_pcg::Pcg64Mcg) -> Vec<f64>,
    log_q: &dyn Fn(&[f64]) -> f64,
    log_target: &dyn Fn(&[f64]) -> (f64, A),
) -> SmcResult<A> {
    let n = settings.particles.max(2);
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(settings.seed ^ 0x5A17_C0DE);
    let mut x: Vec<f64> = Vec::with_capacity(n * d);
    let (mut lq, mut lt, mut aux) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let p = init(&mut rng);
        let (t, a) = log_target(&p);
        lq.push(log_q(&p));
        lt.push(t);
        aux.push(a);
        x.extend(p);
    }
    // the log-ratio the tempering switches on (−∞ where either density is 0 or undefined)
    let ratio = |t: f64, q: f64| if t.is_finite() && q.is_finite() { t - q } else { f64::NEG_INFINITY };
    let mut ll: Vec<f64> = lt.iter().zip(&lq).map(|(t, q)| ratio(*t, *q)).collect();
    let first_ess = {
        let m = ll.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        effective_sample_size(ll.iter().map(|v| if m.is_finite() { (v - m).exp() } else { 0.0 }))
    };
    let mut evaluations = n;
    let mut beta = 0.0;
    let mut log_z = 0.0;
    let mut steps = 0;
    let mut scale = 2.38 / (d as f64).sqrt();
    let target_ess = settings.ess_fraction.clamp(0.05, 0.99) * n as f64;
    if !ll.iter().any(|v| v.is_finite()) {
        // no start particle where the target is positive: nothing to temper towards
        return SmcResult { samples: x, aux, log_evidence: f64::NEG_INFINITY, steps: 0, evaluations, first_ess: 0.0 };
    }
    while beta < 1.0 {
        steps += 1;
        // The next β: the largest step whose weights keep ESS ≥ target (bisection).
        let ess = |delta: f64| -> f64 {
            let lw: Vec<f64> = ll.iter().map(|l| delta * l).collect();
            let m = lw.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            if !m.is_finite() {
                return 0.0;
            }
            effective_sample_size(lw.iter().map(|v| (v - m).exp()))
        };
        let room = 1.0 - beta;
        let delta = if ess(room) >= target_ess {
            room
        } else {
            let (mut lo, mut hi) = (0.0, room);
            for _ in 0..60 {
                let mid = 0.5 * (lo + hi);
                if ess(mid) >= target_ess { lo = mid } else { hi = mid }
            }
            lo.max(1e-12 * room.max(1e-300))
        };
        let new_beta = if room - delta < 1e-12 { 1.0 } else { beta + delta };
        let delta = new_beta - beta;
        // Reweight: evidence increment and normalised weights.
        let lw: Vec<f64> = ll.iter().map(|l| delta * l).collect();
        let m = lw.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = lw.iter().map(|v| if m.is_finite() { (v - m).exp() } else { 1.0 }).collect();
        let sw: f64 = w.iter().sum();
        log_z += m + (sw / n as f64).ln();
        beta = new_beta;
        // Systematic resampling.
        let idx = systematic(&w, sw, n, rng.random::<f64>());
        x = idx.iter().flat_map(|&i| x[i * d..(i + 1) * d].to_vec()).collect();
        ll = idx.iter().map(|&i| ll[i]).collect();
        lq = idx.iter().map(|&i| lq[i]).collect();
        aux = idx.iter().map(|&i| aux[i].clone()).collect();
        if steps == 1 && beta == 1.0 && !settings.move_when_one_step {
            break;
        }
        // Move: random-walk Metropolis targeting q^(1−β) π^β = q·(π/q)^β.
        let mut dens: Vec<f64> = lq.iter().zip(&ll).map(|(q, l)| q + beta * l).collect();
        let mut state: Vec<(f64, f64, A)> = (0..n).map(|i| (lq[i], ll[i], aux[i].clone())).collect();
        let density = |p: &[f64]| -> Option<(f64, (f64, f64, A))> {
            let qp = log_q(p);
            if qp == f64::NEG_INFINITY {
                return None;
            }
            let (tp, ap) = log_target(p);
            let lp = ratio(tp, qp);
            Some((if lp.is_finite() { qp + beta * lp } else { f64::NEG_INFINITY }, (qp, lp, ap)))
        };
        let moves = MoveSettings { min_sweeps: settings.min_sweeps, max_sweeps: settings.max_sweeps, target_moves: settings.target_moves };
        evaluations += metropolis_sweeps(&mut x, &mut dens, &mut state, d, moves, &mut scale, &mut rng, &density);
        for (i, (q, l, a)) in state.into_iter().enumerate() {
            lq[i] = q;
            ll[i] = l;
            aux[i] = a;
        }
    }
    SmcResult { samples: x, aux, log_evidence: log_z, steps, evaluations, first_ess }
}

/// A log density with the state kept at an accepted point (see [`metropolis_sweeps`]).
pub type Density<'a, S> = dyn Fn(&[f64]) -> Option<(f64, S)> + 'a;

/// How many random-walk Metropolis sweeps [`metropolis_sweeps`] makes: at least `min_sweeps`,
/// then more until the particles have moved `target_moves` times on average, at most
/// `max_sweeps`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MoveSettings {
    /// Sweeps made whatever the acceptance.
    pub min_sweeps: usize,
    /// The most sweeps made.
    pub max_sweeps: usize,
    /// Moves per particle, on average, after which no more sweeps are made.
    pub target_moves: f64,
}

/// Random-walk Metropolis sweeps over the particles `x` [n × d] (n = `dens.len()`), whose log
/// densities are `dens` and whose kept states are `state`: proposals N(0, scale² Σ), Σ the
/// particles' covariance; `scale` is adapted to keep the acceptance rate between 0.15 and 0.45.
/// `density(p)` returns the log density at p and the state to keep if p is accepted, or None
/// where the density is zero without evaluating anything. Returns how many densities it
/// evaluated.
#[allow(clippy::too_many_arguments)]
pub fn metropolis_sweeps<S>(
    x: &mut [f64],
    dens: &mut [f64],
    state: &mut [S],
    d: usize,
    moves: MoveSettings,
    scale: &mut f64,
    rng: &mut SmcRng,
    density: &Density<S>,
) -> usize {
    let n = dens.len();
    let cov = covariance(x, n, d);
    let chol = cholesky(&cov, d).unwrap_or_else(|| diagonal_factor(&cov, d));
    let (mut moved, mut sweeps, mut evaluations) = (0.0, 0, 0);
    let mut step = vec![0.0; d];
    let mut prop = vec![0.0; d];
    while sweeps < moves.max_sweeps && (sweeps < moves.min_sweeps || moved < moves.target_moves) {
        sweeps += 1;
        let mut accepted = 0usize;
        for i in 0..n {
            for s in step.iter_mut() {
                *s = *scale * std_normal(rng);
            }
            let xi = &x[i * d..(i + 1) * d];
            for a in 0..d {
                let mut v = xi[a];
                for b in 0..=a {
                    v += chol[a * d + b] * step[b];
                }
                prop[a] = v;
            }
            let u: f64 = rng.random();
            let Some((dp, sp)) = density(&prop) else { continue };
            evaluations += 1;
            let diff = dp - dens[i];
            if dp.is_finite() && (diff >= 0.0 || u.ln() < diff) {
                x[i * d..(i + 1) * d].copy_from_slice(&prop);
                dens[i] = dp;
                state[i] = sp;
                accepted += 1;
            }
        }
        let rate = accepted as f64 / n as f64;
        moved += rate;
        if rate < 0.15 {
            *scale *= 0.7;
        } else if rate > 0.45 {
            *scale = (*scale * 1.3).min(2.38);
        }
    }
    evaluations
}

/// Sample covariance of `n` points in `d` dimensions, with a small ridge so it stays invertible
/// when the particles collapse in a direction.
fn covariance(x: &[f64], n: usize, d: usize) -> Vec<f64> {
    let mean: Vec<f64> = (0..d).map(|a| (0..n).map(|i| x[i * d + a]).sum::<f64>() / n as f64).collect();
    let mut c = vec![0.0; d * d];
    for i in 0..n {
        for a in 0..d {
            for b in 0..=a {
                c[a * d + b] += (x[i * d + a] - mean[a]) * (x[i * d + b] - mean[b]);
            }
        }
    }
    for a in 0..d {
        for b in 0..=a {
            c[a * d + b] /= (n - 1).max(1) as f64;
            c[b * d + a] = c[a * d + b];
        }
        c[a * d + a] += 1e-12;
    }
    c
}

/// The factor of [`metropolis_sweeps`]' proposals where the particles' covariance `c` has no
/// Cholesky factor: the square roots of its diagonal (each at least 1e-6).
fn diagonal_factor(c: &[f64], d: usize) -> Vec<f64> {
    let mut diag = vec![0.0; d * d];
    (0..d).for_each(|k| diag[k * d + k] = c[k * d + k].max(1e-12).sqrt());
    diag
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_std(v: &[f64]) -> (f64, f64) {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        (m, (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt())
    }

    /// A narrow correlated Gaussian inside the cube: mean, widths, correlation and evidence exact.
    #[test]
    fn gaussian_posterior_and_evidence() {
        let (mu, s, rho) = ([0.3, 0.6, 0.5], [0.01, 0.02, 0.05], 0.8);
        let ll = |u: &[f64]| {
            // (u0, u1) correlated with ρ, u2 independent
            let (a, b) = ((u[0] - mu[0]) / s[0], (u[1] - mu[1]) / s[1]);
            let q = (a * a - 2.0 * rho * a * b + b * b) / (1.0 - rho * rho) + ((u[2] - mu[2]) / s[2]).powi(2);
            (-0.5 * q, ())
        };
        let r = smc(3, SmcSettings { particles: 2000, seed: 3, ..Default::default() }, &ll);
        // ∫ exp(−q/2) = (2π)^{3/2} s0 s1 s2 √(1−ρ²)
        let exact = 1.5 * (std::f64::consts::TAU).ln() + s.iter().map(|v: &f64| v.ln()).sum::<f64>() + 0.5 * (1.0 - rho * rho).ln();
        assert!((r.log_evidence - exact).abs() < 0.15, "ln Z {} vs {exact}", r.log_evidence);
        for a in 0..3 {
            let col: Vec<f64> = (0..2000).map(|i| r.samples[i * 3 + a]).collect();
            let (m, sd) = mean_std(&col);
            assert!((m - mu[a]).abs() < 0.1 * s[a], "mean {a}: {m}");
            assert!((sd / s[a] - 1.0).abs() < 0.08, "std {a}: {sd} vs {}", s[a]);
        }
        let (c0, c1): (Vec<f64>, Vec<f64>) =
            (0..2000).map(|i| ((r.samples[i * 3] - mu[0]) / s[0], (r.samples[i * 3 + 1] - mu[1]) / s[1])).unzip();
        let corr = c0.iter().zip(&c1).map(|(a, b)| a * b).sum::<f64>() / 2000.0 / (mean_std(&c0).1 * mean_std(&c1).1);
        assert!((corr - rho).abs() < 0.05, "correlation {corr}");
    }

    /// Two separated modes of unequal mass: the sampler must keep both with the right weights.
    #[test]
    fn bimodal_weights() {
        let s: f64 = 0.02;
        let ll = |u: &[f64]| {
            let q = |c: f64| -0.5 * (((u[0] - c) / s).powi(2) + ((u[1] - 0.5) / s).powi(2));
            let (a, b) = (q(0.25) + 0.3f64.ln(), q(0.75) + 0.7f64.ln());
            let m = a.max(b);
            (m + ((a - m).exp() + (b - m).exp()).ln(), ())
        };
        for seed in [1, 2] {
            let r = smc(2, SmcSettings { particles: 2000, seed, ..Default::default() }, &ll);
            let right = (0..2000).filter(|&i| r.samples[i * 2] > 0.5).count() as f64 / 2000.0;
            assert!((right - 0.7).abs() < 0.05, "seed {seed}: weight of the right mode {right}");
            let exact = (std::f64::consts::TAU * s * s).ln();
            assert!((r.log_evidence - exact).abs() < 0.15, "ln Z {} vs {exact}", r.log_evidence);
        }
    }

    /// A wrong sampler — one that ignores the likelihood — fails the same checks.
    #[test]
    fn the_checks_can_fail() {
        let r = smc(1, SmcSettings { particles: 1000, seed: 1, ..Default::default() }, &|_u: &[f64]| (0.0, ()));
        let (m, sd) = mean_std(&r.samples);
        // the prior: U(0, 1), std 0.289 — far from a N(0.3, 0.01) posterior
        assert!((m - 0.5).abs() < 0.05 && (sd - 0.2887).abs() < 0.02);
        assert!(r.log_evidence.abs() < 1e-9);
    }

    /// From a starting distribution that is off-centre and too narrow, the tempering still
    /// reaches the target (here N(0.3, 0.2²) × N(−1, 0.5²)).
    #[test]
    fn from_a_poor_start_distribution() {
        let (mu, sd) = ([0.3, -1.0], [0.2, 0.5]);
        let (q_mu, q_sd) = ([0.6, -0.2], [0.1, 0.2]);
        let init = |rng: &mut rand_pcg::Pcg64Mcg| (0..2).map(|k| q_mu[k] + q_sd[k] * std_normal(rng)).collect::<Vec<f64>>();
        let log_q = |x: &[f64]| (0..2).map(|k| -0.5 * ((x[k] - q_mu[k]) / q_sd[k]).powi(2) - q_sd[k].ln()).sum::<f64>();
        let log_t = |x: &[f64]| ((0..2).map(|k| -0.5 * ((x[k] - mu[k]) / sd[k]).powi(2)).sum::<f64>(), ());
        let r = smc_from(2, SmcSettings { particles: 2000, seed: 4, ..Default::default() }, &init, &log_q, &log_t);
        for k in 0..2 {
            let col: Vec<f64> = (0..2000).map(|i| r.samples[i * 2 + k]).collect();
            let (m, s) = mean_std(&col);
            assert!((m - mu[k]).abs() < 0.1 * sd[k], "mean {k}: {m}");
            assert!((s / sd[k] - 1.0).abs() < 0.08, "std {k}: {s}");
        }
        assert!(r.steps > 1);
    }

    #[test]
    fn deterministic_for_a_seed() {
        let ll = |u: &[f64]| (-0.5 * ((u[0] - 0.4) / 0.05).powi(2), u[0]);
        let a = smc(1, SmcSettings { particles: 300, seed: 9, ..Default::default() }, &ll);
        let b = smc(1, SmcSettings { particles: 300, seed: 9, ..Default::default() }, &ll);
        assert_eq!(a.samples, b.samples);
        assert_eq!(a.aux, a.samples);
    }
}
