//! `sbipix._core`: the Rust side of the Python package (see `python/sbipix/__init__.py`, which
//! gives these functions their Python signatures, documentation and dict/array conversions).
//!
//! Conventions: arrays arrive C-contiguous in the dtype named in each signature (the Python
//! wrapper converts); long work runs with the GIL released (`Python::detach`); every error is a
//! `sbipix.SbipixError` (a `ValueError`) carrying the same message as the command line.

use numpy::ndarray::{Array1, Array2, Array3};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArray3, PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArray3, PyUntypedArrayMethods};
use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use sbipix::flow::Architecture;
use sbipix::flow::dense::Activation;
use sbipix::flow::train::TrainConfig;
use sbipix::inference::model::Posterior;
use sbipix::sps::{ModelConfig, SfhFamily};
use sbipix::{FilterChoice, ParamTable, build_sps_model};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use {
    sbipix::ImageSet,
    sbipix::products::map::{MapOptions, map_galaxy},
    sbipix::products::map_fits::map_layers,
};

create_exception!(
    _core,
    SbipixError,
    PyValueError,
    "An sbipix error: bad input, a missing or corrupt file, a model that does not fit the data."
);

fn err<E: std::fmt::Display>(e: E) -> PyErr {
    SbipixError::new_err(e.to_string())
}

fn slice<'a, T: numpy::Element, D: numpy::ndarray::Dimension>(a: &'a numpy::PyReadonlyArray<'_, T, D>, what: &str) -> PyResult<&'a [T]> {
    a.as_slice().map_err(|_| err(format!("{what}: array must be C-contiguous")))
}

/// Messages the library logs, kept to hand back to Python (a notebook does not show Rust's stderr).
#[derive(Default)]
struct Log(Mutex<Vec<String>>);
impl Log {
    fn push(&self, m: &str) {
        self.0.lock().expect("log lock").push(m.to_string());
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().expect("log lock"))
    }
}

#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// The data folder ($SBIPIX_DATA or the user cache).
#[pyfunction]
fn data_path() -> PyResult<String> {
    Ok(sbipix::io::DataStore::from_env().map_err(err)?.dir().display().to_string())
}

/// Downloads and converts the model data (as `sbipix data fetch`); returns the log.
#[pyfunction]
fn fetch_data(py: Python<'_>, force: bool) -> PyResult<Vec<String>> {
    let log = Log::default();
    py.detach(|| -> sbipix::io::Result<()> {
        let store = sbipix::io::DataStore::from_env()?;
        if force || !store.is_present() {
            store.fetch(force, &|m| log.push(m))?;
        }
        store.verify()
    })
    .map_err(err)?;
    Ok(log.take())
}

fn family(sfh: &str) -> PyResult<SfhFamily> {
    Ok(match sfh {
        "delayed_tau" | "delayed-tau" => SfhFamily::DelayedTau,
        "exponential" => SfhFamily::Exponential,
        "constant" => SfhFamily::Constant,
        "burst" => SfhFamily::Burst,
        _ => return Err(err(format!("unknown sfh `{sfh}` (delayed_tau, exponential, constant, burst)"))),
    })
}

type PhotometryOut<'py> =
    (Vec<String>, Bound<'py, PyArray2<f64>>, Vec<String>, Vec<String>, Bound<'py, PyArray2<f64>>, Bound<'py, PyArray2<f64>>, Vec<String>);

/// Forward model on columns of parameters: (parameter names with defaults filled in, their
/// values [n, k], bands, derived names, derived [n, 4], flux µJy [n, bands], log).
#[pyfunction]
#[pyo3(signature = (names, columns, sfh, filters=None))]
fn photometry<'py>(
    py: Python<'py>,
    names: Vec<String>,
    columns: Vec<PyReadonlyArray1<'py, f64>>,
    sfh: &str,
    filters: Option<Vec<String>>,
) -> PyResult<PhotometryOut<'py>> {
    let fam = family(sfh)?;
    let mut given = Vec::with_capacity(names.len());
    for (n, c) in names.iter().zip(&columns) {
        given.push((n.clone(), slice(c, n)?.to_vec()));
    }
    let table = ParamTable::from_columns(given, "params", fam).map_err(err)?;
    let log = Log::default();
    let (bands, rows) = py
        .detach(|| -> sbipix::Result<_> {
            let store = sbipix::io::DataStore::from_env()?;
            // each path is one curve file (the CLI's --filters takes a list file instead)
            let choice = match &filters {
                Some(f) => FilterChoice::Given(
                    f.iter().map(|p| sbipix::io::filters::read_filter_file(Path::new(p))).collect::<sbipix::io::Result<Vec<_>>>()?,
                ),
                None => FilterChoice::Jades,
            };
            let model = build_sps_model(&store, &choice, ModelConfig::default(), &|m| log.push(m))?;
            let rows = sbipix::products::photometry::compute_rows(&model, &table, &|_| {})?;
            Ok((model.band_names(), rows))
        })
        .map_err(err)?;
    let n = rows.len();
    let nb = bands.len();
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

/// Simulates a training set into `out` (as `sbipix simulate`); returns (manifest JSON, log).
#[pyfunction]
#[pyo3(signature = (n, out, prior, sfh, survey, seed, drop_rate, overwrite))]
#[allow(clippy::too_many_arguments)]
fn simulate(
    py: Python<'_>,
    n: usize,
    out: PathBuf,
    prior: Option<PathBuf>,
    sfh: &str,
    survey: &str,
    seed: u64,
    drop_rate: f64,
    overwrite: bool,
) -> PyResult<(String, Vec<String>)> {
    use sbipix::sim::Prior;
    let prior = match &prior {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| err(format!("{}: {e}", p.display())))?;
            Prior::from_toml_str(&text, &p.display().to_string()).map_err(err)?
        }
        None => match sfh {
            "delayed_tau" | "delayed-tau" => Prior::sbipix_delayed_tau(),
            "dense_basis" | "dense-basis" => Prior::sbipix_dense_basis(),
            _ => return Err(err(format!("unknown sfh prior `{sfh}` (delayed_tau, dense_basis)"))),
        },
    };
    if n == 0 {
        return Err(err("n must be at least 1"));
    }
    if !(0.0..1.0).contains(&drop_rate) {
        return Err(err(format!("drop_rate {drop_rate} must lie in [0, 1)")));
    }
    let (survey, base) = sbipix::inference::training_set::load_survey(survey).map_err(err)?;
    let log = Log::default();
    let m = py
        .detach(|| -> sbipix::Result<_> {
            let store = sbipix::io::DataStore::from_env()?;
            let model =
                sbipix::inference::training_set::model_for_survey(&store, &survey, &base, ModelConfig::default(), &|m| log.push(m))?;
            let spec = sbipix::sim::SimulationSpec { n, seed, drop_rate };
            sbipix::inference::training_set::simulate_to_dir(&model, &prior, &survey, spec, &out, overwrite, &|_| {})
        })
        .map_err(err)?;
    Ok((serde_json::to_string(&m).map_err(err)?, log.take()))
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
fn read_training_set<'py>(py: Python<'py>, path: PathBuf) -> PyResult<SetArrays<'py>> {
    let (s, _) = py.detach(|| sbipix::inference::training_set::read_dir(&path)).map_err(err)?;
    let (n, p, nb) = (s.len(), s.parameter_names.len(), s.bands.len());
    let a2 = |v: Vec<f32>, c: usize| Array2::from_shape_vec((n, c), v).expect("shape");
    Ok((
        s.parameter_names,
        s.bands,
        a2(s.theta, p).into_pyarray(py),
        Array1::from(s.redshift).into_pyarray(py),
        a2(s.flux_true_ujy, nb).into_pyarray(py),
        a2(s.flux_obs_ujy, nb).into_pyarray(py),
        a2(s.sigma_ujy, nb).into_pyarray(py),
        Array2::from_shape_vec((n, nb), s.observed).expect("shape").into_pyarray(py),
    ))
}

/// Trains a flow (as `sbipix train`); `progress(epoch_json)` is called after every epoch.
/// Returns the training report as JSON.
#[pyfunction]
#[pyo3(signature = (data, out, flow, layers, hidden, hidden_layers, bins, seed, batch_size, lr, max_epochs, patience, overwrite, progress=None, params=None))]
#[allow(clippy::too_many_arguments)]
fn train(
    py: Python<'_>,
    data: PathBuf,
    out: PathBuf,
    flow: &str,
    layers: usize,
    hidden: usize,
    hidden_layers: usize,
    bins: usize,
    seed: u64,
    batch_size: usize,
    lr: Option<f64>,
    max_epochs: usize,
    patience: usize,
    overwrite: bool,
    progress: Option<Py<PyAny>>,
    params: Option<Vec<String>>,
) -> PyResult<String> {
    if hidden_layers == 0 || layers == 0 || hidden == 0 || batch_size == 0 || max_epochs == 0 {
        return Err(err("layers, hidden, hidden_layers, batch_size and max_epochs must be at least 1"));
    }
    let (base, architecture) = match flow {
        "nsf" => (
            TrainConfig::nsf(),
            Architecture::Nsf { layers, hidden, extra_hidden_layers: hidden_layers - 1, bins, tail_bound: 4.0, affine_hidden: 0 },
        ),
        "maf" => (TrainConfig::maf(), Architecture::Maf { layers, hidden, blocks: hidden_layers, activation: Activation::Relu }),
        _ => return Err(err(format!("unknown flow `{flow}` (nsf, maf)"))),
    };
    let cfg = TrainConfig {
        architecture,
        batch_size,
        learning_rate: lr.unwrap_or(base.learning_rate),
        max_epochs,
        patience,
        seed,
        threads: rayon::current_num_threads(),
        ..base
    };
    let mut ckpt = out.clone().into_os_string();
    ckpt.push(".checkpoint");
    let ckpt = PathBuf::from(ckpt);
    let cb_err: Mutex<Option<PyErr>> = Mutex::new(None);
    let r = py.detach(|| {
        sbipix::inference::training::train_model(
            &data,
            &out,
            &cfg,
            sbipix::inference::training::TrainRun { checkpoint: Some(&ckpt), resume: false, overwrite, params: params.as_deref() },
            &mut |e| {
                if let Some(cb) = &progress {
                    Python::attach(|py| {
                        let j = serde_json::to_string(e).unwrap_or_default();
                        if let Err(x) = cb.call1(py, (j,)) {
                            cb_err.lock().expect("lock").get_or_insert(x);
                        }
                    });
                }
            },
        )
    });
    let _ = std::fs::remove_dir_all(&ckpt);
    if let Some(e) = cb_err.into_inner().expect("lock") {
        return Err(e);
    }
    let (_, report) = r.map_err(err)?;
    serde_json::to_string(&report).map_err(err)
}

/// Validates a model on fresh simulations (as `sbipix validate`); returns the report as JSON.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (model, out, n, seed, draws, snr_min, overwrite, reference = 0, reference_particles = 1000, refine = None))]
fn validate(
    py: Python<'_>,
    model: &str,
    out: PathBuf,
    n: usize,
    seed: u64,
    draws: usize,
    snr_min: f64,
    overwrite: bool,
    reference: usize,
    reference_particles: usize,
    refine: Option<f64>,
) -> PyResult<(String, Vec<String>)> {
    let dir = model_dir(model)?;
    let log = Log::default();
    let r = py
        .detach(|| -> sbipix::Result<_> {
            let store = sbipix::io::DataStore::from_env()?;
            let refo = sbipix::validation::simulated::ReferenceOptions { cases: reference, particles: reference_particles.max(2) };
            let settings = refine.map(refine_settings).transpose()?;
            sbipix::validation::simulated::validate(&store, &dir, n, seed, draws, snr_min, settings, refo, &out, overwrite, &|m| {
                log.push(m)
            })
        })
        .map_err(err)?;
    Ok((serde_json::to_string(&r).map_err(err)?, log.take()))
}

/// Refinement settings with systematic error `sys` (a fraction of the flux).
fn refine_settings(sys: f64) -> sbipix::Result<sbipix::inference::refine::RefineSettings> {
    sbipix::inference::refine::RefineSettings::with_sys_err(sys, "sys_err")
}

fn model_dir(name: &str) -> PyResult<PathBuf> {
    if name == "default" { sbipix::default_model_dir().map_err(err) } else { Ok(PathBuf::from(name)) }
}

/// A trained posterior model (a model folder, or the built-in `default`).
#[pyclass(module = "sbipix._core", frozen)]
struct Model {
    post: Posterior,
    /// The forward model for posterior-predictive checks, built once per process on first use.
    ppc: std::sync::OnceLock<Option<(std::sync::Arc<sbipix::sps::SpsModel>, sbipix::sim::Prior)>>,
}

impl Model {
    fn ppc_model(&self, log: &Log) -> Option<(std::sync::Arc<sbipix::sps::SpsModel>, sbipix::sim::Prior)> {
        self.ppc.get_or_init(|| sbipix::inference::ppc::ppc_model_or_warn(&self.post, &|m| log.push(m))).clone()
    }

    /// The forward model and prior, required (for refinement): an error if the data are missing.
    fn forward_model(&self, log: &Log) -> sbipix::Result<(std::sync::Arc<sbipix::sps::SpsModel>, sbipix::sim::Prior)> {
        match self.ppc_model(log) {
            Some(m) => Ok(m),
            None => Err(sbipix::Error::unsupported(
                "refinement",
                "it needs the forward model, which could not be built (see the warning above)",
            )),
        }
    }

    fn survey_options(
        &self,
        draws: usize,
        snr_min: f64,
        seed: u64,
        ppc: bool,
        log: &Log,
    ) -> PyResult<sbipix::products::population::SurveyOptions> {
        if draws == 0 {
            return Err(err("draws must be at least 1"));
        }
        Ok(sbipix::products::population::SurveyOptions { n_draws: draws, snr_min, seed, ppc: if ppc { self.ppc_model(log) } else { None } })
    }
}

type StatusList = Vec<(String, String)>;

/// The ids of a survey manifest, in order (a row that cannot run has its reason).
#[pyfunction]
fn survey_manifest(path: PathBuf) -> PyResult<Vec<(String, Option<String>)>> {
    let m = sbipix::products::population::read_manifest(&path).map_err(err)?;
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
fn survey_collect(py: Python<'_>, manifest: PathBuf, out: PathBuf) -> PyResult<StatusList> {
    py.detach(|| -> sbipix::Result<_> {
        let m = sbipix::products::population::read_manifest(&manifest)?;
        sbipix::products::population::remove_stale_temporaries(&out);
        let rows = sbipix::products::population::collect(&m, &out);
        sbipix::products::population::write_population(&out, &rows, None)?;
        Ok(rows.into_iter().map(|r| (r.id, r.status)).collect())
    })
    .map_err(err)
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

type MapOut<'py> = (Vec<String>, Vec<Bound<'py, PyArray2<f32>>>, String, Vec<String>);

impl Model {
    #[allow(clippy::too_many_arguments)]
    fn run_map<'py>(
        &self,
        py: Python<'py>,
        img: ImageSet,
        redshift: Option<f64>,
        snr_min: f64,
        draws: usize,
        seed: u64,
        ppc: bool,
        refine: Option<f64>,
        out: Option<PathBuf>,
        log: Log,
    ) -> PyResult<MapOut<'py>> {
        let z = redshift
            .or(img.redshift)
            .ok_or_else(|| err(format!("no redshift: give redshift= (or a REDSHIFT keyword in {})", img.source)))?;
        if draws == 0 {
            return Err(err("draws must be at least 1"));
        }
        let mut opts = MapOptions::new(z);
        opts.snr_min = snr_min;
        opts.n_draws = draws;
        opts.seed = seed;
        let m = py
            .detach(|| -> sbipix::Result<_> {
                if ppc {
                    opts.ppc = self.ppc_model(&log);
                }
                if let Some(sys) = refine {
                    let (fwd, prior) = self.forward_model(&log)?;
                    opts.refine = Some((refine_settings(sys)?, fwd, prior));
                }
                let m = map_galaxy(&self.post, &img, &opts, &|m| log.push(m))?;
                if let Some(o) = &out {
                    sbipix::products::map_fits::write_maps(o, &img, &m)?;
                }
                Ok(m)
            })
            .map_err(err)?;
        let layers = map_layers(&m);
        let names = layers.iter().map(|l| l.name.clone()).collect();
        let arrays =
            layers.into_iter().map(|l| Array2::from_shape_vec((img.ny, img.nx), l.data).expect("shape").into_pyarray(py)).collect();
        Ok((names, arrays, serde_json::to_string(&m.summary).map_err(err)?, log.take()))
    }
}

#[pymethods]
impl Model {
    /// `name`: "default" or a model folder.
    #[staticmethod]
    fn load(py: Python<'_>, name: &str) -> PyResult<Self> {
        let dir = model_dir(name)?;
        let post = py.detach(|| Posterior::load(&dir)).map_err(err)?;
        Ok(Self { post, ppc: std::sync::OnceLock::new() })
    }

    #[getter]
    fn parameter_names(&self) -> Vec<String> {
        self.post.parameter_names()
    }

    #[getter]
    fn bands(&self) -> Vec<String> {
        self.post.manifest.bands.clone()
    }

    #[getter]
    fn max_redshift(&self) -> f64 {
        self.post.manifest.max_redshift_trained
    }

    #[getter]
    fn path(&self) -> String {
        self.post.dir.display().to_string()
    }

    #[getter]
    fn manifest_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.post.manifest).map_err(err)
    }

    /// Posterior draws [pixels, n, parameters] from flux and σ [pixels, bands] (µJy, model band
    /// order), measured [pixels, bands] (1 = use) and redshift [pixels], and the log. With
    /// `integrated_error_floor` the rows are whole galaxies (sbipix::inference::integrated::sample_integrated);
    /// with `refine` (a systematic error fraction) the draws are likelihood-refined.
    #[pyo3(signature = (flux, err_, measured, redshift, n, seed, integrated_error_floor=None, refine=None))]
    #[allow(clippy::too_many_arguments)]
    fn sample<'py>(
        &self,
        py: Python<'py>,
        flux: PyReadonlyArray2<'py, f64>,
        err_: PyReadonlyArray2<'py, f64>,
        measured: PyReadonlyArray2<'py, u8>,
        redshift: PyReadonlyArray1<'py, f64>,
        n: usize,
        seed: u64,
        integrated_error_floor: Option<f64>,
        refine: Option<f64>,
    ) -> PyResult<(Bound<'py, PyArray3<f32>>, Vec<String>)> {
        let nb = self.post.manifest.bands.len();
        let np = redshift.len();
        for (what, shape) in [("flux", flux.shape()), ("err", err_.shape()), ("mask", measured.shape())] {
            if shape != [np, nb] {
                return Err(err(format!(
                    "{what} has shape {shape:?}; expected ({np}, {nb}): one row per pixel or object (the length of redshift) × the model's {nb} bands"
                )));
            }
        }
        if n == 0 {
            return Err(err("n must be at least 1"));
        }
        let (f, s, z) = (slice(&flux, "flux")?.to_vec(), slice(&err_, "err")?.to_vec(), slice(&redshift, "redshift")?.to_vec());
        // a band is used where the mask says so and its flux and σ are usable
        let m: Vec<bool> = slice(&measured, "mask")?
            .iter()
            .zip(f.iter().zip(&s))
            .map(|(m, (f, s))| *m == 1 && f.is_finite() && s.is_finite() && *s > 0.0)
            .collect();
        let log = Log::default();
        let draws = py
            .detach(|| -> sbipix::Result<Vec<f32>> {
                let mut d = match integrated_error_floor {
                    None => self.post.sample(&f, &s, &m, &z, n, seed)?,
                    Some(floor) => sbipix::inference::integrated::sample_integrated(&self.post, &f, &s, &m, &z, n, seed, floor)?,
                };
                if let Some(sys) = refine {
                    let (fwd, prior) = self.forward_model(&log)?;
                    let settings = sbipix::inference::refine::RefineSettings {
                        sys_frac: sys.max(integrated_error_floor.unwrap_or(0.0)),
                        ..refine_settings(sys)?
                    };
                    sbipix::inference::refine::refine_all(
                        &fwd,
                        &prior,
                        &f,
                        &s,
                        &m,
                        &z,
                        &self.post.parameter_names(),
                        &mut d,
                        settings,
                        seed ^ sbipix::sim::streams::REFINE,
                        &|_| {},
                    )?;
                }
                Ok(d)
            })
            .map_err(err)?;

        let p = self.post.parameter_names().len();
        Ok((Array3::from_shape_vec((np, n, p), draws).expect("shape").into_pyarray(py), log.take()))
    }

    /// Fits a catalogue file (as `sbipix fit`): (ids, redshift, n_bands, status, parameter names,
    /// percentiles [rows, parameters, 3], ppc_chi2, log); writes `out` (CSV) if given.
    #[pyo3(signature = (path, flux_columns, err_columns, redshift_column, id_column, unit, draws, seed, error_floor, ppc, out, refine=None))]
    #[allow(clippy::too_many_arguments)]
    fn fit_catalog<'py>(
        &self,
        py: Python<'py>,
        path: PathBuf,
        flux_columns: String,
        err_columns: String,
        redshift_column: String,
        id_column: String,
        unit: Option<String>,
        draws: usize,
        seed: u64,
        error_floor: f64,
        ppc: bool,
        out: Option<PathBuf>,
        refine: Option<f64>,
    ) -> PyResult<CatalogOut<'py>> {
        if draws == 0 {
            return Err(err("draws must be at least 1"));
        }
        let cols = sbipix::products::catalog_fit::CatalogColumns {
            flux: flux_columns,
            err: err_columns,
            redshift: redshift_column,
            id: Some(id_column),
            unit,
            error_floor,
        };
        let log = Log::default();
        let fit = py
            .detach(|| -> sbipix::Result<_> {
                let settings = refine.map(refine_settings).transpose()?;
                let forward = match (ppc, settings.is_some()) {
                    (_, true) => Some(self.forward_model(&log)?),
                    (true, false) => self.ppc_model(&log),
                    (false, false) => None,
                };
                let fit = sbipix::products::catalog_fit::fit_catalog(
                    &self.post,
                    &path,
                    &cols,
                    draws,
                    seed,
                    forward.as_ref(),
                    ppc,
                    settings,
                    &|m| log.push(m),
                )?;
                if let Some(o) = &out {
                    sbipix::products::catalog_fit::write_fit_csv(o, &fit)?;
                }
                Ok(fit)
            })
            .map_err(err)?;
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

    /// Maps galaxy `index` (0-based) of a survey manifest into `out` (as one galaxy of `sbipix
    /// survey`; a galaxy already done is skipped): (id, status, log).
    #[allow(clippy::too_many_arguments)]
    fn survey_galaxy(
        &self,
        py: Python<'_>,
        manifest: PathBuf,
        index: usize,
        out: PathBuf,
        draws: usize,
        snr_min: f64,
        seed: u64,
        ppc: bool,
    ) -> PyResult<(String, String, Vec<String>)> {
        let log = Log::default();
        let opts = py.detach(|| self.survey_options(draws, snr_min, seed, ppc, &log))?;
        let st = py
            .detach(|| -> sbipix::Result<_> {
                let (_, job) = sbipix::products::population::read_manifest_row(&manifest, index)?;
                sbipix::products::population::run_galaxy(&self.post, &job, &out, &opts)
            })
            .map_err(err)?;
        Ok((st.id, st.status, log.take()))
    }

    /// Runs a whole survey in this process (as `sbipix survey`): (id, status) rows and the log.
    #[allow(clippy::too_many_arguments)]
    fn survey(
        &self,
        py: Python<'_>,
        manifest: PathBuf,
        out: PathBuf,
        draws: usize,
        snr_min: f64,
        seed: u64,
        ppc: bool,
    ) -> PyResult<(StatusList, Vec<String>)> {
        let log = Log::default();
        let opts = py.detach(|| self.survey_options(draws, snr_min, seed, ppc, &log))?;
        let rows = py
            .detach(|| -> sbipix::Result<_> {
                let m = sbipix::products::population::read_manifest(&manifest)?;
                let rows = sbipix::products::population::run_survey(&self.post, &m, &out, &opts, &|_, _, _| {})?;
                sbipix::products::population::write_population(&out, &rows, None)?;
                Ok(rows)
            })
            .map_err(err)?;
        Ok((rows.into_iter().map(|r| (r.id, r.status)).collect(), log.take()))
    }

    /// Maps a FLUX/ERR cube (as `sbipix map --cube`): (names, maps, summary JSON, log).
    #[pyo3(signature = (path, redshift, snr_min, draws, seed, ppc, unit, out, refine=None))]
    #[allow(clippy::too_many_arguments)]
    fn map_cube<'py>(
        &self,
        py: Python<'py>,
        path: PathBuf,
        redshift: Option<f64>,
        snr_min: f64,
        draws: usize,
        seed: u64,
        ppc: bool,
        unit: Option<String>,
        out: Option<PathBuf>,
        refine: Option<f64>,
    ) -> PyResult<MapOut<'py>> {
        let log = Log::default();
        let img = py.detach(|| ImageSet::from_cube(Path::new(&path), unit.as_deref(), &|m| log.push(m))).map_err(err)?;
        self.run_map(py, img, redshift, snr_min, draws, seed, ppc, refine, out, log)
    }

    /// Maps arrays: flux and σ [bands, y, x] in µJy per pixel, band names.
    #[pyo3(signature = (flux, err_, bands, redshift, snr_min, draws, seed, ppc, out, refine=None))]
    #[allow(clippy::too_many_arguments)]
    fn map_arrays<'py>(
        &self,
        py: Python<'py>,
        flux: PyReadonlyArray3<'py, f64>,
        err_: PyReadonlyArray3<'py, f64>,
        bands: Vec<String>,
        redshift: f64,
        snr_min: f64,
        draws: usize,
        seed: u64,
        ppc: bool,
        out: Option<PathBuf>,
        refine: Option<f64>,
    ) -> PyResult<MapOut<'py>> {
        let sh = flux.shape().to_vec();
        if err_.shape() != sh.as_slice() {
            return Err(err(format!("flux has shape {:?} but err {:?}", sh, err_.shape())));
        }
        if sh[0] != bands.len() {
            return Err(err(format!("flux has {} bands (axis 0) but {} band names were given", sh[0], bands.len())));
        }
        let img = ImageSet {
            source: "arrays".into(),
            bands,
            ny: sh[1],
            nx: sh[2],
            flux: slice(&flux, "flux")?.to_vec(),
            err: slice(&err_, "err")?.to_vec(),
            wcs: Default::default(),
            redshift: None,
        };
        self.run_map(py, img, Some(redshift), snr_min, draws, seed, ppc, refine, out, Log::default())
    }
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("SbipixError", m.py().get_type::<SbipixError>())?;
    m.add_class::<Model>()?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_function(wrap_pyfunction!(data_path, m)?)?;
    m.add_function(wrap_pyfunction!(fetch_data, m)?)?;
    m.add_function(wrap_pyfunction!(photometry, m)?)?;
    m.add_function(wrap_pyfunction!(simulate, m)?)?;
    m.add_function(wrap_pyfunction!(read_training_set, m)?)?;
    m.add_function(wrap_pyfunction!(train, m)?)?;
    m.add_function(wrap_pyfunction!(validate, m)?)?;
    m.add_function(wrap_pyfunction!(survey_manifest, m)?)?;
    m.add_function(wrap_pyfunction!(survey_collect, m)?)?;
    Ok(())
}
