//! `sbipix map`.

use crate::args::{FitArgs, MapArgs};
use crate::commands::log;
use crate::train_cmd::resolve_model;
use anyhow::{Result, anyhow, bail};
use sbipix::inference::model::Posterior;
use {
    sbipix::products::map::{MapOptions, map_galaxy_with_progress},
    sbipix::products::map_fits::write_maps,
};

pub fn map(a: MapArgs) -> Result<()> {
    let model = resolve_model(&a.model)?;
    let post = Posterior::load(&model)?;
    let img = crate::inputs::load_images(&a.input)?.ok_or_else(|| anyhow!("give --cube, or --images with --errors or --noise-from"))?;
    let z = a.redshift.or(img.redshift).ok_or_else(|| anyhow!("no redshift: give --redshift (or a REDSHIFT keyword in {})", img.source))?;
    let mut opts = MapOptions::new(z);
    opts.snr_min = a.snr_min;
    opts.n_draws = a.draws;
    opts.seed = a.seed;
    if let (Some(seg), Some(id)) = (&a.seg, a.id) {
        opts.segmentation = Some((sbipix::io::read_segmentation(seg, id, None, img.ny, img.nx)?, id));
    }
    // fail early on an output folder that cannot be made (nothing is written until the end)
    let parent = a.out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    if a.out.exists() && !a.out.is_dir() {
        bail!("{} exists and is not a folder", a.out.display());
    }
    if !a.out.exists() && !parent.is_dir() {
        bail!("cannot write {}: folder {} does not exist", a.out.display(), parent.display());
    }
    if !a.no_ppc {
        opts.ppc = sbipix::inference::ppc::ppc_model_or_warn(&post, &log);
    }
    if let Some(settings) = a.refine.settings()? {
        let (fwd, prior) = match &opts.ppc {
            Some(m) => m.clone(),
            None => sbipix::inference::ppc::ppc_model(&sbipix::io::DataStore::from_env()?, &post, &log)?,
        };
        opts.refine = Some((settings, fwd, prior));
    }
    let m = map_with_bar(&post, &img, &opts)?;
    write_maps(&a.out, &img, &m)?;
    let s = &m.summary;
    log(&format!(
        "sbipix: {} pixels fitted in {:.1} s ({:.2} ms/pixel, {} draws each)\n  log M* resolved {:.2} (+{:.2}/−{:.2}), integrated {:.2} (+{:.2}/−{:.2})\n  wrote {}/maps.fits, maps.png, summary.json",
        s.n_pixels,
        s.seconds,
        s.ms_per_pixel,
        opts.n_draws,
        s.log_mstar_resolved[1],
        s.log_mstar_resolved[2] - s.log_mstar_resolved[1],
        s.log_mstar_resolved[1] - s.log_mstar_resolved[0],
        s.log_mstar_integrated[1],
        s.log_mstar_integrated[2] - s.log_mstar_integrated[1],
        s.log_mstar_integrated[1] - s.log_mstar_integrated[0],
        a.out.display()
    ));
    if let Some(r) = &s.refinement {
        log(&format!(
            "  refined {:.1} % of the pixels with the likelihood ({:.1} % by the exact SMC; REFINED layer)",
            100.0 * r.refined_fraction,
            100.0 * r.exact_smc_fraction
        ));
    }
    if let (Some(c), Some(r)) = (s.ppc_median_chi2_reduced, &s.ppc_median_residual_sigma) {
        let worst = r.iter().max_by(|x, y| x.1.abs().total_cmp(&y.1.abs()));
        log(&format!(
            "  posterior-predictive check: median reduced χ² {c:.2}{}",
            worst.map(|(b, v)| format!(", largest median residual {b} {v:+.2}σ")).unwrap_or_default()
        ));
    }
    Ok(())
}

pub fn fit(a: FitArgs) -> Result<()> {
    // before the (long) fit: the output can be written
    sbipix::check_output(&a.out, a.overwrite)?;
    if a.draws == 0 {
        bail!("--draws must be at least 1");
    }
    let model = resolve_model(&a.model)?;
    let post = Posterior::load(&model)?;
    let cols = sbipix::products::catalog_fit::CatalogColumns {
        flux: a.flux_columns.clone(),
        err: a.err_columns.clone(),
        redshift: a.redshift_column.clone(),
        id: Some(a.id_column.clone()),
        unit: a.unit.clone(),
        error_floor: a.error_floor,
    };
    let refine = a.refine.settings()?;
    let forward = match (a.no_ppc, refine.is_some()) {
        (_, true) => Some(sbipix::inference::ppc::ppc_model(&sbipix::io::DataStore::from_env()?, &post, &log)?),
        (false, false) => sbipix::inference::ppc::ppc_model_or_warn(&post, &log),
        (true, false) => None,
    };
    let t0 = std::time::Instant::now();
    let fit =
        sbipix::products::catalog_fit::fit_catalog(&post, &a.catalog, &cols, a.draws, a.seed, forward.as_ref(), !a.no_ppc, refine, &log)?;
    let n = fit.ids.len();
    let failed: Vec<usize> = (0..n).filter(|&r| fit.status[r] != "ok").collect();
    if failed.len() == n {
        // nothing to write: say why for the first rows
        let why: Vec<String> = failed.iter().take(3).map(|&r| format!("{}: {}", fit.ids[r], fit.status[r])).collect();
        bail!("no object of {} could be fitted ({}{})", a.catalog.display(), why.join("; "), if n > 3 { "; …" } else { "" });
    }
    sbipix::products::catalog_fit::write_fit_csv(&a.out, &fit)?;
    log(&format!(
        "sbipix: fitted {} of {n} objects ({} draws each) in {:.1} s → {}",
        n - failed.len(),
        a.draws,
        t0.elapsed().as_secs_f64(),
        a.out.display()
    ));
    if let Some(res) = &fit.ppc_residual_sigma {
        let mut c: Vec<f64> = fit.ppc_chi2.iter().cloned().filter(|v| v.is_finite()).collect();
        c.sort_by(f64::total_cmp);
        let worst = res.iter().max_by(|x, y| x.1.abs().total_cmp(&y.1.abs()));
        log(&format!(
            "  posterior-predictive check: median reduced χ² {:.2}{}",
            if c.is_empty() { f64::NAN } else { c[c.len() / 2] },
            worst.map(|(b, v)| format!(", largest median residual {b} {v:+.2}σ")).unwrap_or_default()
        ));
        log(&format!("  median residual per band (σ): {}", res.iter().map(|(b, v)| format!("{b} {v:+.1}")).collect::<Vec<_>>().join(", ")));
    }
    for &r in failed.iter().take(5) {
        log(&format!("  not fitted: {} ({})", fit.ids[r], fit.status[r]));
    }
    if failed.len() > 5 {
        log(&format!("  … and {} more (see the status column)", failed.len() - 5));
    }
    Ok(())
}

/// [`map_galaxy_with_progress`] with a progress bar on stderr: for large maps, and always when
/// refining (≈ 0.8 s a pixel).
pub fn map_with_bar(post: &Posterior, img: &sbipix::ImageSet, opts: &MapOptions) -> Result<sbipix::products::map::GalaxyMaps> {
    let bar = indicatif::ProgressBar::hidden();
    let min_bar = if opts.refine.is_some() { 1 } else { 20_000 };
    let m = map_galaxy_with_progress(post, img, opts, &log, &|done, total| {
        if total >= min_bar && bar.is_hidden() {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.set_length(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("map {bar:40} {pos}/{len} pixels [{elapsed_precise} < {eta}]").expect("template"),
            );
        }
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    Ok(m)
}
