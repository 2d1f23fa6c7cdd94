//! `sbipix fit`: posteriors for the integrated photometry of a catalogue.

use super::{log, worst_residual};
use crate::args::{ExactArgs, PhotoZArgs};
use anyhow::{Result, bail};
use sbipix::request::{FitRequest, LoadedModel};
use std::path::PathBuf;

fn d() -> FitRequest {
    FitRequest::default()
}

#[derive(Debug, clap::Args)]
pub struct FitArgs {
    /// Model folder, or a built-in model: `default`, `sbipix2025` (the default until December 2026).
    #[arg(long, default_value_t = d().model)]
    pub model: String,
    /// The catalogue: CSV, whitespace-separated text with a header line, or a FITS binary table.
    #[arg(long)]
    pub catalog: PathBuf,
    /// Output CSV: id, redshift, n_bands, status, (z_p16 … z_flags,) <param>_p16/_p50/_p84;
    /// with photometric redshifts p(z) beside it (<stem>.pz.npy, <stem>.pz_grid.npy).
    #[arg(long)]
    pub out: PathBuf,
    /// Flux column names, `{band}` standing for the band (e.g. `{band}_Jy_scattered`).
    #[arg(long, default_value_t = d().flux_columns)]
    pub flux_columns: String,
    /// Error column names, with `{band}`.
    #[arg(long, default_value_t = d().err_columns)]
    pub err_columns: String,
    /// Redshift column (without one, photometric redshifts are fitted).
    #[arg(long, default_value_t = d().redshift_column)]
    pub redshift_column: String,
    /// Id column (rows are numbered from 1 if the catalogue has none).
    #[arg(long, default_value_t = d().id_column)]
    pub id_column: String,
    /// Unit of the flux and error columns (uJy, nJy, mJy, Jy, or with a factor: 10nJy).
    #[arg(long)]
    pub unit: Option<String>,
    /// Posterior draws per object.
    #[arg(long, default_value_t = d().draws)]
    pub draws: usize,
    #[arg(long, default_value_t = d().seed)]
    pub seed: u64,
    /// Fractional error floor added in quadrature to every flux error (calibration systematics).
    #[arg(long, default_value_t = d().error_floor)]
    pub error_floor: f64,
    /// Skip the posterior-predictive check (the ppc_chi2 column is left empty).
    #[arg(long)]
    pub no_ppc: bool,
    #[command(flatten)]
    pub exact: ExactArgs,
    #[command(flatten)]
    pub photo_z: PhotoZArgs,
    /// Photometric redshifts alone (p(z) and its summaries; the parameter columns stay empty):
    /// ≈ 1 ms per object.
    #[arg(long)]
    pub photo_z_only: bool,
    /// The nebular ionisation parameter log U free over −4…−1 (prospector's default range) in the
    /// exact posteriors (a logu column) instead of fixed at −2: for line-dominated galaxies
    /// (e.g. z ≳ 5 with [O III]/Hα in the bands). Slower; not with --fast.
    #[arg(long, conflicts_with = "fast")]
    pub free_logu: bool,
    /// Replace an existing output file.
    #[arg(long)]
    pub overwrite: bool,
}

impl FitArgs {
    fn request(self) -> Result<FitRequest> {
        Ok(FitRequest {
            model: self.model,
            catalog: self.catalog,
            out: Some(self.out),
            overwrite: self.overwrite,
            flux_columns: self.flux_columns,
            err_columns: self.err_columns,
            redshift_column: self.redshift_column,
            id_column: self.id_column,
            unit: self.unit,
            error_floor: self.error_floor,
            draws: self.draws,
            seed: self.seed,
            ppc: !self.no_ppc,
            refine: self.exact.exact(),
            sys_err: self.exact.sys_err,
            free_logu: self.free_logu,
            photo_z: self.photo_z.photo_z,
            photo_z_only: self.photo_z_only,
            photo_z_settings: self.photo_z.settings()?,
        })
    }
}

pub fn run(a: FitArgs) -> Result<()> {
    let req = a.request()?;
    let out = req.out.clone().unwrap_or_default();
    // before the (long) fit: the numbers, and that the output can be written
    req.validate()?;
    sbipix::check_output(&out, req.overwrite)?;
    let model = LoadedModel::load(&req.model)?;
    let t0 = std::time::Instant::now();
    let fit = req.fit_with_progress(&model, &log, &super::stage_progress())?;
    let n = fit.ids.len();
    let failed: Vec<usize> = (0..n).filter(|&r| fit.status[r] != sbipix::products::STATUS_OK).collect();
    if failed.len() == n {
        // nothing to write: say why for the first rows
        let why: Vec<String> = failed.iter().take(3).map(|&r| format!("{}: {}", fit.ids[r], fit.status[r])).collect();
        bail!("no object of {} could be fitted ({}{})", req.catalog.display(), why.join("; "), if n > 3 { "; …" } else { "" });
    }
    req.write(&fit)?;
    log(&format!(
        "sbipix: fitted {} of {n} objects ({}) in {:.1} s → {}",
        n - failed.len(),
        if req.photo_z_only { "photometric redshifts alone".to_string() } else { format!("{} draws each", req.draws) },
        t0.elapsed().as_secs_f64(),
        out.display()
    ));
    if let Some(pz) = &fit.photo_z {
        let (p, g) = sbipix::products::catalog_fit::photo_z_paths(&out);
        let flagged = pz.rows.iter().flatten().filter(|p| !p.flags.is_empty()).count();
        log(&format!(
            "  photometric redshifts: {} of {} rows ({flagged} flagged, see z_flags); p(z) → {}, grid → {}",
            pz.rows.iter().flatten().count(),
            n,
            p.display(),
            g.display()
        ));
    }
    if let Some(res) = &fit.ppc_residual_sigma {
        let mut c: Vec<f64> = fit.ppc_chi2.iter().cloned().filter(|v| v.is_finite()).collect();
        c.sort_by(f64::total_cmp);
        log(&format!(
            "  posterior-predictive check: median reduced χ² {:.2}{}",
            if c.is_empty() { f64::NAN } else { c[c.len() / 2] },
            worst_residual(res).map(|(b, v)| format!(", largest median residual {b} {v:+.2}σ")).unwrap_or_default()
        ));
        log(&format!("  median residual per band (σ): {}", res.iter().map(|(b, v)| format!("{b} {v:+.1}")).collect::<Vec<_>>().join(", ")));
    }
    if let (Some(o), false) = (&fit.ood, req.photo_z_only) {
        let layer: Vec<f32> = o.iter().map(|v| *v as f32).collect();
        let c = sbipix::inference::ood::OodCounts::of(&layer);
        log(&sbipix::inference::ood::describe(&c, n - failed.len(), "rows", "ood column", req.refine));
    }
    for &r in failed.iter().take(5) {
        log(&format!("  not fitted: {} ({})", fit.ids[r], fit.status[r]));
    }
    if failed.len() > 5 {
        log(&format!("  … and {} more (see the status column)", failed.len() - 5));
    }
    Ok(())
}
