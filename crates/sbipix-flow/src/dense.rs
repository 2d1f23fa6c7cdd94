//! Dense layers for inference (weights in torch's `[out, in]` layout).

use crate::real::Real;

/// Activation functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Relu,
    Tanh,
}

impl Activation {
    #[inline]
    pub fn apply<T: Real>(self, v: &mut [T]) {
        match self {
            Activation::Relu => v.iter_mut().for_each(|x| *x = x.max(T::ZERO)),
            Activation::Tanh => v.iter_mut().for_each(|x| *x = x.tanh()),
        }
    }
}

/// y = W x + b.
#[derive(Debug, Clone)]
pub struct Linear<T> {
    pub n_in: usize,
    pub n_out: usize,
    /// `[n_out][n_in]`
    pub w: Vec<T>,
    pub b: Vec<T>,
}

impl<T: Real> Linear<T> {
    pub fn new(n_in: usize, n_out: usize, w: Vec<T>, b: Vec<T>) -> Self {
        assert_eq!(w.len(), n_in * n_out);
        assert_eq!(b.len(), n_out);
        Self { n_in, n_out, w, b }
    }

    /// `out[rows × n_out] = x[rows × n_in] Wᵀ + b`.
    pub fn forward(&self, rows: usize, x: &[T], out: &mut [T]) {
        let out = &mut out[..rows * self.n_out];
        for r in 0..rows {
            out[r * self.n_out..(r + 1) * self.n_out].copy_from_slice(&self.b);
        }
        T::gemm_abt(rows, self.n_in, self.n_out, &x[..rows * self.n_in], &self.w, T::ONE, out);
    }

    /// As [`Self::forward`] but adds to `out` instead of the bias.
    pub fn forward_add(&self, rows: usize, x: &[T], out: &mut [T]) {
        T::gemm_abt(rows, self.n_in, self.n_out, &x[..rows * self.n_in], &self.w, T::ONE, &mut out[..rows * self.n_out]);
    }

    pub fn cast<U: Real>(&self) -> Linear<U> {
        Linear {
            n_in: self.n_in,
            n_out: self.n_out,
            w: self.w.iter().map(|v| U::from_f64(v.to_f64())).collect(),
            b: self.b.iter().map(|v| U::from_f64(v.to_f64())).collect(),
        }
    }
}
