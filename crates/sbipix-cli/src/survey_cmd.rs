//! `sbipix survey`, `sbipix prior` and `sbipix simulate`.

use crate::args::{LearnArgs, PriorAction, SfhPriorArg, SimulateArgs, SurveyAction};
use crate::commands::{log, progress_bar};
use crate::inputs::{band_list, load_images};
use anyhow::{Context, Result, anyhow, bail};
use sbipix::inference::training_set::{load_survey, model_for_survey, simulate_to_dir};
use sbipix::io::DataStore;
use sbipix::io::arrays::{read_npy_1d_f64, read_npy_2d};
use sbipix::io::unit_factor;
use sbipix::sim::{BandLimit, LearningData, Prior, SimulationSpec};
use sbipix::sps::ModelConfig;
use std::path::Path;

pub fn prior(action: PriorAction) -> Result<()> {
    match action {
        PriorAction::Show { sfh } => {
            let p = match sfh {
                SfhPriorArg::DelayedTau => sbipix::sim::prior::DELAYED_TAU_TOML,
                SfhPriorArg::DenseBasis => sbipix::sim::prior::DENSE_BASIS_TOML,
            };
            print!("{p}");
        }
    }
    Ok(())
}

pub fn survey(action: SurveyAction) -> Result<()> {
    match action {
        SurveyAction::Show { survey } => {
            let (s, _) = load_survey(&survey)?;
            print!("{}", s.to_toml());
            Ok(())
        }
        SurveyAction::Learn(a) => learn(*a),
        SurveyAction::Segment(a) => crate::population_cmd::segment(a),
    }
}

fn learn(a: LearnArgs) -> Result<()> {
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
    } else if let Some(img) = load_images(&a.input)? {
        // the same reading as `sbipix map`; band-major images → pixel-major rows, and a pixel
        // whose flux or σ is not a number (image borders, zero weight) has no coverage there
        let (nb, np) = (img.bands.len(), img.ny * img.nx);
        let (mut f, mut e) = (vec![0.0; np * nb], vec![0.0; np * nb]);
        for b in 0..nb {
            for p in 0..np {
                let (x, s) = (img.flux[b * np + p], img.err[b * np + p]);
                if x.is_finite() && s.is_finite() && s > 0.0 {
                    f[p * nb + b] = x;
                    e[p * nb + b] = s;
                }
            }
        }
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

pub fn simulate(a: SimulateArgs) -> Result<()> {
    let prior = match &a.prior {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Prior::from_toml_str(&text, &p.display().to_string())?
        }
        None => match a.sfh {
            SfhPriorArg::DelayedTau => Prior::sbipix_delayed_tau(),
            SfhPriorArg::DenseBasis => Prior::sbipix_dense_basis(),
        },
    };
    if a.n == 0 {
        bail!("--n must be at least 1");
    }
    let (survey, base) = load_survey(&a.survey)?;
    if a.out.exists() && !a.overwrite {
        bail!("{} already exists (use --overwrite to replace it)", a.out.display());
    }
    let store = DataStore::from_env()?;
    let model = model_for_survey(&store, &survey, &base, ModelConfig::default(), &log)?;
    let bar = progress_bar(a.n as u64, "simulate");
    let t0 = std::time::Instant::now();
    let spec = SimulationSpec { n: a.n, seed: a.seed, drop_rate: a.drop_rate };
    let m = simulate_to_dir(&model, &prior, &survey, spec, &a.out, a.overwrite, &|k| bar.set_position(k as u64))?;
    bar.finish_and_clear();
    let dt = t0.elapsed().as_secs_f64();
    log(&format!(
        "sbipix: {} simulations ({} parameters, {} bands, survey {}) in {:.1} s ({:.0}/s) → {}",
        m.n,
        m.parameters.len(),
        m.bands.len(),
        m.survey,
        dt,
        m.n as f64 / dt,
        a.out.display()
    ));
    Ok(())
}
