//! Dust: the Calzetti et al. (2000) attenuation curve and Draine & Li (2007) emission.

use crate::grids::Dl07Grid;
use crate::sampling::interp;
use serde::{Deserialize, Serialize};

/// A(λ)/A_V of the Calzetti et al. (2000, ApJ 533, 682) starburst attenuation curve, R_V = 4.05:
/// eq. (4) for 0.12–0.63 µm and 0.63–2.2 µm (used up to 3.1 µm, where it reaches zero), a
/// power law k(0.12 µm)(λ/0.12 µm)^−0.77 below 0.12 µm (the extension used by bagpipes), and
/// no attenuation at λ ≥ 3.1 µm.
pub fn calzetti2000_a_over_av(wave_aa: f64) -> f64 {
    const RV: f64 = 4.05;
    let x = wave_aa * 1e-4; // µm
    let k = if wave_aa < 1200.0 {
        let k012 = RV + 2.659 * (-2.156 + 1.509 / 0.12 - 0.198 / (0.12 * 0.12) + 0.011 / (0.12 * 0.12 * 0.12));
        (x / 0.12).powf(-0.77) * k012
    } else if wave_aa < 6300.0 {
        RV + 2.659 * (-2.156 + 1.509 / x - 0.198 / (x * x) + 0.011 / (x * x * x))
    } else if wave_aa < 31000.0 {
        2.659 * (-1.857 + 1.040 / x) + RV
    } else {
        0.0
    };
    k / RV
}

/// Parameters of the Draine & Li (2007) dust emission spectrum.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Dl07Params {
    /// PAH mass fraction q_PAH in per cent.
    pub qpah: f64,
    /// Minimum radiation-field intensity U_min.
    pub umin: f64,
    /// Fraction γ of dust heated by the power-law U_min…U_max component.
    pub gamma: f64,
}

impl Default for Dl07Params {
    /// q_PAH = 2 %, U_min = 1, γ = 0.01: the bagpipes defaults.
    fn default() -> Self {
        Self { qpah: 2.0, umin: 1.0, gamma: 0.01 }
    }
}

/// Bracketing index and weight of the upper neighbour, bagpipes style: `ind` = number of grid
/// values strictly below `v`; weight on grid[ind] = (v − grid[ind−1])/(grid[ind] − grid[ind−1]).
fn bracket(grid: &[f64], v: f64) -> (usize, f64) {
    let ind = grid.partition_point(|&g| g < v).clamp(1, grid.len() - 1);
    let w = (v - grid[ind - 1]) / (grid[ind] - grid[ind - 1]);
    (ind, w.clamp(0.0, 1.0))
}

/// The DL07 spectrum for `p` on `wave_aa`, bilinear in q_PAH and U_min, normalised to unit
/// trapezoid integral over `wave_aa` (so it can be scaled by the absorbed luminosity).
pub fn dl07_spectrum(grid: &Dl07Grid, p: Dl07Params, wave_aa: &[f64]) -> Vec<f64> {
    let (nq, nw, nu) = (grid.qpah.len(), grid.wave_aa.len(), grid.umin.len());
    let (iq, wq) = bracket(&grid.qpah, p.qpah);
    let (iu, wu) = bracket(&grid.umin, p.umin);
    debug_assert!(iq < nq && iu < nu);
    let at = |tab: &[f64], q: usize, w: usize, u: usize| tab[(q * nw + w) * nu + u];
    let model: Vec<f64> = (0..nw)
        .map(|w| {
            let mut only = 0.0;
            let mut umax = 0.0;
            for (q, fq) in [(iq - 1, 1.0 - wq), (iq, wq)] {
                for (u, fu) in [(iu - 1, 1.0 - wu), (iu, wu)] {
                    only += fq * fu * at(&grid.umin_only, q, w, u);
                    umax += fq * fu * at(&grid.umin_umax, q, w, u);
                }
            }
            p.gamma * umax + (1.0 - p.gamma) * only
        })
        .collect();
    let spec: Vec<f64> = wave_aa.iter().map(|&l| interp(l, &grid.wave_aa, &model, 0.0, 0.0)).collect();
    let norm = trapezoid(&spec, wave_aa);
    spec.into_iter().map(|s| s / norm).collect()
}

/// Trapezoid rule ∫ y dx.
pub fn trapezoid(y: &[f64], x: &[f64]) -> f64 {
    y.windows(2).zip(x.windows(2)).map(|(yy, xx)| 0.5 * (yy[0] + yy[1]) * (xx[1] - xx[0])).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calzetti_is_one_at_v_and_continuous() {
        // A(V)/A(V) = 1 at 5500 Å to the accuracy of the published polynomial.
        assert!((calzetti2000_a_over_av(5500.0) - 1.0).abs() < 0.01);
        for edge in [1200.0, 6300.0] {
            let (a, b) = (calzetti2000_a_over_av(edge - 1e-6), calzetti2000_a_over_av(edge + 1e-6));
            assert!((a - b).abs() < 0.01, "{edge}: {a} vs {b}");
        }
        assert!(calzetti2000_a_over_av(30999.0).abs() < 0.002);
        assert_eq!(calzetti2000_a_over_av(40000.0), 0.0);
        // Calzetti (2000) k(λ) at 0.15 µm is ≈ 10.33 (their eq. 4).
        assert!((calzetti2000_a_over_av(1500.0) * 4.05 - 10.33).abs() < 0.02);
    }
}
