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

use super::summaries::{object_percentiles, predictive_check, refined_flags};
use crate::inference::integrated::sample_integrated;
use crate::inference::model::Posterior;
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
}

/// Fits every row of the catalogue at `path` with `n_draws` posterior draws.
/// `forward`: the forward model and prior of [`crate::inference::ppc::ppc_model`], for the
/// posterior-predictive check (when `ppc`) and the likelihood refinement (when `refine`; its
/// systematic error is at least the catalogue's error floor).
#[allow(clippy::too_many_arguments)]
pub fn fit_catalog(
    post: &Posterior,
    path: &Path,
    cols: &CatalogColumns,
    n_draws: usize,
    seed: u64,
    forward: Option<&(std::sync::Arc<sbipix_sps::SpsModel>, sbipix_sim::Prior)>,
    ppc: bool,
    refine: Option<crate::inference::refine::RefineSettings>,
    log: &dyn Fn(&str),
) -> Result<CatalogFit> {
    if refine.is_some() && forward.is_none() {
        return Err(Error::unsupported("refinement", "it needs the forward model (the stellar-population data)"));
    }
    let cat = read_photometry(post, path, cols, log)?;
    let (n, nb) = (cat.ids.len(), post.manifest.bands.len());
    let ok: Vec<usize> = (0..n).filter(|&r| cat.status[r] == super::STATUS_OK).collect();
    let params = post.parameter_names();
    let np = params.len();
    let mut percentiles = vec![vec![[f64::NAN; 3]; np]; n];
    let mut ppc_chi2 = vec![f64::NAN; n];
    let mut ppc_residual_sigma = None;
    let mut refined = None;
    if !ok.is_empty() {
        let pick = |v: &[f64]| -> Vec<f64> { ok.iter().flat_map(|&r| v[r * nb..(r + 1) * nb].to_vec()).collect() };
        let (fo, so) = (pick(&cat.flux), pick(&cat.sigma));
        let mo: Vec<bool> = ok.iter().flat_map(|&r| cat.seen[r * nb..(r + 1) * nb].to_vec()).collect();
        let zo: Vec<f64> = ok.iter().map(|&r| cat.redshift[r]).collect();
        let mut draws = sample_integrated(post, &fo, &so, &mo, &zo, n_draws, seed, cols.error_floor)?;
        if let (Some(settings), Some((fwd, prior))) = (refine, forward) {
            log(&format!("sbipix: refining {} posteriors with the forward model's likelihood…", ok.len()));
            let settings = crate::inference::refine::RefineSettings {
                sys_frac: settings.sys_frac.max(cols.error_floor),
                integrated: true,
                ..settings
            };
            let outcomes = crate::inference::refine::refine_all(
                fwd,
                prior,
                &fo,
                &so,
                &mo,
                &zo,
                &params,
                &mut draws,
                settings,
                seed ^ streams::REFINE,
                &|_| {},
            )?;
            refined = Some(refined_flags(&outcomes, &ok, n));
        }
        let mut buf = Vec::with_capacity(n_draws);
        for (k, &r) in ok.iter().enumerate() {
            percentiles[r] = object_percentiles(&draws, k, n_draws, np, &mut buf);
        }
        if let (true, Some((fwd, prior))) = (ppc, forward) {
            let pred = crate::inference::ppc::ppc_predict(fwd, prior, &params, &draws, n_draws, &zo);
            let c = predictive_check(&pred, &fo, &so, &mo, &post.manifest.bands, cols.error_floor);
            for (k, &r) in ok.iter().enumerate() {
                ppc_chi2[r] = c.chi2[k];
            }
            ppc_residual_sigma = Some(c.median_residual_sigma);
        }
    }
    Ok(CatalogFit {
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
    })
}

/// A catalogue's photometry in the model's band order: [rows × bands] µJy, `seen` false where a
/// band has no finite flux with a positive error; a row's status says why it cannot be fitted.
struct CatalogPhotometry {
    ids: Vec<String>,
    redshift: Vec<f64>,
    flux: Vec<f64>,
    sigma: Vec<f64>,
    seen: Vec<bool>,
    n_bands: Vec<usize>,
    status: Vec<String>,
    bands_found: Vec<String>,
}

/// Reads the catalogue's columns (templates in `cols`) for the model's bands.
fn read_photometry(post: &Posterior, path: &Path, cols: &CatalogColumns, log: &dyn Fn(&str)) -> Result<CatalogPhotometry> {
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
    let zc =
        col(&cols.redshift).ok_or_else(|| ferr(format!("no redshift column `{}` (columns: {})", cols.redshift, t.header.join(", "))))?;
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
        z[r] = num(r, zc)?;
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
        } else if !(z[r].is_finite() && z[r] >= 0.0 && z[r] <= zmax) {
            status[r] = format!("redshift {} outside the model's range [0, {zmax}]", z[r]);
        }
    }
    let ids = (0..n).map(|r| idc.map(|c| t.rows[r][c].clone()).unwrap_or_else(|| (r + 1).to_string())).collect();
    Ok(CatalogPhotometry { ids, redshift: z, flux, sigma, seen, n_bands, status, bands_found: found })
}

/// Writes the fit as CSV (atomically): `id, redshift, n_bands, status`, then `<param>_p16`,
/// `<param>_p50`, `<param>_p84` for every parameter, then `ppc_chi2` (reduced χ² of the
/// posterior-predictive median; empty when not checked), and with refinement `refined` (1 where
/// the posterior is the likelihood-refined one, 0 where the network's was kept).
pub fn write_fit_csv(out: &Path, fit: &CatalogFit) -> Result<()> {
    sbipix_io::write_atomic(out, |w| {
        let mut wr = csv::Writer::from_writer(w);
        let mut header: Vec<String> = vec!["id".into(), "redshift".into(), "n_bands".into(), "status".into()];
        for p in &fit.params {
            for q in ["p16", "p50", "p84"] {
                header.push(format!("{p}_{q}"));
            }
        }
        header.push("ppc_chi2".into());
        if fit.refined.is_some() {
            header.push("refined".into());
        }
        wr.write_record(&header)?;
        for r in 0..fit.ids.len() {
            let mut rec = vec![fit.ids[r].clone(), fit.redshift[r].to_string(), fit.n_bands[r].to_string(), fit.status[r].clone()];
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
            wr.write_record(&rec)?;
        }
        wr.flush()?;
        Ok(())
    })?;
    Ok(())
}
