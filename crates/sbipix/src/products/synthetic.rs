//! Synthetic galaxies with known truth: a smooth disc with radial gradients in mass, age,
//! metallicity and dust, plus a young star-forming clump, observed with a survey's noise.

use crate::{Error, Result};
use sbipix_io::ImageSet;
use sbipix_io::arrays::CardValue;
use sbipix_sim::Survey;
use sbipix_sim::theta::{Parameter, age_from_onset, derived_values};
use sbipix_sps::{GalaxyParams, SfhShape, SfhSpec, SpsModel, Workspace};

/// A synthetic galaxy: its images and, per pixel, the true parameters.
pub struct SyntheticGalaxy {
    pub images: ImageSet,
    pub redshift: f64,
    /// Names of the true parameters (the model's θ names where defined).
    pub truth_names: Vec<String>,
    /// `[param][y][x]`, NaN outside the galaxy.
    pub truth: Vec<Vec<f64>>,
}

/// Layout of the built-in demo galaxy.
#[derive(Debug, Clone)]
pub struct GalaxySpec {
    pub size: usize,
    pub redshift: f64,
    /// log10 M formed in the central pixel.
    pub log_mass_centre: f64,
    /// Effective radius in pixels.
    pub r_eff_pix: f64,
    pub axis_ratio: f64,
    pub seed: u64,
    /// A_V at the centre (falls to 0.1 mag at 3 r_eff).
    pub av_centre: f64,
    /// Whether the young clump is there.
    pub clump: bool,
}

impl Default for GalaxySpec {
    fn default() -> Self {
        Self { size: 64, redshift: 1.8, log_mass_centre: 8.0, r_eff_pix: 7.0, axis_ratio: 0.7, seed: 1, av_centre: 1.5, clump: true }
    }
}

/// Builds the galaxy: per pixel at radius r (in units of r_eff, elliptical), log M formed falls as
/// 0.9 dex per r_eff from the centre; star formation started early in the centre (onset 5 % of
/// the age of the universe, τ = 0.5 Gyr) and late outside (onset 50 %, τ = 3 Gyr); metallicity
/// falls from +0.2 to −0.8; A_V falls from `av_centre` (1.5 in the demo) to 0.1 mag. A clump 1.6 r_eff from the centre (if `clump`) is a
/// 50 Myr-old starburst. Pixels are kept out to 3.5 r_eff.
pub fn build(model: &SpsModel, survey: &Survey, spec: &GalaxySpec) -> Result<SyntheticGalaxy> {
    let n = spec.size;
    let z = spec.redshift;
    let t_univ = model.config().cosmology.age_gyr(z);
    let (cx, cy) = (n as f64 / 2.0 - 0.5, n as f64 / 2.0 - 0.5);
    let (clx, cly) = (cx + 1.6 * spec.r_eff_pix * 0.8, cy + 1.6 * spec.r_eff_pix * 0.6);
    let bands = model.band_names();
    let nb = bands.len();
    // the truth maps: the derived quantities, then metallicity and dust
    let names: Vec<String> = Parameter::DERIVED.iter().chain(&[Parameter::Logzsol, Parameter::AvMag]).map(Parameter::name).collect();
    let mut truth = vec![vec![f64::NAN; n * n]; names.len()];
    let mut flux = vec![0.0; nb * n * n];
    let mut err = vec![0.0; nb * n * n];
    let sampler = survey.sampler(&bands)?;
    let mut ws = Workspace::default();
    let mut f = vec![0.0; nb];
    let (mut sig, mut obs) = (vec![0.0; nb], vec![0.0; nb]);
    for y in 0..n {
        for x in 0..n {
            let p = y * n + x;
            let (dx, dy) = (x as f64 - cx, y as f64 - cy);
            let r = ((dx * dx + (dy / spec.axis_ratio).powi(2)).sqrt()) / spec.r_eff_pix;
            let dcl = ((x as f64 - clx).powi(2) + (y as f64 - cly).powi(2)).sqrt() / 1.5;
            let in_clump = spec.clump && dcl < 1.5;
            let mut rng = sbipix_sim::simulate::sample_rng(spec.seed, p as u64);
            if r > 3.5 && !in_clump {
                // sky: noise only
                let zero = vec![0.0; nb];
                sampler.draw(&mut rng, &zero, &mut sig, &mut obs);
                for b in 0..nb {
                    flux[b * n * n + p] = obs[b];
                    err[b * n * n + p] = sig[b];
                }
                continue;
            }
            let w = (r / 3.0).min(1.0);
            let (log_m, onset, tau, lz, av) = if in_clump {
                (spec.log_mass_centre - 1.4 - 0.3 * dcl, 1.0 - 0.05 / t_univ, 0.05, -0.6, 0.4)
            } else {
                (spec.log_mass_centre - 0.9 * r, 0.05 + 0.45 * w, 0.5 + 2.5 * w, 0.2 - 1.0 * w, spec.av_centre + (0.1 - spec.av_centre) * w)
            };
            let params = GalaxyParams {
                redshift: z,
                sfh: SfhSpec::Parametric {
                    shape: SfhShape::DelayedTau { age_gyr: age_from_onset(onset, t_univ), tau_gyr: tau },
                    log_mass_formed: log_m,
                },
                logzsol: lz,
                av_mag: av,
                eta: 1.0,
                logu: -2.0,
            };
            let d = model.photometry_into(&params, &mut ws, &mut f).map_err(Error::Sps)?;
            sampler.draw(&mut rng, &f, &mut sig, &mut obs);
            for b in 0..nb {
                flux[b * n * n + p] = obs[b];
                err[b * n * n + p] = sig[b];
            }
            for (k, v) in derived_values(&d).iter().chain(&[lz, av]).enumerate() {
                truth[k][p] = *v;
            }
        }
    }
    // A TAN WCS with 0.03″ pixels (an arbitrary position in GOODS-S).
    let wcs = vec![
        ("CTYPE1".into(), CardValue::Text("RA---TAN".into())),
        ("CTYPE2".into(), CardValue::Text("DEC--TAN".into())),
        ("CRVAL1".into(), CardValue::Num(53.16)),
        ("CRVAL2".into(), CardValue::Num(-27.78)),
        ("CRPIX1".into(), CardValue::Num(n as f64 / 2.0)),
        ("CRPIX2".into(), CardValue::Num(n as f64 / 2.0)),
        ("CD1_1".into(), CardValue::Num(-0.03 / 3600.0)),
        ("CD1_2".into(), CardValue::Num(0.0)),
        ("CD2_1".into(), CardValue::Num(0.0)),
        ("CD2_2".into(), CardValue::Num(0.03 / 3600.0)),
        ("CUNIT1".into(), CardValue::Text("deg".into())),
        ("CUNIT2".into(), CardValue::Text("deg".into())),
        ("RADESYS".into(), CardValue::Text("ICRS".into())),
    ];
    Ok(SyntheticGalaxy {
        images: ImageSet { source: "synthetic demo galaxy".into(), bands, ny: n, nx: n, flux, err, wcs, redshift: Some(z) },
        redshift: z,
        truth_names: names,
        truth,
    })
}
