//! The forward model against FSPS photometry made by the SBIPIX authors (the delayed-τ atlases
//! in `shared/reference/sbipix_fsps`), an independent code with different stellar physics.
//!
//! 1. The tabulated SFH reproduces FSPS-style 1000-point tables: rebuilding each atlas row's
//!    table, the mass it forms matches the atlas' `log_mformed` and the mean SFR of its last
//!    100 points matches `log_sfr_tab`.
//! 2. Photometry: per-band median offset and scatter (NMAD) of ours − FSPS·(1+z), same SFH table,
//!    Calzetti dust, nebular log U = −2, Madau IGM. The differences are physical (IMF, Z☉,
//!    isochrones, band averaging) and documented in docs/forward-model.md; the test pins each
//!    band to its documented offset and scatter ± 0.05 mag and prints the table
//!    (`cargo test --release -p sbipix --test fsps_atlas -- --nocapture`).

mod common;

use common::*;
use sbipix::sps::{GalaxyParams, IgmModel, ModelConfig, SfhSpec, SpsModel};

struct Row {
    z: f64,
    age_universe: f64,
    log_mformed: f64,
    log_sfr_tab: f64,
    tau: f64,
    t_start: f64,
    dust2: f64,
    logzsol: f64,
    log_mstar_surviving: f64,
    flux: Vec<f64>,
}

const ATLAS_BANDS: [&str; 19] = [
    "JWST_F090W",
    "JWST_F115W",
    "JWST_F150W",
    "JWST_F182M",
    "JWST_F200W",
    "JWST_F210M",
    "JWST_F277W",
    "JWST_F335M",
    "JWST_F356W",
    "JWST_F410M",
    "JWST_F430M",
    "JWST_F444W",
    "JWST_F460M",
    "JWST_F480M",
    "HST_ACS_F435W",
    "HST_ACS_F606W",
    "HST_ACS_F775W",
    "HST_ACS_F814W",
    "HST_ACS_F850LP",
];

/// Median offset (sbipix − FSPS, mag) and NMAD per band over the 1729 usable galaxies of the two
/// atlases, as documented in docs/forward-model.md (*Against FSPS*), measured with
/// `cargo test --release -p sbipix --test fsps_atlas -- --nocapture`.
const DOCUMENTED_OFFSETS: [(&str, f64, f64); 19] = [
    ("F090W", 0.263, 0.252),
    ("F115W", 0.186, 0.209),
    ("F150W", 0.161, 0.203),
    ("F182M", 0.133, 0.160),
    ("F200W", 0.140, 0.170),
    ("F210M", 0.126, 0.133),
    ("F277W", 0.131, 0.114),
    ("F335M", 0.100, 0.097),
    ("F356W", 0.097, 0.095),
    ("F410M", 0.085, 0.110),
    ("F430M", 0.087, 0.117),
    ("F444W", 0.093, 0.114),
    ("F460M", 0.090, 0.126),
    ("F480M", 0.094, 0.129),
    ("F435W", 0.191, 0.275),
    ("F606W", 0.277, 0.262),
    ("F775W", 0.204, 0.258),
    ("F814W", 0.289, 0.312),
    ("F850LP", 0.277, 0.269),
];

fn atlas(name: &str) -> Vec<Row> {
    let (h, rows) = read_csv(&shared().join("reference/sbipix_fsps").join(name));
    rows.iter()
        .map(|r| Row {
            z: r[col(&h, "zred")],
            age_universe: r[col(&h, "age_universe_Gyr")],
            log_mformed: r[col(&h, "log_mformed")],
            log_sfr_tab: r[col(&h, "log_sfr_tab")],
            tau: r[col(&h, "tau_Gyr")],
            t_start: r[col(&h, "t_start_Gyr")],
            dust2: r[col(&h, "dust2")],
            logzsol: r[col(&h, "logzsol")],
            log_mstar_surviving: r[col(&h, "log_mstar_surviving")],
            flux: ATLAS_BANDS.iter().map(|b| r[col(&h, &format!("flux_uJy_{b}"))]).collect(),
        })
        .collect()
}

/// The SBIPIX simulator's table: t = linspace(0, t_univ, 1000) Gyr, SFR = A (t − t_s) e^(−(t−t_s)/τ)
/// M☉/yr, A such that the analytic integral over [0, t_univ] is 10^log M, values < 1e-33 → 1.1e-33.
fn fsps_table(r: &Row) -> (Vec<f64>, Vec<f64>) {
    let n = 1000;
    let t: Vec<f64> = (0..n).map(|i| r.age_universe * i as f64 / (n - 1) as f64).collect();
    let x = (r.age_universe - r.t_start) / r.tau;
    // ∫₀^(t_u − t_s) u e^(−u/τ) du = τ² (1 − (1 + x) e^(−x)), in Gyr²
    let integral_gyr2 = r.tau * r.tau * (1.0 - (1.0 + x) * (-x).exp());
    let a = 10f64.powf(r.log_mformed) / (integral_gyr2 * 1e9);
    let sfr = t
        .iter()
        .map(|&ti| {
            let u = ti - r.t_start;
            let s = if u > 0.0 { a * u * (-u / r.tau).exp() } else { 0.0 };
            if s < 1e-33 { 1.1e-33 } else { s }
        })
        .collect();
    (t, sfr)
}

fn usable(r: &Row) -> bool {
    r.log_mstar_surviving >= 5.0 && r.flux.iter().all(|f| *f > 0.0) && r.z <= 7.5
}

#[test]
fn tabulated_sfh_reproduces_fsps_tables() {
    let model = SpsModel::new(sps_data(), sbipix_filters(), ModelConfig::default()).unwrap();
    let mut dm_formed = Vec::new();
    let mut d_sfr = Vec::new();
    for r in atlas("sbipix_atlas_tau_library.csv").iter().filter(|r| usable(r)) {
        let (t, sfr) = fsps_table(r);
        let mean_last: f64 = sfr[900..].iter().sum::<f64>() / 100.0;
        d_sfr.push((mean_last.log10() - r.log_sfr_tab).abs());
        let p = GalaxyParams {
            redshift: r.z,
            sfh: SfhSpec::TabulatedCosmic { time_gyr: t, sfr_msun_per_yr: sfr },
            logzsol: r.logzsol,
            av_mag: 0.0,
            eta: 1.0,
            logu: -2.0,
        };
        let (_, d) = model.photometry(&p).unwrap();
        // Well-sampled tables (τ ≥ 10 table steps) form the mass they were normalised to.
        if r.tau > 10.0 * r.age_universe / 999.0 {
            dm_formed.push((d.log_mass_formed - r.log_mformed).abs());
        }
    }
    let med_sfr = percentile(&mut d_sfr, 50.0);
    let p_sfr = percentile(&mut d_sfr, 99.0);
    let p_m = percentile(&mut dm_formed, 99.0);
    eprintln!(
        "table rebuild: |Δlog SFR_tab| median {med_sfr:.2e}, 99th pct {p_sfr:.2e}; |Δlog M_formed| (τ ≥ 10 steps) = {p_m:.2e} over {} rows",
        dm_formed.len()
    );
    // Exact up to the atlas' 10 significant digits, except rows with τ ≈ one table step whose
    // last-10 % mean is exponentially sensitive to the rounded t_start.
    assert!(med_sfr < 1e-5 && p_sfr < 3e-3, "the rebuilt tables do not match the atlas SFRs: {med_sfr} {p_sfr}");
    assert!(p_m < 2e-3, "tabulated SFH mass formed vs FSPS: {p_m}");
}

#[test]
fn photometry_against_fsps_atlases() {
    let config = ModelConfig { igm: IgmModel::Madau1995, ..ModelConfig::default() };
    let model = SpsModel::new(sps_data(), sbipix_filters(), config).unwrap();
    let bands = model.band_names();
    let mut offsets: Vec<Vec<f64>> = vec![Vec::new(); bands.len()];
    let mut offsets_clear: Vec<Vec<f64>> = vec![Vec::new(); bands.len()];
    let mut dmass = Vec::new();
    for name in ["sbipix_atlas_tau_library.csv", "sbipix_atlas_tau_examples.csv"] {
        for r in atlas(name).iter().filter(|r| usable(r)) {
            let (t, sfr) = fsps_table(r);
            let p = GalaxyParams {
                redshift: r.z,
                sfh: SfhSpec::TabulatedCosmic { time_gyr: t, sfr_msun_per_yr: sfr },
                logzsol: r.logzsol,
                av_mag: 1.086 * r.dust2,
                eta: 1.0,
                logu: -2.0,
            };
            let (flux, d) = model.photometry(&p).unwrap();
            let brightest = r.flux.iter().cloned().fold(0.0, f64::max);
            for k in 0..bands.len() {
                // FSPS atlas fluxes lack the (1+z) factor.
                let theirs = r.flux[k] * (1.0 + r.z);
                if r.flux[k] > 1e-4 * brightest {
                    offsets[k].push(-2.5 * (flux[k] / theirs).log10());
                    // the same, for nearly dust-free galaxies (A_V < 0.3)
                    if r.dust2 * 1.086 < 0.3 {
                        offsets_clear[k].push(-2.5 * (flux[k] / theirs).log10());
                    }
                }
            }
            dmass.push(d.log_mstar - r.log_mstar_surviving);
        }
    }
    eprintln!("| band | n | median Δm (sbipix − FSPS) | NMAD | median Δm, A_V < 0.3 | NMAD, A_V < 0.3 |\n|---|---|---|---|---|---|");
    let mut all = Vec::new();
    let mut meds = Vec::new();
    let med_nmad = |v: &mut Vec<f64>| {
        let med = percentile(v, 50.0);
        let mut dev: Vec<f64> = v.iter().map(|x| (x - med).abs()).collect();
        (med, 1.4826 * percentile(&mut dev, 50.0))
    };
    for ((b, v), vc) in bands.iter().zip(offsets.iter_mut()).zip(offsets_clear.iter_mut()) {
        let (med, nmad) = med_nmad(v);
        let (medc, nmadc) = med_nmad(vc);
        eprintln!("| {b} | {} | {med:+.3} | {nmad:.3} | {medc:+.3} | {nmadc:.3} |", v.len());
        meds.push((b.clone(), med, nmad));
        all.extend(v.iter().cloned());
    }
    let med_all = percentile(&mut all, 50.0);
    let med_mass = percentile(&mut dmass, 50.0);
    eprintln!(
        "all bands: median Δm {med_all:+.3}; log M*(living, BC03) − log M*(surviving incl. remnants, FSPS): median {med_mass:+.3} dex"
    );
    // Each band's median offset and scatter are pinned to the documented values
    // (DOCUMENTED_OFFSETS, the table in docs/forward-model.md) within 0.05 mag: the offsets are
    // physics (IMF, isochrones, band averaging), so any change of the forward model that moves a
    // band by more than that — a dust law, an IGM model, a unit, a missing (1+z) — must fail here
    // and be explained in the docs.
    assert_eq!(meds.len(), DOCUMENTED_OFFSETS.len());
    for ((b, med, nmad), (db, dmed, dnmad)) in meds.iter().zip(DOCUMENTED_OFFSETS) {
        assert_eq!(b, db);
        assert!((med - dmed).abs() <= 0.05, "{b}: median Δm {med:+.3}, documented {dmed:+.3} (± 0.05)");
        assert!((nmad - dnmad).abs() <= 0.05, "{b}: NMAD {nmad:.3}, documented {dnmad:.3} (± 0.05)");
    }
    assert!((med_all - 0.13).abs() <= 0.03, "all bands: median Δm {med_all:+.3}, documented +0.13");
    // Remnants are excluded here and included by FSPS: our stellar masses are smaller, by 0.04 dex.
    assert!((med_mass + 0.04).abs() <= 0.02, "log M* − FSPS surviving mass: {med_mass:+.3}, documented −0.04 dex");
}
