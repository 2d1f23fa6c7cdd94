//! Photometry compiled for one redshift: band tables that turn a star-formation history into
//! band fluxes with a few dot products instead of a spectrum.
//!
//! At a fixed redshift and band set every term of [`SpsModel::synthesize`] is linear in the
//! mass formed per age bin: the stellar light of bin j at metallicity Z, attenuated by A_V,
//! seen through band b is a number `T_b[Z][j](A_V)`; nebular emission is linear in the young
//! bins' masses (per log U); the dust emission is the absorbed luminosity (linear in the same
//! masses, a function of A_V) times the DL07 spectrum's band flux; the IGM is fixed by z. So
//!
//! ```text
//! F_b = Σ_Z w_Z [ Σ_j m_old,j T_b[Z][j](A_V) + Σ_{j ≤ bc} m_young,j (S_b[Z][j](ηA_V) + Σ_U w_U N_b[Z][U][j](ηA_V)) ]
//!       + L_abs · D_b,
//! ```
//!
//! with the tables tabulated on a uniform grid in A_V (step [`AV_STEP_MAG`]) and interpolated
//! linearly in flux. For one component the flux is Σᵢ Lᵢ e^{cᵢA} with cᵢ = −0.4 ln10 A(λᵢ)/A_V,
//! so the relative error of linear interpolation is at most h²/8 · max cᵢ² — with
//! |c| ≤ 3.5 (Calzetti 2000 at the Lyman limit) and h = 0.01 mag, 1.5 × 10⁻⁴ (0.00017 mag); the
//! tests hold the compiled fluxes to 0.002 mag of the full model over prior draws at several
//! redshifts. The absorbed luminosity is tabulated divided by the attenuation (smooth and finite
//! at A_V = 0, so that linear interpolation stays accurate for the smallest A_V), exact at the
//! nodes.
//!
//! Evaluation: with the interpolation weights (1 − f, f) of A_V shared by every bin, each band
//! costs four dot products over the populated age bins (two metallicities × two A_V nodes),
//! contiguous in memory; the tables of one (Z, A_V node) stay in cache.

use crate::error::{SpsError, finite};
use crate::model::{Derived, GalaxyParams, SpsModel, Workspace};
use crate::sampling::trapezoid_weights;

/// Step of the A_V grid of the tables, magnitudes.
pub const AV_STEP_MAG: f64 = 0.01;

/// The parameter ranges a compiled table covers (it is built for them only, to stay small).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompileRange {
    /// Largest A_V of all stars, magnitudes.
    pub av_max_mag: f64,
    /// Largest young-star factor η (young stars see η·A_V).
    pub eta_max: f64,
    /// Range of log U (the nebular grids bracketing it are kept).
    pub logu: (f64, f64),
}

impl Default for CompileRange {
    /// SBIPIX's prior: A_V ≤ 4.3, η = 1, log U = −2.
    fn default() -> Self {
        Self { av_max_mag: 4.3, eta_max: 1.0, logu: (-2.0, -2.0) }
    }
}

/// Band tables of one [`SpsModel`] at one redshift (see the module documentation).
#[derive(Debug, Clone)]
pub struct CompiledPhotometry {
    redshift: f64,
    age_universe_gyr: f64,
    n_bands: usize,
    /// The rows of one bin in the tables: the bands, then the absorbed luminosity over the
    /// attenuation (L☉ per M☉ per magnitude of A_V; its limit at A_V = 0 in the first node),
    /// then zeros up to a multiple of 4, so that whole 4-wide vectors of rows are read.
    row_stride: usize,
    /// Age bins that can hold stars at this redshift.
    nb: usize,
    /// Bins holding young stars (up to and including the birth-cloud bin).
    nbc: usize,
    range: CompileRange,
    n_av_old: usize,
    n_av_young: usize,
    /// Old stars: `[zmet][A_V node][bin][row]` (rows padded to `row_stride`). Stored as f32
    /// (relative precision 6e-8, far below the tables' interpolation error): the evaluation
    /// reads ~10 kB of them per galaxy at random A_V, which f32 halves.
    old: Vec<f32>,
    /// Young stars (without their ionising light when nebular emission is on): `[zmet][ηA_V node][young bin][row]`.
    young: Vec<f32>,
    /// log U of the kept nebular grids.
    logu: Vec<f64>,
    /// Nebular emission: `[zmet][kept log U][ηA_V node][young bin][row]`.
    neb: Vec<f32>,
    /// µJy per L☉ of absorbed luminosity re-emitted by dust, per band (0 without dust emission).
    dust_band_ujy: Vec<f64>,
    /// The CPU has AVX2 and FMA (checked once, here).
    simd: bool,
    /// Young stars see the same A_V as old ones (η = 1, the range's η_max), so their table is
    /// folded into `old` — with the nebular emission when a single log U grid is kept — and one
    /// sum per metallicity and A_V node does what three did: `old`'s bins are then the history's
    /// cut intervals (the young bins, then the birth-cloud bin's older part and the older bins:
    /// `nb + 1`), `young` is empty, and `neb` too when folded.
    folded: bool,
}

/// Most cut intervals of a folded table (the model's 42 bins + 1; more bins leave it unfolded).
const MAX_FOLDED: usize = 80;

fn cpu_has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Values of Σᵢ rows[r][i] · kernel[i][a]: a (rows × n) by (n × m) product.
fn matmul(rows: &[f64], n_rows: usize, n: usize, kernel: &[f64], m: usize, out: &mut [f64]) {
    debug_assert_eq!(rows.len(), n_rows * n);
    debug_assert_eq!(kernel.len(), n * m);
    debug_assert_eq!(out.len(), n_rows * m);
    if n == 0 {
        out.iter_mut().for_each(|v| *v = 0.0);
        return;
    }
    // SAFETY: the slices hold exactly the row-major matrices the strides describe (checked above).
    unsafe {
        matrixmultiply::dgemm(
            n_rows,
            n,
            m,
            1.0,
            rows.as_ptr(),
            n as isize,
            1,
            kernel.as_ptr(),
            m as isize,
            1,
            0.0,
            out.as_mut_ptr(),
            m as isize,
            1,
        );
    }
}

/// The absorbed luminosity over the attenuation, per unit luminosity at a wavelength whose
/// attenuation coefficient is `c` (−0.4 ln10 A(λ)/A_V): (1 − e^{cA})/A, its limit −c at A = 0.
/// Smooth and finite at A = 0, so linear interpolation stays accurate down to the smallest A_V.
fn absorbed_over_av(c: f64, av: f64) -> f64 {
    if av == 0.0 { -c } else { -(c * av).exp_m1() / av }
}

/// What tabulating spectra at one redshift needs: each band's weights over the rest grid
/// (µJy per L☉/Å at each pixel, the IGM folded in) and the trapezoid weights of energy balance.
struct Tabulator<'a> {
    model: &'a SpsModel,
    redshift: f64,
    /// (first pixel, weights) per band
    band_w: Vec<(usize, Vec<f64>)>,
    /// Δλ of the absorbed-luminosity integral over the dust-affected pixels
    tw: Vec<f64>,
    /// bands + 1 (the absorbed-luminosity row)
    n_rows: usize,
}

impl<'a> Tabulator<'a> {
    fn new(model: &'a SpsModel, redshift: f64) -> Self {
        let (nw, zp1, k) = (model.wave.len(), 1.0 + redshift, model.flux_constant(redshift));
        let mut igm = vec![1.0; nw];
        model.igm.apply(redshift, &mut igm);
        let band_w = model
            .bands
            .iter()
            .map(|b| {
                let (start, w) = b.pixel_weights(&model.wave, &model.ln_wave, &model.w_num, &model.w_den, zp1);
                (start, w.iter().enumerate().map(|(i, wi)| wi * k * igm[start + i]).collect())
            })
            .collect();
        let tw = trapezoid_weights(&model.wave)[..model.n_dust].to_vec();
        Self { model, redshift, band_w, tw, n_rows: model.bands.len() + 1 }
    }

    /// µJy per L☉ of absorbed luminosity re-emitted by dust, per band (0 without dust emission).
    fn dust_band_ujy(&self) -> Vec<f64> {
        let m = self.model;
        self.band_w
            .iter()
            .map(|(s, w)| if m.config.dust_emission { w.iter().enumerate().map(|(i, wi)| wi * m.dl07[s + i]).sum() } else { 0.0 })
            .collect()
    }

    /// Rows `spec` (`n_spec` full-grid spectra, L☉/Å per M☉) through every band and the
    /// absorbed-luminosity row at `n_av` attenuation nodes: `[spectrum][A_V node][row]`.
    fn tabulate(&self, spec: &[f64], n_spec: usize, n_av: usize) -> Vec<f64> {
        let (m, nw, n_dust) = (self.model, self.model.wave.len(), self.model.n_dust);
        let mut by_spec = vec![0.0; n_spec * n_av * self.n_rows];
        let mut block = vec![0.0; n_spec * n_av];
        let (mut gather, mut kernel) = (Vec::new(), Vec::new());
        for (b, (start, w)) in self.band_w.iter().enumerate() {
            let np = w.len();
            gather.clear();
            for sp in 0..n_spec {
                gather.extend_from_slice(&spec[sp * nw + start..sp * nw + start + np]);
            }
            kernel.clear();
            for (i, wi) in w.iter().enumerate() {
                let c = if start + i < n_dust { m.dust_coef[start + i] } else { 0.0 };
                kernel.extend((0..n_av).map(|a| wi * (c * a as f64 * AV_STEP_MAG).exp()));
            }
            matmul(&gather, n_spec, np, &kernel, n_av, &mut block);
            self.put_row(b, &block, &mut by_spec);
        }
        if m.config.dust_emission {
            gather.clear();
            for sp in 0..n_spec {
                gather.extend_from_slice(&spec[sp * nw..sp * nw + n_dust]);
            }
            kernel.clear();
            for (t, &c) in self.tw.iter().zip(&m.dust_coef[..n_dust]) {
                kernel.extend((0..n_av).map(|a| t * absorbed_over_av(c, a as f64 * AV_STEP_MAG)));
            }
            matmul(&gather, n_spec, n_dust, &kernel, n_av, &mut block);
            self.put_row(self.n_rows - 1, &block, &mut by_spec);
        }
        by_spec
    }

    /// Adds emission lines at their exact wavelengths (`lum`: `n_spec` rows of line
    /// luminosities, L☉ per M☉) to `by_spec` as [`Self::tabulate`] lays it out: per band
    /// Σ_l L_l · factor_b,l · e^{c_l A}, absorbed Σ_l L_l (1 − e^{c_l A})/A.
    fn add_lines(&self, lum: &[f64], n_spec: usize, n_av: usize, by_spec: &mut [f64]) {
        let m = self.model;
        let coef = m.line_dust_coef();
        let nl = coef.len();
        let mut block = vec![0.0; n_spec * n_av];
        let mut kernel = vec![0.0; nl * n_av];
        let mut add = |r: usize, kernel: &[f64]| {
            matmul(lum, n_spec, nl, kernel, n_av, &mut block);
            for (i, v) in block.iter().enumerate() {
                by_spec[i * self.n_rows + r] += v;
            }
        };
        for b in 0..self.n_rows - 1 {
            let factor = m.line_band_factors(b, self.redshift);
            for l in 0..nl {
                for a in 0..n_av {
                    kernel[l * n_av + a] = factor[l] * (coef[l] * a as f64 * AV_STEP_MAG).exp();
                }
            }
            add(b, &kernel);
        }
        if m.config.dust_emission {
            for l in 0..nl {
                for a in 0..n_av {
                    kernel[l * n_av + a] = absorbed_over_av(coef[l], a as f64 * AV_STEP_MAG);
                }
            }
            add(self.n_rows - 1, &kernel);
        }
    }

    /// Row `r` of every (spectrum, A_V node) of `by_spec` from `block` (`[spectrum][A_V node]`).
    fn put_row(&self, r: usize, block: &[f64], by_spec: &mut [f64]) {
        for (i, v) in block.iter().enumerate() {
            by_spec[i * self.n_rows + r] = *v;
        }
    }

    /// The tables' row stride: rows rounded up to whole 4-wide vectors.
    fn row_stride(&self) -> usize {
        self.n_rows.div_ceil(4) * 4
    }

    /// Reorders `[spectrum = (outer, bin)][A_V][row]` into `[outer][A_V][bin][row]` (rows padded
    /// with zeros to [`Self::row_stride`]), as f32: one bin's rows are contiguous, so that an
    /// evaluation sums whole vectors of rows bin after bin, without a reduction per row.
    fn to_row_minor(&self, by_spec: Vec<f64>, n_outer: usize, n_bin: usize, n_av: usize) -> Vec<f32> {
        let (nr, rp) = (self.n_rows, self.row_stride());
        let mut out = vec![0.0f32; n_outer * n_av * n_bin * rp];
        for o in 0..n_outer {
            for j in 0..n_bin {
                for a in 0..n_av {
                    for r in 0..nr {
                        out[((o * n_av + a) * n_bin + j) * rp + r] = by_spec[(((o * n_bin) + j) * n_av + a) * nr + r] as f32;
                    }
                }
            }
        }
        out
    }
}

/// Checks a compile range against what the model covers.
fn check_range(range: &CompileRange) -> Result<(), SpsError> {
    for (name, v, ok) in [
        ("av_max_mag", range.av_max_mag, (0.0..=20.0).contains(&range.av_max_mag)),
        ("eta_max", range.eta_max, (1.0..=10.0).contains(&range.eta_max)),
        ("logu_min", range.logu.0, range.logu.0 <= range.logu.1),
    ] {
        finite(name, v)?;
        if !ok {
            return Err(SpsError::invalid(name, v, "outside the model's range (A_V ≤ 20, 1 ≤ η ≤ 10, log U min ≤ max)"));
        }
    }
    Ok(())
}

impl CompiledPhotometry {
    /// Compiles `model`'s photometry at `redshift` for parameters inside `range`.
    pub fn new(model: &SpsModel, redshift: f64, range: CompileRange) -> Result<Self, SpsError> {
        finite("redshift", redshift)?;
        if !(0.0..=model.config.max_redshift).contains(&redshift) {
            return Err(SpsError::RedshiftOutOfRange { redshift, max_redshift: model.config.max_redshift });
        }
        check_range(&range)?;
        let (nw, nz, nb_all) = (model.wave.len(), model.zmet.len(), model.bins.len());
        let age_universe_gyr = model.config.cosmology.age_gyr(redshift);
        // the age bins that can hold stars at this redshift; the young ones
        let nb = model.bins.edges_yr[..nb_all].iter().take_while(|&&e| e < age_universe_gyr * 1e9).count().max(1);
        let nbc = (model.bc_bin + 1).min(nb);
        // the nebular grids bracketing the log U range
        let (logu_first, logu) = if model.config.nebular {
            // the last node ≤ the range's start and the first ≥ its end (one grid for a fixed
            // log U on a node, as SBIPIX's −2)
            let g = &model.logu;
            let lo = g.partition_point(|&u| u <= range.logu.0).saturating_sub(1).min(g.len() - 1);
            let hi = g.partition_point(|&u| u < range.logu.1).min(g.len() - 1).max(lo);
            (lo, g[lo..=hi].to_vec())
        } else {
            (0, Vec::new())
        };
        let n_av = |max: f64| ((max / AV_STEP_MAG - 1e-9).ceil() as usize + 1).max(2);
        let (n_av_old, n_av_young) = (n_av(range.av_max_mag), n_av(range.av_max_mag * range.eta_max));
        let tab = Tabulator::new(model, redshift);

        // old stars: every populated bin's SSP
        let ssp_row = |z: usize, j: usize| &model.ssp[(z * nb_all + j) * nw..(z * nb_all + j + 1) * nw];
        let old_spec: Vec<f64> = (0..nz).flat_map(|z| (0..nb).flat_map(move |j| ssp_row(z, j).iter().copied())).collect();
        let old = tab.to_row_minor(tab.tabulate(&old_spec, nz * nb, n_av_old), nz, nb, n_av_old);
        // young stars: their ionising light goes into the nebular emission when there is one
        let mut young_spec = Vec::with_capacity(nz * nbc * nw);
        for z in 0..nz {
            for j in 0..nbc {
                let s = young_spec.len();
                young_spec.extend_from_slice(ssp_row(z, j));
                if model.config.nebular {
                    young_spec[s..s + model.n_ionising].iter_mut().for_each(|v| *v = 0.0);
                }
            }
        }
        let young = tab.to_row_minor(tab.tabulate(&young_spec, nz * nbc, n_av_young), nz, nbc, n_av_young);
        // nebular continuum (+ lines: in the pixels, or at their exact wavelengths)
        let neb = if model.config.nebular {
            let (na, nu_all, nu) = (model.n_neb_ages, model.logu.len(), logu.len());
            let grids =
                || (0..nz).flat_map(move |z| (0..nu).flat_map(move |u| (0..nbc).map(move |j| (z * nu_all + logu_first + u) * na + j)));
            let neb_spec: Vec<f64> = grids().flat_map(|g| model.neb[g * nw..(g + 1) * nw].iter().copied()).collect();
            let n_spec = nz * nu * nbc;
            let mut by_spec = tab.tabulate(&neb_spec, n_spec, n_av_young);
            let nl = model.line_wave_aa().len();
            if nl > 0 {
                let table = model.line_luminosity_table();
                let lum: Vec<f64> = grids().flat_map(|g| table[g * nl..(g + 1) * nl].iter().copied()).collect();
                tab.add_lines(&lum, n_spec, n_av_young, &mut by_spec);
            }
            tab.to_row_minor(by_spec, nz * nu, nbc, n_av_young)
        } else {
            Vec::new()
        };
        // η = 1: the young (and single-grid nebular) tables folded into the old one
        let folded = range.eta_max == 1.0 && nbc == model.bc_bin + 1 && nb < MAX_FOLDED && n_av_young == n_av_old;
        let (old, young, neb) = if folded {
            let (rp, nu) = (tab.row_stride(), logu.len());
            let fold_neb = nu == 1 && !neb.is_empty();
            let mut out = vec![0.0f32; nz * n_av_old * (nb + 1) * rp];
            for z in 0..nz {
                for a in 0..n_av_old {
                    let dst = |k: usize| ((z * n_av_old + a) * (nb + 1) + k) * rp;
                    for k in 0..nbc {
                        let (src, o) = (((z * n_av_old + a) * nbc + k) * rp, dst(k));
                        out[o..o + rp].copy_from_slice(&young[src..src + rp]);
                        if fold_neb {
                            let nsrc = ((z * n_av_old + a) * nbc + k) * rp;
                            out[o..o + rp].iter_mut().zip(&neb[nsrc..nsrc + rp]).for_each(|(v, n)| *v += n);
                        }
                    }
                    for k in nbc..=nb {
                        let (src, o) = (((z * n_av_old + a) * nb + k - 1) * rp, dst(k));
                        out[o..o + rp].copy_from_slice(&old[src..src + rp]);
                    }
                }
            }
            (out, Vec::new(), if fold_neb { Vec::new() } else { neb })
        } else {
            (old, young, neb)
        };
        Ok(Self {
            folded,
            redshift,
            age_universe_gyr,
            n_bands: model.bands.len(),
            row_stride: tab.row_stride(),
            nb,
            nbc,
            range,
            n_av_old,
            n_av_young,
            old,
            young,
            logu,
            neb,
            dust_band_ujy: tab.dust_band_ujy(),
            simd: cpu_has_avx2_fma(),
        })
    }

    /// The redshift the tables were compiled for.
    pub fn redshift(&self) -> f64 {
        self.redshift
    }

    /// The parameter ranges the tables cover.
    pub fn range(&self) -> CompileRange {
        self.range
    }

    pub fn n_bands(&self) -> usize {
        self.n_bands
    }

    /// Band fluxes (µJy) of galaxy `p` into `flux_ujy`, and the derived quantities: the same
    /// answer as [`SpsModel::photometry_into`] to the tables' accuracy. `p.redshift` must be the
    /// compiled one and its A_V, η and log U inside [`Self::range`].
    pub fn photometry_into(
        &self,
        model: &SpsModel,
        p: &GalaxyParams,
        ws: &mut Workspace,
        flux_ujy: &mut [f64],
    ) -> Result<Derived, SpsError> {
        self.evaluate(model, p, ws, flux_ujy, true).map(|d| d.expect("derived quantities asked for"))
    }

    /// The band fluxes alone (µJy) of galaxy `p` into `flux_ujy` — [`Self::photometry_into`]
    /// without the derived quantities (the history's summary and the living mass), which a
    /// likelihood needs only for the points it keeps.
    pub fn fluxes_into(&self, model: &SpsModel, p: &GalaxyParams, ws: &mut Workspace, flux_ujy: &mut [f64]) -> Result<(), SpsError> {
        self.evaluate(model, p, ws, flux_ujy, false).map(|_| ())
    }

    fn evaluate(
        &self,
        model: &SpsModel,
        p: &GalaxyParams,
        ws: &mut Workspace,
        flux_ujy: &mut [f64],
        derived: bool,
    ) -> Result<Option<Derived>, SpsError> {
        if p.redshift != self.redshift {
            return Err(SpsError::invalid("redshift", p.redshift, format!("the photometry was compiled for z = {}", self.redshift)));
        }
        model.check(p)?;
        let sfh = model.build_sfh(p, self.age_universe_gyr)?;
        model.split_masses(&sfh, ws);
        let zw = model.zmet_weights(p.logzsol);
        let dust = self.fluxes(&ws.mass_young, &ws.mass_old, zw, p.av_mag, p.eta, p.logu, flux_ujy)?;
        let out = derived.then(|| (sfh.summary(), model.living_mass(&ws.mass_young, &ws.mass_old, zw)));
        Ok(out.map(|(summary, mstar)| Derived::new(&summary, mstar, self.age_universe_gyr, dust)))
    }

    /// Position of attenuation `a` on a table of `n` nodes: (node, weight of the next node).
    fn locate(&self, name: &str, a: f64, n: usize) -> Result<(usize, f64), SpsError> {
        let pos = a / AV_STEP_MAG;
        if !(pos >= 0.0 && pos <= (n - 1) as f64 + 1e-6) {
            return Err(SpsError::invalid(name, a, format!("outside the compiled range [0, {}] mag", (n - 1) as f64 * AV_STEP_MAG)));
        }
        let k = (pos as usize).min(n - 2);
        Ok((k, (pos - k as f64).min(1.0)))
    }

    /// Band fluxes (µJy) of the stars formed `young[j]`, `old[j]` (M☉ per model age bin, as
    /// [`SpsModel`] splits them) at metallicity weights `zw`, into `flux_ujy`; returns the
    /// absorbed luminosity (L☉). The fast path of [`Self::photometry_into`].
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn fluxes(
        &self,
        young: &[f64],
        old: &[f64],
        zw: [(usize, f64); 2],
        av_mag: f64,
        eta: f64,
        logu: f64,
        flux_ujy: &mut [f64],
    ) -> Result<f64, SpsError> {
        let (rp, nb, nbc) = (self.row_stride, self.nb, self.nbc);
        let (ko, fo) = self.locate("av_mag", av_mag, self.n_av_old)?;
        let (ky, fy) = self.locate("eta × av_mag", av_mag * eta, self.n_av_young)?;
        let (mut stack, mut heap) = ([0.0f64; 128], Vec::new());
        let (acc_old, acc_young): (&mut [f64], &mut [f64]) = if rp <= 64 {
            let (a, b) = stack.split_at_mut(64);
            (&mut a[..rp], &mut b[..rp])
        } else {
            heap.resize(2 * rp, 0.0);
            heap.split_at_mut(rp)
        };
        // Only the bins up to the oldest populated one contribute.
        let last_young = young[..nbc].iter().rposition(|&m| m > 0.0).map_or(0, |j| j + 1);
        let young_m = &young[..last_young];
        let has_young = last_young > 0;
        // folded: the young bins' masses, then the old ones from the birth-cloud bin on
        let mut cut = [0.0f64; MAX_FOLDED];
        let (old_m, old_bins) = if self.folded {
            if eta != 1.0 {
                return Err(SpsError::invalid("eta", eta, "the photometry was compiled for η = 1"));
            }
            cut[..nbc].copy_from_slice(&young[..nbc]);
            cut[nbc..=nb].copy_from_slice(&old[nbc - 1..nb]);
            let last = cut[..=nb].iter().rposition(|&m| m > 0.0).map_or(0, |j| j + 1);
            (&cut[..last], nb + 1)
        } else {
            let last = old[..nb].iter().rposition(|&m| m > 0.0).map_or(0, |j| j + 1);
            (&old[..last], nb)
        };
        let last_old = old_m.len();
        // log U weights among the kept grids
        let uw = if self.neb.is_empty() || !has_young {
            None
        } else {
            let g = &self.logu;
            if g.len() == 1 {
                Some([(0, 1.0), (0, 0.0)])
            } else {
                if !(logu >= g[0] - 1e-9 && logu <= g[g.len() - 1] + 1e-9) {
                    return Err(SpsError::invalid("logu", logu, format!("outside the compiled range [{}, {}]", g[0], g[g.len() - 1])));
                }
                let iu = g.partition_point(|&u| u < logu).clamp(1, g.len() - 1);
                let w = ((logu - g[iu - 1]) / (g[iu] - g[iu - 1])).clamp(0.0, 1.0);
                Some([(iu - 1, 1.0 - w), (iu, w)])
            }
        };
        // old stars and young stars apart: the absorbed-luminosity row holds L_abs/A, multiplied
        // by each part's own attenuation (A_V, η A_V) at the end
        for &(z, wz) in &zw {
            if wz <= 0.0 {
                continue;
            }
            if last_old > 0 {
                let node = (z * self.n_av_old + ko) * old_bins * rp;
                add_block(self.simd, acc_old, &self.old, (node, node + old_bins * rp), old_m, (wz * (1.0 - fo), wz * fo));
            }
            if has_young {
                if !self.folded {
                    let node = (z * self.n_av_young + ky) * nbc * rp;
                    add_block(self.simd, acc_young, &self.young, (node, node + nbc * rp), young_m, (wz * (1.0 - fy), wz * fy));
                }
                if let Some(uw) = uw {
                    for (u, wu) in uw {
                        if wu > 0.0 {
                            let node = ((z * self.logu.len() + u) * self.n_av_young + ky) * nbc * rp;
                            let w = (wz * wu * (1.0 - fy), wz * wu * fy);
                            add_block(self.simd, acc_young, &self.neb, (node, node + nbc * rp), young_m, w);
                        }
                    }
                }
            }
        }
        let nbd = self.n_bands;
        let dust = acc_old[nbd] * av_mag + acc_young[nbd] * av_mag * eta;
        for (b, out) in flux_ujy.iter_mut().enumerate().take(nbd) {
            *out = acc_old[b] + acc_young[b] + dust * self.dust_band_ujy[b];
        }
        Ok(dust)
    }
}

/// [`add_block_generic`] in AVX2 + FMA intrinsics, chosen at run time where the CPU has them
/// (portable code elsewhere): 4 table values widened to doubles and fused into 4 running sums
/// per instruction, 16 rows at a time held in registers over all the bins, then 4 at a time.
/// Written out because the compiler, given the portable loop, keeps 2-wide registers and does
/// not fuse (it may not without being told); the tables' layout (one bin's rows contiguous)
/// spares the horizontal sum per row that a bin-minor layout needs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn add_block_avx2(acc: &mut [f64], table: &[f32], (node0, node1): (usize, usize), m: &[f64], (w0, w1): (f64, f64)) {
    use std::arch::x86_64::{
        __m256d, _mm_loadu_ps, _mm256_add_pd, _mm256_cvtps_pd, _mm256_fmadd_pd, _mm256_loadu_pd, _mm256_set1_pd, _mm256_setzero_pd,
        _mm256_storeu_pd,
    };
    let rp = acc.len();
    let n = m.len();
    assert!(rp.is_multiple_of(4) && node0 + n * rp <= table.len() && node1 + n * rp <= table.len(), "table block out of range");
    let (t0, t1) = (table[node0..node0 + n * rp].as_ptr(), table[node1..node1 + n * rp].as_ptr());
    let mut r = 0;
    // SAFETY (all the loads and stores below): r + 4·V ≤ rp, j < n, so every read lies in the
    // first n·rp values after node0/node1 (checked above) and every write in acc (rp values).
    while r + 16 <= rp {
        let (mut a, mut b): ([__m256d; 4], [__m256d; 4]) = ([_mm256_setzero_pd(); 4], [_mm256_setzero_pd(); 4]);
        for (j, &mj) in m.iter().enumerate() {
            let (x0, x1) = (_mm256_set1_pd(w0 * mj), _mm256_set1_pd(w1 * mj));
            for v in 0..4 {
                unsafe {
                    let ya = _mm256_cvtps_pd(_mm_loadu_ps(t0.add(j * rp + r + 4 * v)));
                    let yb = _mm256_cvtps_pd(_mm_loadu_ps(t1.add(j * rp + r + 4 * v)));
                    a[v] = _mm256_fmadd_pd(ya, x0, a[v]);
                    b[v] = _mm256_fmadd_pd(yb, x1, b[v]);
                }
            }
        }
        for v in 0..4 {
            unsafe {
                let p = acc.as_mut_ptr().add(r + 4 * v);
                _mm256_storeu_pd(p, _mm256_add_pd(_mm256_loadu_pd(p), _mm256_add_pd(a[v], b[v])));
            }
        }
        r += 16;
    }
    while r + 4 <= rp {
        let (mut a, mut b) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        for (j, &mj) in m.iter().enumerate() {
            unsafe {
                let ya = _mm256_cvtps_pd(_mm_loadu_ps(t0.add(j * rp + r)));
                let yb = _mm256_cvtps_pd(_mm_loadu_ps(t1.add(j * rp + r)));
                a = _mm256_fmadd_pd(ya, _mm256_set1_pd(w0 * mj), a);
                b = _mm256_fmadd_pd(yb, _mm256_set1_pd(w1 * mj), b);
            }
        }
        unsafe {
            let p = acc.as_mut_ptr().add(r);
            _mm256_storeu_pd(p, _mm256_add_pd(_mm256_loadu_pd(p), _mm256_add_pd(a, b)));
        }
        r += 4;
    }
}

#[inline]
fn add_block(simd: bool, acc: &mut [f64], table: &[f32], nodes: (usize, usize), m: &[f64], w: (f64, f64)) {
    #[cfg(target_arch = "x86_64")]
    if simd {
        // SAFETY: `simd` is true only where the CPU reported AVX2 and FMA (CompiledPhotometry::new).
        return unsafe { add_block_avx2(acc, table, nodes, m, w) };
    }
    let _ = simd;
    add_block_generic(acc, table, nodes, m, w)
}

/// acc[r] += Σ_j m[j] · (w0 · table[node0 + j·rp + r] + w1 · table[node1 + j·rp + r]) for the
/// `rp = acc.len()` rows: one A_V node pair's block over the first `m.len()` bins, in the
/// tables' `[bin][row]` layout (contiguous rows, so the sum over rows vectorises).
#[inline(always)]
fn add_block_generic(acc: &mut [f64], table: &[f32], (node0, node1): (usize, usize), m: &[f64], (w0, w1): (f64, f64)) {
    let rp = acc.len();
    let n = m.len();
    let (a, b) = (&table[node0..node0 + n * rp], &table[node1..node1 + n * rp]);
    for (j, &mj) in m.iter().enumerate() {
        let (x0, x1) = (w0 * mj, w1 * mj);
        for ((o, &ya), &yb) in acc.iter_mut().zip(&a[j * rp..(j + 1) * rp]).zip(&b[j * rp..(j + 1) * rp]) {
            *o += ya as f64 * x0 + yb as f64 * x1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table of `n_nodes` blocks of `n_bin` × `rp` values and masses, from a fixed LCG.
    fn case(n_nodes: usize, n_bin: usize, rp: usize, seed: u64) -> (Vec<f32>, Vec<f64>) {
        let mut s = seed;
        let mut next = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let table = (0..n_nodes * n_bin * rp).map(|_| (next() * 10.0) as f32).collect();
        let m = (0..n_bin).map(|_| next() * 1e3).collect();
        (table, m)
    }

    /// Both kernels against the sum written out, for row counts that exercise the 16- and 4-row
    /// paths and bin counts from none to more than a table has at z = 0.
    #[test]
    fn block_sums_match_the_definition() {
        for rp in [4, 12, 16, 20, 36] {
            for n in [0, 1, 3, 10, 34, 43] {
                let (table, m) = case(3, 43, rp, (rp * 100 + n) as u64);
                let (node0, node1) = (43 * rp, 2 * 43 * rp);
                let (w0, w1) = (0.3, 0.7);
                let start: Vec<f64> = (0..rp).map(|r| r as f64).collect();
                let want: Vec<f64> = (0..rp)
                    .map(|r| {
                        start[r]
                            + (0..n)
                                .map(|j| m[j] * (w0 * table[node0 + j * rp + r] as f64 + w1 * table[node1 + j * rp + r] as f64))
                                .sum::<f64>()
                    })
                    .collect();
                for simd in [false, cpu_has_avx2_fma()] {
                    let mut acc = start.clone();
                    add_block(simd, &mut acc, &table, (node0, node1), &m[..n], (w0, w1));
                    for r in 0..rp {
                        assert!(
                            (acc[r] - want[r]).abs() <= 1e-12 * want[r].abs(),
                            "rp {rp}, n {n}, simd {simd}, row {r}: {} vs {}",
                            acc[r],
                            want[r]
                        );
                    }
                }
            }
        }
    }
}
