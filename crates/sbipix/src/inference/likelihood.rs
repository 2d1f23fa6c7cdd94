//! Likelihood-based reference posteriors: the answer a classical SED fit with the same forward
//! model and prior gives, against which the neural posterior is judged.
//!
//! For a delayed-τ prior the posterior of one pixel is sampled with tempered sequential Monte
//! Carlo ([`sbipix_stats::smc`]) over the SFH shape, metallicity and dust (the prior's
//! varied parameters other than the mass and the given redshift), with a Gaussian likelihood in
//! flux: ln L = −½ Σ_b (f_b − M·g_b)² / σ_b² over the measured bands, g being the model's
//! photometry per M☉ formed. Every term of the forward model is proportional to the mass
//! formed M, so the mass is integrated out exactly (1-D quadrature of its uniform prior in
//! log M) and drawn afterwards from its conditional; the sampler works in four dimensions.
//!
//! The likelihood treats σ as known, as SED fitting does. The simulated σ also carries a little
//! information of its own (a Poisson term grows with the true flux), which a network can use
//! and this likelihood does not; at the survey's depths it is small (docs/validation.md).

use crate::{Error, Result};
use sbipix_sim::prior::{ParamPrior, Prior, SfhPrior};
use sbipix_sim::theta::{age_from_onset, floored_log_sfr};
use sbipix_sps::{CompileRange, CompiledPhotometry, GalaxyParams, SfhShape, SfhSpec, SpsModel, Workspace};
use std::cell::RefCell;

/// The prior parameters of the shape space (mass and redshift are handled apart), in the order
/// of its coordinates.
const SAMPLED: [&str; 6] = ["log_tau_gyr", "onset_fraction", "logzsol", "av_mag", "logu", "eta"];

/// What the likelihood keeps with a point of the shape space: the mass-marginal sums
/// A = Σg²/σ², B = Σfg/σ², C = Σf²/σ² (g the photometry per M☉ formed). The derived quantities
/// (living mass, SFRs, age) are computed only for the points drawn ([`ShapeLikelihood::theta_row`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct PerMass {
    a: f64,
    b: f64,
    c: f64,
}

/// The shape space of a delayed-τ prior: the unit cube of its varied parameters other than the
/// mass formed and the redshift (uniform priors, so the prior density is constant there), and
/// the parameters it holds fixed. One home for the map from a cube point to a galaxy, shared by
/// the likelihood and the photometric-redshift templates ([`super::photoz`]).
#[derive(Debug, Clone)]
pub struct ShapeSpace {
    /// (name, min, max) of the cube's coordinates
    sampled: Vec<(&'static str, f64, f64)>,
    fixed: Vec<(&'static str, f64)>,
}

impl ShapeSpace {
    /// The shape space of `prior` and its bounds on log M☉ formed (equal when fixed).
    pub fn of(prior: &Prior) -> Result<(Self, (f64, f64))> {
        if prior.sfh != SfhPrior::DelayedTau {
            return Err(Error::unsupported("likelihood-based posteriors for this SFH family", "implemented for the delayed-τ family only"));
        }
        let mass = match prior.get("log_mass_formed") {
            Some(ParamPrior::Uniform { min, max }) => (min, max),
            Some(ParamPrior::Fixed { value }) => (value, value),
            None => return Err(Error::unsupported("likelihood-based posteriors", "the prior has no log_mass_formed")),
        };
        let (mut sampled, mut fixed) = (Vec::new(), Vec::new());
        for &n in &SAMPLED {
            match prior.get(n) {
                Some(ParamPrior::Uniform { min, max }) => sampled.push((n, min, max)),
                Some(ParamPrior::Fixed { value }) => fixed.push((n, value)),
                None => {}
            }
        }
        Ok((Self { sampled, fixed }, mass))
    }

    /// Dimension of the cube.
    pub fn dim(&self) -> usize {
        self.sampled.len()
    }

    /// The value of prior parameter `name` at `u` (its fixed value if it is not sampled).
    pub fn value(&self, u: &[f64], name: &str) -> f64 {
        match self.sampled.iter().position(|s| s.0 == name) {
            Some(k) => self.sampled[k].1 + (self.sampled[k].2 - self.sampled[k].1) * u[k],
            None => self.fixed.iter().find(|f| f.0 == name).map_or(0.0, |f| f.1),
        }
    }

    /// The cube coordinate of value `v` of coordinate `k` (clamped inside the cube).
    pub fn coordinate(&self, k: usize, v: f64) -> f64 {
        let (_, lo, hi) = self.sampled[k];
        ((v - lo) / (hi - lo)).clamp(1e-6, 1.0 - 1e-6)
    }

    /// Names of the cube's coordinates.
    pub fn coordinate_names(&self) -> Vec<&'static str> {
        self.sampled.iter().map(|s| s.0).collect()
    }

    /// The galaxy of cube point `u` at `redshift` (the universe `t_univ_gyr` old then), with
    /// 1 M☉ formed.
    pub fn params_at(&self, u: &[f64], redshift: f64, t_univ_gyr: f64) -> GalaxyParams {
        GalaxyParams {
            redshift,
            sfh: SfhSpec::Parametric {
                shape: SfhShape::DelayedTau {
                    age_gyr: age_from_onset(self.value(u, "onset_fraction"), t_univ_gyr),
                    tau_gyr: 10f64.powf(self.value(u, "log_tau_gyr")),
                },
                log_mass_formed: 0.0,
            },
            logzsol: self.value(u, "logzsol"),
            av_mag: self.value(u, "av_mag"),
            logu: self.value(u, "logu"),
            eta: self.value(u, "eta"),
        }
    }
}

/// The likelihood of one pixel's photometry as a function of a point u of the shape space: the
/// unit cube of the prior's varied parameters other than mass and redshift (uniform priors, so
/// the prior density is constant there), the mass formed integrated out.
pub struct ShapeLikelihood<'a> {
    model: &'a SpsModel,
    /// The model's photometry compiled at the pixel's redshift (the likelihood's hot path).
    compiled: &'a CompiledPhotometry,
    space: ShapeSpace,
    mass: (f64, f64),
    redshift: f64,
    t_univ: f64,
    flux: Vec<f64>,
    /// 1/σ² of each band, 0 for bands left out
    inv_var: Vec<f64>,
    names: Vec<String>,
    ws: RefCell<(Workspace, Vec<f64>)>,
}

impl<'a> ShapeLikelihood<'a> {
    /// The likelihood of fluxes `flux` ± `sigma` (µJy, band by band as `model`'s bands) at
    /// `redshift` under a delayed-τ `prior`. `measured[b]` false (or a non-finite value, σ ≤ 0)
    /// leaves band b out. `sys_frac` > 0 adds that fraction of each measured flux to its σ in
    /// quadrature (a systematic floor). `compiled` is `model`'s photometry compiled at
    /// `redshift` for the prior's ranges ([`compile_for`]).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        model: &'a SpsModel,
        compiled: &'a CompiledPhotometry,
        prior: &Prior,
        flux: &[f64],
        sigma: &[f64],
        measured: &[bool],
        redshift: f64,
        sys_frac: f64,
    ) -> Result<Self> {
        let nb = model.n_bands();
        if flux.len() != nb || sigma.len() != nb || measured.len() != nb {
            return Err(Error::shape(
                "likelihood: flux, σ, measured",
                format!("{nb} bands each"),
                format!("{}, {}, {}", flux.len(), sigma.len(), measured.len()),
            ));
        }
        if compiled.redshift() != redshift || compiled.n_bands() != nb {
            return Err(Error::invalid("redshift", redshift, format!("the compiled photometry is for z = {}", compiled.redshift())));
        }
        if !(sys_frac.is_finite() && sys_frac >= 0.0) {
            return Err(Error::invalid("sys_err", sys_frac, "the systematic error fraction must be finite and ≥ 0"));
        }
        let (space, mass) = ShapeSpace::of(prior)?;
        let inv_var = (0..nb)
            .map(|b| {
                let ok = measured[b] && flux[b].is_finite() && sigma[b].is_finite() && sigma[b] > 0.0;
                if ok { 1.0 / (sigma[b] * sigma[b] + (sys_frac * flux[b]).powi(2)) } else { 0.0 }
            })
            .collect();
        let lk = Self {
            model,
            compiled,
            space,
            mass,
            redshift,
            t_univ: model.config().cosmology.age_gyr(redshift),
            flux: flux.iter().map(|v| if v.is_finite() { *v } else { 0.0 }).collect(),
            inv_var,
            names: prior.inferred_names(),
            ws: RefCell::new((Workspace::default(), vec![0.0; nb])),
        };
        // A point as in the simulator, to fail early on a bad redshift or prior.
        model.photometry(&lk.params_at(&vec![0.5; lk.dim()]))?;
        Ok(lk)
    }

    /// The same likelihood with the prior's upper bound on the mass formed raised by `dex`
    /// (integrated photometry of whole galaxies).
    pub fn with_mass_headroom(mut self, dex: f64) -> Self {
        if self.mass.1 > self.mass.0 {
            self.mass.1 += dex.max(0.0);
        }
        self
    }

    /// Bands of the model (residual vectors have one slot per band).
    pub fn n_bands(&self) -> usize {
        self.flux.len()
    }

    /// Dimension of the shape space.
    pub fn dim(&self) -> usize {
        self.space.dim()
    }

    /// The prior's [`Prior::inferred_names`]: the columns of [`Self::theta_row`].
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The value of prior parameter `name` at `u` (its fixed value if it is not sampled).
    pub fn value(&self, u: &[f64], name: &str) -> f64 {
        self.space.value(u, name)
    }

    /// The cube coordinate of value `v` of coordinate `k` (clamped inside the cube).
    pub fn coordinate(&self, k: usize, v: f64) -> f64 {
        self.space.coordinate(k, v)
    }

    /// Names of the cube's coordinates.
    pub fn coordinate_names(&self) -> Vec<&'static str> {
        self.space.coordinate_names()
    }

    /// The age of the universe at the pixel's redshift, Gyr.
    pub fn age_universe_gyr(&self) -> f64 {
        self.t_univ
    }

    fn params_at(&self, u: &[f64]) -> GalaxyParams {
        self.space.params_at(u, self.redshift, self.t_univ)
    }

    /// Photometry per M☉ formed into the workspace; the sums A = Σg²/σ², B = Σfg/σ², C = Σf²/σ².
    fn per_mass(&self, u: &[f64], g_out: Option<&mut [f64]>) -> Option<PerMass> {
        let mut guard = self.ws.borrow_mut();
        let (w, g) = &mut *guard;
        self.compiled.fluxes_into(self.model, &self.params_at(u), w, g).ok()?;
        let (mut a, mut b, mut c) = (0.0, 0.0, 0.0);
        for ((gk, fk), iv) in g.iter().zip(&self.flux).zip(&self.inv_var) {
            a += gk * gk * iv;
            b += fk * gk * iv;
            c += fk * fk * iv;
        }
        if let Some(out) = g_out {
            out.copy_from_slice(g);
        }
        Some(PerMass { a, b, c })
    }

    /// The derived quantities per M☉ formed at `u` (log M*, log SFR₁₀₀ and ₁₀, mass-weighted age).
    fn derived_at(&self, u: &[f64]) -> Option<sbipix_sps::Derived> {
        let mut guard = self.ws.borrow_mut();
        let (w, g) = &mut *guard;
        self.compiled.photometry_into(self.model, &self.params_at(u), w, g).ok()
    }

    /// ln p(f | u): the likelihood integrated over the mass's uniform prior in log M.
    pub fn eval(&self, u: &[f64]) -> (f64, PerMass) {
        match self.per_mass(u, None) {
            Some(pm) => {
                let (lo, hi) = self.mass;
                let norm = if hi > lo { -(hi - lo).ln() } else { 0.0 };
                (log_mass_marginal(pm.a, pm.b, pm.c, lo, hi) + norm, pm)
            }
            None => (f64::NEG_INFINITY, PerMass::default()),
        }
    }

    /// Normalised residuals (f − M̂ g)/σ of the measured bands at the best mass M̂ within the
    /// prior (the profile likelihood), written to `r` (one slot per band, 0 for bands left out);
    /// returns χ². For least-squares searches of the shape space.
    pub fn residuals(&self, u: &[f64], r: &mut [f64]) -> Option<f64> {
        let mut g = vec![0.0; self.flux.len()];
        let pm = self.per_mass(u, Some(&mut g))?;
        let (lo, hi) = self.mass;
        let m = if pm.a > 0.0 { (pm.b / pm.a).clamp(10f64.powf(lo), 10f64.powf(hi)) } else { 10f64.powf(lo) };
        let mut chi2 = 0.0;
        for k in 0..g.len() {
            r[k] = (self.flux[k] - m * g[k]) * self.inv_var[k].sqrt();
            chi2 += r[k] * r[k];
        }
        Some(chi2)
    }

    /// The θ row (columns [`Self::names`]) of shape point `u`, the mass drawn from its
    /// conditional with the uniform number `v` ∈ [0, 1).
    pub fn theta_row(&self, u: &[f64], pm: &PerMass, v: f64, out: &mut [f64]) {
        let (lo, hi) = self.mass;
        let m = if hi > lo { sample_log_mass(pm.a, pm.b, pm.c, lo, hi, v) } else { lo };
        let nan = f64::NAN;
        let d = self.derived_at(u);
        let (log_mstar, log_sfr_100, log_sfr_10, mwa) =
            d.map_or((nan, nan, nan, nan), |d| (d.log_mstar, d.log_sfr_100myr, d.log_sfr_10myr, d.mass_weighted_age_gyr));
        for (o, name) in out.iter_mut().zip(&self.names) {
            *o = match name.as_str() {
                "log_mstar" => m + log_mstar,
                "log_mass_formed" => m,
                "log_sfr_100myr" => floored_log_sfr(m + log_sfr_100, m),
                "log_sfr_10myr" => floored_log_sfr(m + log_sfr_10, m),
                "mass_weighted_age_gyr" => mwa,
                other => self.value(u, other),
            };
        }
    }
}

/// The photometry of `model` compiled at `redshift` for the ranges of `prior` (A_V, η, log U):
/// what [`ShapeLikelihood::new`] evaluates. ≈ 50 ms; build it once per redshift and share it.
pub fn compile_for(model: &SpsModel, prior: &Prior, redshift: f64) -> Result<CompiledPhotometry> {
    let range = |name: &str, default: (f64, f64)| match prior.get(name) {
        Some(ParamPrior::Uniform { min, max }) => (min, max),
        Some(ParamPrior::Fixed { value }) => (value, value),
        None => default,
    };
    let cr =
        CompileRange { av_max_mag: range("av_mag", (0.0, 0.0)).1, eta_max: range("eta", (1.0, 1.0)).1, logu: range("logu", (-2.0, -2.0)) };
    Ok(CompiledPhotometry::new(model, redshift, cr)?)
}

/// Where the mass integrand lives: see [`log_mass_marginal`].
enum MassWindow {
    /// A fixed mass: the log-likelihood there.
    Point(f64),
    /// No band constrains the mass: the log of the flat integral.
    Flat(f64),
    /// The Gaussian in M (best M̂, σ; χ² at M̂ `base`) matters on [p, q] within the prior.
    Window { mhat: f64, base: f64, sigma: f64, p: f64, q: f64 },
}

fn mass_window(a: f64, b: f64, c: f64, mlo: f64, mhi: f64) -> MassWindow {
    if mhi <= mlo {
        let mm = 10f64.powf(mlo);
        return MassWindow::Point(-0.5 * (c - 2.0 * b * mm + a * mm * mm));
    }
    if a <= 0.0 || !a.is_finite() {
        return MassWindow::Flat(-0.5 * c + (mhi - mlo).ln());
    }
    let (mhat, base) = (b / a, c - b * b / a);
    let sigma = 1.0 / a.sqrt();
    let (lo, hi) = (10f64.powf(mlo), 10f64.powf(mhi));
    let (mut p, mut q) = ((mhat - 7.5 * sigma).max(lo), (mhat + 7.5 * sigma).min(hi));
    if q <= lo {
        // the peak lies below the prior: its tail from the prior's floor
        p = lo;
        q = (lo + 40.0 / (a * (lo - mhat))).min(hi);
    } else if p >= hi {
        p = (hi - 40.0 / (a * (mhat - hi))).max(lo);
        q = hi;
    }
    MassWindow::Window { mhat, base, sigma, p, q }
}

/// The end of the sub-interval of the mass integral that starts at `start`: at most ×10 in M
/// and [`PIECE_SIGMAS`] σ wide.
fn piece_end(start: f64, sigma: f64, q: f64) -> f64 {
    (start * 10.0).min(start + PIECE_SIGMAS * sigma).min(q)
}

/// Gauss–Legendre nodes and weights of [`log_mass_marginal`].
fn mass_nodes() -> &'static (Vec<f64>, Vec<f64>) {
    static NODES: std::sync::OnceLock<(Vec<f64>, Vec<f64>)> = std::sync::OnceLock::new();
    NODES.get_or_init(|| sbipix_stats::gauss_legendre(MASS_NODES))
}

/// Nodes per sub-interval of [`log_mass_marginal`].
const MASS_NODES: usize = 16;
/// Widest sub-interval of [`log_mass_marginal`], in σ of the Gaussian.
const PIECE_SIGMAS: f64 = 5.0;
/// Most nodes of [`log_mass_marginal`] (the prior's 8 dex need ≤ 9 factors of 10).
const MAX_TERMS: usize = 40 * MASS_NODES;

/// ln ∫_{mlo}^{mhi} exp(−½ χ²(10^m)) dm with χ²(M) = C − 2BM + AM²: the likelihood integrated
/// over a uniform prior in log M (not normalised by its width), by Gauss–Legendre quadrature in
/// M = 10^m, where the integrand is a Gaussian times 1/(M ln 10).
///
/// The window is where the Gaussian is not negligible, M̂ ± 7.5σ (M̂ = B/A, σ = A^−½; e^−28 of
/// the peak outside) within the prior; a peak outside the prior is followed into its tail
/// (40 e-foldings). The window is cut into sub-intervals spanning at most a factor 10 in M (so
/// that 1/M stays smooth: 16 nodes then integrate it to ≈ 10⁻⁹), and wide ones into pieces of
/// at most 2.5σ (so that 16 nodes follow the Gaussian). A bright pixel costs 48 exponentials,
/// a faint one (the window reaching down to the prior's floor) ≈ 100 — against 560 powers of
/// the grid it replaces. Checked against brute-force quadrature in the tests.
pub(crate) fn log_mass_marginal(a: f64, b: f64, c: f64, mlo: f64, mhi: f64) -> f64 {
    let (mhat, base, sigma, p, q) = match mass_window(a, b, c, mlo, mhi) {
        MassWindow::Point(v) | MassWindow::Flat(v) => return v,
        MassWindow::Window { mhat, base, sigma, p, q } => (mhat, base, sigma, p, q),
    };
    // sub-interval ends: at most ×10 in M and PIECE_SIGMAS σ wide
    let (x, w) = mass_nodes();
    let (mut expo, mut fac) = ([0.0f64; MAX_TERMS], [0.0f64; MAX_TERMS]);
    let mut n = 0;
    let mut start = p;
    let mut top = f64::NEG_INFINITY;
    while start < q && n + MASS_NODES <= MAX_TERMS {
        let end = piece_end(start, sigma, q);
        let (mid, half) = (0.5 * (start + end), 0.5 * (end - start));
        for (xi, wi) in x.iter().zip(w) {
            let m = mid + half * xi;
            let e = -0.5 * a * (m - mhat) * (m - mhat);
            top = top.max(e);
            expo[n] = e;
            fac[n] = wi * half / m;
            n += 1;
        }
        start = end;
    }
    let sum: f64 = expo[..n].iter().zip(&fac[..n]).map(|(e, f)| f * (e - top).exp()).sum();
    top + sum.ln() - std::f64::consts::LN_10.ln() - 0.5 * base
}

/// A draw of log M from its conditional given the shape (A, B, C as in [`log_mass_marginal`]) with
/// the uniform number `u` ∈ [0, 1): the inverse of the integrand's cumulative integral on the
/// same window, 24 points per sub-interval (trapezoid rule, linear within a cell).
fn sample_log_mass(a: f64, b: f64, c: f64, mlo: f64, mhi: f64, u: f64) -> f64 {
    let (mhat, sigma, p, q) = match mass_window(a, b, c, mlo, mhi) {
        MassWindow::Point(_) => return mlo,
        MassWindow::Flat(_) => return mlo + u * (mhi - mlo),
        MassWindow::Window { mhat, sigma, p, q, .. } => (mhat, sigma, p, q),
    };
    const PER_PIECE: usize = 24;
    let (mut ms, mut es) = (Vec::with_capacity(8 * PER_PIECE), Vec::with_capacity(8 * PER_PIECE));
    let mut start = p;
    while start < q && ms.len() < MAX_TERMS * 2 {
        let end = piece_end(start, sigma, q);
        for k in 0..PER_PIECE {
            let m = start + (end - start) * k as f64 / PER_PIECE as f64;
            ms.push(m);
            // integrand in M of a uniform prior in log M: Gaussian × 1/M (the log, for now)
            es.push(-0.5 * a * (m - mhat) * (m - mhat) - m.ln());
        }
        start = end;
    }
    ms.push(q);
    es.push(-0.5 * a * (q - mhat) * (q - mhat) - q.ln());
    let top = es.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let f: Vec<f64> = es.iter().map(|e| (e - top).exp()).collect();
    let mut cum = vec![0.0; ms.len()];
    for k in 1..ms.len() {
        cum[k] = cum[k - 1] + 0.5 * (f[k] + f[k - 1]) * (ms[k] - ms[k - 1]);
    }
    let target = u * cum[ms.len() - 1];
    let k = cum.partition_point(|&v| v < target).clamp(1, ms.len() - 1);
    let span = cum[k] - cum[k - 1];
    let t = if span > 0.0 { ((target - cum[k - 1]) / span).clamp(0.0, 1.0) } else { 0.5 };
    (ms[k - 1] + t * (ms[k] - ms[k - 1])).log10().clamp(mlo, mhi)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ln ∫ exp(−½χ²(10^m)) dm by brute force on 2·10⁶ points.
    fn brute(a: f64, b: f64, c: f64, lo: f64, hi: f64) -> f64 {
        let n = 2_000_000;
        let (mhat, base) = (b / a, c - b * b / a);
        let f = |m: f64| {
            let mm = 10f64.powf(m);
            -0.5 * (a * (mm - mhat).powi(2) + base)
        };
        let vals: Vec<f64> = (0..=n).map(|k| f(lo + (hi - lo) * k as f64 / n as f64)).collect();
        let top = vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        // Simpson's rule
        let s: f64 = vals
            .iter()
            .enumerate()
            .map(|(k, v)| {
                (v - top).exp()
                    * if k == 0 || k == n {
                        1.0
                    } else if k % 2 == 1 {
                        4.0
                    } else {
                        2.0
                    }
            })
            .sum::<f64>()
            * (hi - lo)
            / (3.0 * n as f64);
        top + s.ln()
    }

    #[test]
    fn fast_mass_marginal_against_brute_force() {
        // The five cases above, and random pixels from S/N 0.3 to 3000 with best masses inside
        // the prior or, at low S/N, straddling its ends or below zero (the brute force resolves
        // peaks down to ≈ 4·10⁻⁵ dex, S/N ≈ 5000).
        let mut cases = vec![
            (1.0 / (1e5f64 * 1e5), 10f64.powf(8.3) / 1e10, 10f64.powf(16.6) / 1e10 + 19.0),
            (1.0 / 1e13, 1e6 / 1e13, 1e-1),
            (1e-12, -1e-6, 3.0),
            (1e-20, 1e-20 * 10f64.powf(12.5), 10f64.powf(25.0) * 1e-20),
            (1e-6, 1e-6 * 10f64.powf(2.5), 10f64.powf(5.0) * 1e-6 + 1.0),
        ];
        let mut g = sbipix_stats::SplitMix64::new(11);
        for _ in 0..60 {
            let log_m = 3.5 + 9.0 * g.next_f64();
            let snr = 10f64.powf(-0.5 + 4.0 * g.next_f64());
            let m = 10f64.powf(log_m);
            let a = (snr / m).powi(2);
            let mhat = m * (1.0 + (g.next_f64() - 0.5) * 4.0 / snr);
            let base = 10.0 * g.next_f64();
            cases.push((a, a * mhat, a * mhat * mhat + base));
        }
        let mut worst: f64 = 0.0;
        for (a, b, c) in cases {
            let ours = log_mass_marginal(a, b, c, 4.0, 12.0);
            let exact = brute(a, b, c, 4.0, 12.0);
            worst = worst.max((ours - exact).abs());
            assert!((ours - exact).abs() < 1e-4, "A={a} B={b} C={c}: {ours} vs {exact}");
        }
        eprintln!("worst |Δ ln| = {worst:.2e}");
    }

    #[test]
    fn mass_draws_follow_the_conditional() {
        // A Gaussian likelihood in M with a narrow peak: draws of log M centre on log10(B/A).
        let (a, b) = (1.0 / (1e7f64 * 1e7), 1e9 / (1e7f64 * 1e7));
        let c = b * b / a;
        let draws: Vec<f64> = (0..2000).map(|k| sample_log_mass(a, b, c, 4.0, 12.0, (k as f64 + 0.5) / 2000.0)).collect();
        let mean = draws.iter().sum::<f64>() / 2000.0;
        let sd = (draws.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / 2000.0).sqrt();
        // σ_M / M = 1e-2 → σ(log M) = 0.00434
        assert!((mean - 9.0).abs() < 2e-4, "{mean}");
        assert!((sd / 0.004343 - 1.0).abs() < 0.03, "{sd}");
        // A faint pixel (σ_M = 3 M̂: the prior's floor in reach) and one whose best mass lies
        // below zero: the mean and spread of the draws against brute-force moments in log M.
        for (a, b, c) in [(1.0 / 1e13, 1e6 / 1e13, 0.1), (1e-12, -1e-6, 3.0)] {
            let n = 400_000;
            let (mut s0, mut s1, mut s2) = (0.0, 0.0, 0.0);
            for k in 0..n {
                let m = 4.0 + 8.0 * (k as f64 + 0.5) / n as f64;
                let mm = 10f64.powf(m);
                let h = (-0.5 * (c - 2.0 * b * mm + a * mm * mm)).exp();
                s0 += h;
                s1 += h * m;
                s2 += h * m * m;
            }
            let (mean_b, sd_b) = (s1 / s0, (s2 / s0 - (s1 / s0).powi(2)).sqrt());
            let draws: Vec<f64> = (0..4000).map(|k| sample_log_mass(a, b, c, 4.0, 12.0, (k as f64 + 0.5) / 4000.0)).collect();
            let mean = draws.iter().sum::<f64>() / 4000.0;
            let sd = (draws.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / 4000.0).sqrt();
            assert!((mean - mean_b).abs() < 0.01 && (sd / sd_b - 1.0).abs() < 0.02, "A={a}: mean {mean} vs {mean_b}, sd {sd} vs {sd_b}");
        }
    }
}
