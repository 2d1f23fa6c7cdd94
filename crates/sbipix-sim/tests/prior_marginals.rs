//! Prior marginals against their exact distributions (Kolmogorov–Smirnov), and the survey model
//! against the real JADES pixels it was learnt from.

use rand::SeedableRng;
use sbipix_sim::{Prior, Survey};
use sbipix_sps::Cosmology;
use std::path::PathBuf;

/// KS statistic of samples against a CDF.
fn ks(mut x: Vec<f64>, cdf: impl Fn(f64) -> f64) -> f64 {
    x.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = x.len() as f64;
    x.iter()
        .enumerate()
        .map(|(i, v)| {
            let c = cdf(*v);
            (c - i as f64 / n).abs().max(((i + 1) as f64 / n - c).abs())
        })
        .fold(0.0, f64::max)
}

/// KS critical value at significance 0.001: 1.95/√n.
fn critical(n: usize) -> f64 {
    1.95 / (n as f64).sqrt()
}

#[test]
fn delayed_tau_marginals_are_uniform() {
    let p = Prior::sbipix_delayed_tau();
    let c = Cosmology::default();
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(11);
    let n = 20_000;
    let draws: Vec<_> = (0..n).map(|_| p.sample(&mut rng, &c)).collect();
    let uni = |lo: f64, hi: f64| move |x: f64| ((x - lo) / (hi - lo)).clamp(0.0, 1.0);
    let checks: Vec<(&str, Vec<f64>, (f64, f64))> = vec![
        ("redshift", draws.iter().map(|d| d.params.redshift).collect(), (0.0, 7.5)),
        ("logzsol", draws.iter().map(|d| d.params.logzsol).collect(), (-2.27, 0.40)),
        ("av_mag", draws.iter().map(|d| d.params.av_mag).collect(), (0.0, 4.3)),
        ("log_tau_gyr", draws.iter().map(|d| d.shape[0]).collect(), (-2.0, 2.0)),
        ("onset_fraction", draws.iter().map(|d| d.shape[1]).collect(), (0.0, 1.0)),
        (
            "log_mass_formed",
            draws
                .iter()
                .map(|d| match &d.params.sfh {
                    sbipix_sps::SfhSpec::Parametric { log_mass_formed, .. } => *log_mass_formed,
                    _ => unreachable!(),
                })
                .collect(),
            (4.0, 12.0),
        ),
    ];
    for (name, x, (lo, hi)) in checks {
        let d = ks(x, uni(lo, hi));
        assert!(d < critical(n), "{name}: KS D = {d}");
    }
    // A wrong range must fail the same test (the test can fail).
    let x: Vec<f64> = draws.iter().map(|d| d.params.av_mag).collect();
    assert!(ks(x, uni(0.0, 4.0)) > critical(n));
    // fixed parameters stay fixed
    assert!(draws.iter().all(|d| d.params.logu == -2.0 && d.params.eta == 1.0));
}

#[test]
fn dense_basis_tx_follow_dirichlet_order_statistics() {
    // Cumulative sums of Dirichlet(1,1,1,1) components: t25 ~ Beta(1,3), t50 ~ Beta(2,2),
    // t75 ~ Beta(3,1).
    let p = Prior::sbipix_dense_basis();
    let c = Cosmology::default();
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(12);
    let n = 20_000;
    let draws: Vec<_> = (0..n).map(|_| p.sample(&mut rng, &c)).collect();
    let cdfs: [fn(f64) -> f64; 3] = [|x| 1.0 - (1.0 - x).powi(3), |x| 3.0 * x * x - 2.0 * x * x * x, |x| x.powi(3)];
    for (k, cdf) in cdfs.iter().enumerate() {
        let x: Vec<f64> = draws.iter().map(|d| d.shape[1 + k]).collect();
        let d = ks(x, cdf);
        assert!(d < critical(n), "t_x[{k}]: KS D = {d}");
    }
    let sfr: Vec<f64> = draws.iter().map(|d| d.shape[0]).collect();
    assert!(ks(sfr, |x| ((x + 9.0) / 11.0).clamp(0.0, 1.0)) < critical(n));
}

fn shared() -> PathBuf {
    for c in [
        std::env::var_os("SBIPIX_SHARED").map(PathBuf::from),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")),
        Some(PathBuf::from("/work/shared")),
    ]
    .into_iter()
    .flatten()
    {
        if c.join("real_data/jades_gsz14_pixels").is_dir() {
            return c;
        }
    }
    panic!("shared reference folder not found; set SBIPIX_SHARED");
}

/// Reads a little-endian float64 2-D .npy (the real JADES arrays) without any crate.
fn read_f64_npy(p: &std::path::Path) -> (Vec<f64>, usize, usize) {
    let b = std::fs::read(p).unwrap();
    assert_eq!(&b[..6], b"\x93NUMPY");
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
    assert!(header.contains("'<f8'") && header.contains("False"));
    let shape = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap();
    let dims: Vec<usize> = shape.split(',').filter_map(|s| s.trim().parse().ok()).collect();
    let data = b[10 + hlen..].chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect();
    (data, dims[0], dims[1])
}

#[test]
fn jades_noise_reproduces_the_real_error_distribution() {
    let dir = shared().join("real_data/jades_gsz14_pixels");
    let (flux, np, nb) = read_f64_npy(&dir.join("flux_ujy.npy"));
    let (err, _, _) = read_f64_npy(&dir.join("err_ujy.npy"));
    let s = Survey::jades();
    let bands = s.band_names();
    let smp = s.sampler(&bands).unwrap();
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(13);
    let mut sims: Vec<Vec<f64>> = vec![Vec::new(); nb];
    let (mut sig, mut obs) = (vec![0.0; nb], vec![0.0; nb]);
    for p in 0..np {
        // the measured flux stands in for the true one (it sets the Poisson term)
        let truth: Vec<f64> = (0..nb).map(|b| flux[p * nb + b]).collect();
        smp.draw(&mut rng, &truth, &mut sig, &mut obs);
        for b in 0..nb {
            sims[b].push(sig[b]);
        }
    }
    for b in 0..nb {
        let mut real: Vec<f64> = (0..np).map(|p| err[p * nb + b]).filter(|e| *e > 0.0).collect();
        if real.is_empty() {
            continue; // no coverage (F430M, F460M, F480M)
        }
        real.sort_by(|a, b| a.partial_cmp(b).unwrap());
        sims[b].sort_by(|a, b| a.partial_cmp(b).unwrap());
        for p in [0.05, 0.25, 0.5, 0.75, 0.95] {
            // as a quantile table of the sorted samples
            let (r, m) = (sorted_q(&real, p), sorted_q(&sims[b], p));
            assert!((m / r - 1.0).abs() < 0.05, "{} at {p}: simulated σ {m:.3e} vs real {r:.3e}", bands[b]);
        }
    }
}

fn sorted_q(v: &[f64], p: f64) -> f64 {
    let pos = p * (v.len() - 1) as f64;
    let k = pos as usize;
    v[k] + (pos - k as f64) * (v[(k + 1).min(v.len() - 1)] - v[k])
}
