//! `sbipix map`: maps of one galaxy from its images.

use super::{log, map_progress, worst_residual};
use crate::args::{ExactArgs, ImageInputArgs, PhotoZArgs};
use anyhow::Result;
use sbipix::request::{MapRequest, Segmentation};
use std::path::PathBuf;

fn d() -> MapRequest {
    MapRequest::default()
}

#[derive(Debug, clap::Args)]
pub struct MapArgs {
    /// Model folder, or a built-in model: `default`, `sbipix2025` (the default until December 2026).
    #[arg(long, default_value_t = d().model)]
    pub model: String,
    #[command(flatten)]
    pub input: ImageInputArgs,
    /// Segmentation map (FITS) …
    #[arg(long, requires = "id")]
    pub seg: Option<PathBuf>,
    /// … and the id of the galaxy in it.
    #[arg(long)]
    pub id: Option<f64>,
    /// Spectroscopic redshift (default: the REDSHIFT header keyword; without either, a
    /// photometric redshift is fitted and the maps marginalised over it).
    #[arg(long)]
    pub redshift: Option<f64>,
    /// Minimum mean S/N over F277W, F356W, F444W (the bands present) for a pixel to be fitted.
    #[arg(long, default_value_t = d().snr_min)]
    pub snr_min: f64,
    /// Posterior draws per pixel.
    #[arg(long, default_value_t = d().draws)]
    pub draws: usize,
    #[arg(long, default_value_t = d().seed)]
    pub seed: u64,
    /// Skip the posterior-predictive check (the median model of every pixel through the forward
    /// model; needs the stellar-population data, fetched on first use).
    #[arg(long)]
    pub no_ppc: bool,
    #[command(flatten)]
    pub exact: ExactArgs,
    #[command(flatten)]
    pub photo_z: PhotoZArgs,
    /// The nebular ionisation parameter log U free over −4…−1 (prospector's default range) in
    /// the exact posteriors (LOGU_P16/P50/P84 layers) instead of fixed at −2: for line-dominated pixels.
    /// Slower; not with --fast.
    #[arg(long, conflicts_with = "fast")]
    pub free_logu: bool,
    /// The images' pixel scale in arcsec, where their WCS lacks it (or to override it): a model
    /// whose prior is a mass per kpc² needs it.
    #[arg(long)]
    pub pixel_scale: Option<f64>,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
}

impl MapArgs {
    fn request(self) -> Result<MapRequest> {
        Ok(MapRequest {
            model: self.model,
            images: self.input.input(),
            redshift: self.redshift,
            segmentation: self.seg.zip(self.id).map(|(path, id)| Segmentation { path, id }),
            snr_min: self.snr_min,
            draws: self.draws,
            seed: self.seed,
            ppc: !self.no_ppc,
            refine: self.exact.exact(),
            sys_err: self.exact.sys_err,
            out: Some(self.out),
            photo_z: self.photo_z.photo_z,
            photo_z_settings: self.photo_z.settings()?,
            free_logu: self.free_logu,
            pixel_scale_arcsec: self.pixel_scale,
        })
    }
}

pub fn run(a: MapArgs) -> Result<()> {
    let req = a.request()?;
    let (bar, progress) = map_progress(req.refine);
    let r = req.run(&log, &progress)?;
    bar.finish_and_clear();
    let s = &r.maps.summary;
    log(&format!(
        "sbipix: {} pixels fitted in {:.1} s ({:.2} ms/pixel, {} draws each)\n  log M* resolved {:.2} (+{:.2}/−{:.2}), integrated {:.2} (+{:.2}/−{:.2})\n  wrote {}/maps.fits, maps.png, summary.json",
        s.n_pixels,
        s.seconds,
        s.ms_per_pixel,
        req.draws,
        s.log_mstar_resolved[1],
        s.log_mstar_resolved[2] - s.log_mstar_resolved[1],
        s.log_mstar_resolved[1] - s.log_mstar_resolved[0],
        s.log_mstar_integrated[1],
        s.log_mstar_integrated[2] - s.log_mstar_integrated[1],
        s.log_mstar_integrated[1] - s.log_mstar_integrated[0],
        req.out.as_deref().unwrap_or_else(|| std::path::Path::new(".")).display()
    ));
    if let Some(pz) = &s.photo_z {
        let p = &pz.posterior;
        log(&format!(
            "  photometric redshift {:.3} (+{:.3}/−{:.3}), {:.0} % in the main peak{}; maps marginalised over z = {}",
            p.percentiles[1],
            p.percentiles[2] - p.percentiles[1],
            p.percentiles[1] - p.percentiles[0],
            100.0 * p.odds,
            if p.flags.is_empty() { String::new() } else { format!(", flags: {}", p.flag_string()) },
            pz.z_draws.iter().map(|z| format!("{z:.3}")).collect::<Vec<_>>().join(", ")
        ));
    }
    if let Some(r) = &s.refinement {
        log(&format!(
            "  refined {:.1} % of the pixels with the likelihood ({:.1} % by the exact SMC; REFINED layer)",
            100.0 * r.refined_fraction,
            100.0 * r.exact_smc_fraction
        ));
    }
    if let Some(o) = &s.ood {
        log(&sbipix::inference::ood::describe(o, s.n_pixels, "pixels", "OOD layer", req.refine));
    }
    if let Some(n) = s.companion_pixels.filter(|n| *n > 0) {
        log(&format!("  {n} of {} pixels sampled by the model's companion network for sparse band sets", s.n_pixels));
    }
    if let (Some(c), Some(r)) = (s.ppc_median_chi2_reduced, &s.ppc_median_residual_sigma) {
        log(&format!(
            "  posterior-predictive check: median reduced χ² {c:.2}{}",
            worst_residual(r).map(|(b, v)| format!(", largest median residual {b} {v:+.2}σ")).unwrap_or_default()
        ));
    }
    Ok(())
}
