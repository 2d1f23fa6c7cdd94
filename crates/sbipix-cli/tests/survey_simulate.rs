//! `sbipix survey learn`, `sbipix simulate` and `sbipix prior` through the real binary.

mod common;
use common::*;

use std::path::PathBuf;

/// The committed built-in survey is exactly what `survey learn` makes from the real JADES pixels
/// (its provenance is true), from the .npy arrays and from the FITS cube alike.
#[test]
fn builtin_jades_survey_is_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let jd = shared_with("real_data/jades_gsz14_pixels")
        .expect("shared reference folder not found; set SBIPIX_SHARED")
        .join("real_data/jades_gsz14_pixels");
    let limits = shared_with("real_data/jades_gsz14_pixels")
        .expect("shared reference folder not found; set SBIPIX_SHARED")
        .join("noise/background_noise_hainline.npy");
    let committed =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sbipix-sim/data/survey_jades.toml")).unwrap();
    // the numbers (not the free-text provenance, which names the paths used)
    let numbers = |t: &str| {
        let s = sbipix::sim::Survey::from_toml_str(t, "x").unwrap();
        let bands: Vec<_> = s
            .bands
            .iter()
            .map(|b| (b.name.clone(), b.filter.clone(), b.sigma_bg_quantiles_ujy.clone(), b.poisson_ujy, b.coverage))
            .collect();
        (bands, s.depth_correlation)
    };
    let o = sbipix(
        &[
            "survey",
            "learn",
            "--flux",
            jd.join("flux_ujy.npy").to_str().unwrap(),
            "--err",
            jd.join("err_ujy.npy").to_str().unwrap(),
            "--bands",
            "jades",
            "--unit",
            "uJy",
            "--limits",
            limits.to_str().unwrap(),
            "--name",
            "jades",
            "--out",
            "a.toml",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        numbers(&std::fs::read_to_string(dir.path().join("a.toml")).unwrap()) == numbers(&committed),
        "the committed jades survey differs from a fresh `survey learn`"
    );
    let o = sbipix(
        &[
            "survey",
            "learn",
            "--cube",
            jd.join("cube_19band.fits").to_str().unwrap(),
            "--unit",
            "uJy",
            "--limits",
            limits.to_str().unwrap(),
            "--name",
            "jades",
            "--out",
            "b.toml",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // the cube stores float32: the numbers agree to float32 precision, the structure exactly
    let b = std::fs::read_to_string(dir.path().join("b.toml")).unwrap();
    let s = |t: &str| sbipix::sim::Survey::from_toml_str(t, "x").unwrap();
    let (sa, sb) = (s(&committed), s(&b));
    for (x, y) in sa.bands.iter().zip(&sb.bands) {
        assert_eq!(x.name, y.name);
        for (u, v) in x.sigma_bg_quantiles_ujy.iter().zip(&y.sigma_bg_quantiles_ujy) {
            assert!((u / v - 1.0).abs() < 1e-5, "{}: {u} vs {v}", x.name);
        }
    }
}

#[test]
fn learn_from_per_band_fits_with_weights() {
    let dir = tempfile::tempdir().unwrap();
    let (ny, nx) = (60, 50);
    let mut args: Vec<String> = vec!["survey".into(), "learn".into(), "--images".into()];
    let mut errs = vec!["--errors".to_string()];
    for (b, s) in [("F277W", 2e-5f64), ("F444W", 3e-5)] {
        let img = dir.path().join(format!("img_{b}.fits"));
        let wht = dir.path().join(format!("wht_{b}.fits"));
        let desc = fitsio::images::ImageDescription { data_type: fitsio::images::ImageType::Double, dimensions: &[ny, nx] };
        for (p, v) in [(&img, 0.0), (&wht, 1.0 / (s * s))] {
            let mut f = fitsio::FitsFile::create(p).with_custom_primary(&desc).open().unwrap();
            let h = f.primary_hdu().unwrap();
            h.write_image(&mut f, &vec![v; ny * nx]).unwrap();
            h.write_key(&mut f, "BUNIT", "nJy").unwrap();
        }
        args.push(img.to_string_lossy().into());
        errs.push(wht.to_string_lossy().into());
    }
    args.extend(errs);
    args.extend(["--error-kind", "weight", "--name", "toy", "--out", "toy.toml"].map(String::from));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = sbipix(&a, dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let s = sbipix::sim::Survey::from_toml_str(&std::fs::read_to_string(dir.path().join("toy.toml")).unwrap(), "toy").unwrap();
    assert_eq!(s.band_names(), ["F277W", "F444W"]);
    // σ = 1/√w in nJy → µJy
    assert!((s.bands[0].sigma_bg_quantiles_ujy[50] - 2e-8).abs() < 1e-13);
    assert_eq!(s.bands[1].filter, "sedpy:jwst_f444w");
}

#[test]
fn learn_rejects_bad_data() {
    let dir = tempfile::tempdir().unwrap();
    let jd = shared_with("real_data/jades_gsz14_pixels")
        .expect("shared reference folder not found; set SBIPIX_SHARED")
        .join("real_data/jades_gsz14_pixels");
    let f = jd.join("flux_ujy.npy");
    let e = jd.join("err_ujy.npy");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        // F430M has no coverage and no limit given
        (vec!["--flux", f.to_str().unwrap(), "--err", e.to_str().unwrap(), "--bands", "jades"], "F430M"),
        (vec!["--flux", f.to_str().unwrap(), "--err", e.to_str().unwrap(), "--bands", "F090W,F115W"], "19 bands"),
        (vec!["--flux", f.to_str().unwrap(), "--err", e.to_str().unwrap()], "--bands"),
        (vec!["--flux", f.to_str().unwrap(), "--err", e.to_str().unwrap(), "--bands", "jades", "--unit", "furlongs"], "furlongs"),
        (vec!["--cube", "missing.fits"], "missing.fits"),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["survey", "learn", "--name", "x", "--out", "x.toml"];
        args.extend(extra);
        let o = sbipix(&args, dir.path());
        assert!(!o.status.success() && stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        assert!(!dir.path().join("x.toml").exists());
    }
}

#[test]
fn simulate_cli_and_prior_show() {
    let dir = tempfile::tempdir().unwrap();
    let o = sbipix(&["prior", "show", "--sfh", "dense-basis"], dir.path());
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    std::fs::write(dir.path().join("p.toml"), text.replace("max = 4.3", "max = 1.0")).unwrap();
    let o = sbipix(&["simulate", "--n", "300", "--seed", "5", "--prior", "p.toml", "--out", "ts", "--threads", "1"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let o2 = sbipix(&["simulate", "--n", "300", "--seed", "5", "--prior", "p.toml", "--out", "ts2", "--threads", "2"], dir.path());
    assert!(o2.status.success(), "{}", stderr(&o2));
    for f in ["theta.npy", "flux_obs_ujy.npy", "manifest.json"] {
        assert_eq!(std::fs::read(dir.path().join("ts").join(f)).unwrap(), std::fs::read(dir.path().join("ts2").join(f)).unwrap(), "{f}");
    }
    let prior = std::fs::read_to_string(dir.path().join("ts/prior.toml")).unwrap();
    assert!(prior.contains("av_mag = { min = 0.0, max = 1.0 }"), "{prior}");
    // bad input: nothing written
    let cases: [(&[&str], &str); 4] = [
        (&["simulate", "--n", "0", "--out", "o"], "--n"),
        (&["simulate", "--n", "5", "--out", "ts"], "already exists"),
        (&["simulate", "--n", "5", "--survey", "nope", "--out", "o"], "nope"),
        (&["simulate", "--n", "5", "--drop-rate", "2", "--out", "o"], "--drop-rate"),
    ];
    for (args, needle) in cases {
        let o = sbipix(args, dir.path());
        assert!(!o.status.success() && stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        assert!(!dir.path().join("o").exists());
    }
}

/// The default model's training set: the physical prior (a mass per kpc²) and the JADES noise
/// widened into a family: each band is measured as often as the family's coverage patterns say
/// (F435W: not in `no_hst` (0.2) nor `nircam_wide_f410m` (0.3); F430M: not in
/// `no_f430m_f460m_f480m` (0.25) nor `nircam_wide_f410m`; F444W always), within 4 binomial σ.
#[test]
fn simulate_with_the_physical_prior_and_the_depth_family() {
    let dir = tempfile::tempdir().unwrap();
    let o = sbipix(&["prior", "show", "--sfh", "physical"], dir.path());
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success() && text.contains("pixel_scale_arcsec = 0.03") && text.contains("log_sigma_mass_formed"), "{text}");
    let n = 4000usize;
    let o = sbipix(
        &[
            "simulate",
            "--n",
            &n.to_string(),
            "--seed",
            "18",
            "--sfh",
            "physical",
            "--survey",
            "jades_any_depth",
            "--drop-rate",
            "0",
            "--out",
            "ts",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let ts = dir.path().join("ts");
    let survey = std::fs::read_to_string(ts.join("survey.toml")).unwrap();
    assert!(survey.contains("[family]") && survey.contains("nircam_wide_f410m"), "the family is kept with the set");
    assert!(std::fs::read_to_string(ts.join("prior.toml")).unwrap().contains("log_sigma_mass_formed"));
    let seen: ndarray::Array2<u8> = ndarray_npy::read_npy(ts.join("observed.npy")).unwrap();
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(ts.join("manifest.json")).unwrap()).unwrap();
    let bands: Vec<String> = m["bands"].as_array().unwrap().iter().map(|b| b.as_str().unwrap().to_string()).collect();
    for (band, p) in [("F435W", 0.5), ("F430M", 0.45), ("F444W", 1.0)] {
        let j = bands.iter().position(|b| b == band).unwrap();
        let frac = seen.column(j).iter().map(|v| *v as f64).sum::<f64>() / n as f64;
        let tol = 4.0 * (p * (1.0 - p) / n as f64).sqrt() + 1e-12;
        assert!((frac - p).abs() <= tol, "{band}: measured in {frac} of the simulations, expected {p} ± {tol}");
    }
}

/// `survey learn --noise-from`: σ from empty-sky cutouts (as `sbipix map` does) becomes the
/// background σ of the noise model.
#[test]
fn learn_from_images_with_background_cutouts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut gauss = gauss(7);
    let mut args: Vec<String> =
        ["survey", "learn", "--name", "sky", "--out", "sky.toml", "--unit", "nJy", "--images"].map(String::from).to_vec();
    let mut bgs = vec!["--noise-from".to_string()];
    for (b, s) in [("F277W", 20.0f64), ("F444W", 35.0)] {
        let desc = fitsio::images::ImageDescription { data_type: fitsio::images::ImageType::Double, dimensions: &[40, 40] };
        for (name, v) in [(format!("img_{b}.fits"), vec![0.0; 1600]), (format!("bg_{b}.fits"), (0..1600).map(|_| s * gauss()).collect())] {
            let mut f = fitsio::FitsFile::create(d.join(&name)).with_custom_primary(&desc).open().unwrap();
            let h = f.primary_hdu().unwrap();
            h.write_image(&mut f, &v).unwrap();
            if name.starts_with("img") { args.push(name) } else { bgs.push(name) }
        }
    }
    args.extend(bgs);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = sbipix(&a, d);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = sbipix::sim::Survey::from_toml_str(&std::fs::read_to_string(d.join("sky.toml")).unwrap(), "sky").unwrap();
    assert_eq!(s.band_names(), ["F277W", "F444W"]);
    for (band, sigma_njy) in s.bands.iter().zip([20.0, 35.0]) {
        let m = sbipix::sim::survey::quantile_at(&band.sigma_bg_quantiles_ujy, 0.5);
        assert!((m / (sigma_njy * 1e-3) - 1.0).abs() < 0.1, "{}: {m}", band.name);
    }
}
