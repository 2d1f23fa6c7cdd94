//! `sbipix survey --manifest` (survey mode), `sbipix survey segment` and `sbipix demo --survey`
//! through the real binary.

mod common;
use common::*;

use std::path::Path;

fn csv_rows(p: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(p).unwrap();
    let mut r = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let h: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    r.records().map(|rec| h.iter().cloned().zip(rec.unwrap().iter().map(str::to_string)).collect()).collect()
}

/// A synthetic survey with truth: the masses of the fitted pixels are recovered, both summed over
/// pixels and from the integrated light; bad manifest rows are recorded and the rest goes on; a
/// rerun resumes without redoing finished galaxies.
#[test]
fn synthetic_survey_truth_failures_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = sbipix(&["demo", "--survey", "12", "--out", "demo"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = csv_rows(&d.join("demo/survey/galaxies.csv"));
    assert_eq!(rows.len(), 12);
    let ok: Vec<_> = rows.iter().filter(|r| r["status"] == "ok").collect();
    assert!(ok.len() >= 9, "{} ok", ok.len());
    let mut dres = Vec::new();
    let mut dint = Vec::new();
    for r in &ok {
        let t: f64 = r["log_mstar_true_fitted"].parse().unwrap();
        if t > 8.0 {
            dres.push(r["log_mstar_resolved"].parse::<f64>().unwrap() - t);
            dint.push(r["log_mstar_integrated"].parse::<f64>().unwrap() - t);
        }
        let delta: f64 = r["delta_log_mstar"].parse().unwrap();
        let (a, b): (f64, f64) = (r["log_mstar_resolved"].parse().unwrap(), r["log_mstar_integrated"].parse().unwrap());
        assert!((delta - (a - b)).abs() < 2e-4);
    }
    assert!(dres.len() >= 5);
    for (what, v) in [("resolved", &dres), ("integrated", &dint)] {
        let mut v = v.clone();
        v.sort_by(f64::total_cmp);
        let med = v[v.len() / 2];
        assert!(med.abs() < 0.15, "{what} − truth median {med} ({v:?})");
    }
    assert!(d.join("demo/survey/outshining.png").is_file());

    // a manifest with problems: a missing file, a duplicate id, a redshift beyond the model, a
    // bad id; the good rows are mapped, the exit status says some failed
    let man = "id,cube,redshift\ngal0001,demo/cubes/gal0001.fits,\nmissing,demo/cubes/nope.fits,2\ngal0001,demo/cubes/gal0002.fits,\nfar,demo/cubes/gal0002.fits,9.9\nbad/id,demo/cubes/gal0002.fits,\ngal0002,demo/cubes/gal0002.fits,\n";
    std::fs::write(d.join("m.csv"), man).unwrap();
    let o = sbipix(&["survey", "--manifest", "m.csv", "--out", "s", "--draws", "100", "--no-ppc"], d);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("4 of 6 galaxies failed"), "{}", stderr(&o));
    let rows = csv_rows(&d.join("s/galaxies.csv"));
    let st: Vec<&str> = rows.iter().map(|r| r["status"].as_str()).collect();
    assert_eq!(st[0], "ok");
    assert!(st[1].contains("no such file"), "{}", st[1]);
    assert!(st[2].contains("duplicate id (first on row 1)"), "{}", st[2]);
    assert!(st[3].contains("outside the trained range"), "{}", st[3]);
    assert!(st[4].contains("letters, digits"), "{}", st[4]);
    assert_eq!(st[5], "ok");
    // the duplicate did not overwrite the first galaxy's maps
    let s1: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("s/galaxies/gal0001/status.json")).unwrap()).unwrap();
    assert!(s1["summary"]["source"].as_str().unwrap().contains("gal0001.fits"));

    // resume: finished galaxies are not redone, a removed one is
    let t1 = std::fs::metadata(d.join("s/galaxies/gal0001/maps.fits")).unwrap().modified().unwrap();
    std::fs::remove_dir_all(d.join("s/galaxies/gal0002")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let o = sbipix(&["survey", "--manifest", "m.csv", "--out", "s", "--draws", "100", "--no-ppc"], d);
    assert!(stderr(&o).contains("1 already done: resuming"), "{}", stderr(&o));
    assert_eq!(std::fs::metadata(d.join("s/galaxies/gal0001/maps.fits")).unwrap().modified().unwrap(), t1);
    assert!(d.join("s/galaxies/gal0002/maps.fits").is_file());
    assert!(!std::fs::read_dir(d.join("s/galaxies")).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().starts_with(".sbipix-tmp")));

    // manifest-level errors stop before any work
    for (text, want) in [
        ("id,cube,colour\na,x.fits,red\n", "unknown column `colour`"),
        ("cube,redshift\nx.fits,2\n", "missing column `id`"),
        ("id,redshift\na,2\n", "needs a `cube` column"),
        ("id,cube\n", "no rows"),
    ] {
        std::fs::write(d.join("bad.csv"), text).unwrap();
        let o = sbipix(&["survey", "--manifest", "bad.csv", "--out", "bad"], d);
        assert!(!o.status.success() && stderr(&o).contains(want), "want {want}: {}", stderr(&o));
        assert!(!d.join("bad/galaxies.csv").exists());
    }
    let o = sbipix(&["survey", "--out", "x"], d);
    assert!(!o.status.success() && stderr(&o).contains("--manifest"), "{}", stderr(&o));
}

/// The real JADES field becomes a small survey: segmentation by S/N threshold + connected
/// components, then one map per source (cutout + segmentation id).
#[test]
fn jades_field_segmented_into_a_survey() {
    let cube = shared_file("real_data/jades_gsz14_pixels/cube_19band.fits");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = sbipix(
        &[
            "survey",
            "segment",
            "--cube",
            cube.to_str().unwrap(),
            "--redshift",
            "3",
            "--snr-min",
            "3",
            "--min-pixels",
            "30",
            "--out",
            "field",
        ],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = csv_rows(&d.join("field/manifest.csv"));
    assert!(rows.len() >= 3, "{} sources", rows.len());
    let o = sbipix(&["survey", "--manifest", "field/manifest.csv", "--out", "fs", "--draws", "100", "--no-ppc"], d);
    let out = csv_rows(&d.join("fs/galaxies.csv"));
    assert_eq!(out.len(), rows.len());
    let ok: Vec<_> = out.iter().filter(|r| r["status"] == "ok").collect();
    assert!(ok.len() >= 2, "{:?} / {}", out.iter().map(|r| &r["status"]).collect::<Vec<_>>(), stderr(&o));
    // the sources do not overlap: the fitted pixels add up to at most the field's S/N > 5 pixels (682)
    let n: usize = ok.iter().map(|r| r["n_pixels"].parse::<usize>().unwrap()).sum();
    assert!(n > 300 && n <= 682, "{n}");
}
