//! The posterior-predictive check of models that infer the physical quantities (log M*,
//! log SFR₁₀₀, mass-weighted age) instead of the delayed-τ history's own τ and onset: the history
//! found by inversion must reproduce the forward model's photometry of the galaxy whose derived
//! quantities were given (the exact answer), and the inversion must return a history with the
//! requested age and specific SFR.

mod common;

use common::*;
use sbipix::inference::training_set::survey_filters;
use sbipix::sim::{Prior, Survey};
use sbipix::sps::{GalaxyParams, ModelConfig, Sfh, SfhShape, SfhSpec, SpsModel};
use {sbipix::inference::ppc::ppc_predict, sbipix::sps::DelayedTauInverse};

#[test]
fn inversion_recovers_age_and_specific_sfr() {
    let t_univ = 3.3;
    let inv = DelayedTauInverse::new(t_univ, (-2.0, 2.0), sbipix::sim::theta::LOG_SSFR_FLOOR);
    let mut worst: f64 = 0.0;
    for &age in &[0.15, 0.4, 1.0, 2.0, 3.2] {
        for &log_tau in &[-1.8, -1.0, -0.3, 0.4, 1.5] {
            let sm = Sfh::new(SfhShape::DelayedTau { age_gyr: age, tau_gyr: 10f64.powf(log_tau) }, 0.0, t_univ).unwrap().summary();
            let lssfr = sm.sfr_100myr.log10();
            if lssfr < -13.0 {
                continue; // floored in the prior: many histories share it
            }
            let (a, t) = inv.solve(sm.mass_weighted_age_gyr, lssfr).unwrap();
            let back = Sfh::new(SfhShape::DelayedTau { age_gyr: a, tau_gyr: t }, 0.0, t_univ).unwrap().summary();
            let e = (back.mass_weighted_age_gyr / sm.mass_weighted_age_gyr).log10().abs().max((back.sfr_100myr.log10() - lssfr).abs());
            worst = worst.max(e);
        }
    }
    assert!(worst < 2e-3, "worst mismatch {worst} dex");
}

#[test]
fn physical_theta_reproduces_the_forward_model_photometry() {
    let survey = Survey::jades();
    let filters = survey_filters(&store(), &survey, std::path::Path::new("."), &|m| eprintln!("{m}")).unwrap();
    let fwd = SpsModel::new(sps_data(), filters, ModelConfig::default()).unwrap();
    let prior = Prior::sbipix_delayed_tau();
    let names: Vec<String> =
        ["log_mstar", "log_sfr_100myr", "mass_weighted_age_gyr", "logzsol", "av_mag"].iter().map(|s| s.to_string()).collect();
    let mut checked = 0;
    let mut worst: f64 = 0.0;
    for (k, &z) in [0.5, 2.0, 4.0, 6.5].iter().enumerate() {
        let t_univ = fwd.config().cosmology.age_gyr(z);
        for (m, &age_frac) in [0.2, 0.5, 0.9].iter().enumerate() {
            for &log_tau in &[-1.0, 0.0, 1.0] {
                let age = age_frac * t_univ;
                let gp = GalaxyParams {
                    redshift: z,
                    sfh: SfhSpec::Parametric {
                        shape: SfhShape::DelayedTau { age_gyr: age, tau_gyr: 10f64.powf(log_tau) },
                        log_mass_formed: 9.0 + 0.3 * k as f64,
                    },
                    logzsol: -1.0 + 0.4 * m as f64,
                    av_mag: 0.2 + 0.5 * k as f64,
                    eta: 1.0,
                    logu: -2.0,
                };
                let (flux, d) = fwd.photometry(&gp).unwrap();
                if age < 0.3 || d.log_sfr_100myr - d.log_mass_formed < -13.0 {
                    // sSFR₁₀₀ and the age do not pin the history there: younger than a few 100 Myr most
                    // of it lies inside the 100 Myr window (see DelayedTauInverse)
                    continue;
                }
                let theta = [d.log_mstar, d.log_sfr_100myr, d.mass_weighted_age_gyr, gp.logzsol, gp.av_mag].map(|v| v as f32);
                let pred = &ppc_predict(&fwd, &prior, &names, &theta, 1, &[z])[0];
                for (b, (p, f)) in pred.iter().zip(&flux).enumerate() {
                    let rel = (p / f - 1.0).abs();
                    // 3 %: where τ ≫ age the history is a linear rise whatever τ, so (age_mw, sSFR) pin
                    // it only to ~1 % in the rest-frame UV (measured: 1.1 % at z 4, age 0.3, τ 1 Gyr)
                    assert!(rel < 0.03, "z {z} age {age:.2} log τ {log_tau} band {b}: predicted {p} µJy, forward model {f} µJy");
                    worst = worst.max(rel);
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 20, "only {checked} galaxies checked");
    assert!(worst > 0.0, "the comparison compared something");
    eprintln!("{checked} galaxies, worst relative flux difference {worst:.2e}");
}
