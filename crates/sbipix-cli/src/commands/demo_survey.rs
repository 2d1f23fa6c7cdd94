//! `sbipix demo --survey N`: a synthetic survey with known truth, mapped as `sbipix survey` maps.

use super::log;
use anyhow::{Context, Result, anyhow};
use sbipix::io::arrays::{CardValue, read_fits_image, write_cube};
use sbipix::products::population::{GalaxyRow, galaxy_dir, write_population};
use sbipix::products::synthetic::{GalaxySpec, build};
use sbipix::request::{LoadedModel, SurveyRequest};
use std::collections::HashMap;
use std::path::Path;

/// Per galaxy id: the true log M* of the whole galaxy and the true log M* map.
type Truth = HashMap<String, (f64, Vec<f64>)>;

/// `sbipix demo --survey N`: N synthetic galaxies spanning 10⁷–10¹¹ M☉ with known truth.
pub fn run(out: &Path, model: &str, n: usize, exact: &crate::args::ExactArgs) -> Result<()> {
    if n == 0 {
        return Err(sbipix::Error::invalid("survey", n, "the synthetic survey needs at least 1 galaxy").into());
    }
    let t0 = std::time::Instant::now();
    std::fs::create_dir_all(out.join("cubes")).with_context(|| format!("creating {}", out.display()))?;
    let model = LoadedModel::load(model)?;
    let truth = build_galaxies(&model, out, n)?;
    // mapped as `sbipix survey` maps, with its defaults
    let req = SurveyRequest {
        manifest: out.join("manifest.csv"),
        out: out.join("survey"),
        refine: exact.exact(),
        sys_err: exact.sys_err,
        ..SurveyRequest::default()
    };
    let rows = super::survey::run_manifest(&req, &model)?;
    let (d_res, d_int) = compare_with_truth(&req.out, &rows, &truth)?;
    let med = |v: &[(f64, f64)]| {
        let mut d: Vec<f64> = v.iter().map(|p| p.1).collect();
        d.sort_by(f64::total_cmp);
        if d.is_empty() { f64::NAN } else { d[d.len() / 2] }
    };
    outln!("{:>22} {:>9} {:>22} {:>22}", "true log M* (fitted)", "galaxies", "resolved − true (med)", "integrated − true (med)")?;
    for (lo, hi) in [(6.0, 8.0), (8.0, 9.0), (9.0, 10.0), (10.0, 12.0)] {
        let r: Vec<(f64, f64)> = d_res.iter().cloned().filter(|p| p.0 >= lo && p.0 < hi).collect();
        let i: Vec<(f64, f64)> = d_int.iter().cloned().filter(|p| p.0 >= lo && p.0 < hi).collect();
        outln!("{:>22} {:>9} {:>22.3} {:>22.3}", format!("{lo:.0}–{hi:.0}"), r.len(), med(&r), med(&i))?;
    }
    let failed = rows.iter().filter(|r| !r.is_ok()).count();
    log(&format!(
        "sbipix: synthetic survey done in {:.0} s: {} mapped, {failed} without pixels above S/N 5 (recorded); {}/survey/galaxies.csv (with truth columns), outshining.png",
        t0.elapsed().as_secs_f64(),
        rows.len() - failed,
        out.display()
    ));
    Ok(())
}

/// Writes `n` synthetic galaxies as cubes into `out/cubes` and their manifest; returns the truth.
fn build_galaxies(model: &LoadedModel, out: &Path, n: usize) -> Result<Truth> {
    let mut survey = model
        .post
        .survey
        .clone()
        .ok_or_else(|| anyhow!("{}: no survey.toml (the noise model to observe the galaxies with)", model.post.dir.display()))?;
    // an image has one depth: the survey's learnt noise, not the family of depths it trains on
    survey.family = None;
    let (fwd, _) = model.forward_model(&log)?;
    log(&format!(
        "sbipix: building {n} synthetic galaxies (32×32 pixels, z 0.5–4, log M* ≈ 7–11; sizes and dust growing with mass; every other one with a young clump) with `{}` noise",
        survey.name
    ));
    let mut manifest = String::from("id,cube,redshift\n");
    let mut truth = Truth::new();
    let bar = super::progress_bar(n as u64, "build");
    for k in 0..n {
        // deterministic spread: a low-discrepancy sequence over (mass, size, redshift, dust)
        let u = |d: u32| ((k as f64 + 0.5) * [0.618_034, 0.754_878, 0.569_840, 0.438_271][d as usize]).fract();
        // central-pixel formed mass 10^5.8–10^10 → totals ≈ 10^7–10^11; bigger galaxies are
        // larger (a size–mass relation) and dustier
        let x = u(0);
        let spec = GalaxySpec {
            size: 32,
            redshift: 0.5 + 3.5 * u(2),
            log_mass_centre: 5.8 + 4.2 * x,
            r_eff_pix: 1.5 + 2.5 * x + 0.8 * u(1),
            axis_ratio: 0.5 + 0.5 * u(3),
            seed: 1000 + k as u64,
            av_centre: 0.1 + 1.4 * x,
            clump: k % 2 == 0,
        };
        let g = build(&fwd, &survey, &spec)?;
        let id = format!("gal{k:04}");
        let f32v = |v: &[f64]| v.iter().map(|x| *x as f32).collect::<Vec<f32>>();
        let path = out.join("cubes").join(format!("{id}.fits"));
        let im = &g.images;
        let z = [("REDSHIFT".into(), CardValue::Num(g.redshift))];
        write_cube(&path, &im.bands, im.ny, im.nx, &f32v(&im.flux), &f32v(&im.err), &im.wcs, &z)?;
        manifest.push_str(&format!("{id},cubes/{id}.fits,{}\n", g.redshift));
        let tm: f64 = g.truth[0].iter().filter(|v| v.is_finite()).map(|v| 10f64.powf(*v)).sum::<f64>().log10();
        truth.insert(id, (tm, g.truth[0].clone()));
        bar.set_position(k as u64 + 1);
    }
    bar.finish_and_clear();
    sbipix::io::write_atomic(&out.join("manifest.csv"), |w| Ok(w.write_all(manifest.as_bytes())?))?;
    Ok(truth)
}

/// Writes galaxies.csv with truth columns (the galaxy's total mass, and that of the pixels the
/// survey fitted); returns (true fitted log M*, resolved − true) and (…, integrated − true).
#[allow(clippy::type_complexity)]
fn compare_with_truth(survey_out: &Path, rows: &[GalaxyRow], truth: &Truth) -> Result<(Vec<(f64, f64)>, Vec<(f64, f64)>)> {
    let names = vec!["log_mstar_true_total".to_string(), "log_mstar_true_fitted".to_string()];
    let mut extra = HashMap::new();
    let (mut d_res, mut d_int) = (Vec::new(), Vec::new());
    for r in rows {
        let (tm, t) = &truth[&r.id];
        let mut v = vec![format!("{tm:.4}"), String::new()];
        if r.is_ok()
            && let Ok(m) = read_fits_image(&galaxy_dir(survey_out, &r.id).join("maps.fits"), "MASK")
            && let Some(s) = r.summary.as_ref()
        {
            let tf = m.data.iter().zip(t).filter(|(m, v)| **m == 1.0 && v.is_finite()).map(|(_, v)| 10f64.powf(*v)).sum::<f64>().log10();
            v[1] = format!("{tf:.4}");
            d_res.push((tf, s.log_mstar_resolved[1] - tf));
            d_int.push((tf, s.log_mstar_integrated[1] - tf));
        }
        extra.insert(r.id.clone(), v);
    }
    write_population(survey_out, rows, Some((&names, &extra)))?;
    Ok((d_res, d_int))
}
