//! What `sbipix map` writes besides the maps: a primary header and a `summary.json` that say how
//! the maps were made (read back and compared with what was asked for), and outputs that are
//! replaced as a whole or not at all. Uses the shipped default model (no training).

mod common;
use common::*;

use std::path::Path;

fn primary<T: fitsio::headers::ReadsKey>(path: &Path, key: &str) -> T {
    let mut f = fitsio::FitsFile::open(path).unwrap();
    let h = f.primary_hdu().unwrap();
    h.read_key::<T>(&mut f, key).unwrap_or_else(|e| panic!("{}: {key}: {e}", path.display()))
}

fn summary(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn map_outputs_record_the_run_and_are_written_whole() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = sbipix(&["demo", "--out", "demo", "--fast"], d);
    assert!(o.status.success(), "{}", stderr(&o));

    // asked for: a seed beyond 2^53 (not exact as a double), 37 draws, S/N > 7.5, no PPC, the
    // network alone
    let seed = "9007199254740993";
    let args =
        ["map", "--cube", "demo/demo_cube.fits", "--out", "a", "--draws", "37", "--snr-min", "7.5", "--no-ppc", "--seed", seed, "--fast"];
    let o = sbipix(&args, d);
    assert!(o.status.success(), "{}", stderr(&o));
    let (fits, s) = (d.join("a/maps.fits"), summary(&d.join("a/summary.json")));
    assert_eq!(primary::<i64>(&fits, "SEED").to_string(), seed);
    assert_eq!(s["seed"].as_u64().unwrap().to_string(), seed);
    assert_eq!(primary::<i64>(&fits, "NDRAWS"), 37);
    assert_eq!(s["n_draws"], 37);
    assert_eq!(primary::<f64>(&fits, "SNRMIN"), 7.5);
    assert_eq!(s["snr_min"], 7.5);
    assert_eq!(primary::<String>(&fits, "SNRBANDS"), "F277W F356W F444W");
    assert_eq!(s["snr_bands"], serde_json::json!(["F277W", "F356W", "F444W"]));
    assert_eq!(primary::<f64>(&fits, "REDSHIFT"), 1.8);
    assert_eq!(primary::<i64>(&fits, "NPIXFIT"), s["n_pixels"].as_i64().unwrap());
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(primary::<String>(&fits, "SBIPIXV"), version);
    assert_eq!(s["sbipix_version"], version);
    assert_eq!(primary::<String>(&fits, "MODEL"), "default");
    assert_eq!(s["model_is_default"], true);
    let sha = s["model_weights_sha256"].as_str().unwrap().to_string();
    assert!(sha.len() == 64 && sha.chars().all(|c| c.is_ascii_hexdigit()), "{sha}");
    assert_eq!(primary::<String>(&fits, "MODELSHA"), sha[..16]);
    assert_eq!(primary::<f64>(&fits, "INTFLOOR"), 0.05);
    assert_eq!(primary::<i64>(&fits, "REFINE"), 0);
    assert!(s["segmentation_id"].is_null() && s["refinement"].is_null());
    assert_eq!(listing(&d.join("a")), ["maps.fits", "maps.png", "summary.json"], "nothing temporary left");
    // the demo galaxy's noise is the training survey's and it has every band: no flag of either
    // kind (no PPC here, so no colours flag), an OOD layer, and the count on the command line
    assert_eq!(s["ood"], serde_json::json!({"any": 0, "noise": 0, "bands": 0, "colours": 0}), "{}", s["ood"]);
    assert!(stderr(&o).contains("inside the network's training domain"), "{}", stderr(&o));
    let mut fo = fitsio::FitsFile::open(&fits).unwrap();
    let ood: Vec<f32> = fo.hdu("OOD").unwrap().read_image(&mut fo).unwrap();
    assert_eq!(ood.iter().filter(|v| v.is_finite()).count() as i64, s["n_pixels"].as_i64().unwrap());

    // another model (the default's weights, one bit changed): its folder and its own identity;
    // refinement settings recorded
    let m2 = d.join("m2");
    std::fs::create_dir(&m2).unwrap();
    let default_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/default");
    // the folder and its companion network's (`sparse/`)
    for sub in ["", "sparse"] {
        std::fs::create_dir_all(m2.join(sub)).unwrap();
        for e in std::fs::read_dir(default_dir.join(sub)).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                std::fs::copy(e.path(), m2.join(sub).join(e.file_name())).unwrap();
            }
        }
    }
    let mut w = std::fs::read(m2.join("weights.safetensors")).unwrap();
    let n = w.len();
    w[n - 4] ^= 1; // lowest mantissa bit of the last float
    std::fs::write(m2.join("weights.safetensors"), w).unwrap();
    let args = [
        "map",
        "--model",
        "m2",
        "--cube",
        "demo/demo_cube.fits",
        "--out",
        "a",
        "--draws",
        "37",
        "--snr-min",
        "140",
        "--no-ppc",
        "--refine",
        "--sys-err",
        "0.02",
    ];
    let o = sbipix(&args, d);
    assert!(o.status.success(), "{}", stderr(&o));
    let s2 = summary(&d.join("a/summary.json"));
    assert_eq!(primary::<String>(&fits, "MODEL"), "m2");
    assert_eq!((s2["model"].as_str(), &s2["model_is_default"]), (Some("m2"), &serde_json::json!(false)));
    let sha2 = s2["model_weights_sha256"].as_str().unwrap();
    assert!(sha2 != sha && primary::<String>(&fits, "MODELSHA") == sha2[..16]);
    assert_eq!(primary::<i64>(&fits, "SEED"), 0, "the whole set was replaced");
    assert_eq!(primary::<f64>(&fits, "SNRMIN"), 140.0);
    assert_eq!(primary::<i64>(&fits, "REFINE"), 1);
    assert_eq!(primary::<f64>(&fits, "SYSERR"), 0.02);
    assert_eq!(s2["refinement"]["settings"]["sys_frac"], 0.02);
    assert_eq!(primary::<i64>(&fits, "RSTARTS"), s2["refinement"]["settings"]["starts"].as_i64().unwrap());
    assert_eq!(primary::<i64>(&fits, "RPROPOSE"), s2["refinement"]["settings"]["proposals"].as_i64().unwrap());

    // a folder in the way of maps.png: the run fails naming it, and neither maps.fits nor
    // summary.json appears (nor anything temporary)
    std::fs::create_dir_all(d.join("b/maps.png")).unwrap();
    let o = sbipix(&["map", "--cube", "demo/demo_cube.fits", "--out", "b", "--draws", "37", "--no-ppc"], d);
    assert!(!o.status.success() && stderr(&o).contains("maps.png"), "{}", stderr(&o));
    assert_eq!(listing(&d.join("b")), ["maps.png"]);
    // an existing set is kept whole when the new one cannot be placed
    let before = std::fs::read(d.join("a/summary.json")).unwrap();
    std::fs::remove_file(d.join("a/maps.png")).unwrap();
    std::fs::create_dir(d.join("a/maps.png")).unwrap();
    let o = sbipix(&["map", "--cube", "demo/demo_cube.fits", "--out", "a", "--draws", "37", "--no-ppc"], d);
    assert!(!o.status.success());
    assert_eq!(std::fs::read(d.join("a/summary.json")).unwrap(), before);
    assert_eq!(primary::<String>(&fits, "MODEL"), "m2");
    assert_eq!(listing(&d.join("a")), ["maps.fits", "maps.png", "summary.json"]);
}
