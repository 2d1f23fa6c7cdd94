//! Likelihood refinement of neural posteriors: the network's draws locate the posterior, the
//! forward model's likelihood then gives it exactly.
//!
//! Why: on bright pixels the posterior allowed by the photometry is up to tens of times
//! narrower than the network resolves (measured against the SMC reference posteriors of
//! `sbipix validate --reference`: log M* to 0.017 dex against the network's 0.34,
//! docs/validation.md). A classical fit started where the network points is cheap, and
//! importance sampling makes its answer exact in the limit:
//!
//! 1. up to 128 network draws are mapped into the shape space of [`ShapeLikelihood`] (the
//!    delayed-τ history from the mass-weighted age and sSFR by [`DelayedTauInverse`], a
//!    dense_basis one from its drawn sSFR and t_x; metallicity and dust as drawn); a Gaussian
//!    fitted to them is the "cloud";
//! 2. from the best-fitting of them and from others spread over the rest, Levenberg–Marquardt
//!    on the normalised residuals (the mass at its best value for each shape; logit
//!    coordinates, the prior's density included) finds the modes; JᵀJ at each gives a Laplace
//!    covariance;
//! 3. adaptive multiple importance sampling (AMIS) from a mixture of the modes (each at 1.2 and
//!    2.5 times its Laplace width, weighted by its Laplace evidence), the cloud and 2 % of the
//!    prior itself, against the exact likelihood with the mass integrated out: while the
//!    effective sample size of all draws so far is below 500, a Gaussian fitted to the weighted
//!    draws joins the mixture and more are drawn (up to 8 rounds of 384); then the sample is
//!    resampled and moved by Metropolis sweeps on the posterior (1–4, until each point has moved
//!    about once); if AMIS never gets there (≈ 10 % of real JADES pixels, more of the prior's
//!    bright simulated ones: curved, multi-modal posteriors), the exact tempered SMC from the
//!    prior ([`sbipix_stats::smc`], as the reference posteriors, ≥ 768 particles) gives the draws.
//!
//! The draws are resampled to the number asked for, each with its mass drawn from the
//! conditional. The constants (ESS 500, the sweeps, 768 SMC particles) were chosen on
//! held-out simulations (`sbipix validate --n 1500 --seed 7 --refine`, 1061 cases with S/N > 5):
//! with ESS 300, 1–5 sweeps and 384 SMC particles the refinement cost 13 800 likelihood
//! evaluations per pixel but its 95 % intervals held the truth in only 0.908–0.928 of the cases
//! (too few distinct points in the tails); with these, 33 000 evaluations (≈ 0.8 s per pixel
//! on 2 cores) and 0.926–0.931, 68 % coverage 0.645–0.668 (docs/validation.md). Later, for
//! speed: the sweeps from 2–8 (always 8 on real pixels) to 1–4 — seed 7: 68 % 0.643–0.674, 95 %
//! 0.926–0.933 (unchanged); 6 400 evaluations per JADES pixel instead of 8 200. Rejected: 16
//! AMIS rounds instead of 8 (the SMC fallback, 10 % of JADES pixels at 22 500 evaluations each,
//! fell to 0.7 %, 5 000 evaluations per pixel) — on seed 271828 its 95 % coverage fell from
//! 0.924–0.938 to 0.909–0.940 (the importance weights of a long AMIS run understate the tails;
//! longer sweeps after it did not help); and the SMC fallback tempered from the last AMIS
//! proposal instead of the prior (more evaluations, not fewer).

use super::laplace::{Mode, V_LIMIT, gaussian_fit, levenberg_marquardt, prior_term_at_v, prior_value, to_u, to_v, weighted_gaussian};
use crate::inference::likelihood::PerMass;
use crate::inference::likelihood::{ShapeLikelihood, compile_for, compile_shared};
use crate::{Error, Result};
use rand::RngExt;
use sbipix_sim::Prior;
use sbipix_sim::theta::{Parameter, delayed_tau_age_gyr, delayed_tau_coordinate};
use sbipix_sps::DelayedTauInverse;
use sbipix_sps::{CompiledPhotometry, SpsModel};
use sbipix_stats::smc::{MoveSettings, SmcRng, SmcSettings, metropolis_sweeps, smc};
use sbipix_stats::{effective_sample_size, std_normal, systematic};

/// Settings of [`refine`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RefineSettings {
    /// Mode searches (Levenberg–Marquardt), half started from the best-fitting of up to 128
    /// network draws, half from draws spread over the rest.
    pub starts: usize,
    /// Importance-sampling draws per round (and the SMC particles, if more than 768, when
    /// tempering is needed).
    pub proposals: usize,
    /// Systematic error: this fraction of each measured flux added to its σ in quadrature.
    pub sys_frac: f64,
    /// The photometry is a whole galaxy's (integrated): the prior's upper bound on the mass
    /// formed is raised by [`INTEGRATED_MASS_HEADROOM_DEX`].
    #[serde(default)]
    pub integrated: bool,
}

/// How much higher the mass prior reaches for integrated photometry than for one pixel: the
/// per-pixel prior (SBIPIX: log M formed ≤ 12) would cut off a galaxy of many bright pixels,
/// and the mass, integrated out analytically, costs nothing to let the data decide. Measured:
/// catalogue galaxies of 300 simulated pixels each (log M formed up to 14.5) had 0.455
/// coverage of their 68 % intervals with the pixel prior.
pub const INTEGRATED_MASS_HEADROOM_DEX: f64 = 3.0;

/// The network draws [`refine`] reads: the first this many of each object's (they are
/// independent draws, so the first ones are as good as any). Callers that refine need the
/// network to draw only these — and all of them for the objects that [`RefineOutcome::refined`]
/// says kept the network's posterior. (Until 2026-12-03 every third of 500 draws was read, 167:
/// the same cloud, the network sampled 500 times per pixel for it.)
pub const NETWORK_DRAWS: usize = 128;

impl Default for RefineSettings {
    fn default() -> Self {
        Self { starts: 8, proposals: 384, sys_frac: 0.0, integrated: false }
    }
}

impl RefineSettings {
    /// The default settings with systematic error `sys` (a fraction of the flux, in [0, 1));
    /// `option` names where the value came from in the error message (`--sys-err`, `sys_err`).
    pub fn with_sys_err(sys: f64, option: &str) -> Result<Self> {
        if !(sys.is_finite() && (0.0..1.0).contains(&sys)) {
            return Err(Error::invalid(option, sys, "must lie in [0, 1) (a fraction of the flux)"));
        }
        Ok(Self { sys_frac: sys, ..Self::default() })
    }
}

/// The outcome of refining one pixel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefineOutcome {
    /// True when the draws are the refined posterior's; false when the network's were kept.
    pub refined: bool,
    /// Effective sample size of plain importance sampling from the Laplace mixture (0 when no
    /// mode was found): near the particle count the mixture was already the posterior.
    pub ess: f64,
    /// Importance-sampling rounds used (see [`refine`]).
    pub rounds: usize,
    /// True when importance sampling did not converge and the exact tempered SMC from the prior
    /// gave the draws.
    pub exact_smc: bool,
    /// Likelihood evaluations spent.
    pub evaluations: usize,
    /// Distinct points of the shape space among the draws (each draw's mass is drawn apart).
    pub distinct: usize,
}

/// How many different points `points` holds.
fn distinct_points<'a>(points: impl Iterator<Item = &'a [f64]>) -> usize {
    let mut keys: Vec<Vec<u64>> = points.map(|u| u.iter().map(|x| x.to_bits()).collect()).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.len()
}

/// Posterior draws of the model's parameters `names` ([n × names], replaced in place) for one
/// pixel whose network draws they are. `inv` and `compiled` must be the history table (delayed-τ
/// priors; None for dense_basis) and the compiled photometry
/// ([`crate::inference::likelihood::compile_for`]) at the pixel's redshift.
#[allow(clippy::too_many_arguments)]
pub fn refine(
    model: &SpsModel,
    compiled: &CompiledPhotometry,
    prior: &Prior,
    inv: Option<&DelayedTauInverse>,
    flux: &[f64],
    sigma: &[f64],
    measured: &[bool],
    redshift: f64,
    names: &[String],
    draws: &mut [f32],
    settings: RefineSettings,
    seed: u64,
) -> Result<RefineOutcome> {
    let p = names.len();
    if p == 0 || !draws.len().is_multiple_of(p) {
        return Err(Error::shape("refine: network draws", format!("a multiple of {p} parameters"), draws.len()));
    }
    let n = draws.len() / p;
    let headroom = if settings.integrated { INTEGRATED_MASS_HEADROOM_DEX } else { 0.0 };
    let lk = ShapeLikelihood::new(model, compiled, prior, flux, sigma, measured, redshift, settings.sys_frac)?.with_mass_headroom(headroom);
    let cols: Vec<usize> = names
        .iter()
        .map(|nm| {
            lk.names()
                .iter()
                .position(|x| x == nm)
                .ok_or_else(|| Error::unsupported(format!("refining `{nm}`"), "the prior has no such parameter"))
        })
        .collect::<Result<_>>()?;
    let d = lk.dim();
    let mut rng = sbipix_sim::simulate::sample_rng(seed, sbipix_sim::streams::REFINE_SAMPLING);
    let mut evaluations = 0usize;
    let kept = RefineOutcome { refined: false, ess: 0.0, rounds: 0, exact_smc: false, evaluations: 0, distinct: 0 };
    // 1.–2. the network's posterior in the shape space, and the modes near it
    let Some((cloud, starts)) = network_cloud(&lk, inv, names, draws, settings, &mut evaluations) else { return Ok(kept) };
    let Some(comps) = initial_mixture(&lk, cloud, starts, &mut evaluations) else { return Ok(RefineOutcome { evaluations, ..kept }) };
    // 3. importance sampling
    let np = settings.proposals.max(16);
    let (chosen, ess, rounds) = amis(&lk, comps, np, &mut rng, &mut evaluations);
    let mut exact = false;
    // At least as many particles as draws asked for, so that every draw is a point of its own
    // (with 384 particles, 500 draws held ≤ 384 distinct points and the 95 % intervals
    // under-covered: 0.927–0.935 on 3591 simulated cases).
    let particles = np.max(n);
    let (us, pms, w) = match chosen {
        Some(sample) => rejuvenate(&lk, sample, particles, &mut rng, &mut evaluations),
        None => {
            // the exact sampler from the prior (as the reference posteriors)
            let smc_settings = SmcSettings { particles: particles.max(SMC_PARTICLES), seed: rng.random(), ..SmcSettings::default() };
            let r = smc(d, smc_settings, &|u: &[f64]| lk.eval(u));
            evaluations += r.evaluations;
            if r.steps == 0 || !r.log_evidence.is_finite() {
                return Ok(RefineOutcome { refined: false, ess, rounds, exact_smc: true, evaluations, distinct: 0 });
            }
            exact = true;
            let m = smc_settings.particles;
            let us = (0..m).map(|i| r.samples[i * d..(i + 1) * d].to_vec()).collect();
            (us, r.aux, vec![1.0; m])
        }
    };
    // n draws by systematic resampling; each draw's mass from its own conditional.
    let total: f64 = w.iter().sum();
    let mut row = vec![0.0; lk.names().len()];
    let idx = systematic(&w, total, n, rng.random::<f64>());
    for (k, &j) in idx.iter().enumerate() {
        lk.theta_row(&us[j], &pms[j], rng.random::<f64>(), &mut row);
        for (c, &src) in cols.iter().enumerate() {
            draws[k * p + c] = row[src] as f32;
        }
    }
    let distinct = distinct_points(idx.iter().map(|&j| us[j].as_slice()));
    Ok(RefineOutcome { refined: true, ess, rounds, exact_smc: exact, evaluations, distinct })
}

/// Step 1 of [`refine`]: the network's posterior in the shape space — up to [`NETWORK_DRAWS`] draws mapped
/// there (the history from the mass-weighted age and sSFR), a Gaussian fitted to them in logit
/// coordinates (a start distribution that covers whatever the network's posterior covers) — and
/// the starting points of the mode searches: half the best-fitting of them (profile χ²), half
/// spread over the cloud (the basin of a narrow global mode need not hold the draws that fit best
/// on average). None when no draw maps to the shape space.
fn network_cloud(
    lk: &ShapeLikelihood,
    inv: Option<&DelayedTauInverse>,
    names: &[String],
    draws: &[f32],
    settings: RefineSettings,
    evaluations: &mut usize,
) -> Option<(Option<Mode>, Vec<Vec<f64>>)> {
    let (p, d) = (names.len(), lk.dim());
    let n = (draws.len() / p).min(NETWORK_DRAWS);
    let col = |nm: &str| names.iter().position(|x| x == nm);
    let mut live_guess = -0.2;
    let mut cloud_u: Vec<Vec<f64>> = Vec::new();
    for k in 0..n {
        let row = &draws[k * p..(k + 1) * p];
        let get = |nm: &str| col(nm).map(|c| row[c] as f64);
        if let Some(u) = start_point(lk, inv, &get, &mut live_guess) {
            cloud_u.push(u);
        }
    }
    if cloud_u.is_empty() {
        return None;
    }
    let cloud = gaussian_fit(&cloud_u.iter().map(|u| to_v(u)).collect::<Vec<_>>(), d);
    let mut r0 = vec![0.0; lk.n_bands()];
    let mut ranked: Vec<(f64, usize)> = cloud_u
        .iter()
        .enumerate()
        .map(|(i, u)| {
            *evaluations += 1;
            (lk.residuals(u, &mut r0).unwrap_or(f64::INFINITY), i)
        })
        .collect();
    ranked.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n_best = settings.starts.div_ceil(2).max(1);
    let mut picks: Vec<usize> = ranked.iter().take(n_best).filter(|r| r.0.is_finite()).map(|r| r.1).collect();
    let n_spread = settings.starts.saturating_sub(picks.len());
    for k in 0..n_spread {
        let (chi2, i) = ranked[(n_best + k * (ranked.len().saturating_sub(n_best)) / n_spread.max(1)).min(ranked.len() - 1)];
        if chi2.is_finite() && !picks.contains(&i) {
            picks.push(i);
        }
    }
    Some((cloud, picks.iter().map(|&i| cloud_u[i].clone()).collect()))
}

/// Step 2 of [`refine`]: modes by Levenberg–Marquardt from `starts`, with their Laplace
/// covariances, weighted by their evidence, and the network's cloud taking [`CLOUD`] of the
/// mixture (all of it when no search converged). None when there is neither.
fn initial_mixture(lk: &ShapeLikelihood, cloud: Option<Mode>, starts: Vec<Vec<f64>>, evaluations: &mut usize) -> Option<Vec<(Mode, f64)>> {
    let mut modes: Vec<Mode> = Vec::new();
    for s in starts {
        let Some(m) = levenberg_marquardt(lk, s, evaluations) else { continue };
        // the same mode found twice: keep the better end
        if let Some(j) = modes.iter().position(|o| o.distance2(&m.u) < 4.0 || m.distance2(&o.u) < 4.0) {
            if m.log_weight > modes[j].log_weight {
                modes[j] = m;
            }
        } else {
            modes.push(m);
        }
    }
    let top = modes.iter().map(|m| m.log_weight).fold(f64::NEG_INFINITY, f64::max);
    let mut weights: Vec<f64> = modes.iter().map(|m| (m.log_weight - top).exp()).collect();
    let total: f64 = weights.iter().sum();
    weights.iter_mut().for_each(|w| *w /= total);
    let cloud_weight = match (&cloud, modes.is_empty()) {
        (None, true) => return None,
        (None, false) => 0.0,
        (Some(_), true) => 1.0,
        (Some(_), false) => CLOUD,
    };
    weights.iter_mut().for_each(|w| *w *= 1.0 - cloud_weight);
    if let Some(c) = cloud {
        modes.push(c);
        weights.push(cloud_weight);
    }
    Some(modes.into_iter().zip(weights).collect())
}

/// Step 3 of [`refine`]: adaptive multiple importance sampling (AMIS, Cornuet et al. 2012) in
/// logit coordinates, target L(u)·Π u(1−u): draw `np` from the mixture; while the effective
/// sample size of all draws so far is below [`TARGET_ESS`], a Gaussian fitted to the weighted
/// draws joins the mixture and more are drawn; every draw is weighted against the pooled proposal
/// of all rounds (the balance heuristic), so the effective size grows round by round. Returns the
/// accepted sample (None short of it after [`ROUNDS`]: the exact tempered SMC takes over), the
/// last effective sample size and the rounds used.
fn amis(
    lk: &ShapeLikelihood,
    mut comps: Vec<(Mode, f64)>,
    np: usize,
    rng: &mut SmcRng,
    evaluations: &mut usize,
) -> (Option<Sample>, f64, usize) {
    let d = lk.dim();
    let mut rounds = 0;
    let mut ess = 0.0;
    let (mut pool_v, mut pool_pm, mut pool_t): (Vec<Vec<f64>>, Vec<PerMass>, Vec<f64>) = (Vec::new(), Vec::new(), Vec::new());
    // Round r's proposal is the defensive prior plus (1 − DEFENCE) × a Gaussian mixture M_r whose
    // components are the first round's, their weights shrunk by (1 − ADAPT) each round, and one
    // fitted Gaussian added per round with weight ADAPT: M_r = (1 − ADAPT) M_{r−1} + ADAPT φ_r.
    // Per pooled point we keep M of the latest round, the prior's density and ln Σ_r q_r (the
    // balance heuristic's sum), so a round costs one new component per pooled point instead of
    // every round's whole mixture (which grew as rounds³ and cost more than the SMC fallback it
    // spares once rounds went past 8).
    let first = comps.clone();
    let mut added: Vec<Mode> = Vec::new();
    let (mut pool_m, mut pool_prior, mut pool_lse): (Vec<f64>, Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new(), Vec::new());
    let ln_q = |m: f64, prior: f64| (DEFENCE * prior + (1.0 - DEFENCE) * m).ln();
    while rounds < ROUNDS {
        rounds += 1;
        let (vs, pms, ts) = importance_draws(lk, &comps, np, rng, evaluations);
        // the pooled points under this round's proposal (the newest component is `added.last()`)
        if let Some(new) = added.last() {
            for ((v, m), (prior, lse)) in pool_v.iter().zip(pool_m.iter_mut()).zip(pool_prior.iter().zip(pool_lse.iter_mut())) {
                *m = (1.0 - ADAPT) * *m + ADAPT * component_density(new, v);
                *lse = log_add_exp(*lse, ln_q(*m, *prior));
            }
        }
        // this round's points under every round's proposal
        for v in &vs {
            let prior = (-prior_term_at_v(v)).exp();
            let mut m: f64 = first.iter().map(|(c, w)| w * component_density(c, v)).sum();
            let mut lse = ln_q(m, prior);
            for c in &added {
                m = (1.0 - ADAPT) * m + ADAPT * component_density(c, v);
                lse = log_add_exp(lse, ln_q(m, prior));
            }
            pool_m.push(m);
            pool_prior.push(prior);
            pool_lse.push(lse);
        }
        pool_v.extend(vs);
        pool_pm.extend(pms);
        pool_t.extend(ts);
        if pool_v.is_empty() {
            break;
        }
        // balance heuristic: each round drew np, so the pooled density is the mean of the rounds'
        let lr = (rounds as f64).ln();
        let lw: Vec<f64> = pool_lse.iter().zip(&pool_t).map(|(lse, t)| t - (lse - lr)).collect();
        let top = lw.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = lw.iter().map(|v| (v - top).exp()).collect();
        ess = effective_sample_size(w.iter().copied());
        if ess >= TARGET_ESS {
            return (Some((pool_v, pool_pm, w, pool_t)), ess, rounds);
        }
        let Some(fit) = weighted_gaussian(&pool_v, &w, d) else { break };
        comps.iter_mut().for_each(|c| c.1 *= 1.0 - ADAPT);
        comps.push((fit.clone(), ADAPT));
        added.push(fit);
    }
    (None, ess, rounds)
}

/// ln(eᵃ + eᵇ).
fn log_add_exp(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    if m == f64::NEG_INFINITY { m } else { m + ((a - m).exp() + (b - m).exp()).ln() }
}

/// The density of one mixture component at `v`: the Gaussian at its two widths ([`SCALES`]).
fn component_density(m: &Mode, v: &[f64]) -> f64 {
    let q2 = m.distance2(v);
    SCALES.iter().map(|&(s, ws)| ws * m.density_at_distance2(q2, s)).sum()
}

/// Resample the accepted importance sample to `np` points, then move: Metropolis sweeps on the
/// target fill in what the weights describe with few distinct points (the tails of skewed
/// posteriors). Returns the points (unit-cube coordinates), their likelihood sums and equal weights.
fn rejuvenate(
    lk: &ShapeLikelihood,
    (vs, pms, w, ts): Sample,
    np: usize,
    rng: &mut SmcRng,
    evaluations: &mut usize,
) -> (Vec<Vec<f64>>, Vec<PerMass>, Vec<f64>) {
    let d = lk.dim();
    let idx = systematic(&w, w.iter().sum(), np, rng.random::<f64>());
    let mut x: Vec<f64> = idx.iter().flat_map(|&i| vs[i].iter().copied()).collect();
    let mut dens: Vec<f64> = idx.iter().map(|&i| ts[i]).collect();
    let mut state: Vec<PerMass> = idx.iter().map(|&i| pms[i]).collect();
    let mut scale = 2.38 / (d as f64).sqrt();
    let density = |v: &[f64]| -> Option<(f64, PerMass)> {
        if v.iter().any(|x| x.abs() > V_LIMIT) {
            return None;
        }
        let u = to_u(v);
        let (l, pm) = lk.eval(&u);
        Some((l - prior_value(&u), pm))
    };
    *evaluations += metropolis_sweeps(&mut x, &mut dens, &mut state, d, REJUVENATION, &mut scale, rng, &density);
    ((0..np).map(|i| to_u(&x[i * d..(i + 1) * d])).collect::<Vec<_>>(), state, vec![1.0; np])
}

/// Points (logit coordinates), their likelihood sums, weights and log target densities.
type Sample = (Vec<Vec<f64>>, Vec<PerMass>, Vec<f64>, Vec<f64>);

/// Metropolis sweeps after the importance sample is resampled.
const REJUVENATION: MoveSettings = MoveSettings { min_sweeps: 1, max_sweeps: 4, target_moves: 1.0 };

/// Importance-sampling rounds (of `proposals` draws each) before the exact SMC takes over.
const ROUNDS: usize = 8;
/// The pooled importance sample is accepted at this effective size.
const TARGET_ESS: f64 = 500.0;
/// Fewest particles of the exact SMC fallback (384 under-covered the 95 % intervals).
const SMC_PARTICLES: usize = 768;
/// Share of the mixture given to the Gaussian fitted in each adaptive round.
const ADAPT: f64 = 0.7;
/// Share of the prior itself (uniform u, logistic v) in every proposal: keeps the weights bounded.
const DEFENCE: f64 = 0.02;
/// Each component is drawn at these widths (× its covariance) with these probabilities.
const SCALES: [(f64, f64); 2] = [(1.2, 0.7), (2.5, 0.3)];

/// `np` draws from the mixture `comps` (+ the defensive prior) in logit coordinates: the points,
/// their likelihood sums and their log target densities (draws outside the prior dropped).
fn importance_draws(
    lk: &ShapeLikelihood,
    comps: &[(Mode, f64)],
    np: usize,
    rng: &mut SmcRng,
    evaluations: &mut usize,
) -> (Vec<Vec<f64>>, Vec<PerMass>, Vec<f64>) {
    let d = lk.dim();
    let (mut vs, mut pms, mut ts) = (Vec::with_capacity(np), Vec::with_capacity(np), Vec::with_capacity(np));
    for _ in 0..np {
        let v: Vec<f64> = if rng.random::<f64>() < DEFENCE {
            to_v(&(0..d).map(|_| rng.random::<f64>()).collect::<Vec<_>>())
        } else {
            let mut r = rng.random::<f64>();
            let k = comps.iter().position(|c| {
                r -= c.1;
                r < 0.0
            });
            let m = &comps[k.unwrap_or(comps.len() - 1)].0;
            let s = if rng.random::<f64>() < SCALES[0].1 { SCALES[0].0 } else { SCALES[1].0 };
            let z: Vec<f64> = (0..d).map(|_| std_normal(rng)).collect();
            m.draw(&z, s)
        };
        if v.iter().any(|x| x.abs() > V_LIMIT) {
            continue;
        }
        let u = to_u(&v);
        let (l, pm) = lk.eval(&u);
        *evaluations += 1;
        if !l.is_finite() {
            continue;
        }
        ts.push(l - prior_value(&u));
        vs.push(v);
        pms.push(pm);
    }
    (vs, pms, ts)
}

/// Share of the start distribution given to the network's cloud (see [`refine`]).
const CLOUD: f64 = 0.3;

/// Gauss–Newton steps from the nearest tabulated history when a network draw is mapped to a
/// start point ([`DelayedTauInverse::near`]): the full search (`solve`, ≈ 50 µs) for 128 draws
/// was 7.5 of the ≈ 55 ms a real JADES pixel cost on one core.
const START_STEPS: usize = 1;

/// A network draw (physical quantities, through `get`) as a point of the shape space: a
/// dense_basis draw directly ([`crate::inference::likelihood::ShapeSpace::dense_basis_point`]), a
/// delayed-τ one through the history table `inv`.
fn start_point(
    lk: &ShapeLikelihood,
    inv: Option<&DelayedTauInverse>,
    get: &dyn Fn(&str) -> Option<f64>,
    live_guess: &mut f64,
) -> Option<Vec<f64>> {
    if let Some(u) = lk.space().dense_basis_point(get, *live_guess) {
        return Some(u);
    }
    let inv = inv?;
    let names = lk.coordinate_names();
    let mut u = vec![0.5; names.len()];
    // The history: from the mass-weighted age and the sSFR per formed mass (M* / M_formed is
    // guessed, then taken from the network's previous start; a start needs no precision).
    let (age, tau) = match (get("mass_weighted_age_gyr"), get("log_sfr_100myr"), get("log_mstar")) {
        (Some(mwa), Some(ls), Some(lm)) => inv.near(mwa, ls - lm + *live_guess, START_STEPS)?,
        _ => {
            // the history's own parameters, in whichever age coordinate the network infers
            let age = [Parameter::OnsetFraction, Parameter::LogAgeFraction].into_iter().find_map(|c| get(c.static_name()).map(|v| (c, v)));
            match (get("log_tau_gyr"), age) {
                (Some(lt), Some((c, v))) => (delayed_tau_age_gyr(c, v, lk.age_universe_gyr()), 10f64.powf(lt)),
                _ => (0.5 * lk.age_universe_gyr(), 1.0),
            }
        }
    };
    *live_guess = live_guess.clamp(-0.5, 0.0);
    for (k, nm) in names.iter().enumerate() {
        let v = match *nm {
            "log_tau_gyr" => Some(tau.log10()),
            "onset_fraction" | "log_age_fraction" => {
                Parameter::from_name(nm).map(|c| delayed_tau_coordinate(c, age, lk.age_universe_gyr()))
            }
            other => get(other),
        };
        if let Some(v) = v.filter(|v| v.is_finite()) {
            u[k] = lk.coordinate(k, v);
        }
    }
    Some(u)
}

/// [`refine`] for many pixels in parallel: `draws` [pixels × n × names] are replaced in place
/// where the refinement succeeds. One history table per distinct redshift. `progress` is called
/// with the number of pixels done.
#[allow(clippy::too_many_arguments)]
pub fn refine_all(
    model: &SpsModel,
    prior: &Prior,
    flux: &[f64],
    sigma: &[f64],
    measured: &[bool],
    redshift: &[f64],
    names: &[String],
    draws: &mut [f32],
    settings: RefineSettings,
    seed: u64,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Vec<RefineOutcome>> {
    use rayon::prelude::*;
    let (pixels, nb, p) = (redshift.len(), model.n_bands(), names.len());
    if flux.len() != pixels * nb
        || sigma.len() != pixels * nb
        || measured.len() != pixels * nb
        || pixels == 0
        || !draws.len().is_multiple_of(pixels * p.max(1))
    {
        return Err(Error::shape(
            "refine: flux, σ, measured, draws",
            format!("{pixels} pixels × {nb} bands each, and draws a multiple of {pixels} pixels × {p} parameters"),
            format!("{}, {}, {}, {}", flux.len(), sigma.len(), measured.len(), draws.len()),
        ));
    }
    let per = draws.len() / pixels;
    let log_tau = match prior.get("log_tau_gyr") {
        Some(sbipix_sim::prior::ParamPrior::Uniform { min, max }) => (min, max),
        Some(sbipix_sim::prior::ParamPrior::Fixed { value }) => (value - 1e-3, value + 1e-3),
        None => (-2.0, 2.0),
    };
    let cosmo = model.config().cosmology;
    let mut zs: Vec<f64> = redshift.iter().copied().filter(|z| z.is_finite() && *z >= 0.0).collect();
    zs.sort_by(|a, b| a.total_cmp(b));
    zs.dedup();
    // Per distinct redshift the history table, and the compiled photometry where pixels share
    // it (a map); a redshift of its own compiles it for its pixel only (compile_shared).
    let delayed_tau = prior.sfh == sbipix_sim::SfhPrior::DelayedTau;
    let tables: std::collections::HashMap<u64, DelayedTauInverse> = zs
        .par_iter()
        .filter(|_| delayed_tau)
        .map(|&z| (z.to_bits(), DelayedTauInverse::new(cosmo.age_gyr(z), log_tau, sbipix_sim::theta::LOG_SSFR_FLOOR)))
        .collect();
    let shared = compile_shared(model, prior, redshift)?;
    let done = std::sync::atomic::AtomicUsize::new(0);
    draws
        .par_chunks_mut(per)
        .enumerate()
        .map(|(i, dr)| {
            let z = redshift[i];
            let inv = tables.get(&z.to_bits());
            if !(z.is_finite() && z >= 0.0) || (delayed_tau && inv.is_none()) {
                return Ok(RefineOutcome { refined: false, ess: 0.0, rounds: 0, exact_smc: false, evaluations: 0, distinct: 0 });
            }
            let own;
            let compiled = match shared.get(&z.to_bits()) {
                Some(c) => c,
                None => {
                    own = compile_for(model, prior, z)?;
                    &own
                }
            };
            let r = refine(
                model,
                compiled,
                prior,
                inv,
                &flux[i * nb..(i + 1) * nb],
                &sigma[i * nb..(i + 1) * nb],
                &measured[i * nb..(i + 1) * nb],
                z,
                names,
                dr,
                settings,
                sbipix_stats::index_seed(seed, i as u64),
            );
            progress(done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1);
            r
        })
        .collect()
}

/// The parameters of the posteriors: the network's, then the physical ones ([`Parameter::VARIED`]:
/// Z, A_V, log U, η) that the exact posterior's prior (`exact`, when refining) frees beyond them —
/// log U with `free_logu` — whose network draws [`widen_draws`] leaves NaN for the likelihood to
/// fill. Derived quantities and history parameters the network does not infer are not added: the
/// outputs of a default run keep the network's columns.
///
/// [`Parameter::VARIED`]: sbipix_sim::theta::Parameter::VARIED
pub fn exact_parameter_names(post: &crate::inference::model::Posterior, exact: Option<&sbipix_sim::Prior>) -> Vec<String> {
    let mut names = post.parameter_names();
    if let Some(prior) = exact {
        let extra: Vec<String> = sbipix_sim::theta::Parameter::VARIED
            .iter()
            .map(|p| p.name())
            .filter(|n| prior.get(n).is_some_and(|q| !q.is_fixed()) && !names.contains(n))
            .collect();
        names.extend(extra);
    }
    names
}

/// Network draws [objects × `from` parameters] widened to `to` parameters per draw, the new
/// columns NaN: parameters the network does not infer (its prior fixed them) but the exact
/// posterior's prior frees (log U with `free_logu`). [`refine`] fills them; an object it cannot
/// refine keeps NaN there (the network knows nothing of them), flagged as unrefined.
pub fn widen_draws(draws: Vec<f32>, from: usize, to: usize) -> Vec<f32> {
    if to <= from || from == 0 {
        return draws;
    }
    let mut out = Vec::with_capacity(draws.len() / from * to);
    for row in draws.chunks_exact(from) {
        out.extend_from_slice(row);
        out.extend(std::iter::repeat_n(f32::NAN, to - from));
    }
    out
}

/// What a refinement of many pixels did.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RefineSummary {
    pub settings: RefineSettings,
    pub pixels: usize,
    /// Fraction of pixels whose draws are the refined posterior's (the rest kept the network's).
    pub refined_fraction: f64,
    /// Median effective sample size of the last importance-sampling round (of the proposals).
    pub median_ess: f64,
    /// Fraction of pixels where importance sampling did not converge and the exact SMC ran.
    #[serde(default)]
    pub exact_smc_fraction: f64,
    pub evaluations_per_pixel: f64,
    /// Median number of distinct points among a refined pixel's draws.
    #[serde(default)]
    pub median_distinct: f64,
    pub seconds: f64,
}

impl RefineSummary {
    pub fn of(outcomes: &[RefineOutcome], settings: RefineSettings, seconds: f64) -> Self {
        let n = outcomes.len().max(1) as f64;
        let ess: Vec<f64> = outcomes.iter().filter(|o| o.refined).map(|o| o.ess).collect();
        Self {
            settings,
            pixels: outcomes.len(),
            refined_fraction: ess.len() as f64 / n,
            median_ess: if ess.is_empty() { 0.0 } else { sbipix_stats::median(&ess) },
            exact_smc_fraction: outcomes.iter().filter(|o| o.exact_smc).count() as f64 / n,
            evaluations_per_pixel: outcomes.iter().map(|o| o.evaluations as f64).sum::<f64>() / n,
            median_distinct: {
                let d: Vec<f64> = outcomes.iter().filter(|o| o.refined).map(|o| o.distinct as f64).collect();
                if d.is_empty() { 0.0 } else { sbipix_stats::median(&d) }
            },
            seconds,
        }
    }
}
