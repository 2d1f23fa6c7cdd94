//! Emission lines integrated at their exact wavelengths ([`LinePlacement::Exact`]).
//!
//! The Cloudy grids give each line's luminosity (L☉ per M☉ formed) at its rest wavelength λ_l.
//! bagpipes puts a line into the wavelength-grid pixel nearest λ_l as luminosity / pixel width
//! ([`LinePlacement::NearestPixel`]); on the R = 100 grid a line near a filter edge then moves in
//! or out of the band when the grid moves (changing `max_redshift` shifts every pixel), by up to
//! 0.3 mag. Here a line is a δ-function instead: with the band sums of
//! [`crate::filters::BandIntegrator`] (numerator Σ L_i T(λ_i(1+z)) λ_i Δ_i, denominator
//! Σ T(λ_i(1+z)) Δ_i / λ_i on the grid), a line of luminosity F_l (L☉, after dust and IGM) adds
//! F_l T(λ_l(1+z)) λ_l to the numerator, the exact photon-counting integral of a δ-function, and
//! nothing to the denominator. Dust attenuates it with the Calzetti value at λ_l, the IGM with
//! its transmission at λ_l ([`IgmTable::at_lines`] for the Lyα convention), and the light dust
//! removes from it enters energy balance exactly
//! ([`crate::absorption::AbsorptionTable::add_lines`]).
//!
//! [`LinePlacement::Exact`]: crate::model::LinePlacement::Exact
//! [`LinePlacement::NearestPixel`]: crate::model::LinePlacement::NearestPixel

use crate::filters::BandIntegrator;
use crate::grids::{InoueLine, NebularGrid};
use crate::igm::{IgmModel, IgmTable, nearest};
use std::ops::Range;

/// The emission lines of the nebular grids, sorted by wavelength, with what each galaxy needs
/// to attenuate and integrate them. Every per-line array is in the order of `wave_aa`.
#[derive(Debug, Clone)]
pub(crate) struct EmissionLines {
    /// Rest wavelengths (vacuum), Å, ascending.
    pub wave_aa: Vec<f64>,
    /// ln of `wave_aa`.
    pub ln_wave: Vec<f64>,
    /// Luminosity, L☉ per M☉ formed, `[zmet][logu][nebular age][line]`.
    pub lum: Vec<f64>,
    /// −0.4 ln10 A(λ_l)/A_V (Calzetti 2000 at the line's wavelength): a line behind A magnitudes
    /// of V-band attenuation keeps exp(coef · A) of its light.
    pub dust_coef: Vec<f64>,
    /// Number of leading lines with non-zero attenuation (Calzetti stops at 3.1 µm).
    pub n_dust: usize,
    /// IGM transmission at each line, tabulated in redshift.
    pub igm: IgmTable,
    /// The grid pixel nearest each line and that pixel's width (Å), where lines are drawn for
    /// display ([`crate::model::SpsModel::spectrum`]); None for the two end pixels of the grid.
    pub pixel: Vec<Option<(usize, f64)>>,
}

impl EmissionLines {
    /// The lines of `ng` (`nz` metallicities) for a model on the rest grid `wave` (Å), with IGM
    /// `igm` tabulated up to `max_z`.
    pub fn new(ng: &NebularGrid, nz: usize, wave: &[f64], igm: IgmModel, inoue: &[InoueLine], max_z: f64) -> Self {
        let nl = ng.line_wave_aa.len();
        let mut order: Vec<usize> = (0..nl).collect();
        order.sort_by(|&a, &b| ng.line_wave_aa[a].total_cmp(&ng.line_wave_aa[b]));
        let wave_aa: Vec<f64> = order.iter().map(|&i| ng.line_wave_aa[i]).collect();
        let n_rows = nz * ng.logu.len() * ng.ages_yr.len();
        let mut lum = Vec::with_capacity(n_rows * nl);
        for g in 0..n_rows {
            lum.extend(order.iter().map(|&i| ng.lines[g * nl + i]));
        }
        let dust_coef: Vec<f64> =
            wave_aa.iter().map(|&l| -0.4 * std::f64::consts::LN_10 * crate::dust::calzetti2000_a_over_av(l)).collect();
        let n_dust = dust_coef.iter().rposition(|&c| c != 0.0).map_or(0, |i| i + 1);
        let nw = wave.len();
        let pixel = wave_aa
            .iter()
            .map(|&l| {
                let i = nearest(wave, l);
                (i != 0 && i != nw - 1).then(|| (i, 0.5 * (wave[i + 1] - wave[i - 1])))
            })
            .collect();
        Self {
            ln_wave: wave_aa.iter().map(|l| l.ln()).collect(),
            igm: IgmTable::at_lines(igm, inoue, &wave_aa, max_z),
            wave_aa,
            lum,
            dust_coef,
            n_dust,
            pixel,
        }
    }

    pub fn len(&self) -> usize {
        self.wave_aa.len()
    }

    /// The luminosities (L☉ per M☉ formed) of table row `g` = (zmet × n_logu + logu) × n_ages + age.
    #[inline]
    pub fn row(&self, g: usize) -> &[f64] {
        let nl = self.len();
        &self.lum[g * nl..(g + 1) * nl]
    }

    /// Indices of the lines with rest wavelength in [`lo_aa`, `hi_aa`].
    #[inline]
    pub fn range(&self, lo_aa: f64, hi_aa: f64) -> Range<usize> {
        let a = self.wave_aa.partition_point(|&l| l < lo_aa);
        let b = self.wave_aa.partition_point(|&l| l <= hi_aa);
        a..b.max(a)
    }

    /// The lines' part of the numerator of each band's sums at 1+z = `zp1`, into `out` (one per band): Σ_l `lum[l]` T_b(λ_l(1+z)) λ_l over the lines band b sees, with
    /// `lum` the luminosities (L☉) after dust and IGM, non-zero only in `range`. Units: L☉ Å (the
    /// numerator's units with L_λ in L☉/Å). `blue_order` lists the bands by their blue end, so
    /// that each band's first line is found by walking forward from the previous band's.
    #[inline]
    pub fn band_numerators(
        &self,
        bands: &[BandIntegrator],
        blue_order: &[usize],
        zp1: f64,
        lum: &[f64],
        range: Range<usize>,
        out: &mut [f64],
    ) {
        let ln_zp1 = zp1.ln();
        let mut first = range.start;
        for &b in blue_order {
            let band = &bands[b];
            let lo = band.rest_range_aa(zp1).0;
            while first < range.end && self.wave_aa[first] < lo {
                first += 1;
            }
            let r = first..range.end;
            out[b] = band.line_sum(&self.wave_aa[r.clone()], &self.ln_wave[r.clone()], &lum[r], zp1, ln_zp1);
        }
    }
}

/// The emission lines as the rest of the crate sees them through the model (the compiled
/// photometry of `compiled.rs` tabulates them).
impl crate::model::SpsModel {
    /// Rest wavelengths (Å, ascending) of the emission lines the photometry integrates at their
    /// exact wavelengths (nebular emission with [`crate::model::LinePlacement::Exact`]; empty otherwise). Every
    /// per-line array of the model is in this order.
    pub(crate) fn line_wave_aa(&self) -> &[f64] {
        self.lines.as_ref().map_or(&[], |l| &l.wave_aa)
    }

    /// −0.4 ln10 A(λ_l)/A_V of each line (Calzetti 2000 at the line's wavelength): a line of young
    /// stars keeps exp(coef · η A_V) of its luminosity. Empty unless [`crate::model::LinePlacement::Exact`].
    pub(crate) fn line_dust_coef(&self) -> &[f64] {
        self.lines.as_ref().map_or(&[], |l| &l.dust_coef)
    }

    /// Line luminosities before dust, L☉ per M☉ formed, `[zmet][logu][nebular age][line]`: the
    /// model's metallicity and log U grids (`logzsol_range`, `logu_range`) and its first age bins
    /// (those up to the birth-cloud bin are used). Empty unless [`crate::model::LinePlacement::Exact`].
    pub(crate) fn line_luminosity_table(&self) -> &[f64] {
        self.lines.as_ref().map_or(&[], |l| &l.lum)
    }

    /// For band `band` at redshift `z`, each line's band flux per unit luminosity, µJy per L☉
    /// (luminosity after dust, before IGM): k(z) T_b(λ_l(1+z)) λ_l IGM_l(z) / den_b(z), with
    /// k = (1+z) L☉ / (4π d_L² c) in µJy per (L☉/Å · Å²), den_b = Σ_i T_b(λ_i(1+z)) Δλ_i / λ_i over
    /// the rest grid (Å⁰), λ_l in Å. The lines' part of the band flux is Σ_l F_l × factor_l,
    /// F_l in L☉ after dust, exactly as [`SpsModel::photometry_into`] adds it. Zero for lines outside
    /// the band at `z`; empty unless [`crate::model::LinePlacement::Exact`].
    pub(crate) fn line_band_factors(&self, band: usize, z: f64) -> Vec<f64> {
        let Some(lines) = &self.lines else { return Vec::new() };
        let b = &self.bands[band];
        let zp1 = 1.0 + z;
        let den = b.den(&self.wave, &self.ln_wave, &self.w_den, zp1);
        let k = self.flux_constant(z);
        let (lo, hi) = b.rest_range_aa(zp1);
        let mut factors = vec![0.0; lines.len()];
        for l in lines.range(lo, hi) {
            let t = b.throughput_ln(lines.ln_wave[l] + zp1.ln());
            factors[l] = k * t * lines.wave_aa[l] * lines.igm.transmission(z, l) / den;
        }
        factors
    }
}

#[cfg(test)]
mod tests {
    //! Exact answers on synthetic grids: no stellar light and no nebular continuum, only a few
    //! lines of known luminosity, so every band flux is the lines' alone and computable by hand.

    use crate::cosmology::Cosmology;
    use crate::dust::calzetti2000_a_over_av;
    use crate::filters::Filter;
    use crate::grids::{Dl07Grid, InoueLine, NebularGrid, SpsData, SspLibrary};
    use crate::igm::IgmModel;
    use crate::model::{GalaxyParams, LinePlacement, ModelConfig, SfhSpec, SpsModel};
    use crate::sampling::{AgeBins, midpoint_widths};
    use crate::sfh::SfhShape;

    /// Unsorted on purpose (the model sorts them); Lyα and Lyβ for the IGM.
    const LINE_WAVE_AA: [f64; 6] = [6564.6, 1215.67, 5008.2, 4862.7, 3727.1, 1025.72];
    const ZMET: [f64; 3] = [0.2, 1.0, 2.5];
    const LOGU: [f64; 3] = [-3.0, -2.0, -1.0];
    const N_NEB_AGES: usize = 15;

    /// L☉ per M☉ formed of line `il` at (zmet, logU, age): all different.
    fn line_lum(iz: usize, iu: usize, ia: usize, il: usize) -> f64 {
        (1.0 + il as f64) * (1.0 + 0.1 * iz as f64 + 0.01 * iu as f64) * (1.0 + ia as f64) * 1e-3
    }

    fn data() -> SpsData {
        let (nz, nu) = (ZMET.len(), LOGU.len());
        let bins = AgeBins::new(Cosmology::default().age_today_gyr());
        let ages_yr = vec![1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 2e10];
        let ssp_wave = vec![10.0, 1e3, 1e4, 1e5, 1e8];
        let nl = LINE_WAVE_AA.len();
        let mut lines = Vec::new();
        for iz in 0..nz {
            for iu in 0..nu {
                for ia in 0..N_NEB_AGES {
                    lines.extend((0..nl).map(|il| line_lum(iz, iu, ia, il)));
                }
            }
        }
        SpsData {
            ssp: SspLibrary {
                name: "zero".into(),
                zmet_zsun: ZMET.to_vec(),
                z_sun: 0.02,
                lum: vec![0.0; nz * ages_yr.len() * ssp_wave.len()],
                live_frac: vec![1.0; nz * ages_yr.len()],
                ages_yr,
                wave_aa: ssp_wave,
            },
            nebular: NebularGrid {
                logu: LOGU.to_vec(),
                ages_yr: bins.centres_yr[..N_NEB_AGES].to_vec(),
                cont_wave_aa: vec![10.0, 1e8],
                cont: vec![0.0; nz * nu * N_NEB_AGES * 2],
                line_wave_aa: LINE_WAVE_AA.to_vec(),
                lines,
            },
            dl07: Dl07Grid {
                qpah: vec![0.5, 4.6],
                umin: vec![0.1, 25.0],
                wave_aa: vec![1e3, 1e4, 1e5, 1e6, 1e7],
                umin_only: vec![1.0; 2 * 5 * 2],
                umin_umax: vec![1.0; 2 * 5 * 2],
            },
            inoue2014: vec![InoueLine { wave_aa: 1215.67, a_laf: [1.69e-2, 4.692e-3, 2.239e-4], a_dla: [1.617e-4, 1.545e-4] }],
        }
    }

    /// A smooth band sampled uniformly in ln λ from 4000 to 25 000 Å, and a narrow one.
    fn filters() -> Vec<Filter> {
        let curve = |name: &str, lo: f64, hi: f64, n: usize| {
            let x: Vec<f64> = (0..n).map(|i| lo * (hi / lo).powf(i as f64 / (n - 1) as f64)).collect();
            let t = (0..n).map(|i| (std::f64::consts::PI * i as f64 / (n - 1) as f64).sin().powi(2)).collect();
            Filter::new(name, x, t).unwrap()
        };
        vec![curve("wide", 4000.0, 25000.0, 1500), curve("narrow", 6000.0, 7000.0, 300)]
    }

    fn burst(z: f64, age_gyr: f64, logzsol: f64, logu: f64, av_mag: f64, eta: f64) -> GalaxyParams {
        GalaxyParams {
            redshift: z,
            sfh: SfhSpec::Parametric { shape: SfhShape::Burst { age_gyr }, log_mass_formed: 8.0 },
            logzsol,
            av_mag,
            eta,
            logu,
        }
    }

    /// µJy per (L☉/Å · Å²) at z, by hand: (1+z) L☉ / (4π d_L² c).
    fn k_by_hand(z: f64) -> f64 {
        let dl_cm = Cosmology::default().luminosity_distance_mpc(z) * 3.085_677_581_491_367e24;
        (1.0 + z) * 3.828e33 / (4.0 * std::f64::consts::PI * dl_cm * dl_cm * 2.997_924_58e18) * 1e29
    }

    #[test]
    fn line_fluxes_equal_the_hand_computed_integral() {
        let data = data();
        let config = ModelConfig {
            igm: IgmModel::Madau1995,
            dust_emission: false,
            max_redshift: 10.0,
            line_placement: LinePlacement::Exact,
            ..ModelConfig::default()
        };
        let model = SpsModel::new(&data, filters(), config).unwrap();
        let wave = model.wave_aa().to_vec();
        let width = midpoint_widths(&wave);
        // (z, burst age: bin 0 or 2, logzsol, logU, A_V, η) → the grid rows and weights used
        let cases = [
            ((3.0, 0.5e-3, 0.0, -2.0, 0.7, 1.5), [(1, 1, 0, 1.0)].to_vec()),
            ((0.3, 1.5e-3, 2.5f64.log10(), -2.5, 0.2, 1.0), [(2, 0, 2, 0.5), (2, 1, 2, 0.5)].to_vec()),
            ((0.05, 0.5e-3, 0.0, -2.0, 0.0, 1.0), [(1, 1, 0, 1.0)].to_vec()),
        ];
        for ((z, age, logzsol, logu, av, eta), rows) in cases {
            let p = burst(z, age, logzsol, logu, av, eta);
            let (flux, _) = model.photometry(&p).unwrap();
            let zp1 = 1.0 + z;
            for (b, f) in filters().iter().enumerate() {
                let den: f64 = wave.iter().zip(&width).map(|(l, w)| f.throughput(l * zp1) * w / l).sum();
                let mut expected = 0.0;
                let mut after_dust = vec![0.0; LINE_WAVE_AA.len()];
                for (il, &l) in LINE_WAVE_AA.iter().enumerate() {
                    let lum: f64 = rows.iter().map(|&(iz, iu, ia, w)| 1e8 * w * line_lum(iz, iu, ia, il)).sum();
                    let dust = 10f64.powf(-0.4 * calzetti2000_a_over_av(l) * av * eta);
                    // Madau (1995) by hand: Lyα just blueward of itself sees Lyα absorbers out to
                    // the source, Lyβ the Lyα absorbers at λ_obs; nothing else is absorbed here.
                    let igm = if l == 1215.67 {
                        (-3.6e-3 * zp1.powf(3.46)).exp()
                    } else if l == 1025.72 && l * zp1 > 1215.67 {
                        (-3.6e-3 * (l * zp1 / 1215.67).powf(3.46)).exp()
                    } else {
                        1.0
                    };
                    after_dust[il] = lum * dust;
                    expected += lum * dust * igm * f.throughput(l * zp1) * l;
                }
                expected *= k_by_hand(z) / den;
                if expected == 0.0 {
                    assert_eq!(flux[b], 0.0, "z={z} {}: no line in the band", f.name);
                    continue;
                }
                // 1e-5: the model looks T up in the band's table (uniform in ln λ), the hand
                // computation interpolates the curve linearly in λ
                let rel = (flux[b] / expected - 1.0).abs();
                assert!(rel < 1e-5, "z={z} {}: {} µJy vs {expected} by hand (rel {rel:.1e})", f.name, flux[b]);

                // The per-line factors of the compiled photometry give the same flux.
                let factors = model.line_band_factors(b, z);
                let sorted = model.line_wave_aa();
                let from_factors: f64 = LINE_WAVE_AA
                    .iter()
                    .enumerate()
                    .map(|(il, &l)| after_dust[il] * factors[sorted.iter().position(|&s| s == l).unwrap()])
                    .sum();
                assert!((from_factors / flux[b] - 1.0).abs() < 1e-12, "z={z} {}: {from_factors} vs {}", f.name, flux[b]);
            }
        }
    }

    #[test]
    fn dust_takes_from_the_lines_what_energy_balance_reemits() {
        let data = data();
        let config =
            ModelConfig { igm: IgmModel::None, max_redshift: 10.0, line_placement: LinePlacement::Exact, ..ModelConfig::default() };
        let model = SpsModel::new(&data, filters(), config).unwrap();
        for (av, eta) in [(0.05, 1.0), (0.7, 1.5), (3.0, 4.0)] {
            let (_, d) = model.photometry(&burst(1.0, 0.5e-3, 0.0, -2.0, av, eta)).unwrap();
            let absorbed: f64 = LINE_WAVE_AA
                .iter()
                .enumerate()
                .map(|(il, &l)| 1e8 * line_lum(1, 1, 0, il) * (1.0 - 10f64.powf(-0.4 * calzetti2000_a_over_av(l) * av * eta)))
                .sum();
            let rel = (d.dust_luminosity_lsun / absorbed - 1.0).abs();
            assert!(rel < 1e-6, "A_V={av} η={eta}: {} L☉ vs {absorbed} (rel {rel:.1e})", d.dust_luminosity_lsun);
        }
    }
}
