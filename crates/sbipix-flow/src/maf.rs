//! Masked autoregressive flows compatible with nflows/sbi (`MaskedAffineAutoregressiveTransform`
//! over MADE networks, with permutations between transforms): inference.
//!
//! Conventions are nflows 0.14's (see `shared/reference/sbipix_released_model/README.md`): the
//! MADE adds act(W_ctx c + b_ctx) to its first layer, activates, runs `blocks` masked layers
//! with activation, and its final layer gives (unconstrained scale, shift) *interleaved* per
//! dimension; scale = softplus(u) + 1e-3; forward (θ → noise) is y·scale + shift followed by the
//! permutation `out[j] = in[perm[j]]`.

use crate::dense::{Activation, Linear};
use crate::real::{Real, softplus};

/// The additive floor of the MAF scale (nflows: 1e-3).
pub const SCALE_EPS: f64 = 1e-3;

/// A MADE with its masks already multiplied into the weights.
#[derive(Debug, Clone)]
pub struct Made<T> {
    pub dim: usize,
    pub initial: Linear<T>,
    pub context: Linear<T>,
    pub blocks: Vec<Linear<T>>,
    pub last: Linear<T>,
    pub activation: Activation,
}

/// One MAF transform and the permutation that follows it.
#[derive(Debug, Clone)]
pub struct MafLayer<T> {
    pub made: Made<T>,
    pub perm: Vec<usize>,
}

/// A masked autoregressive flow.
#[derive(Debug, Clone)]
pub struct Maf<T> {
    pub dim: usize,
    pub layers: Vec<MafLayer<T>>,
}

/// Scratch space for one batch.
#[derive(Debug, Default)]
pub struct MafScratch<T> {
    h: Vec<T>,
    h2: Vec<T>,
    out: Vec<T>,
    y: Vec<T>,
}

impl<T: Real> Made<T> {
    /// Context term act(W_ctx c + b) for `rows` contexts `c` [rows × dc] → `out` [rows × hidden].
    pub fn context_term(&self, rows: usize, c: &[T], out: &mut Vec<T>) {
        out.resize(rows * self.context.n_out, T::ZERO);
        self.context.forward(rows, c, out);
        self.activation.apply(out);
    }

    /// MADE outputs [rows × 2·dim] for inputs `y` [rows × dim] and context terms `ctx`.
    fn forward(&self, rows: usize, y: &[T], ctx: &[T], s: &mut MafScratch<T>) {
        let hdim = self.initial.n_out;
        s.h.resize(rows * hdim, T::ZERO);
        if ctx.len() == hdim {
            for r in 0..rows {
                s.h[r * hdim..(r + 1) * hdim].copy_from_slice(ctx);
            }
        } else {
            s.h[..rows * hdim].copy_from_slice(&ctx[..rows * hdim]);
        }
        for r in 0..rows {
            for (v, b) in s.h[r * hdim..(r + 1) * hdim].iter_mut().zip(&self.initial.b) {
                *v += *b;
            }
        }
        self.initial.forward_add(rows, y, &mut s.h);
        self.activation.apply(&mut s.h[..rows * hdim]);
        for blk in &self.blocks {
            s.h2.resize(rows * blk.n_out, T::ZERO);
            blk.forward(rows, &s.h, &mut s.h2);
            self.activation.apply(&mut s.h2[..rows * blk.n_out]);
            std::mem::swap(&mut s.h, &mut s.h2);
        }
        s.out.resize(rows * self.last.n_out, T::ZERO);
        self.last.forward(rows, &s.h, &mut s.out);
    }
}

impl<T: Real> Maf<T> {
    /// Context terms of every layer for `rows` standardised contexts.
    pub fn contexts(&self, rows: usize, c: &[T]) -> Vec<Vec<T>> {
        self.layers
            .iter()
            .map(|l| {
                let mut v = Vec::new();
                l.made.context_term(rows, c, &mut v);
                v
            })
            .collect()
    }

    /// Forward (data → noise): transforms `y` [rows × dim] in place; adds log|det| to `lad`.
    pub fn forward(&self, rows: usize, y: &mut [T], ctx: &[Vec<T>], lad: &mut [T], s: &mut MafScratch<T>) {
        let d = self.dim;
        for (l, ct) in self.layers.iter().zip(ctx) {
            l.made.forward(rows, y, ct, s);
            for r in 0..rows {
                let o = &s.out[r * 2 * d..(r + 1) * 2 * d];
                let row = &mut y[r * d..(r + 1) * d];
                for i in 0..d {
                    let scale = softplus(o[2 * i]) + T::from_f64(SCALE_EPS);
                    row[i] = row[i] * scale + o[2 * i + 1];
                    lad[r] += scale.ln();
                }
            }
            permute_rows(rows, d, y, &l.perm, &mut s.y);
        }
    }

    /// Inverse (noise → data), in place: `dim` MADE passes per transform.
    pub fn inverse(&self, rows: usize, y: &mut [T], ctx: &[Vec<T>], s: &mut MafScratch<T>) {
        let d = self.dim;
        let mut x = vec![T::ZERO; rows * d];
        for (l, ct) in self.layers.iter().zip(ctx).rev() {
            unpermute_rows(rows, d, y, &l.perm, &mut s.y);
            x.iter_mut().for_each(|v| *v = T::ZERO);
            for _ in 0..d {
                l.made.forward(rows, &x, ct, s);
                for r in 0..rows {
                    let o = &s.out[r * 2 * d..(r + 1) * 2 * d];
                    for i in 0..d {
                        let scale = softplus(o[2 * i]) + T::from_f64(SCALE_EPS);
                        x[r * d + i] = (y[r * d + i] - o[2 * i + 1]) / scale;
                    }
                }
            }
            y[..rows * d].copy_from_slice(&x);
        }
    }
}

/// out[j] = in[perm[j]] for each row, in place (via `tmp`).
pub(crate) fn permute_rows<T: Real>(rows: usize, d: usize, y: &mut [T], perm: &[usize], tmp: &mut Vec<T>) {
    tmp.resize(d, T::ZERO);
    for r in 0..rows {
        let row = &mut y[r * d..(r + 1) * d];
        for j in 0..d {
            tmp[j] = row[perm[j]];
        }
        row.copy_from_slice(&tmp[..d]);
    }
}

/// out[perm[j]] = in[j] for each row, in place.
pub(crate) fn unpermute_rows<T: Real>(rows: usize, d: usize, y: &mut [T], perm: &[usize], tmp: &mut Vec<T>) {
    tmp.resize(d, T::ZERO);
    for r in 0..rows {
        let row = &mut y[r * d..(r + 1) * d];
        for j in 0..d {
            tmp[perm[j]] = row[j];
        }
        row.copy_from_slice(&tmp[..d]);
    }
}

/// MADE masks (Germain et al. 2015) for `dim` inputs with input degrees 1..=dim, `n_hidden`
/// hidden layers of `hidden` units with degrees cycling 1..dim−1 (nflows' sequential degrees),
/// and `2·dim` interleaved outputs (degree i+1 for both outputs of dimension i).
/// Returns masks [out × in] for: initial, hidden blocks…, final.
pub fn made_masks(dim: usize, hidden: usize, n_blocks: usize) -> Vec<Vec<f32>> {
    let in_deg: Vec<usize> = (1..=dim).collect();
    // with one dimension the hidden units see only the context (degree 0)
    let hid_deg: Vec<usize> = (0..hidden).map(|i| if dim > 1 { i % (dim - 1) + 1 } else { 0 }).collect();
    let out_deg: Vec<usize> = (0..2 * dim).map(|o| o / 2 + 1).collect();
    let mask = |outd: &[usize], ind: &[usize], strict: bool| -> Vec<f32> {
        let mut m = Vec::with_capacity(outd.len() * ind.len());
        for &o in outd {
            for &i in ind {
                m.push(if (strict && o > i) || (!strict && o >= i) { 1.0 } else { 0.0 });
            }
        }
        m
    };
    let mut v = vec![mask(&hid_deg, &in_deg, false)];
    for _ in 0..n_blocks {
        v.push(mask(&hid_deg, &hid_deg, false));
    }
    v.push(mask(&out_deg, &hid_deg, true));
    v
}
