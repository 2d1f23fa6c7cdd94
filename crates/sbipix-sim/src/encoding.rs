//! The network's input encoding of one pixel's photometry.
//!
//! Per band, three numbers, then the redshift. Two encodings ([`EncodingKind`]):
//!
//! | feature | `asinh_flux` (the default) | `snr_depth` | if missing |
//! | --- | --- | --- | --- |
//! | first | asinh(f / (2 s_b)) | asinh(f / (2 σ)) | 0 |
//! | error | ln(σ / s_b) | ln(σ / s_b) | 0 |
//! | measured | 1 | 1 | 0 |
//!
//! Both are one-to-one in (f, σ) per band, so they carry the same information; they differ in
//! what the network sees directly: the flux itself, or its S/N beside the depth relative to the
//! reference (issue 18's question whether σ then stops standing in for flux; measured in
//! docs/validation.md, *Input encoding*).
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
    /// What the first feature of each band is (models written before it existed: `asinh_flux`).
    #[serde(default)]
    pub kind: EncodingKind,
}

/// The first feature of each band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncodingKind {
    /// asinh(f / 2 s_b): an asinh magnitude of the flux.
    #[default]
    AsinhFlux,
    /// asinh(f / 2 σ): of the S/N.
    SnrDepth,
}

impl EncodingKind {
    pub fn name(self) -> &'static str {
        match self {
            EncodingKind::AsinhFlux => "asinh_flux",
            EncodingKind::SnrDepth => "snr_depth",
        }
    }

    /// Parses a name as [`Self::name`] writes it.
    pub fn parse(s: &str) -> Option<Self> {
        [EncodingKind::AsinhFlux, EncodingKind::SnrDepth].into_iter().find(|k| k.name() == s)
    }
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
            let first = match self.kind {
                EncodingKind::AsinhFlux => f / (2.0 * sc),
                EncodingKind::SnrDepth => f / (2.0 * s),
            };
            let (x, e, m) = if ok { (first.asinh(), (s / sc).ln(), 1.0) } else { (0.0, 0.0, 0.0) };
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
        let enc = InputEncoding { bands: vec!["A".into(), "B".into()], scale_ujy: vec![1e-4, 2e-4], kind: EncodingKind::AsinhFlux };
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
