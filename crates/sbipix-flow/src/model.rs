//! A conditional density estimator q(θ | x) ready to use: the flow network plus the fixed maps
//! around it (bounded parameters, standardisation), with log_prob and batched sampling, and the
//! model-directory format.
//!
//! **Bounded parameters.** A parameter with prior bounds [lo, hi] is modelled through the fixed
//! bijection t = logit((θ − lo)/(hi − lo)) (`BoundMethod::Logit`): every sample lies inside the
//! prior by construction and no draw is wasted. sbi instead rejects samples outside the prior box
//! (`BoundMethod::Reject`, used for the imported SBIPIX network): its acceptance rate per pixel
//! varies (0.4–0.9 for SBIPIX) and batched rejection runs at the worst pixel's rate.

use crate::dense::{Activation, Linear};
use crate::error::{FlowError, Result, shape};
use crate::maf::{Made, Maf, MafLayer, MafScratch};
use crate::nsf::{CondAffine, Coupling, Nsf, NsfScratch, affine_outputs};
use crate::real::Real;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// Format identifier and version of model directories.
pub const FORMAT: &str = "sbipix-flow";
pub const FORMAT_VERSION: u32 = 1;

/// ln(2π)/2.
const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// log normaliser of a d-dimensional standard normal, d/2·ln 2π.
pub fn standard_log_z(d: usize) -> f64 {
    d as f64 * HALF_LN_2PI
}

/// Network architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Architecture {
    /// Rational-quadratic spline coupling flow; with `affine_hidden` > 0, preceded by a
    /// conditional affine map ([`crate::nsf::CondAffine`]) whose MLP has two hidden layers of
    /// that width.
    Nsf {
        /// Coupling layers.
        layers: usize,
        /// Width of each conditioner's hidden layers.
        hidden: usize,
        /// Hidden layers of each conditioner *after its first*: a conditioner has
        /// `extra_hidden_layers + 1` hidden layers (`net0` … `net{extra_hidden_layers}`), then its
        /// output layer. Model files keep the key `hidden_layers` for this number (format 1).
        #[serde(rename = "hidden_layers")]
        extra_hidden_layers: usize,
        /// Spline bins.
        bins: usize,
        /// The splines act on [−tail_bound, tail_bound]; identity outside.
        tail_bound: f64,
        #[serde(default, skip_serializing_if = "is_zero")]
        affine_hidden: usize,
    },
    /// Masked autoregressive flow (nflows-compatible): each MADE has an initial hidden layer, then
    /// `blocks` more hidden layers, then its output layer.
    Maf { layers: usize, hidden: usize, blocks: usize, activation: Activation },
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

/// Default `tail_bound` of the NSF splines: standardised parameters beyond ±4 are rare.
pub const DEFAULT_TAIL_BOUND: f64 = 4.0;

/// Hidden layers of the MLP of a conditional affine map.
pub const AFFINE_HIDDEN_LAYERS: usize = 2;

/// How bounded parameters are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoundMethod {
    Logit,
    Reject,
}

/// One parameter θ_i.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamSpec {
    pub name: String,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
}

/// Everything needed to use a flow, stored as `flow.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowConfig {
    pub format: String,
    pub format_version: u32,
    pub architecture: Architecture,
    pub params: Vec<ParamSpec>,
    pub dim_x: usize,
    pub bound_method: BoundMethod,
    /// Standardisation after the bound maps: y = t·scale + shift.
    pub theta_shift: Vec<f64>,
    pub theta_scale: Vec<f64>,
    /// Context standardisation: c = (x − mean)/std.
    pub x_mean: Vec<f64>,
    pub x_std: Vec<f64>,
    /// log normaliser of the standard normal base (D/2·ln 2π unless imported otherwise).
    pub base_log_z: f64,
    /// Per parameter, the range the flow was trained on ([`crate::support::support_of`]): draws outside it are
    /// rejected and redrawn, as with `BoundMethod::Reject`. Why: an unbounded parameter's draws
    /// have Gaussian tails in the standardised space, so one draw in ≈ 10⁵ can land several
    /// units beyond anything the flow saw — dex beyond the training θ, where the prior that made
    /// the training set has no mass. Per-draw quantiles never notice; sums over thousands of
    /// objects, draw by draw, do (one such draw dominates a sum). The mass rejected is that rare,
    /// so `log_prob` is not renormalised. Empty (older models): no support check.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub theta_support: Vec<[f64; 2]>,
}

impl FlowConfig {
    pub fn dim_theta(&self) -> usize {
        self.params.len()
    }
    fn logit_dims(&self) -> Vec<Option<(f64, f64)>> {
        self.params
            .iter()
            .map(|p| match (self.bound_method, p.lower, p.upper) {
                (BoundMethod::Logit, Some(lo), Some(hi)) => Some((lo, hi)),
                _ => None,
            })
            .collect()
    }

    /// Checks internal consistency.
    pub fn validate(&self, path: &str) -> Result<()> {
        let bad = |reason: String| Err(FlowError::Model { path: path.into(), reason });
        if self.format != FORMAT || self.format_version != FORMAT_VERSION {
            return bad(format!("format {} v{} (expected {FORMAT} v{FORMAT_VERSION})", self.format, self.format_version));
        }
        let d = self.dim_theta();
        if d == 0
            || self.theta_shift.len() != d
            || self.theta_scale.len() != d
            || self.x_mean.len() != self.dim_x
            || self.x_std.len() != self.dim_x
        {
            return bad("standardisation vectors do not match the dimensions".into());
        }
        for p in &self.params {
            if let (Some(lo), Some(hi)) = (p.lower, p.upper)
                && lo >= hi
            {
                return bad(format!("parameter {}: lower {lo} ≥ upper {hi}", p.name));
            }
        }
        if self.x_std.iter().chain(&self.theta_scale).any(|v| !(v.is_finite() && *v != 0.0)) {
            return bad("zero or non-finite standardisation scale".into());
        }
        if !self.theta_support.is_empty() {
            if self.theta_support.len() != d {
                return bad(format!("theta_support has {} ranges for {d} parameters", self.theta_support.len()));
            }
            if let Some((p, [lo, hi])) =
                self.params.iter().zip(&self.theta_support).find(|(_, [lo, hi])| lo.partial_cmp(hi) != Some(std::cmp::Ordering::Less))
            {
                return bad(format!("parameter {}: support {lo} … {hi} is empty", p.name));
            }
        }
        Ok(())
    }
}

/// The network of a flow.
#[derive(Debug, Clone)]
pub enum Net<T> {
    Maf(Maf<T>),
    Nsf(Nsf<T>),
}

/// A conditional flow q(θ | x).
#[derive(Debug, Clone)]
pub struct FlowModel<T> {
    pub config: FlowConfig,
    pub net: Net<T>,
}

enum Scratch<T> {
    Maf(MafScratch<T>),
    Nsf(NsfScratch<T>),
}

impl<T: Real> FlowModel<T> {
    pub fn dim_theta(&self) -> usize {
        self.config.dim_theta()
    }
    pub fn dim_x(&self) -> usize {
        self.config.dim_x
    }

    fn scratch(&self) -> Scratch<T> {
        match &self.net {
            Net::Maf(_) => Scratch::Maf(MafScratch::default()),
            Net::Nsf(_) => Scratch::Nsf(NsfScratch::default()),
        }
    }

    fn standardise_x(&self, rows: usize, x: &[f64]) -> Vec<T> {
        let dx = self.dim_x();
        (0..rows * dx).map(|i| T::from_f64((x[i] - self.config.x_mean[i % dx]) / self.config.x_std[i % dx])).collect()
    }

    fn contexts(&self, rows: usize, c: &[T]) -> Vec<Vec<T>> {
        match &self.net {
            Net::Maf(m) => m.contexts(rows, c),
            Net::Nsf(n) => n.contexts(rows, c),
        }
    }

    fn check(&self, what: &str, v: &[f64], width: usize, rows: usize) -> Result<()> {
        if v.len() != rows * width {
            return Err(shape(what, format!("{rows} rows × {width}"), format!("{} values", v.len())));
        }
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(FlowError::BadData { what: what.into(), reason: format!("row {}, column {} is not finite", i / width, i % width) });
        }
        Ok(())
    }

    /// log q(θ | x) for `rows` pairs (θ [rows × D], x [rows × Dx]); −∞ outside the bounds.
    pub fn log_prob(&self, theta: &[f64], x: &[f64], rows: usize) -> Result<Vec<f64>> {
        let (d, dx) = (self.dim_theta(), self.dim_x());
        self.check("θ", theta, d, rows)?;
        self.check("x", x, dx, rows)?;
        let c = self.standardise_x(rows, x);
        let ctx = self.contexts(rows, &c);
        let logit = self.config.logit_dims();
        let mut y = vec![T::ZERO; rows * d];
        let mut lad = vec![T::ZERO; rows];
        let mut outside = vec![false; rows];
        let mut extra = vec![0.0f64; rows];
        for r in 0..rows {
            for i in 0..d {
                let mut t = theta[r * d + i];
                let p = &self.config.params[i];
                if let Some((lo, hi)) = logit[i] {
                    if t <= lo || t >= hi {
                        outside[r] = true;
                        continue;
                    }
                    let u = (t - lo) / (hi - lo);
                    extra[r] += -((t - lo).ln() + (hi - t).ln()) + (hi - lo).ln();
                    t = u.ln() - (-u).ln_1p();
                } else if self.config.bound_method == BoundMethod::Reject
                    && (p.lower.is_some_and(|lo| t < lo) || p.upper.is_some_and(|hi| t > hi))
                {
                    outside[r] = true;
                }
                y[r * d + i] = T::from_f64(t * self.config.theta_scale[i] + self.config.theta_shift[i]);
            }
        }
        let lad_std: f64 = self.config.theta_scale.iter().map(|s| s.abs().ln()).sum();
        match (&self.net, &mut self.scratch()) {
            (Net::Maf(m), Scratch::Maf(s)) => m.forward(rows, &mut y, &ctx, &mut lad, s),
            (Net::Nsf(n), Scratch::Nsf(s)) => n.forward(rows, &mut y, &ctx, &mut lad, s),
            _ => unreachable!(),
        }
        Ok((0..rows)
            .map(|r| {
                if outside[r] {
                    return f64::NEG_INFINITY;
                }
                let sq: f64 = y[r * d..(r + 1) * d].iter().map(|v| v.to_f64() * v.to_f64()).sum();
                -0.5 * sq - self.config.base_log_z + lad[r].to_f64() + lad_std + extra[r]
            })
            .collect())
    }

    /// θ = T⁻¹(u; x) for given base draws `u` [rows × D] (no bounds applied): the deterministic
    /// sampling direction.
    pub fn transform_noise(&self, u: &[f64], x: &[f64], rows: usize) -> Result<Vec<f64>> {
        let (d, dx) = (self.dim_theta(), self.dim_x());
        self.check("u", u, d, rows)?;
        self.check("x", x, dx, rows)?;
        let c = self.standardise_x(rows, x);
        let ctx = self.contexts(rows, &c);
        let mut y: Vec<T> = u.iter().map(|v| T::from_f64(*v)).collect();
        self.invert(rows, &mut y, &ctx, &mut self.scratch());
        Ok(self.to_theta(rows, &y))
    }

    fn invert(&self, rows: usize, y: &mut [T], ctx: &[Vec<T>], scratch: &mut Scratch<T>) {
        match (&self.net, scratch) {
            (Net::Maf(m), Scratch::Maf(s)) => m.inverse(rows, y, ctx, s),
            (Net::Nsf(n), Scratch::Nsf(s)) => n.inverse(rows, y, ctx, &mut [], s),
            _ => unreachable!(),
        }
    }

    fn to_theta(&self, rows: usize, y: &[T]) -> Vec<f64> {
        let d = self.dim_theta();
        let logit = self.config.logit_dims();
        (0..rows * d)
            .map(|k| {
                let i = k % d;
                let t = (y[k].to_f64() - self.config.theta_shift[i]) / self.config.theta_scale[i];
                match logit[i] {
                    Some((lo, hi)) => lo + (hi - lo) / (1.0 + (-t).exp()),
                    None => t,
                }
            })
            .collect()
    }

    fn in_bounds(&self, th: &[f64]) -> bool {
        self.config
            .params
            .iter()
            .zip(th)
            .all(|(p, v)| v.is_finite() && p.lower.is_none_or(|lo| *v >= lo) && p.upper.is_none_or(|hi| *v <= hi))
    }

    fn in_support(&self, th: &[f64]) -> bool {
        crate::support::contains(&self.config.theta_support, th)
    }

    /// `n` posterior draws for each of `pixels` contexts x [pixels × Dx] → [pixels × n × D].
    /// Pixel p draws from its own random stream seeded by (seed, p), so the result does not
    /// depend on the thread count. Draws outside the bounds (`BoundMethod::Reject`) are replaced
    /// (per pixel) until `n` are inside; a pixel whose acceptance is below 1e-3 gets NaN. Draws
    /// outside the training support ([`FlowConfig::theta_support`]) are replaced too, unless
    /// more than half of a pixel's are: then the pixel is drawn without it.
    pub fn sample(&self, x: &[f64], pixels: usize, n: usize, seed: u64) -> Result<Vec<f32>> {
        self.sample_from(x, pixels, n, seed, 0)
    }

    /// As [`Self::sample`], the pixels numbered from `first` for their random streams.
    pub fn sample_from(&self, x: &[f64], pixels: usize, n: usize, seed: u64, first: u64) -> Result<Vec<f32>> {
        let (d, dx) = (self.dim_theta(), self.dim_x());
        self.check("x", x, dx, pixels)?;
        if n == 0 {
            return Err(FlowError::Config { name: "n".into(), reason: "the number of draws per context must be at least 1".into() });
        }
        let mut out = vec![0f32; pixels * n * d];
        let logit = self.config.logit_dims();
        out.par_chunks_mut(n * d).enumerate().for_each_init(
            || (self.scratch(), Vec::<T>::new(), Vec::<f64>::new()),
            |(scratch, y, th), (p, dst)| {
                let c = self.standardise_x(1, &x[p * dx..(p + 1) * dx]);
                // one context term per layer, shared by all draws of this pixel
                let ctx = self.contexts(1, &c);
                // With a training support: a first pass that redraws the rare draws outside it.
                // Where most draws fall outside, the pixel is not one the flow was trained for
                // (its OOD flags say so); the pass is abandoned and the pixel drawn again from the
                // same stream without the support, rather than forced into it.
                let with_support = !self.config.theta_support.is_empty();
                for use_support in [with_support, false] {
                    let mut rng = pixel_rng(seed, first + p as u64);
                    let (mut filled, mut tries, mut off_support) = (0usize, 0usize, 0usize);
                    let mut abandoned = false;
                    while filled < n {
                        let rows = (n - filled).clamp(16, 4096);
                        y.clear();
                        y.extend((0..rows * d).map(|_| T::from_f64(StandardNormal.sample(&mut rng))));
                        self.invert(rows, y, &ctx, scratch);
                        th.clear();
                        th.extend((0..rows * d).map(|k| {
                            let i = k % d;
                            let t = (y[k].to_f64() - self.config.theta_shift[i]) / self.config.theta_scale[i];
                            match logit[i] {
                                Some((lo, hi)) => lo + (hi - lo) / (1.0 + (-t).exp()),
                                None => t,
                            }
                        }));
                        for r in 0..rows {
                            if filled == n {
                                break;
                            }
                            let row = &th[r * d..(r + 1) * d];
                            if !self.in_bounds(row) {
                                continue;
                            }
                            if use_support && !self.in_support(row) {
                                off_support += 1;
                                continue;
                            }
                            for (o, v) in dst[filled * d..(filled + 1) * d].iter_mut().zip(row) {
                                *o = *v as f32;
                            }
                            filled += 1;
                        }
                        tries += rows;
                        if use_support && tries >= n && 2 * off_support > tries {
                            abandoned = true;
                            break;
                        }
                        if filled < n && tries > 1000 * n {
                            dst[filled * d..].iter_mut().for_each(|v| *v = f32::NAN);
                            break;
                        }
                    }
                    if !abandoned {
                        break;
                    }
                }
            },
        );
        Ok(out)
    }
}

/// The random stream of pixel `p`.
pub fn pixel_rng(seed: u64, p: u64) -> rand_pcg::Pcg64Mcg {
    use sbipix_stats::splitmix64;
    rand_pcg::Pcg64Mcg::seed_from_u64(splitmix64(seed) ^ splitmix64(p ^ 0x5851_F42D_4C95_7F2D))
}

// ---------------------------------------------------------------------------------------------
// Weights on disk (safetensors) and model directories.

/// Named tensors read from a safetensors file (floats as f64, integers as i64).
pub struct Tensors {
    pub path: String,
    pub floats: HashMap<String, (Vec<usize>, Vec<f64>)>,
    pub ints: HashMap<String, (Vec<usize>, Vec<i64>)>,
}

impl Tensors {
    pub fn read(path: &Path) -> Result<Self> {
        use safetensors::{Dtype, SafeTensors};
        let p = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| FlowError::Model { path: p.clone(), reason: e.to_string() })?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| FlowError::Model { path: p.clone(), reason: e.to_string() })?;
        let (mut floats, mut ints) = (HashMap::new(), HashMap::new());
        for (name, t) in st.tensors() {
            let sh = t.shape().to_vec();
            let d = t.data();
            match t.dtype() {
                Dtype::F32 => {
                    floats.insert(name, (sh, d.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64).collect()));
                }
                Dtype::F64 => {
                    floats.insert(name, (sh, d.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect()));
                }
                Dtype::I64 => {
                    ints.insert(name, (sh, d.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect()));
                }
                other => return Err(FlowError::Model { path: p, reason: format!("tensor {name}: unsupported dtype {other:?}") }),
            }
        }
        Ok(Self { path: p, floats, ints })
    }

    fn missing(&self, name: &str) -> FlowError {
        FlowError::Model { path: self.path.clone(), reason: format!("tensor `{name}` is missing") }
    }

    pub fn float(&self, name: &str, shape_expected: &[usize]) -> Result<Vec<f64>> {
        let (sh, v) = self.floats.get(name).ok_or_else(|| self.missing(name))?;
        if sh != shape_expected {
            return Err(FlowError::Model {
                path: self.path.clone(),
                reason: format!("tensor `{name}` has shape {sh:?}, expected {shape_expected:?}"),
            });
        }
        Ok(v.clone())
    }

    pub fn perm(&self, name: &str, d: usize) -> Result<Vec<usize>> {
        let (sh, v) = self.ints.get(name).ok_or_else(|| self.missing(name))?;
        let mut seen = vec![false; d];
        if sh != &[d] || v.iter().any(|&i| i < 0 || i as usize >= d || std::mem::replace(&mut seen[i as usize], true)) {
            return Err(FlowError::Model { path: self.path.clone(), reason: format!("`{name}` is not a permutation of 0..{d}") });
        }
        Ok(v.iter().map(|&i| i as usize).collect())
    }

    fn linear(&self, prefix: &str, n_in: usize, n_out: usize) -> Result<Linear<f64>> {
        Ok(Linear::new(
            n_in,
            n_out,
            self.float(&format!("{prefix}.weight"), &[n_out, n_in])?,
            self.float(&format!("{prefix}.bias"), &[n_out])?,
        ))
    }
}

impl FlowModel<f64> {
    /// Builds the network of `config` from tensors named as training writes them (`sbipix_flow::train`).
    pub fn from_tensors(config: FlowConfig, t: &Tensors) -> Result<Self> {
        config.validate(&t.path)?;
        let (d, dx) = (config.dim_theta(), config.dim_x);
        let net = match config.architecture {
            Architecture::Maf { layers, hidden, blocks, activation } => Net::Maf(Maf {
                dim: d,
                layers: (0..layers)
                    .map(|k| {
                        let p = format!("layer{k}");
                        Ok(MafLayer {
                            made: Made {
                                dim: d,
                                initial: t.linear(&format!("{p}.initial"), d, hidden)?,
                                context: t.linear(&format!("{p}.context"), dx, hidden)?,
                                blocks: (0..blocks).map(|b| t.linear(&format!("{p}.block{b}"), hidden, hidden)).collect::<Result<_>>()?,
                                last: t.linear(&format!("{p}.last"), hidden, 2 * d)?,
                                activation,
                            },
                            perm: t.perm(&format!("{p}.perm"), d)?,
                        })
                    })
                    .collect::<Result<_>>()?,
            }),
            Architecture::Nsf { layers, hidden, extra_hidden_layers, bins, tail_bound, affine_hidden } => Net::Nsf(Nsf {
                dim: d,
                bins,
                tail_bound,
                affine: if affine_hidden > 0 {
                    Some(CondAffine {
                        dim: d,
                        hidden: (0..AFFINE_HIDDEN_LAYERS)
                            .map(|i| t.linear(&format!("affine.net{i}"), if i == 0 { dx } else { affine_hidden }, affine_hidden))
                            .collect::<Result<_>>()?,
                        last: t.linear(&format!("affine.net{AFFINE_HIDDEN_LAYERS}"), affine_hidden, affine_outputs(d))?,
                    })
                } else {
                    None
                },
                layers: (0..layers)
                    .map(|k| {
                        let p = format!("layer{k}");
                        let (n_id, n_tr) = coupling_split(d, k);
                        let first = t.linear(&format!("{p}.net0"), n_id + dx, hidden)?;
                        let (first_y, first_c) = split_first(&first, n_id);
                        Ok(Coupling {
                            n_id,
                            n_tr,
                            first_y,
                            first_c,
                            hidden: (1..=extra_hidden_layers)
                                .map(|i| t.linear(&format!("{p}.net{i}"), hidden, hidden))
                                .collect::<Result<_>>()?,
                            last: t.linear(&format!("{p}.net{}", extra_hidden_layers + 1), hidden, n_tr * (3 * bins - 1))?,
                            perm: t.perm(&format!("{p}.perm"), d)?,
                        })
                    })
                    .collect::<Result<_>>()?,
            }),
        };
        Ok(Self { config, net })
    }

    /// A copy in another float type.
    pub fn cast<U: Real>(&self) -> FlowModel<U> {
        let net = match &self.net {
            Net::Maf(m) => Net::Maf(Maf {
                dim: m.dim,
                layers: m
                    .layers
                    .iter()
                    .map(|l| MafLayer {
                        made: Made {
                            dim: l.made.dim,
                            initial: l.made.initial.cast(),
                            context: l.made.context.cast(),
                            blocks: l.made.blocks.iter().map(|b| b.cast()).collect(),
                            last: l.made.last.cast(),
                            activation: l.made.activation,
                        },
                        perm: l.perm.clone(),
                    })
                    .collect(),
            }),
            Net::Nsf(n) => Net::Nsf(Nsf {
                dim: n.dim,
                bins: n.bins,
                tail_bound: n.tail_bound,
                affine: n.affine.as_ref().map(|a| a.cast()),
                layers: n
                    .layers
                    .iter()
                    .map(|l| Coupling {
                        n_id: l.n_id,
                        n_tr: l.n_tr,
                        first_y: l.first_y.cast(),
                        first_c: l.first_c.cast(),
                        hidden: l.hidden.iter().map(|h| h.cast()).collect(),
                        last: l.last.cast(),
                        perm: l.perm.clone(),
                    })
                    .collect(),
            }),
        };
        FlowModel { config: self.config.clone(), net }
    }
}

/// Kept/transformed split of coupling layer `k`: alternate which half is kept.
pub fn coupling_split(d: usize, _k: usize) -> (usize, usize) {
    if d == 1 { (0, 1) } else { (d / 2, d - d / 2) }
}

/// The permutation after coupling layer `k`: a rotation by ⌈d/2⌉ so each layer transforms the
/// coordinates the previous one kept.
pub fn coupling_perm(d: usize, _k: usize) -> Vec<usize> {
    let s = d / 2;
    (0..d).map(|j| (j + d - s) % d).collect()
}

fn split_first(first: &Linear<f64>, n_id: usize) -> (Linear<f64>, Linear<f64>) {
    let (n_in, h) = (first.n_in, first.n_out);
    let nc = n_in - n_id;
    let mut wy = Vec::with_capacity(h * n_id);
    let mut wc = Vec::with_capacity(h * nc);
    for o in 0..h {
        wy.extend_from_slice(&first.w[o * n_in..o * n_in + n_id]);
        wc.extend_from_slice(&first.w[o * n_in + n_id..(o + 1) * n_in]);
    }
    (Linear::new(n_id, h, wy, vec![0.0; h]), Linear::new(nc, h, wc, first.b.clone()))
}

/// Reads a model directory: `flow.json` + `weights.safetensors`.
pub fn load_dir(dir: &Path) -> Result<FlowModel<f64>> {
    let cpath = dir.join("flow.json");
    let text =
        std::fs::read_to_string(&cpath).map_err(|e| FlowError::Model { path: cpath.display().to_string(), reason: e.to_string() })?;
    let config: FlowConfig =
        serde_json::from_str(&text).map_err(|e| FlowError::Model { path: cpath.display().to_string(), reason: e.to_string() })?;
    let t = Tensors::read(&dir.join("weights.safetensors"))?;
    FlowModel::from_tensors(config, &t)
}

/// Writes a model directory (`flow.json` + `weights.safetensors`) into `dir` (which must exist).
/// Weights are stored as float32 (as trained), permutations as int64.
pub fn save_dir(model: &FlowModel<f64>, dir: &Path) -> Result<()> {
    use safetensors::Dtype;
    let err = |e: String| FlowError::Model { path: dir.display().to_string(), reason: e };
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut lin = |name: String, l: &Linear<f64>| {
        tensors.push((
            format!("{name}.weight"),
            Dtype::F32,
            vec![l.n_out, l.n_in],
            l.w.iter().flat_map(|v| (*v as f32).to_le_bytes()).collect(),
        ));
        tensors.push((format!("{name}.bias"), Dtype::F32, vec![l.n_out], l.b.iter().flat_map(|v| (*v as f32).to_le_bytes()).collect()));
    };
    let mut perms = Vec::new();
    match &model.net {
        Net::Maf(m) => {
            for (k, l) in m.layers.iter().enumerate() {
                lin(format!("layer{k}.initial"), &l.made.initial);
                lin(format!("layer{k}.context"), &l.made.context);
                for (b, blk) in l.made.blocks.iter().enumerate() {
                    lin(format!("layer{k}.block{b}"), blk);
                }
                lin(format!("layer{k}.last"), &l.made.last);
                perms.push(l.perm.clone());
            }
        }
        Net::Nsf(n) => {
            for (k, l) in n.layers.iter().enumerate() {
                // re-join the first layer's kept-coordinate and context columns
                let (h, ni, nc) = (l.first_c.n_out, l.first_y.n_in, l.first_c.n_in);
                let mut w = Vec::with_capacity(h * (ni + nc));
                for o in 0..h {
                    w.extend_from_slice(&l.first_y.w[o * ni..(o + 1) * ni]);
                    w.extend_from_slice(&l.first_c.w[o * nc..(o + 1) * nc]);
                }
                lin(format!("layer{k}.net0"), &Linear::new(ni + nc, h, w, l.first_c.b.clone()));
                for (i, hl) in l.hidden.iter().enumerate() {
                    lin(format!("layer{k}.net{}", i + 1), hl);
                }
                lin(format!("layer{k}.net{}", l.hidden.len() + 1), &l.last);
                perms.push(l.perm.clone());
            }
            if let Some(a) = &n.affine {
                for (i, h) in a.hidden.iter().enumerate() {
                    lin(format!("affine.net{i}"), h);
                }
                lin(format!("affine.net{}", a.hidden.len()), &a.last);
            }
        }
    }
    for (k, p) in perms.iter().enumerate() {
        tensors.push((format!("layer{k}.perm"), Dtype::I64, vec![p.len()], p.iter().flat_map(|v| (*v as i64).to_le_bytes()).collect()));
    }
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(n, dt, sh, b)| safetensors::tensor::TensorView::new(*dt, sh.clone(), b).map(|v| (n.clone(), v)))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| err(e.to_string()))?;
    let bytes = safetensors::serialize(views, None).map_err(|e| err(e.to_string()))?;
    std::fs::write(dir.join("weights.safetensors"), bytes).map_err(|e| err(e.to_string()))?;
    std::fs::write(dir.join("flow.json"), serde_json::to_string_pretty(&model.config).expect("config serialises"))
        .map_err(|e| err(e.to_string()))?;
    Ok(())
}
