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

/// The forward model's settings from `settings` (JSON of an object: any of
/// [`PhotometryRequest`]'s fields but `sfh`, `filters` and `filter_files`, which have arguments
/// of their own), the others at their defaults. An unknown key or a value of the wrong kind is an
/// `InvalidArgumentError` naming it.
fn request_from(settings: Option<&str>) -> PyResult<PhotometryRequest> {
    let Some(text) = settings else {
        return Ok(PhotometryRequest::default());
    };
    let given: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| crate::errors::invalid("settings", text, e.to_string()))?;
    let serde_json::Value::Object(mut all) =
        serde_json::to_value(PhotometryRequest::default()).map_err(|e| crate::errors::invalid("settings", text, e.to_string()))?
    else {
        unreachable!("a request serializes as an object")
    };
    // the fields with arguments of their own
    const OWN: [&str; 3] = ["sfh", "filters", "filter_files"];
    for (k, v) in given {
        if OWN.contains(&k.as_str()) || !all.contains_key(&k) {
            let known: Vec<&str> = all.keys().map(|s| s.as_str()).filter(|s| !OWN.contains(s)).collect();
            return Err(crate::errors::invalid(
                "settings",
                &k,
                format!("not a forward-model setting here (settings: {})", known.join(", ")),
            ));
        }
        all.insert(k, v);
    }
    serde_json::from_value(serde_json::Value::Object(all)).map_err(|e| crate::errors::invalid("settings", text, e.to_string()))
}

/// Forward model on columns of parameters: (parameter names with defaults filled in, their
/// values [n, k], bands, derived names, derived [n, 4], flux µJy [n, bands], log). `filters`:
/// one curve file per band (the CLI's --filters takes a list file instead); `settings`: JSON of
/// the other forward-model settings ([`request_from`]).
#[pyfunction]
#[pyo3(signature = (names, columns, *, sfh = None, filters = None, settings = None))]
pub fn photometry<'py>(
    py: Python<'py>,
    names: Vec<String>,
    columns: Vec<PyReadonlyArray1<'py, f64>>,
    sfh: Option<&str>,
    filters: Option<Vec<PathBuf>>,
    settings: Option<String>,
) -> PyResult<PhotometryOut<'py>> {
    let mut req = PhotometryRequest { filter_files: filters.unwrap_or_default(), ..request_from(settings.as_deref())? };
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
