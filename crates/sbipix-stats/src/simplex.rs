//! Ascending points of (0, 1) as points of the unit cube, and Dirichlet densities over them.
//!
//! n ascending points 0 < x₁ < … < xₙ < 1 are the cumulative sums of n + 1 spacings on the
//! simplex. Samplers work on the unit cube, so we map the cube onto the ascending points with the
//! transform whose image of the uniform cube is the uniform distribution on ascending tuples (the
//! order statistics of n uniforms, i.e. Dirichlet(1, …, 1) spacings): xₙ = uₙ^(1/n),
//! x_k = x_{k+1} · u_k^(1/k) (each u_k^(1/k) is the largest of k uniforms; Devroye 1986, *Non-
//! Uniform Random Variate Generation*, ch. V.3). It is one-to-one, smooth, and keeps every
//! coordinate's range (0, 1), so the prior need not be rejected into order; a Dirichlet(α) with
//! α ≠ 1 is then a density *relative* to that uniform one, [`ln_dirichlet_over_ordered_uniform`].

/// The ascending points of cube point `u` (each in (0, 1)) into `x` (same length).
pub fn cube_to_ascending(u: &[f64], x: &mut [f64]) {
    let n = u.len();
    assert_eq!(x.len(), n, "cube_to_ascending: u and x differ in length");
    let mut top = 1.0;
    for k in (0..n).rev() {
        top *= u[k].powf(1.0 / (k + 1) as f64);
        x[k] = top;
    }
}

/// The cube point of ascending points `x` (the inverse of [`cube_to_ascending`]): u_k =
/// (x_k / x_{k+1})^k, uₙ = xₙⁿ. Points out of order are taken in sorted order.
pub fn ascending_to_cube(x: &[f64], u: &mut [f64]) {
    let n = x.len();
    assert_eq!(u.len(), n, "ascending_to_cube: x and u differ in length");
    let mut s = x.to_vec();
    crate::sort_f64(&mut s);
    for k in 0..n {
        let next = if k + 1 < n { s[k + 1] } else { 1.0 };
        u[k] = if next > 0.0 { (s[k] / next).clamp(0.0, 1.0).powi(k as i32 + 1) } else { 0.0 };
    }
}

/// ln of the Dirichlet(α, …, α) density of the n + 1 spacings of ascending points `x`, relative to
/// the uniform density n! on ascending tuples that [`cube_to_ascending`] gives: 0 for α = 1,
/// ln Γ((n+1)α) − (n+1) ln Γ(α) − ln n! + (α − 1) Σ ln(spacing) otherwise; −∞ for points out of
/// order or outside (0, 1).
pub fn ln_dirichlet_over_ordered_uniform(x: &[f64], alpha: f64) -> f64 {
    let n = x.len();
    let mut prev = 0.0;
    let mut sum_ln = 0.0;
    for &v in x.iter().chain(std::iter::once(&1.0)) {
        let s = v - prev;
        if s.is_nan() || s <= 0.0 {
            return f64::NEG_INFINITY;
        }
        sum_ln += s.ln();
        prev = v;
    }
    if alpha == 1.0 {
        return 0.0;
    }
    let ln_n_fact = libm::lgamma(n as f64 + 1.0);
    libm::lgamma((n + 1) as f64 * alpha) - (n + 1) as f64 * libm::lgamma(alpha) - ln_n_fact + (alpha - 1.0) * sum_ln
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SplitMix64;

    #[test]
    fn round_trip_and_order() {
        let mut g = SplitMix64::new(3);
        for n in 1..6 {
            for _ in 0..200 {
                let u: Vec<f64> = (0..n).map(|_| 1e-6 + (1.0 - 2e-6) * g.next_f64()).collect();
                let mut x = vec![0.0; n];
                cube_to_ascending(&u, &mut x);
                assert!(x.windows(2).all(|w| w[0] < w[1]) && x[0] > 0.0 && x[n - 1] < 1.0, "{x:?}");
                let mut back = vec![0.0; n];
                ascending_to_cube(&x, &mut back);
                for (a, b) in u.iter().zip(&back) {
                    assert!((a - b).abs() < 1e-12, "{u:?} → {x:?} → {back:?}");
                }
            }
        }
    }

    /// The image of uniform cube points has the order statistics' exact marginals: x_k of n
    /// uniforms is Beta(k, n + 1 − k), mean k/(n+1), variance k(n+1−k)/((n+1)²(n+2)).
    #[test]
    fn uniform_cube_gives_order_statistics() {
        let (n, m) = (3usize, 200_000usize);
        let mut g = SplitMix64::new(17);
        let (mut s1, mut s2) = (vec![0.0; n], vec![0.0; n]);
        let mut x = vec![0.0; n];
        for _ in 0..m {
            let u: Vec<f64> = (0..n).map(|_| g.next_f64()).collect();
            cube_to_ascending(&u, &mut x);
            for k in 0..n {
                s1[k] += x[k];
                s2[k] += x[k] * x[k];
            }
        }
        let np1 = (n + 1) as f64;
        for k in 0..n {
            let kk = (k + 1) as f64;
            let (mean, var) = (s1[k] / m as f64, s2[k] / m as f64 - (s1[k] / m as f64).powi(2));
            let (em, ev) = (kk / np1, kk * (np1 - kk) / (np1 * np1 * (np1 + 1.0)));
            // standard error of the mean √(ev/m) ≈ 5e-4
            assert!((mean - em).abs() < 2.5e-3, "x{k}: mean {mean} vs {em}");
            assert!((var / ev - 1.0).abs() < 0.02, "x{k}: var {var} vs {ev}");
        }
    }

    /// The relative density integrates to one over the cube (so that it is a density), and for
    /// n = 1 is the Beta(α, α) density: x^(α−1)(1−x)^(α−1)/B(α, α).
    #[test]
    fn dirichlet_density_is_normalised() {
        for alpha in [0.5, 1.0, 2.0, 3.5] {
            let x = [0.3];
            let beta = libm::lgamma(alpha) * 2.0 - libm::lgamma(2.0 * alpha);
            let exact = (alpha - 1.0) * (0.3f64.ln() + 0.7f64.ln()) - beta;
            assert!((ln_dirichlet_over_ordered_uniform(&x, alpha) - exact).abs() < 1e-12);
            let mut g = SplitMix64::new(5);
            let m = 400_000;
            let mut xs = [0.0; 3];
            let mean: f64 = (0..m)
                .map(|_| {
                    let u = [g.next_f64(), g.next_f64(), g.next_f64()];
                    cube_to_ascending(&u, &mut xs);
                    ln_dirichlet_over_ordered_uniform(&xs, alpha).exp()
                })
                .sum::<f64>()
                / m as f64;
            assert!((mean - 1.0).abs() < 0.02, "α = {alpha}: ∫ density = {mean}");
        }
        assert_eq!(ln_dirichlet_over_ordered_uniform(&[0.5, 0.4], 2.0), f64::NEG_INFINITY);
    }
}
