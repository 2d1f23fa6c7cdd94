//! Maps of physical parameters from images: select pixels, sample their posteriors in batches,
//! reduce to 16/50/84 percentiles, with a summary of the resolved and integrated stellar masses
//! (written by [`super::map_fits`]).

use super::summaries::{interleave_draws, object_percentiles, predictive_check, refined_flags};
use crate::inference::integrated::sample_integrated;
use crate::inference::model::Posterior;
use crate::inference::photoz::{PhotoZSettings, RedshiftPosterior, RedshiftTemplates};
use crate::inference::ppc::ppc_predict;
use crate::inference::refine::{NETWORK_DRAWS, exact_parameter_names, widen_draws};
use crate::{Error, Result};
use sbipix_io::ImageSet;
use sbipix_io::arrays::pixel_scale_arcsec;
use sbipix_sim::streams;
use sbipix_sim::theta::is_extensive;
use serde::{Deserialize, Serialize};

pub use crate::request::SNR_BANDS;
use crate::request::{DEFAULT_DRAWS, DEFAULT_ERROR_FLOOR, DEFAULT_SEED, DEFAULT_SNR_MIN};

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
    /// Optional segmentation map `[y][x]` and the id to keep.
    pub segmentation: Option<(Vec<f64>, f64)>,
    pub seed: u64,
    /// Fractional error floor added in quadrature to the integrated photometry (see
    /// [`sample_integrated`]).
    pub integrated_error_floor: f64,
    /// Likelihood refinement of every pixel's posterior and of the integrated fit
    /// ([`crate::inference::refine`]), with the forward model and prior the model was trained with.
    pub refine: Option<(crate::inference::refine::RefineSettings, std::sync::Arc<sbipix_sps::SpsModel>, sbipix_sim::Prior)>,
    /// Photometric redshift: `redshift` is ignored; p(z) of the selected pixels' summed light
    /// ([`crate::inference::photoz`]) and every posterior marginalised over it. Needs the forward
    /// model (of `refine` or `ppc`).
    pub photo_z: Option<PhotoZSettings>,
    /// The images' pixel scale (arcsec) where their WCS lacks it (or to override it); a model
    /// whose prior is a mass per kpc² needs one.
    pub pixel_scale_arcsec: Option<f64>,
}

impl MapOptions {
    /// The defaults of [`crate::request`] at `redshift`, no check, no refinement.
    pub fn new(redshift: f64) -> Self {
        Self {
            ppc: None,
            redshift,
            n_draws: DEFAULT_DRAWS,
            snr_min: DEFAULT_SNR_MIN,
            snr_bands: SNR_BANDS.iter().map(|b| b.to_string()).collect(),
            segmentation: None,
            seed: DEFAULT_SEED,
            integrated_error_floor: DEFAULT_ERROR_FLOOR,
            refine: None,
            photo_z: None,
            pixel_scale_arcsec: None,
        }
    }

    /// Checks the numbers before any work: at least one draw, a finite S/N cut, a redshift ≥ 0, an
    /// error floor ≥ 0, S/N bands named.
    pub fn check(&self) -> Result<()> {
        if self.n_draws == 0 {
            return Err(Error::invalid("draws", self.n_draws, "the number of posterior draws per pixel must be at least 1"));
        }
        if !self.snr_min.is_finite() {
            return Err(Error::invalid("snr_min", self.snr_min, "the S/N cut must be a finite number"));
        }
        if !(self.redshift.is_finite() && self.redshift >= 0.0) {
            return Err(Error::invalid("redshift", self.redshift, "must be a finite number ≥ 0"));
        }
        if !(self.integrated_error_floor.is_finite() && self.integrated_error_floor >= 0.0) {
            return Err(Error::invalid("integrated_error_floor", self.integrated_error_floor, "must be a finite fraction ≥ 0"));
        }
        if self.snr_bands.is_empty() {
            return Err(Error::invalid("snr_bands", "(none)", "name at least one band for the S/N selection"));
        }
        if let Some(s) = &self.photo_z {
            s.validate()?;
        }
        Ok(())
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
    /// The pixel scale taken for a model whose prior is a mass per kpc² when the images gave none
    /// (no WCS, no `--pixel-scale`): the model's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pixel_scale_assumed_arcsec: Option<f64>,
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
    /// The photometric redshift, when the maps were made without a known one (`redshift` is
    /// then p(z)'s median).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo_z: Option<MapPhotoZ>,
    /// What the likelihood refinement did, when asked for (`--refine`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refinement: Option<crate::inference::refine::RefineSummary>,
    /// Pixels whose input lies outside what the network was trained on (the `OOD` layer;
    /// [`crate::inference::ood`]); None for a model folder without its survey.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ood: Option<crate::inference::ood::OodCounts>,
    /// Pixels sampled by the model's companion network for sparse band sets
    /// ([`crate::inference::model`]); None for a model without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub companion_pixels: Option<usize>,
    // How the maps were made (absent, so None, in summaries written before sbipix recorded it).
    /// The sbipix version that made the maps.
    #[serde(default)]
    pub sbipix_version: Option<String>,
    /// Seed of the posterior draws.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Posterior draws per pixel.
    #[serde(default)]
    pub n_draws: Option<usize>,
    /// The S/N cut: pixels whose mean f/σ over `snr_bands` exceeds it were fitted.
    #[serde(default)]
    pub snr_min: Option<f64>,
    /// The bands of the S/N selection: those of the requested ones the images have (all bands
    /// when they have none of them).
    #[serde(default)]
    pub snr_bands: Vec<String>,
    /// The segmentation id whose pixels were kept, when a segmentation map was given.
    #[serde(default)]
    pub segmentation_id: Option<f64>,
    /// Fractional error floor added to the integrated photometry.
    #[serde(default)]
    pub integrated_error_floor: Option<f64>,
    /// Whether the model is the shipped default model (its weights are the default's).
    #[serde(default)]
    pub model_is_default: Option<bool>,
    /// SHA-256 of the model's `weights.safetensors` (what `sha256sum` prints).
    #[serde(default)]
    pub model_weights_sha256: Option<String>,
}

/// The photometric redshift of a map: p(z) of the fitted pixels' summed photometry, and the
/// redshifts its posteriors were drawn at.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MapPhotoZ {
    pub posterior: RedshiftPosterior,
    /// The redshifts (nodes at p(z)'s quantiles (k + ½)/K) each holding 1/K of every pixel's draws.
    pub z_draws: Vec<f64>,
    pub settings: PhotoZSettings,
}

/// Maps and summary of one galaxy.
pub struct GalaxyMaps {
    /// Reduced χ² of the posterior-predictive median per pixel (NaN where not fitted or checked).
    pub chi2: Vec<f32>,
    pub params: Vec<String>,
    /// Per parameter: p16, p50, p84 maps `[y][x]` (NaN where not fitted).
    pub percentiles: Vec<[Vec<f32>; 3]>,
    pub snr: Vec<f32>,
    pub mask: Vec<f32>,
    /// With refinement: 1 where the pixel's posterior is the refined one, 0 where the network's
    /// was kept, NaN where not fitted.
    pub refined: Option<Vec<f32>>,
    /// Out-of-distribution flags (bits [`crate::inference::ood::OOD_NOISE`], `OOD_BANDS`,
    /// `OOD_COLOURS`; 0 = inside), NaN where not fitted; None without the model's survey.
    pub ood: Option<Vec<f32>>,
    pub summary: MapSummary,
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
    opts.check()?;
    let zmax = post.manifest.max_redshift_trained;
    if opts.photo_z.is_none() && opts.redshift > zmax {
        return Err(Error::invalid("redshift", opts.redshift, format!("outside the trained range [0, {zmax}]")));
    }
    img.check()?;
    let mut sel = select_pixels(post, img, opts, log)?;
    let scale = opts.pixel_scale_arcsec.or_else(|| pixel_scale_arcsec(&img.wcs));
    // A model whose prior is a mass per kpc² sees pixels of its own size: fluxes and errors scaled
    // by the ratio of the areas (the same S/N, the same mass per kpc²), its extensive outputs
    // scaled back below. Exact: the likelihood of the scaled photometry under the model's pixel
    // prior is that of the data under the same prior per kpc².
    //
    // Without a pixel scale (no WCS, none given) the pixels are taken to be the model's own size,
    // said on the log and in the summary (`pixel_scale_assumed_arcsec`), and no surface densities
    // are written. Decision (issue 18, bad input): a refusal would stop every WCS-less cube for a
    // quantity the answer hardly depends on — masses and SFRs per pixel come from the fluxes; the
    // scale only moves the prior's window on the mass per pixel (by log₁₀ of the area ratio,
    // ±0.6 dex for 0.015–0.06″ pixels against 0.03″, inside its 6.5 dex).
    let mut pixel_scale_assumed_arcsec = None;
    let area_ratio = match (post.pixel_scale_arcsec, scale) {
        (None, _) => 1.0,
        (Some(model), Some(data)) => (data / model).powi(2),
        (Some(model), None) => {
            log(&format!(
                "sbipix: warning: no pixel scale (no celestial WCS, no --pixel-scale; Python: pixel_scale_arcsec=): \
                 the pixels are taken to be the model's {model}″ ones, whose prior is a mass per kpc²; \
                 no surface densities are written"
            ));
            pixel_scale_assumed_arcsec = Some(model);
            1.0
        }
    };
    if area_ratio != 1.0 {
        log(&format!(
            "sbipix: pixels of {:.4}″ mapped as the model's {:.4}″ ones (fluxes × {:.4})",
            scale.unwrap_or(0.0),
            post.pixel_scale_arcsec.unwrap_or(0.0),
            1.0 / area_ratio
        ));
        sel.flux.iter_mut().chain(sel.sigma.iter_mut()).for_each(|v| *v /= area_ratio);
    }
    let (npix, nsel) = (img.ny * img.nx, sel.pixels.len());
    let (iflux, isig, iseen) = sel.integrated();
    let photo_z = match &opts.photo_z {
        Some(settings) => Some(map_photo_z(post, opts, settings, (&iflux, &isig, &iseen), log)?),
        None => None,
    };
    let z_draws = photo_z.as_ref().map_or_else(|| vec![opts.redshift], |p| p.z_draws.clone());
    let redshift = photo_z.as_ref().map_or(opts.redshift, |p| p.posterior.percentiles[1]);
    let kz = z_draws.len();
    let (nd, ind) = (opts.n_draws.div_ceil(kz), opts.n_draws.max(2000).div_ceil(kz));
    log(&format!(
        "sbipix: {nsel} of {npix} pixels selected (S/N > {}); sampling {} draws each{}",
        opts.snr_min,
        nd * kz,
        if kz > 1 {
            format!(" ({nd} at each of z = {})", z_draws.iter().map(|z| format!("{z:.3}")).collect::<Vec<_>>().join(", "))
        } else {
            String::new()
        }
    ));
    let names = exact_parameter_names(post, opts.refine.as_ref().map(|r| &r.2));
    let t_refine = std::time::Instant::now();
    let mut fits = fit_at_redshifts(post, &sel, (&iflux, &isig, &iseen), &z_draws, (nd, ind), opts, log, progress)?;
    if area_ratio != 1.0 {
        let dex = area_ratio.log10() as f32;
        for (j, _) in names.iter().enumerate().filter(|(_, n)| is_extensive(n)) {
            fits.draws.iter_mut().chain(fits.idraws.iter_mut()).skip(j).step_by(names.len()).for_each(|v| *v += dex);
        }
    }
    let (draws, idraws, outcomes, refined) = (fits.draws, fits.idraws, fits.outcomes, fits.refined);
    let refinement = opts.refine.as_ref().map(|(settings, _, _)| {
        let summary = crate::inference::refine::RefineSummary::of(&outcomes, *settings, t_refine.elapsed().as_secs_f64());
        log(&format!(
            "sbipix: refined {:.1} % of the pixels ({:.1} % by the exact SMC), {:.0} likelihood evaluations per pixel, {:.0} s",
            100.0 * summary.refined_fraction,
            100.0 * summary.exact_smc_fraction,
            summary.evaluations_per_pixel,
            summary.seconds
        ));
        summary
    });
    let (n_draws, n_idraws) = (nd * kz, ind * kz);
    let ppc = merge_checks(fits.checks, npix);
    let percentiles = pixel_percentiles(&draws, &sel.pixels, names.len(), n_draws, npix);
    let mut mask = vec![0f32; npix];
    for &p in &sel.pixels {
        mask[p] = 1.0;
    }
    let area = scale.map(|s| {
        let kpc_per_arcsec = post.manifest.forward_model.cosmology.kpc_per_arcsec(redshift);
        (s * kpc_per_arcsec).powi(2)
    });
    let elapsed = t0.elapsed().as_secs_f64();
    let model_sha = post.weights_sha256.clone();
    let (resolved, integrated) = (Draws { draws: &draws, n: n_draws, names: &names }, Draws { draws: &idraws, n: n_idraws, names: &names });
    let nan3 = [f64::NAN; 3];
    let summary = MapSummary {
        ppc_median_residual_sigma: ppc.as_ref().map(|c| c.median_residual_sigma.clone()),
        ppc_median_chi2_reduced: ppc.as_ref().and_then(|c| c.median_chi2),
        source: img.source.clone(),
        model: post.dir.display().to_string(),
        redshift,
        photo_z,
        n_pixels: nsel,
        n_pixels_total: npix,
        bands_used: sel.bands_used.clone(),
        bands_missing: sel.bands_missing.clone(),
        pixel_scale_arcsec: scale,
        pixel_area_kpc2: area,
        pixel_scale_assumed_arcsec,
        log_mstar_resolved: resolved.summed("log_mstar", nsel).unwrap_or(nan3),
        log_mstar_integrated: integrated.percentiles("log_mstar").unwrap_or(nan3),
        log_sfr_100myr_resolved: resolved.summed("log_sfr_100myr", nsel).unwrap_or(nan3),
        log_sfr_100myr_integrated: integrated.percentiles("log_sfr_100myr").unwrap_or(nan3),
        seconds: elapsed,
        ms_per_pixel: 1e3 * elapsed / nsel as f64,
        integrated: names.iter().filter_map(|n| Some((n.clone(), integrated.percentiles(n)?))).collect(),
        resolved_mass_weighted: mass_weighted(&names, &percentiles, &sel.pixels),
        refinement,
        ood: None,
        companion_pixels: post.companion.as_ref().map(|_| {
            let nb = sel.n_bands;
            (0..sel.pixels.len()).filter(|&i| post.uses_companion(&sel.seen[i * nb..(i + 1) * nb])).count()
        }),
        sbipix_version: Some(env!("CARGO_PKG_VERSION").to_string()),
        seed: Some(opts.seed),
        n_draws: Some(n_draws),
        snr_min: Some(opts.snr_min),
        snr_bands: sel.snr_bands.clone(),
        segmentation_id: opts.segmentation.as_ref().map(|(_, id)| *id),
        integrated_error_floor: Some(opts.integrated_error_floor),
        model_is_default: model_sha.as_deref().map(crate::products::provenance::is_default_weights),
        model_weights_sha256: model_sha,
    };
    let chi2 = ppc.map_or_else(|| vec![f32::NAN; npix], |c| c.chi2);
    let ood = ood_flags(post, &sel, &chi2, npix);
    let mut summary = summary;
    summary.ood = ood.as_deref().map(crate::inference::ood::OodCounts::of);
    Ok(GalaxyMaps { chi2, params: names, percentiles, snr: sel.snr, mask, refined, ood, summary })
}

/// The `OOD` layer: each selected pixel's flags against the model's training domain (noise and
/// bands as the network saw them, after any pixel-scale scaling), and the colours flag where the
/// PPC's reduced χ² exceeds its 99.9 % point.
fn ood_flags(post: &Posterior, sel: &Selection, chi2: &[f32], npix: usize) -> Option<Vec<f32>> {
    use crate::inference::ood::{OOD_COLOURS, TrainingDomain, chi2_reduced_limit};
    let domain = TrainingDomain::of(post)?;
    let nb = sel.n_bands;
    let mut layer = vec![f32::NAN; npix];
    for (i, &p) in sel.pixels.iter().enumerate() {
        let (f, s, m) = (&sel.flux[i * nb..(i + 1) * nb], &sel.sigma[i * nb..(i + 1) * nb], &sel.seen[i * nb..(i + 1) * nb]);
        let mut flags = domain.flags(f, s, m);
        let n = m.iter().filter(|v| **v).count();
        if chi2[p].is_finite() && chi2[p] as f64 > chi2_reduced_limit(n) {
            flags |= OOD_COLOURS;
        }
        layer[p] = flags as f32;
    }
    Some(layer)
}

/// The draws of every pixel and of the integrated photometry, fitted at each of `z_draws` with
/// `nd` (pixels) and `ind` (integrated) draws and interleaved ([`interleave_draws`]); the exact
/// posteriors' outcomes, the REFINED layer (1 only where every fit was refined) and one
/// posterior-predictive check per redshift.
struct RedshiftFits {
    draws: Vec<f32>,
    idraws: Vec<f32>,
    outcomes: Vec<crate::inference::refine::RefineOutcome>,
    refined: Option<Vec<f32>>,
    checks: Vec<PixelCheck>,
}

#[allow(clippy::too_many_arguments)]
fn fit_at_redshifts(
    post: &Posterior,
    sel: &Selection,
    (iflux, isig, iseen): (&[f64], &[f64], &[bool]),
    z_draws: &[f64],
    (nd, ind): (usize, usize),
    opts: &MapOptions,
    log: &dyn Fn(&str),
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<RedshiftFits> {
    let (nsel, npix, kz) = (sel.pixels.len(), sel.snr.len(), z_draws.len());
    // the network's parameters, then any the exact posterior's prior frees (log U)
    let names = exact_parameter_names(post, opts.refine.as_ref().map(|r| &r.2));
    let (np, np_net) = (names.len(), post.parameter_names().len());
    let zmax = post.manifest.max_redshift_trained;
    let (mut runs, mut iruns) = (Vec::with_capacity(kz), Vec::with_capacity(kz));
    let (mut outcomes, mut refined, mut checks) = (Vec::new(), None::<Vec<f32>>, Vec::new());
    for (j, &z) in z_draws.iter().enumerate() {
        let o = MapOptions {
            redshift: z,
            n_draws: nd,
            seed: if kz == 1 { opts.seed } else { sbipix_stats::index_seed(opts.seed, j as u64) },
            ..opts.clone()
        };
        if z > zmax {
            return Err(Error::invalid("redshift", z, format!("outside the trained range [0, {zmax}]")));
        }
        let zs = vec![z; nsel];
        // The exact posterior reads only the first NETWORK_DRAWS network draws of a pixel: the
        // network draws those, and all nd only for the pixels that keep its posterior.
        let n_net = if opts.refine.is_some() { NETWORK_DRAWS.min(nd) } else { nd };
        let net = sample_pixels(post, sel, &zs, &MapOptions { n_draws: n_net, ..o.clone() }, progress)?;
        let mut d = widen_draws(pad_draws(net, nsel, n_net, nd, np_net), np_net, np);
        let integrated =
            sample_integrated(post, iflux, isig, iseen, &[z], ind, o.seed ^ streams::INTEGRATED_FIT, o.integrated_error_floor)?;
        let mut id = widen_draws(integrated, np_net, np);
        if let Some(r) = &opts.refine {
            let (out, layer) = refine_galaxy(r, sel, (iflux, isig, iseen), &names, (&mut d, &mut id), npix, &o, log, progress)?;
            // the network's whole posterior where the likelihood could not refine
            let nb = sel.n_bands;
            for (i, _) in out.iter().enumerate().filter(|(_, oc)| !oc.refined) {
                let one = post.sample_from(
                    &sel.flux[i * nb..(i + 1) * nb],
                    &sel.sigma[i * nb..(i + 1) * nb],
                    &sel.seen[i * nb..(i + 1) * nb],
                    &zs[i..i + 1],
                    nd,
                    o.seed,
                    i,
                )?;
                d[i * nd * np..(i + 1) * nd * np].copy_from_slice(&widen_draws(one, np_net, np));
            }
            outcomes.extend(out);
            refined = Some(match refined {
                None => layer,
                Some(prev) => prev.iter().zip(&layer).map(|(a, b)| a.min(*b)).collect(),
            });
        }
        if let Some((fwd, prior)) = &opts.ppc {
            checks.push(check_pixels(fwd, prior, &names, &d, sel, &post.manifest.bands, npix, &o));
        }
        runs.push(d);
        iruns.push(id);
    }
    let draws = interleave_draws(nsel, kz, nd, np, |i, j| &runs[j][i * nd * np..(i + 1) * nd * np]);
    let idraws = interleave_draws(1, kz, ind, np, |_, j| &iruns[j][..]);
    Ok(RedshiftFits { draws, idraws, outcomes, refined, checks })
}

/// Draws [objects × `have` × `p`] laid out as [objects × `want` × `p`], the rows beyond `have`
/// NaN (to be filled by the exact posterior, or by the network where that fails).
fn pad_draws(draws: Vec<f32>, objects: usize, have: usize, want: usize, p: usize) -> Vec<f32> {
    if have >= want {
        return draws;
    }
    let mut out = vec![f32::NAN; objects * want * p];
    for i in 0..objects {
        out[i * want * p..(i * want + have) * p].copy_from_slice(&draws[i * have * p..(i + 1) * have * p]);
    }
    out
}

/// The pixels a map fits and their photometry in the model's band order.
struct Selection {
    /// Indices [y·nx + x] of the selected pixels.
    pixels: Vec<usize>,
    /// Mean S/N over the selection bands, every pixel (NaN where no band has data).
    snr: Vec<f32>,
    bands_used: Vec<String>,
    bands_missing: Vec<String>,
    /// The bands whose mean S/N selected the pixels (all bands when none of the asked-for ones is
    /// present).
    snr_bands: Vec<String>,
    /// [selected pixels × model bands], µJy; `seen` false where a band has no usable value.
    flux: Vec<f64>,
    sigma: Vec<f64>,
    seen: Vec<bool>,
    n_bands: usize,
}

impl Selection {
    /// Integrated photometry: sums over the selected pixels, σ in quadrature; a band is kept only
    /// if every selected pixel has it.
    fn integrated(&self) -> (Vec<f64>, Vec<f64>, Vec<bool>) {
        let (nb, nsel) = (self.n_bands, self.pixels.len());
        let (mut iflux, mut isig, mut iseen) = (vec![0.0; nb], vec![0.0; nb], vec![true; nb]);
        for j in 0..nb {
            for i in 0..nsel {
                if self.seen[i * nb + j] {
                    iflux[j] += self.flux[i * nb + j];
                    isig[j] += self.sigma[i * nb + j].powi(2);
                } else {
                    iseen[j] = false;
                }
            }
            isig[j] = isig[j].sqrt();
        }
        (iflux, isig, iseen)
    }
}

/// Matches the image's bands to the model's, computes every pixel's S/N and selects the pixels
/// above the cut (within the segment, if any).
fn select_pixels(post: &Posterior, img: &ImageSet, opts: &MapOptions, log: &dyn Fn(&str)) -> Result<Selection> {
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
        return Err(Error::file(&img.source, format!("none of its bands ({}) is known to the model", img.bands.join(" "))));
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
        return Err(Error::shape("segmentation map", format!("{ny}×{nx} pixels (the images)"), format!("{} pixels", seg.len())));
    }
    // S/N and selection
    let good = |b: usize, p: usize| img.err[b * npix + p].is_finite() && img.err[b * npix + p] > 0.0 && img.flux[b * npix + p].is_finite();
    let mut snr = vec![f32::NAN; npix];
    let mut pixels = Vec::new();
    for p in 0..npix {
        let v: Vec<f64> = snr_idx.iter().filter(|&&b| good(b, p)).map(|&b| img.flux[b * npix + p] / img.err[b * npix + p]).collect();
        if v.is_empty() {
            continue;
        }
        let s = v.iter().sum::<f64>() / v.len() as f64;
        snr[p] = s as f32;
        let in_seg = opts.segmentation.as_ref().is_none_or(|(seg, id)| seg[p] == *id);
        if s > opts.snr_min && in_seg {
            pixels.push(p);
        }
    }
    let (nsel, nb) = (pixels.len(), model_bands.len());
    if nsel == 0 {
        return Err(Error::file(&img.source, format!("no pixel has S/N > {} in {}", opts.snr_min, opts.snr_bands.join("+"))));
    }
    let mut flux = vec![f64::NAN; nsel * nb];
    let mut sigma = vec![f64::NAN; nsel * nb];
    let mut seen = vec![false; nsel * nb];
    for (i, &p) in pixels.iter().enumerate() {
        for (j, m) in map.iter().enumerate() {
            if let Some(b) = *m
                && good(b, p)
            {
                flux[i * nb + j] = img.flux[b * npix + p];
                sigma[i * nb + j] = img.err[b * npix + p];
                seen[i * nb + j] = true;
            }
        }
    }
    let snr_bands = snr_idx.iter().map(|&b| img.bands[b].clone()).collect();
    Ok(Selection { pixels, snr, bands_used, bands_missing, snr_bands, flux, sigma, seen, n_bands: nb })
}

/// Network draws of every selected pixel [pixels × draws × parameters], in parallel, in chunks so
/// that long maps report progress.
fn sample_pixels(
    post: &Posterior,
    sel: &Selection,
    zs: &[f64],
    opts: &MapOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Vec<f32>> {
    let (nsel, nb) = (sel.pixels.len(), sel.n_bands);
    let mut draws = Vec::with_capacity(nsel * opts.n_draws * post.parameter_names().len());
    let chunk = 4096;
    for start in (0..nsel).step_by(chunk) {
        let end = (start + chunk).min(nsel);
        let part = post.sample_from(
            &sel.flux[start * nb..end * nb],
            &sel.sigma[start * nb..end * nb],
            &sel.seen[start * nb..end * nb],
            &zs[start..end],
            opts.n_draws,
            opts.seed,
            start,
        )?;
        draws.extend(part);
        progress(end, nsel);
    }
    Ok(draws)
}

/// The refinement options of [`MapOptions::refine`].
type RefineOption = (crate::inference::refine::RefineSettings, std::sync::Arc<sbipix_sps::SpsModel>, sbipix_sim::Prior);

/// Refines the pixels' and the integrated posteriors in place; returns the summary and the
/// REFINED layer (1 refined, 0 the network's kept, NaN not fitted).
#[allow(clippy::too_many_arguments)]
fn refine_galaxy(
    (settings, fwd, prior): &RefineOption,
    sel: &Selection,
    (iflux, isig, iseen): (&[f64], &[f64], &[bool]),
    names: &[String],
    (draws, idraws): (&mut [f32], &mut [f32]),
    npix: usize,
    opts: &MapOptions,
    log: &dyn Fn(&str),
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<(Vec<crate::inference::refine::RefineOutcome>, Vec<f32>)> {
    use crate::inference::refine::{RefineSettings, refine_all};
    let nsel = sel.pixels.len();
    log(&format!("sbipix: exact posteriors of the {nsel} pixels at z = {:.3}…", opts.redshift));
    let zs = vec![opts.redshift; nsel];
    let outcomes =
        refine_all(fwd, prior, &sel.flux, &sel.sigma, &sel.seen, &zs, names, draws, *settings, opts.seed ^ streams::REFINE, &|k| {
            progress(k, nsel)
        })?;
    let layer = refined_flags(&outcomes, &sel.pixels, npix).iter().map(|&f| f as f32).collect();
    // the integrated photometry: its own σ with the integrated error floor
    let isettings = RefineSettings { sys_frac: settings.sys_frac.max(opts.integrated_error_floor), integrated: true, ..*settings };
    refine_all(
        fwd,
        prior,
        iflux,
        isig,
        iseen,
        &[opts.redshift],
        names,
        idraws,
        isettings,
        opts.seed ^ streams::REFINE_INTEGRATED,
        &|_| {},
    )?;
    Ok((outcomes, layer))
}

/// p(z) of the selected pixels' summed photometry and the redshifts the posteriors are drawn at.
fn map_photo_z(
    post: &Posterior,
    opts: &MapOptions,
    settings: &PhotoZSettings,
    (iflux, isig, iseen): (&[f64], &[f64], &[bool]),
    log: &dyn Fn(&str),
) -> Result<MapPhotoZ> {
    let (fwd, prior) = match (&opts.refine, &opts.ppc) {
        (Some((_, f, p)), _) | (None, Some((f, p))) => (f, p),
        (None, None) => {
            return Err(Error::unsupported("photometric redshifts", "they need the forward model (the stellar-population data)"));
        }
    };
    let z_max = settings.z_max.unwrap_or(post.manifest.max_redshift_trained);
    log(&format!("sbipix: no redshift given: p(z) of the galaxy's summed light on {:.2} ≤ z ≤ {z_max:.2}…", settings.z_min));
    let t0 = std::time::Instant::now();
    let templates =
        RedshiftTemplates::shared(fwd, prior, settings, z_max, crate::inference::refine::INTEGRATED_MASS_HEADROOM_DEX, &|_, _| {})?;
    let sys = opts.refine.as_ref().map_or(0.0, |r| r.0.sys_frac).max(opts.integrated_error_floor);
    let posterior = templates.posterior(iflux, isig, iseen, sys)?;
    let z_draws = posterior.stratified_draws(settings.z_draws);
    let p = &posterior.percentiles;
    log(&format!(
        "sbipix: z = {:.3} (+{:.3} −{:.3}), mode {:.3}, {:.0} % in the main peak{}{} ({:.1} s)",
        p[1],
        p[2] - p[1],
        p[1] - p[0],
        posterior.z_mode,
        100.0 * posterior.odds,
        posterior.second.map_or(String::new(), |(z, q)| format!("; second peak z = {z:.2} with {:.0} %", 100.0 * q)),
        if posterior.flags.is_empty() {
            String::new()
        } else {
            format!("; flagged: {}", posterior.flags.iter().map(|f| RedshiftPosterior::explain(f)).collect::<Vec<_>>().join("; "))
        },
        t0.elapsed().as_secs_f64()
    ));
    Ok(MapPhotoZ { posterior, z_draws, settings: *settings })
}

/// One posterior-predictive check from several (one per redshift draw): χ² per pixel and the
/// median residuals averaged over them.
fn merge_checks(checks: Vec<PixelCheck>, npix: usize) -> Option<PixelCheck> {
    let k = checks.len();
    if k <= 1 {
        return checks.into_iter().next();
    }
    let mut chi2 = vec![0f32; npix];
    for c in &checks {
        for (a, b) in chi2.iter_mut().zip(&c.chi2) {
            *a += b / k as f32;
        }
    }
    let mut res = std::collections::BTreeMap::new();
    for c in &checks {
        for (b, v) in &c.median_residual_sigma {
            *res.entry(b.clone()).or_insert(0.0) += v / k as f64;
        }
    }
    let mut finite: Vec<f64> = chi2.iter().filter(|c| c.is_finite()).map(|&c| c as f64).collect();
    let median_chi2 = (!finite.is_empty()).then(|| sbipix_stats::percentile(&mut finite, 0.5));
    Some(PixelCheck { chi2, median_residual_sigma: res, median_chi2 })
}

/// p16, p50, p84 maps `[y][x]` of every parameter (NaN where not fitted).
fn pixel_percentiles(draws: &[f32], pixels: &[usize], np: usize, nd: usize, npix: usize) -> Vec<[Vec<f32>; 3]> {
    let mut percentiles: Vec<[Vec<f32>; 3]> = (0..np).map(|_| [vec![f32::NAN; npix], vec![f32::NAN; npix], vec![f32::NAN; npix]]).collect();
    let mut buf = Vec::with_capacity(nd);
    for (i, &p) in pixels.iter().enumerate() {
        for (j, q3) in object_percentiles(draws, i, nd, np, &mut buf).iter().enumerate() {
            for q in 0..3 {
                percentiles[j][q][p] = q3[q] as f32;
            }
        }
    }
    percentiles
}

/// Posterior draws of several objects [objects × n × parameters].
struct Draws<'a> {
    draws: &'a [f32],
    n: usize,
    names: &'a [String],
}

impl Draws<'_> {
    /// 16/50/84 % of log10 Σ over `objects` of 10^parameter, draw index by draw index (the
    /// resolved total of an extensive parameter).
    fn summed(&self, name: &str, objects: usize) -> Option<[f64; 3]> {
        let (np, nd) = (self.names.len(), self.n);
        let j = self.names.iter().position(|n| n == name)?;
        let mut tot: Vec<f64> =
            (0..nd).map(|k| (0..objects).map(|i| 10f64.powf(self.draws[(i * nd + k) * np + j] as f64)).sum::<f64>().log10()).collect();
        Some([sbipix_stats::percentile(&mut tot, 0.16), sbipix_stats::percentile(&mut tot, 0.5), sbipix_stats::percentile(&mut tot, 0.84)])
    }

    /// 16/50/84 % of a parameter of the first object.
    fn percentiles(&self, name: &str) -> Option<[f64; 3]> {
        let np = self.names.len();
        let j = self.names.iter().position(|n| n == name)?;
        let mut v: Vec<f64> = (0..self.n).map(|k| self.draws[k * np + j] as f64).collect();
        Some([sbipix_stats::percentile(&mut v, 0.16), sbipix_stats::percentile(&mut v, 0.5), sbipix_stats::percentile(&mut v, 0.84)])
    }
}

/// Intensive parameters averaged over the fitted pixels with the pixels' stellar masses
/// (posterior medians) as weights.
fn mass_weighted(names: &[String], percentiles: &[[Vec<f32>; 3]], pixels: &[usize]) -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    if let Some(jm) = names.iter().position(|n| n == "log_mstar") {
        let w: Vec<f64> = pixels.iter().map(|&p| 10f64.powf(percentiles[jm][1][p] as f64)).collect();
        let wsum: f64 = w.iter().sum();
        for (j, n) in names.iter().enumerate() {
            if !is_extensive(n) && wsum > 0.0 {
                let v: f64 = pixels.iter().zip(&w).map(|(&p, w)| w * percentiles[j][1][p] as f64).sum::<f64>() / wsum;
                out.insert(n.clone(), v);
            }
        }
    }
    out
}

/// The posterior-predictive check of a map.
struct PixelCheck {
    /// Reduced χ² of the median prediction per pixel `[y][x]` (NaN where not fitted or checked).
    chi2: Vec<f32>,
    /// Median (f − f_pred)/σ per band over the fitted pixels.
    median_residual_sigma: std::collections::BTreeMap<String, f64>,
    /// Median reduced χ² over the fitted pixels.
    median_chi2: Option<f64>,
}

/// Posterior-predictive check (see [`ppc_predict`]): the median prediction against the data, σ
/// as measured (no error floor for pixels).
#[allow(clippy::too_many_arguments)]
fn check_pixels(
    fwd: &sbipix_sps::SpsModel,
    prior: &sbipix_sim::Prior,
    names: &[String],
    draws: &[f32],
    sel: &Selection,
    model_bands: &[String],
    npix: usize,
    opts: &MapOptions,
) -> PixelCheck {
    let pred = ppc_predict(fwd, prior, names, draws, opts.n_draws, &vec![opts.redshift; sel.pixels.len()]);
    let c = predictive_check(&pred, &sel.flux, &sel.sigma, &sel.seen, model_bands, 0.0);
    let mut chi2 = vec![f32::NAN; npix];
    for (i, &p) in sel.pixels.iter().enumerate() {
        chi2[p] = c.chi2[i] as f32;
    }
    PixelCheck { chi2, median_residual_sigma: c.median_residual_sigma, median_chi2: c.median_chi2 }
}

#[cfg(test)]
mod tests {
    use super::pad_draws;

    /// Each object's draws stay its own, first, with NaN rows after them.
    #[test]
    fn padded_draws_keep_each_object_in_place() {
        // 2 objects × 2 draws × 3 parameters, padded to 4 draws
        let d: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let out = pad_draws(d.clone(), 2, 2, 4, 3);
        assert_eq!(out.len(), 24);
        assert_eq!(&out[0..6], &d[0..6]);
        assert!(out[6..12].iter().all(|v| v.is_nan()));
        assert_eq!(&out[12..18], &d[6..12]);
        assert!(out[18..24].iter().all(|v| v.is_nan()));
        assert_eq!(pad_draws(d.clone(), 2, 2, 2, 3), d);
    }
}
