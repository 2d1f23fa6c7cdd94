//! A model whose prior is a mass per kpc² (issue 18, item 2) maps pixels of any size: the same
//! galaxy seen in 0.06″ pixels (four times the area: four times the flux and the error of a
//! 0.03″ pixel, the same S/N) must give exactly the 0.03″ answer with every extensive quantity
//! (mass, SFR) × 4 and every intensive one (age, metallicity, dust, the PPC) unchanged — through
//! the network, the exact posterior and the PPC alike. The model here is the default network with
//! the physical prior put in its folder: the test is of the pipeline's scaling, not the network's
//! training. Without a pixel scale (no WCS, no `pixel_scale_arcsec`) the model's own is assumed, on
//! the log and in the summary.

mod common;

use common::copy_model_files;
use sbipix::request::{LoadedModel, MapRequest};
use sbipix::sim::Prior;
use sbipix::sim::theta::delayed_tau_age_gyr;
use sbipix::sps::{GalaxyParams, SfhShape, SfhSpec, Workspace};

/// Not used by any other test, validation run or training set.
const SEED: u64 = 2_026_120_418;
const SIDE: usize = 3;
const REDSHIFT: f64 = 2.0;

#[test]
fn a_mass_per_kpc2_model_maps_other_pixel_sizes_exactly() {
    let log = |m: &str| eprintln!("{m}");
    // the default model's folder with the physical prior
    let dir = tempfile::tempdir().unwrap();
    let src = sbipix::default_model_dir().unwrap();
    // the main network alone (its companion for sparse band sets is not copied)
    copy_model_files(&src, dir.path(), true);
    std::fs::write(dir.path().join("prior.toml"), sbipix::sim::prior::DELAYED_TAU_PHYSICAL_TOML).unwrap();
    let model = LoadedModel::load(dir.path().to_str().unwrap()).expect("model");
    let (fwd, _) = model.forward_model(&log).expect("forward model");
    let prior = Prior::physical_delayed_tau();
    let bands = fwd.band_names();
    let nb = bands.len();
    let cosmo = fwd.config().cosmology;
    let t_univ = cosmo.age_gyr(REDSHIFT);
    let npix = SIDE * SIDE;
    let (mut flux, mut err) = (vec![0.0; nb * npix], vec![0.0; nb * npix]);
    let sampler = sbipix::sim::Survey::jades().sampler(&bands).unwrap();
    let (mut ws, mut f, mut sig, mut obs) = (Workspace::default(), vec![0.0; nb], vec![0.0; nb], vec![0.0; nb]);
    for p in 0..npix {
        let mut rng = sbipix::sim::simulate::sample_rng(SEED, p as u64);
        let draw = prior.sample(&mut rng, &cosmo);
        let params = GalaxyParams {
            redshift: REDSHIFT,
            sfh: SfhSpec::Parametric {
                shape: SfhShape::DelayedTau {
                    age_gyr: delayed_tau_age_gyr(prior.age_coordinate(), draw.shape[1], t_univ),
                    tau_gyr: 10f64.powf(draw.shape[0]),
                },
                log_mass_formed: 6.8 + 0.1 * p as f64,
            },
            ..draw.params
        };
        fwd.photometry_into(&params, &mut ws, &mut f).unwrap();
        sampler.draw(&mut rng, &f, &mut sig, &mut obs);
        for b in 0..nb {
            flux[b * npix + p] = obs[b];
            err[b * npix + p] = sig[b];
        }
    }
    let image = |k: f64| sbipix::io::ImageSet {
        source: format!("pixels × {k}"),
        bands: bands.clone(),
        ny: SIDE,
        nx: SIDE,
        flux: flux.iter().map(|v| v * k).collect(),
        err: err.iter().map(|v| v * k).collect(),
        wcs: Vec::new(),
        redshift: Some(REDSHIFT),
    };
    let req = |scale: Option<f64>| MapRequest { draws: 200, sys_err: 0.0, pixel_scale_arcsec: scale, ..MapRequest::default() };
    let small = req(Some(0.03)).run_on(&model, image(1.0), &log, &|_, _| {}).expect("0.03″ map").maps;
    let large = req(Some(0.06)).run_on(&model, image(4.0), &log, &|_, _| {}).expect("0.06″ map").maps;
    assert_eq!(small.params, large.params);
    assert!(small.mask.iter().filter(|m| **m > 0.5).count() >= npix - 2, "pixels fitted: {:?}", small.mask);
    let dex = 4f64.log10() as f32;
    for (j, name) in small.params.iter().enumerate() {
        let shift = if sbipix::sim::theta::is_extensive(name) { dex } else { 0.0 };
        for q in 0..3 {
            for p in 0..npix {
                let (a, b) = (small.percentiles[j][q][p], large.percentiles[j][q][p]);
                assert!(a.is_nan() && b.is_nan() || (b - a - shift).abs() < 2e-4, "{name} q{q} pixel {p}: {a} at 0.03″, {b} at 0.06″");
            }
        }
    }
    for p in 0..npix {
        let (a, b) = (small.chi2[p], large.chi2[p]);
        assert!(a.is_nan() && b.is_nan() || (a - b).abs() <= 1e-3 * a.abs().max(1.0), "PPC χ² pixel {p}: {a} vs {b}");
    }
    assert_eq!(small.refined, large.refined);
    let (rs, rl) = (small.summary.log_mstar_resolved, large.summary.log_mstar_resolved);
    assert!((rl[1] - rs[1] - 4f64.log10()).abs() < 1e-3, "resolved mass {rs:?} vs {rl:?}");
    // no pixel scale: the model's own assumed, said in the summary, no surface densities
    let mut said = std::sync::Mutex::new(String::new());
    let note = |m: &str| said.lock().unwrap().push_str(m);
    let none = req(None).run_on(&model, image(1.0), &note, &|_, _| {}).expect("map without a pixel scale").maps;
    assert_eq!(none.percentiles, small.percentiles);
    assert_eq!(none.summary.pixel_scale_assumed_arcsec, Some(0.03));
    assert_eq!((none.summary.pixel_scale_arcsec, none.summary.pixel_area_kpc2), (None, None));
    assert_eq!(small.summary.pixel_scale_assumed_arcsec, None);
    let said = said.get_mut().unwrap();
    assert!(said.contains("no pixel scale") && said.contains("0.03″"), "{said}");
}
