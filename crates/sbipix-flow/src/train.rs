//! Training a flow by maximum likelihood on (θ, x) pairs, with candle: Adam(W), mini-batches,
//! a validation split, early stopping, gradient-norm clipping, learning-rate halving on
//! plateaus, per-epoch checkpoints and resume, data parallelism over threads.
//!
//! Determinism: initial weights, the validation split and every epoch's shuffle come from the
//! seed; each mini-batch is split into the same number of chunks whatever happens, and their
//! gradients are summed in a fixed order, so a fixed seed and thread count give the same model.

use crate::dense::Activation;
use crate::error::{FlowError, Result, shape};
use crate::maf::made_masks;
use crate::model::{
    AFFINE_HIDDEN_LAYERS, Architecture, BoundMethod, FORMAT, FORMAT_VERSION, FlowConfig, FlowModel, ParamSpec, Tensors, coupling_perm,
    coupling_split, standard_log_z,
};
use crate::rqs::{MIN_BIN, MIN_DERIVATIVE};
use candle_core::{DType, Device, Tensor, Var};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
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
    /// Defaults for an NSF (5 coupling layers; conditioners with 2 hidden layers of 128; 8 bins).
    pub fn nsf() -> Self {
        Self {
            architecture: Architecture::Nsf { layers: 5, hidden: 128, hidden_layers: 1, bins: 8, tail_bound: 4.0, affine_hidden: 0 },
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

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckpointState {
    epoch_done: usize,
    lr: f64,
    best_val: f64,
    best_epoch: usize,
    since_best: usize,
    since_lr: usize,
    adam_step: u64,
    epochs: Vec<EpochReport>,
    config: TrainConfig,
    n: usize,
}

/// The parameters of the network as candle variables, named like the weights file.
struct Params {
    vars: Vec<(String, Var)>,
    /// MAF masks (constants), by the name of the weight they mask.
    masks: HashMap<String, Tensor>,
    /// Permutations per layer.
    perms: Vec<Vec<usize>>,
}

impl Params {
    fn get(&self, name: &str) -> &Tensor {
        self.vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_tensor()).unwrap_or_else(|| panic!("no variable {name}"))
    }
    fn weight(&self, name: &str) -> candle_core::Result<Tensor> {
        let w = self.get(name);
        match self.masks.get(name) {
            Some(m) => w.mul(m),
            None => Ok(w.clone()),
        }
    }
}

fn linear(x: &Tensor, p: &Params, prefix: &str) -> candle_core::Result<Tensor> {
    x.matmul(&p.weight(&format!("{prefix}.weight"))?.t()?)?.broadcast_add(p.get(&format!("{prefix}.bias")))
}

fn act(x: &Tensor, a: Activation) -> candle_core::Result<Tensor> {
    match a {
        Activation::Relu => x.relu(),
        Activation::Tanh => x.tanh(),
    }
}

fn softplus(x: &Tensor) -> candle_core::Result<Tensor> {
    // relu(x) + ln(1 + e^(−|x|)), stable for any x
    x.relu()?.add(&(x.abs()?.neg()?.exp()? + 1.0)?.log()?)
}

/// Knot positions (…, K+1) on [−B, B] from unnormalised bin sizes (…, K).
fn knots_of(raw: &Tensor, k: usize, bound: f64) -> candle_core::Result<Tensor> {
    let w = candle_nn::ops::softmax(raw, candle_core::D::Minus1)?.affine(1.0 - MIN_BIN * k as f64, MIN_BIN)?;
    let cum = w.cumsum(candle_core::D::Minus1)?.affine(2.0 * bound, -bound)?;
    let dims = raw.dims().to_vec();
    let mut one = dims.clone();
    *one.last_mut().unwrap() = 1;
    let lo = Tensor::full(-bound as f32, one.clone(), raw.device())?;
    let hi = Tensor::full(bound as f32, one, raw.device())?;
    Tensor::cat(&[&lo, &cum.narrow(candle_core::D::Minus1, 0, k - 1)?, &hi], candle_core::D::Minus1)
}

/// Rational-quadratic spline forward with identity tails: x (B, n), params (B, n, 3K−1) →
/// (y, log|dy/dx|), both (B, n).
fn rqs_forward(x: &Tensor, p: &Tensor, k: usize, bound: f64) -> candle_core::Result<(Tensor, Tensor)> {
    use candle_core::D;
    let kx = knots_of(&p.narrow(D::Minus1, 0, k)?, k, bound)?;
    let ky = knots_of(&p.narrow(D::Minus1, k, k)?, k, bound)?;
    let dims = x.dims().to_vec();
    let mut one = dims.clone();
    one.push(1);
    let ones = Tensor::ones(one, DType::F32, x.device())?;
    let d = Tensor::cat(&[&ones, &softplus(&p.narrow(D::Minus1, 2 * k, k - 1)?)?.affine(1.0, MIN_DERIVATIVE)?, &ones], D::Minus1)?;
    let xc = x.clamp(-bound as f32, bound as f32)?.unsqueeze(D::Minus1)?;
    let lower = kx.narrow(D::Minus1, 0, k)?;
    let idx = xc
        .broadcast_ge(&lower)?
        .to_dtype(DType::F32)?
        .sum_keepdim(D::Minus1)?
        .affine(1.0, -1.0)?
        .clamp(0f32, (k - 1) as f32)?
        .to_dtype(DType::U32)?;
    let widths = kx.narrow(D::Minus1, 1, k)?.sub(&lower)?;
    let ylow = ky.narrow(D::Minus1, 0, k)?;
    let heights = ky.narrow(D::Minus1, 1, k)?.sub(&ylow)?;
    let g = |t: &Tensor| t.contiguous()?.gather(&idx, D::Minus1);
    let (xk, wk, yk, hk) = (g(&lower)?, g(&widths)?, g(&ylow)?, g(&heights)?);
    let d0 = g(&d.narrow(D::Minus1, 0, k)?)?;
    let d1 = g(&d.narrow(D::Minus1, 1, k)?)?;
    let s = hk.div(&wk)?;
    let t = xc.sub(&xk)?.div(&wk)?;
    let omt = t.affine(-1.0, 1.0)?;
    let t1 = t.mul(&omt)?;
    let num = hk.mul(&s.mul(&t.sqr()?)?.add(&d0.mul(&t1)?)?)?;
    let den = s.add(&d1.add(&d0)?.sub(&s.affine(2.0, 0.0)?)?.mul(&t1)?)?;
    let y = yk.add(&num.div(&den)?)?;
    let dnum = s.sqr()?.mul(&d1.mul(&t.sqr()?)?.add(&s.affine(2.0, 0.0)?.mul(&t1)?)?.add(&d0.mul(&omt.sqr()?)?)?)?;
    let ld = dnum.log()?.sub(&den.log()?.affine(2.0, 0.0)?)?;
    let (y, ld) = (y.squeeze(D::Minus1)?, ld.squeeze(D::Minus1)?);
    let inside = x.ge(-bound)?.mul(&x.le(bound)?)?;
    Ok((inside.where_cond(&y, x)?, inside.where_cond(&ld, &ld.zeros_like()?)?))
}

/// Per-row −log q(y | c) in the standardised space (without the standardisation constant).
fn neg_log_q(y: &Tensor, c: &Tensor, arch: &Architecture, p: &Params, d: usize) -> candle_core::Result<Tensor> {
    let dev = y.device();
    let rows = y.dim(0)?;
    let mut y = y.clone();
    let mut lad = Tensor::zeros(rows, DType::F32, dev)?;
    match *arch {
        Architecture::Nsf { layers, hidden_layers, bins, tail_bound, affine_hidden, .. } => {
            if affine_hidden > 0 {
                // y ← M(x)(y − μ(x)), M = diag(e^−ℓ) + strictly lower O (crate::nsf::CondAffine)
                let mut h = c.clone();
                for i in 0..AFFINE_HIDDEN_LAYERS {
                    h = linear(&h, p, &format!("affine.net{i}"))?.relu()?;
                }
                let out = linear(&h, p, &format!("affine.net{AFFINE_HIDDEN_LAYERS}"))?;
                let lim = crate::nsf::AFFINE_LOG_SCALE_LIMIT as f32;
                let ls = out.narrow(1, d, d)?.clamp(-lim, lim)?;
                let v = y.sub(&out.narrow(1, 0, d)?)?;
                let scaled = v.mul(&ls.neg()?.exp()?)?;
                let mut cols = Vec::with_capacity(d);
                let mut o = 2 * d;
                for i in 0..d {
                    let mut a = scaled.narrow(1, i, 1)?;
                    for j in 0..i {
                        a = a.add(&out.narrow(1, o, 1)?.mul(&v.narrow(1, j, 1)?)?)?;
                        o += 1;
                    }
                    cols.push(a);
                }
                y = Tensor::cat(&cols, 1)?;
                lad = lad.sub(&ls.sum(1)?)?;
            }
            for k in 0..layers {
                let (n_id, n_tr) = coupling_split(d, k);
                let inp = if n_id > 0 { Tensor::cat(&[&y.narrow(1, 0, n_id)?, c], 1)? } else { c.clone() };
                let mut h = linear(&inp, p, &format!("layer{k}.net0"))?.relu()?;
                for i in 1..=hidden_layers {
                    h = linear(&h, p, &format!("layer{k}.net{i}"))?.relu()?;
                }
                let out = linear(&h, p, &format!("layer{k}.net{}", hidden_layers + 1))?.reshape((rows, n_tr, 3 * bins - 1))?;
                let (z, ld) = rqs_forward(&y.narrow(1, n_id, n_tr)?, &out, bins, tail_bound)?;
                lad = lad.add(&ld.sum(1)?)?;
                let yn = if n_id > 0 { Tensor::cat(&[&y.narrow(1, 0, n_id)?, &z], 1)? } else { z };
                let perm = Tensor::from_vec(p.perms[k].iter().map(|&i| i as u32).collect::<Vec<_>>(), d, dev)?;
                y = yn.index_select(&perm, 1)?;
            }
        }
        Architecture::Maf { layers, blocks, activation, .. } => {
            for k in 0..layers {
                let pre = format!("layer{k}");
                let ctx = act(&linear(c, p, &format!("{pre}.context"))?, activation)?;
                let mut h = act(&linear(&y, p, &format!("{pre}.initial"))?.add(&ctx)?, activation)?;
                for b in 0..blocks {
                    h = act(&linear(&h, p, &format!("{pre}.block{b}"))?, activation)?;
                }
                let o = linear(&h, p, &format!("{pre}.last"))?.reshape((rows, d, 2))?;
                let scale = softplus(&o.narrow(2, 0, 1)?.squeeze(2)?)?.affine(1.0, crate::maf::SCALE_EPS)?;
                let shift = o.narrow(2, 1, 1)?.squeeze(2)?;
                y = y.mul(&scale)?.add(&shift)?;
                lad = lad.add(&scale.log()?.sum(1)?)?;
                let perm = Tensor::from_vec(p.perms[k].iter().map(|&i| i as u32).collect::<Vec<_>>(), d, dev)?;
                y = y.index_select(&perm, 1)?;
            }
        }
    }
    // −log N(y) − lad
    y.sqr()?.sum(1)?.affine(0.5, standard_log_z(d))?.sub(&lad)
}

/// Initial parameters: torch-style uniform(±1/√fan_in) weights; the last layer of each
/// conditioner starts 100× smaller, so every layer starts close to a fixed map.
fn init_params(arch: &Architecture, d: usize, dx: usize, rng: &mut rand_pcg::Pcg64Mcg) -> candle_core::Result<Params> {
    let dev = Device::Cpu;
    let mut vars = Vec::new();
    let mut masks = HashMap::new();
    let mut perms = Vec::new();
    let mut lin = |name: String, n_in: usize, n_out: usize, small: bool, rng: &mut rand_pcg::Pcg64Mcg| -> candle_core::Result<()> {
        let bound = 1.0 / (n_in as f64).sqrt() * if small { 0.01 } else { 1.0 };
        let w: Vec<f32> = (0..n_in * n_out).map(|_| (bound * (2.0 * rng.random::<f64>() - 1.0)) as f32).collect();
        let b: Vec<f32> = (0..n_out).map(|_| if small { 0.0 } else { (bound * (2.0 * rng.random::<f64>() - 1.0)) as f32 }).collect();
        vars.push((format!("{name}.weight"), Var::from_tensor(&Tensor::from_vec(w, (n_out, n_in), &dev)?)?));
        vars.push((format!("{name}.bias"), Var::from_tensor(&Tensor::from_vec(b, n_out, &dev)?)?));
        Ok(())
    };
    match *arch {
        Architecture::Nsf { layers, hidden, hidden_layers, bins, affine_hidden, .. } => {
            for k in 0..layers {
                let (n_id, n_tr) = coupling_split(d, k);
                lin(format!("layer{k}.net0"), n_id + dx, hidden, false, rng)?;
                for i in 1..=hidden_layers {
                    lin(format!("layer{k}.net{i}"), hidden, hidden, false, rng)?;
                }
                lin(format!("layer{k}.net{}", hidden_layers + 1), hidden, n_tr * (3 * bins - 1), true, rng)?;
                perms.push(coupling_perm(d, k));
            }
            if affine_hidden > 0 {
                for i in 0..AFFINE_HIDDEN_LAYERS {
                    lin(format!("affine.net{i}"), if i == 0 { dx } else { affine_hidden }, affine_hidden, false, rng)?;
                }
                lin(format!("affine.net{AFFINE_HIDDEN_LAYERS}"), affine_hidden, crate::nsf::affine_outputs(d), true, rng)?;
            }
        }
        Architecture::Maf { layers, hidden, blocks, .. } => {
            let m = made_masks(d, hidden, blocks);
            for k in 0..layers {
                let pre = format!("layer{k}");
                lin(format!("{pre}.initial"), d, hidden, false, rng)?;
                lin(format!("{pre}.context"), dx, hidden, false, rng)?;
                for b in 0..blocks {
                    lin(format!("{pre}.block{b}"), hidden, hidden, false, rng)?;
                }
                lin(format!("{pre}.last"), hidden, 2 * d, true, rng)?;
                masks.insert(format!("{pre}.initial.weight"), Tensor::from_vec(m[0].clone(), (hidden, d), &dev)?);
                for b in 0..blocks {
                    masks.insert(format!("{pre}.block{b}.weight"), Tensor::from_vec(m[1 + b].clone(), (hidden, hidden), &dev)?);
                }
                masks.insert(format!("{pre}.last.weight"), Tensor::from_vec(m[blocks + 1].clone(), (2 * d, hidden), &dev)?);
                let mut perm: Vec<usize> = (0..d).collect();
                perm.shuffle(rng);
                perms.push(perm);
            }
        }
    }
    Ok(Params { vars, masks, perms })
}

/// Adam(W) state in plain vectors (fast element-wise updates, exact checkpoints).
struct Adam {
    /// Current parameter values, mirroring the candle variables.
    p: Vec<Vec<f32>>,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    step: u64,
}

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

impl Adam {
    fn new(p: &Params) -> candle_core::Result<Self> {
        let vals: Vec<Vec<f32>> =
            p.vars.iter().map(|(_, v)| v.as_tensor().flatten_all()?.to_vec1::<f32>()).collect::<candle_core::Result<_>>()?;
        let zeros: Vec<Vec<f32>> = vals.iter().map(|v| vec![0.0; v.len()]).collect();
        Ok(Self { p: vals, m: zeros.clone(), v: zeros, step: 0 })
    }

    /// One step with the mean gradient `g` (same layout as the parameters).
    fn update(&mut self, params: &Params, g: &[Vec<f32>], lr: f64, wd: f64) -> candle_core::Result<()> {
        use rayon::prelude::*;
        self.step += 1;
        let bc1 = 1.0 - BETA1.powi(self.step as i32);
        let bc2 = 1.0 - BETA2.powi(self.step as i32);
        let (b1, b2) = (BETA1 as f32, BETA2 as f32);
        let (a, eps, decay) = ((lr / bc1) as f32, EPS as f32, (1.0 - lr * wd) as f32);
        let sbc2 = (1.0 / bc2).sqrt() as f32;
        self.p.par_iter_mut().zip(self.m.par_iter_mut()).zip(self.v.par_iter_mut()).zip(g.par_iter()).for_each(|(((p, m), v), g)| {
            for i in 0..p.len() {
                m[i] = b1 * m[i] + (1.0 - b1) * g[i];
                v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
                p[i] = decay * p[i] - a * m[i] / (v[i].sqrt() * sbc2 + eps);
            }
        });
        for ((_, var), p) in params.vars.iter().zip(&self.p) {
            var.set(&Tensor::from_slice(p, var.as_tensor().shape(), &Device::Cpu)?)?;
        }
        Ok(())
    }

    fn tensors(&self, params: &Params, which: &[Vec<f32>]) -> candle_core::Result<Vec<Tensor>> {
        params.vars.iter().zip(which).map(|((_, var), v)| Tensor::from_slice(v, var.as_tensor().shape(), &Device::Cpu)).collect()
    }
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
    // Split, standardise.
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(cfg.seed);
    let mut order: Vec<usize> = (0..data.n).collect();
    order.shuffle(&mut rng);
    let n_val = ((data.n as f64 * cfg.validation_fraction).round() as usize).max(if cfg.validation_fraction > 0.0 { 1 } else { 0 });
    let (val_rows, train_rows) = order.split_at(n_val);
    let (val_rows, train_rows) = (val_rows.to_vec(), train_rows.to_vec());
    let t = |r: usize, i: usize| bound_map(&data.params, data.bound_method, data.theta[r * d + i] as f64, i);
    let mut theta_shift = Vec::new();
    let mut theta_scale = Vec::new();
    for i in 0..d {
        let (m, s) = mean_std(&train_rows, |r| t(r, i));
        theta_scale.push(1.0 / s);
        theta_shift.push(-m / s);
    }
    let (mut x_mean, mut x_std) = (Vec::new(), Vec::new());
    for j in 0..dx {
        let (m, s) = mean_std(&train_rows, |r| data.x[r * dx + j] as f64);
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
    let val_jac: f64 = if val_rows.is_empty() { 0.0 } else { val_rows.iter().map(|&r| bound_jac(r)).sum::<f64>() / val_rows.len() as f64 };

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
    let dev = Device::Cpu;
    let batch = |rows: &[usize]| -> candle_core::Result<(Tensor, Tensor)> {
        let y: Vec<f32> = rows.iter().flat_map(|&r| y_all[r * d..(r + 1) * d].iter().copied()).collect();
        let c: Vec<f32> = rows.iter().flat_map(|&r| c_all[r * dx..(r + 1) * dx].iter().copied()).collect();
        Ok((Tensor::from_vec(y, (rows.len(), d), &dev)?, Tensor::from_vec(c, (rows.len(), dx), &dev)?))
    };
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
        let mut erng = rand_pcg::Pcg64Mcg::seed_from_u64(sbipix_stats::index_seed(cfg.seed, epoch as u64));
        let mut rows = train_rows.clone();
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
                        let (y, c) = batch(ch)?;
                        let loss = neg_log_q(&y, &c, &cfg.architecture, &params, d)?.sum_all()?;
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
            adam.update(&params, &grads, st.lr, cfg.weight_decay)?;
        }
        let train_loss = tsum / train_rows.len() as f64 - lad_std;
        // validation
        let val_loss = if val_rows.is_empty() {
            train_loss
        } else {
            let mut s = 0.0;
            for ch in val_rows.chunks(4096) {
                let (y, c) = batch(ch)?;
                s += neg_log_q(&y, &c, &cfg.architecture, &params, d)?.sum_all()?.to_scalar::<f32>()? as f64;
            }
            s / val_rows.len() as f64 - lad_std
        };
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
        theta_shift,
        theta_scale,
        x_mean,
        x_std,
        base_log_z: standard_log_z(d),
    };
    let tensors = export(&params)?;
    let model = FlowModel::from_tensors(config, &tensors)?;
    let report = TrainReport {
        best_epoch: st.best_epoch,
        best_val_loss: st.best_val,
        best_val_log_prob: -st.best_val + val_jac,
        epochs: st.epochs,
        stopped_early,
    };
    Ok((model, report))
}

/// The effective weights (masks applied) and permutations as named tensors.
fn export(p: &Params) -> Result<Tensors> {
    let mut floats = HashMap::new();
    for (name, _) in &p.vars {
        let t = p.weight(name)?;
        let sh = t.dims().to_vec();
        let v: Vec<f32> = t.flatten_all()?.to_vec1()?;
        floats.insert(name.clone(), (sh, v.iter().map(|&x| x as f64).collect()));
    }
    let ints = p
        .perms
        .iter()
        .enumerate()
        .map(|(k, perm)| (format!("layer{k}.perm"), (vec![perm.len()], perm.iter().map(|&i| i as i64).collect())))
        .collect();
    Ok(Tensors { path: "(trained)".into(), floats, ints })
}

fn save_checkpoint(dir: &Path, p: &Params, adam: &Adam, best: &[Vec<f32>], st: &CheckpointState) -> Result<()> {
    let err = |e: String| FlowError::Model { path: dir.display().to_string(), reason: e };
    std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    let mut hm: HashMap<String, Tensor> = HashMap::new();
    let (pv, mv, vv, bv) = (adam.tensors(p, &adam.p)?, adam.tensors(p, &adam.m)?, adam.tensors(p, &adam.v)?, adam.tensors(p, best)?);
    for (i, (name, _)) in p.vars.iter().enumerate() {
        hm.insert(format!("param.{name}"), pv[i].clone());
        hm.insert(format!("adam_m.{name}"), mv[i].clone());
        hm.insert(format!("adam_v.{name}"), vv[i].clone());
        hm.insert(format!("best.{name}"), bv[i].clone());
    }
    let tmp = dir.join("checkpoint.safetensors.tmp");
    candle_core::safetensors::save(&hm, &tmp)?;
    std::fs::rename(&tmp, dir.join("checkpoint.safetensors")).map_err(|e| err(e.to_string()))?;
    let js = dir.join("checkpoint.json.tmp");
    std::fs::write(&js, serde_json::to_string_pretty(st).expect("state serialises")).map_err(|e| err(e.to_string()))?;
    std::fs::rename(&js, dir.join("checkpoint.json")).map_err(|e| err(e.to_string()))?;
    Ok(())
}

fn load_checkpoint(
    dir: &Path,
    p: &Params,
    adam: &mut Adam,
    best: &mut [Vec<f32>],
    st: &mut CheckpointState,
    cfg: &TrainConfig,
    n: usize,
) -> Result<()> {
    let err = |e: String| FlowError::Model { path: dir.display().to_string(), reason: e };
    let text = std::fs::read_to_string(dir.join("checkpoint.json")).map_err(|e| err(format!("checkpoint.json: {e}")))?;
    let saved: CheckpointState = serde_json::from_str(&text).map_err(|e| err(format!("checkpoint.json: {e}")))?;
    if saved.config.architecture != cfg.architecture || saved.config.seed != cfg.seed || saved.n != n {
        return Err(err("the checkpoint was made with another architecture, seed or training set".into()));
    }
    let ts = candle_core::safetensors::load(dir.join("checkpoint.safetensors"), &Device::Cpu)?;
    let get = |k: &str, like: &Tensor| -> Result<Vec<f32>> {
        let t = ts.get(k).ok_or_else(|| err(format!("checkpoint lacks `{k}`")))?;
        if t.dims() != like.dims() {
            return Err(err(format!("`{k}` has shape {:?}, the model {:?} (another architecture?)", t.dims(), like.dims())));
        }
        Ok(t.flatten_all()?.to_vec1::<f32>()?)
    };
    for (i, (name, v)) in p.vars.iter().enumerate() {
        adam.p[i] = get(&format!("param.{name}"), v.as_tensor())?;
        adam.m[i] = get(&format!("adam_m.{name}"), v.as_tensor())?;
        adam.v[i] = get(&format!("adam_v.{name}"), v.as_tensor())?;
        best[i] = get(&format!("best.{name}"), v.as_tensor())?;
    }
    for ((_, v), t) in p.vars.iter().zip(adam.tensors(p, &adam.p)?) {
        v.set(&t)?;
    }
    adam.step = saved.adam_step;
    *st = CheckpointState { config: cfg.clone(), ..saved };
    Ok(())
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
    };
    FlowModel::from_tensors(config, &export(&p)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The density the trainer optimises (candle) equals the one inference computes (plain Rust)
    /// for the same weights — every architecture, with weights far from their initial values.
    #[test]
    fn training_density_equals_inference_density() {
        let (d, dx, rows) = (5, 7, 64);
        let archs = [
            Architecture::Nsf { layers: 3, hidden: 16, hidden_layers: 1, bins: 6, tail_bound: 3.0, affine_hidden: 0 },
            Architecture::Nsf { layers: 3, hidden: 16, hidden_layers: 1, bins: 6, tail_bound: 3.0, affine_hidden: 12 },
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
