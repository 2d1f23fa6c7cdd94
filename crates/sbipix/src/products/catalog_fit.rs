//! Catalogue mode (`sbipix fit`): posteriors for the integrated photometry of many galaxies.
//!
//! Input: a table with one row per object — CSV, a whitespace-separated text table, or a FITS
//! binary table — holding a flux and an error column per band and a redshift. The default column
//! names are `flux_ujy_<BAND>`, `err_ujy_<BAND>`, `redshift` and (optional) `id`; templates
//! (`{band}_Jy_scattered`) and a unit adapt other catalogues without editing them.
//!
//! A band whose flux or error is empty, NaN, or whose error is ≤ 0 is missing for that row. A row
//! that cannot be fitted (no bands, redshift outside the model's range) is reported in the
//! `status` column and the others are fitted; a malformed table (a missing column, a cell that is
//! not a number) stops the run with the file, row and column.

use super::summaries::{object_percentiles, predictive_check};
use crate::inference::integrated::sample_integrated;
use crate::inference::model::Posterior;
use crate::inference::photoz::{PhotoZSettings, RedshiftPosterior, RedshiftTemplates, excess_scatter_warning};
use crate::{Error, Result};
use sbipix_sim::streams;
use std::path::Path;

/// How to find the columns of a catalogue.
#[derive(Debug, Clone)]
pub struct CatalogColumns {
    /// Flux column name with `{band}` for the band name.
    pub flux: String,
    /// Error column name with `{band}`.
    pub err: String,
    pub redshift: String,
    /// Optional id column (rows are numbered from 1 if absent).
    pub id: Option<String>,
    /// Unit of the flux and error columns (µJy when None).
    pub unit: Option<String>,
    /// Fractional error floor added in quadrature (0.05 = 5 % of the flux).
    pub error_floor: f64,
}

impl Default for CatalogColumns {
    /// The columns of [`crate::request::FitRequest::default`].
    fn default() -> Self {
        crate::request::FitRequest::default().columns()
    }
}

/// One fitted catalogue.
pub struct CatalogFit {
    pub ids: Vec<String>,
    /// The catalogue's redshift, or with photometric redshifts the median of p(z).
    pub redshift: Vec<f64>,
    pub n_bands: Vec<usize>,
    pub status: Vec<String>,
    pub params: Vec<String>,
    /// `[rows][parameters][p16, p50, p84]` (NaN where not fitted)
    pub percentiles: Vec<Vec<[f64; 3]>>,
    /// Bands of the model found in the catalogue.
    pub bands_found: Vec<String>,
    /// Posterior-predictive check: reduced χ² of the median prediction per row (NaN where not
    /// fitted or not checked) and the median residual per band in σ over the fitted rows.
    pub ppc_chi2: Vec<f64>,
    pub ppc_residual_sigma: Option<std::collections::BTreeMap<String, f64>>,
    /// With refinement: per row 1 where the posterior is the likelihood-refined one, 0 where the
    /// network's was kept, NaN where not fitted; None without refinement.
    pub refined: Option<Vec<f64>>,
    /// Photometric redshifts, when the catalogue has no redshift or they were asked for: p(z)
    /// per row (None where not fitted) on the grid of [`PhotoZ::grid`].
    pub photo_z: Option<PhotoZ>,
    /// Out-of-distribution flags per row ([`crate::inference::ood::row_flags`]: bands 2,
    /// colours 4), NaN where not fitted; None for a model folder without its survey.
    pub ood: Option<Vec<f64>>,
}

/// The photometric redshifts of a catalogue fit.
pub struct PhotoZ {
    /// The grid's nodes.
    pub grid: Vec<f64>,
    pub rows: Vec<Option<RedshiftPosterior>>,
    pub settings: PhotoZSettings,
}

/// How a catalogue fit gets its redshifts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RedshiftSource {
    /// The redshift column; photometric redshifts (with these settings) if the catalogue has none.
    Column(PhotoZSettings),
    /// Photometric redshifts for every row, whatever the catalogue holds.
    Photometric(PhotoZSettings),
    /// Photometric redshifts alone: no parameter posteriors (their columns stay empty).
    PhotometricOnly(PhotoZSettings),
}

/// Fits every row of the catalogue at `path` with `n_draws` posterior draws.
/// `forward`: the forward model and prior of [`crate::inference::ppc::ppc_model`], for the
/// posterior-predictive check (when `ppc`), the likelihood refinement (when `refine`; its
/// systematic error is at least the catalogue's error floor) and photometric redshifts.
/// With photometric redshifts each row's parameters are marginalised over its p(z): the draws
/// are split among [`PhotoZSettings::z_draws`] redshifts at the quantiles of p(z), each fitted as
/// at a known redshift.
// One pipeline in its order (read → p(z) → network draws → exact posteriors → percentiles →
// check), ≈ 115 lines: each step is a call; what is left inline is the bookkeeping between
// rows and their redshift sub-rows, clearer in one place than spread over helpers.
#[allow(clippy::too_many_arguments)]
pub fn fit_catalog(
    post: &Posterior,
    path: &Path,
    cols: &CatalogColumns,
    z_source: RedshiftSource,
    n_draws: usize,
    seed: u64,
    forward: Option<&(std::sync::Arc<sbipix_sps::SpsModel>, sbipix_sim::Prior)>,
    ppc: bool,
    refine: Option<crate::inference::refine::RefineSettings>,
    log: &dyn Fn(&str),
    progress: &(dyn Fn(&str, usize, usize) + Sync),
) -> Result<CatalogFit> {
    if refine.is_some() && forward.is_none() {
        return Err(Error::unsupported("refinement", "it needs the forward model (the stellar-population data)"));
    }
    let mut cat = read_photometry(post, path, cols, z_source, log)?;
    let (n, nb) = (cat.ids.len(), post.manifest.bands.len());
    let params = crate::inference::refine::exact_parameter_names(post, refine.and(forward.map(|f| &f.1)));
    let np = params.len();
    let sys_frac = refine.map_or(0.0, |r| r.sys_frac).max(cols.error_floor);
    let photo_z = match cat.photo_z {
        Some(settings) => {
            let (fwd, prior) = forward
                .ok_or_else(|| Error::unsupported("photometric redshifts", "they need the forward model (the stellar-population data)"))?;
            Some(photometric_redshifts(post, fwd, prior, &mut cat, settings, sys_frac, log, progress)?)
        }
        None => None,
    };
    let z_only = matches!(z_source, RedshiftSource::PhotometricOnly(_));
    let ok: Vec<usize> = (0..n).filter(|&r| !z_only && cat.status[r] == super::STATUS_OK).collect();
    // Fitted sub-rows: one per row at its redshift, or `z_draws` per row at redshifts of its p(z).
    let per_row = photo_z.as_ref().map_or(1, |p| p.settings.z_draws);
    let sub_draws = n_draws.div_ceil(per_row);
    let row_draws = sub_draws * per_row;
    let mut sub_z = Vec::with_capacity(ok.len() * per_row);
    for &r in &ok {
        match &photo_z {
            Some(p) => sub_z.extend(p.rows[r].as_ref().expect("fitted rows have p(z)").stratified_draws(per_row)),
            None => sub_z.push(cat.redshift[r]),
        }
    }
    let sub_rows: Vec<usize> = ok.iter().flat_map(|&r| std::iter::repeat_n(r, per_row)).collect();
    let mut percentiles = vec![vec![[f64::NAN; 3]; np]; n];
    let mut ppc_chi2 = vec![f64::NAN; n];
    let mut ppc_residual_sigma = None;
    let mut refined = None;
    if !ok.is_empty() {
        let pick = |v: &[f64]| -> Vec<f64> { sub_rows.iter().flat_map(|&r| v[r * nb..(r + 1) * nb].to_vec()).collect() };
        let (fo, so) = (pick(&cat.flux), pick(&cat.sigma));
        let mo: Vec<bool> = sub_rows.iter().flat_map(|&r| cat.seen[r * nb..(r + 1) * nb].to_vec()).collect();
        let draws = sample_integrated(post, &fo, &so, &mo, &sub_z, sub_draws, seed, cols.error_floor)?;
        let mut draws = crate::inference::refine::widen_draws(draws, post.parameter_names().len(), np);
        if let (Some(settings), Some((fwd, prior))) = (refine, forward) {
            log(&format!("sbipix: exact posteriors of {} rows…", ok.len()));
            let settings = crate::inference::refine::RefineSettings { sys_frac, integrated: true, ..settings };
            let total = sub_rows.len();
            let outcomes = crate::inference::refine::refine_all(
                fwd,
                prior,
                &fo,
                &so,
                &mo,
                &sub_z,
                &params,
                &mut draws,
                settings,
                seed ^ streams::REFINE,
                &|k| progress("exact posteriors", k, total),
            )?;
            // a row is refined when every one of its sub-rows is
            let mut flags = vec![f64::NAN; n];
            for (k, o) in outcomes.iter().enumerate() {
                let r = sub_rows[k];
                let v = if o.refined { 1.0 } else { 0.0 };
                flags[r] = if flags[r].is_nan() { v } else { flags[r].min(v) };
            }
            refined = Some(flags);
        }
        // the sub-rows' draws interleaved into each row's
        let block = sub_draws * np;
        let row_d = super::summaries::interleave_draws(ok.len(), per_row, sub_draws, np, |i, s| {
            let start = (i * per_row + s) * block;
            &draws[start..start + block]
        });
        let mut buf = Vec::with_capacity(row_draws);
        for (i, &r) in ok.iter().enumerate() {
            percentiles[r] = object_percentiles(&row_d, i, row_draws, np, &mut buf);
        }
        if let (true, Some((fwd, prior))) = (ppc, forward) {
            // each sub-row checked at its own redshift; a row's χ² the mean of its sub-rows'
            let pred = crate::inference::ppc::ppc_predict(fwd, prior, &params, &draws, sub_draws, &sub_z);
            let c = predictive_check(&pred, &fo, &so, &mo, &post.manifest.bands, cols.error_floor);
            for (i, &r) in ok.iter().enumerate() {
                let v: Vec<f64> = c.chi2[i * per_row..(i + 1) * per_row].iter().copied().filter(|x| x.is_finite()).collect();
                if !v.is_empty() {
                    ppc_chi2[r] = v.iter().sum::<f64>() / v.len() as f64;
                }
            }
            ppc_residual_sigma = Some(c.median_residual_sigma);
        }
    }
    let ood = crate::inference::ood::TrainingDomain::of(post).map(|d| {
        let mut v = vec![f64::NAN; n];
        for &r in &ok {
            v[r] = crate::inference::ood::row_flags(&d, &cat.seen[r * nb..(r + 1) * nb], ppc_chi2[r]) as f64;
        }
        v
    });
    Ok(CatalogFit {
        ood,
        ids: cat.ids,
        redshift: cat.redshift,
        n_bands: cat.n_bands,
        status: cat.status,
        params,
        percentiles,
        bands_found: cat.bands_found,
        ppc_chi2,
        ppc_residual_sigma,
        refined,
        photo_z,
    })
}

/// p(z) of every fittable row of `cat` (its `redshift` becomes p(z)'s median; rows whose p(z)
/// cannot be had get the reason in `status`).
#[allow(clippy::too_many_arguments)]
fn photometric_redshifts(
    post: &Posterior,
    fwd: &sbipix_sps::SpsModel,
    prior: &sbipix_sim::Prior,
    cat: &mut CatalogPhotometry,
    settings: PhotoZSettings,
    sys_frac: f64,
    log: &dyn Fn(&str),
    progress: &(dyn Fn(&str, usize, usize) + Sync),
) -> Result<PhotoZ> {
    use rayon::prelude::*;
    let z_max = settings.z_max.unwrap_or(post.manifest.max_redshift_trained);
    log(&format!(
        "sbipix: photometric redshifts on {:.2} ≤ z ≤ {z_max:.2} (step {} in ln(1+z), {} templates per node, {:?} prior)…",
        settings.z_min, settings.step, settings.templates, settings.prior
    ));
    let t0 = std::time::Instant::now();
    let templates =
        RedshiftTemplates::build(fwd, prior, &settings, z_max, crate::inference::refine::INTEGRATED_MASS_HEADROOM_DEX, &|k, t| {
            progress("redshift templates", k, t)
        })?;
    let t_templates = t0.elapsed().as_secs_f64();
    let nb = post.manifest.bands.len();
    let n = cat.ids.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let rows: Vec<Option<RedshiftPosterior>> = (0..n)
        .into_par_iter()
        .map(|r| {
            if cat.status[r] != super::STATUS_OK {
                return None;
            }
            let k = r * nb..(r + 1) * nb;
            let pz = templates.posterior(&cat.flux[k.clone()], &cat.sigma[k.clone()], &cat.seen[k], sys_frac).ok();
            progress("p(z)", done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1, n);
            pz
        })
        .collect();
    let fitted = rows.iter().flatten().count();
    let t_rows = t0.elapsed().as_secs_f64() - t_templates;
    log(&format!(
        "sbipix: p(z) of {fitted} rows in {t_rows:.1} s ({:.1} ms per row), after {t_templates:.1} s building {} nodes' templates",
        1e3 * t_rows / fitted.max(1) as f64,
        templates.redshifts().len()
    ));
    let mut flagged = std::collections::BTreeMap::<String, usize>::new();
    for (r, pz) in rows.iter().enumerate() {
        match pz {
            Some(p) => {
                cat.redshift[r] = p.percentiles[1];
                for f in &p.flags {
                    *flagged.entry(f.clone()).or_default() += 1;
                }
            }
            None if cat.status[r] == super::STATUS_OK => cat.status[r] = "no photometric redshift (no usable band)".into(),
            None => {}
        }
    }
    for (f, k) in flagged {
        log(&format!("sbipix: {k} rows flagged `{f}`: {}", RedshiftPosterior::explain(&f)));
    }
    if let Some(w) = excess_scatter_warning(&rows) {
        log(&format!("sbipix: {w}"));
    }
    Ok(PhotoZ { grid: templates.redshifts().to_vec(), rows, settings })
}

/// A catalogue's photometry in the model's band order: [rows × bands] µJy, `seen` false where a
/// band has no finite flux with a positive error; a row's status says why it cannot be fitted.
struct CatalogPhotometry {
    ids: Vec<String>,
    /// Some: photometric redshifts are to be fitted (the `redshift` column is NaN until then).
    photo_z: Option<PhotoZSettings>,
    redshift: Vec<f64>,
    flux: Vec<f64>,
    sigma: Vec<f64>,
    seen: Vec<bool>,
    n_bands: Vec<usize>,
    status: Vec<String>,
    bands_found: Vec<String>,
}

/// Reads the catalogue's columns (templates in `cols`) for the model's bands.
fn read_photometry(
    post: &Posterior,
    path: &Path,
    cols: &CatalogColumns,
    z_source: RedshiftSource,
    log: &dyn Fn(&str),
) -> Result<CatalogPhotometry> {
    let file = path.display().to_string();
    let ferr = |reason: String| Error::file(&file, reason);
    let factor = match &cols.unit {
        None => 1.0,
        Some(u) => sbipix_io::unit_factor(Some(u), None, None, &file, log)?,
    };
    for (what, t) in [("flux", &cols.flux), ("error", &cols.err)] {
        if !t.contains("{band}") {
            return Err(Error::invalid(format!("{what} column template"), t, "has no {band}"));
        }
    }
    let t = sbipix_io::read_table(path)?;
    let col = |name: &str| t.header.iter().position(|h| h == name);
    let (zc, photo_z) = match z_source {
        RedshiftSource::Photometric(s) | RedshiftSource::PhotometricOnly(s) => (None, Some(s)),
        RedshiftSource::Column(s) => match col(&cols.redshift) {
            Some(c) => (Some(c), None),
            None => {
                log(&format!("sbipix: {file}: no redshift column `{}`: fitting photometric redshifts", cols.redshift));
                (None, Some(s))
            }
        },
    };
    let idc = cols.id.as_ref().and_then(|n| col(n));
    let bands = &post.manifest.bands;
    let nb = bands.len();
    let mut band_cols: Vec<Option<(usize, usize)>> = Vec::with_capacity(nb);
    for b in bands {
        let (fname, ename) = (cols.flux.replace("{band}", b), cols.err.replace("{band}", b));
        match (col(&fname), col(&ename)) {
            (Some(fi), Some(ei)) => band_cols.push(Some((fi, ei))),
            (Some(_), None) => return Err(ferr(format!("flux column `{fname}` has no error column `{ename}`"))),
            (None, Some(_)) => return Err(ferr(format!("error column `{ename}` has no flux column `{fname}`"))),
            (None, None) => band_cols.push(None),
        }
    }
    let found: Vec<String> = bands.iter().zip(&band_cols).filter(|(_, c)| c.is_some()).map(|(b, _)| b.clone()).collect();
    if found.is_empty() {
        return Err(ferr(format!(
            "no band columns: expected e.g. `{}` and `{}` for the model's bands {} (set --flux-columns/--err-columns)",
            cols.flux.replace("{band}", &bands[0]),
            cols.err.replace("{band}", &bands[0]),
            bands.join(", ")
        )));
    }
    log(&format!("sbipix: {}: {} rows; {} of the model's {} bands found ({})", file, t.rows.len(), found.len(), nb, found.join(" ")));
    let num = |r: usize, c: usize| -> Result<f64> {
        let cell = t.rows[r][c].as_str();
        if cell.is_empty() || cell.eq_ignore_ascii_case("nan") {
            return Ok(f64::NAN);
        }
        cell.parse::<f64>().map_err(|_| Error::Row {
            file: file.clone(),
            row: r + 1,
            line: t.lines[r],
            column: format!(", column `{}`", t.header[c]),
            reason: format!("`{cell}` is not a number"),
        })
    };
    let n = t.rows.len();
    let (mut flux, mut sigma, mut seen) = (vec![f64::NAN; n * nb], vec![f64::NAN; n * nb], vec![false; n * nb]);
    let mut z = vec![f64::NAN; n];
    let mut status = vec![String::from(super::STATUS_OK); n];
    let mut n_bands = vec![0usize; n];
    let zmax = post.manifest.max_redshift_trained;
    for r in 0..n {
        if let Some(zc) = zc {
            z[r] = num(r, zc)?;
        }
        for (b, c) in band_cols.iter().enumerate() {
            if let Some((fi, ei)) = c {
                let (f, e) = (num(r, *fi)? * factor, num(r, *ei)? * factor);
                if f.is_finite() && e.is_finite() && e > 0.0 {
                    flux[r * nb + b] = f;
                    sigma[r * nb + b] = e;
                    seen[r * nb + b] = true;
                    n_bands[r] += 1;
                }
            }
        }
        if n_bands[r] == 0 {
            status[r] = "no band with a finite flux and a positive error".into();
        } else if photo_z.is_none() && !(z[r].is_finite() && z[r] >= 0.0 && z[r] <= zmax) {
            status[r] = format!("redshift {} outside the model's range [0, {zmax}]", z[r]);
        }
    }
    let ids: Vec<String> = (0..n).map(|r| idc.map(|c| t.rows[r][c].clone()).unwrap_or_else(|| (r + 1).to_string())).collect();
    if let Some(w) = negative_flux_warning(&flux, &sigma, bands, &ids, &t.lines) {
        log(&format!("sbipix: {file}: {w}"));
    }
    Ok(CatalogPhotometry { ids, photo_z, redshift: z, flux, sigma, seen, n_bands, status, bands_found: found })
}

/// Fluxes more than this many σ below zero are reported: a source's flux cannot be negative, and
/// Gaussian noise reaches −5σ once in 3.5 million measurements, so these are a background
/// subtraction or extraction gone wrong (e.g. 50 fluxes of 28 galaxies in the JADES PRISM
/// synthetic photometry, at up to −30σ), which pulls any fit, photometric redshifts most.
pub const NEGATIVE_FLUX_SIGMA: f64 = 5.0;

/// The warning for fluxes below −[`NEGATIVE_FLUX_SIGMA`] σ (row-major `flux`, `sigma`, NaN where
/// not measured): how many, in how many rows, the first few by row, band and σ. They are fitted
/// as given; `None` when there are none.
fn negative_flux_warning(flux: &[f64], sigma: &[f64], bands: &[String], ids: &[String], lines: &[usize]) -> Option<String> {
    let nb = bands.len();
    let bad: Vec<(usize, usize, f64)> = flux
        .iter()
        .zip(sigma)
        .enumerate()
        .filter(|(_, (f, e))| f.is_finite() && **e > 0.0 && **f < -NEGATIVE_FLUX_SIGMA * **e)
        .map(|(k, (&f, &e))| (k / nb, k % nb, f / e))
        .collect();
    if bad.is_empty() {
        return None;
    }
    let mut rows: Vec<usize> = bad.iter().map(|b| b.0).collect();
    rows.dedup();
    let shown: Vec<String> = bad
        .iter()
        .take(5)
        .map(|&(r, b, s)| {
            // FITS rows have no line
            let line = if lines[r] > 0 { format!("line {}, ", lines[r]) } else { String::new() };
            format!("row {} ({line}id {}) {} {s:.1}σ", r + 1, ids[r], bands[b])
        })
        .collect();
    Some(format!(
        "warning: {} flux{} in {} row{} more than {NEGATIVE_FLUX_SIGMA}σ below zero — {}{} — a source's flux cannot be negative: \
         check the background subtraction or extraction, or leave those bands out (empty or nan); they are fitted as given",
        bad.len(),
        if bad.len() == 1 { "" } else { "es" },
        rows.len(),
        if rows.len() == 1 { "" } else { "s" },
        shown.join(", "),
        if bad.len() > shown.len() { ", …" } else { "" },
    ))
}

/// Whether the table at `path` has a column `name` (false for a file that cannot be read: the
/// fit then says why).
pub fn has_column(path: &Path, name: &str) -> Result<bool> {
    Ok(sbipix_io::read_table(path).map(|t| t.header.iter().any(|h| h == name)).unwrap_or(false))
}

/// Columns of the photometric redshift, after `redshift` (which is then p(z)'s median).
pub const PHOTO_Z_COLUMNS: [&str; 9] = ["z_p16", "z_p50", "z_p84", "z_mode", "z_odds", "z_second", "z_second_prob", "z_chi2", "z_flags"];

/// Where [`write_fit_csv`] puts p(z) of a fit written to `out`: `<stem>.pz.npy` ([rows × nodes],
/// float32, NaN where not fitted) and `<stem>.pz_grid.npy` (the nodes).
pub fn photo_z_paths(out: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let stem = out.with_extension("");
    let name = stem.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    (stem.with_file_name(format!("{name}.pz.npy")), stem.with_file_name(format!("{name}.pz_grid.npy")))
}

/// Writes the fit as CSV (atomically): `id, redshift, n_bands, status`, with photometric
/// redshifts [`PHOTO_Z_COLUMNS`] (and p(z) beside it, [`photo_z_paths`]), then `<param>_p16`,
/// `<param>_p50`, `<param>_p84` for every parameter, then `ppc_chi2` (reduced χ² of the
/// posterior-predictive median; empty when not checked), with refinement `refined` (1 where
/// the posterior is the likelihood-refined one, 0 where the network's was kept), and `ood` (the
/// out-of-distribution bits of the row: 2 bands, 4 colours; empty where not fitted).
pub fn write_fit_csv(out: &Path, fit: &CatalogFit) -> Result<()> {
    let Some(pz) = &fit.photo_z else {
        return write_csv(out, fit);
    };
    // the CSV and its p(z) files as one set: all of them or none
    let (pz_path, grid_path) = photo_z_paths(out);
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let names = [name(&pz_path), name(&grid_path), name(out)];
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    sbipix_io::write_files_atomic(dir, &names.iter().map(String::as_str).collect::<Vec<_>>(), |tmp| -> Result<()> {
        let nz = pz.grid.len();
        let mut table = vec![f32::NAN; fit.ids.len() * nz];
        for (r, p) in pz.rows.iter().enumerate() {
            if let Some(p) = p {
                for (k, v) in p.prob.iter().enumerate() {
                    table[r * nz + k] = *v as f32;
                }
            }
        }
        sbipix_io::arrays::write_npy_f32(&tmp.join(&names[0]), &table, fit.ids.len(), nz)?;
        sbipix_io::arrays::write_npy_f32_1d(&tmp.join(&names[1]), &pz.grid.iter().map(|&z| z as f32).collect::<Vec<_>>())?;
        write_csv(&tmp.join(&names[2]), fit)
    })
}

fn write_csv(out: &Path, fit: &CatalogFit) -> Result<()> {
    let fmt = |v: f64, digits: usize| if v.is_finite() { format!("{v:.digits$}") } else { String::new() };
    sbipix_io::write_atomic(out, |w| {
        let mut wr = csv::Writer::from_writer(w);
        let mut header: Vec<String> = vec!["id".into(), "redshift".into(), "n_bands".into(), "status".into()];
        if fit.photo_z.is_some() {
            header.extend(PHOTO_Z_COLUMNS.iter().map(|c| c.to_string()));
        }
        for p in &fit.params {
            for q in ["p16", "p50", "p84"] {
                header.push(format!("{p}_{q}"));
            }
        }
        header.push("ppc_chi2".into());
        if fit.refined.is_some() {
            header.push("refined".into());
        }
        if fit.ood.is_some() {
            header.push("ood".into());
        }
        wr.write_record(&header)?;
        for r in 0..fit.ids.len() {
            let mut rec = vec![
                fit.ids[r].clone(),
                if fit.photo_z.is_some() { fmt(fit.redshift[r], 5) } else { fit.redshift[r].to_string() },
                fit.n_bands[r].to_string(),
                fit.status[r].clone(),
            ];
            if let Some(pz) = &fit.photo_z {
                match &pz.rows[r] {
                    Some(p) => {
                        rec.extend([p.percentiles[0], p.percentiles[1], p.percentiles[2], p.z_mode, p.odds].map(|v| fmt(v, 4)));
                        rec.push(p.second.map_or(String::new(), |s| fmt(s.0, 4)));
                        rec.push(p.second.map_or(String::new(), |s| fmt(s.1, 4)));
                        rec.push(fmt(p.chi2_min, 3));
                        rec.push(p.flag_string());
                    }
                    None => rec.extend(std::iter::repeat_n(String::new(), PHOTO_Z_COLUMNS.len())),
                }
            }
            for pq in &fit.percentiles[r] {
                for v in pq {
                    rec.push(if v.is_finite() { format!("{v:.5}") } else { String::new() });
                }
            }
            let c = fit.ppc_chi2[r];
            rec.push(if c.is_finite() { format!("{c:.4}") } else { String::new() });
            if let Some(f) = &fit.refined {
                rec.push(if f[r].is_finite() { format!("{}", f[r]) } else { String::new() });
            }
            if let Some(f) = &fit.ood {
                rec.push(if f[r].is_finite() { format!("{}", f[r]) } else { String::new() });
            }
            wr.write_record(&rec)?;
        }
        wr.flush()?;
        Ok(())
    })?;
    Ok(())
}
