//! The network's input encoding of one pixel's photometry.
//!
//! Per band, three numbers, then the redshift:
//!
//! | feature | value if measured | if missing |
//! | --- | --- | --- |
//! | flux | asinh(f / (2 s_b)) | 0 |
//! | error | ln(σ / s_b) | 0 |
//! | measured | 1 | 0 |
//!
//! s_b is the band's median background σ in the survey the model was trained for. asinh(f/2s) is
//! an asinh magnitude (Lupton, Gunn & Szalay 1999) up to sign and scale: linear in f near zero,
//! so non-detections and negative fluxes stay finite measurements, and logarithmic for bright
//! pixels, so 10⁻⁷–10³ µJy span a range of ≈ 30. A band is "missing" when it is flagged so, or
//! its flux or σ is not finite, or σ ≤ 0. Every output is finite for every input.

use serde::{Deserialize, Serialize};

/// The input encoding of a trained model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputEncoding {
    /// Band names, in input order.
    pub bands: Vec<String>,
    /// Flux scale s_b of each band, µJy.
    pub scale_ujy: Vec<f64>,
}

impl InputEncoding {
    /// Number of network inputs: 3 per band + redshift.
    pub fn n_inputs(&self) -> usize {
        3 * self.bands.len() + 1
    }

    /// Writes the inputs of one pixel into `out` (length [`Self::n_inputs`]).
    pub fn encode(&self, flux_ujy: &[f64], sigma_ujy: &[f64], measured: &[bool], redshift: f64, out: &mut [f32]) {
        let nb = self.bands.len();
        assert!(flux_ujy.len() == nb && sigma_ujy.len() == nb && measured.len() == nb && out.len() == 3 * nb + 1);
        for b in 0..nb {
            let (f, s) = (flux_ujy[b], sigma_ujy[b]);
            let ok = measured[b] && f.is_finite() && s.is_finite() && s > 0.0;
            let sc = self.scale_ujy[b];
            let (x, e, m) = if ok { ((f / (2.0 * sc)).asinh(), (s / sc).ln(), 1.0) } else { (0.0, 0.0, 0.0) };
            out[3 * b] = x as f32;
            out[3 * b + 1] = e as f32;
            out[3 * b + 2] = m as f32;
        }
        out[3 * nb] = if redshift.is_finite() { redshift as f32 } else { 0.0 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finite_for_any_flux() {
        let enc = InputEncoding { bands: vec!["A".into(), "B".into()], scale_ujy: vec![1e-4, 2e-4] };
        let mut out = vec![0f32; enc.n_inputs()];
        for f in [-1e3, -1e-4, 0.0, 1e-9, 1e3, 1e30, f64::NAN, f64::INFINITY] {
            for s in [0.0, 1e-5, 1.0, f64::NAN] {
                enc.encode(&[f, 1e-4], &[s, 1e-4], &[true, false], 3.0, &mut out);
                assert!(out.iter().all(|v| v.is_finite()), "{f} {s}: {out:?}");
            }
        }
        enc.encode(&[2e-4, 1.0], &[1e-4, 1.0], &[true, false], 3.0, &mut out);
        assert!((out[0] - 1f32.asinh()).abs() < 1e-7 && out[1] == 0.0 && out[2] == 1.0);
        assert_eq!(&out[3..6], &[0.0, 0.0, 0.0]);
        assert_eq!(out[6], 3.0);
    }
}
