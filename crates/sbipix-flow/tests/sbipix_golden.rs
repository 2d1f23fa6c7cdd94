//! Golden test against sbi: the SBIPIX authors' released network (converted weights in
//! `shared/reference/sbipix_released_model`) must give sbi's own log-probabilities, its
//! deterministic sampling direction, and samples with sbi's percentiles.

use sbipix_flow::FlowModel;
use sbipix_flow::sbipix_import::import_sbipix;
use std::path::PathBuf;

fn shared() -> PathBuf {
    for c in [
        std::env::var_os("SBIPIX_SHARED").map(PathBuf::from),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")),
        Some(PathBuf::from("/work/shared")),
    ]
    .into_iter()
    .flatten()
    {
        if c.join("reference/sbipix_released_model").is_dir() {
            return c;
        }
    }
    panic!("shared reference folder not found; set SBIPIX_SHARED");
}

fn dir() -> PathBuf {
    shared().join("reference/sbipix_released_model")
}

const NAMES: [&str; 7] = ["log_mstar_surviving", "log_mass_formed", "log_sfr", "tau_gyr", "t_start_gyr", "logzsol", "dust2"];

fn model() -> FlowModel<f64> {
    import_sbipix(&dir().join("weights.safetensors"), &NAMES).unwrap()
}

/// CSV with a header; values parsed as f32 first (they were written from float32), then f64.
fn csv(name: &str) -> (Vec<String>, Vec<Vec<f64>>) {
    let text = std::fs::read_to_string(dir().join(name)).unwrap();
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    let rows = lines.map(|l| l.split(',').map(|v| v.parse::<f64>().unwrap_or(f64::NAN)).collect()).collect();
    (header, rows)
}

fn cols(h: &[String], prefix: &str, n: usize) -> Vec<usize> {
    (0..n).map(|i| h.iter().position(|c| c == &format!("{prefix}{i}")).unwrap()).collect()
}

fn f32v(v: f64) -> f64 {
    v as f32 as f64
}

#[test]
fn log_prob_matches_sbi_in_f64_and_f32() {
    let (h, rows) = csv("reference_logprob.csv");
    assert_eq!(rows.len(), 200);
    let (xc, tc) = (cols(&h, "x_", 39), cols(&h, "theta_", 7));
    let lp64 = h.iter().position(|c| c == "flow_log_prob_f64").unwrap();
    let x: Vec<f64> = rows.iter().flat_map(|r| xc.iter().map(|&i| f32v(r[i]))).collect();
    let th: Vec<f64> = rows.iter().flat_map(|r| tc.iter().map(|&i| f32v(r[i]))).collect();
    let m = model();
    let ours = m.log_prob(&th, &x, 200).unwrap();
    let worst64 = ours.iter().zip(&rows).map(|(a, r)| (a - r[lp64]).abs()).fold(0.0, f64::max);
    let ours32 = m.cast::<f32>().log_prob(&th, &x, 200).unwrap();
    let worst32 = ours32.iter().zip(&rows).map(|(a, r)| (a - r[lp64]).abs()).fold(0.0, f64::max);
    eprintln!("log_prob vs sbi (f64 reference): f64 max |Δ| = {worst64:.2e}, f32 max |Δ| = {worst32:.2e}");
    assert!(worst64 <= 1e-8, "f64: {worst64}");
    assert!(worst32 <= 2e-3, "f32: {worst32}");
}

#[test]
fn inverse_matches_sbi() {
    let (h, rows) = csv("reference_inverse.csv");
    let (lh, lrows) = csv("reference_logprob.csv");
    let xc = cols(&lh, "x_", 39);
    let (uc, tc) = (cols(&h, "u_", 7), cols(&h, "theta_f64_", 7));
    let case = h.iter().position(|c| c == "case_id").unwrap();
    let cid = lh.iter().position(|c| c == "case_id").unwrap();
    let m = model();
    let n = rows.len();
    let u: Vec<f64> = rows.iter().flat_map(|r| uc.iter().map(|&i| f32v(r[i]))).collect();
    let x: Vec<f64> = rows
        .iter()
        .flat_map(|r| {
            let lr = lrows.iter().find(|l| l[cid] == r[case]).unwrap();
            xc.iter().map(|&i| f32v(lr[i])).collect::<Vec<_>>()
        })
        .collect();
    let th = m.transform_noise(&u, &x, n).unwrap();
    let worst = (0..n * 7).map(|k| (th[k] - rows[k / 7][tc[k % 7]]).abs()).fold(0.0, f64::max);
    eprintln!("inverse vs sbi (f64): max |Δθ| = {worst:.2e} over {n} draws");
    // sbi's README: an independent f64 implementation agrees to 3e-7 absolute
    assert!(worst < 1e-6, "{worst}");
}

#[test]
fn samples_match_sbi_percentiles() {
    let (sh, srows) = csv("reference_samples_summary.csv");
    let (lh, lrows) = csv("reference_logprob.csv");
    let xc = cols(&lh, "x_", 39);
    let cid = lh.iter().position(|c| c == "case_id").unwrap();
    let m = model().cast::<f32>();
    let ci = sh.iter().position(|c| c == "case_id").unwrap();
    let cases: Vec<f64> = {
        let mut v: Vec<f64> = srows.iter().map(|r| r[ci]).collect();
        v.dedup();
        v
    };
    for case in cases {
        let lr = lrows.iter().find(|l| l[cid] == case).unwrap();
        let x: Vec<f64> = xc.iter().map(|&i| f32v(lr[i])).collect();
        let n = 4000;
        let s = m.sample(&x, 1, n, 42 + case as u64).unwrap();
        for r in srows.iter().filter(|r| r[ci] == case) {
            let p = r[sh.iter().position(|c| c == "param_index").unwrap()] as usize;
            let mut v: Vec<f64> = (0..n).map(|k| s[k * 7 + p] as f64).collect();
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let q = |f: f64| v[((n - 1) as f64 * f) as usize];
            let std = r[sh.iter().position(|c| c == "std").unwrap()];
            for (col, f) in [("p16", 0.16), ("p50", 0.5), ("p84", 0.84)] {
                let want = r[sh.iter().position(|c| c == col).unwrap()];
                // Monte-Carlo error of a quantile from 1000 (sbi) and 4000 (ours) draws: ≈ 0.05 σ;
                // allow 4 of those.
                assert!((q(f) - want).abs() < 0.2 * std, "case {case} param {p} {col}: {} vs {want} (σ {std})", q(f));
            }
        }
    }
}

#[test]
fn saved_and_reloaded_model_is_identical() {
    let m = model();
    let dir = tempfile::tempdir().unwrap();
    sbipix_flow::save_dir(&m, dir.path()).unwrap();
    let r = sbipix_flow::load_dir(dir.path()).unwrap();
    let (h, rows) = csv("reference_logprob.csv");
    let (xc, tc) = (cols(&h, "x_", 39), cols(&h, "theta_", 7));
    let x: Vec<f64> = rows.iter().take(20).flat_map(|r| xc.iter().map(|&i| f32v(r[i]))).collect();
    let th: Vec<f64> = rows.iter().take(20).flat_map(|r| tc.iter().map(|&i| f32v(r[i]))).collect();
    assert_eq!(m.log_prob(&th, &x, 20).unwrap(), r.log_prob(&th, &x, 20).unwrap());
    // a damaged directory is an error naming the file
    std::fs::write(dir.path().join("weights.safetensors"), b"garbage").unwrap();
    let e = sbipix_flow::load_dir(dir.path()).unwrap_err().to_string();
    assert!(e.contains("weights.safetensors"), "{e}");
    std::fs::remove_file(dir.path().join("flow.json")).unwrap();
    assert!(sbipix_flow::load_dir(dir.path()).unwrap_err().to_string().contains("flow.json"));
}
