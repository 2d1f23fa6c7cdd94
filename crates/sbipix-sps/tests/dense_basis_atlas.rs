//! dense_basis SFHs against the SBIPIX dense_basis atlas (made with dense_basis itself): for each
//! stored tuple, the SFH we build gives back the atlas' realised `rec_*` values.

use sbipix_sps::{Cosmology, DenseBasisTuple, dense_basis_calctimes};
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
        if c.join("reference/sbipix_fsps").is_dir() {
            return c;
        }
    }
    panic!("shared reference folder not found; set SBIPIX_SHARED");
}

#[test]
fn realised_tuples_match_the_atlas() {
    let text = std::fs::read_to_string(shared().join("reference/sbipix_fsps/sbipix_atlas_densebasis_nparam3.csv")).unwrap();
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let c = |n: &str| header.iter().position(|h| *h == n).unwrap();
    let cosmo = Cosmology::default();
    let (mut n, mut tx_exact, mut tx_close, mut m_close, mut s_close) = (0, 0, 0, 0, 0);
    let mut worst = 0.0f64;
    for line in lines {
        let v: Vec<f64> = line.split(',').map(|x| x.parse().unwrap_or(f64::NAN)).collect();
        let z = v[c("zred")];
        let tuple = DenseBasisTuple {
            log_mass_formed: v[c("tuple_logM")],
            log_sfr: v[c("tuple_logSFR")],
            tx: vec![v[c("tuple_t25")], v[c("tuple_t50")], v[c("tuple_t75")]],
        };
        // dense_basis' atlas generator: SFR window 100 Myr × t(z)/t(0.1) ("dynamic_decouple")
        let window = DenseBasisTuple::dynamic_sfr_window_gyr(cosmo.age_gyr(z), cosmo.age_gyr(0.1));
        let (t, sfr) = tuple.to_sfh(cosmo.age_gyr(z), window, 1000).unwrap();
        let (m, s, tx) = dense_basis_calctimes(&t, &sfr, 3);
        let rec = [v[c("rec_t25")], v[c("rec_t50")], v[c("rec_t75")]];
        let d = tx.iter().zip(&rec).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        worst = worst.max(d);
        n += 1;
        tx_exact += (d < 1e-9) as usize;
        // one step of dense_basis' 1000-point grid
        tx_close += (d <= 1.0 / 999.0 + 1e-9) as usize;
        m_close += ((m - v[c("rec_logM")]).abs() < 1e-3) as usize;
        s_close += ((s - v[c("rec_logSFR")]).abs() < 1e-3) as usize;
    }
    eprintln!(
        "{n} tuples: t_x identical {tx_exact}, within one grid step {tx_close}, worst {worst:.4}; log M within 1e-3 dex {m_close}; log SFR within 1e-3 dex {s_close}"
    );
    assert_eq!(n, 1000);
    // Every tuple: the same grid points (t_x are multiples of 1/999), mass and SFR to 1e-3 dex.
    assert_eq!(tx_exact, n);
    assert_eq!(tx_close, n);
    assert_eq!(m_close, n);
    assert_eq!(s_close, n);
}
