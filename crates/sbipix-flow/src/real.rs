//! The floating-point types inference runs in (f32 for speed, f64 for reference checks).

/// A float type with the operations the flows need and a matrix product.
pub trait Real: Copy + Send + Sync + PartialOrd + std::fmt::Debug + Default + 'static
    + std::ops::Add<Output = Self> + std::ops::Sub<Output = Self> + std::ops::Mul<Output = Self> + std::ops::Div<Output = Self>
    + std::ops::AddAssign + std::ops::SubAssign + std::ops::MulAssign + std::ops::Neg<Output = Self>
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
}

macro_rules! impl_real {
    ($t:ty, $gemm:path) => {
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

impl_real!(f32, matrixmultiply::sgemm);
impl_real!(f64, matrixmultiply::dgemm);

/// softplus(u) = ln(1 + e^u), returning u itself above 20 (torch's threshold).
#[inline]
pub fn softplus<T: Real>(u: T) -> T {
    if u > T::from_f64(20.0) { u } else { (u.max(T::from_f64(-80.0))).exp().ln_1p() }
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
        assert!((softplus(0.0f64) - 2f64.ln()).abs() < 1e-15);
    }
}
