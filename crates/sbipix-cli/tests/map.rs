//! `sbipix map` and the map demo through the real binary (with a small model trained here).

use std::path::Path;
use std::process::{Command, Output};

fn sbipix(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sbipix")).args(args).current_dir(dir).output().expect("run sbipix")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn key(f: &mut fitsio::FitsFile, hdu: &str, k: &str) -> Option<String> {
    let h = f.hdu(hdu).ok()?;
    h.read_key::<String>(f, k).ok()
}

#[test]
fn map_cube_and_images_with_wcs_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(sbipix(&["simulate", "--n", "4000", "--seed", "4", "--out", "ts"], d).status.success());
    let o = sbipix(&["train", "--data", "ts", "--out", "m", "--max-epochs", "2", "--layers", "2", "--hidden", "32", "--hidden-layers", "1"], d);
    assert!(o.status.success(), "{}", stderr(&o));

    // the demo builds a synthetic cube with a WCS and maps it
    let o = sbipix(&["demo", "--model", "m", "--out", "demo"], d);
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
    for h in ["LOG_MSTAR_P16", "LOG_MSTAR_P50", "LOG_MSTAR_P84", "MASS_WEIGHTED_AGE_GYR_P50", "LOGZSOL_P50", "AV_MAG_P50", "LOG_SFR_100MYR_P50", "LOG_SIGMA_MSTAR_P50", "SNR", "MASK"] {
        assert_eq!(key(&mut f, h, "CTYPE1").as_deref(), Some("RA---TAN"), "{h}");
    }
    let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("mapped/summary.json")).unwrap()).unwrap();
    assert!(s["n_pixels"].as_u64().unwrap() > 100);
    assert!((s["pixel_scale_arcsec"].as_f64().unwrap() - 0.03).abs() < 1e-9);
    assert!(s["log_mstar_resolved"][1].is_number() && s["log_mstar_integrated"][1].is_number());

    // per-band images with σ maps (three bands only: the others are missing for every pixel)
    let mut cube = fitsio::FitsFile::open(d.join("demo/demo_cube.fits")).unwrap();
    let hf = cube.hdu("FLUX").unwrap();
    let flux: Vec<f32> = hf.read_image(&mut cube).unwrap();
    let he = cube.hdu("ERR").unwrap();
    let err: Vec<f32> = he.read_image(&mut cube).unwrap();
    let npix = 64 * 64;
    let mut args: Vec<String> = vec!["map".into(), "--model".into(), "m".into(), "--redshift".into(), "1.8".into(), "--out".into(), "img".into(), "--images".into()];
    let mut errs = vec!["--errors".to_string()];
    for (name, b) in [("F277W", 6usize), ("F356W", 8), ("F444W", 11)] {
        for (kind, data) in [("sci", &flux), ("err", &err)] {
            let p = d.join(format!("{kind}_{name}.fits"));
            let desc = fitsio::images::ImageDescription { data_type: fitsio::images::ImageType::Float, dimensions: &[64, 64] };
            let mut ff = fitsio::FitsFile::create(&p).with_custom_primary(&desc).open().unwrap();
            let h = ff.primary_hdu().unwrap();
            h.write_image(&mut ff, &data[b * npix..(b + 1) * npix]).unwrap();
            h.write_key(&mut ff, "BUNIT", "uJy").unwrap();
            h.write_key(&mut ff, "CTYPE1", "RA---TAN").unwrap();
            if kind == "sci" {
                args.push(p.to_string_lossy().into());
            } else {
                errs.push(p.to_string_lossy().into());
            }
        }
    }
    args.extend(errs);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = sbipix(&a, d);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("img/summary.json")).unwrap()).unwrap();
    assert_eq!(s["bands_used"].as_array().unwrap().len(), 3);

    // bad input
    let jades = "/work/shared/real_data/jades_gsz14_pixels/cube_19band.fits";
    let mut cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["map", "--model", "m", "--cube", "demo/demo_cube.fits", "--redshift", "20", "--out", "bad"], "redshift 20"),
        (vec!["map", "--model", "m", "--cube", "nope.fits", "--redshift", "1", "--out", "bad"], "nope.fits"),
        (vec!["map", "--model", "m", "--cube", "demo/demo_cube.fits", "--snr-min", "1e9", "--out", "bad"], "no pixel"),
        (vec!["map", "--model", "m", "--cube", "demo/demo_cube.fits", "--seg", "demo/truth.fits", "--id", "123456", "--out", "bad"], "123456"),
        (vec!["map", "--model", "nomodel", "--cube", "demo/demo_cube.fits", "--out", "bad"], "nomodel"),
    ];
    if Path::new(jades).is_file() {
        cases.push((vec!["map", "--model", "m", "--cube", jades, "--out", "bad"], "no redshift"));
    }
    for (args, needle) in cases {
        let o = sbipix(&args, d);
        assert!(!o.status.success() && stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        assert!(!d.join("bad").exists(), "{args:?} left output");
    }
}
