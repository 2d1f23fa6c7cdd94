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
    /// The conditional affine map applied before the couplings, if any.
    pub affine: Option<CondAffine<T>>,
}

/// A conditional affine map (a conditional Gaussian when alone): from the context alone an MLP
/// gives a location μ(x), log-scales ℓ(x) and the strictly lower triangle O(x) of
/// M = diag(e^−ℓ) + O; the density direction maps y ↦ a = M (y − μ), so log|det| = −Σ ℓ.
///
/// Why: the posteriors of bright pixels are hundreds of times narrower than the prior (the
/// likelihood-based reference posteriors of `sbipix validate --reference` measure it); centring
/// and scaling them per input is one matrix–vector product here, while splines on a fixed range
/// would need extreme, hard-to-learn knot configurations. The couplings then model the shape.
#[derive(Debug, Clone)]
pub struct CondAffine<T> {
    pub dim: usize,
    /// Hidden layers (ReLU), the first reading the context.
    pub hidden: Vec<Linear<T>>,
    /// Output: μ (dim), ℓ (dim), O row by row (dim·(dim−1)/2).
    pub last: Linear<T>,
}

/// Number of outputs of a [`CondAffine`] for `d` parameters.
pub fn affine_outputs(d: usize) -> usize {
    2 * d + d * (d - 1) / 2
}

/// Log-scales are clipped to this range (a factor e^±12 ≈ 1.6·10⁵), keeping exp finite in f32.
pub const AFFINE_LOG_SCALE_LIMIT: f64 = 12.0;

impl<T: Real> CondAffine<T> {
    /// The map's parameters [rows × affine_outputs] for `rows` standardised contexts.
    pub fn params(&self, rows: usize, c: &[T]) -> Vec<T> {
        let mut h = c[..rows * self.hidden.first().map_or(self.last.n_in, |l| l.n_in)].to_vec();
        let mut h2 = Vec::new();
        for l in &self.hidden {
            h2.resize(rows * l.n_out, T::ZERO);
            l.forward(rows, &h, &mut h2);
            Activation::Relu.apply(&mut h2);
            std::mem::swap(&mut h, &mut h2);
        }
        let mut out = vec![T::ZERO; rows * self.last.n_out];
        self.last.forward(rows, &h, &mut out);
        let (d, lim) = (self.dim, T::from_f64(AFFINE_LOG_SCALE_LIMIT));
        for r in 0..rows {
            for v in &mut out[r * self.last.n_out + d..r * self.last.n_out + 2 * d] {
                *v = v.max(T::ZERO - lim).min(lim);
            }
        }
        out
    }

    /// Density direction in place: y ← M (y − μ); adds −Σℓ to `lad`. `p` holds one row of
    /// parameters per row of `y`, or one row for all.
    pub fn forward(&self, rows: usize, y: &mut [T], p: &[T], lad: &mut [T]) {
        let (d, np) = (self.dim, self.last.n_out);
        let mut v = vec![T::ZERO; d];
        for r in 0..rows {
            let pr = if p.len() == np { p } else { &p[r * np..(r + 1) * np] };
            let row = &mut y[r * d..(r + 1) * d];
            for i in 0..d {
                v[i] = row[i] - pr[i];
            }
            let mut o = 2 * d;
            for i in 0..d {
                let mut a = (T::ZERO - pr[d + i]).exp() * v[i];
                for vj in v.iter().take(i) {
                    a += pr[o] * *vj;
                    o += 1;
                }
                row[i] = a;
                lad[r] -= pr[d + i];
            }
        }
    }

    /// Sampling direction in place: y ← μ + M⁻¹ y (forward substitution); adds Σℓ to `lad`
    /// unless it is empty.
    pub fn inverse(&self, rows: usize, y: &mut [T], p: &[T], lad: &mut [T]) {
        let (d, np) = (self.dim, self.last.n_out);
        let mut v = vec![T::ZERO; d];
        for r in 0..rows {
            let pr = if p.len() == np { p } else { &p[r * np..(r + 1) * np] };
            let row = &mut y[r * d..(r + 1) * d];
            let mut o = 2 * d;
            for i in 0..d {
                let mut a = row[i];
                for vj in v.iter().take(i) {
                    a -= pr[o] * *vj;
                    o += 1;
                }
                v[i] = a * pr[d + i].exp();
            }
            for i in 0..d {
                row[i] = v[i] + pr[i];
                if !lad.is_empty() {
                    lad[r] += pr[d + i];
                }
            }
        }
    }

    pub fn cast<U: Real>(&self) -> CondAffine<U> {
        CondAffine { dim: self.dim, hidden: self.hidden.iter().map(|l| l.cast()).collect(), last: self.last.cast() }
    }
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
    /// Context terms W_c c + b of every layer for `rows` standardised contexts, then (with an
    /// affine map) the affine map's parameters.
    pub fn contexts(&self, rows: usize, c: &[T]) -> Vec<Vec<T>> {
        let mut v: Vec<Vec<T>> = self
            .layers
            .iter()
            .map(|l| {
                let mut v = vec![T::ZERO; rows * l.first_c.n_out];
                l.first_c.forward(rows, c, &mut v);
                v
            })
            .collect();
        if let Some(a) = &self.affine {
            v.push(a.params(rows, c));
        }
        v
    }

    /// Forward (data → noise) in place; adds log|det| to `lad`.
    pub fn forward(&self, rows: usize, y: &mut [T], ctx: &[Vec<T>], lad: &mut [T], s: &mut NsfScratch<T>) {
        let (d, k) = (self.dim, self.bins);
        let bound = T::from_f64(self.tail_bound);
        if let Some(a) = &self.affine {
            a.forward(rows, y, &ctx[self.layers.len()], lad);
        }
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
        if let Some(a) = &self.affine {
            a.inverse(rows, y, &ctx[self.layers.len()], lad);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn affine(d: usize, dx: usize, seed: u64) -> CondAffine<f64> {
        let mut s = seed;
        let mut u = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64) / (1u64 << 53) as f64 - 0.5
        };
        let mut lin = |i: usize, o: usize| Linear::new(i, o, (0..i * o).map(|_| u()).collect(), (0..o).map(|_| u()).collect());
        CondAffine { dim: d, hidden: vec![lin(dx, 8), lin(8, 8)], last: lin(8, affine_outputs(d)) }
    }

    /// inverse ∘ forward = identity, and the log-determinant is that of the numerical Jacobian.
    #[test]
    fn affine_inverts_and_its_jacobian_is_right() {
        let (d, dx) = (4, 3);
        let a = affine(d, dx, 7);
        let c = [0.3, -1.2, 0.8];
        let p = a.params(1, &c);
        let y0 = [0.5, -0.7, 1.9, 0.1];
        let mut y = y0.to_vec();
        let mut lad = [0.0];
        a.forward(1, &mut y, &p, &mut lad);
        let mut back = y.clone();
        let mut lad_inv = [0.0];
        a.inverse(1, &mut back, &p, &mut lad_inv);
        for i in 0..d {
            assert!((back[i] - y0[i]).abs() < 1e-12, "{back:?}");
        }
        assert!((lad[0] + lad_inv[0]).abs() < 1e-12);
        // numerical Jacobian of the forward map (lower triangular): log|det| = Σ log|J_ii|
        let h = 1e-6;
        let mut logdet = 0.0;
        for i in 0..d {
            let (mut yp, mut ym) = (y0.to_vec(), y0.to_vec());
            yp[i] += h;
            ym[i] -= h;
            a.forward(1, &mut yp, &p, &mut [0.0]);
            a.forward(1, &mut ym, &p, &mut [0.0]);
            logdet += ((yp[i] - ym[i]) / (2.0 * h)).abs().ln();
            // no output before i depends on y_i
            for j in 0..i {
                assert!((yp[j] - ym[j]).abs() < 1e-9);
            }
        }
        assert!((logdet - lad[0]).abs() < 1e-6, "{logdet} vs {}", lad[0]);
    }
}
