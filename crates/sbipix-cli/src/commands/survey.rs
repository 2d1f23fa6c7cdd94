//! `sbipix survey --manifest … --out …` (survey mode) and the `survey` subcommands.

use super::{log, survey_learn, survey_segment, usage};
use anyhow::{Result, bail};
use clap::Subcommand;
use sbipix::products::population::{GalaxyRow, read_manifest, read_status, write_population};
use sbipix::request::{LoadedModel, SurveyRequest};
use std::path::PathBuf;

fn d() -> SurveyRequest {
    SurveyRequest::default()
}

#[derive(Debug, Subcommand)]
pub enum SurveyAction {
    /// Learn a survey noise model from real per-pixel fluxes and errors.
    Learn(Box<survey_learn::LearnArgs>),
    /// Print a survey (built-in name or file) as TOML.
    Show { survey: String },
    /// Segment a field (threshold + connected components on the S/N image) into a manifest of
    /// galaxies for `sbipix survey`.
    Segment(survey_segment::SegmentArgs),
}

#[derive(Debug, clap::Args)]
pub struct SurveyRunArgs {
    /// Model folder, or a built-in model: `default`, `sbipix2025` (the default until December 2026).
    #[arg(long, default_value_t = d().model)]
    pub model: String,
    /// Manifest CSV: id, redshift, cube | images + errors (`;`-separated), optional bands, seg +
    /// seg_id, cutout x0,y0,nx,ny, unit. Paths relative to the manifest.
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// Output folder (galaxies/<id>/…, galaxies.csv, outshining.png); a rerun resumes.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Posterior draws per pixel.
    #[arg(long, default_value_t = d().draws)]
    pub draws: usize,
    /// Mean S/N over F277W/F356W/F444W a pixel needs.
    #[arg(long, default_value_t = d().snr_min)]
    pub snr_min: f64,
    #[arg(long, default_value_t = d().seed)]
    pub seed: u64,
    /// Skip the posterior-predictive check.
    #[arg(long)]
    pub no_ppc: bool,
    // --fast / --sys-err: exact posteriors (the default) or the network alone
    #[command(flatten)]
    pub exact: crate::args::ExactArgs,
    // galaxies without a redshift get a photometric one
    #[command(flatten)]
    pub photo_z: crate::args::PhotoZArgs,
}

pub fn action(a: SurveyAction) -> Result<()> {
    match a {
        SurveyAction::Show { survey } => {
            let (s, _) = sbipix::inference::training_set::load_survey(&survey)?;
            out!("{}", s.to_toml())?;
            Ok(())
        }
        SurveyAction::Learn(a) => survey_learn::run(*a),
        SurveyAction::Segment(a) => survey_segment::run(a),
    }
}

pub fn run(a: SurveyRunArgs) -> Result<()> {
    let (Some(manifest), Some(out)) = (a.manifest, a.out) else {
        return Err(usage("survey mode needs --manifest FILE and --out DIR (or a subcommand: learn, show, segment; see --help)"));
    };
    if out.exists() && !out.is_dir() {
        bail!("{} exists and is not a folder", out.display());
    }
    let req = SurveyRequest {
        model: a.model,
        manifest,
        out,
        draws: a.draws,
        snr_min: a.snr_min,
        seed: a.seed,
        ppc: !a.no_ppc,
        refine: a.exact.exact(),
        sys_err: a.exact.sys_err,
        photo_z: a.photo_z.photo_z,
        photo_z_settings: a.photo_z.settings()?,
    };
    req.validate()?;
    let model = LoadedModel::load(&req.model)?;
    let rows = run_manifest(&req, &model)?;
    write_population(&req.out, &rows, None)?;
    let failed = rows.iter().filter(|r| !r.is_ok()).count();
    if failed > 0 {
        bail!("{failed} of {} galaxies failed (reasons in the status column of {}/galaxies.csv)", rows.len(), req.out.display());
    }
    Ok(())
}

/// Runs the request's manifest with a progress bar and a summary; returns the rows (the caller
/// writes galaxies.csv and the figure, with any extra columns it knows).
pub fn run_manifest(req: &SurveyRequest, model: &LoadedModel) -> Result<Vec<GalaxyRow>> {
    let m = read_manifest(&req.manifest)?;
    let n = m.rows.len();
    let already = m.rows.iter().filter(|r| r.as_ref().is_ok_and(|j| read_status(&req.out, &j.id).is_some_and(|s| s.is_ok()))).count();
    log(&format!(
        "sbipix: {} galaxies in {}{}",
        n,
        req.manifest.display(),
        if already > 0 { format!(" ({already} already done: resuming)") } else { String::new() }
    ));
    let bar = indicatif::ProgressBar::new(n as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("survey {bar:40} {pos}/{len} galaxies [{elapsed_precise} < {eta}] {msg}")
            .expect("template"),
    );
    let t0 = std::time::Instant::now();
    let rows = req.run_galaxies(model, &m, &log, &|done, _, id| {
        bar.set_position(done as u64);
        bar.set_message(id.to_string());
    })?;
    bar.finish_and_clear();
    let ok: Vec<&GalaxyRow> = rows.iter().filter(|r| r.is_ok()).collect();
    let pixels: usize = ok.iter().filter_map(|r| r.summary.as_ref()).map(|s| s.n_pixels).sum();
    let dt = t0.elapsed().as_secs_f64();
    log(&format!(
        "sbipix: {} of {n} galaxies mapped ({pixels} pixels) in {dt:.1} s ({:.1} galaxies/min, {:.0} pixels/s this run) → {}/galaxies.csv, outshining.png",
        ok.len(),
        60.0 * (n - already) as f64 / dt.max(1e-9),
        pixels as f64 / dt.max(1e-9),
        req.out.display()
    ));
    for r in rows.iter().filter(|r| !r.is_ok()).take(10) {
        log(&format!("  failed: {}: {}", r.id, r.status));
    }
    Ok(rows)
}
