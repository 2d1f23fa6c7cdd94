//! `sbipix survey --manifest …` (survey mode), `sbipix survey segment` and `sbipix demo --survey N`.

use crate::args::{SegmentArgs, SurveyRunArgs};
use crate::commands::log;
use crate::train_cmd::resolve_model;
use anyhow::{Context, Result, anyhow, bail};
use sbipix::inference::model::Posterior;
use sbipix::products::population::{GalaxyRow, SurveyOptions, read_manifest, run_survey, write_population};
use std::path::Path;

fn survey_options(post: &Posterior, draws: usize, snr_min: f64, seed: u64, ppc: bool) -> Result<SurveyOptions> {
    if draws == 0 {
        bail!("--draws must be at least 1");
    }
    let ppc = if ppc { sbipix::inference::ppc::ppc_model_or_warn(post, &log) } else { None };
    Ok(SurveyOptions { n_draws: draws, snr_min, seed, ppc })
}

/// Runs a manifest; returns the rows (the caller writes galaxies.csv and the figure, with any
/// extra columns it knows).
fn run_manifest(post: &Posterior, manifest: &Path, out: &Path, opts: &SurveyOptions) -> Result<Vec<GalaxyRow>> {
    let m = read_manifest(manifest)?;
    let n = m.rows.len();
    let already = m
        .rows
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|j| sbipix::products::population::read_status(out, &j.id).is_some_and(|s| s.status == "ok")))
        .count();
    log(&format!(
        "sbipix: {} galaxies in {}{}",
        n,
        manifest.display(),
        if already > 0 { format!(" ({already} already done: resuming)") } else { String::new() }
    ));
    let bar = indicatif::ProgressBar::new(n as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("survey {bar:40} {pos}/{len} galaxies [{elapsed_precise} < {eta}] {msg}")
            .expect("template"),
    );
    let t0 = std::time::Instant::now();
    let rows = run_survey(post, &m, out, opts, &|done, _, id| {
        bar.set_position(done as u64);
        bar.set_message(id.to_string());
    })?;
    bar.finish_and_clear();
    let ok: Vec<&GalaxyRow> = rows.iter().filter(|r| r.status == "ok").collect();
    let pixels: usize = ok.iter().filter_map(|r| r.summary.as_ref()).map(|s| s.n_pixels).sum();
    let dt = t0.elapsed().as_secs_f64();
    log(&format!(
        "sbipix: {} of {n} galaxies mapped ({pixels} pixels) in {dt:.1} s ({:.1} galaxies/min, {:.0} pixels/s this run) → {}/galaxies.csv, outshining.png",
        ok.len(),
        60.0 * (n - already) as f64 / dt.max(1e-9),
        pixels as f64 / dt.max(1e-9),
        out.display()
    ));
    for r in rows.iter().filter(|r| r.status != "ok").take(10) {
        log(&format!("  failed: {}: {}", r.id, r.status));
    }
    Ok(rows)
}

pub fn run(a: SurveyRunArgs) -> Result<()> {
    let (Some(manifest), Some(out)) = (&a.manifest, &a.out) else {
        bail!("survey mode needs --manifest FILE and --out DIR (or a subcommand: learn, show, segment; see --help)");
    };
    if out.exists() && !out.is_dir() {
        bail!("{} exists and is not a folder", out.display());
    }
    let model = resolve_model(&a.model)?;
    let post = Posterior::load(&model)?;
    let opts = survey_options(&post, a.draws, a.snr_min, a.seed, !a.no_ppc)?;
    let rows = run_manifest(&post, manifest, out, &opts)?;
    write_population(out, &rows, None)?;
    let failed = rows.iter().filter(|r| r.status != "ok").count();
    if failed > 0 {
        bail!("{failed} of {} galaxies failed (reasons in the status column of {}/galaxies.csv)", rows.len(), out.display());
    }
    Ok(())
}

/// 8-connected components of `mask` [ny × nx]; labels 1… by decreasing size, components smaller
/// than `min` dropped (0).
pub fn components(mask: &[bool], ny: usize, nx: usize, min: usize) -> Vec<u32> {
    let mut label = vec![0u32; ny * nx];
    let mut comps: Vec<Vec<usize>> = Vec::new();
    for start in 0..ny * nx {
        if !mask[start] || label[start] != 0 {
            continue;
        }
        let id = comps.len() as u32 + 1;
        let mut stack = vec![start];
        let mut members = Vec::new();
        label[start] = id;
        while let Some(p) = stack.pop() {
            members.push(p);
            let (y, x) = ((p / nx) as isize, (p % nx) as isize);
            for dy in -1..=1isize {
                for dx in -1..=1isize {
                    let (yy, xx) = (y + dy, x + dx);
                    if (dy, dx) != (0, 0) && yy >= 0 && xx >= 0 && (yy as usize) < ny && (xx as usize) < nx {
                        let q = yy as usize * nx + xx as usize;
                        if mask[q] && label[q] == 0 {
                            label[q] = id;
                            stack.push(q);
                        }
                    }
                }
            }
        }
        comps.push(members);
    }
    let mut order: Vec<usize> = (0..comps.len()).filter(|&i| comps[i].len() >= min).collect();
    order.sort_by(|a, b| comps[*b].len().cmp(&comps[*a].len()).then(a.cmp(b)));
    let mut out = vec![0u32; ny * nx];
    for (k, &i) in order.iter().enumerate() {
        for &p in &comps[i] {
            out[p] = k as u32 + 1;
        }
    }
    out
}

pub fn segment(a: SegmentArgs) -> Result<()> {
    use sbipix::io::arrays::{OutImage, write_image_fits};
    let img = sbipix::ImageSet::from_cube(&a.cube, None, &log)?;
    let (ny, nx, np) = (img.ny, img.nx, img.ny * img.nx);
    let sel: Vec<usize> = ["F277W", "F356W", "F444W"].iter().filter_map(|b| img.bands.iter().position(|x| x == b)).collect();
    if sel.is_empty() {
        bail!("{}: none of F277W, F356W, F444W (the S/N bands)", a.cube.display());
    }
    let snr: Vec<f64> = (0..np)
        .map(|p| {
            let v: Vec<f64> = sel
                .iter()
                .map(|&b| (img.flux[b * np + p], img.err[b * np + p]))
                .filter(|(f, e)| f.is_finite() && e.is_finite() && *e > 0.0)
                .map(|(f, e)| f / e)
                .collect();
            if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 }
        })
        .collect();
    let mask: Vec<bool> = snr.iter().map(|s| *s > a.snr_min).collect();
    let seg = components(&mask, ny, nx, a.min_pixels.max(1));
    let n = seg.iter().copied().max().unwrap_or(0) as usize;
    if n == 0 {
        bail!("no source of ≥ {} pixels with S/N > {} in {}", a.min_pixels, a.snr_min, a.cube.display());
    }
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let segf: Vec<f32> = seg.iter().map(|v| *v as f32).collect();
    write_image_fits(
        &a.out.join("seg.fits"),
        ny,
        nx,
        &[OutImage { name: "SEG".into(), data: &segf, bunit: String::new(), comment: "source id (0 = sky)".into() }],
        &img.wcs,
        &[],
    )?;
    let cube = std::fs::canonicalize(&a.cube).with_context(|| format!("resolving {}", a.cube.display()))?;
    let mut text = String::from("id,cube,redshift,seg,seg_id,x0,y0,nx,ny\n");
    for k in 1..=n {
        let pix: Vec<usize> = (0..np).filter(|&p| seg[p] == k as u32).collect();
        let (mut x0, mut x1, mut y0, mut y1) = (nx, 0, ny, 0);
        for &p in &pix {
            let (y, x) = (p / nx, p % nx);
            (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
        }
        // a margin of 5 pixels around the source, inside the field
        let (x0, y0) = (x0.saturating_sub(5), y0.saturating_sub(5));
        let (x1, y1) = ((x1 + 6).min(nx), (y1 + 6).min(ny));
        text.push_str(&format!("src{k},{},{},seg.fits,{k},{x0},{y0},{},{}\n", cube.display(), a.redshift, x1 - x0, y1 - y0));
        log(&format!("  src{k}: {} pixels, box x {x0}..{x1}, y {y0}..{y1}", pix.len()));
    }
    sbipix::io::write_atomic(&a.out.join("manifest.csv"), |w| Ok(w.write_all(text.as_bytes())?))?;
    log(&format!(
        "sbipix: {n} sources (S/N > {}, ≥ {} pixels) → {}/seg.fits, manifest.csv (redshift {} for all: edit per source)",
        a.snr_min,
        a.min_pixels,
        a.out.display(),
        a.redshift
    ));
    Ok(())
}

/// `sbipix demo --survey N`: N synthetic galaxies spanning 10⁷–10¹¹ M☉ with known truth.
pub fn demo_survey(out: &Path, model: &str, n: usize) -> Result<()> {
    use sbipix::io::arrays::{CardValue, write_cube};
    use sbipix::products::synthetic::{GalaxySpec, build};
    if n == 0 {
        bail!("--survey needs at least 1 galaxy");
    }
    let t0 = std::time::Instant::now();
    std::fs::create_dir_all(out.join("cubes")).with_context(|| format!("creating {}", out.display()))?;
    let model_dir = resolve_model(model)?;
    let post = Posterior::load(&model_dir)?;
    let survey = post
        .survey
        .clone()
        .ok_or_else(|| anyhow!("{}: no survey.toml (the noise model to observe the galaxies with)", model_dir.display()))?;
    let store = sbipix::io::DataStore::from_env()?;
    let fwd = sbipix::inference::training_set::model_for_survey(&store, &survey, &model_dir, post.manifest.forward_model.clone(), &log)?;
    log(&format!(
        "sbipix: building {n} synthetic galaxies (32×32 pixels, z 0.5–4, log M* ≈ 7–11; sizes and dust growing with mass; every other one with a young clump) with `{}` noise",
        survey.name
    ));
    let mut manifest = String::from("id,cube,redshift\n");
    let mut truth: std::collections::HashMap<String, (f64, Vec<f64>)> = std::collections::HashMap::new();
    let bar = crate::commands::progress_bar(n as u64, "build");
    for k in 0..n {
        // deterministic spread: a low-discrepancy sequence over (mass, size, redshift, dust)
        let u = |d: u32| ((k as f64 + 0.5) * [0.618_034, 0.754_878, 0.569_840, 0.438_271][d as usize]).fract();
        // central-pixel formed mass 10^5.8–10^10 → totals ≈ 10^7–10^11; bigger galaxies are
        // larger (a size–mass relation) and dustier
        let x = u(0);
        let log_mass_centre = 5.8 + 4.2 * x;
        let spec = GalaxySpec {
            size: 32,
            redshift: 0.5 + 3.5 * u(2),
            log_mass_centre,
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
        write_cube(
            &path,
            &g.images.bands,
            g.images.ny,
            g.images.nx,
            &f32v(&g.images.flux),
            &f32v(&g.images.err),
            &g.images.wcs,
            &[("REDSHIFT".into(), CardValue::Num(g.redshift))],
        )?;
        manifest.push_str(&format!("{id},cubes/{id}.fits,{}\n", g.redshift));
        let tm: f64 = g.truth[0].iter().filter(|v| v.is_finite()).map(|v| 10f64.powf(*v)).sum::<f64>().log10();
        truth.insert(id, (tm, g.truth[0].clone()));
        bar.set_position(k as u64 + 1);
    }
    bar.finish_and_clear();
    sbipix::io::write_atomic(&out.join("manifest.csv"), |w| Ok(w.write_all(manifest.as_bytes())?))?;
    let opts = survey_options(&post, 500, 5.0, 0, true)?;
    // truth columns: the galaxy's total mass, and that of the pixels the survey fitted
    let names = vec!["log_mstar_true_total".to_string(), "log_mstar_true_fitted".to_string()];
    let rows = run_manifest(&post, &out.join("manifest.csv"), &out.join("survey"), &opts)?;
    let mut extra = std::collections::HashMap::new();
    let mut d_res = Vec::new();
    let mut d_int = Vec::new();
    for r in &rows {
        let (tm, t) = &truth[&r.id];
        let mut v = vec![format!("{tm:.4}"), String::new()];
        if r.status == "ok"
            && let Ok(m) = sbipix::io::arrays::read_fits_image(
                &sbipix::products::population::galaxy_dir(&out.join("survey"), &r.id).join("maps.fits"),
                "MASK",
            )
        {
            let tf = m.data.iter().zip(t).filter(|(m, v)| **m == 1.0 && v.is_finite()).map(|(_, v)| 10f64.powf(*v)).sum::<f64>().log10();
            v[1] = format!("{tf:.4}");
            let s = r.summary.as_ref().expect("ok rows have a summary");
            d_res.push((tf, s.log_mstar_resolved[1] - tf));
            d_int.push((tf, s.log_mstar_integrated[1] - tf));
        }
        extra.insert(r.id.clone(), v);
    }
    write_population(&out.join("survey"), &rows, Some((&names, &extra)))?;
    let med = |v: &[(f64, f64)]| {
        let mut d: Vec<f64> = v.iter().map(|p| p.1).collect();
        d.sort_by(f64::total_cmp);
        if d.is_empty() { f64::NAN } else { d[d.len() / 2] }
    };
    println!("{:>22} {:>9} {:>22} {:>22}", "true log M* (fitted)", "galaxies", "resolved − true (med)", "integrated − true (med)");
    for (lo, hi) in [(6.0, 8.0), (8.0, 9.0), (9.0, 10.0), (10.0, 12.0)] {
        let r: Vec<(f64, f64)> = d_res.iter().cloned().filter(|p| p.0 >= lo && p.0 < hi).collect();
        let i: Vec<(f64, f64)> = d_int.iter().cloned().filter(|p| p.0 >= lo && p.0 < hi).collect();
        println!("{:>22} {:>9} {:>22.3} {:>22.3}", format!("{lo:.0}–{hi:.0}"), r.len(), med(&r), med(&i));
    }
    let failed = rows.iter().filter(|r| r.status != "ok").count();
    log(&format!(
        "sbipix: synthetic survey done in {:.0} s: {} mapped, {failed} without pixels above S/N 5 (recorded); {}/survey/galaxies.csv (with truth columns), outshining.png",
        t0.elapsed().as_secs_f64(),
        rows.len() - failed,
        out.display()
    ));
    Ok(())
}
