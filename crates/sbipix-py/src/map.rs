//! `map_cube` (as `sbipix map --cube`) and `map_arrays`: maps of one galaxy.

use crate::errors::{other, shape, to_py};
use crate::model::Model;
use crate::{Log, slice};
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray3, PyUntypedArrayMethods};
use pyo3::prelude::*;
use sbipix::ImageSet;
use sbipix::products::map_fits::map_layers;
use sbipix::request::{ImageInput, MapRequest, Segmentation};
use std::path::PathBuf;

/// (layer names, 2-d maps, summary JSON, log).
type MapOut<'py> = (Vec<String>, Vec<Bound<'py, PyArray2<f32>>>, String, Vec<String>);

/// The settings shared by both entry points, over the request's defaults.
#[derive(Default)]
struct Settings {
    snr_min: Option<f64>,
    draws: Option<usize>,
    seed: Option<u64>,
    ppc: Option<bool>,
    refine: Option<bool>,
    sys_err: Option<f64>,
    out: Option<PathBuf>,
    photo_z: Option<bool>,
    free_logu: Option<bool>,
    pixel_scale_arcsec: Option<f64>,
}

impl Settings {
    fn request(self, redshift: Option<f64>, images: ImageInput, segmentation: Option<Segmentation>) -> MapRequest {
        let d = MapRequest::default();
        MapRequest {
            model: d.model,
            images,
            redshift,
            segmentation,
            snr_min: self.snr_min.unwrap_or(d.snr_min),
            draws: self.draws.unwrap_or(d.draws),
            seed: self.seed.unwrap_or(d.seed),
            ppc: self.ppc.unwrap_or(d.ppc),
            refine: self.refine.unwrap_or(d.refine),
            sys_err: self.sys_err.unwrap_or(d.sys_err),
            out: self.out,
            photo_z: self.photo_z.unwrap_or(d.photo_z),
            photo_z_settings: d.photo_z_settings,
            free_logu: self.free_logu.unwrap_or(d.free_logu),
            pixel_scale_arcsec: self.pixel_scale_arcsec,
        }
    }
}

/// Runs the request on `img` with the loaded model, the GIL released.
fn run<'py>(py: Python<'py>, model: &Model, req: MapRequest, img: Option<ImageSet>) -> PyResult<MapOut<'py>> {
    req.validate().map_err(to_py)?;
    let log = Log::default();
    let r = py
        .detach(|| -> sbipix::Result<_> {
            let img = match img {
                Some(i) => i,
                None => req.images.load(&|m| log.push(m))?,
            };
            req.run_on(&model.inner, img, &|m| log.push(m), &|_, _| {})
        })
        .map_err(to_py)?;
    let (ny, nx) = (r.images.ny, r.images.nx);
    let layers = map_layers(&r.maps);
    let names = layers.iter().map(|l| l.name.clone()).collect();
    let mut arrays = Vec::with_capacity(layers.len());
    for l in layers {
        arrays.push(Array2::from_shape_vec((ny, nx), l.data).map_err(other)?.into_pyarray(py));
    }
    Ok((names, arrays, serde_json::to_string(&r.maps.summary).map_err(other)?, log.take()))
}

/// Maps a FLUX/ERR cube: (names, maps, summary JSON, log); `out` also writes maps.fits,
/// maps.png and summary.json.
#[pyfunction]
#[pyo3(signature = (
    model, path, *, redshift = None, snr_min = None, draws = None, seed = None, ppc = None, unit = None, out = None,
    refine = None, sys_err = None, seg = None, seg_id = None, photo_z = None, free_logu = None, pixel_scale_arcsec = None,
))]
#[allow(clippy::too_many_arguments)] // the keyword arguments of a Python function
pub fn map_cube<'py>(
    py: Python<'py>,
    model: PyRef<'py, Model>,
    path: PathBuf,
    redshift: Option<f64>,
    snr_min: Option<f64>,
    draws: Option<usize>,
    seed: Option<u64>,
    ppc: Option<bool>,
    unit: Option<String>,
    out: Option<PathBuf>,
    refine: Option<bool>,
    sys_err: Option<f64>,
    seg: Option<PathBuf>,
    seg_id: Option<f64>,
    photo_z: Option<bool>,
    free_logu: Option<bool>,
    pixel_scale_arcsec: Option<f64>,
) -> PyResult<MapOut<'py>> {
    let segmentation = match (seg, seg_id) {
        (Some(path), Some(id)) => Some(Segmentation { path, id }),
        (None, None) => None,
        _ => return Err(crate::errors::invalid("seg_id", "(one of seg, seg_id)", "a segmentation map needs both seg and seg_id")),
    };
    let s = Settings { snr_min, draws, seed, ppc, refine, sys_err, out, photo_z, free_logu, pixel_scale_arcsec };
    let req = s.request(redshift, ImageInput::cube(path, unit), segmentation);
    run(py, &model, req, None)
}

/// Maps arrays: flux and σ [bands, y, x] in µJy per pixel, band names in array order.
#[pyfunction]
#[pyo3(signature = (model, flux, err, bands, redshift, *, snr_min = None, draws = None, seed = None, ppc = None, out = None, refine = None, sys_err = None, free_logu = None, pixel_scale_arcsec = None))]
#[allow(clippy::too_many_arguments)] // the keyword arguments of a Python function
pub fn map_arrays<'py>(
    py: Python<'py>,
    model: PyRef<'py, Model>,
    flux: PyReadonlyArray3<'py, f64>,
    err: PyReadonlyArray3<'py, f64>,
    bands: Vec<String>,
    redshift: f64,
    snr_min: Option<f64>,
    draws: Option<usize>,
    seed: Option<u64>,
    ppc: Option<bool>,
    out: Option<PathBuf>,
    refine: Option<bool>,
    sys_err: Option<f64>,
    free_logu: Option<bool>,
    pixel_scale_arcsec: Option<f64>,
) -> PyResult<MapOut<'py>> {
    let sh = flux.shape().to_vec();
    if err.shape() != sh.as_slice() {
        return Err(shape("err", format!("the shape of flux, {sh:?}"), format!("{:?}", err.shape())));
    }
    if sh[0] != bands.len() {
        return Err(shape("band names", format!("one per band of flux (axis 0: {})", sh[0]), bands.len()));
    }
    let img = ImageSet {
        source: "arrays".into(),
        bands,
        ny: sh[1],
        nx: sh[2],
        flux: slice(&flux, "flux")?.to_vec(),
        err: slice(&err, "err")?.to_vec(),
        wcs: Default::default(),
        redshift: None,
    };
    let s = Settings { snr_min, draws, seed, ppc, refine, sys_err, out, photo_z: None, free_logu, pixel_scale_arcsec };
    let req = s.request(Some(redshift), ImageInput::default(), None);
    run(py, &model, req, Some(img))
}
