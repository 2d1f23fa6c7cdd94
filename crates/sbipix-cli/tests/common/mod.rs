//! Helpers shared by the binary's integration tests.
#![allow(dead_code)] // each test file uses some of them

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the `sbipix` binary of this build in `dir`.
pub fn sbipix(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sbipix")).args(args).current_dir(dir).output().expect("run sbipix")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The project's shared reference data: `$SBIPIX_SHARED`, `../shared` beside the checkout, or
/// `/work/shared` — the first that holds `marker`.
pub fn shared_with(marker: &str) -> Option<PathBuf> {
    [
        std::env::var_os("SBIPIX_SHARED").map(PathBuf::from),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")),
        Some(PathBuf::from("/work/shared")),
    ]
    .into_iter()
    .flatten()
    .find(|c| c.join(marker).exists())
}

/// A file of the shared reference data (`rel` below the shared folder, as in [`shared_with`]).
/// CI always has the shared folder beside the checkout, so a missing file fails the test with
/// this message instead of letting it pass without running.
pub fn shared_file(rel: &str) -> PathBuf {
    match shared_with(rel) {
        Some(sh) => sh.join(rel),
        None => panic!(
            "shared reference file `{rel}` not found under $SBIPIX_SHARED, ../shared beside the checkout or /work/shared: \
             this test needs the project's shared data (set SBIPIX_SHARED to the folder that holds it)"
        ),
    }
}

/// Standard normal deviates from a 64-bit LCG and Box–Muller: independent of the code under test.
pub fn gauss(seed: u64) -> impl FnMut() -> f64 {
    let mut state = seed;
    move || {
        let mut u = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let (a, b) = (u(), u());
        (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()
    }
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

/// The demo cube's (`cube`, 64 × 64 pixels) bands `bands` (name, plane) written as per-band
/// science and σ images in `dir` (µJy, a TAN CTYPE1): `--images` followed by the science files,
/// then `--errors` followed by the σ files, ready to append to a `map` command.
pub fn demo_band_images(dir: &Path, cube: &str, bands: &[(&str, usize)]) -> Vec<String> {
    let mut f = fitsio::FitsFile::open(dir.join(cube)).unwrap();
    let flux: Vec<f32> = f.hdu("FLUX").unwrap().read_image(&mut f).unwrap();
    let err: Vec<f32> = f.hdu("ERR").unwrap().read_image(&mut f).unwrap();
    let npix = 64 * 64;
    let (mut sci, mut errs) = (vec!["--images".to_string()], vec!["--errors".to_string()]);
    for &(name, b) in bands {
        for (kind, data) in [("sci", &flux), ("err", &err)] {
            let p = dir.join(format!("{kind}_{name}.fits"));
            let desc = fitsio::images::ImageDescription { data_type: fitsio::images::ImageType::Float, dimensions: &[64, 64] };
            let mut ff = fitsio::FitsFile::create(&p).with_custom_primary(&desc).open().unwrap();
            let h = ff.primary_hdu().unwrap();
            h.write_image(&mut ff, &data[b * npix..(b + 1) * npix]).unwrap();
            h.write_key(&mut ff, "BUNIT", "uJy").unwrap();
            h.write_key(&mut ff, "CTYPE1", "RA---TAN").unwrap();
            if kind == "sci" { &mut sci } else { &mut errs }.push(p.to_string_lossy().into());
        }
    }
    sci.extend(errs);
    sci
}
