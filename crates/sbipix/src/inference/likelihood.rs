//! Likelihood-based reference posteriors: the answer a classical SED fit with the same forward
//! model and prior gives, against which the neural posterior is judged.
//!
//! For a delayed-τ or dense_basis prior the posterior of one pixel is sampled (tempered
//! sequential Monte Carlo, [`sbipix_stats::smc`], or the importance sampling of [`super::refine`])
//! over the SFH shape, metallicity and dust (the prior's varied parameters other than the mass
//! and the given redshift; [`ShapeSpace`]), with a Gaussian likelihood in
//! flux: ln L = −½ Σ_b (f_b − M·g_b)² / σ_b² over the measured bands, g being the model's
//! photometry per M☉ formed. Every term of the forward model is proportional to the mass
//! formed M, so the mass is integrated out exactly (1-D quadrature of its uniform prior in
//! log M) and drawn afterwards from its conditional; the sampler works in four dimensions
//! (delayed-τ: τ, onset or log age, Z, A_V; dense_basis: sSFR, three t_x, Z, A_V — six).
//!
//! The likelihood treats σ as known, as SED fitting does. The simulated σ also carries a little
//! information of its own (a Poisson term grows with the true flux), which a network can use
//! and this likelihood does not; at the survey's depths it is small (docs/validation.md).

use crate::{Error, Result};
use sbipix_sim::prior::{ParamPrior, Prior, SfhPrior};
use sbipix_sim::theta::{Parameter, delayed_tau_age_gyr, floored_log_sfr};
use sbipix_sps::{CompileRange, CompiledPhotometry, DenseBasisTuple, GalaxyParams, SfhShape, SfhSpec, SpsModel, Workspace};
use std::cell::RefCell;

/// The prior parameters of the shape space (mass and redshift are handled apart), in the order
/// of its coordinates; a delayed-τ prior's age coordinate (`onset_fraction` here) is the one it
/// names ([`Prior::age_coordinate`]).
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

/// The SFH family of a [`ShapeSpace`], with what its coordinates need beyond their bounds.
#[derive(Debug, Clone)]
enum History {
    /// Delayed-τ: coordinates `log_tau_gyr` and the age coordinate `age` (`onset_fraction` or
    /// `log_age_fraction`).
    DelayedTau { age: Parameter },
    /// dense_basis: coordinates `log_ssfr_inst` (log SFR at observation per M☉ formed, /yr) and
    /// n `tx_cube_*` (the t_x through [`sbipix_stats::simplex::cube_to_ascending`]).
    DenseBasis {
        /// the prior's bounds on log SFR at observation (M☉/yr)
        sfr: (f64, f64),
        /// Dirichlet concentration of the t_x spacings
        alpha: f64,
        /// θ names of the t_x (`t25_frac`, …), in order
        tx_names: Vec<String>,
    },
}

/// Names of the dense_basis t_x coordinates of the cube (at most 20 t_x, as the tuples allow).
const TX_CUBE: [&str; 20] = [
    "tx_cube_1",
    "tx_cube_2",
    "tx_cube_3",
    "tx_cube_4",
    "tx_cube_5",
    "tx_cube_6",
    "tx_cube_7",
    "tx_cube_8",
    "tx_cube_9",
    "tx_cube_10",
    "tx_cube_11",
    "tx_cube_12",
    "tx_cube_13",
    "tx_cube_14",
    "tx_cube_15",
    "tx_cube_16",
    "tx_cube_17",
    "tx_cube_18",
    "tx_cube_19",
    "tx_cube_20",
];

/// The shape space of a prior: the unit cube of its varied parameters other than the mass formed
/// and the redshift, and the parameters it holds fixed. One home for the map from a cube point to
/// a galaxy, shared by the likelihood and the photometric-redshift templates ([`super::photoz`]).
///
/// **Delayed-τ**: the cube's coordinates are the prior's own (uniform priors, so the prior density
/// is constant there) and the mass's bounds are the prior's.
///
/// **dense_basis**: the history of (M formed, SFR at observation, t_x) is M times the history of
/// (1 M☉, sSFR = SFR/M, t_x) — the tuple's mass curve depends on SFR/M only
/// ([`sbipix_sps::DenseBasisTuple`]) — so the shape coordinates are log sSFR and the t_x, and the
/// mass is integrated out as for delayed-τ. The prior's independent uniform log M ∈ [m₀, m₁] and
/// log SFR ∈ [r₀, r₁] become uniform log sSFR over [r₀ − m₁, r₁ − m₀] with log M confined, at
/// each sSFR, to [max(m₀, r₀ − s), min(m₁, r₁ − s)] (Jacobian 1): the mass integral runs over
/// that window ([`Self::mass_bounds`]) and the density of the cube point carries the constant
/// ([`Self::ln_prior`]). The t_x's Dirichlet prior on their spacings is the cube's image under
/// [`sbipix_stats::simplex::cube_to_ascending`] (exact for α = 1, SBIPIX's; a relative density
/// otherwise).
#[derive(Debug, Clone)]
pub struct ShapeSpace {
    /// (name, min, max) of the cube's coordinates
    sampled: Vec<(&'static str, f64, f64)>,
    fixed: Vec<(&'static str, f64)>,
    history: History,
    /// the prior's bounds on log M☉ formed (equal when fixed)
    mass: (f64, f64),
}

impl ShapeSpace {
    /// The shape space of `prior` and its bounds on log M☉ formed (equal when fixed). A physical
    /// prior (mass per kpc²) has its mass bounds only at a redshift: resolve it first
    /// ([`Prior::at_redshift`]).
    pub fn of(prior: &Prior) -> Result<(Self, (f64, f64))> {
        if prior.pixel_scale_arcsec.is_some() {
            return Err(Error::unsupported(
                "a shape space of a mass-per-kpc² prior without a redshift",
                "resolve the prior at the pixel's redshift (Prior::at_redshift)",
            ));
        }
        let mass = match prior.get("log_mass_formed") {
            Some(ParamPrior::Uniform { min, max }) => (min, max),
            Some(ParamPrior::Fixed { value }) => (value, value),
            None => return Err(Error::unsupported("likelihood-based posteriors", "the prior has no log_mass_formed")),
        };
        let (mut sampled, mut fixed) = (Vec::new(), Vec::new());
        let history = match prior.sfh {
            SfhPrior::DelayedTau => History::DelayedTau { age: prior.age_coordinate() },
            SfhPrior::DenseBasis { n_tx, dirichlet_alpha } => {
                let sfr = match prior.get("log_sfr_inst") {
                    Some(ParamPrior::Uniform { min, max }) if mass.1 > mass.0 => (min, max),
                    _ => {
                        return Err(Error::unsupported(
                            "likelihood-based posteriors of a dense_basis prior with a fixed mass or SFR",
                            "they need log_mass_formed and log_sfr_inst both uniform (the mass is integrated out at fixed sSFR)",
                        ));
                    }
                };
                if n_tx == 0 || n_tx > TX_CUBE.len() {
                    return Err(Error::unsupported(format!("dense_basis with {n_tx} t_x"), "1 to 20 t_x"));
                }
                sampled.push(("log_ssfr_inst", sfr.0 - mass.1, sfr.1 - mass.0));
                sampled.extend(TX_CUBE[..n_tx].iter().map(|n| (*n, 0.0, 1.0)));
                let tx_names = prior.shape_parameters()[1..].iter().map(|p| p.name()).collect();
                History::DenseBasis { sfr, alpha: dirichlet_alpha, tx_names }
            }
        };
        let mut names: Vec<&'static str> = match prior.sfh {
            SfhPrior::DelayedTau => SAMPLED.to_vec(),
            SfhPrior::DenseBasis { .. } => SAMPLED[2..].to_vec(),
        };
        if let History::DelayedTau { age } = history {
            names[1] = age.static_name();
        }
        for n in names {
            match prior.get(n) {
                Some(ParamPrior::Uniform { min, max }) => sampled.push((n, min, max)),
                Some(ParamPrior::Fixed { value }) => fixed.push((n, value)),
                None => {}
            }
        }
        Ok((Self { sampled, fixed, history, mass }, mass))
    }

    /// The same space with the prior's upper bounds on the mass formed (and, for dense_basis, on
    /// the SFR, which grows with it) raised by `dex`: integrated photometry of whole galaxies.
    /// The sSFR coordinate's range widens accordingly.
    pub fn with_headroom(mut self, dex: f64) -> Self {
        let dex = dex.max(0.0);
        if self.mass.1 > self.mass.0 {
            self.mass.1 += dex;
        }
        if let History::DenseBasis { sfr, .. } = &mut self.history {
            sfr.1 += dex;
            let (s0, s1) = (sfr.0 - self.mass.1, sfr.1 - self.mass.0);
            self.sampled[0] = ("log_ssfr_inst", s0, s1);
        }
        self
    }

    /// True for a delayed-τ space.
    pub fn is_delayed_tau(&self) -> bool {
        matches!(self.history, History::DelayedTau { .. })
    }

    /// Dimension of the cube.
    pub fn dim(&self) -> usize {
        self.sampled.len()
    }

    /// The value of prior parameter `name` at `u` (its fixed value if it is not sampled; the t_x
    /// of a dense_basis space by their θ names).
    pub fn value(&self, u: &[f64], name: &str) -> f64 {
        if let History::DenseBasis { tx_names, .. } = &self.history
            && let Some(i) = tx_names.iter().position(|t| t == name)
        {
            return self.tx(u)[i];
        }
        match self.sampled.iter().position(|s| s.0 == name) {
            Some(k) => self.sampled[k].1 + (self.sampled[k].2 - self.sampled[k].1) * u[k],
            None => self.fixed.iter().find(|f| f.0 == name).map_or(0.0, |f| f.1),
        }
    }

    /// The t_x of a dense_basis point (empty for delayed-τ).
    fn tx(&self, u: &[f64]) -> Vec<f64> {
        match &self.history {
            History::DelayedTau { .. } => Vec::new(),
            History::DenseBasis { tx_names, .. } => {
                let mut x = vec![0.0; tx_names.len()];
                sbipix_stats::simplex::cube_to_ascending(&u[1..1 + x.len()], &mut x);
                x.iter_mut().for_each(|v| *v = v.clamp(1e-9, 1.0 - 1e-9));
                x
            }
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

    /// The bounds on log M☉ formed at cube point `u`: the prior's for delayed-τ; for dense_basis
    /// those that keep the SFR inside its prior at the point's sSFR (empty — hi ≤ lo — at the
    /// sSFR range's very ends).
    pub fn mass_bounds(&self, u: &[f64]) -> (f64, f64) {
        match &self.history {
            History::DelayedTau { .. } => self.mass,
            History::DenseBasis { sfr, .. } => {
                let s = self.value(u, "log_ssfr_inst");
                (self.mass.0.max(sfr.0 - s), self.mass.1.min(sfr.1 - s))
            }
        }
    }

    /// ln of the prior density of cube point `u` and log M formed (uniform within
    /// [`Self::mass_bounds`]): −ln(m₁ − m₀) for delayed-τ (0 for a fixed mass); for dense_basis
    /// ln(sSFR range) − ln(m₁ − m₀) − ln(r₁ − r₀), plus the t_x's Dirichlet density relative to
    /// the cube's image (0 for α = 1).
    pub fn ln_prior(&self, u: &[f64]) -> f64 {
        let (lo, hi) = self.mass;
        match &self.history {
            History::DelayedTau { .. } => {
                if hi > lo {
                    -(hi - lo).ln()
                } else {
                    0.0
                }
            }
            History::DenseBasis { sfr, alpha, .. } => {
                let (_, s0, s1) = self.sampled[0];
                let dir = if *alpha == 1.0 { 0.0 } else { sbipix_stats::simplex::ln_dirichlet_over_ordered_uniform(&self.tx(u), *alpha) };
                (s1 - s0).ln() - (hi - lo).ln() - (sfr.1 - sfr.0).ln() + dir
            }
        }
    }

    /// The cube point of a draw of physical quantities (`get` gives a parameter's value by its
    /// θ name, None where the draw lacks it) for a dense_basis space: the sSFR from the drawn
    /// mass and SFR (else from the SFR over 100 Myr and the living mass, corrected to formed mass
    /// by `live_dex`), the t_x through the inverse transform, the rest as drawn; coordinates the
    /// draw lacks at the cube's centre. None for delayed-τ, whose histories need a search
    /// ([`sbipix_sps::DelayedTauInverse`]).
    pub fn dense_basis_point(&self, get: &dyn Fn(&str) -> Option<f64>, live_dex: f64) -> Option<Vec<f64>> {
        let History::DenseBasis { tx_names, .. } = &self.history else { return None };
        let mut u = vec![0.5; self.dim()];
        let ssfr = match (get("log_sfr_inst"), get("log_mass_formed")) {
            (Some(s), Some(m)) => Some(s - m),
            _ => match (get("log_sfr_100myr"), get("log_mstar")) {
                (Some(s), Some(m)) => Some(s - m + live_dex),
                _ => None,
            },
        };
        if let Some(s) = ssfr.filter(|s| s.is_finite()) {
            u[0] = self.coordinate(0, s);
        }
        let tx: Option<Vec<f64>> = tx_names.iter().map(|n| get(n).filter(|v| v.is_finite()).map(|v| v.clamp(1e-4, 1.0 - 1e-4))).collect();
        if let Some(tx) = tx {
            let n = tx.len();
            sbipix_stats::simplex::ascending_to_cube(&tx, &mut u[1..1 + n]);
            u[1..1 + n].iter_mut().for_each(|v| *v = v.clamp(1e-6, 1.0 - 1e-6));
        }
        for (k, (name, _, _)) in self.sampled.iter().enumerate().skip(1 + tx_names.len()) {
            if let Some(v) = get(name).filter(|v| v.is_finite()) {
                u[k] = self.coordinate(k, v);
            }
        }
        Some(u)
    }

    /// The galaxy of cube point `u` at `redshift` (the universe `t_univ_gyr` old then), with
    /// 1 M☉ formed.
    pub fn params_at(&self, u: &[f64], redshift: f64, t_univ_gyr: f64) -> GalaxyParams {
        let sfh = match &self.history {
            History::DelayedTau { age } => SfhSpec::Parametric {
                shape: SfhShape::DelayedTau {
                    age_gyr: delayed_tau_age_gyr(*age, self.value(u, age.static_name()), t_univ_gyr),
                    tau_gyr: 10f64.powf(self.value(u, "log_tau_gyr")),
                },
                log_mass_formed: 0.0,
            },
            History::DenseBasis { .. } => {
                SfhSpec::DenseBasis(DenseBasisTuple { log_mass_formed: 0.0, log_sfr: self.value(u, "log_ssfr_inst"), tx: self.tx(u) })
            }
        };
        GalaxyParams {
            redshift,
            sfh,
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
    /// `redshift` under `prior` (delayed-τ or dense_basis). `measured[b]` false (or a non-finite value, σ ≤ 0)
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
        let (space, _) = ShapeSpace::of(&prior.at_redshift(redshift, &model.config().cosmology))?;
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
        self.space = self.space.with_headroom(dex);
        self
    }

    /// The shape space (its family, coordinates and the map to galaxies).
    pub fn space(&self) -> &ShapeSpace {
        &self.space
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
                let (lo, hi) = self.space.mass_bounds(u);
                if hi <= lo && !self.space.is_delayed_tau() {
                    // the ends of dense_basis' sSFR range: no mass keeps the SFR in its prior
                    return (f64::NEG_INFINITY, pm);
                }
                (log_mass_marginal(pm.a, pm.b, pm.c, lo, hi) + self.space.ln_prior(u), pm)
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
        let (lo, hi) = self.space.mass_bounds(u);
        let hi = hi.max(lo);
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
        let (lo, hi) = self.space.mass_bounds(u);
        let m = if hi > lo { sample_log_mass(pm.a, pm.b, pm.c, lo, hi, v) } else { lo };
        let nan = f64::NAN;
        let d = self.derived_at(u);
        let (log_mstar, log_formed, log_sfr_100, log_sfr_10, mwa) = d.map_or((nan, nan, nan, nan, nan), |d| {
            (d.log_mstar, d.log_mass_formed, d.log_sfr_100myr, d.log_sfr_10myr, d.mass_weighted_age_gyr)
        });
        // The mass formed that the history realises: m itself for a parametric one (to rounding);
        // a dense_basis tuple's smoothed, clipped and renormalised curve forms somewhat more or
        // less than its nominal M, and θ (as the simulator writes it) holds what formed.
        let formed = m + log_formed;
        for (o, name) in out.iter_mut().zip(&self.names) {
            *o = match name.as_str() {
                "log_mstar" => m + log_mstar,
                "log_mass_formed" => formed,
                "log_sfr_100myr" => floored_log_sfr(m + log_sfr_100, formed),
                "log_sfr_10myr" => floored_log_sfr(m + log_sfr_10, formed),
                "mass_weighted_age_gyr" => mwa,
                "log_sfr_inst" => m + self.value(u, "log_ssfr_inst"),
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

/// [`compile_for`] at every redshift of `redshift` that more than one object shares (a map's
/// pixels), keyed by the redshift's bits; a redshift of its own (catalogue rows, simulations) is
/// left for the caller to compile when it needs it, so that the tables of thousands of
/// redshifts never sit in memory together.
pub fn compile_shared(model: &SpsModel, prior: &Prior, redshift: &[f64]) -> Result<std::collections::HashMap<u64, CompiledPhotometry>> {
    use rayon::prelude::*;
    let mut count: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    for z in redshift.iter().filter(|z| z.is_finite() && **z >= 0.0) {
        *count.entry(z.to_bits()).or_default() += 1;
    }
    count.into_par_iter().filter(|&(_, n)| n > 1).map(|(bits, _)| Ok((bits, compile_for(model, prior, f64::from_bits(bits))?))).collect()
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
///
/// A peak whose window lies inside the prior (the usual case: the mass measured to better than
/// 13 %) takes the closed form instead ([`narrow_peak_integral`]), two logarithms.
pub(crate) fn log_mass_marginal(a: f64, b: f64, c: f64, mlo: f64, mhi: f64) -> f64 {
    let (mhat, base, sigma, p, q) = match mass_window(a, b, c, mlo, mhi) {
        MassWindow::Point(v) | MassWindow::Flat(v) => return v,
        MassWindow::Window { mhat, base, sigma, p, q } => (mhat, base, sigma, p, q),
    };
    if p == mhat - 7.5 * sigma && q == mhat + 7.5 * sigma {
        return narrow_peak_integral(mhat, sigma).ln() - std::f64::consts::LN_10.ln() - 0.5 * base;
    }
    quadrature_log_integral(a, mhat, sigma, p, q) - std::f64::consts::LN_10.ln() - 0.5 * base
}

/// Terms of the expansion in [`narrow_peak_integral`].
const NARROW_TERMS: usize = 12;

/// ∫ e^{−(M−M̂)²/2σ²} / M dM over M̂ ± 7.5σ when that window lies at M > 0 (σ/M̂ ≤ 2/15):
/// √(2π) σ/M̂ · Σₖ (2k−1)!! (σ/M̂)^{2k}, the moments of the Gaussian in the expansion of 1/M
/// about M̂. The series is asymptotic; at σ/M̂ ≤ 2/15 its 12 terms leave < 10⁻⁹ (relative), as
/// do the window's cut tails (e^{−28}) — the precision of the quadrature it replaces (checked
/// against it in the tests).
fn narrow_peak_integral(mhat: f64, sigma: f64) -> f64 {
    // (2k−1)!!, k = 0 … NARROW_TERMS−1
    const DOUBLE_FACT: [f64; NARROW_TERMS] = {
        let mut d = [1.0; NARROW_TERMS];
        let mut k = 1;
        while k < NARROW_TERMS {
            d[k] = d[k - 1] * (2 * k - 1) as f64;
            k += 1;
        }
        d
    };
    let r2 = (sigma / mhat).powi(2);
    let sum = DOUBLE_FACT.iter().rev().fold(0.0f64, |acc, &d| acc * r2 + d);
    (2.0 * std::f64::consts::PI).sqrt() * sigma / mhat * sum
}

/// ln ∫_p^q e^{−A(M−M̂)²/2} / M dM by Gauss–Legendre quadrature (see [`log_mass_marginal`]).
fn quadrature_log_integral(a: f64, mhat: f64, sigma: f64, p: f64, q: f64) -> f64 {
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
    top + sum.ln()
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
    fn a_log_age_prior_is_a_cube_of_log_ages() {
        // The cube coordinate of a log-age prior is log10(age / t_univ), uniform over its range:
        // the galaxy at u has the age the simulator gives that value (the same rule as θ's).
        let text = "[parameters]\nlog_age_fraction = { min = -3.0, max = 0.0 }\nlog_mass_formed = { min = 4.0, max = 12.0 }\n";
        let prior = Prior::from_toml_str(text, "p.toml").unwrap();
        let cosmo = sbipix_sps::Cosmology::default();
        let (space, mass) = ShapeSpace::of(&prior.at_redshift(3.0, &cosmo)).unwrap();
        assert_eq!(mass, (4.0, 12.0));
        assert_eq!(space.coordinate_names()[..2], ["log_tau_gyr", "log_age_fraction"]);
        assert!(space.is_delayed_tau());
        let t = cosmo.age_gyr(3.0);
        for (v, want) in [(0.0, t * 1e-3), (0.5, t * 10f64.powf(-1.5)), (1.0, t)] {
            let mut u = vec![0.5; space.dim()];
            u[1] = v;
            let SfhSpec::Parametric { shape: SfhShape::DelayedTau { age_gyr, .. }, .. } = space.params_at(&u, 3.0, t).sfh else {
                unreachable!()
            };
            assert!((age_gyr / want - 1.0).abs() < 1e-12, "u = {v}: {age_gyr} Gyr, want {want}");
        }
        // SBIPIX's prior keeps the onset
        let (space, _) = ShapeSpace::of(&Prior::sbipix_delayed_tau().at_redshift(3.0, &cosmo)).unwrap();
        assert_eq!(space.coordinate_names()[..2], ["log_tau_gyr", "onset_fraction"]);
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

    /// The closed form of a narrow peak against the quadrature it stands in for, from peaks
    /// measured to 10⁻⁴ to the widest the closed form takes (σ/M̂ = 2/15).
    #[test]
    fn narrow_peaks_match_the_quadrature() {
        let mut worst: f64 = 0.0;
        for i in 0..=200 {
            let r = 10f64.powf(-4.0 + (4.0 + (2.0f64 / 15.0).log10()) * i as f64 / 200.0);
            let mhat = 10f64.powf(5.0 + 6.0 * ((i * 37) % 200) as f64 / 200.0);
            let sigma = r * mhat;
            let a = 1.0 / (sigma * sigma);
            let closed = narrow_peak_integral(mhat, sigma).ln();
            let quad = quadrature_log_integral(a, mhat, sigma, mhat - 7.5 * sigma, mhat + 7.5 * sigma);
            worst = worst.max((closed - quad).abs());
        }
        assert!(worst < 1e-8, "worst |Δ ln| = {worst:.2e}");
        // and the marginal takes it where the peak is inside the prior (checked against brute force above)
        let (a, b) = (1.0 / (1e7f64 * 1e7), 1e9 / (1e7f64 * 1e7));
        assert!((log_mass_marginal(a, b, b * b / a, 4.0, 12.0) - brute(a, b, b * b / a, 4.0, 12.0)).abs() < 1e-6);
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
