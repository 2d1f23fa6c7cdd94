//! Neural spline flows with coupling layers (Durkan et al. 2019): inference.
//!
//! Each layer keeps the first `n_id` coordinates, feeds them with the context to an MLP (ReLU),
//! and transforms the other `n_tr` coordinates with rational-quadratic splines whose 3K − 1
//! parameters per coordinate the MLP outputs; then the coordinates are permuted. Both directions
//! cost one network pass per layer, so sampling is as cheap as density evaluation.

use crate::dense::{Activation, Linear};
use crate::maf::{permute_rows, unpermute_rows};
use crate::real::Real;
use crate::rqs_batch::{SplineScratch, splines};

/// One coupling layer.
#[derive(Debug, Clone)]
pub struct Coupling<T> {
    pub n_id: usize,
    pub n_tr: usize,
    /// First layer, split: weights on the kept coordinates [hidden × n_id] …
    pub first_y: Linear<T>,
    /// … and on the context [hidden × dc], with the layer's bias.
    pub first_c: Linear<T>,
    pub hidden: Vec<Linear<T>>,
    pub last: Linear<T>,
    pub perm: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct Nsf<T> {
    pub dim: usize,
    pub bins: usize,
    pub tail_bound: f64,
    pub layers: Vec<Coupling<T>>,
}

#[derive(Debug, Default)]
pub struct NsfScratch<T> {
    h: Vec<T>,
    h2: Vec<T>,
    out: Vec<T>,
    yid: Vec<T>,
    tmp: Vec<T>,
    vals: Vec<T>,
    lds: Vec<T>,
    sp: SplineScratch<T>,
}

impl<T: Real> Coupling<T> {
    /// Spline parameters [rows × n_tr·(3K−1)] from the kept coordinates and the context term.
    fn params(&self, rows: usize, y: &[T], dim: usize, ctx: &[T], s: &mut NsfScratch<T>) {
        let hd = self.first_c.n_out;
        s.yid.resize(rows * self.n_id, T::ZERO);
        for r in 0..rows {
            s.yid[r * self.n_id..(r + 1) * self.n_id].copy_from_slice(&y[r * dim..r * dim + self.n_id]);
        }
        s.h.resize(rows * hd, T::ZERO);
        if ctx.len() == hd {
            // one context for every row (sampling one pixel)
            for r in 0..rows {
                s.h[r * hd..(r + 1) * hd].copy_from_slice(ctx);
            }
        } else {
            s.h[..rows * hd].copy_from_slice(&ctx[..rows * hd]);
        }
        if self.n_id > 0 {
            self.first_y.forward_add(rows, &s.yid, &mut s.h);
        }
        Activation::Relu.apply(&mut s.h[..rows * hd]);
        for l in &self.hidden {
            s.h2.resize(rows * l.n_out, T::ZERO);
            l.forward(rows, &s.h, &mut s.h2);
            Activation::Relu.apply(&mut s.h2[..rows * l.n_out]);
            std::mem::swap(&mut s.h, &mut s.h2);
        }
        s.out.resize(rows * self.last.n_out, T::ZERO);
        self.last.forward(rows, &s.h, &mut s.out);
    }
}

impl<T: Real> Coupling<T> {
    /// Runs the splines of the transformed coordinates of every row (parameters in `s.out`).
    #[allow(clippy::too_many_arguments)]
    fn apply_splines(&self, rows: usize, d: usize, k: usize, bound: T, inverse: bool, y: &mut [T], lad: &mut [T], s: &mut NsfScratch<T>) {
        let n = rows * self.n_tr;
        s.vals.resize(n, T::ZERO);
        s.lds.resize(if lad.is_empty() { 0 } else { n }, T::ZERO);
        for r in 0..rows {
            s.vals[r * self.n_tr..(r + 1) * self.n_tr].copy_from_slice(&y[r * d + self.n_id..(r + 1) * d]);
        }
        s.lds.iter_mut().for_each(|v| *v = T::ZERO);
        splines(&s.out[..n * (3 * k - 1)], k, bound, inverse, &mut s.vals, &mut s.lds, &mut s.sp);
        for r in 0..rows {
            y[r * d + self.n_id..(r + 1) * d].copy_from_slice(&s.vals[r * self.n_tr..(r + 1) * self.n_tr]);
            if !lad.is_empty() {
                for j in 0..self.n_tr {
                    lad[r] += s.lds[r * self.n_tr + j];
                }
            }
        }
    }
}

impl<T: Real> Nsf<T> {
    /// Context terms W_c c + b of every layer for `rows` standardised contexts.
    pub fn contexts(&self, rows: usize, c: &[T]) -> Vec<Vec<T>> {
        self.layers
            .iter()
            .map(|l| {
                let mut v = vec![T::ZERO; rows * l.first_c.n_out];
                l.first_c.forward(rows, c, &mut v);
                v
            })
            .collect()
    }

    /// Forward (data → noise) in place; adds log|det| to `lad`.
    pub fn forward(&self, rows: usize, y: &mut [T], ctx: &[Vec<T>], lad: &mut [T], s: &mut NsfScratch<T>) {
        let (d, k) = (self.dim, self.bins);
        let bound = T::from_f64(self.tail_bound);
        for (l, ct) in self.layers.iter().zip(ctx) {
            l.params(rows, y, d, ct, s);
            l.apply_splines(rows, d, k, bound, false, y, lad, s);
            permute_rows(rows, d, y, &l.perm, &mut s.tmp);
        }
    }

    /// Inverse (noise → data) in place; adds log|dx/du| to `lad` unless it is empty. Context
    /// terms may hold one row for all rows.
    pub fn inverse(&self, rows: usize, y: &mut [T], ctx: &[Vec<T>], lad: &mut [T], s: &mut NsfScratch<T>) {
        let (d, k) = (self.dim, self.bins);
        let bound = T::from_f64(self.tail_bound);
        for (l, ct) in self.layers.iter().zip(ctx).rev() {
            unpermute_rows(rows, d, y, &l.perm, &mut s.tmp);
            l.params(rows, y, d, ct, s);
            l.apply_splines(rows, d, k, bound, true, y, lad, s);
        }
    }
}
