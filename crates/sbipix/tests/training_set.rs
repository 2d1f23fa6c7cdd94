//! Training sets: the forward model, the survey noise and the files, checked against exact
//! answers — the noiseless fluxes and derived quantities are the forward model's own for the
//! stored parameters, the noise has unit pulls and the survey's σ, the same seed gives the same
//! bytes for 1 and 2 threads, and numpy reads the files.

mod common;

use common::*;
use sbipix::inference::training_set::{read_dir, simulate_to_dir, survey_filters};
use sbipix::sim::{Prior, SimulationSpec, Survey};
use sbipix::sps::{GalaxyParams, ModelConfig, SfhShape, SfhSpec, SpsModel};

fn jades_model() -> (SpsModel, Survey) {
    let survey = Survey::jades();
    let filters = survey_filters(&store(), &survey, std::path::Path::new("."), &|m| eprintln!("{m}")).unwrap();
    (SpsModel::new(sps_data(), filters, ModelConfig::default()).unwrap(), survey)
}

fn run(model: &SpsModel, survey: &Survey, prior: &Prior, spec: SimulationSpec, threads: usize, out: &std::path::Path) {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| simulate_to_dir(model, prior, survey, spec, None, out, false, &|_| {})).unwrap();
}

#[test]
fn same_seed_same_bytes_for_any_thread_count() {
    let (model, survey) = jades_model();
    let dir = tempfile::tempdir().unwrap();
    let spec = SimulationSpec { n: 3000, seed: 7, drop_rate: 0.1 };
    for prior in [Prior::sbipix_delayed_tau(), Prior::sbipix_dense_basis()] {
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        run(&model, &survey, &prior, spec, 1, &a);
        run(&model, &survey, &prior, spec, 2, &b);
        for f in [
            "theta.npy",
            "redshift.npy",
            "flux_true_ujy.npy",
            "flux_obs_ujy.npy",
            "sigma_ujy.npy",
            "observed.npy",
            "manifest.json",
            "prior.toml",
            "survey.toml",
        ] {
            assert_eq!(std::fs::read(a.join(f)).unwrap(), std::fs::read(b.join(f)).unwrap(), "{f} differs between 1 and 2 threads");
        }
        // a different seed gives different draws
        let c = dir.path().join("c");
        run(&model, &survey, &prior, SimulationSpec { seed: 8, ..spec }, 2, &c);
        assert_ne!(std::fs::read(a.join("theta.npy")).unwrap(), std::fs::read(c.join("theta.npy")).unwrap());
        for d in [a, b, c] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }
}

#[test]
fn contents_agree_with_the_forward_model_and_the_survey() {
    let (model, survey) = jades_model();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ts");
    let prior = Prior::sbipix_delayed_tau();
    let n = 4000;
    simulate_to_dir(&model, &prior, &survey, SimulationSpec { n, seed: 1, drop_rate: 0.2 }, None, &out, false, &|_| {}).unwrap();
    let (set, m) = read_dir(&out).unwrap();
    assert_eq!(m.parameters.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), prior.inferred_names());
    let nb = set.bands.len();
    let np = set.parameter_names.len();
    let col = |name: &str| set.parameter_names.iter().position(|p| p == name).unwrap();
    // 1. Recompute the first 200 simulations from their stored parameters.
    for i in 0..200 {
        let t = &set.theta[i * np..(i + 1) * np];
        let z = set.redshift[i] as f64;
        let age_univ = model.config().cosmology.age_gyr(z);
        // stored in f32: recompute with the same rounding of the inputs
        let onset = t[col("onset_fraction")] as f64;
        let p = GalaxyParams {
            redshift: z,
            sfh: SfhSpec::Parametric {
                shape: SfhShape::DelayedTau {
                    age_gyr: ((1.0 - onset) * age_univ).max(1e-5),
                    tau_gyr: 10f64.powf(t[col("log_tau_gyr")] as f64),
                },
                log_mass_formed: t[col("log_mass_formed")] as f64,
            },
            logzsol: t[col("logzsol")] as f64,
            av_mag: t[col("av_mag")] as f64,
            eta: 1.0,
            logu: -2.0,
        };
        let (flux, d) = model.photometry(&p).unwrap();
        for (b, f) in flux.iter().enumerate() {
            let stored = set.flux_true_ujy[i * nb + b] as f64;
            // f32 storage of the inputs: ~1e-7 relative on parameters → ≲ 1e-4 on fluxes
            assert!((stored - f).abs() <= 2e-3 * f.abs() + 1e-30, "sim {i} band {b}: {stored} vs {f}");
        }
        assert!((t[col("log_mstar")] as f64 - d.log_mstar).abs() < 1e-4);
        assert!((t[col("mass_weighted_age_gyr")] as f64 / d.mass_weighted_age_gyr - 1.0).abs() < 1e-3);
    }
    // 2. Noise: pulls (f_obs − f_true)/σ are standard normal; missing bands are NaN.
    let (mut s1, mut s2, mut k, mut missing) = (0.0, 0.0, 0usize, 0usize);
    for i in 0..n * nb {
        if set.observed[i] == 1 {
            let pull = (set.flux_obs_ujy[i] as f64 - set.flux_true_ujy[i] as f64) / set.sigma_ujy[i] as f64;
            s1 += pull;
            s2 += pull * pull;
            k += 1;
        } else {
            assert!(set.flux_obs_ujy[i].is_nan() && set.sigma_ujy[i].is_nan());
            missing += 1;
        }
    }
    let mean = s1 / k as f64;
    let var = s2 / k as f64 - mean * mean;
    assert!(mean.abs() < 0.01 && (var - 1.0).abs() < 0.02, "pulls: mean {mean}, variance {var}");
    let frac = missing as f64 / (n * nb) as f64;
    assert!((frac - 0.2).abs() < 0.01, "missing fraction {frac}");
    // 3. σ of faint simulations follows the survey's background distribution (F444W median).
    let b444 = set.bands.iter().position(|b| b == "F444W").unwrap();
    let mut s: Vec<f64> = (0..n)
        .filter(|&i| set.observed[i * nb + b444] == 1 && set.flux_true_ujy[i * nb + b444] < 1e-5)
        .map(|i| set.sigma_ujy[i * nb + b444] as f64)
        .collect();
    let med = percentile(&mut s, 50.0);
    let want = survey.median_sigma_ujy()[b444];
    assert!((med / want - 1.0).abs() < 0.01, "F444W σ median {med} vs survey {want}");
}

#[test]
fn numpy_reads_the_files() {
    let (model, survey) = jades_model();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ts");
    simulate_to_dir(
        &model,
        &Prior::sbipix_dense_basis(),
        &survey,
        SimulationSpec { n: 100, seed: 3, drop_rate: 0.1 },
        None,
        &out,
        false,
        &|_| {},
    )
    .unwrap();
    let (set, _) = read_dir(&out).unwrap();
    let py = python_with_numpy();
    let script = r#"
import json, sys, numpy as np
d = sys.argv[1]
m = json.load(open(d + '/manifest.json'))
t = np.load(d + '/theta.npy'); f = np.load(d + '/flux_obs_ujy.npy'); o = np.load(d + '/observed.npy'); z = np.load(d + '/redshift.npy')
assert t.dtype == np.float32 and t.shape == (m['n'], len(m['parameters'])), t.shape
assert f.shape == (m['n'], len(m['bands'])) and o.dtype == np.uint8
assert np.all(np.isnan(f[o == 0])) and np.all(np.isfinite(f[o == 1]))
print(repr(float(t[17, 0])), repr(float(z[5])), int(o.sum()))
"#;
    let outp = std::process::Command::new(py).args(["-c", script]).arg(&out).output().unwrap();
    assert!(outp.status.success(), "{}", String::from_utf8_lossy(&outp.stderr));
    let text = String::from_utf8_lossy(&outp.stdout);
    let v: Vec<&str> = text.split_whitespace().collect();
    let np_ = set.parameter_names.len();
    assert_eq!(v[0].parse::<f32>().unwrap(), set.theta[17 * np_]);
    assert_eq!(v[1].parse::<f32>().unwrap(), set.redshift[5]);
    assert_eq!(v[2].parse::<usize>().unwrap(), set.observed.iter().map(|&x| x as usize).sum::<usize>());
}

#[test]
fn bad_requests_write_nothing() {
    let (model, survey) = jades_model();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ts");
    // redshift range beyond the model
    let p = Prior::from_toml_str("[parameters]\nredshift = { min = 0.0, max = 30.0 }\n", "p.toml").unwrap();
    let e = simulate_to_dir(&model, &p, &survey, SimulationSpec { n: 10, seed: 0, drop_rate: 0.1 }, None, &out, false, &|_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("parameters.redshift"), "{e}");
    let e = simulate_to_dir(
        &model,
        &Prior::sbipix_delayed_tau(),
        &survey,
        SimulationSpec { n: 10, seed: 0, drop_rate: 1.5 },
        None,
        &out,
        false,
        &|_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("drop_rate"), "{e}");
    assert!(!out.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "temporary files left behind");
    // an existing output is not replaced without overwrite
    std::fs::create_dir(&out).unwrap();
    assert!(
        simulate_to_dir(
            &model,
            &Prior::sbipix_delayed_tau(),
            &survey,
            SimulationSpec { n: 10, seed: 0, drop_rate: 0.1 },
            None,
            &out,
            false,
            &|_| {}
        )
        .is_err()
    );
}

/// `sbipix merge`: the rows of both sets in order, bit for bit; the prior spans the union of the
/// redshift ranges; sets whose priors differ elsewhere, or whose ranges leave a gap, are refused
/// and nothing is written.
#[test]
fn merging_sets_that_differ_only_in_redshift() {
    use sbipix::inference::training_set::merge_dirs;
    use sbipix::sim::ParamPrior;
    let (model, survey) = jades_model();
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    let full = Prior::physical_delayed_tau();
    let lowz = full.with_parameter("redshift", ParamPrior::Uniform { min: 0.01, max: 1.5 }).unwrap();
    let highz = full.with_parameter("redshift", ParamPrior::Uniform { min: 3.0, max: 7.5 }).unwrap();
    let dusty = full.with_parameter("av_mag", ParamPrior::Uniform { min: 0.0, max: 1.0 }).unwrap();
    run(&model, &survey, &full, SimulationSpec { n: 300, seed: 1, drop_rate: 0.1 }, 2, &p("full"));
    run(&model, &survey, &lowz, SimulationSpec { n: 200, seed: 2, drop_rate: 0.1 }, 2, &p("lowz"));
    run(&model, &survey, &highz, SimulationSpec { n: 100, seed: 3, drop_rate: 0.1 }, 2, &p("highz"));
    run(&model, &survey, &dusty, SimulationSpec { n: 100, seed: 4, drop_rate: 0.1 }, 2, &p("dusty"));

    let m = merge_dirs(&[p("full"), p("lowz")], &p("merged"), false).unwrap();
    assert_eq!(m.n, 500);
    assert_eq!(m.parts.iter().map(|x| (x.n, x.seed)).collect::<Vec<_>>(), vec![(300, 1), (200, 2)]);
    let (a, _) = read_dir(&p("full")).unwrap();
    let (b, _) = read_dir(&p("lowz")).unwrap();
    let (c, cm) = read_dir(&p("merged")).unwrap();
    assert_eq!(cm.parts, m.parts);
    assert_eq!(c.theta, [a.theta.clone(), b.theta.clone()].concat());
    assert_eq!(c.redshift, [a.redshift.clone(), b.redshift.clone()].concat());
    for (x, y) in c.flux_obs_ujy.iter().zip(a.flux_obs_ujy.iter().chain(&b.flux_obs_ujy)) {
        assert!(x == y || (x.is_nan() && y.is_nan()));
    }
    assert_eq!(c.observed, [a.observed.clone(), b.observed.clone()].concat());
    let merged_prior = Prior::from_toml_str(&std::fs::read_to_string(p("merged").join("prior.toml")).unwrap(), "merged").unwrap();
    assert_eq!(merged_prior.get("redshift"), Some(ParamPrior::Uniform { min: 0.01, max: 7.5 }));
    assert_eq!(merged_prior.params.len(), full.params.len());

    // another prior elsewhere: refused, naming the set and what differs
    let e = merge_dirs(&[p("full"), p("dusty")], &p("bad1"), false).unwrap_err().to_string();
    assert!(e.contains("dusty") && e.contains("prior"), "{e}");
    // a gap between 1.5 and 3
    let e = merge_dirs(&[p("lowz"), p("highz")], &p("bad2"), false).unwrap_err().to_string();
    assert!(e.contains("1.5") && e.contains("gap"), "{e}");
    // one set alone, or an existing output
    assert!(merge_dirs(&[p("full")], &p("bad3"), false).is_err());
    assert!(merge_dirs(&[p("full"), p("lowz")], &p("merged"), false).is_err());
    for bad in ["bad1", "bad2", "bad3"] {
        assert!(!p(bad).exists(), "{bad} written");
    }
}

#[test]
fn a_focused_set_is_the_first_n_simulations_its_window_keeps() {
    use sbipix::inference::snr_focus::{SnrFocus, selection_snr};
    let survey = Survey::builtin("jades_any_depth").unwrap();
    let filters = survey_filters(&store(), &survey, std::path::Path::new("."), &|m| eprintln!("{m}")).unwrap();
    let model = SpsModel::new(sps_data(), filters, ModelConfig::default()).unwrap();
    let prior = Prior::physical_delayed_tau();
    let focus = SnrFocus { snr_min: 3.0, snr_max: 100.0, outside_fraction: 0.2 };
    let spec = SimulationSpec { n: 1500, seed: 11, drop_rate: 0.0 };
    let dir = tempfile::tempdir().unwrap();
    let focused = |threads: usize, out: &std::path::Path| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| simulate_to_dir(&model, &prior, &survey, spec, Some(focus), out, false, &|_| {})).unwrap()
    };
    let (f1, f2) = (dir.path().join("f1"), dir.path().join("f2"));
    let m = focused(2, &f2);
    focused(1, &f1);
    for f in ["theta.npy", "flux_obs_ujy.npy", "sigma_ujy.npy", "manifest.json"] {
        assert_eq!(std::fs::read(f1.join(f)).unwrap(), std::fs::read(f2.join(f)).unwrap(), "{f} differs between 1 and 2 threads");
    }
    let rec = m.snr_focus.expect("the manifest records the focus");
    assert_eq!((m.n, rec.focus), (1500, focus));
    // The same seed without a focus, as many simulations as were drawn: the focused set is
    // exactly the rows its rule keeps, in order (whatever rounds it was drawn in).
    let all = dir.path().join("all");
    simulate_to_dir(&model, &prior, &survey, SimulationSpec { n: rec.n_drawn, ..spec }, None, &all, false, &|_| {}).unwrap();
    let (full, _) = read_dir(&all).unwrap();
    let snr = selection_snr(&full);
    let kept: Vec<usize> = (0..full.len()).filter(|&i| focus.keeps(snr[i], spec.seed, i)).collect();
    assert_eq!(kept.len(), 1500);
    assert_eq!(*kept.last().unwrap(), rec.n_drawn - 1, "n_drawn ends at the last kept simulation");
    let (set, _) = read_dir(&f2).unwrap();
    let want = full.rows(&kept);
    assert_eq!(set.theta, want.theta);
    assert_eq!(set.redshift, want.redshift);
    assert_eq!(set.flux_true_ujy, want.flux_true_ujy);
    assert_eq!(set.observed, want.observed);
    // (NaN where a band is missing: compared bit for bit)
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
    assert_eq!(bits(&set.sigma_ujy), bits(&want.sigma_ujy));
    assert_eq!(bits(&set.flux_obs_ujy), bits(&want.flux_obs_ujy));
    // What the focus is for: most kept pixels lie in the window, a fifth of the others remain.
    let inside = |s: &[f64]| s.iter().filter(|&&x| (3.0..=100.0).contains(&x)).count();
    let (n_in_all, n_in_kept) = (inside(&snr), inside(&selection_snr(&set)));
    assert_eq!(n_in_kept, n_in_all, "every simulation in the window is kept");
    let outside_kept = (1500 - n_in_kept) as f64 / (full.len() - n_in_all) as f64;
    assert!((outside_kept - 0.2).abs() < 0.05, "kept {outside_kept} of the simulations outside the window");
}
