//! Photometric redshifts (`sbipix::inference::photoz`) on galaxies of known redshift made by the
//! full forward model, and p(z) against the likelihood evaluated point by point.
//!
//! `cargo test --release -p sbipix --test photoz -- --nocapture` prints the measured numbers.

mod common;

use common::*;
use sbipix::inference::likelihood::{ShapeLikelihood, compile_for};
use sbipix::inference::photoz::{PhotoZSettings, RedshiftTemplates};
use sbipix::sim::Prior;
use sbipix::sim::prior::ParamPrior;
use sbipix::sps::{ModelConfig, SpsModel};

fn model() -> SpsModel {
    SpsModel::new(sps_data(), sbipix_filters(), ModelConfig::default()).unwrap()
}

/// Coarser than the defaults, to keep the test short: 512 templates, 2 % steps in 1+z.
fn settings() -> PhotoZSettings {
    PhotoZSettings { templates: 512, step: 0.02, ..PhotoZSettings::default() }
}

#[test]
fn redshifts_of_simulated_galaxies_are_recovered_and_calibrated() {
    let model = model();
    let prior = Prior::sbipix_delayed_tau();
    let templates = RedshiftTemplates::build(&model, &prior, &settings(), 7.5, 3.0, &|_, _| {}).unwrap();
    // galaxies from the prior (z uniform on 0–7.5) with 10⁸·⁵–10¹¹ M☉ formed, 10 % flux errors
    let mut sim = prior.clone();
    for (name, p) in sim.params.iter_mut() {
        if name == "log_mass_formed" {
            *p = ParamPrior::Uniform { min: 8.5, max: 11.0 };
        }
        if name == "redshift" {
            *p = ParamPrior::Uniform { min: 0.2, max: 7.3 };
        }
    }
    let mut rng = sbipix::sim::simulate::sample_rng(20261202, 0);
    let mut noise = sbipix::stats::SplitMix64::new(77);
    let cosmo = model.config().cosmology;
    let n = 60;
    let (mut dz, mut inside) = (Vec::new(), 0);
    for _ in 0..n {
        let draw = sim.sample(&mut rng, &cosmo);
        let (flux, _) = model.photometry(&draw.params).unwrap();
        let sigma: Vec<f64> = flux.iter().map(|f| 0.1 * f.abs() + 1e-6).collect();
        let obs: Vec<f64> = flux
            .iter()
            .zip(&sigma)
            .map(|(f, s)| f + s * sbipix::stats::normal::box_muller(noise.next_f64_open(), noise.next_f64()))
            .collect();
        let pz = templates.posterior(&obs, &sigma, &vec![true; flux.len()], 0.0).unwrap();
        let z = draw.params.redshift;
        dz.push((pz.percentiles[1] - z) / (1.0 + z));
        // the 68 % interval, widened by half a grid cell (the grid's own resolution)
        let half_cell = 0.01 * (1.0 + z);
        if pz.percentiles[0] - half_cell <= z && z <= pz.percentiles[2] + half_cell {
            inside += 1;
        }
    }
    let mut abs: Vec<f64> = dz.iter().map(|d| d.abs()).collect();
    abs.sort_by(f64::total_cmp);
    let nmad = 1.4826 * abs[n / 2];
    let outliers = abs.iter().filter(|d| **d > 0.15).count();
    let coverage = inside as f64 / n as f64;
    eprintln!("{n} galaxies: σ_NMAD {nmad:.4}, outliers {outliers}, 68 % coverage {coverage:.2}");
    assert!(nmad < 0.03, "σ_NMAD {nmad}");
    assert!(outliers <= 3, "{outliers} outliers of {n}");
    // binomial: 68 % of 60 ± 3σ = 0.68 ± 0.18
    assert!((0.50..=0.86).contains(&coverage), "68 % intervals hold the truth in {coverage}");
}

#[test]
fn grid_probabilities_are_the_likelihood_averaged_over_the_templates() {
    grid_probabilities_against_the_likelihood(&Prior::sbipix_delayed_tau(), (1.0, 3.0), 2.0, 10.0);
}

/// The same under a prior on the mass per kpc², whose window moves with each node's pixel area
/// (the likelihood resolves it at its own redshift: an independent path). At z 0.1–0.6 the 0.03″
/// pixel's area grows tenfold, and a galaxy of 10³ M☉ formed lies inside the window at the low
/// nodes (from 10^2.5 at z = 0.1) and below it at the high ones (10^3.6 at z = 0.6): one window
/// shared by the nodes fails it.
#[test]
fn grid_probabilities_under_a_mass_per_kpc2_prior() {
    grid_probabilities_against_the_likelihood(&Prior::physical_delayed_tau(), (0.1, 0.6), 0.3, 3.0);
}

fn grid_probabilities_against_the_likelihood(prior: &Prior, (z_min, z_max): (f64, f64), z_true: f64, log_mass_formed: f64) {
    // p(z_i)/p(z_j) at three interior nodes against ShapeLikelihood::eval averaged over the same
    // shape points (the likelihood's own compiled photometry and mass quadrature, point by point).
    let model = model();
    let prior = prior.clone();
    let s = PhotoZSettings { templates: 64, step: 0.02, z_min, z_max: Some(z_max), ..PhotoZSettings::default() };
    let templates = RedshiftTemplates::build(&model, &prior, &s, z_max, 3.0, &|_, _| {}).unwrap();
    let zs = templates.redshifts().to_vec();
    let p = sbipix::sps::GalaxyParams {
        redshift: z_true,
        sfh: sbipix::sps::SfhSpec::Parametric { shape: sbipix::sps::SfhShape::DelayedTau { age_gyr: 1.0, tau_gyr: 0.5 }, log_mass_formed },
        logzsol: -0.5,
        av_mag: 0.5,
        logu: -2.0,
        eta: 1.0,
    };
    let (flux, _) = model.photometry(&p).unwrap();
    let sigma: Vec<f64> = flux.iter().map(|f| 0.2 * f.abs()).collect();
    let seen = vec![true; flux.len()];
    let pz = templates.posterior(&flux, &sigma, &seen, 0.0).unwrap();
    let (space, _) = sbipix::inference::likelihood::ShapeSpace::of(&prior.at_redshift(z_true, &model.config().cosmology)).unwrap();
    let brute = |i: usize| -> f64 {
        let z = zs[i];
        let compiled = compile_for(&model, &prior, z).unwrap();
        let lk = ShapeLikelihood::new(&model, &compiled, &prior, &flux, &sigma, &seen, z, 0.0).unwrap().with_mass_headroom(3.0);
        let vals: Vec<f64> = (0..64)
            .map(|t| {
                let mut u = vec![0.0; space.dim()];
                sbipix::stats::halton(64 + t as u64, &mut u);
                lk.eval(&u).0
            })
            .collect();
        let top = vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        top + vals.iter().map(|v| (v - top).exp()).sum::<f64>().ln()
    };
    let width = |i: usize| 0.5 * (zs[i + 1] - zs[i - 1]);
    let (a, b, c) = (3, zs.len() / 2, zs.len() - 4);
    let (la, lb, lc) = (brute(a), brute(b), brute(c));
    for (i, j, li, lj) in [(a, b, la, lb), (c, b, lc, lb)] {
        let ours = (pz.prob[i] / width(i)).ln() - (pz.prob[j] / width(j)).ln();
        let want = li - lj;
        eprintln!("ln p(z={:.3})/p(z={:.3}): {ours:.5} vs {want:.5}", zs[i], zs[j]);
        assert!((ours - want).abs() < 2e-3, "{ours} vs {want}");
    }
}

#[test]
fn bad_input_and_flags() {
    let model = model();
    let prior = Prior::sbipix_delayed_tau();
    // a grid beyond the forward model's redshifts
    let e = RedshiftTemplates::build(&model, &prior, &settings(), 40.0, 3.0, &|_, _| {}).err().unwrap().to_string();
    assert!(e.contains("z_max") && e.contains("forward model"), "{e}");
    let e = PhotoZSettings { step: 0.0, ..settings() }.validate().unwrap_err().to_string();
    assert!(e.contains("z_step"), "{e}");
    let s = PhotoZSettings { templates: 64, step: 0.05, ..PhotoZSettings::default() };
    let templates = RedshiftTemplates::build(&model, &prior, &s, 7.5, 3.0, &|_, _| {}).unwrap();
    let nb = model.n_bands();
    // no usable band: an error naming it
    let e = templates.posterior(&vec![1.0; nb], &vec![-1.0; nb], &vec![true; nb], 0.0).err().unwrap().to_string();
    assert!(e.contains("no band"), "{e}");
    // two bands, both below 1σ: flagged, and p(z) spreads over the grid
    let mut seen = vec![false; nb];
    seen[0] = true;
    seen[8] = true;
    let pz = templates.posterior(&vec![0.01; nb], &vec![0.1; nb], &seen, 0.0).unwrap();
    assert!(pz.flags.contains(&"few_bands".to_string()) && pz.flags.contains(&"undetected".to_string()), "{:?}", pz.flags);
    assert!(pz.percentiles[2] - pz.percentiles[0] > 2.0, "{:?}", pz.percentiles);
    // wrong lengths
    assert!(templates.posterior(&[1.0], &[0.1], &[true], 0.0).is_err());
}
