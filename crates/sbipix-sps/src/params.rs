//! What one galaxy (or pixel) is made of — [`GalaxyParams`], its star-formation history
//! ([`SfhSpec`]) — and what the model derives from it ([`Derived`]): the inputs and outputs of
//! [`crate::SpsModel`], apart from the model itself.

use crate::dense_basis::DenseBasisTuple;
use crate::sfh::SfhShape;
use serde::{Deserialize, Serialize};

/// How the star-formation history of one galaxy is given.
#[derive(Debug, Clone, PartialEq)]
pub enum SfhSpec {
    /// A parametric shape normalised to 10^`log_mass_formed` M☉.
    Parametric { shape: SfhShape, log_mass_formed: f64 },
    /// An FSPS-style table: SFR (M☉/yr) at cosmic times (Gyr since the Big Bang).
    TabulatedCosmic { time_gyr: Vec<f64>, sfr_msun_per_yr: Vec<f64> },
    /// A dense_basis tuple, realised as dense_basis' atlas generator does (1000 samples, SFR
    /// window 100 Myr × t_univ(z)/t_univ(0.1)).
    DenseBasis(DenseBasisTuple),
}

/// The physical parameters of one galaxy (or pixel).
#[derive(Debug, Clone, PartialEq)]
pub struct GalaxyParams {
    pub redshift: f64,
    pub sfh: SfhSpec,
    /// log10(Z/Z☉) of stars and gas, with the grid's Z☉ (0.02 for BC03).
    pub logzsol: f64,
    /// V-band attenuation of all stars, magnitudes.
    pub av_mag: f64,
    /// Stars younger than t_bc are attenuated by `eta × av_mag` (≥ 1; 1 = no extra dust).
    pub eta: f64,
    /// log10 of the ionisation parameter of the nebular emission.
    pub logu: f64,
}

impl GalaxyParams {
    /// A delayed-τ galaxy with the other parameters at their defaults (solar metallicity, no
    /// dust, log U = −2).
    pub fn delayed_tau(redshift: f64, log_mass_formed: f64, age_gyr: f64, tau_gyr: f64) -> Self {
        Self {
            redshift,
            sfh: SfhSpec::Parametric { shape: SfhShape::DelayedTau { age_gyr, tau_gyr }, log_mass_formed },
            logzsol: 0.0,
            av_mag: 0.0,
            eta: 1.0,
            logu: -2.0,
        }
    }
}

/// Quantities derived from the parameters by the model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Derived {
    /// log10 of the mass formed, M☉.
    pub log_mass_formed: f64,
    /// log10 of the mass in living stars (remnants excluded), M☉.
    pub log_mstar: f64,
    /// log10 of the SFR averaged over the last 10 Myr, M☉/yr (−∞ if none).
    pub log_sfr_10myr: f64,
    /// log10 of the SFR averaged over the last 100 Myr, M☉/yr (−∞ if none).
    pub log_sfr_100myr: f64,
    /// Mass-weighted age of the stars formed, Gyr.
    pub mass_weighted_age_gyr: f64,
    /// Age of the universe at the galaxy's redshift, Gyr.
    pub age_universe_gyr: f64,
    /// Luminosity absorbed by dust and re-emitted in the infrared (energy balance), L☉;
    /// 0 when dust emission is off.
    pub dust_luminosity_lsun: f64,
}

impl Derived {
    /// The derived quantities from a history's summary, the living mass (M☉), the age of the
    /// universe (Gyr) and the absorbed luminosity (L☉).
    pub(crate) fn new(summary: &crate::sfh::SfhSummary, mstar: f64, age_universe_gyr: f64, dust_luminosity_lsun: f64) -> Self {
        Self {
            log_mass_formed: summary.log_mass_formed,
            log_mstar: mstar.log10(),
            log_sfr_10myr: summary.sfr_10myr.log10(),
            log_sfr_100myr: summary.sfr_100myr.log10(),
            mass_weighted_age_gyr: summary.mass_weighted_age_gyr,
            age_universe_gyr,
            dust_luminosity_lsun,
        }
    }
}
