//! Energy balance: the luminosity re-emitted by dust (tabulated in A_V for speed) equals the
//! luminosity the attenuation removes, integrated directly over the full spectrum; with the
//! emission lines in their nearest pixels and with the lines at their exact wavelengths.

mod common;

use common::*;
use sbipix::sps::{GalaxyParams, IgmModel, LinePlacement, ModelConfig, SpsModel};

#[test]
fn absorbed_luminosity_equals_dust_luminosity_lines_in_pixels() {
    absorbed_luminosity_equals_dust_luminosity(LinePlacement::NearestPixel);
}

/// The lines' share comes from their own table rows (`AbsorptionTable::add_lines`, Calzetti at
/// each line's wavelength); `spectrum()` draws each line, attenuated at its own wavelength, in
/// its nearest pixel as luminosity / pixel width, so the trapezoid integral below holds each
/// line's exact luminosity before and after dust and checks those rows.
#[test]
fn absorbed_luminosity_equals_dust_luminosity_exact_lines() {
    absorbed_luminosity_equals_dust_luminosity(LinePlacement::Exact);
}

fn absorbed_luminosity_equals_dust_luminosity(line_placement: LinePlacement) {
    // Without IGM and without dust emission the spectrum is pure attenuated starlight, so the
    // absorbed luminosity is ∫ (L(A_V = 0) − L(A_V)) dλ over the model grid.
    let direct_cfg = ModelConfig { igm: IgmModel::None, dust_emission: false, line_placement, ..ModelConfig::default() };
    let direct = SpsModel::new(sps_data(), sbipix_filters(), direct_cfg).unwrap();
    let tab_cfg = ModelConfig { igm: IgmModel::None, line_placement, ..ModelConfig::default() };
    let tab = SpsModel::new(sps_data(), sbipix_filters(), tab_cfg).unwrap();
    let wave = direct.wave_aa().to_vec();
    let lum = |m: &SpsModel, p: &GalaxyParams| -> Vec<f64> {
        // spectrum() returns f_ν = K L λ²; K cancels in the ratio below.
        let (_, fnu) = m.spectrum(p).unwrap();
        fnu.iter().zip(&wave).map(|(f, w)| f / (w * w)).collect()
    };
    let cases = [
        (0.5, 10.0, 0.3, 0.1, -0.5, 0.7, 1.0),
        (2.0, 9.0, 0.05, 0.02, -1.5, 2.5, 2.0),
        (6.0, 8.0, 0.5, 1.0, 0.3, 0.02, 1.0),
        (1.0, 11.0, 4.0, 0.5, 0.0, 6.0, 3.0),
    ];
    for (z, m, age, tau, lz, av, eta) in cases {
        let mut p = GalaxyParams::delayed_tau(z, m, age, tau);
        p.logzsol = lz;
        p.eta = eta;
        let before = lum(&direct, &p);
        p.av_mag = av;
        let after = lum(&direct, &p);
        let mut integral = 0.0;
        for i in 1..wave.len() {
            let d0 = before[i - 1] - after[i - 1];
            let d1 = before[i] - after[i];
            integral += 0.5 * (d0 + d1) * (wave[i] - wave[i - 1]);
        }
        // K = flux constant: recover L☉ from f_ν/λ² with a flat-f_ν spectrum of 1 µJy.
        let k = 1.0 / (direct.flat_fnu_luminosity(1.0, z)[0] * wave[0] * wave[0]);
        let e_direct = integral / k;
        let (_, d) = tab.photometry(&p).unwrap();
        let rel = (d.dust_luminosity_lsun / e_direct - 1.0).abs();
        assert!(rel < 1e-5, "z={z} A_V={av} eta={eta}: table {} vs direct {e_direct} (rel {rel:.1e})", d.dust_luminosity_lsun);
    }
}
