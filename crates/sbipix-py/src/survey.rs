//! Survey mode: `survey` (as `sbipix survey`, in this process), and the pieces a Dask run is made
//! of: `survey_manifest`, `survey_galaxy` (one galaxy, on a worker), `survey_collect`.

use crate::Log;
use crate::errors::to_py;
use crate::model::Model;
use pyo3::prelude::*;
use sbipix::products::population;
use sbipix::request::SurveyRequest;
use std::path::PathBuf;

type StatusList = Vec<(String, String)>;

/// The keyword arguments every survey entry point shares (None: the request's default).
struct Kw {
    draws: Option<usize>,
    snr_min: Option<f64>,
    seed: Option<u64>,
    ppc: Option<bool>,
    refine: Option<bool>,
    sys_err: Option<f64>,
    photo_z: Option<bool>,
}

fn request(manifest: PathBuf, out: PathBuf, kw: Kw) -> PyResult<SurveyRequest> {
    let Kw { draws, snr_min, seed, ppc, refine, sys_err, photo_z } = kw;
    let d = SurveyRequest::default();
    let req = SurveyRequest {
        model: d.model,
        manifest,
        out,
        draws: draws.unwrap_or(d.draws),
        snr_min: snr_min.unwrap_or(d.snr_min),
        seed: seed.unwrap_or(d.seed),
        ppc: ppc.unwrap_or(d.ppc),
        // the same settings on one machine and on Dask alike
        refine: refine.unwrap_or(d.refine),
        sys_err: sys_err.unwrap_or(d.sys_err),
        photo_z: photo_z.unwrap_or(d.photo_z),
        photo_z_settings: d.photo_z_settings,
    };
    req.validate().map_err(to_py)?;
    Ok(req)
}

/// Runs a whole survey in this process: (id, status) rows and the log.
#[pyfunction]
#[pyo3(signature = (model, manifest, out, *, draws = None, snr_min = None, seed = None, ppc = None, refine = None, sys_err = None, photo_z = None))]
#[allow(clippy::too_many_arguments)] // the keyword arguments of a Python function
pub fn survey(
    py: Python<'_>,
    model: PyRef<'_, Model>,
    manifest: PathBuf,
    out: PathBuf,
    draws: Option<usize>,
    snr_min: Option<f64>,
    seed: Option<u64>,
    ppc: Option<bool>,
    refine: Option<bool>,
    sys_err: Option<f64>,
    photo_z: Option<bool>,
) -> PyResult<(StatusList, Vec<String>)> {
    let req = request(manifest, out, Kw { draws, snr_min, seed, ppc, refine, sys_err, photo_z })?;
    let log = Log::default();
    let inner = &model.inner;
    let rows = py.detach(|| req.run(inner, &|m| log.push(m), &|_, _, _| {})).map_err(to_py)?;
    Ok((rows.into_iter().map(|r| (r.id, r.status)).collect(), log.take()))
}

/// Maps galaxy `index` (0-based) of a survey manifest into `out` (as one galaxy of `sbipix
/// survey`; a galaxy already done is skipped): (id, status, log).
#[pyfunction]
#[pyo3(signature = (model, manifest, index, out, *, draws = None, snr_min = None, seed = None, ppc = None, refine = None, sys_err = None, photo_z = None))]
#[allow(clippy::too_many_arguments)] // the keyword arguments of a Python function
pub fn survey_galaxy(
    py: Python<'_>,
    model: PyRef<'_, Model>,
    manifest: PathBuf,
    index: usize,
    out: PathBuf,
    draws: Option<usize>,
    snr_min: Option<f64>,
    seed: Option<u64>,
    ppc: Option<bool>,
    refine: Option<bool>,
    sys_err: Option<f64>,
    photo_z: Option<bool>,
) -> PyResult<(String, String, Vec<String>)> {
    let req = request(manifest, out, Kw { draws, snr_min, seed, ppc, refine, sys_err, photo_z })?;
    let log = Log::default();
    let inner = &model.inner;
    let st = py.detach(|| req.run_one(inner, index, &|m| log.push(m))).map_err(to_py)?;
    Ok((st.id, st.status, log.take()))
}

/// The ids of a survey manifest, in order (a row that cannot run has its reason).
#[pyfunction]
pub fn survey_manifest(path: PathBuf) -> PyResult<Vec<(String, Option<String>)>> {
    let m = population::read_manifest(&path).map_err(to_py)?;
    Ok(m.rows
        .iter()
        .map(|r| match r {
            Ok(j) => (j.id.clone(), None),
            Err((id, why)) => (id.clone(), Some(why.clone())),
        })
        .collect())
}

/// Writes galaxies.csv and outshining.png from the per-galaxy folders; returns (id, status) rows.
#[pyfunction]
pub fn survey_collect(py: Python<'_>, manifest: PathBuf, out: PathBuf) -> PyResult<StatusList> {
    py.detach(|| -> sbipix::Result<_> {
        let m = population::read_manifest(&manifest)?;
        population::remove_stale_temporaries(&out);
        let rows = population::collect(&m, &out);
        population::write_population(&out, &rows, None)?;
        Ok(rows.into_iter().map(|r| (r.id, r.status)).collect())
    })
    .map_err(to_py)
}
