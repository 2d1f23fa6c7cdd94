//! Rational-quadratic splines evaluated for a whole batch of coordinates at once: the softmax
//! exponentials of all coordinates go through one vectorised exp, and only the two knot
//! derivatives of the bin in use are computed. Same results as [`crate::rqs`] (tested).

use crate::real::{Real, softplus_fast};
use crate::rqs::{MIN_BIN, MIN_DERIVATIVE};

/// Scratch for [`splines`].
#[derive(Debug, Default)]
pub struct SplineScratch<T> {
    e: Vec<T>,
    cy: Vec<T>,
}

/// Applies the splines (forward, or inverse with `inverse`) to `v[i]`, i < n, with parameters
/// `raw[i·(3K−1)..]` = [widths(K), heights(K), derivatives(K−1)]; adds log|d out/d in| to
/// `ld[i]` unless `ld` is empty (sampling needs no Jacobian).
pub fn splines<T: Real>(raw: &[T], k: usize, bound: T, inverse: bool, v: &mut [T], ld: &mut [T], s: &mut SplineScratch<T>) {
    let want_ld = !ld.is_empty();
    let np = 3 * k - 1;
    let n = v.len();
    // exponentials of max-shifted width and height logits: e[i][0..2K]
    s.e.resize(n * 2 * k, T::ZERO);
    for i in 0..n {
        let r = &raw[i * np..i * np + 2 * k];
        let mw = r[..k].iter().fold(r[0], |a, &b| a.max(b));
        let mh = r[k..].iter().fold(r[k], |a, &b| a.max(b));
        let e = &mut s.e[i * 2 * k..(i + 1) * 2 * k];
        for j in 0..k {
            e[j] = r[j] - mw;
            e[k + j] = r[k + j] - mh;
        }
    }
    T::exp_slice(&mut s.e);
    let two = T::from_f64(2.0);
    let minb = T::from_f64(MIN_BIN);
    let scale = T::ONE - minb * T::from_f64(k as f64);
    let span = two * bound;
    s.cy.resize(k + 1, T::ZERO);
    for i in 0..n {
        let x = v[i];
        if x < -bound || x > bound {
            continue;
        }
        let e = &s.e[i * 2 * k..(i + 1) * 2 * k];
        let (sw, sh) = (e[..k].iter().fold(T::ZERO, |a, &b| a + b), e[k..].iter().fold(T::ZERO, |a, &b| a + b));
        let (iw, ih) = (scale / sw, scale / sh);
        // cumulative knot positions along both axes (branch-free: the bin is the number of
        // interior knots below x)
        let (ea, ia, eb, ib) = if inverse { (&e[k..], ih, &e[..k], iw) } else { (&e[..k], iw, &e[k..], ih) };
        let mut acc = T::ZERO;
        let mut b = 0usize;
        for &ea_j in &ea[..k - 1] {
            acc += minb + ea_j * ia;
            b += ((span * acc - bound) <= x) as usize;
        }
        let mut acca = T::ZERO;
        let mut accb = T::ZERO;
        for j in 0..b {
            acca += minb + ea[j] * ia;
            accb += minb + eb[j] * ib;
        }
        let lo_a = if b == 0 { -bound } else { span * acca - bound };
        let lo_b = if b == 0 { -bound } else { span * accb - bound };
        let hi_a = if b + 1 == k { bound } else { span * (acca + minb + ea[b] * ia) - bound };
        let hi_b = if b + 1 == k { bound } else { span * (accb + minb + eb[b] * ib) - bound };
        let (xk, w, yk, h) = if inverse { (lo_b, hi_b - lo_b, lo_a, hi_a - lo_a) } else { (lo_a, hi_a - lo_a, lo_b, hi_b - lo_b) };
        let rd = &raw[i * np + 2 * k..(i + 1) * np];
        let md = T::from_f64(MIN_DERIVATIVE);
        let d0 = if b == 0 { T::ONE } else { md + softplus_fast(rd[b - 1]) };
        let d1 = if b + 1 == k { T::ONE } else { md + softplus_fast(rd[b]) };
        let sl = h / w;
        let c2 = d1 + d0 - two * sl;
        let t = if inverse {
            let dy = x - yk;
            let a = h * (sl - d0) + dy * c2;
            let bq = h * d0 - dy * c2;
            let c = -sl * dy;
            let disc = (bq * bq - T::from_f64(4.0) * a * c).max(T::ZERO);
            (two * c) / (-bq - disc.sqrt())
        } else {
            (x - xk) / w
        };
        let t1 = t * (T::ONE - t);
        let den = sl + c2 * t1;
        if inverse {
            v[i] = t * w + xk;
        } else {
            v[i] = yk + h * (sl * t * t + d0 * t1) / den;
        }
        if want_ld {
            let dnum = sl * sl * (d1 * t * t + two * sl * t1 + d0 * (T::ONE - t) * (T::ONE - t));
            let logd = dnum.ln() - two * den.ln();
            ld[i] += if inverse { -logd } else { logd };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rqs::{Knots, forward, inverse, knots};

    #[test]
    fn batch_matches_scalar_splines() {
        let k = 8;
        let np = 3 * k - 1;
        let n = 400;
        let raw: Vec<f64> = (0..n * np).map(|i| ((i * 7919) % 37) as f64 / 9.0 - 2.0).collect();
        let xs: Vec<f64> = (0..n).map(|i| -4.2 + 8.4 * i as f64 / (n - 1) as f64).collect();
        for inv in [false, true] {
            let mut v = xs.clone();
            let mut ld = vec![0.0; n];
            splines(&raw, k, 4.0, inv, &mut v, &mut ld, &mut SplineScratch::default());
            let mut kn = Knots::default();
            for i in 0..n {
                knots(&raw[i * np..(i + 1) * np], k, 4.0, &mut kn);
                let (y, l) = if inv { inverse(&kn, 4.0, xs[i]) } else { forward(&kn, 4.0, xs[i]) };
                // the batch path uses a series for softplus (≤ 2e-9 absolute)
                assert!((v[i] - y).abs() < 1e-8 && (ld[i] - l).abs() < 1e-7, "{inv} {i}: {} vs {y}, {} vs {l}", v[i], ld[i]);
            }
        }
    }
}
