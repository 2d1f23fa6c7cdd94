//! `sbipix._core`: the Rust side of the Python package (see `python/sbipix/__init__.py`, which
//! gives these functions their Python signatures, documentation and dict/array conversions).
//!
//! One file per verb. Each function takes keyword arguments, builds the library's request
//! (`sbipix::request`, where every default lives: an argument left out or `None` takes the
//! request's default) and carries it out. Conventions: arrays arrive C-contiguous in the dtype
//! named in each signature (the Python wrapper converts); long work runs with the GIL released
//! (`Python::detach`); every error goes through the one mapping of `errors.rs`.

mod errors;
mod fit;
mod map;
mod model;
mod photometry;
mod simulate;
mod survey;
mod train;
mod validate;

use pyo3::prelude::*;
use std::sync::Mutex;

/// The contiguous data of an array, or an `InvalidArgumentError` naming it.
pub(crate) fn slice<'a, T: numpy::Element, D: numpy::ndarray::Dimension>(
    a: &'a numpy::PyReadonlyArray<'_, T, D>,
    what: &str,
) -> PyResult<&'a [T]> {
    a.as_slice().map_err(|_| errors::invalid(what, "(an array)", "the array must be C-contiguous"))
}

/// Messages the library logs, kept to hand back to Python (a notebook does not show Rust's stderr).
#[derive(Default)]
pub(crate) struct Log(Mutex<Vec<String>>);

impl Log {
    pub(crate) fn push(&self, m: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(m.to_string());
    }
    pub(crate) fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Every verb's defaults as JSON (`sbipix::request::defaults_json`): the Python signatures read
/// theirs from this.
#[pyfunction]
fn defaults() -> String {
    sbipix::request::defaults_json()
}

/// The data folder ($SBIPIX_DATA or the user cache).
#[pyfunction]
fn data_path() -> PyResult<String> {
    Ok(sbipix::io::DataStore::from_env().map_err(|e| errors::to_py(e.into()))?.dir().display().to_string())
}

/// Downloads and converts the model data (as `sbipix data fetch`); returns the log.
#[pyfunction]
#[pyo3(signature = (*, force = false))]
fn fetch_data(py: Python<'_>, force: bool) -> PyResult<Vec<String>> {
    let log = Log::default();
    py.detach(|| -> sbipix::io::Result<()> {
        let store = sbipix::io::DataStore::from_env()?;
        if force || !store.is_present() {
            store.fetch(force, &|m| log.push(m))?;
        }
        store.verify()
    })
    .map_err(|e| errors::to_py(e.into()))?;
    Ok(log.take())
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_class::<model::Model>()?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_function(wrap_pyfunction!(defaults, m)?)?;
    m.add_function(wrap_pyfunction!(data_path, m)?)?;
    m.add_function(wrap_pyfunction!(fetch_data, m)?)?;
    m.add_function(wrap_pyfunction!(photometry::photometry, m)?)?;
    m.add_function(wrap_pyfunction!(simulate::simulate, m)?)?;
    m.add_function(wrap_pyfunction!(simulate::read_training_set, m)?)?;
    m.add_function(wrap_pyfunction!(simulate::merge_training_sets, m)?)?;
    m.add_function(wrap_pyfunction!(train::train, m)?)?;
    m.add_function(wrap_pyfunction!(validate::validate, m)?)?;
    m.add_function(wrap_pyfunction!(validate::calibrate, m)?)?;
    m.add_function(wrap_pyfunction!(fit::sample, m)?)?;
    m.add_function(wrap_pyfunction!(fit::fit_catalog, m)?)?;
    m.add_function(wrap_pyfunction!(fit::photo_z, m)?)?;
    m.add_function(wrap_pyfunction!(map::map_cube, m)?)?;
    m.add_function(wrap_pyfunction!(map::map_arrays, m)?)?;
    m.add_function(wrap_pyfunction!(survey::survey, m)?)?;
    m.add_function(wrap_pyfunction!(survey::survey_galaxy, m)?)?;
    m.add_function(wrap_pyfunction!(survey::survey_manifest, m)?)?;
    m.add_function(wrap_pyfunction!(survey::survey_collect, m)?)?;
    Ok(())
}
