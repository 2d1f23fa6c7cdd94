//! `train` (as `sbipix train`).

use crate::errors::{other, to_py};
use pyo3::prelude::*;
use sbipix::request::{TrainRequest, parse_schedule};
use std::path::PathBuf;
use std::sync::Mutex;

/// Trains a flow; `progress(epoch_json)` is called after every epoch. Returns the training
/// report as JSON.
#[pyfunction]
#[pyo3(signature = (
    data, out, *, flow = None, layers = None, hidden = None, hidden_layers = None, bins = None, affine_hidden = None,
    params = None, seed = None, batch_size = None, lr = None, max_epochs = None, schedule = None, patience = None,
    checkpoint = None, resume = None, overwrite = None, progress = None,
))]
#[allow(clippy::too_many_arguments)] // the keyword arguments of a Python function
pub fn train(
    py: Python<'_>,
    data: PathBuf,
    out: PathBuf,
    flow: Option<&str>,
    layers: Option<usize>,
    hidden: Option<usize>,
    hidden_layers: Option<usize>,
    bins: Option<usize>,
    affine_hidden: Option<usize>,
    params: Option<Vec<String>>,
    seed: Option<u64>,
    batch_size: Option<usize>,
    lr: Option<f64>,
    max_epochs: Option<usize>,
    schedule: Option<&str>,
    patience: Option<usize>,
    checkpoint: Option<PathBuf>,
    resume: Option<bool>,
    overwrite: Option<bool>,
    progress: Option<Py<PyAny>>,
) -> PyResult<String> {
    let d = TrainRequest::default();
    let req = TrainRequest {
        data,
        out,
        flow: match flow {
            Some(f) => f.parse().map_err(to_py)?,
            None => d.flow,
        },
        layers: layers.unwrap_or(d.layers),
        hidden: hidden.unwrap_or(d.hidden),
        hidden_layers: hidden_layers.unwrap_or(d.hidden_layers),
        bins: bins.unwrap_or(d.bins),
        affine_hidden: affine_hidden.unwrap_or(d.affine_hidden),
        params,
        encoding: d.encoding,
        seed: seed.unwrap_or(d.seed),
        batch_size: batch_size.unwrap_or(d.batch_size),
        lr,
        max_epochs: max_epochs.unwrap_or(d.max_epochs),
        schedule: match schedule {
            Some(s) => parse_schedule(s).map_err(to_py)?,
            None => d.schedule,
        },
        patience: patience.unwrap_or(d.patience),
        checkpoint,
        resume: resume.unwrap_or(d.resume),
        overwrite: overwrite.unwrap_or(d.overwrite),
        // as many data-parallel chunks as the thread pool has threads
        threads: Some(rayon::current_num_threads()),
    };
    req.validate().map_err(to_py)?;
    // a failing callback does not stop training; its first error is raised at the end
    let cb_err: Mutex<Option<PyErr>> = Mutex::new(None);
    let r = py.detach(|| {
        req.run(&mut |e| {
            if let Some(cb) = &progress {
                Python::attach(|py| {
                    let j = serde_json::to_string(e).unwrap_or_default();
                    if let Err(x) = cb.call1(py, (j,)) {
                        cb_err.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(x);
                    }
                });
            }
        })
    });
    if let Some(e) = cb_err.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let (_, report) = r.map_err(to_py)?;
    serde_json::to_string(&report).map_err(other)
}
