//! `sbipix map` and the map demo through the real binary (with a small model trained here).

mod common;
use common::*;

fn key(f: &mut fitsio::FitsFile, hdu: &str, k: &str) -> Option<String> {
    let h = f.hdu(hdu).ok()?;
    h.read_key::<String>(f, k).ok()
}

#[test]
fn map_cube_and_images_with_wcs_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(sbipix(&["simulate", "--n", "4000", "--seed", "4", "--out", "ts"], d).status.success());
    let o =
        sbipix(&["train", "--data", "ts", "--out", "m", "--max-epochs", "2", "--layers", "2", "--hidden", "32", "--hidden-layers", "1"], d);
    assert!(o.status.success(), "{}", stderr(&o));

    // the demo builds a synthetic cube with a WCS and maps it
    let o = sbipix(&["demo", "--model", "m", "--out", "demo", "--fast"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("log_mstar") && out.contains("in 16–84 %"), "{out}");
    for f in ["demo_cube.fits", "truth.fits", "maps.fits", "maps.png", "truth_vs_maps.png", "summary.json"] {
        assert!(d.join("demo").join(f).is_file(), "{f}");
    }
    // map the demo cube again: redshift from its header; WCS on every output HDU
    let o = sbipix(&["map", "--model", "m", "--cube", "demo/demo_cube.fits", "--out", "mapped", "--draws", "100"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut f = fitsio::FitsFile::open(d.join("mapped/maps.fits")).unwrap();
    for h in [
        "LOG_MSTAR_P16",
        "LOG_MSTAR_P50",
        "LOG_MSTAR_P84",
        "MASS_WEIGHTED_AGE_GYR_P50",
        "LOGZSOL_P50",
        "AV_MAG_P50",
        "LOG_SFR_100MYR_P50",
        "LOG_SIGMA_MSTAR_P50",
        "SNR",
        "MASK",
        "OOD",
    ] {
        assert_eq!(key(&mut f, h, "CTYPE1").as_deref(), Some("RA---TAN"), "{h}");
    }
    let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("mapped/summary.json")).unwrap()).unwrap();
    assert!(s["n_pixels"].as_u64().unwrap() > 100);
    assert!((s["pixel_scale_arcsec"].as_f64().unwrap() - 0.03).abs() < 1e-9);
    assert!(s["log_mstar_resolved"][1].is_number() && s["log_mstar_integrated"][1].is_number());

    // --refine on the brightest pixels: a REFINED layer with the WCS, posteriors far sharper than
    // the (tiny, 2-epoch) network's, the refinement recorded in the summary
    let o = sbipix(
        &["map", "--model", "m", "--cube", "demo/demo_cube.fits", "--out", "refined", "--draws", "100", "--snr-min", "150", "--no-ppc"],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o2 = sbipix(
        &[
            "map",
            "--model",
            "m",
            "--cube",
            "demo/demo_cube.fits",
            "--out",
            "plain",
            "--draws",
            "100",
            "--snr-min",
            "150",
            "--no-ppc",
            "--fast",
        ],
        d,
    );
    assert!(o2.status.success(), "{}", stderr(&o2));
    let mut fr = fitsio::FitsFile::open(d.join("refined/maps.fits")).unwrap();
    assert_eq!(key(&mut fr, "REFINED", "CTYPE1").as_deref(), Some("RA---TAN"));
    let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("refined/summary.json")).unwrap()).unwrap();
    let n_ref = s["n_pixels"].as_u64().unwrap();
    assert!((3..=300).contains(&n_ref), "{n_ref} pixels above S/N 150");
    // exact posteriors by default, with the default systematic error recorded
    assert!(s["refinement"]["refined_fraction"].as_f64().unwrap() > 0.9, "{}", s["refinement"]);
    assert_eq!(s["refinement"]["settings"]["sys_frac"].as_f64(), Some(sbipix::request::DEFAULT_SYS_ERR), "{}", s["refinement"]);
    let width = |dir: &str| -> f64 {
        let mut f = fitsio::FitsFile::open(d.join(dir).join("maps.fits")).unwrap();
        let (lo, hi): (Vec<f32>, Vec<f32>) =
            (f.hdu("LOG_MSTAR_P16").unwrap().read_image(&mut f).unwrap(), f.hdu("LOG_MSTAR_P84").unwrap().read_image(&mut f).unwrap());
        let mut w: Vec<f64> = lo.iter().zip(&hi).filter(|(a, _)| a.is_finite()).map(|(a, b)| (b - a) as f64).collect();
        w.sort_by(f64::total_cmp);
        w[w.len() / 2]
    };
    let (wr, wp) = (width("refined"), width("plain"));
    assert!(wr < 0.3 * wp, "refined log M* width {wr} vs the network's {wp}");
    let o = sbipix(&["map", "--model", "m", "--cube", "demo/demo_cube.fits", "--out", "x", "--fast", "--sys-err", "0.05"], d);
    assert!(!o.status.success() && stderr(&o).contains("--sys-err") && stderr(&o).contains("--fast"), "{}", stderr(&o));
    let o = sbipix(&["map", "--model", "m", "--cube", "demo/demo_cube.fits", "--out", "x", "--refine", "--sys-err", "1.5"], d);
    assert!(!o.status.success() && stderr(&o).contains("--sys-err"), "{}", stderr(&o));
    assert!(!d.join("x").exists());

    // per-band images with σ maps (three bands only: the others are missing for every pixel)
    let mut cube = fitsio::FitsFile::open(d.join("demo/demo_cube.fits")).unwrap();
    let flux: Vec<f32> = cube.hdu("FLUX").unwrap().read_image(&mut cube).unwrap();
    let err: Vec<f32> = cube.hdu("ERR").unwrap().read_image(&mut cube).unwrap();
    let npix = 64 * 64;
    let mut args: Vec<String> = ["map", "--model", "m", "--redshift", "1.8", "--out", "img"].iter().map(|s| s.to_string()).collect();
    args.extend(demo_band_images(d, "demo/demo_cube.fits", &[("F277W", 6), ("F356W", 8), ("F444W", 11)]));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = sbipix(&a, d);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("img/summary.json")).unwrap()).unwrap();
    assert_eq!(s["bands_used"].as_array().unwrap().len(), 3);

    // σ from empty-sky cutouts: Gaussian noise of known σ (the cube's median F277W σ) → the
    // logged σ within 10 %
    let sigma_bg = {
        let mut v: Vec<f32> = err[6 * npix..7 * npix].iter().cloned().filter(|x| x.is_finite()).collect();
        v.sort_by(f32::total_cmp);
        v[v.len() / 2] as f64
    };
    let mut gauss = gauss(12345);
    let mut nargs: Vec<String> =
        args.iter().take_while(|a| *a != "--errors").map(|a| if a == "img" { "img_bg".to_string() } else { a.clone() }).collect();
    nargs.push("--noise-from".into());
    for name in ["F277W", "F356W", "F444W"] {
        let p = d.join(format!("bg_{name}.fits"));
        let noise: Vec<f32> = (0..50 * 50).map(|_| (sigma_bg * gauss()) as f32).collect();
        let desc = fitsio::images::ImageDescription { data_type: fitsio::images::ImageType::Float, dimensions: &[50, 50] };
        let mut ff = fitsio::FitsFile::create(&p).with_custom_primary(&desc).open().unwrap();
        let h = ff.primary_hdu().unwrap();
        h.write_image(&mut ff, &noise).unwrap();
        h.write_key(&mut ff, "BUNIT", "uJy").unwrap();
        nargs.push(p.to_string_lossy().into());
    }
    let a: Vec<&str> = nargs.iter().map(String::as_str).collect();
    let o = sbipix(&a, d);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    let sigmas: Vec<f64> = e.lines().filter_map(|l| l.split("σ = ").nth(1)?.split_whitespace().next()?.parse().ok()).collect();
    assert_eq!(sigmas.len(), 3, "{e}");
    for s in sigmas {
        assert!((s / sigma_bg - 1.0).abs() < 0.1, "background σ {s} vs {sigma_bg}: {e}");
    }

    // a background cutout in another unit than its image is refused unless --unit settles it
    let bg_njy = d.join("bg_F444W_10njy.fits");
    {
        let desc = fitsio::images::ImageDescription { data_type: fitsio::images::ImageType::Float, dimensions: &[50, 50] };
        let mut ff = fitsio::FitsFile::create(&bg_njy).with_custom_primary(&desc).open().unwrap();
        let h = ff.primary_hdu().unwrap();
        let noise: Vec<f32> = (0..50 * 50).map(|_| (sigma_bg * 100.0 * gauss()) as f32).collect();
        h.write_image(&mut ff, &noise).unwrap();
        h.write_key(&mut ff, "BUNIT", "10.0*nanoJansky").unwrap();
    }
    let bg_njy = bg_njy.to_string_lossy().to_string();
    let mut bargs = a.clone();
    *bargs.last_mut().unwrap() = &bg_njy;
    let o_idx = bargs.iter().position(|x| *x == "--out").unwrap();
    bargs[o_idx + 1] = "bad_bunit";
    let o = sbipix(&bargs, d);
    assert!(!o.status.success() && stderr(&o).contains("10.0*nanoJansky") && stderr(&o).contains("--unit"), "{}", stderr(&o));
    assert!(!d.join("bad_bunit").exists());

    // posterior-predictive check: a band scaled by 3 stands out in the residuals
    let s0: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("mapped/summary.json")).unwrap()).unwrap();
    let c0 = s0["ppc_median_chi2_reduced"].as_f64().expect("PPC ran");
    assert!(c0.is_finite() && c0 > 0.0);
    assert!(key(&mut f, "PPC_CHI2", "CTYPE1").is_some());
    {
        let p = d.join("scaled.fits");
        std::fs::copy(d.join("demo/demo_cube.fits"), &p).unwrap();
        let mut c = fitsio::FitsFile::edit(&p).unwrap();
        let h = c.hdu("FLUX").unwrap();
        let mut v: Vec<f32> = h.read_image(&mut c).unwrap();
        for x in &mut v[11 * npix..12 * npix] {
            *x *= 3.0;
        }
        h.write_image(&mut c, &v).unwrap();
    }
    let o = sbipix(&["map", "--model", "m", "--cube", "scaled.fits", "--out", "scaled", "--draws", "100"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let s1: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("scaled/summary.json")).unwrap()).unwrap();
    let band = s1["bands_used"][11].as_str().unwrap().to_string();
    let r0 = s0["ppc_median_residual_sigma"][&band].as_f64().unwrap();
    let r1 = s1["ppc_median_residual_sigma"][&band].as_f64().unwrap();
    assert!(r1 > r0 + 1.0 && s1["ppc_median_chi2_reduced"].as_f64().unwrap() > c0, "{band}: residual {r0} → {r1}");

    // a negative σ is named with its band and pixel; an image on another grid is refused
    let bad_err = d.join("err_neg.fits");
    {
        let mut v = err[6 * npix..7 * npix].to_vec();
        v[3 * 64 + 5] = -1.0;
        let desc = fitsio::images::ImageDescription { data_type: fitsio::images::ImageType::Float, dimensions: &[64, 64] };
        let mut ff = fitsio::FitsFile::create(&bad_err).with_custom_primary(&desc).open().unwrap();
        let h = ff.primary_hdu().unwrap();
        h.write_image(&mut ff, &v).unwrap();
        h.write_key(&mut ff, "CTYPE1", "RA---TAN").unwrap();
    }
    let shifted = d.join("sci_shifted.fits");
    {
        let desc = fitsio::images::ImageDescription { data_type: fitsio::images::ImageType::Float, dimensions: &[64, 64] };
        let mut ff = fitsio::FitsFile::create(&shifted).with_custom_primary(&desc).open().unwrap();
        let h = ff.primary_hdu().unwrap();
        h.write_image(&mut ff, &flux[8 * npix..9 * npix]).unwrap();
        h.write_key(&mut ff, "CTYPE1", "RA---SIN").unwrap();
    }
    let (sci277, err356, err444) = (d.join("sci_F277W.fits"), d.join("err_F356W.fits"), d.join("err_F444W.fits"));
    let (sci277, err356, err444, bad_err, shifted) = (
        sci277.to_str().unwrap(),
        err356.to_str().unwrap(),
        err444.to_str().unwrap(),
        bad_err.to_str().unwrap(),
        shifted.to_str().unwrap(),
    );
    let sci356 = d.join("sci_F356W.fits");
    let sci356 = sci356.to_str().unwrap();
    let o =
        sbipix(&["map", "--model", "m", "--redshift", "1.8", "--out", "bad", "--images", sci277, sci356, "--errors", bad_err, err356], d);
    assert!(
        !o.status.success() && stderr(&o).contains("negative error") && stderr(&o).contains("F277W") && stderr(&o).contains("x = 5, y = 3"),
        "{}",
        stderr(&o)
    );
    let o = sbipix(
        &[
            "map",
            "--model",
            "m",
            "--redshift",
            "1.8",
            "--out",
            "bad",
            "--images",
            sci277,
            shifted,
            "--errors",
            err444,
            err356,
            "--bands",
            "F277W,F356W",
        ],
        d,
    );
    assert!(!o.status.success() && stderr(&o).contains("WCS differs") && stderr(&o).contains("CTYPE1"), "{}", stderr(&o));
    let o = sbipix(&["map", "--model", "m", "--redshift", "1.8", "--out", "bad", "--images", sci277], d);
    assert!(!o.status.success() && stderr(&o).contains("--noise-from"), "{}", stderr(&o));
    assert!(!d.join("bad").exists());

    // bad input
    let jades = shared_file("real_data/jades_gsz14_pixels/cube_19band.fits");
    let jades = jades.to_str().unwrap();
    let mut cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["map", "--model", "m", "--cube", "demo/demo_cube.fits", "--redshift", "20", "--out", "bad"], "redshift 20"),
        (vec!["map", "--model", "m", "--cube", "nope.fits", "--redshift", "1", "--out", "bad"], "nope.fits"),
        (vec!["map", "--model", "m", "--cube", "demo/demo_cube.fits", "--snr-min", "1e9", "--out", "bad"], "no pixel"),
        (
            vec!["map", "--model", "m", "--cube", "demo/demo_cube.fits", "--seg", "demo/truth.fits", "--id", "123456", "--out", "bad"],
            "123456",
        ),
        (vec!["map", "--model", "nomodel", "--cube", "demo/demo_cube.fits", "--out", "bad"], "nomodel"),
    ];
    cases.push((vec!["map", "--model", "m", "--cube", jades, "--z-max", "99", "--out", "bad"], "forward model's range"));
    for (args, needle) in cases {
        let o = sbipix(&args, d);
        assert!(!o.status.success() && stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        assert!(!d.join("bad").exists(), "{args:?} left output");
    }
}
