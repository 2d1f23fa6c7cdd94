//! The shipped default model (`models/default`, embedded in the binary), checked cheaply on every
//! CI run: fresh simulations from its own prior and survey (`prior.toml`, `survey.toml`), its
//! network posterior (no refinement), through `sbipix validate`'s own code path.
//!
//! * R² of the posterior medians against the truths, thresholds below what was measured on these
//!   cases (printed with `-- --nocapture`) by a margin larger than their scatter, far above what
//!   a broken model gives;
//! * the 68 % coverage of every parameter within exact 99.9 % binomial bounds of 0.68 for the
//!   number of independent cases; the 95 % coverage within the same bounds around the documented
//!   target range, 0.92–0.98 (docs/validation.md). Not around 0.95 itself: the mass-weighted
//!   age's 95 % intervals hold the truth in 0.915–0.941 of the cases of seven seeds (below), a
//!   slight under-coverage at 95 %, within the target.

mod common;

use common::*;
use sbipix::diagnostics::binomial_interval;
use sbipix::validation::simulated::{ReferenceOptions, validate};

/// Not used by any other test, validation run or training set (the default model was trained on
/// seed 23).
const SEED: u64 = 160_016;
/// Fresh simulations; ≈ 55 % pass the S/N > 5 map selection (the physical prior's pixels are
/// fainter than SBIPIX's).
const N: usize = 1000;
const DRAWS: usize = 200;

/// R² thresholds: (parameter, minimum). Measured on these cases (546 of 1000 with S/N > 5):
/// log M* 0.964, log SFR₁₀₀ 0.590, mass-weighted age 0.589, log Z 0.070, A_V 0.809; over seven
/// seeds (this one and 1001–1006, same N) the mean and standard deviation were 0.963 ± 0.004,
/// 0.653 ± 0.046, 0.597 ± 0.036, 0.062 ± 0.024 and 0.831 ± 0.019: each threshold is ≥ 3.5
/// standard deviations below the mean (log Z's at 0: per-pixel metallicity is barely
/// constrained, and R² ≥ 0 still says the medians beat the mean).
const R2_MIN: [(&str, f64); 5] =
    [("log_mstar", 0.94), ("log_sfr_100myr", 0.45), ("mass_weighted_age_gyr", 0.45), ("logzsol", 0.0), ("av_mag", 0.75)];

#[test]
fn default_model_is_accurate_and_calibrated_on_fresh_simulations() {
    let dir = sbipix::default_model_dir().expect("default model");
    let out = tempfile::tempdir().unwrap();
    let report = validate(
        &store(),
        &dir,
        N,
        SEED,
        DRAWS,
        5.0,
        None,
        ReferenceOptions::default(),
        None,
        None,
        &out.path().join("report"),
        false,
        &|m| eprintln!("{m}"),
    )
    .unwrap();
    let n = report.n_selected;
    eprintln!("{n} of {N} cases selected (S/N > 5)");
    assert!(n >= 450, "only {n} of {N} cases pass S/N > 5");
    for (name, min) in R2_MIN {
        let m = &report.parameters[name];
        eprintln!("{name}: R² {:.3} (min {min}), coverage 68 % {:.3}, 95 % {:.3}, NMAD {:.3}", m.r2, m.coverage_68, m.coverage_95, m.nmad);
    }
    assert_eq!(report.parameters.len(), R2_MIN.len(), "{:?}", report.parameters.keys());
    for (name, min) in R2_MIN {
        let m = &report.parameters[name];
        assert!(m.r2 >= min, "{name}: R² {:.4} below {min}", m.r2);
        // coverage fractions back to counts of the n independent cases
        let count = |c: f64| (c * n as f64).round() as usize;
        assert_coverage(&format!("{name}, 68 %"), count(m.coverage_68), n, 0.68);
        let k95 = count(m.coverage_95);
        let (lo, hi) = (binomial_interval(n, 0.92, COVERAGE_CONFIDENCE).0, binomial_interval(n, 0.98, COVERAGE_CONFIDENCE).1);
        assert!(
            (lo..=hi).contains(&k95),
            "{name}, 95 %: {k95} of {n} truths inside; intervals of coverage 0.92–0.98 give {lo}–{hi} with {} % probability",
            100.0 * COVERAGE_CONFIDENCE
        );
    }
}
