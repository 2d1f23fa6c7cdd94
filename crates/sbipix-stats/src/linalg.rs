//! Dense linear algebra for the small symmetric positive-definite systems of sbipix (covariances
//! of a few parameters, Gram matrices of a handful of points): Cholesky factorisation,
//! triangular solves, the inverse from a factor, normal equations.
//!
//! Matrices are row-major `n × n` slices of `f64`; a Cholesky factor L is lower triangular
//! (A = L Lᵀ) with zeros above the diagonal.
//!
//! **Summation order.** Every entry of L and every step of a triangular solve subtracts an inner
//! product. Two orders are in use, and each caller keeps the one its results were made with, to
//! the last bit ([`Summation`]): the refinement, the SMC moves and the survey copula sum each
//! inner product first ([`Summation::Accumulated`]); dense_basis' Gaussian-process smoother
//! subtracts term by term ([`Summation::Running`]), so its star-formation histories — and every
//! training set drawn from the dense-basis prior — stay what they were. Both are the textbook
//! (Cholesky–Banachiewicz) algorithm; they differ only in rounding.

/// How the inner products of a Cholesky factorisation or a triangular solve are subtracted
/// (see the module documentation): the same algorithm, two roundings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Summation {
    /// a − (Σₖ xₖ yₖ): the inner product summed first, left to right, then subtracted.
    Accumulated,
    /// ((a − x₀ y₀) − x₁ y₁) − …: each term subtracted in turn.
    Running,
}

impl Summation {
    /// `a` minus the inner product of the terms, in this order.
    #[inline]
    fn subtract(self, a: f64, terms: impl Iterator<Item = f64>) -> f64 {
        match self {
            Summation::Accumulated => a - terms.sum::<f64>(),
            Summation::Running => terms.fold(a, |acc, t| acc - t),
        }
    }
}

/// Lower Cholesky factor L (row-major, A = L Lᵀ) of the symmetric positive-definite `n × n`
/// matrix `a` (only its lower triangle is read), inner products [`Summation::Accumulated`].
/// None when a pivot is not positive and finite (A not positive definite, or not finite).
pub fn cholesky(a: &[f64], n: usize) -> Option<Vec<f64>> {
    cholesky_with(a, n, Summation::Accumulated)
}

/// [`cholesky`] with the inner products subtracted in the given order.
pub fn cholesky_with(a: &[f64], n: usize, summation: Summation) -> Option<Vec<f64>> {
    if a.len() != n * n {
        return None;
    }
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s = summation.subtract(a[i * n + j], (0..j).map(|k| l[i * n + k] * l[j * n + k]));
            if i == j {
                if !(s > 0.0 && s.is_finite()) {
                    return None;
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    Some(l)
}

/// Solves L y = b by forward substitution, L lower triangular (row-major `n × n`, non-zero
/// diagonal).
pub fn solve_lower(l: &[f64], b: &[f64], n: usize, summation: Summation) -> Vec<f64> {
    let mut y = vec![0.0; n];
    for i in 0..n {
        y[i] = summation.subtract(b[i], (0..i).map(|k| l[i * n + k] * y[k])) / l[i * n + i];
    }
    y
}

/// Solves Lᵀ x = y by back substitution, L lower triangular (row-major `n × n`, non-zero
/// diagonal).
pub fn solve_lower_transposed(l: &[f64], y: &[f64], n: usize, summation: Summation) -> Vec<f64> {
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        x[i] = summation.subtract(y[i], (i + 1..n).map(|k| l[k * n + i] * x[k])) / l[i * n + i];
    }
    x
}

/// Solves A x = b from the Cholesky factor L of A (A = L Lᵀ).
pub fn solve_cholesky(l: &[f64], b: &[f64], n: usize, summation: Summation) -> Vec<f64> {
    let y = solve_lower(l, b, n, summation);
    solve_lower_transposed(l, &y, n, summation)
}

/// Solves A x = b for symmetric positive-definite A (`n × n`, row-major); None if A is not.
pub fn solve_spd(a: &[f64], b: &[f64], n: usize) -> Option<Vec<f64>> {
    let l = cholesky(a, n)?;
    Some(solve_cholesky(&l, b, n, Summation::Accumulated))
}

/// A⁻¹ from the Cholesky factor L of A. A is formed again as L Lᵀ and solved for each column of
/// the identity with [`solve_spd`] (which factorises it anew): the refinement's Laplace
/// covariances were made this way and are kept bit for bit. A column is zero where the formed
/// matrix is not positive definite.
pub fn inverse_from_cholesky(l: &[f64], n: usize) -> Vec<f64> {
    let mut inv = vec![0.0; n * n];
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            a[i * n + j] = (0..=i.min(j)).map(|k| l[i * n + k] * l[j * n + k]).sum();
        }
    }
    for c in 0..n {
        let e: Vec<f64> = (0..n).map(|i| if i == c { 1.0 } else { 0.0 }).collect();
        let x = solve_spd(&a, &e, n).unwrap_or_else(|| vec![0.0; n]);
        for i in 0..n {
            inv[i * n + c] = x[i];
        }
    }
    inv
}

/// ln det A from the Cholesky factor L of A: 2 Σ ln Lᵢᵢ.
pub fn log_det_from_cholesky(l: &[f64], n: usize) -> f64 {
    2.0 * (0..n).map(|i| l[i * n + i].ln()).sum::<f64>()
}

/// The normal equations of a least-squares problem: JᵀJ (`cols × cols`, row-major) and Jᵀr for
/// the Jacobian `jac` (`rows × cols`, row-major) and residuals `r` (`rows`).
pub fn normal_equations(jac: &[f64], r: &[f64], rows: usize, cols: usize) -> (Vec<f64>, Vec<f64>) {
    let d = cols;
    let mut a = vec![0.0; d * d];
    let mut g = vec![0.0; d];
    for b in 0..rows {
        let row = &jac[b * d..(b + 1) * d];
        for i in 0..d {
            g[i] += row[i] * r[b];
            for j in 0..=i {
                a[i * d + j] += row[i] * row[j];
            }
        }
    }
    for i in 0..d {
        for j in 0..i {
            a[j * d + i] = a[i * d + j];
        }
    }
    (a, g)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A = L Lᵀ with L = [[2, 0, 0], [1, 3, 0], [−1, 2, 4]] (all entries exact in binary).
    const L: [f64; 9] = [2.0, 0.0, 0.0, 1.0, 3.0, 0.0, -1.0, 2.0, 4.0];
    const A: [f64; 9] = [4.0, 2.0, -2.0, 2.0, 10.0, 5.0, -2.0, 5.0, 21.0];

    #[test]
    fn cholesky_of_a_known_matrix() {
        for s in [Summation::Accumulated, Summation::Running] {
            assert_eq!(cholesky_with(&A, 3, s).unwrap(), L.to_vec());
        }
        assert_eq!(cholesky(&[9.0], 1).unwrap(), vec![3.0]);
        assert!(cholesky(&[], 0).unwrap().is_empty());
        // indefinite, singular, not finite, wrong size
        assert!(cholesky(&[1.0, 2.0, 2.0, 1.0], 2).is_none());
        assert!(cholesky(&[1.0, 1.0, 1.0, 1.0], 2).is_none());
        assert!(cholesky(&[f64::NAN, 0.0, 0.0, 1.0], 2).is_none());
        assert!(cholesky(&[f64::INFINITY, 0.0, 0.0, 1.0], 2).is_none());
        assert!(cholesky(&[1.0, 0.0, 0.0], 2).is_none());
        assert!(log_det_from_cholesky(&L, 3).to_bits() == (2.0 * (2.0f64.ln() + 3.0f64.ln() + 4.0f64.ln())).to_bits());
    }

    #[test]
    fn solves_a_known_system() {
        // A x = b with x = [1, −2, 0.5]: b = A x
        let x = [1.0, -2.0, 0.5];
        let b: Vec<f64> = (0..3).map(|i| (0..3).map(|j| A[i * 3 + j] * x[j]).sum()).collect();
        assert_eq!(b, vec![-1.0, -15.5, -1.5]);
        for s in [Summation::Accumulated, Summation::Running] {
            let got = solve_cholesky(&L, &b, 3, s);
            for i in 0..3 {
                assert!((got[i] - x[i]).abs() < 1e-14, "{s:?}: {got:?}");
            }
            // the triangular halves: L y = b, then Lᵀ x = y
            let y = solve_lower(&L, &b, 3, s);
            assert_eq!(y, vec![-0.5, -5.0, 2.0]);
            assert_eq!(solve_lower_transposed(&L, &y, 3, s), x.to_vec());
        }
        assert!(solve_spd(&[1.0, 2.0, 2.0, 1.0], &[1.0, 1.0], 2).is_none());
        // the dense_basis system: [[4, 2], [2, 3]] x = [2, 1] → x = [0.5, 0]
        let l = cholesky_with(&[4.0, 2.0, 2.0, 3.0], 2, Summation::Running).unwrap();
        assert_eq!(solve_cholesky(&l, &[2.0, 1.0], 2, Summation::Running), vec![0.5, 0.0]);
    }

    #[test]
    fn the_two_summation_orders_round_differently() {
        // 1 − 2⁻⁵⁴ − 2⁻⁵⁴: term by term each subtraction is a tie that rounds back to 1; summed
        // first, 2⁻⁵³ is subtracted exactly.
        let t = 2f64.powi(-27);
        let acc = Summation::Accumulated.subtract(1.0, [t, t].iter().map(|x| x * t));
        let run = Summation::Running.subtract(1.0, [t, t].iter().map(|x| x * t));
        assert_eq!(run, 1.0);
        assert_eq!(acc, 1.0 - 2f64.powi(-53));
    }

    #[test]
    fn inverse_and_normal_equations() {
        let inv = inverse_from_cholesky(&L, 3);
        for i in 0..3 {
            for j in 0..3 {
                let v: f64 = (0..3).map(|k| A[i * 3 + k] * inv[k * 3 + j]).sum();
                assert!((v - if i == j { 1.0 } else { 0.0 }).abs() < 1e-14, "{i} {j}: {v}");
            }
        }
        // J = [[1, 2], [3, 4], [5, 6]], r = [1, −1, 2]: JᵀJ = [[35, 44], [44, 56]], Jᵀr = [8, 10]
        let (a, g) = normal_equations(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[1.0, -1.0, 2.0], 3, 2);
        assert_eq!(a, vec![35.0, 44.0, 44.0, 56.0]);
        assert_eq!(g, vec![8.0, 10.0]);
    }
}
