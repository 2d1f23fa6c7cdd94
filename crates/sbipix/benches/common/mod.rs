//! The galaxies the forward-model benchmarks time (shared by `photometry.rs` and `compiled.rs`).

use sbipix::sps::{GalaxyParams, SpsModel};

/// Deterministic pseudo-random delayed-τ galaxies (SplitMix64) over SBIPIX's prior ranges, at
/// `redshift` or, with None, at redshifts drawn uniformly in 0.01–7.5.
pub fn galaxies(model: &SpsModel, n: usize, redshift: Option<f64>) -> Vec<GalaxyParams> {
    let mut g = sbipix::stats::SplitMix64::new(sbipix::stats::rng::GOLDEN_GAMMA);
    let mut u = move || g.next_f64();
    let cosmo = model.config().cosmology;
    (0..n)
        .map(|_| {
            let z = redshift.unwrap_or_else(|| 0.01 + 7.49 * u());
            let age = cosmo.age_gyr(z) * (0.001 + 0.999 * u());
            let mut p = GalaxyParams::delayed_tau(z, 4.0 + 8.0 * u(), age, 10f64.powf(-2.0 + 4.0 * u()));
            p.logzsol = -2.27 + 2.67 * u();
            p.av_mag = 4.3 * u();
            p
        })
        .collect()
}
