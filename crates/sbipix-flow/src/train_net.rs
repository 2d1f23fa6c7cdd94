//! The network as training sees it, in candle: parameters (named like the weights file), the
//! forward pass and the loss −log q(θ|x) of every architecture, initialisation and Adam(W).

use crate::dense::Activation;
use crate::error::Result;
use crate::maf::made_masks;
use crate::model::{AFFINE_HIDDEN_LAYERS, Architecture, Tensors, coupling_perm, coupling_split, standard_log_z};
use crate::rqs::{MIN_BIN, MIN_DERIVATIVE};
use candle_core::{DType, Device, Tensor, Var};
use rand::RngExt;
use rand::seq::SliceRandom;
use std::collections::HashMap;

/// The parameters of the network as candle variables, named like the weights file.
pub(crate) struct Params {
    pub(crate) vars: Vec<(String, Var)>,
    /// MAF masks (constants), by the name of the weight they mask.
    pub(crate) masks: HashMap<String, Tensor>,
    /// Permutations per layer.
    pub(crate) perms: Vec<Vec<usize>>,
}

impl Params {
    pub(crate) fn get(&self, name: &str) -> &Tensor {
        self.vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_tensor()).unwrap_or_else(|| panic!("no variable {name}"))
    }
    pub(crate) fn weight(&self, name: &str) -> candle_core::Result<Tensor> {
        let w = self.get(name);
        match self.masks.get(name) {
            Some(m) => w.mul(m),
            None => Ok(w.clone()),
        }
    }
}

pub(crate) fn linear(x: &Tensor, p: &Params, prefix: &str) -> candle_core::Result<Tensor> {
    x.matmul(&p.weight(&format!("{prefix}.weight"))?.t()?)?.broadcast_add(p.get(&format!("{prefix}.bias")))
}

pub(crate) fn act(x: &Tensor, a: Activation) -> candle_core::Result<Tensor> {
    match a {
        Activation::Relu => x.relu(),
        Activation::Tanh => x.tanh(),
    }
}

pub(crate) fn softplus(x: &Tensor) -> candle_core::Result<Tensor> {
    // relu(x) + ln(1 + e^(−|x|)), stable for any x
    x.relu()?.add(&(x.abs()?.neg()?.exp()? + 1.0)?.log()?)
}

/// Knot positions (…, K+1) on [−B, B] from unnormalised bin sizes (…, K).
pub(crate) fn knots_of(raw: &Tensor, k: usize, bound: f64) -> candle_core::Result<Tensor> {
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
pub(crate) fn rqs_forward(x: &Tensor, p: &Tensor, k: usize, bound: f64) -> candle_core::Result<(Tensor, Tensor)> {
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
pub(crate) fn neg_log_q(y: &Tensor, c: &Tensor, arch: &Architecture, p: &Params, d: usize) -> candle_core::Result<Tensor> {
    let dev = y.device();
    let rows = y.dim(0)?;
    let mut y = y.clone();
    let mut lad = Tensor::zeros(rows, DType::F32, dev)?;
    match *arch {
        Architecture::Nsf { layers, extra_hidden_layers, bins, tail_bound, affine_hidden, .. } => {
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
                for i in 1..=extra_hidden_layers {
                    h = linear(&h, p, &format!("layer{k}.net{i}"))?.relu()?;
                }
                let out = linear(&h, p, &format!("layer{k}.net{}", extra_hidden_layers + 1))?.reshape((rows, n_tr, 3 * bins - 1))?;
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
pub(crate) fn init_params(arch: &Architecture, d: usize, dx: usize, rng: &mut rand_pcg::Pcg64Mcg) -> candle_core::Result<Params> {
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
        Architecture::Nsf { layers, hidden, extra_hidden_layers, bins, affine_hidden, .. } => {
            for k in 0..layers {
                let (n_id, n_tr) = coupling_split(d, k);
                lin(format!("layer{k}.net0"), n_id + dx, hidden, false, rng)?;
                for i in 1..=extra_hidden_layers {
                    lin(format!("layer{k}.net{i}"), hidden, hidden, false, rng)?;
                }
                lin(format!("layer{k}.net{}", extra_hidden_layers + 1), hidden, n_tr * (3 * bins - 1), true, rng)?;
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
pub(crate) struct Adam {
    /// Current parameter values, mirroring the candle variables.
    pub(crate) p: Vec<Vec<f32>>,
    pub(crate) m: Vec<Vec<f32>>,
    pub(crate) v: Vec<Vec<f32>>,
    pub(crate) step: u64,
}

pub(crate) const BETA1: f64 = 0.9;
pub(crate) const BETA2: f64 = 0.999;
pub(crate) const EPS: f64 = 1e-8;

impl Adam {
    pub(crate) fn new(p: &Params) -> candle_core::Result<Self> {
        let vals: Vec<Vec<f32>> =
            p.vars.iter().map(|(_, v)| v.as_tensor().flatten_all()?.to_vec1::<f32>()).collect::<candle_core::Result<_>>()?;
        let zeros: Vec<Vec<f32>> = vals.iter().map(|v| vec![0.0; v.len()]).collect();
        Ok(Self { p: vals, m: zeros.clone(), v: zeros, step: 0 })
    }

    /// One step with the mean gradient `g` (same layout as the parameters).
    pub(crate) fn update(&mut self, params: &Params, g: &[Vec<f32>], lr: f64, wd: f64) -> candle_core::Result<()> {
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

    pub(crate) fn tensors(&self, params: &Params, which: &[Vec<f32>]) -> candle_core::Result<Vec<Tensor>> {
        params.vars.iter().zip(which).map(|((_, var), v)| Tensor::from_slice(v, var.as_tensor().shape(), &Device::Cpu)).collect()
    }
}

/// The effective weights (masks applied) and permutations as named tensors.
pub(crate) fn export(p: &Params) -> Result<Tensors> {
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
