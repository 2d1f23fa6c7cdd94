//! The θ parameterisation — the one place that says what each parameter of a θ vector means:
//! its name, unit and whether it scales with the amount of stars ([`Parameter`]); the order of
//! a training set's θ row ([`Prior::theta_layout`]) and the values in it ([`theta_row`]) with the
//! sSFR floor ([`floored_log_sfr`]); the delayed-τ age coordinate ↔ age rules ([`age_from_onset`],
//! [`onset_from_age`], and for either coordinate [`delayed_tau_age_gyr`],
//! [`delayed_tau_coordinate`]); and θ → the forward model's galaxy parameters
//! ([`params_from_theta`]).
//!
//! Every simulation, truth table, likelihood and check builds its θ through these functions, so
//! the training targets, the truths a network is judged against and the histories a check
//! rebuilds cannot drift apart.

use crate::prior::{ParamPrior, Prior, SfhPrior};
use sbipix_sps::{Cosmology, DenseBasisTuple, Derived, GalaxyParams, SfhShape, SfhSpec};

/// sSFR floor applied to the log SFRs of θ (M☉/yr per M☉ formed): histories with no star
/// formation in the window would otherwise give −∞.
pub const LOG_SSFR_FLOOR: f64 = -14.0;

/// The shortest delayed-τ history, Gyr (10 kyr): an onset exactly at observation would form
/// nothing.
pub const MIN_AGE_GYR: f64 = 1e-5;

/// One parameter of a θ vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Parameter {
    /// log10 of the stellar mass (living stars + remnants as the SSP tables count them), M☉.
    LogMstar,
    /// log10 of the mass formed, M☉.
    LogMassFormed,
    /// log10 of the SFR averaged over 100 Myr, M☉/yr (floored, [`LOG_SSFR_FLOOR`]).
    LogSfr100Myr,
    /// log10 of the SFR averaged over 10 Myr, M☉/yr (floored).
    LogSfr10Myr,
    /// Mass-weighted age, Gyr.
    MassWeightedAgeGyr,
    /// log10 Z/Z☉ (Z☉ = 0.02).
    Logzsol,
    /// V-band attenuation of the old stars, mag.
    AvMag,
    /// log10 of the ionisation parameter.
    Logu,
    /// Extra attenuation of young stars: A_V(young)/A_V.
    Eta,
    /// log10 τ of the delayed-τ history, Gyr.
    LogTauGyr,
    /// Onset of star formation as a fraction of the age of the universe.
    OnsetFraction,
    /// log10 of the time since the onset of star formation as a fraction of the age of the
    /// universe (the delayed-τ age coordinate of a prior log-uniform in age; ≤ 0).
    LogAgeFraction,
    /// dense_basis: log10 of the instantaneous SFR, M☉/yr.
    LogSfrInst,
    /// dense_basis: the time by which the given percentage of the mass formed, as a fraction of
    /// the age of the universe (`t25_frac`, `t50_frac`, …).
    TxFrac(u32),
}

impl Parameter {
    /// The derived quantities that head every θ row, in order.
    pub const DERIVED: [Parameter; 5] =
        [Parameter::LogMstar, Parameter::LogMassFormed, Parameter::LogSfr100Myr, Parameter::LogSfr10Myr, Parameter::MassWeightedAgeGyr];

    /// Parameters of the dust, metallicity and nebular model that a prior may vary, in θ order.
    pub const VARIED: [Parameter; 4] = [Parameter::Logzsol, Parameter::AvMag, Parameter::Logu, Parameter::Eta];

    /// The name in files, tables and maps (`log_mstar`, `t50_frac`, …).
    pub fn name(&self) -> String {
        match self {
            Parameter::TxFrac(p) => format!("t{p}_frac"),
            other => other.static_name().to_string(),
        }
    }

    /// The name as a `&'static str`: [`Parameter::name`] for every parameter but the t_x, which
    /// all give their family's `tx_frac` (their names carry the percentile).
    pub fn static_name(&self) -> &'static str {
        match self {
            Parameter::LogMstar => "log_mstar",
            Parameter::LogMassFormed => "log_mass_formed",
            Parameter::LogSfr100Myr => "log_sfr_100myr",
            Parameter::LogSfr10Myr => "log_sfr_10myr",
            Parameter::MassWeightedAgeGyr => "mass_weighted_age_gyr",
            Parameter::Logzsol => "logzsol",
            Parameter::AvMag => "av_mag",
            Parameter::Logu => "logu",
            Parameter::Eta => "eta",
            Parameter::LogTauGyr => "log_tau_gyr",
            Parameter::OnsetFraction => "onset_fraction",
            Parameter::LogAgeFraction => "log_age_fraction",
            Parameter::LogSfrInst => "log_sfr_inst",
            Parameter::TxFrac(_) => "tx_frac",
        }
    }

    /// The parameter of a name; None for names that are not θ parameters.
    pub fn from_name(name: &str) -> Option<Self> {
        const FIXED: [Parameter; 13] = [
            Parameter::LogMstar,
            Parameter::LogMassFormed,
            Parameter::LogSfr100Myr,
            Parameter::LogSfr10Myr,
            Parameter::MassWeightedAgeGyr,
            Parameter::Logzsol,
            Parameter::AvMag,
            Parameter::Logu,
            Parameter::Eta,
            Parameter::LogTauGyr,
            Parameter::OnsetFraction,
            Parameter::LogAgeFraction,
            Parameter::LogSfrInst,
        ];
        if let Some(p) = FIXED.iter().find(|p| p.static_name() == name) {
            return Some(*p);
        }
        let pct = name.strip_prefix('t')?.strip_suffix("_frac")?;
        pct.parse::<u32>().ok().filter(|p| (1..100).contains(p)).map(Parameter::TxFrac)
    }

    /// The unit, as written in FITS BUNIT and table headers.
    pub fn unit(&self) -> &'static str {
        match self {
            Parameter::LogMstar | Parameter::LogMassFormed => "log10 Msun",
            Parameter::LogSfr100Myr | Parameter::LogSfr10Myr | Parameter::LogSfrInst => "log10 Msun/yr",
            Parameter::MassWeightedAgeGyr => "Gyr",
            Parameter::Logzsol => "log10 Z/Zsun (Zsun = 0.02)",
            Parameter::AvMag => "mag",
            Parameter::Logu => "log10 U",
            Parameter::Eta => "A_V(young)/A_V",
            Parameter::LogTauGyr => "log10 Gyr",
            Parameter::OnsetFraction | Parameter::TxFrac(_) => "fraction of the age of the universe",
            Parameter::LogAgeFraction => "log10 fraction of the age of the universe",
        }
    }

    /// True for parameters that scale with the amount of stars (log masses and SFRs): summed over
    /// pixels, shifted by log10 k when photometry is scaled by k.
    pub fn is_extensive(&self) -> bool {
        matches!(
            self,
            Parameter::LogMstar | Parameter::LogMassFormed | Parameter::LogSfr100Myr | Parameter::LogSfr10Myr | Parameter::LogSfrInst
        )
    }
}

/// Unit of a θ parameter by name ("" for names that are not θ parameters).
pub fn unit_of(name: &str) -> &'static str {
    Parameter::from_name(name).map_or("", |p| p.unit())
}

/// Whether the parameter `name` scales with the amount of stars ([`Parameter::is_extensive`]).
pub fn is_extensive(name: &str) -> bool {
    Parameter::from_name(name).is_some_and(|p| p.is_extensive())
}

/// log10 of an SFR (M☉/yr), floored at [`LOG_SSFR_FLOOR`] per M☉ formed.
pub fn floored_log_sfr(log_sfr: f64, log_mass_formed: f64) -> f64 {
    log_sfr.max(log_mass_formed + LOG_SSFR_FLOOR)
}

/// The values of [`Parameter::DERIVED`] for the forward model's derived quantities.
pub fn derived_values(d: &Derived) -> [f64; 5] {
    [
        d.log_mstar,
        d.log_mass_formed,
        floored_log_sfr(d.log_sfr_100myr, d.log_mass_formed),
        floored_log_sfr(d.log_sfr_10myr, d.log_mass_formed),
        d.mass_weighted_age_gyr,
    ]
}

/// Time since the onset of a delayed-τ history (Gyr) for an onset given as a fraction of the age
/// of the universe `t_univ_gyr`, kept within [[`MIN_AGE_GYR`], `t_univ_gyr`].
pub fn age_from_onset(onset_fraction: f64, t_univ_gyr: f64) -> f64 {
    ((1.0 - onset_fraction) * t_univ_gyr).clamp(MIN_AGE_GYR, t_univ_gyr)
}

/// The onset fraction of a delayed-τ history of age `age_gyr` (the inverse of [`age_from_onset`]).
pub fn onset_from_age(age_gyr: f64, t_univ_gyr: f64) -> f64 {
    1.0 - age_gyr / t_univ_gyr
}

/// Time since the onset of a delayed-τ history (Gyr) for the value of its age coordinate
/// (`coordinate`: [`Parameter::OnsetFraction`] or [`Parameter::LogAgeFraction`],
/// [`Prior::age_coordinate`]) when the universe is `t_univ_gyr` old; within
/// [[`MIN_AGE_GYR`], `t_univ_gyr`].
pub fn delayed_tau_age_gyr(coordinate: Parameter, value: f64, t_univ_gyr: f64) -> f64 {
    match coordinate {
        Parameter::LogAgeFraction => (10f64.powf(value) * t_univ_gyr).clamp(MIN_AGE_GYR, t_univ_gyr),
        _ => age_from_onset(value, t_univ_gyr),
    }
}

/// The value of the age coordinate `coordinate` of a delayed-τ history of age `age_gyr` (the
/// inverse of [`delayed_tau_age_gyr`]).
pub fn delayed_tau_coordinate(coordinate: Parameter, age_gyr: f64, t_univ_gyr: f64) -> f64 {
    match coordinate {
        Parameter::LogAgeFraction => (age_gyr / t_univ_gyr).log10(),
        _ => onset_from_age(age_gyr, t_univ_gyr),
    }
}

/// The value of the delayed-τ age coordinate `to` for the value `value` of the coordinate `from`
/// ([`Parameter::OnsetFraction`] or [`Parameter::LogAgeFraction`]). Both are fractions of the age
/// of the universe, so no redshift is needed: 1 − onset = 10^x (an onset at the observation
/// itself maps to x = −12).
pub fn convert_age_coordinate(from: Parameter, to: Parameter, value: f64) -> f64 {
    let fraction = match from {
        Parameter::LogAgeFraction => 10f64.powf(value),
        _ => 1.0 - value,
    };
    match to {
        Parameter::LogAgeFraction => fraction.max(1e-12).log10(),
        _ => 1.0 - fraction,
    }
}

impl Prior {
    /// The parameters θ a network infers, in order: [`Parameter::DERIVED`], then the varied
    /// parameters of [`Parameter::VARIED`] (redshift, which is given, and fixed ones excluded),
    /// then the SFH shape ([`Prior::shape_parameters`]).
    pub fn theta_layout(&self) -> Vec<Parameter> {
        let mut v = Parameter::DERIVED.to_vec();
        v.extend(Parameter::VARIED.iter().filter(|p| self.get(&p.name()).is_some_and(|q| !q.is_fixed())));
        v.extend(self.shape_parameters());
        v
    }

    /// The coordinate a delayed-τ prior gives the age of its history in: the onset as a fraction
    /// of the age of the universe (SBIPIX's, uniform in age) or, when the prior names
    /// `log_age_fraction`, log10 of the age as a fraction of the age of the universe (uniform in
    /// log age). Meaningless for dense_basis.
    pub fn age_coordinate(&self) -> Parameter {
        if self.get("log_age_fraction").is_some() { Parameter::LogAgeFraction } else { Parameter::OnsetFraction }
    }

    /// The SFH-shape parameters carried in θ besides the physical ones.
    pub fn shape_parameters(&self) -> Vec<Parameter> {
        match self.sfh {
            SfhPrior::DelayedTau => vec![Parameter::LogTauGyr, self.age_coordinate()],
            SfhPrior::DenseBasis { n_tx, .. } => {
                let n = n_tx as u32;
                std::iter::once(Parameter::LogSfrInst).chain((1..=n).map(|i| Parameter::TxFrac((100 * i) / (n + 1)))).collect()
            }
        }
    }
}

/// A training set's θ row (columns [`Prior::theta_layout`]) of a galaxy: the forward model's
/// derived quantities `d`, its parameters `p` and the SFH-shape values `shape` (in the order of
/// [`Prior::shape_parameters`]).
pub fn theta_row(layout: &[Parameter], d: &Derived, p: &GalaxyParams, shape: &[f64], out: &mut [f64]) {
    let derived = derived_values(d);
    let mut k_shape = 0;
    for (o, par) in out.iter_mut().zip(layout) {
        *o = match par {
            Parameter::LogMstar => derived[0],
            Parameter::LogMassFormed => derived[1],
            Parameter::LogSfr100Myr => derived[2],
            Parameter::LogSfr10Myr => derived[3],
            Parameter::MassWeightedAgeGyr => derived[4],
            Parameter::Logzsol => p.logzsol,
            Parameter::AvMag => p.av_mag,
            Parameter::Logu => p.logu,
            Parameter::Eta => p.eta,
            Parameter::LogTauGyr | Parameter::OnsetFraction | Parameter::LogAgeFraction | Parameter::LogSfrInst | Parameter::TxFrac(_) => {
                k_shape += 1;
                shape[k_shape - 1]
            }
        };
    }
}

/// Parameter `n` of a θ vector with parameters `names`, else the prior's fixed value of it.
pub fn theta_value(names: &[String], theta: &[f64], prior: &Prior, n: &str) -> Option<f64> {
    names.iter().position(|x| x == n).map(|j| theta[j]).or_else(|| match prior.get(n) {
        Some(ParamPrior::Fixed { value }) => Some(value),
        _ => None,
    })
}

/// The forward-model parameters of a θ vector (posterior medians), for the delayed-τ and
/// dense_basis families; fixed prior parameters (log U, η) from the prior. None if θ lacks the
/// SFH parameters.
pub fn params_from_theta(names: &[String], theta: &[f64], prior: &Prior, z: f64, cosmo: &Cosmology) -> Option<GalaxyParams> {
    let get = |n: &str| theta_value(names, theta, prior, n);
    let logm = get("log_mass_formed")?;
    let t_univ = cosmo.age_gyr(z);
    let sfh = match prior.sfh {
        SfhPrior::DelayedTau => SfhSpec::Parametric {
            shape: SfhShape::DelayedTau {
                age_gyr: delayed_tau_age_gyr(prior.age_coordinate(), get(&prior.age_coordinate().name())?, t_univ),
                tau_gyr: 10f64.powf(get("log_tau_gyr")?),
            },
            log_mass_formed: logm,
        },
        SfhPrior::DenseBasis { .. } => {
            let mut tx: Vec<f64> = prior.shape_parameters()[1..].iter().map(|p| get(&p.name())).collect::<Option<Vec<f64>>>()?;
            sbipix_stats::sort_f64(&mut tx); // draws may cross
            SfhSpec::DenseBasis(DenseBasisTuple { log_mass_formed: logm, log_sfr: get("log_sfr_inst")?, tx })
        }
    };
    Some(GalaxyParams {
        redshift: z,
        sfh,
        logzsol: get("logzsol")?,
        av_mag: get("av_mag")?,
        eta: get("eta").unwrap_or(1.0),
        logu: get("logu").unwrap_or(-2.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_units_and_extensive_flags_round_trip() {
        for name in [
            "log_mstar",
            "log_mass_formed",
            "log_sfr_100myr",
            "log_sfr_10myr",
            "mass_weighted_age_gyr",
            "logzsol",
            "av_mag",
            "logu",
            "eta",
            "log_tau_gyr",
            "onset_fraction",
            "log_sfr_inst",
            "t25_frac",
            "t75_frac",
        ] {
            let p = Parameter::from_name(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(p.name(), name);
            assert!(!p.unit().is_empty());
        }
        assert_eq!(Parameter::from_name("redshift"), None);
        assert_eq!(Parameter::from_name("t0_frac"), None);
        assert_eq!(unit_of("mass_weighted_age_gyr"), "Gyr");
        assert_eq!(unit_of("redshift"), "");
        let ext: Vec<&str> = ["log_mstar", "log_mass_formed", "log_sfr_100myr", "log_sfr_10myr", "log_sfr_inst", "av_mag", "t50_frac"]
            .into_iter()
            .filter(|n| is_extensive(n))
            .collect();
        assert_eq!(ext, ["log_mstar", "log_mass_formed", "log_sfr_100myr", "log_sfr_10myr", "log_sfr_inst"]);
    }

    #[test]
    fn layouts_of_the_two_families() {
        let names = |p: &Prior| p.theta_layout().iter().map(Parameter::name).collect::<Vec<_>>();
        let dt = Prior::sbipix_delayed_tau();
        let want_dt = ["log_mstar", "log_mass_formed", "log_sfr_100myr", "log_sfr_10myr", "mass_weighted_age_gyr"];
        assert_eq!(names(&dt)[..5], want_dt);
        assert_eq!(names(&dt)[names(&dt).len() - 2..], ["log_tau_gyr", "onset_fraction"]);
        let db = Prior::sbipix_dense_basis();
        assert_eq!(names(&db)[names(&db).len() - 4..], ["log_sfr_inst", "t25_frac", "t50_frac", "t75_frac"]);
    }

    #[test]
    fn age_coordinates_convert_through_the_age() {
        let t = 3.2;
        for onset in [0.0, 0.3, 0.9] {
            let x = convert_age_coordinate(Parameter::OnsetFraction, Parameter::LogAgeFraction, onset);
            let age = delayed_tau_age_gyr(Parameter::OnsetFraction, onset, t);
            assert!((delayed_tau_age_gyr(Parameter::LogAgeFraction, x, t) - age).abs() < 1e-12);
            assert!((convert_age_coordinate(Parameter::LogAgeFraction, Parameter::OnsetFraction, x) - onset).abs() < 1e-12);
            assert!((delayed_tau_coordinate(Parameter::LogAgeFraction, age, t) - x).abs() < 1e-12);
        }
        assert_eq!(convert_age_coordinate(Parameter::OnsetFraction, Parameter::LogAgeFraction, 1.0), -12.0);
    }

    #[test]
    fn onset_and_age_are_inverse_and_clamped() {
        let t = 3.3;
        for onset in [0.0, 0.25, 0.9] {
            assert!((onset_from_age(age_from_onset(onset, t), t) - onset).abs() < 1e-15);
        }
        assert_eq!(age_from_onset(1.0, t), MIN_AGE_GYR);
        assert_eq!(age_from_onset(-0.5, t), t);
        // the floor: an SFR of 0 is 10⁻¹⁴ per M☉ formed
        assert_eq!(floored_log_sfr(f64::NEG_INFINITY, 9.0), -5.0);
        assert_eq!(floored_log_sfr(0.3, 9.0), 0.3);
    }
}
