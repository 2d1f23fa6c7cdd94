//! Maps of physical parameters from images: select pixels, sample their posteriors in batches,
//! reduce to 16/50/84 percentiles, with a summary of the resolved and integrated stellar masses
//! (written by [`super::map_fits`]).

use crate::inference::integrated::{DEFAULT_ERROR_FLOOR, sample_integrated};
use crate::inference::model::Posterior;
use crate::inference::ppc::ppc_predict;
use crate::{Error, Result};
use sbipix_io::ImageSet;
use sbipix_io::arrays::pixel_scale_arcsec;
use sbipix_sim::theta::is_extensive;
use serde::{Deserialize, Serialize};

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
    pub refine: Option<(crate::inference::refine::RefineSettings, std::sync::Arc<sbipix_sps::SpsModel>, sbipix_sim::Prior)>,
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
    pub refinement: Option<crate::inference::refine::RefineSummary>,
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
        return Err(Error::file("segmentation", format!("{} pixels, the images have {ny}×{nx}", seg.len())));
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
        return Err(Error::file(&img.source, format!("no pixel has S/N > {} in {}", opts.snr_min, opts.snr_bands.join("+"))));
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
        let outcomes = crate::inference::refine::refine_all(
            fwd,
            prior,
            &flux,
            &sig,
            &seen,
            &zs,
            &names,
            &mut draws,
            *settings,
            opts.seed ^ 0x0EF1,
            &|k| progress(k, nsel),
        )?;
        let mut layer = vec![f32::NAN; npix];
        for (o, &p) in outcomes.iter().zip(&selected) {
            layer[p] = if o.refined { 1.0 } else { 0.0 };
        }
        refined = Some(layer);
        // the integrated photometry: its own σ with the integrated error floor
        let isettings =
            crate::inference::refine::RefineSettings { sys_frac: settings.sys_frac.max(opts.integrated_error_floor), ..*settings };
        crate::inference::refine::refine_all(
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
        let summary = crate::inference::refine::RefineSummary::of(&outcomes, *settings, t1.elapsed().as_secs_f64());
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
                percentiles[j][q][p] = sbipix_stats::quantile_sorted(&buf, *level) as f32;
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
        Some([sbipix_stats::percentile(&mut tot, 0.16), sbipix_stats::percentile(&mut tot, 0.5), sbipix_stats::percentile(&mut tot, 0.84)])
    };
    let int_of = |name: &str| -> Option<[f64; 3]> {
        let j = names.iter().position(|n| n == name)?;
        let ndi = opts.n_draws.max(2000);
        let mut v: Vec<f64> = (0..ndi).map(|k| idraws[k * np + j] as f64).collect();
        Some([sbipix_stats::percentile(&mut v, 0.16), sbipix_stats::percentile(&mut v, 0.5), sbipix_stats::percentile(&mut v, 0.84)])
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
        let kpc_per_arcsec = post.manifest.forward_model.cosmology.kpc_per_arcsec(opts.redshift);
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
        ppc_res = Some(
            model_bands
                .iter()
                .zip(res_b.iter_mut())
                .filter(|(_, v)| !v.is_empty())
                .map(|(b, v)| (b.clone(), sbipix_stats::percentile(v, 0.5)))
                .collect(),
        );
        if !chis.is_empty() {
            ppc_chi2 = Some(sbipix_stats::percentile(&mut chis, 0.5));
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let model_sha = crate::products::provenance::weights_sha256(&post.dir);
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
        sbipix_version: Some(env!("CARGO_PKG_VERSION").to_string()),
        seed: Some(opts.seed),
        n_draws: Some(opts.n_draws),
        snr_min: Some(opts.snr_min),
        snr_bands: snr_idx.iter().map(|&b| img.bands[b].clone()).collect(),
        segmentation_id: opts.segmentation.as_ref().map(|(_, id)| *id),
        integrated_error_floor: Some(opts.integrated_error_floor),
        model_is_default: model_sha.as_deref().map(crate::products::provenance::is_default_weights),
        model_weights_sha256: model_sha,
    };
    Ok(GalaxyMaps { chi2, params: names, percentiles, snr, mask, refined, summary })
}
