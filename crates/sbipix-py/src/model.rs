//! `Model`: a loaded model folder (or the built-in `default`), with its forward model built
//! once, on first use, for every check and refinement asked of it.

use crate::errors::{other, to_py};
use pyo3::prelude::*;
use sbipix::request::LoadedModel;

/// A trained posterior model (a model folder, or a built-in one: `default`, `sbipix2025`).
#[pyclass(module = "sbipix._core", frozen)]
pub struct Model {
    pub(crate) inner: LoadedModel,
}

#[pymethods]
impl Model {
    /// `name`: a model folder, or a built-in model ("default", "sbipix2025").
    #[staticmethod]
    fn load(py: Python<'_>, name: &str) -> PyResult<Self> {
        let inner = py.detach(|| LoadedModel::load(name)).map_err(to_py)?;
        Ok(Self { inner })
    }

    #[getter]
    fn parameter_names(&self) -> Vec<String> {
        self.inner.post.parameter_names()
    }

    #[getter]
    fn bands(&self) -> Vec<String> {
        self.inner.post.manifest.bands.clone()
    }

    #[getter]
    fn max_redshift(&self) -> f64 {
        self.inner.post.manifest.max_redshift_trained
    }

    #[getter]
    fn path(&self) -> String {
        self.inner.post.dir.display().to_string()
    }

    #[getter]
    fn manifest_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.inner.post.manifest).map_err(other)
    }
}
