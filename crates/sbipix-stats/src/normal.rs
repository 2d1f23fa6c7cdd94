//! The standard normal distribution: draws, Φ and Φ⁻¹.
//!
//! **Draws** are Box–Muller from two uniforms, the cosine branch only (the sine of the pair is
//! discarded: one draw costs two uniforms, which keeps every stream's position simple to reason
//! about). Why not `rand_distr::StandardNormal` (a ziggurat, faster): every seeded result that
//! uses these draws — the refinement and the SMC reference posteriors, integrated photometry's
//! added noise, and every number quoted from them in the documentation — was made with
//! Box–Muller, and a different generator would change them all. (The survey noise of training
//! sets and the flows' base draws have always used `rand_distr`'s ziggurat and keep it.)
//!
//! Φ is from `libm::erfc`; Φ⁻¹ is Acklam's rational approximation refined with one Halley step
//! (relative error ≈ 1e-15).

/// A standard normal deviate from two uniforms, `u1` ∈ (0, 1] and `u2` ∈ [0, 1), by Box–Muller:
/// √(−2 ln u1) · cos(2π u2).
#[inline]
pub fn box_muller(u1: f64, u2: f64) -> f64 {
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A standard normal draw: [`box_muller`] of two uniforms from `rng`, the first kept ≥ 1e-300
/// (a uniform of exactly 0 would give an infinite draw).
pub fn std_normal<R: rand::Rng + ?Sized>(rng: &mut R) -> f64 {
    use rand::RngExt;
    let u1: f64 = rng.random::<f64>().max(1e-300);
    let u2: f64 = rng.random();
    box_muller(u1, u2)
}

/// Φ(x) = P(Z ≤ x).
pub fn cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// Φ⁻¹(p) for 0 < p < 1 (−∞ at p ≤ 0, +∞ at p ≥ 1).
#[allow(clippy::excessive_precision)] // Acklam's published coefficients, kept verbatim
pub fn quantile(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969683028665376e+01,
        2.209460984245205e+02,
        -2.759285104469687e+02,
        1.383577518672690e+02,
        -3.066479806614716e+01,
        2.506628277459239e+00,
    ];
    const B: [f64; 5] =
        [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01];
    const C: [f64; 6] = [
        -7.784894002430293e-03,
        -3.223964580411365e-01,
        -2.400758277161838e+00,
        -2.549732539343734e+00,
        4.374664141464968e+00,
        2.938163982698783e+00,
    ];
    const D: [f64; 4] = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00];
    let plow = 0.02425;
    let x = if p < plow {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - plow {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    // one Halley refinement
    let e = cdf(x) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn known_values() {
        assert!((cdf(0.0) - 0.5).abs() < 1e-16);
        assert!((cdf(1.959963984540054) - 0.975).abs() < 1e-15);
        for p in [1e-10, 0.001, 0.02, 0.3, 0.5, 0.77, 0.99, 1.0 - 1e-9] {
            assert!((cdf(quantile(p)) - p).abs() < 1e-14 * p.max(1e-3), "{p}");
        }
        assert!((quantile(0.975) - 1.959963984540054).abs() < 1e-12);
        assert_eq!(quantile(0.0), f64::NEG_INFINITY);
        assert_eq!(quantile(1.0), f64::INFINITY);
    }

    #[test]
    fn box_muller_exact_points() {
        // 2π is exactly twice π in binary, so callers that wrote 2π·u2 get the same bits
        assert_eq!(2.0 * std::f64::consts::PI, std::f64::consts::TAU);
        assert_eq!(box_muller(1.0, 0.3), 0.0);
        // u1 = e^(−1/2): radius 1; u2 = 0 and 1/2: cos = ±1
        let r1 = (-0.5f64).exp();
        assert!((box_muller(r1, 0.0) - 1.0).abs() < 1e-15);
        assert!((box_muller(r1, 0.5) + 1.0).abs() < 1e-15);
        assert!(box_muller(1e-300, 0.0).is_finite());
    }

    /// 200 000 draws: mean, variance, and the fraction beyond ±1.96 within 5 standard errors
    /// of their exact values (0, 1, 0.05).
    #[test]
    fn draws_are_standard_normal() {
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(17);
        let n = 200_000;
        let x: Vec<f64> = (0..n).map(|_| std_normal(&mut rng)).collect();
        let nf = n as f64;
        let mean = x.iter().sum::<f64>() / nf;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (nf - 1.0);
        // s.e. of the mean 1/√n; of the variance √(2/(n−1)) (χ²); of a fraction √(p(1−p)/n)
        assert!(mean.abs() < 5.0 / nf.sqrt(), "mean {mean}");
        assert!((var - 1.0).abs() < 5.0 * (2.0 / (nf - 1.0)).sqrt(), "variance {var}");
        let tail = x.iter().filter(|v| v.abs() > 1.959963984540054).count() as f64 / nf;
        assert!((tail - 0.05).abs() < 5.0 * (0.05 * 0.95 / nf).sqrt(), "tail {tail}");
    }
}
