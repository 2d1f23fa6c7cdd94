//! The shipped default model (`models/default`, embedded in the binary), checked cheaply on every
//! CI run: fresh simulations from its own prior and survey (`prior.toml`, `survey.toml`), its
//! network posterior (no refinement), through `sbipix validate`'s own code path.
//!
//! * R² of the posterior medians against the truths, thresholds below what was measured on these
//!   cases (printed with `-- --nocapture`) by a margin larger than their scatter, far above what
//!   a broken model gives;
//! * the 68 % and 95 % coverage of every parameter within exact 99.9 % binomial bounds of 0.68
//!   and 0.95 for the number of independent cases. The network alone under-covers at 95 % (the
//!   age's intervals held the truth in 0.929 of the calibration's cases); the model's calibration
//!   maps (`sbipix calibrate`, seed 20261217) correct it, and with ≈ 4 400 cases the bounds are
//!   tight enough (0.939–0.961) that the default without its maps fails here.

mod common;

use common::*;
use sbipix::validation::simulated::{ReferenceOptions, validate};

/// Not used by any other test, validation run or training set (the default model was trained on
/// seed 26).
const SEED: u64 = 160_016;
/// Fresh simulations; ≈ 55 % pass the S/N > 5 map selection (the physical prior's pixels are
/// fainter than SBIPIX's).
const N: usize = 8000;
const DRAWS: usize = 200;

/// R² thresholds: (parameter, minimum). Over seven seeds (this one and 1001–1006) with 1000 cases
/// each (≈ 560 selected), the calibrated network's mean and standard deviation were 0.980 ±
/// 0.002, 0.654 ± 0.027, 0.454 ± 0.023, 0.196 ± 0.027 and 0.866 ± 0.015. R² scatters as 1/√n, so
/// on these 8000 cases (≈ 4 400 selected) the standard deviations are ≈ 2.8 times smaller: each
/// threshold is ≥ 6 of them below the mean (log M* 0.96, log SFR₁₀₀ 0.55, age 0.40, log Z 0.10,
/// A_V 0.80), far above what a broken model gives. Per-pixel metallicity is barely constrained (the
/// unfocused default of 2026-12-03 gave 0.066 ± 0.027; training on the S/N of real maps,
/// `--focus-snr`, raised it). The age's R² is lower than under SBIPIX's uniform onset (0.60)
/// because the default's age prior spans one decade instead of all of cosmic time: less variance
/// for the same errors (docs/validation.md). The values of this seed are printed with
/// `-- --nocapture` and recorded in docs/validation.md.
const R2_MIN: [(&str, f64); 5] =
    [("log_mstar", 0.96), ("log_sfr_100myr", 0.55), ("mass_weighted_age_gyr", 0.40), ("logzsol", 0.10), ("av_mag", 0.80)];

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
    assert!(n >= 3600, "only {n} of {N} cases pass S/N > 5");
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
        assert_coverage(&format!("{name}, 95 %"), count(m.coverage_95), n, 0.95);
    }
}
