//! Posterior-predictive checks: posterior draws pushed back through the forward model.

use super::model::Posterior;
use crate::{Error, Result};
use sbipix_sim::theta::{params_from_theta, theta_value};
use sbipix_sps::{CompiledPhotometry, DelayedTauInverse, Derived, GalaxyParams, SpsModel, Workspace};

/// Photometry of `gp` (µJy into `flux`): from `compiled` (the tables at its redshift) where it
/// covers the galaxy, the full forward model otherwise (parameters outside the tables' ranges).
fn photometry(
    fwd: &SpsModel,
    compiled: Option<&CompiledPhotometry>,
    gp: &GalaxyParams,
    ws: &mut Workspace,
    flux: &mut [f64],
) -> Option<Derived> {
    compiled.and_then(|c| c.photometry_into(fwd, gp, ws, flux).ok()).or_else(|| fwd.photometry_into(gp, ws, flux).ok())
}

/// Model photometry (into `flux`, µJy) of a θ that gives the physical quantities log M*,
/// log SFR₁₀₀ and the mass-weighted age instead of the delayed-τ history's own parameters: the
/// history comes from [`DelayedTauInverse`], and the photometry is scaled to log M*. The specific
/// SFR per *formed* mass needs the surviving fraction M*/M_formed, which only the forward model
/// gives: `guess` (log10 of it; carried from draw to draw of a pixel, whose fractions are alike)
/// is used and updated, and the history is solved again while it moves by more than 0.01 dex.
#[allow(clippy::too_many_arguments)]
fn physical_photometry(
    fwd: &SpsModel,
    compiled: Option<&CompiledPhotometry>,
    inv: &DelayedTauInverse,
    g: &dyn Fn(&str) -> Option<f64>,
    z: f64,
    guess: &mut f64,
    ws: &mut Workspace,
    flux: &mut [f64],
) -> Option<()> {
    use sbipix_sps::{SfhShape, SfhSpec};
    let (lm, ls, mwa) = (g("log_mstar")?, g("log_sfr_100myr")?, g("mass_weighted_age_gyr")?);
    let (logzsol, av_mag, eta, logu) = (g("logzsol")?, g("av_mag")?, g("eta").unwrap_or(1.0), g("logu").unwrap_or(-2.0));
    for _ in 0..4 {
        let (age, tau) = inv.solve(mwa, ls - lm + *guess)?;
        let gp = GalaxyParams {
            redshift: z,
            sfh: SfhSpec::Parametric { shape: SfhShape::DelayedTau { age_gyr: age, tau_gyr: tau }, log_mass_formed: 0.0 },
            logzsol,
            av_mag,
            eta,
            logu,
        };
        let got = photometry(fwd, compiled, &gp, ws, flux)?.log_mstar;
        let moved = (got - *guess).abs();
        *guess = got;
        if moved < 0.01 {
            break;
        }
    }
    let scale = 10f64.powf(lm - *guess);
    flux.iter_mut().for_each(|f| *f *= scale);
    Some(())
}

/// The forward model (bands in the posterior's order) and prior a model folder was trained with,
/// for the posterior-predictive check of the maps' and catalogue fits' `ppc` option (built once
/// per loaded model by [`crate::request::LoadedModel`]).
pub fn ppc_model(
    store: &sbipix_io::DataStore,
    post: &Posterior,
    log: &dyn Fn(&str),
) -> Result<(std::sync::Arc<sbipix_sps::SpsModel>, sbipix_sim::Prior)> {
    let read = |name: &str| -> Result<String> {
        let p = post.dir.join(name);
        crate::error::read_file(&p)
    };
    let prior = sbipix_sim::Prior::from_toml_str(&read("prior.toml")?, &post.dir.join("prior.toml").display().to_string())?;
    let survey = sbipix_sim::Survey::from_toml_str(&read("survey.toml")?, &post.dir.join("survey.toml").display().to_string())?;
    let fwd = crate::inference::training_set::model_for_survey(store, &survey, &post.dir, post.manifest.forward_model.clone(), log)?;
    if fwd.band_names() != post.manifest.bands {
        return Err(Error::file(&post.dir, format!("survey.toml gives bands {:?}, the model {:?}", fwd.band_names(), post.manifest.bands)));
    }
    Ok((std::sync::Arc::new(fwd), prior))
}

/// Posterior draws pushed back through the forward model: per object, the per-band median of the
/// predicted fluxes (µJy, the forward model's band order) of `PPC_DRAWS` of its draws (NaN where no
/// draw could be modelled). `draws` is [objects × nd × parameters]. (The marginal medians combined
/// into one θ are not a model on the posterior's degeneracy ridges — age–dust–metallicity — so
/// they would report misfits that are not there.) The photometry comes from tables compiled at
/// each redshift that objects share (a map's; [`crate::inference::likelihood::compile_shared`],
/// within 0.002 mag of the full model, which takes what the tables do not cover).
pub fn ppc_predict(
    fwd: &SpsModel,
    prior: &sbipix_sim::Prior,
    names: &[String],
    draws: &[f32],
    nd: usize,
    redshift: &[f64],
) -> Vec<Vec<f64>> {
    use rayon::prelude::*;
    const PPC_DRAWS: usize = 16;
    let kd = PPC_DRAWS.min(nd);
    let np = names.len();
    let nb = fwd.n_bands();
    let cosmo = fwd.config().cosmology;
    // θ of the physical quantities (no log_mass_formed): histories found by inversion, one table per redshift
    let physical = matches!(prior.sfh, sbipix_sim::SfhPrior::DelayedTau)
        && !names.iter().any(|n| n == "log_mass_formed")
        && ["log_mstar", "log_sfr_100myr", "mass_weighted_age_gyr"].iter().all(|p| names.iter().any(|n| n == p));
    let inverses: std::collections::HashMap<u64, DelayedTauInverse> = if physical {
        let log_tau = match prior.get("log_tau_gyr") {
            Some(sbipix_sim::ParamPrior::Uniform { min, max }) => (min, max),
            _ => (-2.0, 2.0),
        };
        let mut zs: Vec<f64> = redshift.to_vec();
        sbipix_stats::sort_f64(&mut zs);
        zs.dedup();
        zs.into_par_iter()
            .filter(|z| z.is_finite() && *z >= 0.0)
            .map(|z| (z.to_bits(), DelayedTauInverse::new(cosmo.age_gyr(z), log_tau, sbipix_sim::theta::LOG_SSFR_FLOOR)))
            .collect()
    } else {
        Default::default()
    };
    // a PPC without tables is slower, not wrong: a failed compilation leaves the full model
    let compiled = crate::inference::likelihood::compile_shared(fwd, prior, redshift).unwrap_or_default();
    (0..redshift.len())
        .into_par_iter()
        .map_init(
            || (Workspace::default(), vec![0.0; nb]),
            |(ws, fm), i| {
                let mut per_band: Vec<Vec<f64>> = vec![Vec::with_capacity(kd); nb];
                // physical θ: log10 M*/M_formed, carried from draw to draw
                let mut log_frac = -0.15;
                let tables = compiled.get(&redshift[i].to_bits());
                for k in 0..kd {
                    // draws spread over the sample (they are independent; spacing is just tidy)
                    let d = k * nd / kd;
                    let theta: Vec<f64> = (0..np).map(|j| draws[(i * nd + d) * np + j] as f64).collect();
                    let ok = if physical {
                        let g = |n: &str| theta_value(names, &theta, prior, n);
                        inverses
                            .get(&redshift[i].to_bits())
                            .and_then(|inv| physical_photometry(fwd, tables, inv, &g, redshift[i], &mut log_frac, ws, fm))
                            .is_some()
                    } else {
                        let Some(gp) = params_from_theta(names, &theta, prior, redshift[i], &cosmo) else { continue };
                        photometry(fwd, tables, &gp, ws, fm).is_some()
                    };
                    if ok {
                        for j in 0..nb {
                            per_band[j].push(fm[j]);
                        }
                    }
                }
                per_band.iter_mut().map(|v| if v.is_empty() { f64::NAN } else { sbipix_stats::percentile(v, 0.5) }).collect()
            },
        )
        .collect()
}
