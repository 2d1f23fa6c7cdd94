//! `validate` and `calibrate` (as `sbipix validate`, `sbipix calibrate`).

use crate::Log;
use crate::errors::{invalid, other, to_py};
use pyo3::prelude::*;
use sbipix::request::{CalibrateRequest, ValidateRequest};
use std::path::PathBuf;

/// Validates a model on fresh simulations (or, with `against`, on another code's atlas); returns
/// (the report as JSON, log).
#[pyfunction]
#[pyo3(signature = (
    model, out, *, n = None, seed = None, draws = None, snr_min = None, overwrite = None, refine = None, sys_err = None,
    reference = None, reference_particles = None, against = None, atlas_has_1pz = None, like = None, like_unit = None,
    cases_from = None, like_images = None, like_errors = None, like_noise_from = None, like_error_kind = None, like_bands = None,
))]
#[allow(clippy::too_many_arguments)] // the keyword arguments of a Python function
pub fn validate(
    py: Python<'_>,
    model: String,
    out: PathBuf,
    n: Option<usize>,
    seed: Option<u64>,
    draws: Option<usize>,
    snr_min: Option<f64>,
    overwrite: Option<bool>,
    refine: Option<bool>,
    sys_err: Option<f64>,
    reference: Option<usize>,
    reference_particles: Option<usize>,
    against: Option<PathBuf>,
    atlas_has_1pz: Option<bool>,
    like: Option<PathBuf>,
    like_unit: Option<String>,
    cases_from: Option<String>,
    like_images: Option<Vec<PathBuf>>,
    like_errors: Option<Vec<PathBuf>>,
    like_noise_from: Option<Vec<PathBuf>>,
    like_error_kind: Option<String>,
    like_bands: Option<String>,
) -> PyResult<(String, Vec<String>)> {
    let d = ValidateRequest::default();
    let like = match (like, like_images) {
        (Some(_), Some(_)) => return Err(invalid("like_images", "(images)", "give `like` (a cube) or `like_images`, not both")),
        (Some(p), None) => Some(sbipix::request::ImageInput::cube(p, like_unit)),
        (None, Some(images)) => Some(sbipix::request::ImageInput {
            cube: None,
            images,
            errors: like_errors.unwrap_or_default(),
            noise_from: like_noise_from.unwrap_or_default(),
            error_maps: match like_error_kind.as_deref() {
                None | Some("sigma") => sbipix::request::ErrorMaps::Sigma,
                Some("weight") => sbipix::request::ErrorMaps::Weight,
                Some(k) => return Err(invalid("like_error_kind", k, "expected `sigma` or `weight`")),
            },
            bands: like_bands,
            unit: like_unit,
        }),
        (None, None) => None,
    };
    let req = ValidateRequest {
        model,
        n: n.unwrap_or(d.n),
        seed: seed.unwrap_or(d.seed),
        draws: draws.unwrap_or(d.draws),
        snr_min: snr_min.unwrap_or(d.snr_min),
        refine: refine.unwrap_or(d.refine),
        sys_err: sys_err.unwrap_or(d.sys_err),
        reference: reference.unwrap_or(d.reference),
        reference_particles: reference_particles.unwrap_or(d.reference_particles),
        against,
        atlas_has_1pz: atlas_has_1pz.unwrap_or(d.atlas_has_1pz),
        like,
        cases_from,
        out,
        overwrite: overwrite.unwrap_or(d.overwrite),
    };
    req.validate().map_err(to_py)?;
    let log = Log::default();
    let r = py.detach(|| req.run(&|m| log.push(m))).map_err(to_py)?;
    Ok((serde_json::to_string(&r).map_err(other)?, log.take()))
}

/// Calibrates a model's marginal posteriors on fresh simulations and writes the calibrated copy;
/// returns (the calibration record as JSON, log).
#[pyfunction]
#[pyo3(signature = (model, out, *, n = None, seed = None, draws = None, snr_min = None, overwrite = None))]
#[allow(clippy::too_many_arguments)] // the keyword arguments of a Python function
pub fn calibrate(
    py: Python<'_>,
    model: String,
    out: PathBuf,
    n: Option<usize>,
    seed: Option<u64>,
    draws: Option<usize>,
    snr_min: Option<f64>,
    overwrite: Option<bool>,
) -> PyResult<(String, Vec<String>)> {
    let d = CalibrateRequest::default();
    let req = CalibrateRequest {
        model,
        n: n.unwrap_or(d.n),
        seed: seed.unwrap_or(d.seed),
        draws: draws.unwrap_or(d.draws),
        snr_min: snr_min.unwrap_or(d.snr_min),
        out,
        overwrite: overwrite.unwrap_or(d.overwrite),
    };
    req.validate().map_err(to_py)?;
    let log = Log::default();
    let r = py.detach(|| req.run(&|m| log.push(m))).map_err(to_py)?;
    Ok((serde_json::to_string(&r).map_err(other)?, log.take()))
}
