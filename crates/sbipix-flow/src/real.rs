//! The floating-point types inference runs in (f32 for speed, f64 for reference checks).

/// A float type with the operations the flows need and a matrix product.
pub trait Real:
    Copy
    + Send
    + Sync
    + PartialOrd
    + std::fmt::Debug
    + Default
    + 'static
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + std::ops::Neg<Output = Self>
{
    const ZERO: Self;
    const ONE: Self;
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn ln_1p(self) -> Self;
    fn tanh(self) -> Self;
    fn sqrt(self) -> Self;
    fn abs(self) -> Self;
    fn max(self, o: Self) -> Self;
    fn min(self, o: Self) -> Self;
    /// C[m×n] = A[m×k] · Bᵀ where B is stored [n×k] row-major (torch `Linear` weights), plus
    /// `beta`·C.
    fn gemm_abt(m: usize, k: usize, n: usize, a: &[Self], b: &[Self], beta: Self, c: &mut [Self]);
    /// e^v for every element, in place (f32: a vectorised polynomial, relative error < 2e-7).
    fn exp_slice(v: &mut [Self]) {
        v.iter_mut().for_each(|x| *x = x.exp());
    }
}

macro_rules! impl_real {
    ($t:ty, $gemm:path, $exps:path) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            #[inline]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline]
            fn ln_1p(self) -> Self {
                <$t>::ln_1p(self)
            }
            #[inline]
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            #[inline]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline]
            fn max(self, o: Self) -> Self {
                <$t>::max(self, o)
            }
            #[inline]
            fn min(self, o: Self) -> Self {
                <$t>::min(self, o)
            }
            fn exp_slice(v: &mut [Self]) {
                $exps(v)
            }
            fn gemm_abt(m: usize, k: usize, n: usize, a: &[Self], b: &[Self], beta: Self, c: &mut [Self]) {
                debug_assert!(a.len() >= m * k && b.len() >= n * k && c.len() >= m * n);
                // SAFETY: the slices hold at least m·k, n·k and m·n elements with the strides given.
                unsafe {
                    $gemm(m, k, n, 1.0, a.as_ptr(), k as isize, 1, b.as_ptr(), 1, k as isize, beta, c.as_mut_ptr(), n as isize, 1);
                }
            }
        }
    };
}

impl_real!(f32, sgemm_gemm_crate, fast_exp_f32_slice);

/// f32 products through the `gemm` crate (faster than matrixmultiply for these shapes: no
/// packing of small operands; measured in the flow benchmark).
#[allow(clippy::too_many_arguments)]
unsafe fn sgemm_gemm_crate(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: *const f32,
    rsa: isize,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
) {
    // matrixmultiply's convention: C = alpha·A·B + beta·C; gemm's: dst = alpha·dst + beta·lhs·rhs
    // SAFETY: forwarded from the caller, same pointers and strides.
    unsafe {
        gemm::gemm(m, n, k, c, csc, rsc, beta != 0.0, a, csa, rsa, b, csb, rsb, beta, alpha, false, false, false, gemm::Parallelism::None)
    }
}
impl_real!(f64, matrixmultiply::dgemm, std_exp_slice);

fn std_exp_slice(v: &mut [f64]) {
    v.iter_mut().for_each(|x| *x = x.exp());
}

/// Vectorisable e^x for f32: x = n ln2 + r (Cody–Waite, |r| ≤ ln2/2), e^r by a degree-6
/// polynomial (Taylor), 2^n through the exponent bits. Inputs are clamped to [−87, 88].
#[inline(always)]
fn fast_exp_f32_body(v: &mut [f32]) {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    for x in v.iter_mut() {
        let xc = x.clamp(-87.0, 88.0);
        let n = (xc * LOG2E).round();
        let r = xc - n * LN2_HI - n * LN2_LO;
        let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
        let bits = (((n as i32) + 127) as u32) << 23;
        *x = p * f32::from_bits(bits);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fast_exp_f32_avx2(v: &mut [f32]) {
    fast_exp_f32_body(v)
}

fn fast_exp_f32_slice(v: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports the features the function was compiled for.
            unsafe { fast_exp_f32_avx2(v) };
            return;
        }
    }
    fast_exp_f32_body(v)
}

/// softplus(u) = ln(1 + e^u), returning u itself above 20 (torch's threshold).
#[inline]
pub fn softplus<T: Real>(u: T) -> T {
    if u > T::from_f64(20.0) { u } else { (u.max(T::from_f64(-80.0))).exp().ln_1p() }
}

/// softplus for the spline derivatives: max(u, 0) + ln(1 + e^(−|u|)), with ln(1 + z) for
/// z ∈ (0, 1] from the series 2·atanh(z/(2 + z)) (eight terms; absolute error < 2e-9).
#[inline]
pub fn softplus_fast<T: Real>(u: T) -> T {
    let z = (-u.abs()).exp();
    let s = z / (T::from_f64(2.0) + z);
    let s2 = s * s;
    let series = s
        * (T::ONE
            + s2 * (T::from_f64(1.0 / 3.0)
                + s2 * (T::from_f64(0.2)
                    + s2 * (T::from_f64(1.0 / 7.0)
                        + s2 * (T::from_f64(1.0 / 9.0)
                            + s2 * (T::from_f64(1.0 / 11.0) + s2 * (T::from_f64(1.0 / 13.0) + s2 * T::from_f64(1.0 / 15.0))))))));
    u.max(T::ZERO) + T::from_f64(2.0) * series
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemm_abt_matches_naive() {
        let (m, k, n) = (3, 4, 2);
        let a: Vec<f64> = (0..m * k).map(|i| i as f64 * 0.5 - 1.0).collect();
        let b: Vec<f64> = (0..n * k).map(|i| (i as f64).sin()).collect();
        let mut c = vec![1.0; m * n];
        f64::gemm_abt(m, k, n, &a, &b, 1.0, &mut c);
        for i in 0..m {
            for j in 0..n {
                let s: f64 = (0..k).map(|p| a[i * k + p] * b[j * k + p]).sum::<f64>() + 1.0;
                assert!((c[i * n + j] - s).abs() < 1e-12);
            }
        }
        assert_eq!(softplus(30.0f64), 30.0);
        let mut v: Vec<f32> = (0..2001).map(|i| -80.0 + 0.08 * i as f32).collect();
        let want: Vec<f64> = v.iter().map(|x| (*x as f64).exp()).collect();
        f32::exp_slice(&mut v);
        for (a, b) in v.iter().zip(&want) {
            assert!(((*a as f64) / b - 1.0).abs() < 3e-7, "{a} vs {b}");
        }
        assert!((softplus(0.0f64) - 2f64.ln()).abs() < 1e-15);
        for i in 0..=400 {
            let u = -30.0 + 0.15 * i as f64;
            assert!((softplus_fast(u) - softplus(u)).abs() < 2e-9, "{u}");
        }
    }
}
