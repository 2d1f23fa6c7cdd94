//! Training a flow by maximum likelihood on (θ, x) pairs, with candle: Adam(W), mini-batches,
//! a validation split, early stopping, gradient-norm clipping, learning-rate halving on
//! plateaus, per-epoch checkpoints and resume, data parallelism over threads.
//!
//! Determinism: initial weights, the validation split and every epoch's shuffle come from the
//! seed; each mini-batch is split into the same number of chunks whatever happens, and their
//! gradients are summed in a fixed order, so a fixed seed and thread count give the same model.

use crate::checkpoint::{CheckpointState, load_checkpoint, save_checkpoint};
use crate::dense::Activation;
use crate::error::{FlowError, Result, shape};
use crate::model::{
    Architecture, BoundMethod, DEFAULT_TAIL_BOUND, FORMAT, FORMAT_VERSION, FlowConfig, FlowModel, ParamSpec, standard_log_z,
};
use crate::train_net::{Adam, Params, export, init_params, neg_log_q};
use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Learning-rate schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// Halve the rate after `lr_patience` epochs without a better validation loss.
    #[default]
    Plateau,
    /// Cosine annealing from `learning_rate` at the first epoch to `min_learning_rate` at
    /// `max_epochs` (Loshchilov & Hutter 2017). With noisy validation losses the plateau rule
    /// halves late and in steps; a fixed smooth decay reaches the small rates the last digits of
    /// the likelihood need (docs/inference.md, measured).
    Cosine,
}

impl Schedule {
    /// The rate of epoch `epoch` (1-based) under the cosine schedule.
    pub fn cosine_rate(cfg: &TrainConfig, epoch: usize) -> f64 {
        let t = (epoch.saturating_sub(1)) as f64 / (cfg.max_epochs.saturating_sub(1)).max(1) as f64;
        cfg.min_learning_rate + 0.5 * (cfg.learning_rate - cfg.min_learning_rate) * (1.0 + (std::f64::consts::PI * t).cos())
    }
}

/// Training settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub architecture: Architecture,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub max_epochs: usize,
    /// Stop after this many epochs without a better validation loss.
    pub patience: usize,
    /// Halve the learning rate after this many epochs without improvement (`Schedule::Plateau`).
    pub lr_patience: usize,
    pub min_learning_rate: f64,
    /// How the learning rate changes from epoch to epoch.
    #[serde(default)]
    pub schedule: Schedule,
    /// Clip the gradient's global norm to this value.
    pub clip_norm: f64,
    pub validation_fraction: f64,
    pub seed: u64,
    /// Data-parallel chunks per mini-batch (= threads used).
    pub threads: usize,
}

impl TrainConfig {
    /// Defaults for an NSF (5 coupling layers; conditioners with 2 hidden layers of 128, i.e.
    /// `extra_hidden_layers: 1`; 8 bins). The front ends' training defaults
    /// (`sbipix::request::TrainRequest`) are read from here.
    pub fn nsf() -> Self {
        Self {
            architecture: Architecture::Nsf {
                layers: 5,
                hidden: 128,
                extra_hidden_layers: 1,
                bins: 8,
                tail_bound: DEFAULT_TAIL_BOUND,
                affine_hidden: 0,
            },
            batch_size: 256,
            learning_rate: 1e-3,
            weight_decay: 0.0,
            max_epochs: 300,
            patience: 15,
            lr_patience: 5,
            min_learning_rate: 1e-5,
            schedule: Schedule::Plateau,
            clip_norm: 5.0,
            validation_fraction: 0.1,
            seed: 0,
            threads: 2,
        }
    }

    /// Defaults for an sbi-like MAF (5 transforms, 2 blocks of 128, ReLU).
    pub fn maf() -> Self {
        Self {
            architecture: Architecture::Maf { layers: 5, hidden: 128, blocks: 2, activation: Activation::Relu },
            learning_rate: 5e-4,
            ..Self::nsf()
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |name: &str, reason: &str| Err(FlowError::Config { name: name.into(), reason: reason.into() });
        if self.batch_size < 2 {
            return bad("batch_size", "must be ≥ 2");
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad("learning_rate", "must be > 0");
        }
        if !(0.0..0.9).contains(&self.validation_fraction) {
            return bad("validation_fraction", "must lie in [0, 0.9)");
        }
        if self.threads == 0 {
            return bad("threads", "must be ≥ 1");
        }
        match self.architecture {
            Architecture::Nsf { layers, hidden, bins, tail_bound, .. } => {
                if layers == 0 || hidden == 0 || bins < 2 || tail_bound.is_nan() || tail_bound <= 0.0 {
                    return bad("architecture", "NSF needs layers ≥ 1, hidden ≥ 1, bins ≥ 2, tail_bound > 0");
                }
            }
            Architecture::Maf { layers, hidden, .. } => {
                if layers == 0 || hidden == 0 {
                    return bad("architecture", "MAF needs layers ≥ 1 and hidden ≥ 1");
                }
            }
        }
        Ok(())
    }
}

/// Training pairs: θ [n × D] (physical units) and x [n × Dx], row-major.
pub struct TrainingData<'a> {
    pub theta: &'a [f32],
    pub x: &'a [f32],
    pub n: usize,
    pub params: Vec<ParamSpec>,
    pub bound_method: BoundMethod,
}

/// One epoch's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    pub epoch: usize,
    /// Mean −log q per pair on the training split (in the standardised space of the flow).
    pub train_loss: f64,
    pub val_loss: f64,
    pub learning_rate: f64,
    pub seconds: f64,
}

/// The result of training.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainReport {
    pub epochs: Vec<EpochReport>,
    pub best_epoch: usize,
    pub best_val_loss: f64,
    /// Mean validation log q(θ|x) in physical units (higher is better).
    pub best_val_log_prob: f64,
    pub stopped_early: bool,
}

/// Forward maps applied to θ before standardisation (logit onto bounded boxes).
fn bound_map(params: &[ParamSpec], method: BoundMethod, v: f64, i: usize) -> f64 {
    match (method, params[i].lower, params[i].upper) {
        (BoundMethod::Logit, Some(lo), Some(hi)) => {
            // stay strictly inside the box: (0, 1) → ±13.8 at the extreme
            let u = ((v - lo) / (hi - lo)).clamp(1e-6, 1.0 - 1e-6);
            u.ln() - (-u).ln_1p()
        }
        _ => v,
    }
}

fn mean_std(rows: &[usize], get: impl Fn(usize) -> f64) -> (f64, f64) {
    let n = rows.len() as f64;
    let mean = rows.iter().map(|&r| get(r)).sum::<f64>() / n;
    let var = rows.iter().map(|&r| (get(r) - mean).powi(2)).sum::<f64>() / n;
    let std = var.sqrt();
    (mean, if std > 1e-12 { std } else { 1.0 })
}

/// Trains a flow. `checkpoint` (a folder) receives the state after every epoch; with `resume`,
/// training continues from it. `progress` is called after every epoch.
pub fn train(
    data: &TrainingData,
    cfg: &TrainConfig,
    checkpoint: Option<&Path>,
    resume: bool,
    progress: &mut dyn FnMut(&EpochReport),
) -> Result<(FlowModel<f64>, TrainReport)> {
    cfg.validate()?;
    let (d, dx) = check_data(data)?;
    // Split, standardise.
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(cfg.seed);
    let mut order: Vec<usize> = (0..data.n).collect();
    order.shuffle(&mut rng);
    let n_val = ((data.n as f64 * cfg.validation_fraction).round() as usize).max(if cfg.validation_fraction > 0.0 { 1 } else { 0 });
    let (val_rows, train_rows) = order.split_at(n_val);
    let (val_rows, train_rows) = (val_rows.to_vec(), train_rows.to_vec());
    let sd = Standardised::new(data, d, dx, &train_rows, &val_rows);

    let params = init_params(&cfg.architecture, d, dx, &mut rng)?;
    let mut adam = Adam::new(&params)?;
    let mut st = CheckpointState {
        epoch_done: 0,
        lr: cfg.learning_rate,
        best_val: f64::INFINITY,
        best_epoch: 0,
        since_best: 0,
        since_lr: 0,
        adam_step: 0,
        epochs: Vec::new(),
        config: cfg.clone(),
        n: data.n,
    };
    let mut best: Vec<Vec<f32>> = adam.p.clone();
    if resume {
        let dir = checkpoint.ok_or_else(|| FlowError::Config { name: "resume".into(), reason: "needs a checkpoint folder".into() })?;
        load_checkpoint(dir, &params, &mut adam, &mut best, &mut st, cfg, data.n)?;
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.threads)
        .build()
        .map_err(|e| FlowError::Config { name: "threads".into(), reason: e.to_string() })?;
    let mut stopped_early = false;
    while st.epoch_done < cfg.max_epochs {
        let epoch = st.epoch_done + 1;
        if cfg.schedule == Schedule::Cosine {
            st.lr = Schedule::cosine_rate(cfg, epoch);
        }
        let t0 = std::time::Instant::now();
        let tsum = run_epoch(&sd, &params, &mut adam, &train_rows, cfg, epoch, st.lr, &pool)?;
        let train_loss = tsum / train_rows.len() as f64 - sd.lad_std;
        let val_loss = if val_rows.is_empty() { train_loss } else { validation_loss(&sd, &params, &val_rows, cfg)? };
        if !val_loss.is_finite() {
            return Err(FlowError::BadData { what: "training".into(), reason: format!("validation loss is not finite at epoch {epoch}") });
        }
        st.epoch_done = epoch;
        if val_loss < st.best_val - 1e-6 {
            st.best_val = val_loss;
            st.best_epoch = epoch;
            st.since_best = 0;
            st.since_lr = 0;
            best = adam.p.clone();
        } else {
            st.since_best += 1;
            st.since_lr += 1;
        }
        let rep = EpochReport { epoch, train_loss, val_loss, learning_rate: st.lr, seconds: t0.elapsed().as_secs_f64() };
        st.epochs.push(rep);
        if cfg.schedule == Schedule::Plateau && st.since_lr >= cfg.lr_patience && st.lr > cfg.min_learning_rate {
            st.lr = (st.lr * 0.5).max(cfg.min_learning_rate);
            st.since_lr = 0;
        }
        st.adam_step = adam.step;
        if let Some(dir) = checkpoint {
            save_checkpoint(dir, &params, &adam, &best, &st)?;
        }
        progress(&rep);
        if st.since_best >= cfg.patience {
            stopped_early = true;
            break;
        }
    }
    // Best weights → model.
    for ((_, v), b) in params.vars.iter().zip(adam.tensors(&params, &best)?) {
        v.set(&b)?;
    }
    let config = FlowConfig {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        architecture: cfg.architecture.clone(),
        params: data.params.clone(),
        dim_x: dx,
        bound_method: data.bound_method,
        theta_shift: sd.theta_shift,
        theta_scale: sd.theta_scale,
        x_mean: sd.x_mean,
        x_std: sd.x_std,
        base_log_z: standard_log_z(d),
        theta_support: crate::support::support_of(data.theta, d),
    };
    let tensors = export(&params)?;
    let model = FlowModel::from_tensors(config, &tensors)?;
    let report = TrainReport {
        best_epoch: st.best_epoch,
        best_val_loss: st.best_val,
        best_val_log_prob: -st.best_val + sd.val_jac,
        epochs: st.epochs,
        stopped_early,
    };
    Ok((model, report))
}

/// Checks the pairs; returns (θ dimension, x dimension).
fn check_data(data: &TrainingData) -> Result<(usize, usize)> {
    let d = data.params.len();
    if d == 0 || data.n < 10 {
        return Err(FlowError::Config {
            name: "data".into(), reason: format!("{} parameters and {} pairs: need ≥ 1 and ≥ 10", d, data.n)
        });
    }
    if data.theta.len() != data.n * d {
        return Err(shape("θ", format!("{} × {d}", data.n), data.theta.len()));
    }
    if data.x.is_empty() || !data.x.len().is_multiple_of(data.n) {
        return Err(shape("x", format!("{} rows", data.n), data.x.len()));
    }
    let dx = data.x.len() / data.n;
    for (what, arr, w) in [("θ", data.theta, d), ("x", data.x, dx)] {
        if let Some(i) = arr.iter().position(|v| !v.is_finite()) {
            return Err(FlowError::BadData { what: what.into(), reason: format!("row {}, column {} is not finite", i / w, i % w) });
        }
    }
    Ok((d, dx))
}

/// The pairs as the network sees them: θ mapped to the unbounded space and standardised, x
/// standardised (statistics of the training rows).
struct Standardised {
    d: usize,
    dx: usize,
    theta_shift: Vec<f64>,
    theta_scale: Vec<f64>,
    x_mean: Vec<f64>,
    x_std: Vec<f64>,
    /// [pairs × d] and [pairs × dx]
    y_all: Vec<f32>,
    c_all: Vec<f32>,
    /// log |det| of the standardisation (added back to report losses in physical units)
    lad_std: f64,
    /// mean log |det| of the bound map over the validation rows
    val_jac: f64,
}

impl Standardised {
    fn new(data: &TrainingData, d: usize, dx: usize, train_rows: &[usize], val_rows: &[usize]) -> Self {
        let t = |r: usize, i: usize| bound_map(&data.params, data.bound_method, data.theta[r * d + i] as f64, i);
        let mut theta_shift = Vec::new();
        let mut theta_scale = Vec::new();
        for i in 0..d {
            let (m, s) = mean_std(train_rows, |r| t(r, i));
            theta_scale.push(1.0 / s);
            theta_shift.push(-m / s);
        }
        let (mut x_mean, mut x_std) = (Vec::new(), Vec::new());
        for j in 0..dx {
            let (m, s) = mean_std(train_rows, |r| data.x[r * dx + j] as f64);
            x_mean.push(m);
            x_std.push(s);
        }
        let y_all: Vec<f32> = (0..data.n * d).map(|k| (t(k / d, k % d) * theta_scale[k % d] + theta_shift[k % d]) as f32).collect();
        let c_all: Vec<f32> = (0..data.n * dx).map(|k| ((data.x[k] as f64 - x_mean[k % dx]) / x_std[k % dx]) as f32).collect();
        let lad_std: f64 = theta_scale.iter().map(|s| s.ln()).sum();
        let bound_jac = |r: usize| -> f64 {
            (0..d)
                .map(|i| match (data.bound_method, data.params[i].lower, data.params[i].upper) {
                    (BoundMethod::Logit, Some(lo), Some(hi)) => {
                        let v = (data.theta[r * d + i] as f64).clamp(lo + 1e-6 * (hi - lo), hi - 1e-6 * (hi - lo));
                        (hi - lo).ln() - (v - lo).ln() - (hi - v).ln()
                    }
                    _ => 0.0,
                })
                .sum()
        };
        let val_jac: f64 =
            if val_rows.is_empty() { 0.0 } else { val_rows.iter().map(|&r| bound_jac(r)).sum::<f64>() / val_rows.len() as f64 };
        Self { d, dx, theta_shift, theta_scale, x_mean, x_std, y_all, c_all, lad_std, val_jac }
    }

    /// The rows as candle tensors (y [rows × d], c [rows × dx]).
    fn batch(&self, rows: &[usize]) -> candle_core::Result<(Tensor, Tensor)> {
        let (d, dx) = (self.d, self.dx);
        let y: Vec<f32> = rows.iter().flat_map(|&r| self.y_all[r * d..(r + 1) * d].iter().copied()).collect();
        let c: Vec<f32> = rows.iter().flat_map(|&r| self.c_all[r * dx..(r + 1) * dx].iter().copied()).collect();
        Ok((Tensor::from_vec(y, (rows.len(), d), &Device::Cpu)?, Tensor::from_vec(c, (rows.len(), dx), &Device::Cpu)?))
    }
}

/// One epoch of mini-batch Adam steps over the shuffled training rows; returns the summed loss.
/// Each mini-batch is split into the same number of chunks whatever happens, and their gradients
/// are summed in a fixed order (determinism, see the module doc).
#[allow(clippy::too_many_arguments)]
fn run_epoch(
    sd: &Standardised,
    params: &Params,
    adam: &mut Adam,
    train_rows: &[usize],
    cfg: &TrainConfig,
    epoch: usize,
    lr: f64,
    pool: &rayon::ThreadPool,
) -> Result<f64> {
    let mut erng = rand_pcg::Pcg64Mcg::seed_from_u64(sbipix_stats::index_seed(cfg.seed, epoch as u64));
    let mut rows = train_rows.to_vec();
    rows.shuffle(&mut erng);
    let mut tsum = 0.0;
    for mb in rows.chunks(cfg.batch_size) {
        if mb.len() < 2 {
            continue;
        }
        let nchunk = cfg.threads.min(mb.len());
        let per = mb.len().div_ceil(nchunk);
        let chunks: Vec<&[usize]> = mb.chunks(per).collect();
        let results: Vec<candle_core::Result<(f64, Vec<Vec<f32>>)>> = pool.install(|| {
            use rayon::prelude::*;
            chunks
                .par_iter()
                .map(|ch| {
                    let (y, c) = sd.batch(ch)?;
                    let loss = neg_log_q(&y, &c, &cfg.architecture, params, sd.d)?.sum_all()?;
                    let grads = loss.backward()?;
                    let g: Vec<Vec<f32>> = params
                        .vars
                        .iter()
                        .map(|(_, v)| match grads.get(v.as_tensor()) {
                            Some(t) => t.flatten_all()?.to_vec1::<f32>(),
                            None => Ok(vec![0.0; v.as_tensor().elem_count()]),
                        })
                        .collect::<candle_core::Result<_>>()?;
                    Ok((loss.to_scalar::<f32>()? as f64, g))
                })
                .collect()
        });
        let mut grads: Vec<Vec<f32>> = Vec::new();
        for r in results {
            let (l, g) = r?;
            tsum += l;
            if grads.is_empty() {
                grads = g;
            } else {
                for (a, b) in grads.iter_mut().zip(&g) {
                    a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                }
            }
        }
        let inv = 1.0 / mb.len() as f32;
        let mut norm2 = 0.0f64;
        for g in grads.iter_mut() {
            for x in g.iter_mut() {
                *x *= inv;
                norm2 += (*x as f64) * (*x as f64);
            }
        }
        let norm = norm2.sqrt();
        if !norm.is_finite() {
            return Err(FlowError::BadData {
                what: "training".into(),
                reason: format!("non-finite gradient at epoch {epoch}; lower the learning rate"),
            });
        }
        if norm > cfg.clip_norm {
            let f = (cfg.clip_norm / norm) as f32;
            grads.iter_mut().for_each(|g| g.iter_mut().for_each(|x| *x *= f));
        }
        adam.update(params, &grads, lr, cfg.weight_decay)?;
    }
    Ok(tsum)
}

/// Mean −log q over the validation rows, in physical units.
fn validation_loss(sd: &Standardised, params: &Params, val_rows: &[usize], cfg: &TrainConfig) -> Result<f64> {
    let mut s = 0.0;
    for ch in val_rows.chunks(4096) {
        let (y, c) = sd.batch(ch)?;
        s += neg_log_q(&y, &c, &cfg.architecture, params, sd.d)?.sum_all()?.to_scalar::<f32>()? as f64;
    }
    Ok(s / val_rows.len() as f64 - sd.lad_std)
}

/// A flow with freshly initialised (untrained) weights and identity standardisation — for
/// benchmarks and tests of the machinery.
pub fn init_model(arch: &Architecture, params: Vec<ParamSpec>, dim_x: usize, seed: u64) -> Result<FlowModel<f64>> {
    let d = params.len();
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
    let p = init_params(arch, d, dim_x, &mut rng)?;
    let config = FlowConfig {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        architecture: arch.clone(),
        params,
        dim_x,
        bound_method: BoundMethod::Logit,
        theta_shift: vec![0.0; d],
        theta_scale: vec![1.0; d],
        x_mean: vec![0.0; dim_x],
        x_std: vec![1.0; dim_x],
        base_log_z: standard_log_z(d),
        theta_support: Vec::new(),
    };
    FlowModel::from_tensors(config, &export(&p)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    /// The density the trainer optimises (candle) equals the one inference computes (plain Rust)
    /// for the same weights — every architecture, with weights far from their initial values.
    #[test]
    fn training_density_equals_inference_density() {
        let (d, dx, rows) = (5, 7, 64);
        let archs = [
            Architecture::Nsf { layers: 3, hidden: 16, extra_hidden_layers: 1, bins: 6, tail_bound: 3.0, affine_hidden: 0 },
            Architecture::Nsf { layers: 3, hidden: 16, extra_hidden_layers: 1, bins: 6, tail_bound: 3.0, affine_hidden: 12 },
            Architecture::Maf { layers: 2, hidden: 16, blocks: 1, activation: Activation::Relu },
        ];
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(42);
        let y: Vec<f32> = (0..rows * d).map(|_| (4.0 * rng.random::<f64>() - 2.0) as f32).collect();
        let c: Vec<f32> = (0..rows * dx).map(|_| (4.0 * rng.random::<f64>() - 2.0) as f32).collect();
        for arch in archs {
            let p = init_params(&arch, d, dx, &mut rng).unwrap();
            // move every weight well away from its (near-identity) start
            for (_, v) in &p.vars {
                let t = v.as_tensor();
                let noise: Vec<f32> = (0..t.elem_count()).map(|_| (0.3 * (2.0 * rng.random::<f64>() - 1.0)) as f32).collect();
                v.set(&t.add(&Tensor::from_vec(noise, t.shape(), &Device::Cpu).unwrap()).unwrap()).unwrap();
            }
            let yt = Tensor::from_vec(y.clone(), (rows, d), &Device::Cpu).unwrap();
            let ct = Tensor::from_vec(c.clone(), (rows, dx), &Device::Cpu).unwrap();
            let nlq: Vec<f32> = neg_log_q(&yt, &ct, &arch, &p, d).unwrap().to_vec1().unwrap();
            let config = FlowConfig {
                format: FORMAT.into(),
                format_version: FORMAT_VERSION,
                architecture: arch.clone(),
                params: (0..d).map(|i| ParamSpec { name: format!("t{i}"), lower: None, upper: None }).collect(),
                dim_x: dx,
                bound_method: BoundMethod::Logit,
                theta_shift: vec![0.0; d],
                theta_scale: vec![1.0; d],
                x_mean: vec![0.0; dx],
                x_std: vec![1.0; dx],
                base_log_z: standard_log_z(d),
                theta_support: Vec::new(),
            };
            let model = FlowModel::from_tensors(config, &export(&p).unwrap()).unwrap();
            let y64: Vec<f64> = y.iter().map(|v| *v as f64).collect();
            let c64: Vec<f64> = c.iter().map(|v| *v as f64).collect();
            let lq = model.log_prob(&y64, &c64, rows).unwrap();
            for r in 0..rows {
                assert!((lq[r] + nlq[r] as f64).abs() < 2e-3 * (1.0 + lq[r].abs()), "{arch:?} row {r}: {} vs {}", lq[r], -nlq[r]);
            }
        }
    }
}
