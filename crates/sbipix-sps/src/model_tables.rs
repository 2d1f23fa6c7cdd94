//! The tables `SpsModel::new` builds once from the raw grids: stellar populations and nebular
//! emission on the model's wavelength grid and age bins, and the absorbed-luminosity table of
//! energy balance.

use crate::absorption::AbsorptionTable;
use crate::constants::IONISING_CUT_AA;
use crate::error::SpsError;
use crate::igm::nearest;
use crate::lines::EmissionLines;
use crate::model::ModelConfig;
use crate::sampling::{AgeBins, interp, interp_sorted_f32};

/// The SSP spectra resampled to the model's wavelength grid and rebinned to its age bins, per
/// metallicity `[zmet × bins × wave]`, and the living-star mass fraction per (zmet, bin):
/// wavelength first (point sampling, zero outside), then age bins.
pub(crate) fn stellar_tables(lib: &crate::grids::SspLibrary, bins: &AgeBins, wave: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let nw = wave.len();
    let rebin = bins.rebin_weights(&lib.ages_yr);
    let nb = bins.len();
    let nz = lib.n_zmet();
    let mut ssp = vec![0.0; nz * nb * nw];
    let mut live_frac = vec![0.0; nz * nb];
    let mut resampled = vec![0.0; lib.n_ages() * nw];
    for iz in 0..nz {
        for ia in 0..lib.n_ages() {
            interp_sorted_f32(wave, &lib.wave_aa, lib.spectrum(iz, ia), &mut resampled[ia * nw..(ia + 1) * nw]);
        }
        for (j, weights) in rebin.iter().enumerate() {
            let out = &mut ssp[(iz * nb + j) * nw..(iz * nb + j + 1) * nw];
            let total: f64 = weights.iter().map(|(_, o)| o).sum();
            for &(k, o) in weights {
                let src = &resampled[k * nw..(k + 1) * nw];
                for (d, s) in out.iter_mut().zip(src) {
                    *d += o / total * s;
                }
            }
        }
        let lf: Vec<f64> = (0..lib.n_ages()).map(|ia| lib.live_frac[iz * lib.n_ages() + ia]).collect();
        for j in 0..nb {
            live_frac[iz * nb + j] = interp(bins.centres_yr[j], &lib.ages_yr, &lf, lf[0], lf[lf.len() - 1]);
        }
    }
    (ssp, live_frac)
}

/// Nebular continuum, and with `with_lines` the lines too (each in the pixel nearest its
/// wavelength, as bagpipes: [`crate::model::LinePlacement::NearestPixel`]), on the model's
/// wavelength grid `[zmet × logU × nebular ages × wave]`; the grids' age rows must be the first
/// model age bins, and reach past the birth-cloud bin.
pub(crate) fn nebular_tables(
    ng: &crate::grids::NebularGrid,
    nz: usize,
    bins: &AgeBins,
    bc_bin: usize,
    config: &ModelConfig,
    wave: &[f64],
    with_lines: bool,
) -> Result<Vec<f64>, SpsError> {
    let nw = wave.len();
    let n_neb_ages = ng.ages_yr.len();
    for (a, c) in ng.ages_yr.iter().zip(&bins.centres_yr) {
        if (a / c - 1.0).abs() > 1e-6 {
            return Err(SpsError::InvalidGrid {
                grid: "nebular".into(),
                reason: format!("nebular age {a} yr does not match the model age bin at {c} yr"),
            });
        }
    }
    if bc_bin >= n_neb_ages {
        return Err(SpsError::invalid("t_bc_gyr", config.t_bc_gyr, format!("nebular grids stop at {:.3e} yr", ng.ages_yr[n_neb_ages - 1])));
    }
    let nu = ng.logu.len();
    let mut neb = vec![0.0; nz * nu * n_neb_ages * nw];
    let ncw = ng.cont_wave_aa.len();
    let nl = ng.line_wave_aa.len();
    // Each line goes into the pixel nearest its wavelength, as flux / pixel width.
    let line_pix: Vec<Option<(usize, f64)>> = ng
        .line_wave_aa
        .iter()
        .map(|&l| {
            let i = nearest(wave, l);
            (with_lines && i != 0 && i != nw - 1).then(|| (i, 0.5 * (wave[i + 1] - wave[i - 1])))
        })
        .collect();
    for iz in 0..nz {
        for iu in 0..nu {
            for ia in 0..n_neb_ages {
                let g = (iz * nu + iu) * n_neb_ages + ia;
                let out = &mut neb[g * nw..(g + 1) * nw];
                interp_sorted_f32(wave, &ng.cont_wave_aa, &ng.cont[g * ncw..(g + 1) * ncw], out);
                for (il, pix) in line_pix.iter().enumerate() {
                    if let Some((i, w)) = pix {
                        out[*i] += ng.lines[g * nl + il] / w;
                    }
                }
            }
        }
    }
    Ok(neb)
}

/// The table of absorbed luminosity against A_V for energy balance: rows for every stellar
/// (zmet, bin), then with nebular emission the young stars without ionising light and the
/// nebular spectra of the birth-cloud bins, with the light dust takes from their emission lines
/// when `lines` holds them apart from `neb` ([`crate::model::LinePlacement::Exact`]). `dims` =
/// (zmet, bins, logU, nebular ages, birth-cloud bin).
pub(crate) fn absorption_table(
    wave: &[f64],
    coef: &[f64],
    ssp: &[f64],
    neb: &[f64],
    (nz, nb, nu, n_neb_ages, bc_bin): (usize, usize, usize, usize, usize),
    nebular: bool,
    lines: Option<&EmissionLines>,
) -> AbsorptionTable {
    let nw = wave.len();
    let n_dust = coef.len();
    // trapezoid weights of the grid, as in the energy-balance integral
    let tw = &crate::sampling::trapezoid_weights(wave)[..n_dust];
    let n_ion = wave.partition_point(|&l| l < IONISING_CUT_AA);
    let mut rows: Vec<Vec<f64>> = (0..nz * nb).map(|g| ssp[g * nw..(g + 1) * nw].to_vec()).collect();
    if nebular {
        for iz in 0..nz {
            for j in 0..=bc_bin {
                let mut v = ssp[(iz * nb + j) * nw..(iz * nb + j + 1) * nw].to_vec();
                v[..n_ion].iter_mut().for_each(|x| *x = 0.0);
                rows.push(v);
            }
        }
        for iz in 0..nz {
            for iu in 0..nu {
                for j in 0..=bc_bin {
                    let g = (iz * nu + iu) * n_neb_ages + j;
                    rows.push(neb[g * nw..(g + 1) * nw].to_vec());
                }
            }
        }
    }
    let mut table = AbsorptionTable::new(coef, tw, rows.iter().map(|r| r.as_slice()));
    if let (true, Some(lines)) = (nebular, lines) {
        // the nebular rows, in the order pushed above
        let base = nz * nb + nz * (bc_bin + 1);
        for iz in 0..nz {
            for iu in 0..nu {
                for j in 0..=bc_bin {
                    let row = base + (iz * nu + iu) * (bc_bin + 1) + j;
                    table.add_lines(row, &lines.dust_coef, lines.row((iz * nu + iu) * n_neb_ages + j));
                }
            }
        }
    }
    table
}
