//! Absorption by the intergalactic medium: Inoue et al. (2014, MNRAS 442, 1805) and
//! Madau (1995, ApJ 441, 18). Transmission as a function of rest wavelength and redshift.

use crate::constants::LYMAN_ALPHA_AA;
use crate::grids::InoueLine;
use serde::{Deserialize, Serialize};

/// Which IGM model to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum IgmModel {
    /// Inoue et al. (2014): Lyman series (Table 2 coefficients) and Lyman continuum of the
    /// Lyα forest and damped Lyα systems. The default.
    #[default]
    Inoue2014,
    /// Madau (1995): Lyman α–δ line blanketing (his eq. 15) and the Lyman-continuum
    /// approximation of his footnote 3.
    Madau1995,
    /// No IGM absorption.
    None,
}

impl IgmModel {
    pub fn name(self) -> &'static str {
        match self {
            IgmModel::Inoue2014 => "inoue2014",
            IgmModel::Madau1995 => "madau1995",
            IgmModel::None => "none",
        }
    }
}

/// The Lyman limit used by Inoue et al. (2014), Å.
const INOUE_LYMAN_LIMIT_AA: f64 = 911.8;

/// Inoue et al. (2014) optical depth at rest wavelength `rest_aa` for a source at `z`.
pub fn inoue2014_tau(lines: &[InoueLine], rest_aa: f64, z: f64) -> f64 {
    let zp1 = 1.0 + z;
    let lobs = rest_aa * zp1;
    let mut tau = 0.0;
    for l in lines {
        let lj = l.wave_aa;
        if lobs <= lj || lobs >= lj * zp1 {
            continue;
        }
        let r = lobs / lj;
        // Lyα forest, Lyman series (eq. 21)
        tau += if lobs < 2.2 * lj {
            l.a_laf[0] * r.powf(1.2)
        } else if lobs < 5.7 * lj {
            l.a_laf[1] * r.powf(3.7)
        } else {
            l.a_laf[2] * r.powf(5.5)
        };
        // DLA, Lyman series (eq. 22)
        tau += if lobs < 3.0 * lj { l.a_dla[0] * r * r } else { l.a_dla[1] * r * r * r };
    }
    let ll = INOUE_LYMAN_LIMIT_AA;
    if lobs > ll && lobs < ll * zp1 {
        let x = lobs / ll;
        // Lyα forest, Lyman continuum (eqs. 25–27)
        tau += if z < 1.2 {
            0.325 * (x.powf(1.2) - zp1.powf(-0.9) * x.powf(2.1))
        } else if z < 4.7 {
            if x < 2.2 {
                2.55e-2 * zp1.powf(1.6) * x.powf(2.1) + 0.325 * x.powf(1.2) - 0.25 * x.powf(2.1)
            } else {
                2.55e-2 * (zp1.powf(1.6) * x.powf(2.1) - x.powf(3.7))
            }
        } else if x < 2.2 {
            5.22e-4 * zp1.powf(3.4) * x.powf(2.1) + 0.325 * x.powf(1.2) - 3.14e-2 * x.powf(2.1)
        } else if x < 5.7 {
            5.22e-4 * zp1.powf(3.4) * x.powf(2.1) + 0.218 * x.powf(2.1) - 2.55e-2 * x.powf(3.7)
        } else {
            5.22e-4 * (zp1.powf(3.4) * x.powf(2.1) - x.powf(5.5))
        };
        // DLA, Lyman continuum (eqs. 28–29)
        tau += if z < 2.0 {
            0.211 * zp1 * zp1 - 7.66e-2 * zp1.powf(2.3) * x.powf(-0.3) - 0.135 * x * x
        } else if x < 3.0 {
            0.634 + 4.7e-2 * zp1.powi(3) - 1.78e-2 * zp1.powf(3.3) * x.powf(-0.3) - 0.135 * x * x - 0.291 * x.powf(-0.3)
        } else {
            4.7e-2 * zp1.powi(3) - 1.78e-2 * zp1.powf(3.3) * x.powf(-0.3) - 2.92e-2 * x.powi(3)
        };
    }
    tau
}

/// Madau (1995) optical depth at rest wavelength `rest_aa` for a source at `z`.
pub fn madau1995_tau(rest_aa: f64, z: f64) -> f64 {
    // Lyman α, β, γ, δ and their coefficients (Madau 1995, eq. 15 and Table 2 text).
    const LINES: [(f64, f64); 4] = [(1215.67, 3.6e-3), (1025.72, 1.7e-3), (972.537, 1.2e-3), (949.743, 9.3e-4)];
    const LL: f64 = 912.0;
    let zp1 = 1.0 + z;
    let lobs = rest_aa * zp1;
    let mut tau = 0.0;
    for (lj, a) in LINES {
        if lobs > lj && lobs < lj * zp1 {
            tau += a * (lobs / lj).powf(3.46);
        }
    }
    if lobs < LL * zp1 {
        let xc = lobs / LL;
        let xe = zp1;
        let t = 0.25 * xc.powi(3) * (xe.powf(0.46) - xc.powf(0.46)) + 9.4 * xc.powf(1.5) * (xe.powf(0.18) - xc.powf(0.18))
            - 0.7 * xc.powi(3) * (xc.powf(-1.32) - xe.powf(-1.32))
            - 0.023 * (xe.powf(1.68) - xc.powf(1.68));
        tau += t.max(0.0);
    }
    tau
}

/// IGM transmission tabulated on a rest-frame wavelength grid and a redshift grid with step
/// `dz`, interpolated linearly in redshift (as bagpipes does with its 0.01 step).
#[derive(Debug, Clone)]
pub struct IgmTable {
    /// Number of leading wavelength points affected (rest λ ≤ Lyα pixel); T = 1 beyond.
    pub n_wave: usize,
    dz: f64,
    n_z: usize,
    /// Transmission, shape [z][wave].
    trans: Vec<f64>,
}

impl IgmTable {
    /// Tabulates `model` on `wave_aa` for 0 ≤ z ≤ `max_z`.
    pub fn new(model: IgmModel, lines: &[InoueLine], wave_aa: &[f64], max_z: f64) -> Self {
        let dz = 0.01;
        let n_z = (max_z / dz).ceil() as usize + 2;
        // Include the pixel nearest Lyα: it holds the Lyα line and is always attenuated.
        let lya = nearest(wave_aa, LYMAN_ALPHA_AA);
        let n_wave = if model == IgmModel::None { 0 } else { (lya + 1).min(wave_aa.len()) };
        let mut trans = vec![1.0; n_z * n_wave];
        for iz in 0..n_z {
            let z = iz as f64 * dz;
            let row = &mut trans[iz * n_wave..(iz + 1) * n_wave];
            for (i, t) in row.iter_mut().enumerate() {
                *t = (-tau(model, lines, wave_aa[i], z)).exp();
            }
            // bagpipes: the pixel containing Lyα takes the transmission just blueward of it.
            if n_wave >= 2 && wave_aa[lya] > LYMAN_ALPHA_AA {
                row[n_wave - 1] = row[n_wave - 2];
            }
        }
        Self { n_wave, dz, n_z, trans }
    }

    /// Tabulates `model` at the rest wavelengths of emission lines `line_wave_aa` (ascending) for
    /// 0 ≤ z ≤ `max_z`: the transmission at each line's exact wavelength, except that a line at
    /// Lyα takes the transmission just blueward of Lyα (the limit λ → λ_Lyα from the blue,
    /// evaluated at λ_Lyα (1 − 1e-9)). That is bagpipes' convention for the grid pixel holding
    /// Lyα (see [`Self::new`]), which takes the transmission of the grid point one step (0.5 %)
    /// blueward; the limit makes the line's transmission independent of the grid. At the exact
    /// wavelength Inoue's and Madau's Lyα-forest terms vanish (absorbers redward of the source
    /// do not exist), and the line would pass untouched.
    pub fn at_lines(model: IgmModel, lines: &[InoueLine], line_wave_aa: &[f64], max_z: f64) -> Self {
        let dz = 0.01;
        let n_z = (max_z / dz).ceil() as usize + 2;
        let n_wave = if model == IgmModel::None { 0 } else { line_wave_aa.partition_point(|&l| l <= LYMAN_ALPHA_AA) };
        let mut trans = vec![1.0; n_z * n_wave];
        for iz in 0..n_z {
            let z = iz as f64 * dz;
            for (i, &l) in line_wave_aa[..n_wave].iter().enumerate() {
                let l = if (l / LYMAN_ALPHA_AA - 1.0).abs() < 1e-6 { LYMAN_ALPHA_AA * (1.0 - 1e-9) } else { l };
                trans[iz * n_wave + i] = (-tau(model, lines, l, z)).exp();
            }
        }
        Self { n_wave, dz, n_z, trans }
    }

    /// Transmission of the `k`-th tabulated wavelength at redshift `z` (linear in z, as
    /// [`Self::apply`]); 1 beyond the affected wavelengths.
    #[inline]
    pub fn transmission(&self, z: f64, k: usize) -> f64 {
        if k >= self.n_wave {
            return 1.0;
        }
        let (i, f) = self.z_position(z);
        (1.0 - f) * self.trans[i * self.n_wave + k] + f * self.trans[(i + 1) * self.n_wave + k]
    }

    /// Row index and interpolation weight of redshift `z` in the table.
    #[inline]
    fn z_position(&self, z: f64) -> (usize, f64) {
        let pos = (z / self.dz).max(0.0);
        let i = (pos.floor() as usize).min(self.n_z - 2);
        (i, (pos - i as f64).clamp(0.0, 1.0))
    }

    /// Multiplies `spec` (on the grid the table was made for) by the transmission at `z`.
    pub fn apply(&self, z: f64, spec: &mut [f64]) {
        if self.n_wave == 0 {
            return;
        }
        let (i, f) = self.z_position(z);
        let (a, b) = (&self.trans[i * self.n_wave..(i + 1) * self.n_wave], &self.trans[(i + 1) * self.n_wave..(i + 2) * self.n_wave]);
        for k in 0..self.n_wave {
            spec[k] *= (1.0 - f) * a[k] + f * b[k];
        }
    }
}

/// Optical depth of `model` at rest wavelength `rest_aa` for a source at `z`.
fn tau(model: IgmModel, lines: &[InoueLine], rest_aa: f64, z: f64) -> f64 {
    match model {
        IgmModel::Inoue2014 => inoue2014_tau(lines, rest_aa, z),
        IgmModel::Madau1995 => madau1995_tau(rest_aa, z),
        IgmModel::None => 0.0,
    }
}

/// Index of the grid point nearest `v` (first one on ties, like numpy's argmin).
pub fn nearest(grid: &[f64], v: f64) -> usize {
    let mut best = 0;
    for (i, g) in grid.iter().enumerate() {
        if (g - v).abs() < (grid[best] - v).abs() {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn madau_mean_flux_decrement_at_z3() {
        // Madau (1995) Fig. 3: at z = 3.5 the Lyα forest removes roughly 30–40 % of the flux
        // just blueward of Lyα; redward nothing is absorbed.
        let t = (-madau1995_tau(1150.0, 3.5)).exp();
        assert!(t > 0.5 && t < 0.8, "{t}");
        assert_eq!(madau1995_tau(1300.0, 3.5), 0.0);
        // Below the Lyman limit at z = 4 only a few per cent come through (continuum τ ≈ 3.9).
        assert!((-madau1995_tau(800.0, 4.0)).exp() < 0.05);
    }
}
