//! Training-set files: `.npy` arrays that numpy reads alone, plus `manifest.json`, the resolved
//! `prior.toml` and `survey.toml` — written into a temporary folder and renamed, so a training
//! set is either complete or absent.
//!
//! ```text
//! theta.npy          float32 [n, parameters]   inferred parameters (names in the manifest)
//! redshift.npy       float32 [n]               given to the network, not inferred
//! flux_true_ujy.npy  float32 [n, bands]        noiseless fluxes, µJy
//! flux_obs_ujy.npy   float32 [n, bands]        noisy fluxes, µJy (NaN where missing)
//! sigma_ujy.npy      float32 [n, bands]        1σ errors, µJy (NaN where missing)
//! observed.npy       uint8   [n, bands]        1 = measured, 0 = missing
//! ```

use crate::inference::snr_focus::{FocusRecord, SnrFocus, simulate_focused};
use crate::inference::sps_model::FilterChoice;
use crate::{Error, Result};
use sbipix_io::arrays::{read_npy_f32, write_npy_f32, write_npy_f32_1d, write_npy_u8};
use sbipix_io::{DataStore, read_filter_file};
use sbipix_sim::{InputEncoding, ParamPrior, Prior, SimulationSpec, Survey, TrainingSet};
use sbipix_sps::{Filter, ModelConfig, SpsModel};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Format identifier and version of the training-set folder.
pub const FORMAT: &str = "sbipix-training-set";
pub const FORMAT_VERSION: u32 = 1;

/// One parameter of θ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParameterInfo {
    pub name: String,
    pub unit: String,
}

/// Everything needed to use a training set, in `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub created_by: String,
    pub n: usize,
    pub seed: u64,
    pub drop_rate: f64,
    pub parameters: Vec<ParameterInfo>,
    pub conditions: Vec<String>,
    pub bands: Vec<String>,
    pub survey: String,
    pub sfh: String,
    /// log10 sSFR floor applied to the log SFR targets.
    pub log_ssfr_floor: f64,
    pub model: ModelConfig,
    pub encoding: InputEncoding,
    pub files: Vec<FileInfo>,
    /// The training sets a merged set was made of ([`merge_dirs`]), in order; empty for a set
    /// simulated in one go. `n` and `seed` above are then the total and the first part's seed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<SetPart>,
    /// The S/N window a focused set kept ([`crate::inference::snr_focus`]); absent for a set of
    /// every simulation, and for a merged set whose parts differ in it (see `parts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snr_focus: Option<FocusRecord>,
}

/// One of the training sets a merged set was made of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetPart {
    pub path: String,
    pub n: usize,
    pub seed: u64,
    /// The redshift range its prior drew from.
    pub redshift_min: f64,
    pub redshift_max: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snr_focus: Option<FocusRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileInfo {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<usize>,
}

/// A survey given by built-in name or by file, with the folder its relative filter paths
/// refer to.
pub fn load_survey(name_or_path: &str) -> Result<(Survey, PathBuf)> {
    if let Some(s) = Survey::builtin(name_or_path) {
        return Ok((s, PathBuf::from(".")));
    }
    let p = Path::new(name_or_path);
    if !p.is_file() {
        return Err(Error::file(name_or_path, "neither a built-in survey (jades) nor a survey file"));
    }
    let text = std::fs::read_to_string(p).map_err(|e| Error::read(name_or_path, e))?;
    let s = Survey::from_toml_str(&text, name_or_path)?;
    Ok((s, p.parent().map(Path::to_path_buf).unwrap_or_default()))
}

/// The filter curves of a survey's bands.
pub fn survey_filters(store: &DataStore, survey: &Survey, base: &Path, log: &dyn Fn(&str)) -> Result<Vec<Filter>> {
    let mut out = Vec::new();
    for b in &survey.bands {
        let mut f = if let Some(name) = b.filter.strip_prefix("sedpy:") {
            store.sedpy_filters(&[name], log)?.remove(0)
        } else {
            read_filter_file(&base.join(&b.filter))?
        };
        f.name = b.name.clone();
        out.push(f);
    }
    Ok(out)
}

/// Builds the forward model for a survey's bands.
pub fn model_for_survey(store: &DataStore, survey: &Survey, base: &Path, config: ModelConfig, log: &dyn Fn(&str)) -> Result<SpsModel> {
    let filters = survey_filters(store, survey, base, log)?;
    crate::build_sps_model(store, &FilterChoice::Given(filters), config, log)
}

/// Simulates a training set and writes it to `out` (which must not exist unless `overwrite`):
/// `spec.n` simulations, or with `focus` the first `spec.n` that it keeps.
#[allow(clippy::too_many_arguments)] // the set's recipe (4) and where it goes (3)
pub fn simulate_to_dir(
    model: &SpsModel,
    prior: &Prior,
    survey: &Survey,
    spec: SimulationSpec,
    focus: Option<SnrFocus>,
    out: &Path,
    overwrite: bool,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Manifest> {
    // Check the destination before the (long) simulation.
    crate::check_output(out, overwrite)?;
    if spec.n == 0 {
        return Err(Error::invalid("n", spec.n, "the number of simulations must be at least 1"));
    }
    prior.check_model(sbipix_sim::ModelLimits {
        max_redshift: model.config().max_redshift,
        logzsol: model.logzsol_range(),
        logu: model.logu_range(),
    })?;
    let noise = survey.sampler(&model.band_names())?;
    let (set, snr_focus) = match focus {
        None => (sbipix_sim::simulate(model, prior, &noise, spec, progress)?, None),
        Some(focus) => {
            let (set, n_drawn) = simulate_focused(model, prior, &noise, spec, focus, progress)?;
            (set, Some(FocusRecord { focus, n_drawn }))
        }
    };
    let manifest = Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        created_by: format!("sbipix {}", env!("CARGO_PKG_VERSION")),
        n: spec.n,
        seed: spec.seed,
        drop_rate: spec.drop_rate,
        parameters: set
            .parameter_names
            .iter()
            .map(|n| ParameterInfo { name: n.clone(), unit: sbipix_sim::theta::unit_of(n).into() })
            .collect(),
        conditions: vec!["redshift".into()],
        bands: set.bands.clone(),
        survey: survey.name.clone(),
        sfh: match prior.sfh {
            sbipix_sim::SfhPrior::DelayedTau => "delayed_tau".into(),
            sbipix_sim::SfhPrior::DenseBasis { .. } => "dense_basis".into(),
        },
        log_ssfr_floor: sbipix_sim::theta::LOG_SSFR_FLOOR,
        model: model.config().clone(),
        encoding: InputEncoding { bands: set.bands.clone(), scale_ujy: survey_scales(survey, &set.bands), kind: Default::default() },
        files: files_of(&set),
        parts: Vec::new(),
        snr_focus,
    };
    write_dir(out, &set, &manifest, prior, survey, overwrite)?;
    Ok(manifest)
}

fn survey_scales(survey: &Survey, bands: &[String]) -> Vec<f64> {
    let med = survey.median_sigma_ujy();
    bands.iter().map(|b| med[survey.bands.iter().position(|s| &s.name == b).expect("band of the survey")]).collect()
}

fn files_of(set: &TrainingSet) -> Vec<FileInfo> {
    let (n, p, b) = (set.len(), set.parameter_names.len(), set.bands.len());
    let f = |name: &str, dtype: &str, shape: Vec<usize>| FileInfo { name: name.into(), dtype: dtype.into(), shape };
    vec![
        f("theta.npy", "float32", vec![n, p]),
        f("redshift.npy", "float32", vec![n]),
        f("flux_true_ujy.npy", "float32", vec![n, b]),
        f("flux_obs_ujy.npy", "float32", vec![n, b]),
        f("sigma_ujy.npy", "float32", vec![n, b]),
        f("observed.npy", "uint8", vec![n, b]),
    ]
}

fn write_dir(out: &Path, set: &TrainingSet, manifest: &Manifest, prior: &Prior, survey: &Survey, overwrite: bool) -> Result<()> {
    crate::write_dir_atomic(out, overwrite, |d| -> Result<()> {
        let (n, p, b) = (set.len(), set.parameter_names.len(), set.bands.len());
        write_npy_f32(&d.join("theta.npy"), &set.theta, n, p)?;
        write_npy_f32_1d(&d.join("redshift.npy"), &set.redshift)?;
        write_npy_f32(&d.join("flux_true_ujy.npy"), &set.flux_true_ujy, n, b)?;
        write_npy_f32(&d.join("flux_obs_ujy.npy"), &set.flux_obs_ujy, n, b)?;
        write_npy_f32(&d.join("sigma_ujy.npy"), &set.sigma_ujy, n, b)?;
        write_npy_u8(&d.join("observed.npy"), &set.observed, n, b)?;
        let text = serde_json::to_string_pretty(manifest).expect("manifest serialises");
        std::fs::write(d.join("manifest.json"), text).map_err(|e| Error::write(d.join("manifest.json"), e))?;
        std::fs::write(d.join("prior.toml"), prior.to_toml()).map_err(|e| Error::write(d.join("prior.toml"), e))?;
        std::fs::write(d.join("survey.toml"), survey.to_toml()).map_err(|e| Error::write(d.join("survey.toml"), e))?;
        Ok(())
    })
}

/// Reads the manifest of a training set (format checked), without its arrays.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let ds = dir.display().to_string();
    let text = std::fs::read_to_string(dir.join("manifest.json")).map_err(|e| Error::read(format!("{ds}/manifest.json"), e))?;
    let m: Manifest = serde_json::from_str(&text).map_err(|e| Error::read(format!("{ds}/manifest.json"), e))?;
    if m.format != FORMAT || m.format_version != FORMAT_VERSION {
        return Err(Error::file(&ds, format!("format {} v{} (expected {FORMAT} v{FORMAT_VERSION})", m.format, m.format_version)));
    }
    Ok(m)
}

/// Reads a training set written by [`simulate_to_dir`].
pub fn read_dir(dir: &Path) -> Result<(TrainingSet, Manifest)> {
    let ds = dir.display().to_string();
    let m = read_manifest(dir)?;
    let (theta, n, p) = read_npy_f32(&dir.join("theta.npy"))?;
    let rd = |name: &str| -> Result<Vec<f32>> {
        let (v, r, c) = read_npy_f32(&dir.join(name))?;
        if r != n || c != m.bands.len() {
            return Err(Error::file(format!("{ds}/{name}"), format!("shape ({r}, {c}), expected ({n}, {})", m.bands.len())));
        }
        Ok(v)
    };
    let (flux_true_ujy, flux_obs_ujy, sigma_ujy) = (rd("flux_true_ujy.npy")?, rd("flux_obs_ujy.npy")?, rd("sigma_ujy.npy")?);
    let observed: Vec<u8> = {
        use ndarray_npy::ReadNpyExt;
        let f = std::fs::File::open(dir.join("observed.npy")).map_err(|e| Error::read(format!("{ds}/observed.npy"), e))?;
        let a = ndarray::Array2::<u8>::read_npy(f).map_err(|e| Error::read(format!("{ds}/observed.npy"), e))?;
        a.iter().copied().collect()
    };
    let redshift: Vec<f32> = {
        use ndarray_npy::ReadNpyExt;
        let f = std::fs::File::open(dir.join("redshift.npy")).map_err(|e| Error::read(format!("{ds}/redshift.npy"), e))?;
        ndarray::Array1::<f32>::read_npy(f).map_err(|e| Error::read(format!("{ds}/redshift.npy"), e))?.to_vec()
    };
    if p != m.parameters.len() || redshift.len() != n || observed.len() != n * m.bands.len() {
        return Err(Error::file(&ds, "array shapes disagree with the manifest"));
    }
    let set = TrainingSet {
        parameter_names: m.parameters.iter().map(|x| x.name.clone()).collect(),
        bands: m.bands.clone(),
        theta,
        redshift,
        flux_true_ujy,
        flux_obs_ujy,
        sigma_ujy,
        observed,
        // (not in the files)
        noise_depth: vec![1.0; n],
        noise_pattern: vec![sbipix_sim::simulate::NO_PATTERN; n],
    };
    Ok((set, m))
}

/// The redshift range of a prior (a fixed redshift is a range of one point).
fn redshift_range(prior: &Prior, file: &str) -> Result<(f64, f64)> {
    match prior.get("redshift") {
        Some(ParamPrior::Uniform { min, max }) => Ok((min, max)),
        Some(ParamPrior::Fixed { value }) => Ok((value, value)),
        None => Err(Error::file(file, "the prior has no redshift")),
    }
}

/// Merges training sets into one (`sbipix merge`): the rows of each, in order (training shuffles
/// them). Why: the redshift is given to the network, not inferred, so p(θ | photometry, z) does
/// not depend on how the training redshifts are distributed; extra simulations over part of the
/// redshift range (where the network needs more examples) can be added to a set as long as every
/// other part of the prior, the survey's noise, the band drop rate and the forward model are the
/// same. Anything else would change the posterior the network learns, so it is refused, naming
/// the set and what differs. The merged prior spans the union of the redshift ranges, which must
/// leave no gap. Sets focused on different S/N windows (or none) may be merged too: keeping a
/// simulation by its noisy photometry does not change p(θ | photometry) either
/// ([`crate::inference::snr_focus`]).
pub fn merge_dirs(inputs: &[PathBuf], out: &Path, overwrite: bool) -> Result<Manifest> {
    crate::check_output(out, overwrite)?;
    if inputs.len() < 2 {
        return Err(Error::invalid("data", inputs.len(), "merging needs at least two training sets"));
    }
    // Every set's manifest, prior and survey are checked before any array is read.
    let mut first: Option<(Manifest, Prior, String)> = None;
    let mut ranges = Vec::new();
    let mut parts = Vec::new();
    for dir in inputs {
        let ds = dir.display().to_string();
        let m = read_manifest(dir)?;
        let prior_path = dir.join("prior.toml");
        let prior = Prior::from_toml_str(&crate::error::read_file(&prior_path)?, &prior_path.display().to_string())?;
        let survey = crate::error::read_file(&dir.join("survey.toml"))?;
        let range = redshift_range(&prior, &prior_path.display().to_string())?;
        parts.push(SetPart {
            path: ds.clone(),
            n: m.n,
            seed: m.seed,
            redshift_min: range.0,
            redshift_max: range.1,
            snr_focus: m.snr_focus,
        });
        ranges.push(range);
        let Some((first, first_prior, first_survey)) = first.as_ref() else {
            first = Some((m, prior, survey));
            continue;
        };
        let differs =
            |what: &str| Error::file(&ds, format!("its {what} differs from {}'s: only the redshift range may differ", inputs[0].display()));
        if m.bands != first.bands {
            return Err(differs("bands"));
        }
        if m.parameters != first.parameters {
            return Err(differs("parameters"));
        }
        if m.model != first.model || m.sfh != first.sfh || m.log_ssfr_floor != first.log_ssfr_floor {
            return Err(differs("forward model"));
        }
        if m.encoding != first.encoding {
            return Err(differs("input encoding"));
        }
        if m.drop_rate != first.drop_rate {
            return Err(differs("band drop rate"));
        }
        if survey != *first_survey {
            return Err(differs("survey (survey.toml)"));
        }
        // (compared with the redshift set to one common value; any valid one will do)
        let mut a = prior.with_parameter("redshift", ParamPrior::Fixed { value: 1.0 })?;
        let mut b = first_prior.with_parameter("redshift", ParamPrior::Fixed { value: 1.0 })?;
        a.source.clear();
        b.source.clear();
        if a != b {
            return Err(differs("prior (other than the redshift)"));
        }
    }
    let (mut m, prior, survey_text) = first.expect("at least two inputs");
    ranges.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (lo, mut hi) = ranges[0];
    for &(a, b) in &ranges[1..] {
        if a > hi {
            return Err(Error::invalid(
                "data",
                format!("redshift ranges {lo}–{hi} and {a}–{b}"),
                "the merged set would have no simulations between them; add a set that covers the gap",
            ));
        }
        hi = hi.max(b);
    }
    let redshift = if lo == hi { ParamPrior::Fixed { value: lo } } else { ParamPrior::Uniform { min: lo, max: hi } };
    let mut prior = prior.with_parameter("redshift", redshift)?;
    prior.source = format!("merged from {}", parts.iter().map(|p| p.path.as_str()).collect::<Vec<_>>().join(", "));
    let survey = Survey::from_toml_str(&survey_text, &inputs[0].join("survey.toml").display().to_string())?;
    let (mut set, _) = read_dir(&inputs[0])?;
    for dir in &inputs[1..] {
        let (more, _) = read_dir(dir)?;
        set.append(&more);
    }
    // One window for the whole set only if every part had it (the parts record their own).
    let focus_of = |p: &SetPart| p.snr_focus.map(|r| r.focus);
    m.snr_focus = if parts.iter().all(|p| focus_of(p) == focus_of(&parts[0])) {
        m.snr_focus.map(|r| FocusRecord { n_drawn: parts.iter().map(|p| p.snr_focus.map_or(p.n, |r| r.n_drawn)).sum(), ..r })
    } else {
        None
    };
    m.n = set.len();
    m.created_by = format!("sbipix {}", env!("CARGO_PKG_VERSION"));
    m.files = files_of(&set);
    m.parts = parts;
    write_dir(out, &set, &m, &prior, &survey, overwrite)?;
    Ok(m)
}
