//! Filter curves and photon-counting synthetic photometry.
//!
//! The band-averaged flux density of a photon-counting detector is
//! ⟨f_ν⟩ = ∫ f_ν T λ⁻¹ dλ / ∫ T λ⁻¹ dλ (e.g. Bessell & Murphy 2012, eq. A11). All integrals here
//! use the same quadrature in numerator and denominator, so a flat-f_ν spectrum gives exactly
//! its f_ν whatever the sampling.

use crate::error::SpsError;
use serde::{Deserialize, Serialize};

/// A filter transmission curve (photon-counting throughput; any normalisation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Filter {
    /// Band name, e.g. `F090W`.
    pub name: String,
    /// Wavelengths, Å, strictly increasing.
    pub wave_aa: Vec<f64>,
    /// Throughput at each wavelength, ≥ 0.
    pub trans: Vec<f64>,
}

impl Filter {
    /// A filter after checking the curve; zero-throughput points at either end are dropped
    /// (as bagpipes does), keeping one zero on each side so the edges stay sharp.
    pub fn new(name: impl Into<String>, wave_aa: Vec<f64>, trans: Vec<f64>) -> Result<Self, SpsError> {
        let name = name.into();
        let bad = |reason: String| SpsError::InvalidFilter { filter: name.clone(), reason };
        if wave_aa.len() != trans.len() {
            return Err(bad(format!("{} wavelengths but {} throughputs", wave_aa.len(), trans.len())));
        }
        for i in 0..wave_aa.len() {
            if !wave_aa[i].is_finite() || !trans[i].is_finite() {
                return Err(bad(format!("point {} is not finite ({}, {})", i + 1, wave_aa[i], trans[i])));
            }
            if wave_aa[i] <= 0.0 {
                return Err(bad(format!("point {}: wavelength {} Å must be > 0", i + 1, wave_aa[i])));
            }
            if trans[i] < 0.0 {
                return Err(bad(format!("point {}: negative throughput {}", i + 1, trans[i])));
            }
            if i > 0 && wave_aa[i] <= wave_aa[i - 1] {
                return Err(bad(format!(
                    "wavelengths must increase strictly (point {}: {} Å after {} Å)",
                    i + 1,
                    wave_aa[i],
                    wave_aa[i - 1]
                )));
            }
        }
        let first = trans.iter().position(|&t| t > 0.0);
        let last = trans.iter().rposition(|&t| t > 0.0);
        let (Some(first), Some(last)) = (first, last) else {
            return Err(bad("the throughput is zero everywhere".into()));
        };
        let (lo, hi) = (first.saturating_sub(1), (last + 1).min(trans.len() - 1));
        if hi - lo < 1 {
            return Err(bad("at least two points are needed".into()));
        }
        Ok(Filter { name, wave_aa: wave_aa[lo..=hi].to_vec(), trans: trans[lo..=hi].to_vec() })
    }

    /// Shortest and longest wavelengths with non-zero throughput, padded by two sampling steps
    /// (bagpipes' `min_phot_wav`/`max_phot_wav`).
    pub fn padded_range_aa(&self) -> (f64, f64) {
        let first = self.trans.iter().position(|&t| t > 0.0).unwrap_or(0);
        let last = self.trans.iter().rposition(|&t| t > 0.0).unwrap_or(self.trans.len() - 1);
        let n = self.wave_aa.len();
        let lo = self.wave_aa[first] - 2.0 * (self.wave_aa[(first + 1).min(n - 1)] - self.wave_aa[first]);
        let hi = self.wave_aa[last] + 2.0 * (self.wave_aa[last] - self.wave_aa[last.saturating_sub(1)]);
        (lo, hi)
    }

    /// Pivot wavelength √(∫T λ dλ / ∫T/λ dλ), trapezoid rule on the curve's own sampling, Å.
    pub fn pivot_wavelength_aa(&self) -> f64 {
        let (mut num, mut den) = (0.0, 0.0);
        for i in 1..self.wave_aa.len() {
            let (l0, l1) = (self.wave_aa[i - 1], self.wave_aa[i]);
            let (t0, t1) = (self.trans[i - 1], self.trans[i]);
            let dl = l1 - l0;
            num += 0.5 * dl * (t0 * l0 + t1 * l1);
            den += 0.5 * dl * (t0 / l0 + t1 / l1);
        }
        (num / den).sqrt()
    }

    /// Throughput at `wave_aa` (linear interpolation, zero outside the curve).
    pub fn throughput(&self, wave_aa: f64) -> f64 {
        crate::sampling::interp(wave_aa, &self.wave_aa, &self.trans, 0.0, 0.0)
    }

    /// Photon-counting mean f_ν of a spectrum f_ν(λ) sampled on its own grid (trapezoid rule on
    /// the filter's sampling, the spectrum interpolated linearly onto it). Units of `fnu`.
    pub fn mean_fnu(&self, wave_aa: &[f64], fnu: &[f64]) -> f64 {
        let (mut num, mut den) = (0.0, 0.0);
        for i in 1..self.wave_aa.len() {
            let (l0, l1) = (self.wave_aa[i - 1], self.wave_aa[i]);
            let f0 = crate::sampling::interp(l0, wave_aa, fnu, 0.0, 0.0);
            let f1 = crate::sampling::interp(l1, wave_aa, fnu, 0.0, 0.0);
            let (w0, w1) = (self.trans[i - 1] / l0, self.trans[i] / l1);
            num += 0.5 * (l1 - l0) * (f0 * w0 + f1 * w1);
            den += 0.5 * (l1 - l0) * (w0 + w1);
        }
        num / den
    }
}

/// Extracts a band name from a filter file name: the first token that looks like a filter
/// (`F` followed by 3–4 digits and 1–2 letters, e.g. `F090W`, `F182M`, `F850LP`), upper-cased;
/// otherwise the file stem.
pub fn band_name_from_file_name(file_name: &str) -> String {
    let upper = file_name.to_ascii_uppercase();
    let b = upper.as_bytes();
    for start in 0..b.len() {
        if b[start] != b'F' || (start > 0 && b[start - 1].is_ascii_alphanumeric()) {
            continue;
        }
        let digits = b[start + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if !(3..=4).contains(&digits) {
            continue;
        }
        let after = start + 1 + digits;
        let letters = b[after..].iter().take_while(|c| c.is_ascii_alphabetic()).count();
        if (1..=2).contains(&letters) {
            return upper[start..after + letters].to_string();
        }
    }
    let stem = file_name.rsplit('/').next().unwrap_or(file_name);
    stem.split('.').next().unwrap_or(stem).to_string()
}

/// The photon-counting integration of one filter on the model's rest-frame grid.
///
/// A rest wavelength λᵢ is observed at λᵢ(1+z); with wᵢ = T(λᵢ(1+z)) Δλᵢ (Δλᵢ the rest-frame
/// bin widths), ⟨f_ν⟩ ∝ Σ L_λ,ᵢ wᵢ λᵢ / Σ wᵢ/λᵢ; the constant (1+z) L☉ / (4π d_L² c) is applied
/// by [`crate::model::SpsModel`].
#[derive(Debug, Clone)]
pub(crate) struct BandIntegrator {
    pub filter: Filter,
    /// ln of the first tabulated wavelength.
    ln_x0: f64,
    /// ln of the last wavelength of the curve.
    ln_x1: f64,
    /// Step of the table in ln λ, and its inverse.
    dln: f64,
    inv_dln: f64,
    /// Throughput on a uniform ln λ grid (the curve's own linear interpolation resampled, so a
    /// lookup is O(1) instead of a search).
    table: Vec<f64>,
}

impl BandIntegrator {
    pub fn new(filter: Filter) -> Self {
        Self::with_table_from(&filter.clone(), filter)
    }

    /// bagpipes 1.3.6's integration ([`crate::model::FilterSampling::ModelGrid`]): the curve is
    /// first interpolated (linearly, zero outside) at the model's wavelengths `grid_aa` read as
    /// observed wavelengths, and that resampled curve is what the integration interpolates at
    /// λᵢ(1+z). Two interpolations instead of one: near a steep filter edge the throughput at a
    /// given wavelength differs by up to tens of per cent from the curve's own, which moves an
    /// emission line that sits there (0.01–0.1 mag in a band). `filter` (the curve as read) is
    /// kept for everything but the integration.
    pub fn on_grid(filter: Filter, grid_aa: &[f64]) -> Result<Self, crate::SpsError> {
        let x = &filter.wave_aa;
        let (lo, hi) = (x[0], x[x.len() - 1]);
        let a = grid_aa.partition_point(|&w| w < lo).saturating_sub(1);
        let b = (grid_aa.partition_point(|&w| w <= hi) + 1).min(grid_aa.len());
        let wave: Vec<f64> = grid_aa[a..b].to_vec();
        let trans = wave.iter().map(|&w| filter.throughput(w)).collect();
        let resampled = Filter::new(filter.name.clone(), wave, trans).map_err(|e| match e {
            crate::SpsError::InvalidFilter { filter, reason } => crate::SpsError::InvalidFilter {
                filter,
                reason: format!("resampled onto the model's wavelength grid (filter_sampling = model_grid): {reason}"),
            },
            other => other,
        })?;
        Ok(Self::with_table_from(&resampled, filter))
    }

    /// The integrator whose throughput table is `curve`'s linear interpolation, keeping `filter`.
    fn with_table_from(curve: &Filter, filter: Filter) -> Self {
        let x = &curve.wave_aa;
        let min_step = x.windows(2).map(|w| (w[1] / w[0]).ln()).fold(f64::INFINITY, f64::min);
        let span = (x[x.len() - 1] / x[0]).ln();
        // The curve's finest sampling, but no more than 4096 points per band: the table of every
        // band then stays in cache (1-Å ACS curves would otherwise need ~60 000 points each).
        // The bagpipes comparison is unchanged at the 1e-4 mag level; flat-f_ν
        // spectra stay exact because numerator and denominator share the weights.
        let dln = min_step.max(span / 4095.0);
        let n = (span / dln).ceil() as usize + 1;
        let ln_x0 = x[0].ln();
        let mut table = Vec::with_capacity(n + 1);
        let mut k = 1;
        for i in 0..n {
            let l = (ln_x0 + i as f64 * dln).exp().min(x[x.len() - 1]);
            while k < x.len() - 1 && x[k] < l {
                k += 1;
            }
            let f = ((l - x[k - 1]) / (x[k] - x[k - 1])).clamp(0.0, 1.0);
            table.push(curve.trans[k - 1] + f * (curve.trans[k] - curve.trans[k - 1]));
        }
        table.push(0.0);
        let ln_x1 = x[x.len() - 1].ln();
        Self { filter, ln_x0, ln_x1, dln, inv_dln: 1.0 / dln, table }
    }

    /// Throughput at ln λ_obs − ln λ₀ = `pos` × step (linear in the resampled table).
    #[inline]
    fn throughput_at(&self, pos: f64) -> f64 {
        let k = (pos as usize).min(self.table.len() - 2);
        let f = pos - k as f64;
        self.table[k] + f * (self.table[k + 1] - self.table[k])
    }

    /// Σ L_i T(λ_i(1+z)) λ_i Δ_i / Σ T(λ_i(1+z)) Δ_i / λ_i over the rest grid `wave` (with
    /// `ln_wave` = ln λ, `w_num` = λΔ, `w_den` = Δ/λ for widths Δ), i.e. the photon-counting
    /// ⟨L_λ λ²⟩ up to constants.
    #[inline]
    pub fn ratio(&self, wave: &[f64], ln_wave: &[f64], w_num: &[f64], w_den: &[f64], lum: &[f64], zp1: f64) -> f64 {
        let (num, den) = self.sums(wave, ln_wave, w_num, w_den, lum, zp1);
        if den > 0.0 { num / den } else { f64::NAN }
    }

    /// The numerator Σ L_i T(λ_i(1+z)) λ_i Δ_i and denominator Σ T(λ_i(1+z)) Δ_i / λ_i of
    /// [`Self::ratio`], apart (emission lines add to the numerator, see `crate::lines`).
    #[inline]
    pub fn sums(&self, wave: &[f64], ln_wave: &[f64], w_num: &[f64], w_den: &[f64], lum: &[f64], zp1: f64) -> (f64, f64) {
        let x = &self.filter.wave_aa;
        let (lo, hi) = (x[0] / zp1, x[x.len() - 1] / zp1);
        let start = wave.partition_point(|&w| w < lo);
        let shift = zp1.ln() - self.ln_x0;
        let (mut num, mut den) = (0.0, 0.0);
        for i in start..wave.len() {
            if wave[i] > hi {
                break;
            }
            let tr = self.throughput_at((ln_wave[i] + shift) / self.dln);
            num += lum[i] * tr * w_num[i];
            den += tr * w_den[i];
        }
        (num, den)
    }

    /// The denominator Σ T(λ_i(1+z)) Δ_i / λ_i of [`Self::ratio`] alone.
    #[allow(dead_code, reason = "for the photometry compiled per redshift (compiled.rs), being written")]
    pub fn den(&self, wave: &[f64], ln_wave: &[f64], w_den: &[f64], zp1: f64) -> f64 {
        let x = &self.filter.wave_aa;
        let (lo, hi) = (x[0] / zp1, x[x.len() - 1] / zp1);
        let start = wave.partition_point(|&w| w < lo);
        let shift = zp1.ln() - self.ln_x0;
        let last = self.table.len() - 2;
        let mut den = 0.0;
        for i in start..wave.len() {
            if wave[i] > hi {
                break;
            }
            let pos = (ln_wave[i] + shift) / self.dln;
            let k = (pos as usize).min(last);
            let f = pos - k as f64;
            den += (self.table[k] + f * (self.table[k + 1] - self.table[k])) * w_den[i];
        }
        den
    }

    /// Rest wavelengths (Å) the band sees at redshift z: the curve's span divided by `zp1`.
    #[inline]
    pub fn rest_range_aa(&self, zp1: f64) -> (f64, f64) {
        let x = &self.filter.wave_aa;
        (x[0] / zp1, x[x.len() - 1] / zp1)
    }

    /// Throughput at the observed wavelength exp(`ln_obs_aa`), looked up in the table as the grid
    /// sums do; 0 outside the curve.
    #[inline]
    pub fn throughput_ln(&self, ln_obs_aa: f64) -> f64 {
        if ln_obs_aa > self.ln_x1 {
            return 0.0;
        }
        self.lookup((ln_obs_aa - self.ln_x0) * self.inv_dln)
    }

    /// The table at fractional position `pos` (0 below the table).
    #[inline]
    fn lookup(&self, pos: f64) -> f64 {
        if pos < 0.0 {
            return 0.0;
        }
        let k = (pos as usize).min(self.table.len() - 2);
        let f = pos - k as f64;
        self.table[k] + f * (self.table[k + 1] - self.table[k])
    }

    /// Σ_l `lum[l]` T(λ_l(1+z)) λ_l over emission lines at rest wavelengths `wave` (Å, ascending;
    /// `ln_wave` their ln) that start at or redward of the band's blue end at this redshift: the
    /// sum stops at the first line beyond the red end. `ln_zp1` = ln(1+z). The lines' part of the
    /// numerator of [`Self::sums`] (units of `lum` × Å).
    #[inline]
    pub fn line_sum(&self, wave: &[f64], ln_wave: &[f64], lum: &[f64], zp1: f64, ln_zp1: f64) -> f64 {
        let hi = self.filter.wave_aa[self.filter.wave_aa.len() - 1] / zp1;
        let shift = ln_zp1 - self.ln_x0;
        let mut sum = 0.0;
        for ((&l, &ln), &f) in wave.iter().zip(ln_wave).zip(lum) {
            if l > hi {
                break;
            }
            sum += f * self.lookup((ln + shift) * self.inv_dln) * l;
        }
        sum
    }

    /// The same integral as [`Self::ratio`] as weights: `ratio(lum) = Σ_k lum[start + k] · w[k]`;
    /// returns (start, w). For photometry compiled per redshift.
    pub fn pixel_weights(&self, wave: &[f64], ln_wave: &[f64], w_num: &[f64], w_den: &[f64], zp1: f64) -> (usize, Vec<f64>) {
        let x = &self.filter.wave_aa;
        let (lo, hi) = (x[0] / zp1, x[x.len() - 1] / zp1);
        let start = wave.partition_point(|&w| w < lo);
        let end = wave.partition_point(|&w| w <= hi);
        let shift = zp1.ln() - self.ln_x0;
        let tr: Vec<f64> = (start..end).map(|i| self.throughput_at((ln_wave[i] + shift) / self.dln)).collect();
        let den: f64 = tr.iter().zip(&w_den[start..end]).map(|(t, w)| t * w).sum();
        let scale = if den > 0.0 { 1.0 / den } else { f64::NAN };
        (start, tr.iter().zip(&w_num[start..end]).map(|(t, w)| t * w * scale).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_names_from_files() {
        assert_eq!(band_name_from_file_name("JWST_F090W.dat.txt"), "F090W");
        assert_eq!(band_name_from_file_name("HST_ACS_WFC.F850LP.dat"), "F850LP");
        assert_eq!(band_name_from_file_name("JWST_NIRCam.F182M.dat"), "F182M");
        assert_eq!(band_name_from_file_name("jwst_f444w.par"), "F444W");
        assert_eq!(band_name_from_file_name("acs_wfc_f435w.par"), "F435W");
        assert_eq!(band_name_from_file_name("sdss_r0.par"), "sdss_r0");
    }

    #[test]
    fn bad_curves_are_rejected() {
        assert!(Filter::new("X", vec![1.0, 2.0], vec![1.0]).is_err());
        assert!(Filter::new("X", vec![2.0, 1.0], vec![1.0, 1.0]).is_err());
        assert!(Filter::new("X", vec![1.0, 2.0], vec![0.0, 0.0]).is_err());
        assert!(Filter::new("X", vec![1.0, 2.0], vec![f64::NAN, 1.0]).is_err());
        assert!(Filter::new("X", vec![1.0, 2.0], vec![-1.0, 1.0]).is_err());
        let f = Filter::new("X", vec![1.0, 2.0, 3.0, 4.0, 5.0], vec![0.0, 0.0, 1.0, 0.0, 0.0]).unwrap();
        assert_eq!(f.wave_aa, vec![2.0, 3.0, 4.0]);
    }

    #[test]
    fn flat_fnu_is_exact_on_any_grid() {
        let f = Filter::new("box", vec![4000.0, 4100.0, 5000.0, 5100.0], vec![0.0, 1.0, 0.7, 0.0]).unwrap();
        let wave: Vec<f64> = (0..3000).map(|i| 1500.0 * 1.0005f64.powi(i)).collect();
        let width = crate::sampling::midpoint_widths(&wave);
        let ln_wave: Vec<f64> = wave.iter().map(|w| w.ln()).collect();
        let w_num: Vec<f64> = wave.iter().zip(&width).map(|(l, w)| l * w).collect();
        let w_den: Vec<f64> = wave.iter().zip(&width).map(|(l, w)| w / l).collect();
        // L_λ ∝ λ⁻² is flat in f_ν: the ratio must equal the constant exactly.
        let lum: Vec<f64> = wave.iter().map(|l| 1.0 / (l * l)).collect();
        for zp1 in [1.0, 1.3, 2.0] {
            let r = BandIntegrator::new(f.clone()).ratio(&wave, &ln_wave, &w_num, &w_den, &lum, zp1);
            assert!((r - 1.0).abs() < 1e-13, "{r}");
        }
    }
}
