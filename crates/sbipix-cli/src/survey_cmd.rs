//! `sbipix survey`, `sbipix prior` and `sbipix simulate`.

use crate::args::{ErrorKind, LearnArgs, PriorAction, SfhPriorArg, SimulateArgs, SurveyAction};
use crate::commands::{log, progress_bar};
use anyhow::{Context, Result, anyhow, bail};
use sbipix::io::DataStore;
use sbipix::io::arrays::{FluxUnit, parse_unit, read_cube, read_fits_image, read_npy_1d_f64, read_npy_2d};
use sbipix::sim::{BandLimit, LearningData, Prior, SimulationSpec};
use sbipix::sps::{ModelConfig, band_name_from_file_name};
use sbipix::training_set::{load_survey, model_for_survey, simulate_to_dir};
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

const JADES_BANDS: [&str; 19] = [
    "F090W", "F115W", "F150W", "F182M", "F200W", "F210M", "F277W", "F335M", "F356W", "F410M", "F430M", "F444W", "F460M", "F480M",
    "F435W", "F606W", "F775W", "F814W", "F850LP",
];

fn band_list(s: &str) -> Vec<String> {
    if s.trim() == "jades" {
        JADES_BANDS.iter().map(|b| b.to_string()).collect()
    } else {
        s.split(',').map(|b| b.trim().to_string()).filter(|b| !b.is_empty()).collect()
    }
}

fn unit_factor(unit: Option<&str>, bunit: Option<&str>, pixar_sr: Option<f64>, what: &str) -> Result<f64> {
    let name = unit.or(bunit);
    let Some(name) = name else {
        log(&format!("sbipix: {what}: no BUNIT and no --unit: assuming µJy per pixel"));
        return Ok(1.0);
    };
    match parse_unit(name) {
        Some(FluxUnit::Factor(f)) => Ok(f),
        Some(FluxUnit::MJyPerSr) => {
            let sr = pixar_sr.ok_or_else(|| anyhow!("{what}: unit MJy/sr needs the PIXAR_SR header keyword (pixel solid angle)"))?;
            Ok(1e12 * sr)
        }
        None => bail!("{what}: unknown flux unit `{name}` (uJy, nJy, 10nJy, mJy, Jy, MJy/sr)"),
    }
}

fn learn(a: LearnArgs) -> Result<()> {
    // Gather pixel-major flux and error arrays in µJy.
    let (file, bands, flux, err) = if let Some(fp) = &a.flux {
        let ep = a.err.as_ref().expect("clap requires --err");
        let (f, nf, bf) = read_npy_2d(fp)?;
        let (e, ne, be) = read_npy_2d(ep)?;
        if (nf, bf) != (ne, be) {
            bail!("{} has shape ({nf}, {bf}) but {} has ({ne}, {be})", fp.display(), ep.display());
        }
        let bands = band_list(a.bands.as_deref().ok_or_else(|| anyhow!("--bands is required with --flux"))?);
        if bands.len() != bf {
            bail!("{} has {bf} bands but --bands names {}", fp.display(), bands.len());
        }
        let k = unit_factor(a.unit.as_deref(), None, None, &fp.display().to_string())?;
        (fp.display().to_string(), bands, f.iter().map(|v| v * k).collect::<Vec<_>>(), e.iter().map(|v| v * k).collect::<Vec<_>>())
    } else if let Some(cp) = &a.cube {
        let c = read_cube(cp)?;
        let k = unit_factor(a.unit.as_deref(), c.bunit.as_deref(), None, &cp.display().to_string())?;
        let bands = match &a.bands {
            Some(b) => band_list(b),
            None => c.bands.clone(),
        };
        let (nb, npix) = (c.bands.len(), c.ny * c.nx);
        if bands.len() != nb {
            bail!("{} has {nb} bands but --bands names {}", cp.display(), bands.len());
        }
        let mut f = vec![0.0; npix * nb];
        let mut e = vec![0.0; npix * nb];
        for b in 0..nb {
            for p in 0..npix {
                f[p * nb + b] = c.flux[b * npix + p] * k;
                e[p * nb + b] = c.err[b * npix + p] * k;
            }
        }
        (cp.display().to_string(), bands, f, e)
    } else if !a.images.is_empty() {
        if a.images.len() != a.errors.len() {
            bail!("{} images but {} error maps", a.images.len(), a.errors.len());
        }
        let bands = match &a.bands {
            Some(b) => band_list(b),
            None => a.images.iter().map(|p| band_name_from_file_name(&p.file_name().unwrap_or_default().to_string_lossy())).collect(),
        };
        if bands.len() != a.images.len() {
            bail!("{} images but --bands names {}", a.images.len(), bands.len());
        }
        let nb = bands.len();
        let mut shape = None;
        let (mut f, mut e) = (Vec::new(), Vec::new());
        for (b, (ip, ep)) in a.images.iter().zip(&a.errors).enumerate() {
            let im = read_fits_image(ip, "")?;
            let er = read_fits_image(ep, "")?;
            if (im.ny, im.nx) != (er.ny, er.nx) {
                bail!("{} is {}×{} but {} is {}×{}", ip.display(), im.ny, im.nx, ep.display(), er.ny, er.nx);
            }
            if let Some((ny, nx)) = shape {
                if (im.ny, im.nx) != (ny, nx) {
                    bail!("{} is {}×{}, the first image {ny}×{nx}", ip.display(), im.ny, im.nx);
                }
            } else {
                shape = Some((im.ny, im.nx));
                f = vec![0.0; im.ny * im.nx * nb];
                e = vec![0.0; im.ny * im.nx * nb];
            }
            let k = unit_factor(a.unit.as_deref(), im.bunit.as_deref(), im.pixar_sr, &ip.display().to_string())?;
            for p in 0..im.ny * im.nx {
                f[p * nb + b] = im.data[p] * k;
                let s = match a.error_kind {
                    ErrorKind::Sigma => er.data[p],
                    ErrorKind::Weight => {
                        if er.data[p] > 0.0 {
                            1.0 / er.data[p].sqrt()
                        } else {
                            0.0
                        }
                    }
                };
                e[p * nb + b] = s * k;
            }
        }
        ("images".to_string(), bands, f, e)
    } else {
        bail!("give --flux/--err, --cube, or --images/--errors");
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
