//! Trained models: a flow plus everything needed to use it on photometry — a model directory
//!
//! ```text
//! MODEL_DIR/
//!   model.json           parameters (names, units), bands, input encoding, survey, SFH family,
//!                        training-set provenance, training settings and result, sbipix version
//!   flow.json            the flow: architecture, bounds, standardisation (sbipix-flow)
//!   weights.safetensors  the network weights (float32)
//!   prior.toml, survey.toml   copied from the training set
//! ```

use crate::training_set::{Manifest as SetManifest, ParameterInfo, read_dir};
use crate::{Error, Result};
use sbipix_flow::train::{EpochReport, TrainConfig, TrainReport, TrainingData, train};
use sbipix_flow::{BoundMethod, FlowModel, ParamSpec};
use sbipix_sim::{InputEncoding, ParamPrior, Prior, SfhPrior};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "sbipix-model";
pub const FORMAT_VERSION: u32 = 1;

/// `model.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelManifest {
    pub format: String,
    pub format_version: u32,
    pub created_by: String,
    pub parameters: Vec<ParameterInfo>,
    pub conditions: Vec<String>,
    pub bands: Vec<String>,
    pub encoding: InputEncoding,
    pub survey: String,
    pub sfh: String,
    pub max_redshift_trained: f64,
    /// The forward-model settings the training set was simulated with.
    pub forward_model: sbipix_sps::ModelConfig,
    pub training_set: TrainingSetInfo,
    pub training: Option<TrainingInfo>,
    pub notes: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingSetInfo {
    pub path: String,
    pub n: usize,
    pub seed: u64,
    pub drop_rate: f64,
    pub created_by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingInfo {
    pub config: TrainConfig,
    pub epochs: usize,
    pub best_epoch: usize,
    pub best_val_log_prob: f64,
    pub stopped_early: bool,
    pub seconds: f64,
}

/// A trained posterior estimator ready for photometry.
pub struct Posterior {
    pub manifest: ModelManifest,
    pub flow: FlowModel<f32>,
    pub dir: PathBuf,
    /// The survey noise model the training set was simulated with (`survey.toml`), when the
    /// folder has it: integrated fits use it to map photometry into the training noise regime.
    pub survey: Option<sbipix_sim::Survey>,
}

/// Bounds of each inferred parameter, from the prior it was trained with: the varied prior
/// parameters keep their prior box; t_x fractions lie in (0, 1); derived quantities are free.
fn bounds_from_prior(names: &[String], prior: &Prior) -> Vec<ParamSpec> {
    names
        .iter()
        .map(|n| {
            let (lower, upper) = match prior.get(n) {
                Some(ParamPrior::Uniform { min, max }) => (Some(min), Some(max)),
                _ if n.starts_with('t') && n.ends_with("_frac") => (Some(0.0), Some(1.0)),
                _ => (None, None),
            };
            ParamSpec { name: n.clone(), lower, upper }
        })
        .collect()
}

/// Keeps only the named columns of θ (in the order given): a model may infer a subset of what a
/// set of simulations records. Unknown or repeated names are errors, naming `source` and listing
/// what the set has. Returns the kept columns' indices in the original order of the set.
pub fn select_columns(set: &mut sbipix_sim::simulate::TrainingSet, only: &[String], source: &str) -> Result<Vec<usize>> {
    let have = &set.parameter_names;
    let mut idx = Vec::with_capacity(only.len());
    for name in only {
        let Some(j) = have.iter().position(|h| h == name) else {
            return Err(Error::File {
                file: source.into(),
                reason: format!("no parameter {name:?} in the simulations (they have {})", have.join(", ")),
            });
        };
        if idx.contains(&j) {
            return Err(Error::File { file: source.into(), reason: format!("parameter {name:?} named twice") });
        }
        idx.push(j);
    }
    if idx.is_empty() {
        return Err(Error::File { file: source.into(), reason: "no parameters selected".into() });
    }
    let p = have.len();
    set.theta = set.theta.chunks_exact(p).flat_map(|row| idx.iter().map(move |&j| row[j])).collect();
    set.parameter_names = idx.iter().map(|&j| have[j].clone()).collect();
    Ok(idx)
}

/// Encodes a training set's photometry as network inputs [n × (3·bands + 1)].
pub fn encode_set(enc: &InputEncoding, flux: &[f32], sigma: &[f32], observed: &[u8], z: &[f32]) -> Vec<f32> {
    let nb = enc.bands.len();
    let n = z.len();
    let ni = enc.n_inputs();
    let mut x = vec![0f32; n * ni];
    let (mut f, mut s, mut m) = (vec![0.0; nb], vec![0.0; nb], vec![false; nb]);
    for r in 0..n {
        for b in 0..nb {
            f[b] = flux[r * nb + b] as f64;
            s[b] = sigma[r * nb + b] as f64;
            m[b] = observed[r * nb + b] == 1;
        }
        enc.encode(&f, &s, &m, z[r] as f64, &mut x[r * ni..(r + 1) * ni]);
    }
    x
}

/// How a training run treats its files and which parameters it infers.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrainRun<'a> {
    /// Folder receiving the per-epoch state.
    pub checkpoint: Option<&'a Path>,
    /// Continue from the checkpoint.
    pub resume: bool,
    /// Replace an existing model folder.
    pub overwrite: bool,
    /// Infer only these columns of θ, in this order (default: all; see docs/inference.md).
    pub params: Option<&'a [String]>,
}

/// Trains a model on the training set in `data_dir` and writes the model directory `out`
/// (atomically).
pub fn train_model(
    data_dir: &Path,
    out: &Path,
    cfg: &TrainConfig,
    run: TrainRun,
    progress: &mut dyn FnMut(&EpochReport),
) -> Result<(ModelManifest, TrainReport)> {
    let TrainRun { checkpoint, resume, overwrite, params } = run;
    crate::check_output(out, overwrite)?;
    let (mut set, mut m): (_, SetManifest) = read_dir(data_dir)?;
    if let Some(only) = params {
        let idx = select_columns(&mut set, only, &data_dir.display().to_string())?;
        m.parameters = idx.iter().map(|&j| m.parameters[j].clone()).collect();
    }
    let prior_path = data_dir.join("prior.toml");
    let prior_text =
        std::fs::read_to_string(&prior_path).map_err(|e| Error::File { file: prior_path.display().to_string(), reason: e.to_string() })?;
    let prior = Prior::from_toml_str(&prior_text, &prior_path.display().to_string())?;
    let x = encode_set(&m.encoding, &set.flux_obs_ujy, &set.sigma_ujy, &set.observed, &set.redshift);
    let params = bounds_from_prior(&set.parameter_names, &prior);
    let data = TrainingData { theta: &set.theta, x: &x, n: set.len(), params, bound_method: BoundMethod::Logit };
    let t0 = std::time::Instant::now();
    let (flow, report) = train(&data, cfg, checkpoint, resume, progress)?;
    let max_z = match prior.get("redshift") {
        Some(ParamPrior::Uniform { max, .. }) => max,
        Some(ParamPrior::Fixed { value }) => value,
        None => 0.0,
    };
    let manifest = ModelManifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        created_by: format!("sbipix {}", env!("CARGO_PKG_VERSION")),
        parameters: m.parameters.clone(),
        conditions: m.conditions.clone(),
        bands: m.bands.clone(),
        encoding: m.encoding.clone(),
        survey: m.survey.clone(),
        sfh: match prior.sfh {
            SfhPrior::DelayedTau => "delayed_tau".into(),
            SfhPrior::DenseBasis { .. } => "dense_basis".into(),
        },
        max_redshift_trained: max_z,
        forward_model: m.model.clone(),
        training_set: TrainingSetInfo {
            path: data_dir.display().to_string(),
            n: m.n,
            seed: m.seed,
            drop_rate: m.drop_rate,
            created_by: m.created_by.clone(),
        },
        training: Some(TrainingInfo {
            config: cfg.clone(),
            epochs: report.epochs.len(),
            best_epoch: report.best_epoch,
            best_val_log_prob: report.best_val_log_prob,
            stopped_early: report.stopped_early,
            seconds: t0.elapsed().as_secs_f64(),
        }),
        notes: String::new(),
    };
    let extra: Vec<(&str, String)> = vec![
        ("prior.toml", prior_text),
        ("survey.toml", std::fs::read_to_string(data_dir.join("survey.toml")).unwrap_or_default()),
        ("training_report.json", serde_json::to_string_pretty(&report).expect("report serialises")),
    ];
    write_model_dir(out, &flow, &manifest, &extra, overwrite)?;
    Ok((manifest, report))
}

/// Writes a model directory atomically.
pub fn write_model_dir(
    out: &Path,
    flow: &FlowModel<f64>,
    manifest: &ModelManifest,
    extra: &[(&str, String)],
    overwrite: bool,
) -> Result<()> {
    let ferr = |p: &Path, e: String| Error::File { file: p.display().to_string(), reason: e };
    crate::write_dir_atomic(out, overwrite, |d| {
        sbipix_flow::save_dir(flow, d)?;
        std::fs::write(d.join("model.json"), serde_json::to_string_pretty(manifest).expect("manifest serialises"))
            .map_err(|e| ferr(d, e.to_string()))?;
        for (name, text) in extra {
            std::fs::write(d.join(name), text).map_err(|e| ferr(d, e.to_string()))?;
        }
        Ok(())
    })
}

impl Posterior {
    /// Loads a model directory, checking that its files agree with each other.
    pub fn load(dir: &Path) -> Result<Self> {
        let ds = dir.display().to_string();
        let mpath = dir.join("model.json");
        let text = std::fs::read_to_string(&mpath)
            .map_err(|e| Error::File { file: mpath.display().to_string(), reason: format!("{e} (is {ds} an sbipix model directory?)") })?;
        let manifest: ModelManifest =
            serde_json::from_str(&text).map_err(|e| Error::File { file: mpath.display().to_string(), reason: e.to_string() })?;
        if manifest.format != FORMAT || manifest.format_version != FORMAT_VERSION {
            return Err(Error::File {
                file: mpath.display().to_string(),
                reason: format!("format {} v{} (this sbipix reads {FORMAT} v{FORMAT_VERSION})", manifest.format, manifest.format_version),
            });
        }
        let flow = sbipix_flow::load_dir(dir)?;
        if flow.dim_theta() != manifest.parameters.len() || flow.dim_x() != manifest.encoding.n_inputs() {
            return Err(Error::File {
                file: ds,
                reason: format!(
                    "flow.json ({} parameters, {} inputs) disagrees with model.json ({} parameters, {} inputs)",
                    flow.dim_theta(),
                    flow.dim_x(),
                    manifest.parameters.len(),
                    manifest.encoding.n_inputs()
                ),
            });
        }
        let spath = dir.join("survey.toml");
        let survey = match std::fs::read_to_string(&spath) {
            Ok(t) if !t.trim().is_empty() => Some(sbipix_sim::Survey::from_toml_str(&t, &spath.display().to_string())?),
            _ => None,
        };
        if let Some(s) = &survey {
            let names = s.band_names();
            if names != manifest.bands {
                return Err(Error::File {
                    file: spath.display().to_string(),
                    reason: format!("bands {} differ from model.json's {}", names.join(","), manifest.bands.join(",")),
                });
            }
        }
        Ok(Self { manifest, flow: flow.cast(), dir: dir.to_path_buf(), survey })
    }

    pub fn parameter_names(&self) -> Vec<String> {
        self.manifest.parameters.iter().map(|p| p.name.clone()).collect()
    }

    /// `n` posterior draws per pixel from photometry: flux and σ [pixels × bands] in µJy in the
    /// model's band order (NaN or `measured = false` for missing bands), redshift per pixel.
    /// Returns [pixels × n × parameters].
    pub fn sample(&self, flux: &[f64], sigma: &[f64], measured: &[bool], redshift: &[f64], n: usize, seed: u64) -> Result<Vec<f32>> {
        self.sample_from(flux, sigma, measured, redshift, n, seed, 0)
    }

    /// As [`Self::sample`] for pixels numbered from `first` (their random streams), so a long
    /// list can be sampled in chunks with the same result.
    #[allow(clippy::too_many_arguments)]
    pub fn sample_from(
        &self,
        flux: &[f64],
        sigma: &[f64],
        measured: &[bool],
        redshift: &[f64],
        n: usize,
        seed: u64,
        first: usize,
    ) -> Result<Vec<f32>> {
        let x = self.encode(flux, sigma, measured, redshift)?;
        Ok(self.flow.sample_from(&x, redshift.len(), n, seed, first as u64)?)
    }

    /// The network inputs for pixels (see [`InputEncoding`]).
    pub fn encode(&self, flux: &[f64], sigma: &[f64], measured: &[bool], redshift: &[f64]) -> Result<Vec<f64>> {
        let enc = &self.manifest.encoding;
        let (nb, np) = (enc.bands.len(), redshift.len());
        if flux.len() != np * nb || sigma.len() != np * nb || measured.len() != np * nb {
            return Err(Error::File {
                file: self.dir.display().to_string(),
                reason: format!("photometry must be {np} pixels × {nb} bands"),
            });
        }
        let zmax = self.manifest.max_redshift_trained;
        if let Some(i) = redshift.iter().position(|z| !(z.is_finite() && *z >= 0.0 && *z <= zmax)) {
            return Err(Error::File {
                file: self.dir.display().to_string(),
                reason: format!("pixel {i}: redshift {} is outside the trained range [0, {zmax}]", redshift[i]),
            });
        }
        let ni = enc.n_inputs();
        let mut out = vec![0f32; np * ni];
        for p in 0..np {
            enc.encode(
                &flux[p * nb..(p + 1) * nb],
                &sigma[p * nb..(p + 1) * nb],
                &measured[p * nb..(p + 1) * nb],
                redshift[p],
                &mut out[p * ni..(p + 1) * ni],
            );
        }
        Ok(out.iter().map(|v| *v as f64).collect())
    }
}
