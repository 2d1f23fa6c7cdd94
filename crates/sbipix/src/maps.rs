//! Maps of physical parameters from images: select pixels, sample their posteriors in batches,
//! reduce to 16/50/84 percentiles, write FITS (input WCS on every HDU), a PNG panel and a
//! summary with the resolved and integrated stellar masses.

use crate::posterior::Posterior;
use crate::{Error, Result};
use sbipix_io::arrays::{
    CardValue, FluxUnit, OutImage, Wcs, parse_unit, pixel_scale_arcsec, read_cube, read_fits_image, read_wcs, write_image_fits,
};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Images of one galaxy in µJy per pixel: flux and 1σ error per band, [band][y][x]; an error
/// that is 0 or NaN marks a pixel without that band.
#[derive(Debug, Clone)]
pub struct ImageSet {
    pub source: String,
    pub bands: Vec<String>,
    pub ny: usize,
    pub nx: usize,
    pub flux: Vec<f64>,
    pub err: Vec<f64>,
    pub wcs: Wcs,
    /// From a `REDSHIFT` header keyword, if any.
    pub redshift: Option<f64>,
}

/// The factor that turns values in `unit` (else the file's `bunit`, else µJy, which is logged)
/// into µJy per pixel; `what` names the file in messages. MJy/sr needs the pixel solid angle.
pub fn unit_factor(unit: Option<&str>, bunit: Option<&str>, pixar_sr: Option<f64>, what: &str, log: &dyn Fn(&str)) -> Result<f64> {
    let Some(name) = unit.or(bunit) else {
        log(&format!("sbipix: {what}: no BUNIT and no --unit: assuming µJy per pixel"));
        return Ok(1.0);
    };
    match parse_unit(name) {
        Some(FluxUnit::Factor(f)) => Ok(f),
        Some(FluxUnit::MJyPerSr) => match pixar_sr {
            Some(sr) => Ok(1e12 * sr),
            None => Err(Error::File { file: what.into(), reason: "unit MJy/sr needs the PIXAR_SR keyword (pixel solid angle)".into() }),
        },
        None => Err(Error::File {
            file: what.into(),
            reason: format!("unknown flux unit `{name}` (uJy, nJy, 10nJy, 10.0*nanoJansky, mJy, Jy, MJy/sr)"),
        }),
    }
}

impl ImageSet {
    /// A FITS cube with FLUX and ERR HDUs (band, y, x) and BAND0… keywords.
    pub fn from_cube(path: &Path, unit: Option<&str>, log: &dyn Fn(&str)) -> Result<Self> {
        let c = read_cube(path)?;
        let k = unit_factor(unit, c.bunit.as_deref(), None, &path.display().to_string(), log)?;
        let wcs = read_wcs(path, "FLUX").unwrap_or_default();
        let redshift = read_key_f64(path, "REDSHIFT");
        Ok(Self {
            source: path.display().to_string(),
            bands: c.bands,
            ny: c.ny,
            nx: c.nx,
            flux: c.flux.iter().map(|v| v * k).collect(),
            err: c.err.iter().map(|v| v * k).collect(),
            wcs,
            redshift,
        })
    }

    /// The sub-image x0..x0+nx, y0..y0+ny (0-based pixels), with CRPIX shifted so the WCS stays
    /// right.
    pub fn crop(&self, x0: usize, y0: usize, nx: usize, ny: usize) -> Result<Self> {
        if nx == 0 || ny == 0 || x0 + nx > self.nx || y0 + ny > self.ny {
            return Err(Error::File {
                file: self.source.clone(),
                reason: format!("cutout x {x0}..{}, y {y0}..{} lies outside the {}×{} image", x0 + nx, y0 + ny, self.nx, self.ny),
            });
        }
        let nb = self.bands.len();
        let mut flux = Vec::with_capacity(nb * nx * ny);
        let mut err = Vec::with_capacity(nb * nx * ny);
        for b in 0..nb {
            for y in y0..y0 + ny {
                let row = b * self.ny * self.nx + y * self.nx;
                flux.extend_from_slice(&self.flux[row + x0..row + x0 + nx]);
                err.extend_from_slice(&self.err[row + x0..row + x0 + nx]);
            }
        }
        let wcs = self
            .wcs
            .iter()
            .map(|(k, v)| match (k.as_str(), v) {
                ("CRPIX1", CardValue::Num(c)) => (k.clone(), CardValue::Num(c - x0 as f64)),
                ("CRPIX2", CardValue::Num(c)) => (k.clone(), CardValue::Num(c - y0 as f64)),
                _ => (k.clone(), v.clone()),
            })
            .collect();
        Ok(Self {
            source: format!("{}[{x0}:{}, {y0}:{}]", self.source, x0 + nx, y0 + ny),
            bands: self.bands.clone(),
            ny,
            nx,
            flux,
            err,
            wcs,
            redshift: self.redshift,
        })
    }

    /// One image per band with σ maps (or inverse-variance maps with `weights`).
    pub fn from_images(
        images: &[std::path::PathBuf],
        errors: &[std::path::PathBuf],
        bands: &[String],
        weights: bool,
        unit: Option<&str>,
        log: &dyn Fn(&str),
    ) -> Result<Self> {
        if images.is_empty() || images.len() != errors.len() || images.len() != bands.len() {
            return Err(Error::File {
                file: "images".into(),
                reason: format!("{} images, {} error maps, {} band names: one of each per band", images.len(), errors.len(), bands.len()),
            });
        }
        let mut flux = Vec::new();
        let mut err = Vec::new();
        let (mut ny, mut nx) = (0, 0);
        let wcs0 = read_wcs(&images[0], "").unwrap_or_default();
        for (b, (ip, ep)) in images.iter().zip(errors).enumerate() {
            let w = read_wcs(ip, "").unwrap_or_default();
            if let Some(k) = wcs_mismatch(&wcs0, &w) {
                return Err(Error::File {
                    file: ip.display().to_string(),
                    reason: format!(
                        "its WCS differs from {}'s ({k}): the images must be on one pixel grid (PSF-matched, aligned)",
                        images[0].display()
                    ),
                });
            }
            let im = read_fits_image(ip, "")?;
            let er = read_fits_image(ep, "")?;
            if b == 0 {
                (ny, nx) = (im.ny, im.nx);
            }
            for (p, what) in [(&im, ip), (&er, ep)] {
                if (p.ny, p.nx) != (ny, nx) {
                    return Err(Error::File {
                        file: what.display().to_string(),
                        reason: format!("{}×{} pixels, the first image has {ny}×{nx}", p.ny, p.nx),
                    });
                }
            }
            let k = unit_factor(unit, im.bunit.as_deref(), im.pixar_sr, &ip.display().to_string(), log)?;
            flux.extend(im.data.iter().map(|v| v * k));
            err.extend(er.data.iter().map(|&v| if weights { if v > 0.0 { k / v.sqrt() } else { 0.0 } } else { v * k }));
        }
        Ok(Self {
            source: images[0].display().to_string(),
            bands: bands.to_vec(),
            ny,
            nx,
            flux,
            err,
            wcs: wcs0,
            redshift: read_key_f64(&images[0], "REDSHIFT"),
        })
    }

    /// One image per band without error maps: σ of each band estimated from an empty-sky cutout
    /// (1.4826 × median absolute deviation of its finite pixels, in the image's units), uniform
    /// over the image (background-limited; the sources' own Poisson noise is not included).
    pub fn from_images_with_background(
        images: &[std::path::PathBuf],
        backgrounds: &[std::path::PathBuf],
        bands: &[String],
        unit: Option<&str>,
        log: &dyn Fn(&str),
    ) -> Result<Self> {
        if images.is_empty() || images.len() != backgrounds.len() || images.len() != bands.len() {
            return Err(Error::File {
                file: "images".into(),
                reason: format!(
                    "{} images, {} background cutouts, {} band names: one of each per band",
                    images.len(),
                    backgrounds.len(),
                    bands.len()
                ),
            });
        }
        let wcs0 = read_wcs(&images[0], "").unwrap_or_default();
        let (mut flux, mut err) = (Vec::new(), Vec::new());
        let (mut ny, mut nx) = (0, 0);
        for (b, (ip, bp)) in images.iter().zip(backgrounds).enumerate() {
            if let Some(k) = wcs_mismatch(&wcs0, &read_wcs(ip, "").unwrap_or_default()) {
                return Err(Error::File {
                    file: ip.display().to_string(),
                    reason: format!("its WCS differs from {}'s ({k})", images[0].display()),
                });
            }
            let im = read_fits_image(ip, "")?;
            let bg = read_fits_image(bp, "")?;
            if b == 0 {
                (ny, nx) = (im.ny, im.nx);
            } else if (im.ny, im.nx) != (ny, nx) {
                return Err(Error::File {
                    file: ip.display().to_string(),
                    reason: format!("{}×{} pixels, the first image has {ny}×{nx}", im.ny, im.nx),
                });
            }
            if unit.is_none() && im.bunit.as_deref().map(parse_unit) != bg.bunit.as_deref().map(parse_unit) {
                // a silent µJy guess for one file against a stated unit for the other would scale
                // the S/N by the ratio of the units
                return Err(Error::File {
                    file: ip.display().to_string(),
                    reason: format!(
                        "BUNIT {} but its background cutout {} has BUNIT {}: give --unit (the unit of both)",
                        im.bunit.as_deref().unwrap_or("(none)"),
                        bp.display(),
                        bg.bunit.as_deref().unwrap_or("(none)")
                    ),
                });
            }
            let k = unit_factor(unit, im.bunit.as_deref(), im.pixar_sr, &ip.display().to_string(), log)?;
            let mut v: Vec<f64> = bg.data.iter().cloned().filter(|x| x.is_finite() && *x != 0.0).collect();
            if v.len() < 100 {
                return Err(Error::File { file: bp.display().to_string(), reason: format!("only {} usable background pixels", v.len()) });
            }
            let med = pct(&mut v, 0.5);
            let mut dev: Vec<f64> = v.iter().map(|x| (x - med).abs()).collect();
            // --unit (which states the unit of every given file), else the cutout's own BUNIT
            let kb = unit_factor(unit, bg.bunit.as_deref(), bg.pixar_sr, &bp.display().to_string(), log)?;
            let sigma = 1.4826 * pct(&mut dev, 0.5) * kb;
            log(&format!("sbipix: {}: σ = {sigma:.3e} µJy per pixel from {} ({} pixels)", bands[b], bp.display(), v.len()));
            flux.extend(im.data.iter().map(|x| x * k));
            err.extend(im.data.iter().map(|x| if x.is_finite() { sigma } else { f64::NAN }));
        }
        Ok(Self {
            source: images[0].display().to_string(),
            bands: bands.to_vec(),
            ny,
            nx,
            flux,
            err,
            wcs: wcs0,
            redshift: read_key_f64(&images[0], "REDSHIFT"),
        })
    }

    /// Checks the data: negative errors are an error naming the band and pixel.
    pub fn check(&self) -> Result<()> {
        let npix = self.ny * self.nx;
        if self.flux.len() != self.bands.len() * npix || self.err.len() != self.flux.len() {
            return Err(Error::File {
                file: self.source.clone(),
                reason: format!("{} bands but {} values for {}×{} pixels", self.bands.len(), self.flux.len(), self.ny, self.nx),
            });
        }
        for (b, band) in self.bands.iter().enumerate() {
            if let Some(p) = (0..npix).find(|&p| self.err[b * npix + p] < 0.0) {
                return Err(Error::File {
                    file: self.source.clone(),
                    reason: format!(
                        "band {band}: negative error {} at pixel (x = {}, y = {})",
                        self.err[b * npix + p],
                        p % self.nx,
                        p / self.nx
                    ),
                });
            }
        }
        Ok(())
    }
}

/// The first WCS keyword whose value differs between two images (numbers to 1e-9 relative).
fn wcs_mismatch(a: &Wcs, b: &Wcs) -> Option<String> {
    for (k, va) in a {
        if let Some((_, vb)) = b.iter().find(|(kb, _)| kb == k) {
            let same = match (va, vb) {
                (CardValue::Num(x), CardValue::Num(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1e-300),
                (CardValue::Text(x), CardValue::Text(y)) => x == y,
                _ => false,
            };
            if !same && k != "DATE-OBS" && k != "MJD-OBS" {
                return Some(k.clone());
            }
        }
    }
    None
}

fn read_key_f64(path: &Path, key: &str) -> Option<f64> {
    let mut f = fitsio::FitsFile::open(path).ok()?;
    let n = f.iter().count();
    for i in 0..n {
        let h = f.hdu(i).ok()?;
        if let Ok(v) = h.read_key::<f64>(&mut f, key) {
            return Some(v);
        }
    }
    None
}

/// Default fractional error floor for integrated photometry (calibration and aperture
/// systematics; the common 5 % of SED-fitting catalogues). It also keeps summed photometry of
/// hundreds of pixels (S/N in the thousands) away from S/N the network never saw.
pub const DEFAULT_ERROR_FLOOR: f64 = 0.05;

/// Options of [`map_galaxy`].
#[derive(Debug, Clone)]
pub struct MapOptions {
    /// Posterior-predictive check: the forward model (bands in the posterior's order) and the
    /// prior the model was trained with, to rebuild the median model of each pixel.
    pub ppc: Option<(std::sync::Arc<sbipix_sps::SpsModel>, sbipix_sim::Prior)>,
    pub redshift: f64,
    pub n_draws: usize,
    /// Pixels with mean f/σ over `snr_bands` above this are fitted.
    pub snr_min: f64,
    pub snr_bands: Vec<String>,
    /// Optional segmentation map [y][x] and the id to keep.
    pub segmentation: Option<(Vec<f64>, f64)>,
    pub seed: u64,
    /// Fractional error floor added in quadrature to the integrated photometry (see
    /// [`sample_integrated`]).
    pub integrated_error_floor: f64,
    /// Likelihood refinement of every pixel's posterior and of the integrated fit
    /// ([`crate::refine`]), with the forward model and prior the model was trained with.
    pub refine: Option<(crate::refine::RefineSettings, std::sync::Arc<sbipix_sps::SpsModel>, sbipix_sim::Prior)>,
}

impl MapOptions {
    pub fn new(redshift: f64) -> Self {
        Self {
            ppc: None,
            redshift,
            n_draws: 500,
            snr_min: 5.0,
            snr_bands: vec!["F277W".into(), "F356W".into(), "F444W".into()],
            segmentation: None,
            seed: 0,
            integrated_error_floor: DEFAULT_ERROR_FLOOR,
            refine: None,
        }
    }
}

/// Resolved vs integrated comparison (the outshining test of SBIPIX).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MapSummary {
    pub source: String,
    pub model: String,
    pub redshift: f64,
    pub n_pixels: usize,
    pub n_pixels_total: usize,
    pub bands_used: Vec<String>,
    pub bands_missing: Vec<String>,
    pub pixel_scale_arcsec: Option<f64>,
    pub pixel_area_kpc2: Option<f64>,
    /// log10 Σ pixel stellar masses: 16/50/84 % over the posterior draws.
    pub log_mstar_resolved: [f64; 3],
    /// log10 M* fitted to the summed photometry of the same pixels: 16/50/84 %.
    pub log_mstar_integrated: [f64; 3],
    /// log10 Σ pixel SFR (100 Myr): 16/50/84 %.
    pub log_sfr_100myr_resolved: [f64; 3],
    pub log_sfr_100myr_integrated: [f64; 3],
    pub seconds: f64,
    pub ms_per_pixel: f64,
    /// Posterior-predictive check (median over 16 posterior draws of the predicted flux of each
    /// pixel): median of (f − f_pred)/σ per band, and the median reduced χ² over pixels.
    pub ppc_median_residual_sigma: Option<std::collections::BTreeMap<String, f64>>,
    pub ppc_median_chi2_reduced: Option<f64>,
    /// Every parameter fitted to the integrated photometry: 16/50/84 %.
    #[serde(default)]
    pub integrated: std::collections::BTreeMap<String, [f64; 3]>,
    /// Intensive parameters (age, metallicity, A_V, …) averaged over the fitted pixels with the
    /// pixels' stellar masses (posterior medians) as weights.
    #[serde(default)]
    pub resolved_mass_weighted: std::collections::BTreeMap<String, f64>,
    /// What the likelihood refinement did, when asked for (`--refine`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refinement: Option<crate::refine::RefineSummary>,
}

/// Maps and summary of one galaxy.
pub struct GalaxyMaps {
    /// Reduced χ² of the posterior-predictive median per pixel (NaN where not fitted or checked).
    pub chi2: Vec<f32>,
    pub params: Vec<String>,
    /// Per parameter: p16, p50, p84 maps [y][x] (NaN where not fitted).
    pub percentiles: Vec<[Vec<f32>; 3]>,
    pub snr: Vec<f32>,
    pub mask: Vec<f32>,
    /// With refinement: 1 where the pixel's posterior is the refined one, 0 where the network's
    /// was kept, NaN where not fitted.
    pub refined: Option<Vec<f32>>,
    pub summary: MapSummary,
}

fn pct(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    sbipix_diagnostics::quantile_sorted(v, q)
}

/// Parameter `n` of a θ vector with parameters `names`, else the prior's fixed value of it.
fn theta_value(names: &[String], theta: &[f64], prior: &sbipix_sim::Prior, n: &str) -> Option<f64> {
    names.iter().position(|x| x == n).map(|j| theta[j]).or_else(|| match prior.get(n) {
        Some(sbipix_sim::ParamPrior::Fixed { value }) => Some(value),
        _ => None,
    })
}

/// The forward-model parameters of a θ vector (posterior medians), for the delayed-τ and
/// dense_basis families; fixed prior parameters (log U, η) from the prior. None if θ lacks the
/// SFH parameters.
pub fn params_from_theta(
    names: &[String],
    theta: &[f64],
    prior: &sbipix_sim::Prior,
    z: f64,
    cosmo: &sbipix_sps::Cosmology,
) -> Option<sbipix_sps::GalaxyParams> {
    use sbipix_sim::SfhPrior;
    use sbipix_sps::{DenseBasisTuple, SfhShape, SfhSpec};
    let get = |n: &str| theta_value(names, theta, prior, n);
    let logm = get("log_mass_formed")?;
    let t_univ = cosmo.age_gyr(z);
    let sfh = match prior.sfh {
        SfhPrior::DelayedTau => SfhSpec::Parametric {
            shape: SfhShape::DelayedTau {
                age_gyr: ((1.0 - get("onset_fraction")?) * t_univ).clamp(1e-5, t_univ),
                tau_gyr: 10f64.powf(get("log_tau_gyr")?),
            },
            log_mass_formed: logm,
        },
        SfhPrior::DenseBasis { n_tx, .. } => {
            let tx: Vec<f64> = (1..=n_tx).map(|i| get(&format!("t{}_frac", (100 * i) / (n_tx + 1)))).collect::<Option<Vec<f64>>>()?;
            let mut tx = tx;
            tx.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
            SfhSpec::DenseBasis(DenseBasisTuple { log_mass_formed: logm, log_sfr: get("log_sfr_inst")?, tx })
        }
    };
    Some(sbipix_sps::GalaxyParams {
        redshift: z,
        sfh,
        logzsol: get("logzsol")?,
        av_mag: get("av_mag")?,
        eta: get("eta").unwrap_or(1.0),
        logu: get("logu").unwrap_or(-2.0),
    })
}

/// Delayed-τ histories at one redshift, tabulated for the inverse problem of the
/// posterior-predictive check when a model infers the physical quantities — log M*, log SFR₁₀₀,
/// mass-weighted age (`sbipix train --params`, the default model) — rather than the history's own
/// τ and onset: the check needs *a* history with that mass-weighted age and specific SFR.
///
/// Written here rather than with a root finder crate: the map (age, τ) → (age_mw, sSFR) is cheap
/// in closed form, not injective where the SFR is floored, and flow draws may lie slightly off the
/// reachable set, so a least-squares search over a table is the
/// robust choice (then Gauss–Newton from the nearest table entry); it returns the nearest
/// reachable history in (log age_mw, log sSFR).
///
/// Accuracy (tests/ppc_physical.rs): the forward-model photometry of the history found agrees
/// with that of the galaxy whose quantities were given within 1.7 % in every band for ages
/// ≥ 300 Myr. Younger histories lie mostly inside the 100 Myr window of SFR₁₀₀, so age_mw and
/// sSFR₁₀₀ pin them less well and the check is approximate there (measured: 25 % in F090W at the
/// Lyman break of a 170 Myr old galaxy at z = 6.5; other bands closer).
pub struct DelayedTauInverse {
    t_univ: f64,
    log_age: (f64, f64),
    log_tau: (f64, f64),
    /// (log age, log τ, log age_mw, log sSFR per formed mass) on the grid
    table: Vec<[f64; 4]>,
}

impl DelayedTauInverse {
    const GRID: usize = 81;
    const STARTS: usize = 4;

    /// Table at the age of the universe `t_univ` (Gyr), τ within 10^log_tau (Gyr).
    pub fn new(t_univ: f64, log_tau: (f64, f64)) -> Self {
        let log_age = ((1e-4f64).min(0.5 * t_univ).log10(), t_univ.log10());
        let mut inv = Self { t_univ, log_age, log_tau, table: Vec::with_capacity(Self::GRID * Self::GRID) };
        let step = |r: (f64, f64), i: usize| r.0 + (r.1 - r.0) * i as f64 / (Self::GRID - 1) as f64;
        for i in 0..Self::GRID {
            for j in 0..Self::GRID {
                let (la, lt) = (step(log_age, i), step(log_tau, j));
                if let Some((m, s)) = inv.eval(la, lt) {
                    inv.table.push([la, lt, m, s]);
                }
            }
        }
        inv
    }

    /// (log10 mass-weighted age in Gyr, log10 sSFR₁₀₀ per formed mass floored as in the prior).
    fn eval(&self, log_age: f64, log_tau: f64) -> Option<(f64, f64)> {
        use sbipix_sps::{Sfh, SfhShape};
        let age = 10f64.powf(log_age).min(self.t_univ);
        let sm = Sfh::new(SfhShape::DelayedTau { age_gyr: age, tau_gyr: 10f64.powf(log_tau) }, 0.0, self.t_univ).ok()?.summary();
        Some((sm.mass_weighted_age_gyr.max(1e-9).log10(), sm.sfr_100myr.max(1e-300).log10().max(sbipix_sim::prior::LOG_SSFR_FLOOR)))
    }

    /// (age, τ) in Gyr of the history nearest to mass-weighted age `mwa_gyr` and
    /// log10 sSFR₁₀₀ per formed mass `log_ssfr` (yr⁻¹); None if nothing is reachable.
    pub fn solve(&self, mwa_gyr: f64, log_ssfr: f64) -> Option<(f64, f64)> {
        let target = (mwa_gyr.max(1e-9).log10(), log_ssfr.max(sbipix_sim::prior::LOG_SSFR_FLOOR));
        let cost = |m: f64, s: f64| (m - target.0).powi(2) + (s - target.1).powi(2);
        // Gauss–Newton from the few nearest table entries (the valley is narrow where the SFR
        // declines exponentially, so one start can end on the boundary); the best end wins
        let mut best = [(f64::INFINITY, 0usize); Self::STARTS];
        for (i, e) in self.table.iter().enumerate() {
            let c = cost(e[2], e[3]);
            if c < best[Self::STARTS - 1].0 {
                let mut k = Self::STARTS - 1;
                while k > 0 && best[k - 1].0 > c {
                    best[k] = best[k - 1];
                    k -= 1;
                }
                best[k] = (c, i);
            }
        }
        let (mut la, mut lt, mut c) = (f64::NAN, f64::NAN, f64::INFINITY);
        for &(c0, i) in best.iter().filter(|b| b.0.is_finite()) {
            let e = &self.table[i];
            let (a, t, ce) = self.descend(e[0], e[1], target);
            if ce < c {
                (la, lt, c) = (a, t, ce);
            }
            if c < 1e-12 || c0 > 100.0 * c.max(1e-12) {
                break; // converged, or the remaining starts are much worse than the best end
            }
        }
        c.is_finite().then(|| (10f64.powf(la).min(self.t_univ), 10f64.powf(lt)))
    }

    /// Gauss–Newton on the two residuals from (log age, log τ): numerical Jacobian,
    /// the step halved until the cost falls; returns the end point and its cost.
    fn descend(&self, la: f64, lt: f64, target: (f64, f64)) -> (f64, f64, f64) {
        let cost = |m: f64, s: f64| (m - target.0).powi(2) + (s - target.1).powi(2);
        let Some(r) = self.eval(la, lt) else { return (la, lt, f64::INFINITY) };
        let (mut la, mut lt, mut c) = (la, lt, cost(r.0, r.1));
        let clamp = |a: f64, t: f64| (a.clamp(self.log_age.0, self.log_age.1), t.clamp(self.log_tau.0, self.log_tau.1));
        for _ in 0..16 {
            if c < 1e-14 {
                break;
            }
            let Some(r0) = self.eval(la, lt) else { break };
            let h = 1e-5;
            let (Some(pa), Some(pt)) = (self.eval(la + h, lt), self.eval(la, lt + h)) else { break };
            let (r1, r2) = (r0.0 - target.0, r0.1 - target.1);
            let (j11, j12, j21, j22) = ((pa.0 - r0.0) / h, (pt.0 - r0.0) / h, (pa.1 - r0.1) / h, (pt.1 - r0.1) / h);
            // least-squares step (JᵀJ + λI) δ = −Jᵀr, λ tiny: well defined where J is singular
            let (a11, a12, a22) = (j11 * j11 + j21 * j21 + 1e-9, j11 * j12 + j21 * j22, j12 * j12 + j22 * j22 + 1e-9);
            let (g1, g2) = (j11 * r1 + j21 * r2, j12 * r1 + j22 * r2);
            let det = a11 * a22 - a12 * a12;
            if !(det.is_finite() && det.abs() > 1e-300) {
                break;
            }
            let (mut da, mut dt) = (-(a22 * g1 - a12 * g2) / det, -(a11 * g2 - a12 * g1) / det);
            let mut improved = false;
            for _ in 0..20 {
                let (na, nt) = clamp(la + da, lt + dt);
                if let Some((m, s)) = self.eval(na, nt) {
                    let nc = cost(m, s);
                    if nc < c {
                        (la, lt, c, improved) = (na, nt, nc, true);
                        break;
                    }
                }
                da *= 0.5;
                dt *= 0.5;
            }
            if !improved {
                break;
            }
        }
        (la, lt, c)
    }
}

/// Model photometry (into `flux`, µJy) of a θ that gives the physical quantities log M*,
/// log SFR₁₀₀ and the mass-weighted age instead of the delayed-τ history's own parameters: the
/// history comes from [`DelayedTauInverse`], and the photometry is scaled to log M*. The specific
/// SFR per *formed* mass needs the surviving fraction M*/M_formed, which only the forward model
/// gives: `guess` (log10 of it; carried from draw to draw of a pixel, whose fractions are alike)
/// is used and updated, and the history is solved again while it moves by more than 0.01 dex.
fn physical_photometry(
    fwd: &sbipix_sps::SpsModel,
    inv: &DelayedTauInverse,
    g: &dyn Fn(&str) -> Option<f64>,
    z: f64,
    guess: &mut f64,
    ws: &mut sbipix_sps::Workspace,
    flux: &mut [f64],
) -> Option<()> {
    use sbipix_sps::{SfhShape, SfhSpec};
    let (lm, ls, mwa) = (g("log_mstar")?, g("log_sfr_100myr")?, g("mass_weighted_age_gyr")?);
    let (logzsol, av_mag, eta, logu) = (g("logzsol")?, g("av_mag")?, g("eta").unwrap_or(1.0), g("logu").unwrap_or(-2.0));
    for _ in 0..4 {
        let (age, tau) = inv.solve(mwa, ls - lm + *guess)?;
        let gp = sbipix_sps::GalaxyParams {
            redshift: z,
            sfh: SfhSpec::Parametric { shape: SfhShape::DelayedTau { age_gyr: age, tau_gyr: tau }, log_mass_formed: 0.0 },
            logzsol,
            av_mag,
            eta,
            logu,
        };
        let got = fwd.photometry_into(&gp, ws, flux).ok()?.log_mstar;
        let moved = (got - *guess).abs();
        *guess = got;
        if moved < 0.01 {
            break;
        }
    }
    let scale = 10f64.powf(lm - *guess);
    flux.iter_mut().for_each(|f| *f *= scale);
    Some(())
}

/// The forward model (bands in the posterior's order) and prior a model folder was trained with,
/// for the posterior-predictive check of [`MapOptions::ppc`].
pub fn ppc_model(
    store: &sbipix_io::DataStore,
    post: &Posterior,
    log: &dyn Fn(&str),
) -> Result<(std::sync::Arc<sbipix_sps::SpsModel>, sbipix_sim::Prior)> {
    let read = |name: &str| -> Result<String> {
        let p = post.dir.join(name);
        std::fs::read_to_string(&p).map_err(|e| Error::File { file: p.display().to_string(), reason: e.to_string() })
    };
    let prior = sbipix_sim::Prior::from_toml_str(&read("prior.toml")?, &post.dir.join("prior.toml").display().to_string())?;
    let survey = sbipix_sim::Survey::from_toml_str(&read("survey.toml")?, &post.dir.join("survey.toml").display().to_string())?;
    let fwd = crate::training_set::model_for_survey(store, &survey, &post.dir, post.manifest.forward_model.clone(), log)?;
    if fwd.band_names() != post.manifest.bands {
        return Err(Error::File {
            file: post.dir.display().to_string(),
            reason: format!("survey.toml gives bands {:?}, the model {:?}", fwd.band_names(), post.manifest.bands),
        });
    }
    Ok((std::sync::Arc::new(fwd), prior))
}

/// A segmentation map for [`MapOptions::segmentation`]: read from `path` (its first image),
/// cut to `cutout` (x0, y0, nx, ny) when the images are a cutout of a larger field, and checked to
/// have the images' shape (ny, nx) and a pixel with `id`.
pub fn read_segmentation(path: &Path, id: f64, cutout: Option<(usize, usize, usize, usize)>, ny: usize, nx: usize) -> Result<Vec<f64>> {
    let file = path.display().to_string();
    let s = sbipix_io::arrays::read_fits_image(path, "")?;
    let data = match cutout {
        Some((x0, y0, cnx, cny)) => {
            if x0 + cnx > s.nx || y0 + cny > s.ny {
                return Err(Error::File {
                    file,
                    reason: format!(
                        "the cutout x {x0}..{}, y {y0}..{} lies outside the {}×{} segmentation map",
                        x0 + cnx,
                        y0 + cny,
                        s.nx,
                        s.ny
                    ),
                });
            }
            (y0..y0 + cny).flat_map(|y| s.data[y * s.nx + x0..y * s.nx + x0 + cnx].to_vec()).collect()
        }
        None => s.data,
    };
    let (sny, snx) = cutout.map_or((s.ny, s.nx), |c| (c.3, c.2));
    if (sny, snx) != (ny, nx) {
        return Err(Error::File { file, reason: format!("segmentation map is {sny}×{snx}, the images {ny}×{nx}") });
    }
    if !data.contains(&id) {
        return Err(Error::File { file, reason: format!("segmentation map has no pixel with id {id}") });
    }
    Ok(data)
}

/// [`ppc_model`] from the data store, or None with a warning logged: the check is a convenience,
/// and without the stellar-population data the maps are still made.
pub fn ppc_model_or_warn(post: &Posterior, log: &dyn Fn(&str)) -> Option<(std::sync::Arc<sbipix_sps::SpsModel>, sbipix_sim::Prior)> {
    match sbipix_io::DataStore::from_env().map_err(Error::from).and_then(|store| ppc_model(&store, post, log)) {
        Ok(p) => Some(p),
        Err(e) => {
            log(&format!("sbipix: warning: no posterior-predictive check ({e}); results are made without it"));
            None
        }
    }
}

/// Parameters that scale with the amount of stars (log masses and SFRs).
pub fn is_extensive(name: &str) -> bool {
    name.starts_with("log_mstar") || name.starts_with("log_mass_formed") || name.starts_with("log_sfr")
}

/// Replicas of each object's photometry with added noise in [`sample_integrated`]: the posterior
/// is the mixture over these noise realisations.
pub const INTEGRATED_REPLICAS: usize = 8;

/// Posterior draws for integrated photometry (whole galaxies, or the sum of a galaxy's pixels):
/// flux and σ [objects × bands] in µJy in the model's band order, `measured` likewise; returns
/// [objects × n × parameters]. `error_floor` (e.g. 0.05) is added in quadrature as a fraction of
/// the flux before fitting.
///
/// The network was trained on single pixels with the survey's noise: integrated photometry is
/// brighter, has larger errors and another error pattern across bands. Two facts make it usable:
/// 1. Flux scales linearly with mass at fixed SFH shape, dust, metallicity and redshift, so an
///    object can be fitted as a pixel k times fainter (f/k) and log10 k added to the extensive
///    parameters (masses, SFRs) afterwards.
/// 2. A measurement can always be made *noisier*: adding Gaussian noise of variance
///    σ_t² − (σ/k)² to f/k gives an exact measurement of the true f/k with error σ_t.
///
/// The network reads σ as well as f (in the training noise model σ² = σ_bg² + a·f, so σ carries
/// information about the flux; measured: fixing σ at the median background for simulated pixels
/// biases log M* by −0.3 to −0.6 dex). So each band is mapped onto the σ the survey gives a
/// median-depth pixel of that flux, σ_t² = σ_bg,50² + a·f/k: per band, k_b solves
/// (σ_b/k)² = σ_bg,50² + a_b f_b/k, and k = max k_b makes σ_b/k ≤ σ_t in every band; the bands
/// with smaller errors get the difference as added noise. The result is photometry the network
/// saw in training, at the price of some information (the posterior can only widen). The added
/// noise is random (seeded); the draws are spread over [`INTEGRATED_REPLICAS`] realisations so
/// one unlucky draw does not decide the answer. Without a survey model (old model folders) σ_t
/// is the encoding scale and a = 0.
#[allow(clippy::too_many_arguments)]
pub fn sample_integrated(
    post: &Posterior,
    flux: &[f64],
    sigma: &[f64],
    measured: &[bool],
    redshift: &[f64],
    n: usize,
    seed: u64,
    error_floor: f64,
) -> Result<Vec<f32>> {
    let nb = post.manifest.bands.len();
    let no = redshift.len();
    if flux.len() != no * nb || sigma.len() != no * nb || measured.len() != no * nb {
        return Err(Error::File { file: post.dir.display().to_string(), reason: format!("photometry must be {no} objects × {nb} bands") });
    }
    if !(error_floor.is_finite() && error_floor >= 0.0) {
        return Err(Error::File { file: post.dir.display().to_string(), reason: format!("error floor {error_floor} must be ≥ 0") });
    }
    // checked here, per object (the network sees replicas of each)
    let zmax = post.manifest.max_redshift_trained;
    if let Some(i) = redshift.iter().position(|z| !(z.is_finite() && *z >= 0.0 && *z <= zmax)) {
        return Err(Error::File {
            file: post.dir.display().to_string(),
            reason: format!("object {i}: redshift {} is outside the trained range [0, {zmax}]", redshift[i]),
        });
    }
    let scales = &post.manifest.encoding.scale_ujy;
    // per band: (median σ_bg, Poisson coefficient)
    let noise: Vec<(f64, f64)> = match &post.survey {
        Some(s) => {
            s.bands.iter().map(|b| (sbipix_sim::survey::quantile_at(&b.sigma_bg_quantiles_ujy, 0.5), b.poisson_ujy.max(0.0))).collect()
        }
        None => scales.iter().map(|s| (*s, 0.0)).collect(),
    };
    let reps = INTEGRATED_REPLICAS.min(n).max(1);
    let per = n.div_ceil(reps);
    let rows = no * reps;
    let (mut fs, mut ss, mut ms, mut zs) = (vec![f64::NAN; rows * nb], vec![f64::NAN; rows * nb], vec![false; rows * nb], vec![0.0; rows]);
    let mut ks = Vec::with_capacity(no);
    for o in 0..no {
        let usable = |b: usize| {
            let i = o * nb + b;
            measured[i] && flux[i].is_finite() && sigma[i].is_finite() && sigma[i] > 0.0
        };
        let sig = |b: usize| {
            let i = o * nb + b;
            (sigma[i] * sigma[i] + (error_floor * flux[i]).powi(2)).sqrt()
        };
        let mut k: f64 = 0.0;
        for b in (0..nb).filter(|&b| usable(b)) {
            let (s, f) = (sig(b), flux[o * nb + b]);
            let (s50, a) = noise[b];
            let af = a * f.max(0.0);
            let u = (af + (af * af + 4.0 * s * s * s50 * s50).sqrt()) / (2.0 * s * s);
            if u.is_finite() && u > 0.0 {
                k = k.max(1.0 / u);
            }
        }
        if !(k.is_finite() && k > 0.0) {
            k = 1.0;
        }
        ks.push(k);
        for r in 0..reps {
            let row = o * reps + r;
            zs[row] = redshift[o];
            // a small counter-based generator: reproducible for (seed, object, replica, band)
            let mut state = seed ^ 0x5EED_1D00_u64.wrapping_mul(o as u64 + 1) ^ ((r as u64) << 48);
            let mut uniform = || {
                state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut x = state;
                x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                x ^= x >> 31;
                ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64
            };
            for b in 0..nb {
                // one pair of uniforms per band whether used or not, so streams do not shift
                let (u1, u2) = (uniform(), uniform());
                if !usable(b) {
                    continue;
                }
                let i = row * nb + b;
                let fk = flux[o * nb + b] / k;
                let sk = sig(b) / k;
                let (s50, a) = noise[b];
                let target = (s50 * s50 + a * fk.max(0.0)).sqrt().max(sk);
                let extra = (target * target - sk * sk).max(0.0).sqrt();
                let g = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                fs[i] = fk + extra * g;
                ss[i] = target;
                ms[i] = true;
            }
        }
    }
    let raw = post.sample(&fs, &ss, &ms, &zs, per, seed)?;
    let np = post.parameter_names().len();
    // [objects × reps × per × np] → the first n of each object's reps·per draws
    let mut draws = Vec::with_capacity(no * n * np);
    for o in 0..no {
        let start = o * reps * per * np;
        draws.extend_from_slice(&raw[start..start + n * np]);
    }
    let names = post.parameter_names();
    let np = names.len();
    for (j, name) in names.iter().enumerate() {
        if is_extensive(name) {
            for (o, k) in ks.iter().enumerate() {
                let shift = k.log10() as f32;
                for d in 0..n {
                    draws[(o * n + d) * np + j] += shift;
                }
            }
        }
    }
    Ok(draws)
}

/// Posterior draws pushed back through the forward model: per object, the per-band median of the
/// predicted fluxes (µJy, the forward model's band order) of `PPC_DRAWS` of its draws (NaN where no
/// draw could be modelled). `draws` is [objects × nd × parameters]. (The marginal medians combined
/// into one θ are not a model on the posterior's degeneracy ridges — age–dust–metallicity — so
/// they would report misfits that are not there.)
pub fn ppc_predict(
    fwd: &sbipix_sps::SpsModel,
    prior: &sbipix_sim::Prior,
    names: &[String],
    draws: &[f32],
    nd: usize,
    redshift: &[f64],
) -> Vec<Vec<f64>> {
    use rayon::prelude::*;
    const PPC_DRAWS: usize = 16;
    let kd = PPC_DRAWS.min(nd);
    let np = names.len();
    let nb = fwd.n_bands();
    let cosmo = fwd.config().cosmology;
    // θ of the physical quantities (no log_mass_formed): histories found by inversion, one table per redshift
    let physical = matches!(prior.sfh, sbipix_sim::SfhPrior::DelayedTau)
        && !names.iter().any(|n| n == "log_mass_formed")
        && ["log_mstar", "log_sfr_100myr", "mass_weighted_age_gyr"].iter().all(|p| names.iter().any(|n| n == p));
    let inverses: std::collections::HashMap<u64, DelayedTauInverse> = if physical {
        let log_tau = match prior.get("log_tau_gyr") {
            Some(sbipix_sim::ParamPrior::Uniform { min, max }) => (min, max),
            _ => (-2.0, 2.0),
        };
        let mut zs: Vec<f64> = redshift.to_vec();
        zs.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        zs.dedup();
        zs.into_par_iter()
            .filter(|z| z.is_finite() && *z >= 0.0)
            .map(|z| (z.to_bits(), DelayedTauInverse::new(cosmo.age_gyr(z), log_tau)))
            .collect()
    } else {
        Default::default()
    };
    (0..redshift.len())
        .into_par_iter()
        .map_init(
            || (sbipix_sps::Workspace::default(), vec![0.0; nb]),
            |(ws, fm), i| {
                let mut per_band: Vec<Vec<f64>> = vec![Vec::with_capacity(kd); nb];
                // physical θ: log10 M*/M_formed, carried from draw to draw
                let mut log_frac = -0.15;
                for k in 0..kd {
                    // draws spread over the sample (they are independent; spacing is just tidy)
                    let d = k * nd / kd;
                    let theta: Vec<f64> = (0..np).map(|j| draws[(i * nd + d) * np + j] as f64).collect();
                    let ok = if physical {
                        let g = |n: &str| theta_value(names, &theta, prior, n);
                        inverses
                            .get(&redshift[i].to_bits())
                            .and_then(|inv| physical_photometry(fwd, inv, &g, redshift[i], &mut log_frac, ws, fm))
                            .is_some()
                    } else {
                        let Some(gp) = params_from_theta(names, &theta, prior, redshift[i], &cosmo) else { continue };
                        fwd.photometry_into(&gp, ws, fm).is_ok()
                    };
                    if ok {
                        for j in 0..nb {
                            per_band[j].push(fm[j]);
                        }
                    }
                }
                per_band.iter_mut().map(|v| if v.is_empty() { f64::NAN } else { pct(v, 0.5) }).collect()
            },
        )
        .collect()
}

/// Fits every selected pixel and the integrated photometry.
pub fn map_galaxy(post: &Posterior, img: &ImageSet, opts: &MapOptions, log: &dyn Fn(&str)) -> Result<GalaxyMaps> {
    map_galaxy_with_progress(post, img, opts, log, &|_, _| {})
}

/// [`map_galaxy`] reporting (pixels done, pixels selected) as sampling progresses.
pub fn map_galaxy_with_progress(
    post: &Posterior,
    img: &ImageSet,
    opts: &MapOptions,
    log: &dyn Fn(&str),
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<GalaxyMaps> {
    let t0 = std::time::Instant::now();
    img.check()?;
    let model_bands = &post.manifest.bands;
    let (ny, nx) = (img.ny, img.nx);
    let npix = ny * nx;
    // model band → image band
    let map: Vec<Option<usize>> = model_bands.iter().map(|b| img.bands.iter().position(|x| x == b)).collect();
    for b in &img.bands {
        if !model_bands.contains(b) {
            log(&format!("sbipix: band {b} of {} is not used by the model (it knows {})", img.source, model_bands.join(" ")));
        }
    }
    // a band counts as present if any pixel has a usable error for it
    let has_data = |b: usize| (0..npix).any(|p| img.err[b * npix + p].is_finite() && img.err[b * npix + p] > 0.0);
    let present: Vec<bool> = map.iter().map(|m| m.is_some_and(has_data)).collect();
    let bands_missing: Vec<String> = model_bands.iter().zip(&present).filter(|(_, p)| !**p).map(|(b, _)| b.clone()).collect();
    let bands_used: Vec<String> = model_bands.iter().zip(&present).filter(|(_, p)| **p).map(|(b, _)| b.clone()).collect();
    if bands_used.is_empty() {
        return Err(Error::File {
            file: img.source.clone(),
            reason: format!("none of its bands ({}) is known to the model", img.bands.join(" ")),
        });
    }
    let snr_idx: Vec<usize> = opts.snr_bands.iter().filter_map(|b| img.bands.iter().position(|x| x == b)).collect();
    let snr_idx = if snr_idx.is_empty() {
        log(&format!("sbipix: none of the S/N bands ({}) is present; using all bands", opts.snr_bands.join(" ")));
        (0..img.bands.len()).collect()
    } else {
        snr_idx
    };
    if let Some((seg, _)) = &opts.segmentation
        && seg.len() != npix
    {
        return Err(Error::File { file: "segmentation".into(), reason: format!("{} pixels, the images have {ny}×{nx}", seg.len()) });
    }
    // S/N and selection
    let good = |b: usize, p: usize| img.err[b * npix + p].is_finite() && img.err[b * npix + p] > 0.0 && img.flux[b * npix + p].is_finite();
    let mut snr = vec![f32::NAN; npix];
    let mut selected = Vec::new();
    for p in 0..npix {
        let v: Vec<f64> = snr_idx.iter().filter(|&&b| good(b, p)).map(|&b| img.flux[b * npix + p] / img.err[b * npix + p]).collect();
        if v.is_empty() {
            continue;
        }
        let s = v.iter().sum::<f64>() / v.len() as f64;
        snr[p] = s as f32;
        let in_seg = opts.segmentation.as_ref().is_none_or(|(seg, id)| seg[p] == *id);
        if s > opts.snr_min && in_seg {
            selected.push(p);
        }
    }
    let nsel = selected.len();
    let nb = model_bands.len();
    if nsel == 0 {
        return Err(Error::File {
            file: img.source.clone(),
            reason: format!("no pixel has S/N > {} in {}", opts.snr_min, opts.snr_bands.join("+")),
        });
    }
    log(&format!("sbipix: {nsel} of {npix} pixels selected (S/N > {}); sampling {} draws each", opts.snr_min, opts.n_draws));
    let mut flux = vec![f64::NAN; nsel * nb];
    let mut sig = vec![f64::NAN; nsel * nb];
    let mut seen = vec![false; nsel * nb];
    for (i, &p) in selected.iter().enumerate() {
        for (j, m) in map.iter().enumerate() {
            if let Some(b) = *m
                && good(b, p)
            {
                flux[i * nb + j] = img.flux[b * npix + p];
                sig[i * nb + j] = img.err[b * npix + p];
                seen[i * nb + j] = true;
            }
        }
    }
    // integrated photometry: sums over the selected pixels, σ in quadrature; a band is kept only
    // if every selected pixel has it
    let mut iflux = vec![0.0; nb];
    let mut isig = vec![0.0; nb];
    let mut iseen = vec![true; nb];
    for j in 0..nb {
        for i in 0..nsel {
            if seen[i * nb + j] {
                iflux[j] += flux[i * nb + j];
                isig[j] += sig[i * nb + j].powi(2);
            } else {
                iseen[j] = false;
            }
        }
        isig[j] = isig[j].sqrt();
    }
    let zs = vec![opts.redshift; nsel];
    // all pixels in parallel, in chunks so that long maps report progress
    let mut draws = Vec::with_capacity(nsel * opts.n_draws * post.parameter_names().len());
    let chunk = 4096;
    for start in (0..nsel).step_by(chunk) {
        let end = (start + chunk).min(nsel);
        let part = post.sample_from(
            &flux[start * nb..end * nb],
            &sig[start * nb..end * nb],
            &seen[start * nb..end * nb],
            &zs[start..end],
            opts.n_draws,
            opts.seed,
            start,
        )?;
        draws.extend(part);
        progress(end, nsel);
    }
    let mut idraws = sample_integrated(
        post,
        &iflux,
        &isig,
        &iseen,
        &[opts.redshift],
        opts.n_draws.max(2000),
        opts.seed ^ 0x1D,
        opts.integrated_error_floor,
    )?;
    let names = post.parameter_names();
    let (mut refinement, mut refined) = (None, None);
    if let Some((settings, fwd, prior)) = &opts.refine {
        log(&format!("sbipix: refining the {nsel} pixel posteriors with the forward model's likelihood…"));
        let t1 = std::time::Instant::now();
        let outcomes =
            crate::refine::refine_all(fwd, prior, &flux, &sig, &seen, &zs, &names, &mut draws, *settings, opts.seed ^ 0x0EF1, &|k| {
                progress(k, nsel)
            })?;
        let mut layer = vec![f32::NAN; npix];
        for (o, &p) in outcomes.iter().zip(&selected) {
            layer[p] = if o.refined { 1.0 } else { 0.0 };
        }
        refined = Some(layer);
        // the integrated photometry: its own σ with the integrated error floor
        let isettings = crate::refine::RefineSettings { sys_frac: settings.sys_frac.max(opts.integrated_error_floor), ..*settings };
        crate::refine::refine_all(
            fwd,
            prior,
            &iflux,
            &isig,
            &iseen,
            &[opts.redshift],
            &names,
            &mut idraws,
            isettings,
            opts.seed ^ 0x1E,
            &|_| {},
        )?;
        let summary = crate::refine::RefineSummary::of(&outcomes, *settings, t1.elapsed().as_secs_f64());
        log(&format!(
            "sbipix: refined {:.1} % of the pixels ({:.1} % by the exact SMC), {:.0} likelihood evaluations per pixel, {:.0} s",
            100.0 * summary.refined_fraction,
            100.0 * summary.exact_smc_fraction,
            summary.evaluations_per_pixel,
            summary.seconds
        ));
        refinement = Some(summary);
    }
    let np = names.len();
    let nd = opts.n_draws;
    let mut percentiles: Vec<[Vec<f32>; 3]> = (0..np).map(|_| [vec![f32::NAN; npix], vec![f32::NAN; npix], vec![f32::NAN; npix]]).collect();
    let mut buf = vec![0.0; nd];
    for (i, &p) in selected.iter().enumerate() {
        for j in 0..np {
            for k in 0..nd {
                buf[k] = draws[(i * nd + k) * np + j] as f64;
            }
            buf.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
            for (q, level) in [0.16, 0.5, 0.84].iter().enumerate() {
                percentiles[j][q][p] = sbipix_diagnostics::quantile_sorted(&buf, *level) as f32;
            }
        }
    }
    let mut mask = vec![0f32; npix];
    for &p in &selected {
        mask[p] = 1.0;
    }
    // resolved sums per draw index, integrated percentiles
    let sum_of = |name: &str| -> Option<[f64; 3]> {
        let j = names.iter().position(|n| n == name)?;
        let mut tot: Vec<f64> =
            (0..nd).map(|k| (0..nsel).map(|i| 10f64.powf(draws[(i * nd + k) * np + j] as f64)).sum::<f64>().log10()).collect();
        Some([pct(&mut tot, 0.16), pct(&mut tot, 0.5), pct(&mut tot, 0.84)])
    };
    let int_of = |name: &str| -> Option<[f64; 3]> {
        let j = names.iter().position(|n| n == name)?;
        let ndi = opts.n_draws.max(2000);
        let mut v: Vec<f64> = (0..ndi).map(|k| idraws[k * np + j] as f64).collect();
        Some([pct(&mut v, 0.16), pct(&mut v, 0.5), pct(&mut v, 0.84)])
    };
    let nan3 = [f64::NAN; 3];
    let mut resolved_mass_weighted = std::collections::BTreeMap::new();
    if let Some(jm) = names.iter().position(|n| n == "log_mstar") {
        let w: Vec<f64> = selected.iter().map(|&p| 10f64.powf(percentiles[jm][1][p] as f64)).collect();
        let wsum: f64 = w.iter().sum();
        for (j, n) in names.iter().enumerate() {
            if !is_extensive(n) && wsum > 0.0 {
                let v: f64 = selected.iter().zip(&w).map(|(&p, w)| w * percentiles[j][1][p] as f64).sum::<f64>() / wsum;
                resolved_mass_weighted.insert(n.clone(), v);
            }
        }
    }
    let scale = pixel_scale_arcsec(&img.wcs);
    let area = scale.map(|s| {
        let c = post.manifest.forward_model.cosmology;
        let da_kpc = c.comoving_distance_mpc(opts.redshift) / (1.0 + opts.redshift) * 1e3;
        let kpc_per_arcsec = da_kpc * std::f64::consts::PI / (180.0 * 3600.0);
        (s * kpc_per_arcsec).powi(2)
    });
    // Posterior-predictive check (see ppc_predict): the median prediction against the data.
    let mut chi2 = vec![f32::NAN; npix];
    let mut ppc_res: Option<std::collections::BTreeMap<String, f64>> = None;
    let mut ppc_chi2 = None;
    if let Some((fwd, prior)) = &opts.ppc {
        let pred = ppc_predict(fwd, prior, &names, &draws, nd, &vec![opts.redshift; selected.len()]);
        let mut res_b: Vec<Vec<f64>> = vec![Vec::new(); nb];
        let mut chis = Vec::new();
        for (i, &p) in selected.iter().enumerate() {
            let (mut c, mut k) = (0.0, 0);
            for j in 0..nb {
                if seen[i * nb + j] && pred[i][j].is_finite() {
                    let r = (flux[i * nb + j] - pred[i][j]) / sig[i * nb + j];
                    res_b[j].push(r);
                    c += r * r;
                    k += 1;
                }
            }
            if k > 0 {
                chi2[p] = (c / k as f64) as f32;
                chis.push(c / k as f64);
            }
        }
        ppc_res =
            Some(model_bands.iter().zip(res_b.iter_mut()).filter(|(_, v)| !v.is_empty()).map(|(b, v)| (b.clone(), pct(v, 0.5))).collect());
        if !chis.is_empty() {
            ppc_chi2 = Some(pct(&mut chis, 0.5));
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let summary = MapSummary {
        ppc_median_residual_sigma: ppc_res,
        ppc_median_chi2_reduced: ppc_chi2,
        source: img.source.clone(),
        model: post.dir.display().to_string(),
        redshift: opts.redshift,
        n_pixels: nsel,
        n_pixels_total: npix,
        bands_used,
        bands_missing,
        pixel_scale_arcsec: scale,
        pixel_area_kpc2: area,
        log_mstar_resolved: sum_of("log_mstar").unwrap_or(nan3),
        log_mstar_integrated: int_of("log_mstar").unwrap_or(nan3),
        log_sfr_100myr_resolved: sum_of("log_sfr_100myr").unwrap_or(nan3),
        log_sfr_100myr_integrated: int_of("log_sfr_100myr").unwrap_or(nan3),
        seconds: elapsed,
        ms_per_pixel: 1e3 * elapsed / nsel as f64,
        integrated: names.iter().filter_map(|n| Some((n.clone(), int_of(n)?))).collect(),
        resolved_mass_weighted,
        refinement,
    };
    Ok(GalaxyMaps { chi2, params: names, percentiles, snr, mask, refined, summary })
}

/// One output layer: HDU name, image [y][x], BUNIT, comment.
pub struct MapLayer {
    pub name: String,
    pub data: Vec<f32>,
    pub bunit: String,
    pub comment: String,
}

/// The output layers in `maps.fits` order (the same names in the Python API): `<PARAM>_P16/_P50/_P84`,
/// surface densities when the pixel scale is known, `SNR`, `MASK`, `PPC_CHI2` when checked.
pub fn map_layers(m: &GalaxyMaps) -> Vec<MapLayer> {
    let unit_of = |n: &str| crate::training_set::unit_of(n).to_string();
    let layer = |name: String, data: Vec<f32>, bunit: String, comment: &str| MapLayer { name, data, bunit, comment: comment.to_string() };
    let mut out = Vec::new();
    for (j, name) in m.params.iter().enumerate() {
        for (q, tag) in ["P16", "P50", "P84"].iter().enumerate() {
            out.push(layer(format!("{}_{tag}", name.to_uppercase()), m.percentiles[j][q].clone(), unit_of(name), ""));
        }
    }
    if let Some(area) = m.summary.pixel_area_kpc2 {
        for (name, label, unit) in
            [("log_mstar", "LOG_SIGMA_MSTAR", "log10 Msun/kpc2"), ("log_sfr_100myr", "LOG_SIGMA_SFR_100MYR", "log10 Msun/yr/kpc2")]
        {
            if let Some(j) = m.params.iter().position(|n| n == name) {
                for (q, tag) in ["P16", "P50", "P84"].iter().enumerate() {
                    out.push(layer(
                        format!("{label}_{tag}"),
                        m.percentiles[j][q].iter().map(|v| v - area.log10() as f32).collect(),
                        unit.to_string(),
                        "",
                    ));
                }
            }
        }
    }
    out.push(layer("SNR".into(), m.snr.clone(), String::new(), "mean f/sigma over the selection bands"));
    out.push(layer("MASK".into(), m.mask.clone(), String::new(), "1 = fitted"));
    if let Some(r) = &m.refined {
        out.push(layer("REFINED".into(), r.clone(), String::new(), "1 = likelihood-refined posterior, 0 = network's"));
    }
    if m.summary.ppc_median_chi2_reduced.is_some() {
        out.push(layer("PPC_CHI2".into(), m.chi2.clone(), String::new(), "reduced chi2 of the posterior-predictive median"));
    }
    out
}

/// Writes `maps.fits` (the [`map_layers`], all with the input WCS), `maps.png` and
/// `summary.json` into `out`.
pub fn write_maps(out: &Path, img: &ImageSet, m: &GalaxyMaps) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| Error::File { file: out.display().to_string(), reason: e.to_string() })?;
    let layers = map_layers(m);
    let images: Vec<OutImage> = layers
        .iter()
        .map(|l| OutImage { name: l.name.clone(), data: &l.data, bunit: l.bunit.clone(), comment: l.comment.clone() })
        .collect();
    let primary = vec![
        ("REDSHIFT".to_string(), CardValue::Num(m.summary.redshift)),
        ("NPIXFIT".to_string(), CardValue::Num(m.summary.n_pixels as f64)),
        ("ORIGIN".to_string(), CardValue::Text(format!("sbipix {}", env!("CARGO_PKG_VERSION")))),
    ];
    write_image_fits(&out.join("maps.fits"), img.ny, img.nx, &images, &img.wcs, &primary)?;
    crate::map_plots::panel(&out.join("maps.png"), img.ny, img.nx, m)
        .map_err(|e| Error::File { file: out.join("maps.png").display().to_string(), reason: e.to_string() })?;
    sbipix_io::write_atomic(&out.join("summary.json"), |w| Ok(w.write_all(serde_json::to_string_pretty(&m.summary)?.as_bytes())?))?;
    Ok(())
}
