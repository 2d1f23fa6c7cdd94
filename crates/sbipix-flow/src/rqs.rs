//! Monotone rational-quadratic splines (Durkan et al. 2019, "Neural Spline Flows", eqs. 4–8),
//! on [−B, B] with identity (linear) tails outside, as in nflows' `unconstrained_rational_quadratic_spline`.
//!
//! A spline with K bins is set by 3K − 1 unconstrained numbers: K bin widths, K bin heights (each
//! through a softmax, with a minimum of `MIN_BIN` of the range) and K − 1 interior knot
//! derivatives (softplus + `MIN_DERIVATIVE`); the derivative at ±B is 1 so the tails join smoothly.

use crate::real::{Real, softplus};

/// Smallest bin width/height as a fraction of the range.
pub const MIN_BIN: f64 = 1e-3;
/// Smallest knot derivative.
pub const MIN_DERIVATIVE: f64 = 1e-3;

/// Knots of one spline: positions, values and derivatives (K + 1 each).
#[derive(Debug, Clone, Default)]
pub struct Knots<T> {
    pub x: Vec<T>,
    pub y: Vec<T>,
    pub d: Vec<T>,
}

/// Builds the knots from the 3K − 1 unconstrained parameters `raw` = [widths(K), heights(K),
/// derivatives(K−1)] on [−B, B].
pub fn knots<T: Real>(raw: &[T], k: usize, bound: T, out: &mut Knots<T>) {
    debug_assert_eq!(raw.len(), 3 * k - 1);
    let cum = |logits: &[T], dst: &mut Vec<T>| {
        let m = logits.iter().fold(logits[0], |a, &b| a.max(b));
        let e: Vec<T> = logits.iter().map(|&v| (v - m).exp()).collect();
        let s = e.iter().fold(T::ZERO, |a, &b| a + b);
        let min = T::from_f64(MIN_BIN);
        let scale = T::ONE - min * T::from_f64(k as f64);
        dst.clear();
        dst.push(-bound);
        let mut acc = T::ZERO;
        for (i, v) in e.iter().enumerate() {
            acc += min + scale * (*v / s);
            dst.push(if i + 1 == k { bound } else { T::from_f64(2.0) * bound * acc - bound });
        }
    };
    cum(&raw[..k], &mut out.x);
    cum(&raw[k..2 * k], &mut out.y);
    out.d.clear();
    out.d.push(T::ONE);
    for &v in &raw[2 * k..] {
        out.d.push(T::from_f64(MIN_DERIVATIVE) + softplus(v));
    }
    out.d.push(T::ONE);
}

/// Bin of `v` among knots `xs` (xs[b] ≤ v < xs[b+1]), clamped to [0, K−1].
#[inline]
fn bin<T: Real>(xs: &[T], v: T) -> usize {
    let k = xs.len() - 1;
    let mut b = 0;
    while b + 1 < k && v >= xs[b + 1] {
        b += 1;
    }
    b
}

/// Forward map and log|dy/dx| at `x`.
#[inline]
pub fn forward<T: Real>(kn: &Knots<T>, bound: T, x: T) -> (T, T) {
    if x < -bound || x > bound {
        return (x, T::ZERO);
    }
    let b = bin(&kn.x, x);
    let (xk, yk) = (kn.x[b], kn.y[b]);
    let (w, h) = (kn.x[b + 1] - xk, kn.y[b + 1] - yk);
    let s = h / w;
    let (d0, d1) = (kn.d[b], kn.d[b + 1]);
    let t = (x - xk) / w;
    let t1 = t * (T::ONE - t);
    let num = h * (s * t * t + d0 * t1);
    let den = s + (d1 + d0 - T::from_f64(2.0) * s) * t1;
    let y = yk + num / den;
    let dnum = s * s * (d1 * t * t + T::from_f64(2.0) * s * t1 + d0 * (T::ONE - t) * (T::ONE - t));
    (y, dnum.ln() - T::from_f64(2.0) * den.ln())
}

/// Inverse map at `y` and log|dx/dy| (= −log|dy/dx| at the preimage).
#[inline]
pub fn inverse<T: Real>(kn: &Knots<T>, bound: T, y: T) -> (T, T) {
    if y < -bound || y > bound {
        return (y, T::ZERO);
    }
    let b = bin(&kn.y, y);
    let (xk, yk) = (kn.x[b], kn.y[b]);
    let (w, h) = (kn.x[b + 1] - xk, kn.y[b + 1] - yk);
    let s = h / w;
    let (d0, d1) = (kn.d[b], kn.d[b + 1]);
    let two = T::from_f64(2.0);
    let dy = y - yk;
    let c2 = d1 + d0 - two * s;
    let a = h * (s - d0) + dy * c2;
    let bq = h * d0 - dy * c2;
    let c = -s * dy;
    let disc = (bq * bq - T::from_f64(4.0) * a * c).max(T::ZERO);
    let t = (two * c) / (-bq - disc.sqrt());
    let x = t * w + xk;
    let t1 = t * (T::ONE - t);
    let den = s + c2 * t1;
    let dnum = s * s * (d1 * t * t + two * s * t1 + d0 * (T::ONE - t) * (T::ONE - t));
    (x, -(dnum.ln() - two * den.ln()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_inverts_and_jacobian_is_the_derivative() {
        let k = 8;
        let raw: Vec<f64> = (0..3 * k - 1).map(|i| ((i * 7919) % 13) as f64 / 5.0 - 1.2).collect();
        let mut kn = Knots::default();
        knots(&raw, k, 3.0, &mut kn);
        assert_eq!(kn.x[0], -3.0);
        assert_eq!(kn.x[k], 3.0);
        for i in 0..=600 {
            let x = -3.5 + 7.0 * i as f64 / 600.0;
            let (y, ld) = forward(&kn, 3.0, x);
            let (x2, ild) = inverse(&kn, 3.0, y);
            assert!((x2 - x).abs() < 1e-10, "{x} → {y} → {x2}");
            assert!((ld + ild).abs() < 1e-9);
            // numerical derivative
            let h = 1e-6;
            if x.abs() < 2.99 {
                let (yp, _) = forward(&kn, 3.0, x + h);
                let (ym, _) = forward(&kn, 3.0, x - h);
                let num = ((yp - ym) / (2.0 * h)).ln();
                assert!((num - ld).abs() < 1e-5, "{x}: {num} vs {ld}");
            }
        }
        // monotone and continuous at the knots
        let ys: Vec<f64> = (0..1000).map(|i| forward(&kn, 3.0, -3.0 + 6.0 * i as f64 / 999.0).0).collect();
        assert!(ys.windows(2).all(|w| w[1] > w[0]));
    }
}
