//! Training a model: a flow fitted to a training set's simulations, written as a model folder.

use super::model::*;
use super::training_set::{Manifest as SetManifest, read_dir};
use crate::{Error, Result};
use sbipix_flow::train::{EpochReport, TrainConfig, TrainReport, TrainingData, train};
use sbipix_flow::{BoundMethod, ParamSpec};
use sbipix_sim::{InputEncoding, ParamPrior, Prior, SfhPrior};
use std::path::Path;

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
            return Err(Error::file(source, format!("no parameter {name:?} in the simulations (they have {})", have.join(", "))));
        };
        if idx.contains(&j) {
            return Err(Error::file(source, format!("parameter {name:?} named twice")));
        }
        idx.push(j);
    }
    if idx.is_empty() {
        return Err(Error::file(source, "no parameters selected"));
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
    /// The input encoding (default: the training set's).
    pub encoding: Option<sbipix_sim::EncodingKind>,
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
    let TrainRun { checkpoint, resume, overwrite, params, encoding } = run;
    crate::check_output(out, overwrite)?;
    let (mut set, mut m): (_, SetManifest) = read_dir(data_dir)?;
    if let Some(only) = params {
        let idx = select_columns(&mut set, only, &data_dir.display().to_string())?;
        m.parameters = idx.iter().map(|&j| m.parameters[j].clone()).collect();
    }
    let prior_path = data_dir.join("prior.toml");
    let prior_text = std::fs::read_to_string(&prior_path).map_err(|e| Error::read(&prior_path, e))?;
    let prior = Prior::from_toml_str(&prior_text, &prior_path.display().to_string())?;
    if let Some(kind) = encoding {
        m.encoding.kind = kind;
    }
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
            snr_focus: m.snr_focus,
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
        calibration: None,
        companion: None,
    };
    let extra: Vec<(&str, String)> = vec![
        ("prior.toml", prior_text),
        ("survey.toml", std::fs::read_to_string(data_dir.join("survey.toml")).unwrap_or_default()),
        ("training_report.json", serde_json::to_string_pretty(&report).expect("report serialises")),
    ];
    write_model_dir(out, &flow, &manifest, &extra, overwrite)?;
    Ok((manifest, report))
}
