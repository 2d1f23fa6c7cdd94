//! `sbipix train` through the real binary: a model directory that loads and samples; bad input.

mod common;
use common::*;

#[test]
fn train_writes_a_usable_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(sbipix(&["simulate", "--n", "3000", "--seed", "4", "--out", "ts"], d).status.success());
    let o =
        sbipix(&["train", "--data", "ts", "--out", "m", "--max-epochs", "2", "--layers", "2", "--hidden", "32", "--hidden-layers", "1"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["model.json", "flow.json", "weights.safetensors", "prior.toml", "survey.toml", "training_report.json"] {
        assert!(d.join("m").join(f).is_file(), "{f}");
    }
    assert!(!d.join("m.checkpoint").exists(), "the checkpoint is removed once the model is written");
    let p = sbipix::inference::model::Posterior::load(&d.join("m")).unwrap();
    assert_eq!(p.parameter_names()[0], "log_mstar");
    let nb = p.manifest.bands.len();
    let flux = vec![1e-3; 2 * nb];
    let sigma = vec![1e-4; 2 * nb];
    let seen = vec![true; 2 * nb];
    let s = p.sample(&flux, &sigma, &seen, &[1.0, 3.0], 50, 0).unwrap();
    assert_eq!(s.len(), 2 * 50 * p.parameter_names().len());
    assert!(s.iter().all(|v| v.is_finite()));
    // outside the trained redshift range: an error naming the pixel
    let e = p.sample(&flux, &sigma, &seen, &[1.0, 9.0], 5, 0).err().unwrap().to_string();
    assert!(e.contains("pixel 1") && e.contains("redshift 9"), "{e}");

    // bad input
    let cases: [(&[&str], &str); 4] = [
        (&["train", "--data", "nope", "--out", "m2", "--max-epochs", "1"], "nope"),
        (&["train", "--data", "ts", "--out", "m", "--max-epochs", "1"], "already exists"),
        (&["train", "--data", "ts", "--out", "m3", "--resume"], "checkpoint"),
        (&["train", "--data", "ts", "--out", "m4", "--batch-size", "1"], "--batch-size 1"),
    ];
    for (args, needle) in cases {
        let o = sbipix(args, d);
        assert!(!o.status.success() && stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
    for m in ["m2", "m3", "m4"] {
        assert!(!d.join(m).exists());
    }
    // a model directory with a missing file
    std::fs::remove_file(d.join("m/flow.json")).unwrap();
    assert!(sbipix::inference::model::Posterior::load(&d.join("m")).err().unwrap().to_string().contains("flow.json"));
}

#[test]
fn validate_writes_metrics_figures_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(sbipix(&["simulate", "--n", "3000", "--seed", "4", "--out", "ts"], d).status.success());
    let o =
        sbipix(&["train", "--data", "ts", "--out", "m", "--max-epochs", "2", "--layers", "2", "--hidden", "32", "--hidden-layers", "1"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = sbipix(&["validate", "--model", "m", "--n", "200", "--draws", "100", "--seed", "77", "--out", "rep"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["metrics.json", "report.md", "truth_vs_median.png", "coverage.png", "sbc_ranks.png", "tarp.png"] {
        assert!(d.join("rep").join(f).is_file(), "{f}");
    }
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("rep/metrics.json")).unwrap()).unwrap();
    for p in ["log_mstar", "log_sfr_100myr", "mass_weighted_age_gyr", "logzsol", "av_mag"] {
        for k in ["r2", "r2_mean", "crps", "bias", "nmad", "outlier_frac", "median_width_68", "coverage_68", "coverage_95", "sbc_ks_pvalue"]
        {
            assert!(m["parameters"][p][k].is_number(), "{p}.{k}");
        }
    }
    assert!(m["tarp"]["ecp"].is_array() && m["n"] == 200 && m["seed"] == 77);
    // S/N bins: disjoint subsets of the selected cases, each with ≥ 20 cases
    let bins = m["parameters_by_snr"].as_array().unwrap();
    let counted: u64 = bins.iter().map(|b| b[1].as_u64().unwrap()).sum();
    assert!(
        counted <= m["n_selected"].as_u64().unwrap()
            && bins.iter().all(|b| b[1].as_u64().unwrap() >= 20 && b[2]["log_mstar"]["r2"].is_number())
    );
    // --cases-from: the model's own folder gives its own test cases (the same metrics); the
    // default model's prior (a mass per kpc², the noise family) gives other cases, recorded
    let o =
        sbipix(&["validate", "--model", "m", "--cases-from", "m", "--n", "200", "--draws", "100", "--seed", "77", "--out", "rep_self"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let rs: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("rep_self/metrics.json")).unwrap()).unwrap();
    assert_eq!(rs["parameters"], m["parameters"]);
    let o = sbipix(
        &["validate", "--model", "m", "--cases-from", "default", "--n", "200", "--draws", "100", "--seed", "77", "--out", "rep_def"],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let rd: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("rep_def/metrics.json")).unwrap()).unwrap();
    assert!(
        rd["parameters"] != m["parameters"] && rd["cases_from"].as_str().is_some_and(|s| s.contains("default")),
        "{}",
        rd["cases_from"]
    );
    let o = sbipix(&["validate", "--model", "m", "--cases-from", "no/such/model", "--n", "200", "--out", "rep_bad"], d);
    assert!(!o.status.success() && stderr(&o).contains("no/such/model") && !d.join("rep_bad").exists(), "{}", stderr(&o));
    // test pixels like the real JADES cube: its 682 pixels above S/N 5, and test cases kept in
    // the same shares per S/N bin (each bin's count is rounded down: within 5 bins / kept)
    let cube = shared_file("real_data/jades_gsz14_pixels/cube_19band.fits");
    let o = sbipix(
        &["validate", "--model", "m", "--n", "3000", "--draws", "50", "--seed", "79", "--like", cube.to_str().unwrap(), "--out", "like"],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let l: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("like/metrics.json")).unwrap()).unwrap();
    assert_eq!(l["like"]["pixels"], 682);
    assert!(!l["like"]["bands_measured"].as_array().unwrap().iter().any(|b| b == "F430M"), "the cube lacks F430M");
    let kept = l["n_selected"].as_f64().unwrap();
    for (k, b) in l["parameters_by_snr"].as_array().unwrap().iter().enumerate() {
        let share = l["like"]["snr_share"][k].as_f64().unwrap();
        assert!((b[1].as_f64().unwrap() / kept - share).abs() <= 5.0 / kept, "S/N bin {k}: {} of {kept} against {share}", b[1]);
    }
    // the same cube as per-band images (--like-images … --like-errors …): the same pixels, the
    // same test cases, the same metrics
    let imgs = cube_as_band_images(&cube, &d.join("like_images"));
    let mut args: Vec<String> =
        ["validate", "--model", "m", "--n", "3000", "--draws", "50", "--seed", "79", "--out", "like_img", "--like-images"]
            .iter()
            .map(|a| a.to_string())
            .collect();
    args.extend(imgs.iter().map(|(s, _)| s.clone()));
    args.push("--like-errors".into());
    args.extend(imgs.iter().map(|(_, e)| e.clone()));
    let o = sbipix(&args.iter().map(String::as_str).collect::<Vec<_>>(), d);
    assert!(o.status.success(), "{}", stderr(&o));
    let li: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("like_img/metrics.json")).unwrap()).unwrap();
    assert_eq!(li["like"]["pixels"], l["like"]["pixels"]);
    assert_eq!(li["like"]["snr_share"], l["like"]["snr_share"]);
    assert_eq!(li["parameters"], l["parameters"]);
    // a survey without a noise family: no groups by depth or pattern
    assert_eq!((m["coverage_by_depth"].as_array().unwrap().len(), m["coverage_by_pattern"].as_array().unwrap().len()), (0, 0));
    // model mismatch against the SBIPIX FSPS atlas (shared reference data)
    let atlas = shared_file("reference/sbipix_fsps/sbipix_atlas_tau_library.csv");
    let o = sbipix(&["validate", "--model", "m", "--against", atlas.to_str().unwrap(), "--draws", "50", "--out", "mm"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let mm: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("mm/mismatch.json")).unwrap()).unwrap();
    assert!(mm["n_used"].as_u64().unwrap() > 100 && mm["parameters"]["log_mass_formed"]["r2"].is_number());
    assert!(mm["parameters"].get("log_mstar").is_none(), "FSPS's surviving mass is another quantity: not compared");
    // bad input: nothing written
    let cases: [(&[&str], &str); 4] = [
        (&["validate", "--model", "m", "--n", "0", "--out", "r2"], "--n 0"),
        (&["validate", "--model", "nope", "--n", "10", "--out", "r2"], "nope"),
        (&["validate", "--model", "m", "--n", "10", "--out", "rep"], "already exists"),
        (&["validate", "--model", "m", "--n", "10", "--out", "no/such/r2"], "does not exist"),
    ];
    for (args, needle) in cases {
        let o = sbipix(args, d);
        assert!(!o.status.success() && stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
    assert!(!d.join("r2").exists());
}

#[test]
fn train_a_subset_of_the_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(sbipix(&["simulate", "--n", "2000", "--seed", "5", "--out", "ts"], d).status.success());
    let want = ["log_mstar", "log_sfr_100myr", "mass_weighted_age_gyr", "logzsol", "av_mag"];
    let o = sbipix(
        &[
            "train",
            "--data",
            "ts",
            "--out",
            "m",
            "--params",
            &want.join(","),
            "--max-epochs",
            "2",
            "--layers",
            "2",
            "--hidden",
            "32",
            "--hidden-layers",
            "1",
        ],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let p = sbipix::inference::model::Posterior::load(&d.join("m")).unwrap();
    assert_eq!(p.parameter_names(), want);
    let flow: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("m/flow.json")).unwrap()).unwrap();
    assert_eq!(flow["params"].as_array().unwrap().len(), 5);
    // validation compares the model's parameters with the same columns of fresh simulations
    let o = sbipix(&["validate", "--model", "m", "--n", "300", "--draws", "50", "--seed", "9", "--snr-min", "0", "--out", "rep"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("rep/metrics.json")).unwrap()).unwrap();
    let got: Vec<&str> = m["parameters"].as_object().unwrap().keys().map(|k| k.as_str()).collect();
    assert_eq!(got.len(), 5, "{got:?}");
    assert!(want.iter().all(|w| got.contains(w)));
    // bad names: an error that lists what the set has; nothing written
    for (list, needle) in [("log_mstar,colour", "no parameter \"colour\""), ("log_mstar,log_mstar", "named twice")] {
        let o = sbipix(&["train", "--data", "ts", "--out", "bad", "--params", list, "--max-epochs", "1"], d);
        assert!(!o.status.success() && stderr(&o).contains(needle), "{list}: {}", stderr(&o));
    }
    assert!(!d.join("bad").exists());
    // the S/N encoding: recorded in model.json, and the model's inputs are asinh(f/2σ), ln(σ/s)
    let o = sbipix(
        &["train", "--data", "ts", "--out", "m_snr", "--encoding", "snr_depth", "--max-epochs", "1", "--layers", "1", "--hidden", "8"],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let p = sbipix::inference::model::Posterior::load(&d.join("m_snr")).unwrap();
    assert_eq!(p.manifest.encoding.kind, sbipix::sim::EncodingKind::SnrDepth);
    let nb = p.manifest.bands.len();
    let (flux, sigma) = (vec![0.3; nb], vec![0.02; nb]);
    let x = p.encode(&flux, &sigma, &vec![true; nb], &[1.5]).unwrap();
    let s0 = p.manifest.encoding.scale_ujy[0];
    assert!((x[0] - (0.3f64 / 0.04).asinh()).abs() < 1e-5 && (x[1] - (0.02 / s0).ln()).abs() < 1e-5 && x[3 * nb] == 1.5, "{:?}", &x[..3]);
    let o = sbipix(&["train", "--data", "ts", "--out", "bad", "--encoding", "magnitudes", "--max-epochs", "1"], d);
    assert!(
        o.status.code() == Some(2) && stderr(&o).contains("unknown encoding `magnitudes`") && !d.join("bad").exists(),
        "{}",
        stderr(&o)
    );
}

/// A model trained on the physical prior and the default noise family validates with its test
/// cases grouped by the depth factor and the band pattern each was drawn with: every selected
/// case in exactly one depth group and one pattern group (groups under 20 cases left out).
#[test]
fn validate_groups_a_family_model_by_depth_and_pattern() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = sbipix(&["simulate", "--n", "3000", "--seed", "4", "--sfh", "physical", "--survey", "jades_any_depth", "--out", "ts"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let o =
        sbipix(&["train", "--data", "ts", "--out", "m", "--max-epochs", "2", "--layers", "2", "--hidden", "32", "--hidden-layers", "1"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = sbipix(&["validate", "--model", "m", "--n", "1500", "--draws", "100", "--seed", "78", "--out", "rep"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("rep/metrics.json")).unwrap()).unwrap();
    let sel = m["n_selected"].as_u64().unwrap();
    for (key, groups) in [("coverage_by_depth", 5u64), ("coverage_by_pattern", 4)] {
        let g = m[key].as_array().unwrap();
        let counted: u64 = g.iter().map(|x| x["cases"].as_u64().unwrap()).sum();
        let left_out = groups - g.len() as u64;
        assert!(counted <= sel && counted + 19 * left_out >= sel, "{key}: {counted} of {sel} cases in {} groups", g.len());
        assert!(g.iter().all(|x| x["coverage_68"]["log_mstar"].is_number() && x["bounds_68"][0].as_f64().unwrap() < 0.68));
    }
    let report = std::fs::read_to_string(d.join("rep/report.md")).unwrap();
    assert!(report.contains("by depth factor") && report.contains("nircam_wide_f410m"), "{report}");
}

/// The bands of a FLUX/ERR cube written as one science and one σ image per band (`sci_<BAND>.fits`,
/// `err_<BAND>.fits`, the FLUX HDU's BUNIT), in the cube's band order: (science, σ) paths.
fn cube_as_band_images(cube: &std::path::Path, dir: &std::path::Path) -> Vec<(String, String)> {
    std::fs::create_dir_all(dir).unwrap();
    let mut f = fitsio::FitsFile::open(cube).unwrap();
    let primary = f.primary_hdu().unwrap();
    let hdu = f.hdu("FLUX").unwrap();
    let unit: String = hdu.read_key(&mut f, "BUNIT").unwrap_or_else(|_| "uJy".into());
    let shape = match &hdu.info {
        fitsio::hdu::HduInfo::ImageInfo { shape, .. } => shape.clone(),
        _ => panic!("FLUX is not an image"),
    };
    let (nb, ny, nx) = (shape[0], shape[1], shape[2]);
    let flux: Vec<f32> = hdu.read_image(&mut f).unwrap();
    let err: Vec<f32> = f.hdu("ERR").unwrap().read_image(&mut f).unwrap();
    let npix = ny * nx;
    (0..nb)
        .map(|b| {
            let band: String = primary.read_key(&mut f, &format!("BAND{b}")).unwrap();
            let mut paths = Vec::new();
            for (kind, data) in [("sci", &flux), ("err", &err)] {
                let p = dir.join(format!("{kind}_{band}.fits"));
                let desc = fitsio::images::ImageDescription { data_type: fitsio::images::ImageType::Float, dimensions: &[ny, nx] };
                let mut ff = fitsio::FitsFile::create(&p).with_custom_primary(&desc).open().unwrap();
                let h = ff.primary_hdu().unwrap();
                h.write_image(&mut ff, &data[b * npix..(b + 1) * npix]).unwrap();
                h.write_key(&mut ff, "BUNIT", unit.as_str()).unwrap();
                paths.push(p.to_string_lossy().into_owned());
            }
            (paths[0].clone(), paths[1].clone())
        })
        .collect()
}
