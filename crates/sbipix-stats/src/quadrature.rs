//! Gauss–Legendre quadrature.
//!
//! Nodes and weights by Newton's iteration on the Legendre polynomial from the Chebyshev-like
//! first guess cos(π(i − ¼)/(n + ½)) (Numerical Recipes §4.6). Written here rather than taken
//! from `gauss-quad`, which brings nalgebra for these twenty lines.

/// The `n` nodes and weights of Gauss–Legendre quadrature on [−1, 1], nodes ascending:
/// ∫₋₁¹ f ≈ Σ wᵢ f(xᵢ), exact for polynomials of degree ≤ 2n − 1.
pub fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    assert!(n >= 1, "at least one node");
    let mut x = vec![0.0; n];
    let mut w = vec![0.0; n];
    let m = n.div_ceil(2);
    for i in 0..m {
        let mut z = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut dp = 0.0;
        for _ in 0..100 {
            // P_n(z) by the three-term recurrence, and its derivative
            let (mut p0, mut p1) = (1.0, 0.0);
            for j in 0..n {
                let p2 = p1;
                p1 = p0;
                p0 = ((2 * j + 1) as f64 * z * p1 - j as f64 * p2) / (j + 1) as f64;
            }
            dp = n as f64 * (z * p0 - p1) / (z * z - 1.0);
            let dz = p0 / dp;
            z -= dz;
            if dz.abs() < 1e-15 {
                break;
            }
        }
        x[i] = -z;
        x[n - 1 - i] = z;
        w[i] = 2.0 / ((1.0 - z * z) * dp * dp);
        w[n - 1 - i] = w[i];
    }
    (x, w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_for_polynomials_up_to_degree_2n_minus_1() {
        for n in [1, 2, 5, 12, 24] {
            let (x, w) = gauss_legendre(n);
            for k in 0..2 * n {
                let q: f64 = x.iter().zip(&w).map(|(x, w)| w * x.powi(k as i32)).sum();
                let exact = if k % 2 == 1 { 0.0 } else { 2.0 / (k + 1) as f64 };
                assert!((q - exact).abs() < 1e-13, "n {n}, x^{k}: {q} vs {exact}");
            }
            assert!(x.windows(2).all(|p| p[0] < p[1]));
        }
        // a known node: n = 2 → ±1/√3
        let (x, _) = gauss_legendre(2);
        assert!((x[1] - 1.0 / 3f64.sqrt()).abs() < 1e-15);
    }
}
