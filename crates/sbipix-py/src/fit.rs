//! `sample` (pixels, or whole galaxies' integrated photometry) and `fit_catalog` (as `sbipix fit`).

use crate::errors::{shape, to_py};
use crate::model::Model;
use crate::{Log, slice};
use numpy::ndarray::{Array1, Array3};
use numpy::{IntoPyArray, PyArray1, PyArray3, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;
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
        photo_z: d.photo_z,
        photo_z_only: d.photo_z_only,
        photo_z_settings: d.photo_z_settings,
    };
    req.validate().map_err(to_py)?;
    let nb = model.inner.post.manifest.bands.len();
    let rows = redshift.len();
    for (what, got) in [("flux", flux.shape()), ("err", err.shape()), ("mask", measured.shape())] {
        if got != [rows, nb] {
            return Err(shape(
                what,
                format!("({rows}, {nb}): one row per pixel or object (the length of redshift) × the model's {nb} bands"),
                format!("{got:?}"),
            ));
        }
    }
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

type CatalogOut<'py> = (
    Vec<String>,
    Bound<'py, PyArray1<f64>>,
    Vec<usize>,
    Vec<String>,
    Vec<String>,
    Bound<'py, PyArray3<f64>>,
    Bound<'py, PyArray1<f64>>,
    Option<Bound<'py, PyArray1<f64>>>,
    Vec<String>,
);

/// Fits a catalogue file: (ids, redshift, n_bands, status, parameter names, percentiles [rows,
/// parameters, 3], ppc_chi2, refined or None, log); writes `out` (CSV, replaced if there) if
/// given.
#[pyfunction]
#[pyo3(signature = (
    model, path, *, flux_columns = None, err_columns = None, redshift_column = None, id_column = None, unit = None,
    draws = None, seed = None, error_floor = None, ppc = None, out = None, refine = None, sys_err = None,
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
        photo_z: d.photo_z,
        photo_z_only: d.photo_z_only,
        photo_z_settings: d.photo_z_settings,
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
        log.take(),
    ))
}
