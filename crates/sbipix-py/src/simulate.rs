//! `simulate` (as `sbipix simulate`) and reading a training set back.

use crate::Log;
use crate::errors::{other, to_py};
use numpy::ndarray::{Array1, Array2};
use numpy::{IntoPyArray, PyArray1, PyArray2};
use pyo3::prelude::*;
use sbipix::inference::snr_focus::SnrFocus;
use sbipix::request::{MergeRequest, SimulateRequest};
use std::path::PathBuf;

/// Simulates a training set into `out`; returns (manifest JSON, log).
#[pyfunction]
/// `focus_snr=(3, 100)` keeps the first `n` simulations with S/N in that window plus
/// `outside_fraction` (default 0.2) of the others, as `sbipix simulate --focus-snr`.
#[pyo3(signature = (n, out, *, prior = None, sfh = None, survey = None, seed = None, drop_rate = None, focus_snr = None, outside_fraction = None, overwrite = None))]
#[allow(clippy::too_many_arguments)] // the keyword arguments of a Python function
pub fn simulate(
    py: Python<'_>,
    n: usize,
    out: PathBuf,
    prior: Option<PathBuf>,
    sfh: Option<&str>,
    survey: Option<String>,
    seed: Option<u64>,
    drop_rate: Option<f64>,
    focus_snr: Option<(f64, f64)>,
    outside_fraction: Option<f64>,
    overwrite: Option<bool>,
) -> PyResult<(String, Vec<String>)> {
    let snr_focus = match (focus_snr, outside_fraction) {
        (Some((lo, hi)), f) => {
            Some(SnrFocus { snr_min: lo, snr_max: hi, outside_fraction: f.unwrap_or(SnrFocus::default().outside_fraction) })
        }
        (None, Some(_)) => return Err(pyo3::exceptions::PyValueError::new_err("outside_fraction needs focus_snr=(MIN, MAX)")),
        (None, None) => None,
    };
    let d = SimulateRequest::default();
    let req = SimulateRequest {
        n,
        seed: seed.unwrap_or(d.seed),
        prior,
        sfh: match sfh {
            Some(s) => s.parse().map_err(to_py)?,
            None => d.sfh,
        },
        survey: survey.unwrap_or(d.survey),
        drop_rate: drop_rate.unwrap_or(d.drop_rate),
        snr_focus,
        out,
        overwrite: overwrite.unwrap_or(d.overwrite),
    };
    req.validate().map_err(to_py)?;
    let log = Log::default();
    let m = py.detach(|| req.run(&|m| log.push(m), &|_| {})).map_err(to_py)?;
    Ok((serde_json::to_string(&m).map_err(other)?, log.take()))
}

/// Merges training sets that differ only in their redshift range into `out` (as `sbipix merge`);
/// returns the manifest JSON.
#[pyfunction]
#[pyo3(signature = (data, out, *, overwrite = false))]
pub fn merge_training_sets(py: Python<'_>, data: Vec<PathBuf>, out: PathBuf, overwrite: bool) -> PyResult<String> {
    let req = MergeRequest { data, out, overwrite };
    let m = py.detach(|| req.run()).map_err(to_py)?;
    serde_json::to_string(&m).map_err(other)
}

type SetArrays<'py> = (
    Vec<String>,
    Vec<String>,
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray2<u8>>,
);

/// Reads a training-set folder: (parameter names, bands, theta, redshift, flux_true, flux_obs, sigma, observed).
#[pyfunction]
pub fn read_training_set<'py>(py: Python<'py>, path: PathBuf) -> PyResult<SetArrays<'py>> {
    let (s, _) = py.detach(|| sbipix::inference::training_set::read_dir(&path)).map_err(to_py)?;
    let (n, p, nb) = (s.len(), s.parameter_names.len(), s.bands.len());
    let a2 = |v: Vec<f32>, c: usize| Array2::from_shape_vec((n, c), v).map_err(other);
    Ok((
        s.parameter_names,
        s.bands,
        a2(s.theta, p)?.into_pyarray(py),
        Array1::from(s.redshift).into_pyarray(py),
        a2(s.flux_true_ujy, nb)?.into_pyarray(py),
        a2(s.flux_obs_ujy, nb)?.into_pyarray(py),
        a2(s.sigma_ujy, nb)?.into_pyarray(py),
        Array2::from_shape_vec((n, nb), s.observed).map_err(other)?.into_pyarray(py),
    ))
}
