//! Helpers shared by the integration tests.
#![allow(dead_code)]

use sbipix::io::{DataStore, read_filter_list};
use sbipix::sps::{Filter, SpsData};
use std::path::PathBuf;
use std::sync::OnceLock;

/// The project's shared reference folder (`../shared` beside the checkout): `$SBIPIX_SHARED`,
/// then `<repo>/../shared`, then `/work/shared`. Tests that compare against independent
/// references need it; they fail (not skip) without it.
pub fn shared() -> PathBuf {
    let candidates = [
        std::env::var_os("SBIPIX_SHARED").map(PathBuf::from),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")),
        Some(PathBuf::from("/work/shared")),
    ];
    for c in candidates.into_iter().flatten() {
        if c.join("filters/filters_jades_no_wfc.dat").is_file() {
            return c;
        }
    }
    panic!("the shared reference folder was not found: set SBIPIX_SHARED to it");
}

pub fn data_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

/// The model data (fetched on first use).
pub fn store() -> DataStore {
    DataStore::from_env().expect("data store")
}

pub fn sps_data() -> &'static SpsData {
    static DATA: OnceLock<SpsData> = OnceLock::new();
    DATA.get_or_init(|| store().load_sps(&|m| eprintln!("{m}")).expect("model data"))
}

/// The 19 SBIPIX filter curves, in SBIPIX band order.
pub fn sbipix_filters() -> Vec<Filter> {
    read_filter_list(&shared().join("filters/filters_jades_no_wfc.dat")).expect("SBIPIX filters")
}

/// Reads a CSV with `#` comment lines into (header, rows of f64).
pub fn read_csv(path: &std::path::Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let mut rdr = csv::ReaderBuilder::new().comment(Some(b'#')).from_path(path).expect("csv");
    let header: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
    let rows = rdr.records().map(|r| r.unwrap().iter().map(|c| c.parse::<f64>().unwrap_or(f64::NAN)).collect()).collect();
    (header, rows)
}

pub fn col(header: &[String], name: &str) -> usize {
    header.iter().position(|h| h == name).unwrap_or_else(|| panic!("column {name}"))
}

pub fn percentile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pos = q / 100.0 * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (pos - lo as f64) * (v[hi] - v[lo])
}

/// A Python interpreter with numpy: a virtual environment under the cargo target folder, made
/// (and numpy installed with pip) on first use.
pub fn python_with_numpy() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("py-numpy");
    let py = venv.join("bin/python");
    let ok = |p: &std::path::Path| {
        std::process::Command::new(p).args(["-c", "import numpy"]).output().map(|o| o.status.success()).unwrap_or(false)
    };
    if ok(&py) {
        return py;
    }
    let lock = std::fs::File::create(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("py-numpy.lock")).unwrap();
    lock.lock().unwrap();
    if !ok(&py) {
        let st = std::process::Command::new("python3").args(["-m", "venv"]).arg(&venv).status().expect("python3 -m venv");
        assert!(st.success(), "python3 -m venv failed");
        let st = std::process::Command::new(&py).args(["-m", "pip", "install", "-q", "numpy"]).status().expect("pip install numpy");
        assert!(st.success(), "pip install numpy failed");
    }
    py
}

/// Confidence of the binomial bounds of the coverage tests: calibrated intervals fail one
/// coverage check with probability at most 0.1 %.
pub const COVERAGE_CONFIDENCE: f64 = 0.999;

/// Asserts that `inside` of `n` independent truths in central `level` intervals is a count that
/// calibrated intervals produce with probability ≥ [`COVERAGE_CONFIDENCE`]
/// (`sbipix::diagnostics::check_coverage`), and returns the coverage fraction.
pub fn assert_coverage(what: &str, inside: usize, n: usize, level: f64) -> f64 {
    sbipix::diagnostics::check_coverage(inside, n, level, COVERAGE_CONFIDENCE).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Copies a model folder's regular files (not its companion network's folder) into `to`; with
/// `main_only`, `model.json` loses its `companion`, so the copy is the main network alone.
pub fn copy_model_files(from: &std::path::Path, to: &std::path::Path, main_only: bool) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
    if main_only {
        let mpath = to.join("model.json");
        let mut manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
        manifest.as_object_mut().unwrap().remove("companion");
        std::fs::write(&mpath, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    }
}

/// The CRPS ratios `new` / `old` of each (parameter, largest ratio allowed), printed; returns the
/// parameters above their bound (a NaN ratio, a broken score, counts as above).
pub fn crps_ratios_above(
    new: &sbipix::validation::simulated::ValidationReport,
    old: &sbipix::validation::simulated::ValidationReport,
    bounds: &[(&str, f64)],
    names: (&str, &str),
) -> Vec<String> {
    let mut failed = Vec::new();
    for &(name, max) in bounds {
        let (a, b) = (new.parameters[name].crps, old.parameters[name].crps);
        eprintln!("{name}: CRPS {} {a:.4}, {} {b:.4}, ratio {:.3} (max {max})", names.0, names.1, a / b);
        if a / b > max || (a / b).is_nan() {
            failed.push(format!("{name}: ratio {:.3} > {max}", a / b));
        }
    }
    failed
}
