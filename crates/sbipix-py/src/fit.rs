//! `sample` (pixels, or whole galaxies' integrated photometry) and `fit_catalog` (as `sbipix fit`).

use crate::errors::{shape, to_py};
use crate::model::Model;
use crate::{Log, slice};
use numpy::ndarray::{Array1, Array2, Array3};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArray3, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;
use sbipix::inference::photoz::{PhotoZSettings, RedshiftPosterior};
use sbipix::request::{FitRequest, SampleRequest};
use std::path::PathBuf;

/// Posterior draws [rows, n, parameters] from flux and σ [rows, bands] (µJy, model band order),
/// measured [rows, bands] (1 = use) and redshift [rows], and the log. With `error_floor` the
/// rows are whole galaxies (integrated photometry; defaults of `Model.fit`); with `refine` the
/// draws are likelihood-refined.
#[pyfunction]
#[pyo3(signature = (model, flux, err, measured, redshift, *, n = None, seed = None, error_floor = None, refine = None, sys_err = None))]
#[allow(clippy::too_many_arguments)] // the keyword arguments of a Python function
pub fn sample<'py>(
    py: Python<'py>,
    model: PyRef<'py, Model>,
    flux: PyReadonlyArray2<'py, f64>,
    err: PyReadonlyArray2<'py, f64>,
    measured: PyReadonlyArray2<'py, u8>,
    redshift: PyReadonlyArray1<'py, f64>,
    n: Option<usize>,
    seed: Option<u64>,
    error_floor: Option<f64>,
    refine: Option<bool>,
    sys_err: Option<f64>,
) -> PyResult<(Bound<'py, PyArray3<f32>>, Vec<String>)> {
    let d = if error_floor.is_some() { SampleRequest::integrated() } else { SampleRequest::pixels() };
    let req = SampleRequest {
        n: n.unwrap_or(d.n),
        seed: seed.unwrap_or(d.seed),
        error_floor,
        refine: refine.unwrap_or(d.refine),
        sys_err: sys_err.unwrap_or(d.sys_err),
    };
    req.validate().map_err(to_py)?;
    let nb = model.inner.post.manifest.bands.len();
    let rows = redshift.len();
    check_rows([flux.shape(), err.shape(), measured.shape()], rows, nb, "one row per pixel or object (the length of redshift)")?;
    let (f, s, z) = (slice(&flux, "flux")?.to_vec(), slice(&err, "err")?.to_vec(), slice(&redshift, "redshift")?.to_vec());
    // a band is used where the mask says so and its flux and σ are usable
    let m: Vec<bool> = slice(&measured, "mask")?
        .iter()
        .zip(f.iter().zip(&s))
        .map(|(m, (f, s))| *m == 1 && f.is_finite() && s.is_finite() && *s > 0.0)
        .collect();
    let log = Log::default();
    let inner = &model.inner;
    let draws = py.detach(|| req.run(inner, &f, &s, &m, &z, &|m| log.push(m))).map_err(to_py)?;
    let p = model.inner.post.parameter_names().len();
    let a = Array3::from_shape_vec((rows, req.n, p), draws).map_err(crate::errors::other)?;
    Ok((a.into_pyarray(py), log.take()))
}

/// Flux, err and mask must each be (rows, bands); `rows_are` says what a row is.
fn check_rows(shapes: [&[usize]; 3], rows: usize, nb: usize, rows_are: &str) -> PyResult<()> {
    for (what, got) in ["flux", "err", "mask"].into_iter().zip(shapes) {
        if got != [rows, nb] {
            return Err(shape(what, format!("({rows}, {nb}): {rows_are} × the model's {nb} bands"), format!("{got:?}")));
        }
    }
    Ok(())
}

type CatalogOut<'py> = (
    Vec<String>,
    Bound<'py, PyArray1<f64>>,
    Vec<usize>,
    Vec<String>,
    Vec<String>,
    Bound<'py, PyArray3<f64>>,
    Bound<'py, PyArray1<f64>>,
    Option<Bound<'py, PyArray1<f64>>>,
    Option<Bound<'py, PyArray1<f64>>>,
    Option<PhotoZOut<'py>>,
    Vec<String>,
);

/// Photometric redshifts: (grid, p(z) [rows, nodes], [z_p16, z_p50, z_p84, z_mode, z_odds]
/// [rows, 5], flags per row); NaN rows where not fitted.
type PhotoZOut<'py> = (Bound<'py, PyArray1<f64>>, Bound<'py, PyArray2<f64>>, Bound<'py, PyArray2<f64>>, Vec<String>);

/// The settings of photometric redshifts from a JSON object (missing keys: the defaults).
fn photo_z_settings_from(json: Option<&str>) -> PyResult<PhotoZSettings> {
    match json {
        None => Ok(PhotoZSettings::default()),
        Some(t) => serde_json::from_str(t).map_err(|e| crate::errors::invalid("photo_z_settings", t, e.to_string())),
    }
}

fn photo_z_arrays<'py>(py: Python<'py>, grid: &[f64], rows: &[Option<RedshiftPosterior>]) -> PhotoZOut<'py> {
    let (n, nz) = (rows.len(), grid.len());
    let mut pz = Array2::from_elem((n, nz), f64::NAN);
    let mut summ = Array2::from_elem((n, 5), f64::NAN);
    let mut flags = vec![String::new(); n];
    for (r, p) in rows.iter().enumerate() {
        if let Some(p) = p {
            for (k, v) in p.prob.iter().enumerate() {
                pz[[r, k]] = *v;
            }
            for (k, v) in [p.percentiles[0], p.percentiles[1], p.percentiles[2], p.z_mode, p.odds].iter().enumerate() {
                summ[[r, k]] = *v;
            }
            flags[r] = p.flag_string();
        }
    }
    (Array1::from(grid.to_vec()).into_pyarray(py), pz.into_pyarray(py), summ.into_pyarray(py), flags)
}

/// p(z) of rows of photometry: flux and σ [rows, bands] (µJy, model band order), measured
/// [rows, bands] (1 = use); `sys_err` a fraction of each flux added to σ in quadrature;
/// `settings` JSON (keys of PhotoZSettings). Returns ((grid, p(z), summaries, flags), log).
#[pyfunction]
#[pyo3(signature = (model, flux, err, measured, *, sys_err = None, settings = None))]
pub fn photo_z<'py>(
    py: Python<'py>,
    model: PyRef<'py, Model>,
    flux: PyReadonlyArray2<'py, f64>,
    err: PyReadonlyArray2<'py, f64>,
    measured: PyReadonlyArray2<'py, u8>,
    sys_err: Option<f64>,
    settings: Option<String>,
) -> PyResult<(PhotoZOut<'py>, Vec<String>)> {
    let settings = photo_z_settings_from(settings.as_deref())?;
    settings.validate().map_err(to_py)?;
    let sys = sys_err.unwrap_or(sbipix::request::DEFAULT_SYS_ERR);
    let nb = model.inner.post.manifest.bands.len();
    let rows = flux.shape()[0];
    check_rows([flux.shape(), err.shape(), measured.shape()], rows, nb, "one row per object")?;
    let (f, s) = (slice(&flux, "flux")?.to_vec(), slice(&err, "err")?.to_vec());
    let m: Vec<bool> = slice(&measured, "mask")?.iter().map(|v| *v == 1).collect();
    let log = Log::default();
    let inner = &model.inner;
    let (grid, out) = py
        .detach(|| -> sbipix::Result<_> {
            let (fwd, prior) = inner.forward_model(&|m| log.push(m))?;
            let z_max = settings.z_max.unwrap_or(inner.post.manifest.max_redshift_trained);
            let t = sbipix::inference::photoz::RedshiftTemplates::build(
                &fwd,
                &prior,
                &settings,
                z_max,
                sbipix::inference::refine::INTEGRATED_MASS_HEADROOM_DEX,
                &|_, _| {},
            )?;
            use rayon::prelude::*;
            let out: Vec<Option<RedshiftPosterior>> = (0..rows)
                .into_par_iter()
                .map(|r| t.posterior(&f[r * nb..(r + 1) * nb], &s[r * nb..(r + 1) * nb], &m[r * nb..(r + 1) * nb], sys).ok())
                .collect();
            // as `sbipix fit`: photometry that scatters more than its errors allow is said so
            if let Some(w) = sbipix::inference::photoz::excess_scatter_warning(&out) {
                log.push(&w);
            }
            Ok((t.redshifts().to_vec(), out))
        })
        .map_err(to_py)?;
    Ok((photo_z_arrays(py, &grid, &out), log.take()))
}

/// Fits a catalogue file: (ids, redshift, n_bands, status, parameter names, percentiles [rows,
/// parameters, 3], ppc_chi2, refined or None, ood or None, photo-z or None, log); writes `out` (CSV, replaced if there) if
/// given.
#[pyfunction]
#[pyo3(signature = (
    model, path, *, flux_columns = None, err_columns = None, redshift_column = None, id_column = None, unit = None,
    draws = None, seed = None, error_floor = None, ppc = None, out = None, refine = None, sys_err = None,
    free_logu = None, photo_z = None, photo_z_settings = None,
))]
#[allow(clippy::too_many_arguments)] // the keyword arguments of a Python function
pub fn fit_catalog<'py>(
    py: Python<'py>,
    model: PyRef<'py, Model>,
    path: PathBuf,
    flux_columns: Option<String>,
    err_columns: Option<String>,
    redshift_column: Option<String>,
    id_column: Option<String>,
    unit: Option<String>,
    draws: Option<usize>,
    seed: Option<u64>,
    error_floor: Option<f64>,
    ppc: Option<bool>,
    out: Option<PathBuf>,
    refine: Option<bool>,
    sys_err: Option<f64>,
    free_logu: Option<bool>,
    photo_z: Option<bool>,
    photo_z_settings: Option<String>,
) -> PyResult<CatalogOut<'py>> {
    let d = FitRequest::default();
    let req = FitRequest {
        model: d.model,
        catalog: path,
        out,
        // as the dict it returns, the file is the latest fit's
        overwrite: true,
        flux_columns: flux_columns.unwrap_or(d.flux_columns),
        err_columns: err_columns.unwrap_or(d.err_columns),
        redshift_column: redshift_column.unwrap_or(d.redshift_column),
        id_column: id_column.unwrap_or(d.id_column),
        unit,
        error_floor: error_floor.unwrap_or(d.error_floor),
        draws: draws.unwrap_or(d.draws),
        seed: seed.unwrap_or(d.seed),
        ppc: ppc.unwrap_or(d.ppc),
        refine: refine.unwrap_or(d.refine),
        sys_err: sys_err.unwrap_or(d.sys_err),
        free_logu: free_logu.unwrap_or(d.free_logu),
        photo_z: photo_z.unwrap_or(d.photo_z),
        photo_z_only: d.photo_z_only,
        photo_z_settings: photo_z_settings_from(photo_z_settings.as_deref())?,
    };
    req.validate().map_err(to_py)?;
    let log = Log::default();
    let inner = &model.inner;
    let fit = py
        .detach(|| -> sbipix::Result<_> {
            let fit = req.fit(inner, &|m| log.push(m))?;
            req.write(&fit)?;
            Ok(fit)
        })
        .map_err(to_py)?;
    let (n, np) = (fit.ids.len(), fit.params.len());
    let pc = Array3::from_shape_fn((n, np, 3), |(r, j, q)| fit.percentiles[r][j][q]);
    Ok((
        fit.ids,
        Array1::from(fit.redshift).into_pyarray(py),
        fit.n_bands,
        fit.status,
        fit.params,
        pc.into_pyarray(py),
        Array1::from(fit.ppc_chi2).into_pyarray(py),
        fit.refined.map(|r| Array1::from(r).into_pyarray(py)),
        fit.ood.map(|o| Array1::from(o).into_pyarray(py)),
        fit.photo_z.as_ref().map(|p| photo_z_arrays(py, &p.grid, &p.rows)),
        log.take(),
    ))
}
