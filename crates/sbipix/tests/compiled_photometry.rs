//! Photometry compiled per redshift (`sbipix_sps::CompiledPhotometry`) against the full forward
//! model (`SpsModel::photometry`), the exact answer it tabulates.
//!
//! Requirement (issue 17): max |Δm| ≤ 0.002 mag over 10⁴ prior draws at each of z = 0.5, 2,
//! 4.33 and 7, every band with flux. Measured: see the printout
//! (`cargo test --release -p sbipix --test compiled_photometry -- --nocapture`).

mod common;

use common::*;
use sbipix::sim::Prior;
use sbipix::sim::prior::ParamPrior;
use sbipix::sps::{CompileRange, CompiledPhotometry, ModelConfig, SpsModel, Workspace};

fn model() -> SpsModel {
    SpsModel::new(sps_data(), sbipix_filters(), ModelConfig::default()).unwrap()
}

/// Draws galaxies from `prior` at `z` (the simulator's own prior sampling) and returns the
/// largest |Δm| between compiled and full photometry, with the worst case's description.
fn worst_dm(model: &SpsModel, prior: &Prior, z: f64, range: CompileRange, n: usize, seed: u64) -> (f64, String) {
    let compiled = CompiledPhotometry::new(model, z, range).unwrap();
    let mut rng = sbipix::sim::simulate::sample_rng(seed, 0);
    let cosmo = model.config().cosmology;
    let mut ws = Workspace::default();
    let mut fast = vec![0.0; model.n_bands()];
    let mut worst = (0.0f64, String::new());
    let bands = model.band_names();
    let mut prior = prior.clone();
    for (name, pp) in prior.params.iter_mut() {
        if name == "redshift" {
            *pp = ParamPrior::Fixed { value: z };
        }
    }
    for i in 0..n {
        let draw = prior.sample(&mut rng, &cosmo);
        let p = draw.params;
        let (full, d_full) = model.photometry(&p).unwrap();
        let d_fast = compiled.photometry_into(model, &p, &mut ws, &mut fast).unwrap();
        assert!((d_fast.log_mstar - d_full.log_mstar).abs() < 1e-12, "living mass differs: {d_fast:?} vs {d_full:?}");
        // The absorbed luminosity (energy balance) against the full model's own table
        // (Catmull–Rom in A_V/(1 + A_V), 1e-6).
        if d_full.dust_luminosity_lsun > 0.0 {
            let dr = d_fast.dust_luminosity_lsun / d_full.dust_luminosity_lsun - 1.0;
            assert!(dr.abs() < 1e-4, "absorbed luminosity off by {dr:.2e} at A_V {}", p.av_mag);
        }
        for b in 0..full.len() {
            if full[b] <= 0.0 && fast[b] <= 0.0 {
                continue;
            }
            let dm = (2.5 * (fast[b] / full[b]).log10()).abs();
            if dm.is_nan() || dm > worst.0 {
                worst = (
                    dm,
                    format!(
                        "draw {i} band {}: {} vs {} µJy, A_V {:.3} logZ {:.2} logU {:.2} η {:.2}",
                        bands[b], fast[b], full[b], p.av_mag, p.logzsol, p.logu, p.eta
                    ),
                );
            }
        }
    }
    worst
}

#[test]
fn compiled_photometry_matches_the_full_model_over_the_prior() {
    let model = model();
    let prior = Prior::sbipix_delayed_tau();
    for (z, seed) in [(0.5, 1), (2.0, 2), (4.33, 3), (7.0, 4)] {
        let (dm, case) = worst_dm(&model, &prior, z, CompileRange::default(), 10_000, seed);
        eprintln!("z = {z}: max |Δm| = {dm:.2e} mag ({case})");
        assert!(dm <= 0.002, "z = {z}: max |Δm| = {dm} mag at {case}");
    }
}

#[test]
fn compiled_photometry_with_free_ionisation_and_young_dust() {
    let model = model();
    let prior = Prior::from_toml_str(
        "[parameters]\nlogu = { min = -4.0, max = -1.0 }\neta = { min = 1.0, max = 3.0 }\nav_mag = { min = 0.0, max = 3.0 }\n",
        "test prior",
    )
    .unwrap();
    let range = CompileRange { av_max_mag: 3.0, eta_max: 3.0, logu: (-4.0, -1.0) };
    for (z, seed) in [(1.0, 5), (6.0, 6)] {
        let (dm, case) = worst_dm(&model, &prior, z, range, 3000, seed);
        eprintln!("z = {z} (log U, η free): max |Δm| = {dm:.2e} mag ({case})");
        assert!(dm <= 0.002, "z = {z}: max |Δm| = {dm} mag at {case}");
    }
    // log U free at η = 1 (`--free-logu`): the young stars folded into the old stars' tables,
    // the nebular ones apart (interpolated in log U)
    let prior = Prior::from_toml_str("[parameters]\nlogu = { min = -4.0, max = -1.0 }\n", "test prior").unwrap();
    let range = CompileRange { av_max_mag: 4.3, eta_max: 1.0, logu: (-4.0, -1.0) };
    let (dm, case) = worst_dm(&model, &prior, 2.0, range, 2000, 8);
    eprintln!("z = 2 (log U free, η = 1): max |Δm| = {dm:.2e} mag ({case})");
    assert!(dm <= 0.002, "max |Δm| = {dm} mag at {case}");
}

#[test]
fn compiled_photometry_refuses_what_it_was_not_built_for() {
    let model = model();
    let c = CompiledPhotometry::new(&model, 2.0, CompileRange::default()).unwrap();
    let mut ws = Workspace::default();
    let mut f = vec![0.0; model.n_bands()];
    let mut p = sbipix::sps::GalaxyParams::delayed_tau(2.0, 9.0, 1.0, 0.5);
    assert!(c.photometry_into(&model, &p, &mut ws, &mut f).is_ok());
    p.av_mag = 5.0;
    let e = c.photometry_into(&model, &p, &mut ws, &mut f).unwrap_err().to_string();
    assert!(e.contains("av_mag") && e.contains("compiled"), "{e}");
    p.av_mag = 1.0;
    // built for η = 1 (young stars folded into the old stars' table): another η is refused
    p.eta = 1.5;
    let e = c.photometry_into(&model, &p, &mut ws, &mut f).unwrap_err().to_string();
    assert!(e.contains("eta") && e.contains("compiled"), "{e}");
    p.eta = 1.0;
    p.redshift = 2.1;
    assert!(c.photometry_into(&model, &p, &mut ws, &mut f).is_err());
    assert!(CompiledPhotometry::new(&model, 99.0, CompileRange::default()).is_err());
}

#[test]
fn compiled_photometry_of_non_parametric_histories() {
    // The tables need only the mass per age bin: dense_basis histories work unchanged.
    let model = model();
    let prior = Prior::sbipix_dense_basis();
    let (dm, case) = worst_dm(&model, &prior, 3.0, CompileRange::default(), 1000, 7);
    eprintln!("z = 3 (dense_basis): max |Δm| = {dm:.2e} mag ({case})");
    assert!(dm <= 0.002, "max |Δm| = {dm} mag at {case}");
}

/// bagpipes' conventions (nearest-pixel lines on its z ≤ 10 grid, filter curves resampled onto
/// the model grid, its SFH sampling; `scripts/compare_exact_bagpipes.py` fits with them): the
/// compiled photometry follows the full model there too, so the exact posteriors of that
/// comparison are of the model named.
#[test]
fn compiled_photometry_matches_the_full_model_with_bagpipes_conventions() {
    use sbipix::sps::{FilterSampling, LinePlacement, SfhBinning};
    let config = ModelConfig {
        line_placement: LinePlacement::NearestPixel,
        filter_sampling: FilterSampling::ModelGrid,
        sfh_binning: SfhBinning::BagpipesGrid,
        max_redshift: 10.0,
        ..ModelConfig::default()
    };
    let model = SpsModel::new(sps_data(), sbipix_filters(), config).unwrap();
    let prior = Prior::sbipix_delayed_tau();
    for (z, seed) in [(0.5, 5), (2.0, 6), (5.7, 7)] {
        let (dm, case) = worst_dm(&model, &prior, z, CompileRange::default(), 2_000, seed);
        eprintln!("bagpipes' conventions, z = {z}: max |Δm| = {dm:.2e} mag ({case})");
        assert!(dm <= 0.002, "z = {z}: max |Δm| = {dm} mag at {case}");
    }
}
