//! `sbipix calibrate` ([`sbipix::validation::calibrate`]): the quantile maps it learns make the
//! calibration cases' intervals nominal, they are stored beside untouched weights, every draw of
//! the calibrated model is the network's draw passed through them, and a broken map is refused.
//! (That the maps are right is tested exactly in `sbipix-diagnostics`' recalibration tests; that
//! the shipped default holds on fresh cases, in `default_model.rs`.)

mod common;

use common::*;
use sbipix::Posterior;
use sbipix::validation::calibrate::{CalibrationSettings, calibrate};

/// Seed used by no other test, validation or training set.
const SEED: u64 = 170_017;

#[test]
fn calibrated_copy_holds_maps_that_every_draw_goes_through() {
    let base = sbipix::builtin_model_dir("sbipix2025").unwrap().expect("built-in model");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("calibrated");
    let settings = CalibrationSettings { n: 3000, seed: SEED, draws: 200, snr_min: 5.0 };
    let info = calibrate(&store(), &base, &settings, &out, false, &|m| eprintln!("{m}")).unwrap();
    let m = info.n_selected;
    assert!(m >= 500, "{m} cases selected");
    // in-sample, the maps make the coverage nominal up to the discreteness of m cases and of the
    // map's knots (0.5 %)
    for (name, after) in &info.coverage_after {
        for (c, level) in after.iter().zip([0.68, 0.95]) {
            assert!((c - level).abs() <= 0.01 + 2.0 / m as f64, "{name} at {level}: {c} after calibration");
        }
    }
    // weights, flow and prior untouched; model.json carries the maps
    for f in ["weights.safetensors", "flow.json", "prior.toml", "survey.toml"] {
        assert_eq!(std::fs::read(base.join(f)).unwrap(), std::fs::read(out.join(f)).unwrap(), "{f}");
    }
    let raw = Posterior::load(&base).unwrap();
    let cal = Posterior::load(&out).unwrap();
    let maps = &cal.manifest.calibration.as_ref().expect("calibration recorded").maps;
    assert_eq!(maps.len(), raw.manifest.parameters.len());
    // the calibrated model's draws are the network's draws through the maps, draw by draw
    let nb = raw.manifest.bands.len();
    let (pixels, n) = (7, 300);
    let flux: Vec<f64> =
        (0..pixels * nb).map(|i| 0.05 * (1.0 + (i % nb) as f64 / nb as f64) + 0.002 * ((i * 7919 % 13) as f64 - 6.0) / 6.0).collect();
    let sigma = vec![0.002; pixels * nb];
    let seen = vec![true; pixels * nb];
    let z = vec![2.0; pixels];
    let mut expected = raw.sample(&flux, &sigma, &seen, &z, n, 11).unwrap();
    let got = cal.sample(&flux, &sigma, &seen, &z, n, 11).unwrap();
    let d = raw.manifest.parameters.len();
    let mut scratch = Vec::new();
    for (j, p) in raw.manifest.parameters.iter().enumerate() {
        for px in 0..pixels {
            maps[&p.name].apply_strided(&mut expected[px * n * d + j..], n, d, &mut scratch);
        }
    }
    assert_eq!(got, expected);
    assert_ne!(got, raw.sample(&flux, &sigma, &seen, &z, n, 11).unwrap(), "the maps changed nothing");

    // a second run into the same folder without overwrite is refused and leaves it as it was
    let before = std::fs::read(out.join("model.json")).unwrap();
    assert!(calibrate(&store(), &base, &settings, &out, false, &|_| {}).is_err());
    assert_eq!(std::fs::read(out.join("model.json")).unwrap(), before);
    // a map that is not a quantile table, or names no parameter, is refused at load, naming the file
    let good: serde_json::Value = serde_json::from_slice(&before).unwrap();
    let renamed = {
        let mut v = good.clone();
        let maps = v["calibration"]["maps"].as_object_mut().unwrap();
        let m = maps.remove("log_mstar").unwrap();
        maps.insert("no_such_parameter".into(), m);
        v
    };
    let not_monotone = {
        let mut v = good.clone();
        v["calibration"]["maps"]["log_mstar"]["inverse_cdf"][1] = serde_json::json!(0.9);
        v
    };
    for broken in [renamed, not_monotone] {
        std::fs::write(out.join("model.json"), serde_json::to_string_pretty(&broken).unwrap()).unwrap();
        let e = Posterior::load(&out).err().expect("a broken map is refused").to_string();
        assert!(e.contains("model.json") && e.contains("calibration"), "{e}");
    }
}
