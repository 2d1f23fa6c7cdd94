//! A model trained on dense_basis (non-parametric) simulations maps with exact posteriors through
//! the real binary, as a delayed-τ one does (issue 17, item 4): its refinement is recorded, its
//! history columns (log SFR at observation, t_x) are maps; photometric redshifts, which it lacks,
//! are refused with the way out. The posteriors' calibration is
//! `crates/sbipix/tests/dense_basis_exact.rs`.

mod common;
use common::*;

#[test]
fn dense_basis_model_maps_with_exact_posteriors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = sbipix(&["simulate", "--sfh", "dense-basis", "--n", "4000", "--seed", "6", "--out", "ts"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let o =
        sbipix(&["train", "--data", "ts", "--out", "m", "--max-epochs", "2", "--layers", "2", "--hidden", "32", "--hidden-layers", "1"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    // a cube to map: the demo's (its pixels' histories are delayed-τ — data like any other)
    let o = sbipix(&["demo", "--model", "m", "--out", "demo", "--fast"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = sbipix(
        &["map", "--model", "m", "--cube", "demo/demo_cube.fits", "--out", "exact", "--draws", "100", "--snr-min", "150", "--no-ppc"],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("network's (as --fast)"), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("exact/summary.json")).unwrap()).unwrap();
    assert!(s["refinement"]["refined_fraction"].as_f64().unwrap() > 0.9, "{}", s["refinement"]);
    let mut f = fitsio::FitsFile::open(d.join("exact/maps.fits")).unwrap();
    for h in ["LOG_MSTAR_P50", "LOG_SFR_INST_P50", "T50_FRAC_P16", "T50_FRAC_P84", "REFINED"] {
        assert!(f.hdu(h).is_ok(), "no {h} layer");
    }
    let (t16, t84): (Vec<f32>, Vec<f32>) =
        (f.hdu("T50_FRAC_P16").unwrap().read_image(&mut f).unwrap(), f.hdu("T50_FRAC_P84").unwrap().read_image(&mut f).unwrap());
    let ok = t16.iter().zip(&t84).filter(|(a, b)| a.is_finite() && b.is_finite()).all(|(a, b)| 0.0 < *a && a <= b && *b < 1.0);
    assert!(ok, "t50 intervals outside (0, 1) or inverted");

    // a catalogue of whole galaxies (300 simulated pixels each, 10 % errors) more massive and
    // star-forming than one pixel may be: the integrated fit raises the mass and SFR bounds
    // together (the sSFR range widens), so masses above the per-pixel prior's 10¹² come back
    let theta: ndarray::Array2<f32> = ndarray_npy::read_npy(d.join("ts/theta.npy")).unwrap();
    let z: ndarray::Array1<f32> = ndarray_npy::read_npy(d.join("ts/redshift.npy")).unwrap();
    let ft: ndarray::Array2<f32> = ndarray_npy::read_npy(d.join("ts/flux_true_ujy.npy")).unwrap();
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("ts/manifest.json")).unwrap()).unwrap();
    let bands: Vec<String> = m["bands"].as_array().unwrap().iter().map(|b| b.as_str().unwrap().to_string()).collect();
    let par = |n: &str| m["parameters"].as_array().unwrap().iter().position(|p| p["name"] == n).unwrap();
    let (jm, jf) = (par("log_mstar"), par("log_mass_formed"));
    let n_pix = 300.0f64;
    let mut csv = String::from("id,redshift");
    for b in &bands {
        csv.push_str(&format!(",flux_ujy_{b},err_ujy_{b}"));
    }
    csv.push('\n');
    let mut g = gauss(7);
    let mut truth = Vec::new();
    for i in (0..z.len()).filter(|&i| theta[[i, jf]] > 10.5 && z[i] > 0.5).take(6) {
        csv.push_str(&format!("g{i},{}", z[i]));
        for b in 0..bands.len() {
            let f = ft[[i, b]] as f64 * n_pix;
            let e = 0.1 * f.abs() + 1e-9;
            csv.push_str(&format!(",{},{e}", f + e * g()));
        }
        csv.push('\n');
        truth.push(theta[[i, jm]] as f64 + n_pix.log10());
    }
    assert_eq!(truth.len(), 6);
    std::fs::write(d.join("cat.csv"), &csv).unwrap();
    let o = sbipix(&["fit", "--model", "m", "--catalog", "cat.csv", "--out", "fit.csv", "--draws", "200", "--sys-err", "0"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(d.join("fit.csv")).unwrap();
    let mut lines = text.lines();
    let h: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| h.iter().position(|x| *x == n).unwrap_or_else(|| panic!("no {n} column"));
    let (med, refined) = (col("log_mstar_p50"), col("refined"));
    assert!(h.contains(&"t50_frac_p50") && h.contains(&"log_sfr_inst_p50"));
    let near = lines
        .zip(&truth)
        .filter(|(l, t)| {
            let r: Vec<&str> = l.split(',').collect();
            r[refined] == "1" && (r[med].parse::<f64>().unwrap() - *t).abs() < 0.3
        })
        .count();
    assert!(near >= 5, "only {near} of 6 integrated masses (true log M* {truth:?}) recovered within 0.3 dex");

    // no redshift: the photometric redshift is a delayed-τ feature — a clear refusal, nothing written
    let mut args: Vec<String> = ["map", "--model", "m", "--out", "pz"].iter().map(|s| s.to_string()).collect();
    args.extend(demo_band_images(d, "demo/demo_cube.fits", &[("F277W", 6), ("F356W", 8), ("F444W", 11)]));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = sbipix(&a, d);
    assert!(!o.status.success(), "mapped without a redshift");
    assert!(stderr(&o).contains("dense_basis") && stderr(&o).contains("--redshift"), "{}", stderr(&o));
    assert!(!d.join("pz").exists());
}
