//! `sbipix survey learn`: a survey noise model from real per-pixel fluxes and errors.

use super::log;
use crate::args::ImageInputArgs;
use anyhow::{Context, Result, anyhow, bail};
use sbipix::io::arrays::{read_npy_1d_f64, read_npy_2d};
use sbipix::io::unit_factor;
use sbipix::request::band_list;
use sbipix::sim::{BandLimit, LearningData};
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct LearnArgs {
    /// Fluxes as a .npy array [pixels, bands] (µJy unless --unit).
    #[arg(long, requires = "err", conflicts_with_all = ["cube", "images"])]
    pub flux: Option<PathBuf>,
    /// Errors as a .npy array [pixels, bands]; 0 marks pixels without coverage.
    #[arg(long)]
    pub err: Option<PathBuf>,
    #[command(flatten)]
    pub input: ImageInputArgs,
    /// 1σ limits for bands without coverage: a .npy with one value per band (array order) or a
    /// CSV with columns band,sigma_ujy.
    #[arg(long)]
    pub limits: Option<PathBuf>,
    /// Survey name.
    #[arg(long)]
    pub name: String,
    /// One-line description.
    #[arg(long, default_value = "")]
    pub description: String,
    /// Output survey file (TOML).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(a: LearnArgs) -> Result<()> {
    // Gather pixel-major flux and error arrays in µJy; error 0 marks a pixel without coverage.
    let (file, bands, flux, err) = if let Some(fp) = &a.flux {
        let ep = a.err.as_ref().expect("clap requires --err");
        let (f, nf, bf) = read_npy_2d(fp)?;
        let (e, ne, be) = read_npy_2d(ep)?;
        if (nf, bf) != (ne, be) {
            bail!("{} has shape ({nf}, {bf}) but {} has ({ne}, {be})", fp.display(), ep.display());
        }
        let bands = band_list(a.input.bands.as_deref().ok_or_else(|| anyhow!("--bands is required with --flux"))?);
        if bands.len() != bf {
            bail!("{} has {bf} bands but --bands names {}", fp.display(), bands.len());
        }
        let k = unit_factor(a.input.unit.as_deref(), None, None, &fp.display().to_string(), &log)?;
        (fp.display().to_string(), bands, f.iter().map(|v| v * k).collect::<Vec<_>>(), e.iter().map(|v| v * k).collect::<Vec<_>>())
    } else if !a.input.input().is_empty() {
        let img = a.input.input().load(&log)?;
        // the same reading as `sbipix map`; band-major images → pixel-major rows, and a pixel
        // whose flux or σ is not a number (image borders, zero weight) has no coverage there
        let (f, e) = img.pixel_rows(&img.bands);
        (img.source.clone(), img.bands.clone(), f, e)
    } else {
        bail!("give --flux/--err, --cube, or --images with --errors or --noise-from");
    };
    let limits = match &a.limits {
        None => Vec::new(),
        Some(p) => read_limits(p, &bands)?,
    };
    let provenance = format!(
        "learnt by `sbipix survey learn` (sbipix {}) from {} ({} pixels){}",
        env!("CARGO_PKG_VERSION"),
        file,
        flux.len() / bands.len().max(1),
        a.limits.as_ref().map(|p| format!("; limits for uncovered bands from {}", p.display())).unwrap_or_default()
    );
    let data = LearningData { file: file.clone(), bands: bands.clone(), flux: &flux, err: &err };
    let survey = sbipix::sim::survey::learn(&data, &limits, &a.name, &a.description, &provenance)?;
    let text = format!("# sbipix survey noise model (see `sbipix survey show`); edit with care\n{}", survey.to_toml());
    sbipix::io::write_atomic(&a.out, |w| Ok(w.write_all(text.as_bytes())?))?;
    for b in &survey.bands {
        let q = &b.sigma_bg_quantiles_ujy;
        log(&format!(
            "  {:<7} median σ_bg {:.3e} µJy, 5–95 % {:.3e}–{:.3e}, Poisson {:.2e} µJy, coverage {:.2}",
            b.name,
            sbipix::sim::survey::quantile_at(q, 0.5),
            sbipix::sim::survey::quantile_at(q, 0.05),
            sbipix::sim::survey::quantile_at(q, 0.95),
            b.poisson_ujy,
            b.coverage
        ));
    }
    log(&format!("sbipix: wrote survey `{}` ({} bands) to {}", survey.name, survey.bands.len(), a.out.display()));
    Ok(())
}

fn read_limits(p: &Path, bands: &[String]) -> Result<Vec<BandLimit>> {
    let src = p.display().to_string();
    if p.extension().is_some_and(|e| e == "npy") {
        // one value per band: a 1-D array (or a 2-D one with a single row or column)
        let v = read_npy_1d_f64(p).or_else(|_| read_npy_2d(p).map(|(v, _, _)| v))?;
        if v.len() != bands.len() {
            bail!("{}: {} limits for {} bands", p.display(), v.len(), bands.len());
        }
        return Ok(bands.iter().zip(v).map(|(b, s)| BandLimit { band: b.clone(), sigma_ujy: s, source: src.clone() }).collect());
    }
    let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with("band") {
            continue;
        }
        let (b, s) = line.split_once(',').ok_or_else(|| anyhow!("{}, line {}: expected `band,sigma_ujy`", p.display(), i + 1))?;
        let s: f64 = s.trim().parse().map_err(|_| anyhow!("{}, line {}: `{}` is not a number", p.display(), i + 1, s.trim()))?;
        out.push(BandLimit { band: b.trim().to_string(), sigma_ujy: s, source: src.clone() });
    }
    Ok(out)
}
