//! Photometric redshifts: p(z | photometry) of a galaxy's integrated light, with the exact
//! likelihood of the forward model on a grid of redshifts.
//!
//! At each node z_i of a grid uniform in ln(1+z) the model's photometry is compiled
//! ([`compile_for`]) and evaluated for the same N quasi-random points u of the prior's shape
//! space (Halton points of the unit cube of SFH shape, metallicity and dust; per M☉ formed).
//! The evidence of node i is the prior average of the likelihood,
//!
//! ```text
//! p(f | z_i) = 1/N Σ_u  1/(m_hi − m_lo) ∫ L(f | M, u, z_i) dlog M
//! ```
//!
//! the mass integrated out exactly as in [`super::likelihood`] (Gauss–Legendre in M, or its
//! closed form when the mass is measured to better than 10 %). The same points at every node
//! (common random numbers) make p(z) smooth in z: the templates change continuously with z (the
//! onset of star formation is a fraction of the age of the universe at z). p(z_i) ∝ p(f | z_i) ×
//! the redshift prior × the node's width.
//!
//! Why a grid and not a sampler: the likelihood over z is cheap once the templates are built (two
//! sums over the bands per template and node), the grid finds every mode — the classic confusion
//! of a low-z dusty or Balmer-break galaxy with a high-z Lyman break shows as a second peak rather
//! than being missed — and a catalogue shares the templates.
//!
//! The redshift prior ([`RedshiftPrior`]): flat in z by default. We do not suppress the low-z /
//! high-z confusion with a prior (a magnitude prior such as Benítez 2000's is calibrated on
//! pre-JWST fields and would push real z ≈ 6 galaxies to low z); we report it: the odds of the
//! main peak, the second peak and its probability, and a flag when the main peak holds less than
//! [`MULTIMODAL_ODDS`]. `volume` (dV_c/dz, a non-evolving population) is the alternative.

use super::likelihood::{ShapeSpace, compile_for, log_mass_marginal};
use crate::{Error, Result};
use rayon::prelude::*;
use sbipix_sim::Prior;
use sbipix_sps::{SpsModel, Workspace};
use serde::{Deserialize, Serialize};

/// Prior on the redshift of [`RedshiftTemplates`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedshiftPrior {
    /// Uniform in z over the grid (the default; see the module's notes).
    #[default]
    Flat,
    /// ∝ dV_c/dz: galaxies of a non-evolving population, uniformly in comoving volume.
    Volume,
}

impl RedshiftPrior {
    /// `flat` or `volume`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "flat" => Ok(Self::Flat),
            "volume" => Ok(Self::Volume),
            _ => Err(Error::invalid("z_prior", s, "expected `flat` or `volume`")),
        }
    }

    fn density(self, cosmology: &sbipix_sps::Cosmology, z: f64) -> f64 {
        match self {
            Self::Flat => 1.0,
            Self::Volume => cosmology.comoving_volume_element_mpc3_per_sr(z),
        }
    }
}

/// Below this probability in the main peak (±[`PEAK_HALF_WIDTH`] (1+z) around the mode) a
/// redshift is flagged `multimodal`.
pub const MULTIMODAL_ODDS: f64 = 0.7;
/// Half-width of the main peak, in units of 1+z (the odds of BPZ, Benítez 2000, with K = 0.1).
pub const PEAK_HALF_WIDTH: f64 = 0.1;
/// Fewer measured bands than this: flagged `few_bands` (a break and a colour need at least 4).
pub const MIN_BANDS: usize = 4;

/// How p(z) is computed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PhotoZSettings {
    /// Lowest node of the grid.
    pub z_min: f64,
    /// Highest node; None: the network's trained range (every product downstream samples
    /// parameters with its draws as the proposal).
    pub z_max: Option<f64>,
    /// Grid step in ln(1+z): 0.01 = 1 % in 1+z, a third of the σ_NMAD targeted by JWST photo-z
    /// codes, so the grid does not limit the answer.
    pub step: f64,
    /// Shape-space points (templates) per node. 2048 Halton points of the 4-D delayed-τ cube
    /// (the prior's τ, onset, metallicity, A_V): within 0.02 in 1+z of 4096 on the PRISM set
    /// (docs/photo-z.md).
    pub templates: usize,
    pub prior: RedshiftPrior,
    /// Redshift draws per galaxy for the parameters' posteriors (each its own exact fit), at the
    /// quantiles (k + ½)/K of p(z): stratified, so 4 already follow p(z)'s width.
    pub z_draws: usize,
}

impl Default for PhotoZSettings {
    fn default() -> Self {
        Self { z_min: 0.01, z_max: None, step: 0.01, templates: 2048, prior: RedshiftPrior::Flat, z_draws: 4 }
    }
}

impl PhotoZSettings {
    /// Refuses bad numbers, naming them.
    pub fn validate(&self) -> Result<()> {
        if !(self.z_min.is_finite() && self.z_min >= 0.0) {
            return Err(Error::invalid("z_min", self.z_min, "must be a finite redshift ≥ 0"));
        }
        if let Some(z) = self.z_max
            && !(z.is_finite() && z > self.z_min)
        {
            return Err(Error::invalid("z_max", z, format!("must be a finite redshift above z_min = {}", self.z_min)));
        }
        if !(self.step.is_finite() && self.step > 0.0 && self.step <= 0.2) {
            return Err(Error::invalid("z_step", self.step, "the grid step in ln(1+z) must lie in (0, 0.2]"));
        }
        crate::request::at_least("templates", self.templates, 16, "shape-space points per redshift node")?;
        crate::request::at_least("z_draws", self.z_draws, 1, "redshift draws per galaxy")?;
        Ok(())
    }
}

/// The model's photometry per M☉ formed at every node of a redshift grid, for the same
/// shape-space points: what [`RedshiftTemplates::posterior`] evaluates. Build once per catalogue.
pub struct RedshiftTemplates {
    z: Vec<f64>,
    /// ln(prior density × cell width in z) per node, normalised over the grid.
    ln_prior: Vec<f64>,
    n_bands: usize,
    n_templates: usize,
    /// `[node][band][template]`: photometry per M☉ formed divided by `scale[node]`.
    g: Vec<f32>,
    scale: Vec<f64>,
    /// Bounds of the uniform prior on log M☉ formed, per node (one width).
    mass: Vec<(f64, f64)>,
}

impl RedshiftTemplates {
    /// Compiles `model` at every node of the grid of `settings` (up to `z_max`) and evaluates
    /// its templates: ≈ 0.1 s per node and core. `mass_headroom_dex` raises the prior's upper
    /// bound on the mass formed (whole galaxies: [`super::refine::INTEGRATED_MASS_HEADROOM_DEX`]).
    /// `progress(done, total)` counts nodes.
    pub fn build(
        model: &SpsModel,
        prior: &Prior,
        settings: &PhotoZSettings,
        z_max: f64,
        mass_headroom_dex: f64,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<Self> {
        settings.validate()?;
        let model_zmax = model.config().max_redshift;
        if !(z_max.is_finite() && z_max > settings.z_min && z_max <= model_zmax) {
            return Err(Error::invalid(
                "z_max",
                z_max,
                format!(
                    "the redshift grid must end above z_min = {} and within the forward model's range (≤ {model_zmax})",
                    settings.z_min
                ),
            ));
        }
        // A prior on the mass per kpc² (`pixel_scale_arcsec`) is resolved at each node: the same
        // shape space, a mass window moved by the pixel's area there (of one width, so the nodes'
        // mass priors have one density).
        let cosmology = model.config().cosmology;
        let (space, _) = ShapeSpace::of(&prior.at_redshift(settings.z_min.max(1e-3), &cosmology))?;
        if !space.is_delayed_tau() {
            // dense_basis' mass bounds move with each template's sSFR; the templates here share one
            return Err(Error::unsupported(
                "photometric redshifts with a dense_basis model",
                "implemented for delayed-τ models; give the redshift (--redshift, a redshift column) or use a delayed-τ model",
            ));
        }
        let d = space.dim();
        if d > sbipix_stats::HALTON_MAX_DIM {
            return Err(Error::unsupported("photometric redshifts", format!("a shape space of {d} dimensions")));
        }
        let nt = settings.templates;
        // Halton points from index 64 on (the first ones line up along the cube's diagonal).
        let points: Vec<Vec<f64>> = (0..nt)
            .map(|i| {
                let mut p = vec![0.0; d];
                sbipix_stats::halton(64 + i as u64, &mut p);
                p
            })
            .collect();
        let (a, b) = ((1.0 + settings.z_min).ln(), (1.0 + z_max).ln());
        let n_nodes = ((b - a) / settings.step).round().max(1.0) as usize + 1;
        let z: Vec<f64> = (0..n_nodes).map(|i| (a + (b - a) * i as f64 / (n_nodes - 1) as f64).exp() - 1.0).collect();
        let headroom = mass_headroom_dex.max(0.0);
        let mass = z
            .iter()
            .map(|&zi| {
                let (_, (lo, hi)) = ShapeSpace::of(&prior.at_redshift(zi.max(1e-3), &cosmology))?;
                Ok((lo, hi + headroom))
            })
            .collect::<Result<Vec<_>>>()?;
        let nb = model.n_bands();
        let done = std::sync::atomic::AtomicUsize::new(0);
        let nodes: Vec<(Vec<f32>, f64)> = z
            .par_iter()
            .map(|&zi| -> Result<(Vec<f32>, f64)> {
                let compiled = compile_for(model, prior, zi)?;
                let t_univ = cosmology.age_gyr(zi);
                let (mut ws, mut g) = (Workspace::default(), vec![0.0; nb]);
                let mut raw = vec![0.0f64; nb * nt];
                for (t, u) in points.iter().enumerate() {
                    compiled.fluxes_into(model, &space.params_at(u, zi, t_univ), &mut ws, &mut g)?;
                    for (bi, gv) in g.iter().enumerate() {
                        raw[bi * nt + t] = *gv;
                    }
                }
                let scale = raw.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                let scale = if scale > 0.0 && scale.is_finite() { scale } else { 1.0 };
                let k = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                progress(k, n_nodes);
                Ok((raw.iter().map(|v| (v / scale) as f32).collect(), scale))
            })
            .collect::<Result<_>>()?;
        let mut g = Vec::with_capacity(n_nodes * nb * nt);
        let mut scale = Vec::with_capacity(n_nodes);
        for (gi, s) in nodes {
            g.extend_from_slice(&gi);
            scale.push(s);
        }
        let widths = cell_widths(&z);
        let mut ln_prior: Vec<f64> =
            z.iter().zip(&widths).map(|(&zi, w)| (settings.prior.density(&cosmology, zi).max(1e-300) * w).ln()).collect();
        let top = ln_prior.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let norm = top + ln_prior.iter().map(|v| (v - top).exp()).sum::<f64>().ln();
        ln_prior.iter_mut().for_each(|v| *v -= norm);
        Ok(Self { z, ln_prior, n_bands: nb, n_templates: nt, g, scale, mass })
    }

    /// [`Self::build`], or the templates built last with the same model (the same `Arc`), prior
    /// and settings: the galaxies of a survey share one set (≈ 15 s to build on 2 cores).
    pub fn shared(
        model: &std::sync::Arc<SpsModel>,
        prior: &Prior,
        settings: &PhotoZSettings,
        z_max: f64,
        mass_headroom_dex: f64,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<std::sync::Arc<Self>> {
        type Cache = std::sync::Mutex<Option<(String, std::sync::Arc<RedshiftTemplates>)>>;
        static LAST: Cache = std::sync::Mutex::new(None);
        let key = format!("{:p} {prior:?} {settings:?} {z_max} {mass_headroom_dex}", std::sync::Arc::as_ptr(model));
        // held while building: a second galaxy waits for the first one's templates
        let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((k, t)) = last.as_ref()
            && *k == key
        {
            return Ok(t.clone());
        }
        let t = std::sync::Arc::new(Self::build(model, prior, settings, z_max, mass_headroom_dex, progress)?);
        *last = Some((key, t.clone()));
        Ok(t)
    }

    /// The grid's nodes.
    pub fn redshifts(&self) -> &[f64] {
        &self.z
    }

    /// p(z | flux ± σ) over the grid. `measured[b]` false (or a non-finite flux, σ ≤ 0) leaves
    /// band b out; `sys_frac` adds that fraction of each flux to σ in quadrature (as the exact
    /// posteriors do). An error only for inputs of the wrong length or no usable band at all.
    pub fn posterior(&self, flux: &[f64], sigma: &[f64], measured: &[bool], sys_frac: f64) -> Result<RedshiftPosterior> {
        let nb = self.n_bands;
        if flux.len() != nb || sigma.len() != nb || measured.len() != nb {
            return Err(Error::shape(
                "photo-z: flux, σ, measured",
                format!("{nb} bands each"),
                format!("{}, {}, {}", flux.len(), sigma.len(), measured.len()),
            ));
        }
        let mut w = vec![0.0; nb];
        let mut f = vec![0.0; nb];
        let (mut n_meas, mut detected) = (0, false);
        for b in 0..nb {
            if measured[b] && flux[b].is_finite() && sigma[b].is_finite() && sigma[b] > 0.0 {
                w[b] = 1.0 / (sigma[b] * sigma[b] + (sys_frac * flux[b]).powi(2));
                f[b] = flux[b];
                n_meas += 1;
                detected |= flux[b] > sigma[b];
            }
        }
        if n_meas == 0 {
            return Err(Error::invalid("photometry", "(no band)", "no band with a finite flux and a positive error"));
        }
        let c: f64 = (0..nb).map(|b| w[b] * f[b] * f[b]).sum();
        let (nt, nz) = (self.n_templates, self.z.len());
        // Pass 1: per template and node the sums A, B and an upper bound on the mass integral,
        // −½ min χ² over the prior + ln(m_hi − m_lo).
        let mut ab = vec![(0.0f64, 0.0f64); nz * nt];
        let mut bound = vec![f64::NEG_INFINITY; nz * nt];
        let mut best_chi2 = f64::INFINITY;
        let (mut sa, mut sb) = (vec![0.0f64; nt], vec![0.0f64; nt]);
        for i in 0..nz {
            sa.iter_mut().for_each(|v| *v = 0.0);
            sb.iter_mut().for_each(|v| *v = 0.0);
            for b in (0..nb).filter(|&b| w[b] > 0.0) {
                let row = &self.g[(i * nb + b) * nt..(i * nb + b + 1) * nt];
                let (wb, wfb) = (w[b], w[b] * f[b]);
                for ((a, bb), &h) in sa.iter_mut().zip(sb.iter_mut()).zip(row) {
                    let h = h as f64;
                    *a += wb * h * h;
                    *bb += wfb * h;
                }
            }
            let s = self.scale[i];
            let (mlo, mhi) = self.mass[i];
            let (m_floor, m_ceil, ln_range) = (10f64.powf(mlo), 10f64.powf(mhi), (mhi - mlo).ln());
            for t in 0..nt {
                let (a, b) = (sa[t] * s * s, sb[t] * s);
                ab[i * nt + t] = (a, b);
                let m = if a > 0.0 { (b / a).clamp(m_floor, m_ceil) } else { m_floor };
                let chi2 = (c - 2.0 * b * m + a * m * m).max(0.0);
                best_chi2 = best_chi2.min(chi2);
                bound[i * nt + t] = -0.5 * chi2 + ln_range;
            }
        }
        // Pass 2: the exact mass integral where the bound comes within e^−50 of the best bound
        // (the best point's integral is within ≈ 12 of its bound, so what is skipped weighs
        // < e^−38 per point).
        let cut = bound.iter().cloned().fold(f64::NEG_INFINITY, f64::max) - 50.0;
        let mut ln_like = vec![f64::NEG_INFINITY; nz];
        let mut terms = Vec::with_capacity(nt);
        for i in 0..nz {
            terms.clear();
            let (mlo, mhi) = self.mass[i];
            for t in 0..nt {
                if bound[i * nt + t] < cut {
                    continue;
                }
                let (a, b) = ab[i * nt + t];
                terms.push(mass_integral(a, b, c, mlo, mhi));
            }
            if !terms.is_empty() {
                ln_like[i] = log_sum_exp(&terms) - (nt as f64).ln() - (mhi - mlo).ln();
            }
        }
        let ln_post: Vec<f64> = ln_like.iter().zip(&self.ln_prior).map(|(l, p)| l + p).collect();
        let top = ln_post.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let mut prob: Vec<f64> = ln_post.iter().map(|v| (v - top).exp()).collect();
        let total: f64 = prob.iter().sum();
        prob.iter_mut().for_each(|p| *p /= total);
        let mut pz = RedshiftPosterior::from_grid(self.z.clone(), prob);
        pz.n_bands = n_meas;
        pz.chi2_min = best_chi2;
        pz.detected = detected;
        pz.set_flags();
        Ok(pz)
    }
}

/// ln ∫ exp(−½ χ²(10^m)) dm over [mlo, mhi] (χ² = C − 2BM + AM²): the closed form of the
/// Gaussian in M times 1/(M ln 10) when the mass is measured to better than 10 % and the peak
/// lies well inside the prior (relative error ≈ 3 (σ/M̂)⁴ ≤ 3·10⁻⁴), else
/// [`log_mass_marginal`]'s quadrature.
fn mass_integral(a: f64, b: f64, c: f64, mlo: f64, mhi: f64) -> f64 {
    if a > 0.0 && b > 0.0 {
        let (mhat, sigma) = (b / a, 1.0 / a.sqrt());
        let rel = sigma / mhat;
        if rel <= 0.1 && (mhat - 8.0 * sigma).log10() > mlo && (mhat + 8.0 * sigma).log10() < mhi {
            let base = c - b * b / a;
            return -0.5 * base + 0.5 * (2.0 * std::f64::consts::PI / a).ln() - mhat.ln() - std::f64::consts::LN_10.ln()
                + (rel * rel).ln_1p();
        }
    }
    log_mass_marginal(a, b, c, mlo, mhi)
}

fn log_sum_exp(v: &[f64]) -> f64 {
    let top = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if top == f64::NEG_INFINITY {
        return top;
    }
    top + v.iter().map(|x| (x - top).exp()).sum::<f64>().ln()
}

/// Widths in z of the cells around the nodes (edges half-way between nodes; the end cells stop
/// at the end nodes).
fn cell_widths(z: &[f64]) -> Vec<f64> {
    let n = z.len();
    if n == 1 {
        return vec![1.0];
    }
    (0..n)
        .map(|i| {
            let lo = if i == 0 { z[0] } else { 0.5 * (z[i - 1] + z[i]) };
            let hi = if i + 1 == n { z[n - 1] } else { 0.5 * (z[i] + z[i + 1]) };
            hi - lo
        })
        .collect()
}

/// A galaxy's redshift posterior on a grid, with its summaries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedshiftPosterior {
    /// The grid's nodes.
    pub z: Vec<f64>,
    /// Probability of each node's cell (sums to 1).
    pub prob: Vec<f64>,
    /// 16/50/84 % quantiles.
    pub percentiles: [f64; 3],
    /// Mode of the density p(z).
    pub z_mode: f64,
    /// Probability within ±[`PEAK_HALF_WIDTH`] (1+z_mode) of the mode: the main peak's odds.
    pub odds: f64,
    /// The highest other peak (its mode) and its probability (same window), when it holds ≥ 1 %.
    pub second: Option<(f64, f64)>,
    /// Measured bands.
    pub n_bands: usize,
    /// Smallest χ² of any template at any node (best mass within the prior).
    pub chi2_min: f64,
    /// Some band has flux > σ.
    pub detected: bool,
    /// What limits the answer: `few_bands`, `undetected`, `multimodal`, `at_grid_top`,
    /// `at_grid_bottom`; empty when none.
    pub flags: Vec<String>,
}

impl RedshiftPosterior {
    /// Summaries of cell probabilities `prob` over nodes `z`.
    pub fn from_grid(z: Vec<f64>, prob: Vec<f64>) -> Self {
        let widths = cell_widths(&z);
        let mode_i = (0..z.len()).max_by(|&i, &j| (prob[i] / widths[i]).total_cmp(&(prob[j] / widths[j]))).unwrap_or(0);
        let z_mode = z[mode_i];
        let mut pz = Self {
            percentiles: [0.0; 3],
            z_mode,
            odds: 0.0,
            second: None,
            n_bands: 0,
            chi2_min: f64::NAN,
            detected: true,
            flags: Vec::new(),
            z,
            prob,
        };
        pz.percentiles = [pz.quantile(0.16), pz.quantile(0.5), pz.quantile(0.84)];
        pz.odds = pz.mass_near(z_mode);
        // the highest density outside the main peak's window that is a local maximum
        let inside = |zz: f64| (zz - z_mode).abs() <= PEAK_HALF_WIDTH * (1.0 + z_mode);
        let dens = |i: usize| pz.prob[i] / widths[i];
        let n = pz.z.len();
        let second = (0..n)
            .filter(|&i| !inside(pz.z[i]))
            .filter(|&i| (i == 0 || dens(i) >= dens(i - 1)) && (i + 1 == n || dens(i) >= dens(i + 1)))
            .max_by(|&i, &j| dens(i).total_cmp(&dens(j)));
        if let Some(i) = second {
            let p = pz.mass_near(pz.z[i]);
            if p >= 0.01 {
                pz.second = Some((pz.z[i], p));
            }
        }
        pz
    }

    /// Probability within ±[`PEAK_HALF_WIDTH`] (1+z0) of z0.
    fn mass_near(&self, z0: f64) -> f64 {
        let h = PEAK_HALF_WIDTH * (1.0 + z0);
        self.cdf(z0 + h) - self.cdf(z0 - h)
    }

    /// P(z ≤ x), the cells' probability spread uniformly over each cell.
    pub fn cdf(&self, x: f64) -> f64 {
        let n = self.z.len();
        let mut total = 0.0;
        for i in 0..n {
            let lo = if i == 0 { self.z[0] } else { 0.5 * (self.z[i - 1] + self.z[i]) };
            let hi = if i + 1 == n { self.z[n - 1] } else { 0.5 * (self.z[i] + self.z[i + 1]) };
            if x >= hi {
                total += self.prob[i];
            } else if x > lo {
                total += self.prob[i] * (x - lo) / (hi - lo);
                break;
            } else {
                break;
            }
        }
        total
    }

    /// The q-quantile (cells' probability spread uniformly over each cell).
    pub fn quantile(&self, q: f64) -> f64 {
        let n = self.z.len();
        if n == 1 {
            return self.z[0];
        }
        let mut cum = 0.0;
        for i in 0..n {
            let lo = if i == 0 { self.z[0] } else { 0.5 * (self.z[i - 1] + self.z[i]) };
            let hi = if i + 1 == n { self.z[n - 1] } else { 0.5 * (self.z[i] + self.z[i + 1]) };
            if cum + self.prob[i] >= q && self.prob[i] > 0.0 {
                return lo + (hi - lo) * ((q - cum) / self.prob[i]).clamp(0.0, 1.0);
            }
            cum += self.prob[i];
        }
        self.z[n - 1]
    }

    /// `k` redshifts following p(z): the quantiles (j + ½)/k, each moved to the nearest node
    /// (where the photometry is compiled).
    pub fn stratified_draws(&self, k: usize) -> Vec<f64> {
        (0..k)
            .map(|j| {
                let zq = self.quantile((j as f64 + 0.5) / k as f64);
                let i = (0..self.z.len()).min_by(|&a, &b| (self.z[a] - zq).abs().total_cmp(&(self.z[b] - zq).abs())).unwrap_or(0);
                self.z[i]
            })
            .collect()
    }

    fn set_flags(&mut self) {
        let mut flags = Vec::new();
        if self.n_bands < MIN_BANDS {
            flags.push("few_bands".to_string());
        }
        if !self.detected {
            flags.push("undetected".to_string());
        }
        if self.odds < MULTIMODAL_ODDS {
            flags.push("multimodal".to_string());
        }
        let n = self.z.len();
        // more than 5 % of the probability in the grid's last or first 2 % of ln(1+z)
        let span = ((1.0 + self.z[n - 1]) / (1.0 + self.z[0])).ln();
        let edge = |from_top: bool| -> f64 {
            self.z
                .iter()
                .zip(&self.prob)
                .filter(|(z, _)| {
                    let d = if from_top { ((1.0 + self.z[n - 1]) / (1.0 + **z)).ln() } else { ((1.0 + **z) / (1.0 + self.z[0])).ln() };
                    d <= 0.02 * span
                })
                .map(|(_, p)| p)
                .sum()
        };
        if edge(true) > 0.05 {
            flags.push("at_grid_top".to_string());
        }
        if edge(false) > 0.05 {
            flags.push("at_grid_bottom".to_string());
        }
        self.flags = flags;
    }

    /// The flags as one string (`;`-separated), empty when none.
    pub fn flag_string(&self) -> String {
        self.flags.join(";")
    }

    /// What a flag means, for messages.
    pub fn explain(flag: &str) -> &'static str {
        match flag {
            "few_bands" => "fewer than 4 bands: p(z) is mostly the prior's",
            "undetected" => "no band above 1σ: p(z) is the prior's",
            "multimodal" => "less than 70 % of p(z) in its main peak (see the second peak)",
            "at_grid_top" => "p(z) runs into the top of the redshift grid: the galaxy may lie beyond it",
            "at_grid_bottom" => "p(z) runs into the bottom of the redshift grid",
            _ => "",
        }
    }
}

/// Above this median χ²_min per measured band over a catalogue's rows, its errors are smaller
/// than the scatter of its photometry about the model ([`excess_scatter_warning`]). Galaxies made
/// by bagpipes with their true errors leave medians of 0.49–0.76 per band (5.4–8.4 over 11 bands,
/// σ with the default 5 % systematic error; docs/photo-z.md, *Why the PRISM set fails*); the JADES
/// PRISM table, whose errors leave out its spectra's noise, 1.6 (its noiseless fluxes) and 2.2.
pub const EXCESS_CHI2_PER_BAND: f64 = 1.5;

/// Fewest rows with enough bands for [`excess_scatter_warning`] to judge a catalogue.
pub const EXCESS_CHI2_MIN_ROWS: usize = 20;

/// A warning when a catalogue's photometry scatters about the best templates more than its errors
/// allow: the median over rows with at least [`MIN_BANDS`] bands of χ²_min / bands above
/// [`EXCESS_CHI2_PER_BAND`]. Either the errors leave out part of the noise (photometry synthesised
/// from spectra, underestimated errors) or the model misses these galaxies; either way the z
/// intervals are too narrow and outliers many. None below [`EXCESS_CHI2_MIN_ROWS`] such rows.
pub fn excess_scatter_warning(rows: &[Option<RedshiftPosterior>]) -> Option<String> {
    let mut per_band: Vec<f64> =
        rows.iter().flatten().filter(|p| p.n_bands >= MIN_BANDS && p.chi2_min.is_finite()).map(|p| p.chi2_min / p.n_bands as f64).collect();
    if per_band.len() < EXCESS_CHI2_MIN_ROWS {
        return None;
    }
    per_band.sort_by(f64::total_cmp);
    let median = per_band[per_band.len() / 2];
    (median > EXCESS_CHI2_PER_BAND).then(|| {
        format!(
            "warning: the best templates leave a median χ² of {median:.2} per band over {} rows (galaxies the model \
             describes, with their true errors, leave 0.5–0.8): the errors are smaller than the photometry's scatter, or the \
             model misses these galaxies, so the redshift intervals will be too narrow and outliers many (docs/photo-z.md, \
             *Why the PRISM set fails*); a systematic error (`--sys-err`, Python `sys_err`) adds a fraction of each flux to its error",
            per_band.len()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excess_scatter_is_judged_on_the_median_chi2_per_band() {
        let row = |chi2: f64, bands: usize| {
            let mut p = RedshiftPosterior::from_grid(vec![1.0, 2.0], vec![0.5, 0.5]);
            (p.chi2_min, p.n_bands) = (chi2, bands);
            Some(p)
        };
        let rows = |per_band: &[f64], bands: usize| per_band.iter().map(|&c| row(c * bands as f64, bands)).collect::<Vec<_>>();
        // honest errors (0.7 per band), then 2.0 per band: the median decides, not the tail
        assert_eq!(excess_scatter_warning(&rows(&[0.7; 30], 11)), None);
        let mut mixed = rows(&[0.7; 16], 11);
        mixed.extend(rows(&[9.0; 14], 11));
        assert_eq!(excess_scatter_warning(&mixed), None);
        let w = excess_scatter_warning(&rows(&[2.0; 30], 11)).unwrap();
        assert!(w.contains("median χ² of 2.00 per band over 30 rows"), "{w}");
        // too few rows to judge; rows with too few bands or no fit do not count
        assert_eq!(excess_scatter_warning(&rows(&[2.0; EXCESS_CHI2_MIN_ROWS - 1], 11)), None);
        let mut few = rows(&[2.0; EXCESS_CHI2_MIN_ROWS - 1], 11);
        few.extend(rows(&[2.0; 10], MIN_BANDS - 1));
        few.extend([None, None]);
        assert_eq!(excess_scatter_warning(&few), None);
    }

    #[test]
    fn closed_form_mass_integral_matches_the_quadrature() {
        // Masses measured to 0.1–10 %: the closed form against log_mass_marginal's quadrature.
        for (rel, logm) in [(0.1, 8.0), (0.03, 9.5), (0.01, 6.0), (0.001, 11.0)] {
            let m: f64 = 10f64.powf(logm);
            let sigma = rel * m;
            let a = 1.0 / (sigma * sigma);
            let b = a * m * 1.02;
            let c = b * b / a + 7.0;
            let exact = log_mass_marginal(a, b, c, 4.0, 15.0);
            let ours = mass_integral(a, b, c, 4.0, 15.0);
            assert!((ours - exact).abs() < 1e-3, "σ/M {rel}: {ours} vs {exact}");
        }
    }

    #[test]
    fn summaries_of_a_gaussian_grid() {
        // A Gaussian p(z) at z = 3 with σ = 0.1 on a fine grid: its quantiles, mode and odds.
        let z: Vec<f64> = (0..2001).map(|i| i as f64 * 0.005).collect();
        let w = cell_widths(&z);
        let dens: Vec<f64> = z.iter().map(|&x| (-0.5 * ((x - 3.0) / 0.1f64).powi(2)).exp()).collect();
        let mut prob: Vec<f64> = dens.iter().zip(&w).map(|(d, w)| d * w).collect();
        let s: f64 = prob.iter().sum();
        prob.iter_mut().for_each(|p| *p /= s);
        let pz = RedshiftPosterior::from_grid(z, prob);
        assert!((pz.percentiles[1] - 3.0).abs() < 0.003, "{:?}", pz.percentiles);
        assert!((pz.percentiles[0] - (3.0 - 0.0994)).abs() < 0.004, "{:?}", pz.percentiles);
        assert!((pz.percentiles[2] - (3.0 + 0.0994)).abs() < 0.004, "{:?}", pz.percentiles);
        assert!((pz.z_mode - 3.0).abs() < 0.006);
        // ±0.4 = ±4σ holds all of it
        assert!(pz.odds > 0.9999 && pz.second.is_none(), "{} {:?}", pz.odds, pz.second);
        let d = pz.stratified_draws(4);
        assert!(d.windows(2).all(|p| p[0] < p[1]) && (d[0] - (3.0 - 0.1150)).abs() < 0.01, "{d:?}");
    }

    #[test]
    fn two_peaks_are_found_and_flagged() {
        // 60 % at z = 6, 40 % at z = 1.5: odds ≈ 0.6, second peak at 1.5 with ≈ 0.4, flagged.
        let z: Vec<f64> = (0..1601).map(|i| i as f64 * 0.005).collect();
        let w = cell_widths(&z);
        let g = |x: f64, m: f64, s: f64| (-0.5 * ((x - m) / s).powi(2)).exp() / s;
        let mut prob: Vec<f64> = z.iter().zip(&w).map(|(&x, w)| (0.6 * g(x, 6.0, 0.08) + 0.4 * g(x, 1.5, 0.1)) * w).collect();
        let s: f64 = prob.iter().sum();
        prob.iter_mut().for_each(|p| *p /= s);
        let mut pz = RedshiftPosterior::from_grid(z, prob);
        pz.n_bands = 8;
        pz.set_flags();
        assert!((pz.z_mode - 6.0).abs() < 0.01 && (pz.odds - 0.6).abs() < 0.01, "{} {}", pz.z_mode, pz.odds);
        let (z2, p2) = pz.second.expect("second peak");
        assert!((z2 - 1.5).abs() < 0.01 && (p2 - 0.4).abs() < 0.01, "{z2} {p2}");
        assert_eq!(pz.flags, vec!["multimodal".to_string()]);
    }
}
