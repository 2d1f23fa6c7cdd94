//! `photometry`: the forward model on columns of galaxy parameters (as `sbipix photometry`).

use crate::errors::to_py;
use crate::{Log, slice};
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray1};
use pyo3::prelude::*;
use sbipix::ParamTable;
use sbipix::request::{PhotometryRequest, parse_sfh_family};
use std::path::PathBuf;

type PhotometryOut<'py> =
    (Vec<String>, Bound<'py, PyArray2<f64>>, Vec<String>, Vec<String>, Bound<'py, PyArray2<f64>>, Bound<'py, PyArray2<f64>>, Vec<String>);

/// Forward model on columns of parameters: (parameter names with defaults filled in, their
/// values [n, k], bands, derived names, derived [n, 4], flux µJy [n, bands], log). `filters`:
/// one curve file per band (the CLI's --filters takes a list file instead).
#[pyfunction]
#[pyo3(signature = (names, columns, *, sfh = None, filters = None))]
pub fn photometry<'py>(
    py: Python<'py>,
    names: Vec<String>,
    columns: Vec<PyReadonlyArray1<'py, f64>>,
    sfh: Option<&str>,
    filters: Option<Vec<PathBuf>>,
) -> PyResult<PhotometryOut<'py>> {
    let mut req = PhotometryRequest { filter_files: filters.unwrap_or_default(), ..PhotometryRequest::default() };
    if let Some(s) = sfh {
        req.sfh = parse_sfh_family(s).map_err(to_py)?;
    }
    req.validate().map_err(to_py)?;
    let mut given = Vec::with_capacity(names.len());
    for (n, c) in names.iter().zip(&columns) {
        given.push((n.clone(), slice(c, n)?.to_vec()));
    }
    let table = ParamTable::from_columns(given, "params", req.sfh).map_err(to_py)?;
    let log = Log::default();
    let (bands, rows) = py
        .detach(|| -> sbipix::Result<_> {
            let model = req.build_model(&|m| log.push(m))?;
            let rows = sbipix::products::photometry::compute_rows(&model, &table, &|_| {})?;
            Ok((model.band_names(), rows))
        })
        .map_err(to_py)?;
    let (n, nb) = (rows.len(), bands.len());
    let mut derived = Array2::<f64>::zeros((n, 4));
    let mut flux = Array2::<f64>::zeros((n, nb));
    for (i, (d, f)) in rows.iter().enumerate() {
        for (k, v) in [d.log_mstar, d.log_sfr_10myr, d.log_sfr_100myr, d.mass_weighted_age_gyr].into_iter().enumerate() {
            derived[[i, k]] = v;
        }
        for (b, v) in f.iter().enumerate() {
            flux[[i, b]] = *v;
        }
    }
    let dn = sbipix::products::photometry::DERIVED_COLUMNS.iter().map(|s| s.to_string()).collect();
    let pn: Vec<String> = table.columns.iter().map(|c| c.0.clone()).collect();
    let pv = Array2::from_shape_fn((n, pn.len()), |(i, k)| table.columns[k].1[i]);
    Ok((pn, pv.into_pyarray(py), bands, dn, derived.into_pyarray(py), flux.into_pyarray(py), log.take()))
}
