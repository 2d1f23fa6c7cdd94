//! What the command line and the Python package ask for, in one place.
//!
//! One plain struct per verb — [`MapRequest`], [`FitRequest`], [`SampleRequest`],
//! [`TrainRequest`], [`ValidateRequest`], [`CalibrateRequest`], [`SimulateRequest`], [`SurveyRequest`],
//! [`PhotometryRequest`] — whose `Default` is **the single source of every default** (the
//! constants below, and the flow's own [`TrainConfig::nsf`](sbipix_flow::train::TrainConfig::nsf)
//! for training). `sbipix map --draws 100` and `model.map_cube(…, draws=100)` build the same
//! request; clap's `default_value_t` and the Python signatures read their defaults from here.
//!
//! Each request has `validate()`, which refuses a bad number before any work with
//! [`Error::InvalidArgument`] naming the field (the CLI shows it as its option, `--draws`; Python
//! as its keyword), and a method that carries it out: resolving `default` to the built-in model
//! ([`resolve_model`]), loading the posterior and, on demand, the forward model
//! ([`LoadedModel`]), reading the inputs, running the pipeline and writing the outputs. The front
//! ends only parse into a request and print what comes back.
//!
//! ```
//! use sbipix::request::{MapRequest, DEFAULT_DRAWS};
//! assert_eq!(MapRequest::default().draws, DEFAULT_DRAWS);
//! let e = MapRequest { draws: 0, ..MapRequest::default() }.validate().unwrap_err();
//! assert!(matches!(&e, sbipix::Error::InvalidArgument { name, .. } if name == "draws"));
//! assert!(e.is_usage());
//! ```

mod attach;
mod calibrate;
mod fit;
mod images;
mod map;
mod model;
mod photometry;
mod simulate;
mod survey;
mod train;
mod validate;

pub use attach::AttachRequest;
pub use calibrate::CalibrateRequest;
pub use fit::{FitRequest, SampleRequest};
pub use images::{ErrorMaps, ImageInput, JADES_BANDS, band_list};
pub use map::{MapRequest, MapRun, Segmentation};
pub use model::{ForwardModel, LoadedModel};
pub use photometry::{PhotometryRequest, parse_sfh_family};
pub use simulate::{MergeRequest, PriorFamily, SimulateRequest};
pub use survey::SurveyRequest;
pub use train::{FlowKind, TrainRequest, parse_schedule};
pub use validate::{ValidateRequest, Validation};

use crate::{Error, Result};
use std::path::PathBuf;

/// The name that stands for the built-in model.
pub const DEFAULT_MODEL: &str = "default";
/// Posterior draws per pixel: maps, surveys, validation, `Model.sample`.
pub const DEFAULT_DRAWS: usize = 500;
/// Posterior draws per object of integrated photometry: `sbipix fit`, `Model.fit`.
pub const DEFAULT_FIT_DRAWS: usize = 2000;
/// The systematic error of real photometry, a fraction of each flux added to σ in quadrature,
/// used by the likelihood when fitting user data (`sbipix map`, `fit`, `demo`, Python): 5 %.
/// Real photometry has calibration (zero points, PSF matching, background) and model errors
/// (stellar libraries, nebular and dust recipes) that a simulation lacks; SED codes commonly add
/// 5–10 % in quadrature (e.g. bagpipes/prospector users; JADES and CEERS catalogues floor σ at
/// 5 %). 5 % is the low end: on the real JADES cube it brings the posterior-predictive χ² of
/// the exact posteriors to ≈ 1 (docs/inference.md). `--sys-err` / `sys_err` change it; every
/// output records it.
pub const DEFAULT_SYS_ERR: f64 = 0.05;
/// A pixel is fitted when its mean S/N over [`SNR_BANDS`] is above this (SBIPIX's selection).
pub const DEFAULT_SNR_MIN: f64 = 5.0;
/// The bands whose mean S/N (over those present) selects the pixels a map fits, and the test
/// cases validation judges as "pixels a map would fit": the deep long-wavelength NIRCam bands, as
/// SBIPIX selects its pixels.
pub const SNR_BANDS: [&str; 3] = ["F277W", "F356W", "F444W"];
/// Seed of every random choice unless given.
pub const DEFAULT_SEED: u64 = 0;
/// Fractional error floor for integrated photometry (calibration and aperture systematics; the
/// common 5 % of SED-fitting catalogues), added in quadrature. It also keeps summed photometry of
/// hundreds of pixels (S/N in the thousands) away from S/N the network never saw.
pub const DEFAULT_ERROR_FLOOR: f64 = 0.05;
/// Fresh simulations of `sbipix validate`.
pub const DEFAULT_VALIDATION_CASES: usize = 2000;
/// Seed of the validation simulations: one no training set of the project used.
pub const DEFAULT_VALIDATION_SEED: u64 = 987_654_321;
/// Fresh simulations of `sbipix calibrate` (before the S/N cut).
pub const DEFAULT_CALIBRATION_CASES: usize = 20_000;
/// Seed of the calibration simulations: not the validation's, so that `sbipix validate` with its
/// defaults checks a calibration on cases it was not chosen on.
pub const DEFAULT_CALIBRATION_SEED: u64 = 123_456_789;
/// SMC particles (= draws) of each reference posterior of `sbipix validate --reference`.
pub const DEFAULT_REFERENCE_PARTICLES: usize = 1000;
/// Fewer SMC particles than this do not make a reference posterior.
pub const MIN_REFERENCE_PARTICLES: usize = 100;
/// Probability that a simulated band is marked missing.
pub const DEFAULT_DROP_RATE: f64 = 0.1;
/// The built-in survey noise model.
pub const DEFAULT_SURVEY: &str = "jades";

/// The model folder a name stands for: [`DEFAULT_MODEL`] is the built-in default
/// ([`crate::default_model_dir`]), the name of another built-in model
/// ([`crate::inference::model::BUILTIN_MODELS`]) that one — unless a folder of that name exists
/// here, which wins — and anything else a folder.
pub fn resolve_model(name: &str) -> Result<PathBuf> {
    if name == DEFAULT_MODEL {
        return crate::default_model_dir();
    }
    if !std::path::Path::new(name).exists()
        && let Some(dir) = crate::inference::model::builtin_model_dir(name)?
    {
        return Ok(dir);
    }
    Ok(PathBuf::from(name))
}

/// `value ≥ min`, else [`Error::InvalidArgument`] for `name`, saying what it counts.
pub(crate) fn at_least(name: &str, value: usize, min: usize, what: &str) -> Result<()> {
    if value < min {
        return Err(Error::invalid(name, value, format!("{what} must be at least {min}")));
    }
    Ok(())
}

/// A finite number, else [`Error::InvalidArgument`] for `name`.
pub(crate) fn finite(name: &str, value: f64, what: &str) -> Result<()> {
    if !value.is_finite() {
        return Err(Error::invalid(name, value, format!("{what} must be a finite number")));
    }
    Ok(())
}

/// The refinement settings asked for (`refine`, `sys_err`), checked; None without refinement.
pub(crate) fn refine_settings(refine: bool, sys_err: f64) -> Result<Option<crate::inference::refine::RefineSettings>> {
    if !refine {
        return Ok(None);
    }
    crate::inference::refine::RefineSettings::with_sys_err(sys_err, "sys_err").map(Some)
}

/// The range of log U when it is free: −4…−1, prospector's default prior (its `gas_logu`), the
/// span of H II regions and of high-redshift line emitters; the shipped Cloudy grids reach 0,
/// which no observed population needs (and which would let the lines absorb other misfits).
pub const FREE_LOGU_RANGE: (f64, f64) = (-4.0, -1.0);

/// The forward model and prior `f` with log U free over [`FREE_LOGU_RANGE`] (within the model's
/// nebular grids) (`free_logu`).
///
/// Why fixed by default and free on request: the default network was trained with SBIPIX's
/// prior, log U = −2, and its draws propose the exact posterior's; a free log U adds a dimension
/// the proposal knows nothing of (more likelihood evaluations per object) and is degenerate with
/// metallicity and age where the lines are weak. Where lines dominate bands — the 543
/// real-spectrum PRISM galaxies at z ≈ 6 — a fixed −2 leaves them too weak (docs/inference.md,
/// *Nebular ionisation*).
pub(crate) fn free_logu(f: model::ForwardModel) -> Result<model::ForwardModel> {
    let (glo, ghi) = f.0.logu_range();
    let (lo, hi) = (glo.max(FREE_LOGU_RANGE.0), ghi.min(FREE_LOGU_RANGE.1));
    if hi <= lo {
        return Err(Error::unsupported("free_logu", format!("the model's nebular grids span log U {glo}…{ghi}, not the free range")));
    }
    let prior = f.1.with_parameter("logu", sbipix_sim::ParamPrior::Uniform { min: lo, max: hi })?;
    Ok((f.0, prior))
}

/// The systematic error of the likelihood on simulations (`sbipix validate`): none, the
/// simulations are the model.
pub(crate) fn default_sys_err() -> f64 {
    crate::inference::refine::RefineSettings::default().sys_frac
}

/// Every front end's defaults as JSON (`{"map": {…}, "fit": {…}, …}`): the Python package reads
/// its signatures' defaults from this.
pub fn defaults_json() -> String {
    let v = serde_json::json!({
        "map": MapRequest::default(),
        "fit": FitRequest::default(),
        "sample": SampleRequest::pixels(),
        "fit_arrays": SampleRequest::integrated(),
        "train": TrainRequest::default(),
        "validate": ValidateRequest::default(),
        "calibrate": CalibrateRequest::default(),
        "simulate": SimulateRequest::default(),
        "merge": MergeRequest::default(),
        "survey": SurveyRequest::default(),
        "photometry": PhotometryRequest::default(),
    });
    serde_json::to_string(&v).expect("requests serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_of(e: Error) -> String {
        match e {
            Error::InvalidArgument { name, .. } => name,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    /// Every default is valid, and each bad number is refused by the request, naming its field.
    #[test]
    fn defaults_are_valid_and_bad_numbers_are_named() {
        MapRequest::default().validate().unwrap();
        FitRequest::default().validate().unwrap();
        SampleRequest::pixels().validate().unwrap();
        SampleRequest::integrated().validate().unwrap();
        TrainRequest::default().validate().unwrap();
        ValidateRequest::default().validate().unwrap();
        SimulateRequest { n: 1, ..Default::default() }.validate().unwrap();
        SurveyRequest::default().validate().unwrap();
        PhotometryRequest::default().validate().unwrap();

        let m = MapRequest::default;
        assert_eq!(name_of(MapRequest { draws: 0, ..m() }.validate().unwrap_err()), "draws");
        assert_eq!(name_of(MapRequest { snr_min: f64::NAN, ..m() }.validate().unwrap_err()), "snr_min");
        assert_eq!(name_of(MapRequest { redshift: Some(-1.0), ..m() }.validate().unwrap_err()), "redshift");
        assert_eq!(name_of(MapRequest { refine: true, sys_err: 1.5, ..m() }.validate().unwrap_err()), "sys_err");
        // sys_err is only read with refine (the default; not with the network alone)
        MapRequest { refine: false, sys_err: 1.5, ..m() }.validate().unwrap();
        let f = FitRequest::default;
        assert_eq!(name_of(FitRequest { draws: 0, ..f() }.validate().unwrap_err()), "draws");
        assert_eq!(name_of(FitRequest { error_floor: -0.1, ..f() }.validate().unwrap_err()), "error_floor");
        assert_eq!(name_of(SampleRequest { n: 0, ..SampleRequest::pixels() }.validate().unwrap_err()), "n");
        let v = ValidateRequest::default;
        assert_eq!(name_of(ValidateRequest { reference: 5, reference_particles: 2, ..v() }.validate().unwrap_err()), "reference_particles");
        // particles are only read with reference cases
        ValidateRequest { reference: 0, reference_particles: 2, ..v() }.validate().unwrap();
        assert_eq!(name_of(ValidateRequest { draws: 9, ..v() }.validate().unwrap_err()), "draws");
        assert_eq!(name_of(ValidateRequest { n: 0, ..v() }.validate().unwrap_err()), "n");
        let t = TrainRequest::default;
        for (r, name) in [
            (TrainRequest { hidden_layers: 0, ..t() }, "hidden_layers"),
            (TrainRequest { layers: 0, ..t() }, "layers"),
            (TrainRequest { hidden: 0, ..t() }, "hidden"),
            (TrainRequest { batch_size: 1, ..t() }, "batch_size"),
            (TrainRequest { max_epochs: 0, ..t() }, "max_epochs"),
            (TrainRequest { bins: 1, ..t() }, "bins"),
            (TrainRequest { lr: Some(0.0), ..t() }, "lr"),
            (TrainRequest { threads: Some(0), ..t() }, "threads"),
        ] {
            assert_eq!(name_of(r.validate().unwrap_err()), name);
        }
        let s = SimulateRequest::default;
        assert_eq!(name_of(s().validate().unwrap_err()), "n");
        assert_eq!(name_of(SimulateRequest { n: 5, drop_rate: 1.0, ..s() }.validate().unwrap_err()), "drop_rate");
        assert_eq!(name_of(SurveyRequest { draws: 0, ..SurveyRequest::default() }.validate().unwrap_err()), "draws");
        assert_eq!(name_of(PhotometryRequest { h0: -1.0, ..PhotometryRequest::default() }.validate().unwrap_err()), "h0");
    }

    /// The defaults the front ends show are these numbers (one place to change each).
    #[test]
    fn the_defaults() {
        let m = MapRequest::default();
        assert_eq!((m.draws, m.snr_min, m.seed, m.ppc, m.refine, m.sys_err), (500, 5.0, 0, true, true, 0.05));
        let f = FitRequest::default();
        assert_eq!((f.refine, f.sys_err), (true, 0.05));
        let v = ValidateRequest::default();
        assert_eq!((v.refine, v.sys_err), (false, 0.0));
        assert_eq!(m.model, "default");
        let f = FitRequest::default();
        assert_eq!((f.draws, f.error_floor, f.flux_columns.as_str()), (2000, 0.05, "flux_ujy_{band}"));
        let t = TrainRequest::default();
        assert_eq!((t.layers, t.hidden, t.hidden_layers, t.bins, t.batch_size, t.max_epochs, t.patience), (5, 128, 2, 8, 256, 300, 15));
        let v = ValidateRequest::default();
        assert_eq!((v.n, v.seed, v.draws, v.reference, v.reference_particles), (2000, 987_654_321, 500, 0, 1000));
        let s = SimulateRequest::default();
        assert_eq!((s.seed, s.drop_rate, s.survey.as_str()), (0, 0.1, "jades"));
        let d: serde_json::Value = serde_json::from_str(&defaults_json()).unwrap();
        assert_eq!(d["map"]["draws"], 500);
        assert_eq!(d["fit_arrays"]["error_floor"], 0.05);
        assert_eq!(d["train"]["hidden_layers"], 2);
        assert_eq!(d["validate"]["reference_particles"], 1000);
    }
}
