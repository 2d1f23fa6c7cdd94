//! The θ parameterisation: what each parameter of a θ vector means (name, unit, extensive or not)
//! and how a θ vector becomes the forward model's galaxy parameters.

/// Unit of a θ parameter.
pub fn unit_of(name: &str) -> &'static str {
    match name {
        "log_mstar" | "log_mass_formed" => "log10 Msun",
        "log_sfr_100myr" | "log_sfr_10myr" | "log_sfr_inst" => "log10 Msun/yr",
        "mass_weighted_age_gyr" => "Gyr",
        "logzsol" => "log10 Z/Zsun (Zsun = 0.02)",
        "av_mag" => "mag",
        "logu" => "log10 U",
        "eta" => "A_V(young)/A_V",
        "log_tau_gyr" => "log10 Gyr",
        "onset_fraction" => "fraction of the age of the universe",
        n if n.starts_with('t') && n.ends_with("_frac") => "fraction of the age of the universe",
        _ => "",
    }
}

/// Parameter `n` of a θ vector with parameters `names`, else the prior's fixed value of it.
pub fn theta_value(names: &[String], theta: &[f64], prior: &crate::Prior, n: &str) -> Option<f64> {
    names.iter().position(|x| x == n).map(|j| theta[j]).or_else(|| match prior.get(n) {
        Some(crate::ParamPrior::Fixed { value }) => Some(value),
        _ => None,
    })
}

/// The forward-model parameters of a θ vector (posterior medians), for the delayed-τ and
/// dense_basis families; fixed prior parameters (log U, η) from the prior. None if θ lacks the
/// SFH parameters.
pub fn params_from_theta(
    names: &[String],
    theta: &[f64],
    prior: &crate::Prior,
    z: f64,
    cosmo: &sbipix_sps::Cosmology,
) -> Option<sbipix_sps::GalaxyParams> {
    use crate::SfhPrior;
    use sbipix_sps::{DenseBasisTuple, SfhShape, SfhSpec};
    let get = |n: &str| theta_value(names, theta, prior, n);
    let logm = get("log_mass_formed")?;
    let t_univ = cosmo.age_gyr(z);
    let sfh = match prior.sfh {
        SfhPrior::DelayedTau => SfhSpec::Parametric {
            shape: SfhShape::DelayedTau {
                age_gyr: ((1.0 - get("onset_fraction")?) * t_univ).clamp(1e-5, t_univ),
                tau_gyr: 10f64.powf(get("log_tau_gyr")?),
            },
            log_mass_formed: logm,
        },
        SfhPrior::DenseBasis { n_tx, .. } => {
            let tx: Vec<f64> = (1..=n_tx).map(|i| get(&format!("t{}_frac", (100 * i) / (n_tx + 1)))).collect::<Option<Vec<f64>>>()?;
            let mut tx = tx;
            sbipix_stats::sort_f64(&mut tx);
            SfhSpec::DenseBasis(DenseBasisTuple { log_mass_formed: logm, log_sfr: get("log_sfr_inst")?, tx })
        }
    };
    Some(sbipix_sps::GalaxyParams {
        redshift: z,
        sfh,
        logzsol: get("logzsol")?,
        av_mag: get("av_mag")?,
        eta: get("eta").unwrap_or(1.0),
        logu: get("logu").unwrap_or(-2.0),
    })
}

/// Parameters that scale with the amount of stars (log masses and SFRs).
pub fn is_extensive(name: &str) -> bool {
    name.starts_with("log_mstar") || name.starts_with("log_mass_formed") || name.starts_with("log_sfr")
}
