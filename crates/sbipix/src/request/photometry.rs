//! `sbipix photometry`, `sbipix.photometry`: the forward model on a table of galaxy parameters.

use crate::inference::sps_model::{FilterChoice, build_sps_model};
use crate::{Error, Result};
use sbipix_sps::{Cosmology, FilterSampling, IgmModel, LinePlacement, ModelConfig, SfhBinning, SfhFamily, SpsModel};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The forward model's settings for a photometry catalogue; defaults: [`ModelConfig::default`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PhotometryRequest {
    /// Star-formation history family of the table.
    pub sfh: SfhFamily,
    /// A filter list file (one curve file per line, relative to the list); None (and no
    /// `filter_files`): the 19 JADES bands.
    pub filters: Option<PathBuf>,
    /// Curve files, one per band, in order (instead of a list file).
    pub filter_files: Vec<PathBuf>,
    pub igm: IgmModel,
    /// DL07 dust emission by energy balance.
    pub dust_emission: bool,
    /// Nebular continuum and lines from young stars.
    pub nebular: bool,
    /// Where the emission lines go: at their exact wavelengths (the default), or in the nearest
    /// wavelength-grid pixel as bagpipes 1.3.6 does (with `max_redshift` 10, bagpipes' grid, and
    /// `filter_sampling` `ModelGrid`: the settings that reproduce bagpipes' photometry,
    /// docs/forward-model.md).
    pub line_placement: LinePlacement,
    /// How the filter curves are integrated: as read (the default) or resampled onto the model's
    /// wavelength grid first, as bagpipes 1.3.6 does (with the two settings above, bagpipes'
    /// photometry).
    pub filter_sampling: FilterSampling,
    /// How the SFH is binned into the SSP ages: exact integrals (the default) or bagpipes'
    /// sampling (with the three settings above, bagpipes' photometry).
    pub sfh_binning: SfhBinning,
    /// Largest redshift the model is set up for.
    pub max_redshift: f64,
    /// Hubble constant, km/s/Mpc.
    pub h0: f64,
    /// Matter density Ω_m (flat ΛCDM).
    pub omega_m: f64,
}

impl Default for PhotometryRequest {
    fn default() -> Self {
        let c = ModelConfig::default();
        Self {
            sfh: SfhFamily::DelayedTau,
            filters: None,
            filter_files: Vec::new(),
            igm: c.igm,
            dust_emission: c.dust_emission,
            nebular: c.nebular,
            line_placement: c.line_placement,
            filter_sampling: c.filter_sampling,
            sfh_binning: c.sfh_binning,
            max_redshift: c.max_redshift,
            h0: c.cosmology.h0,
            omega_m: c.cosmology.omega_m,
        }
    }
}

/// An SFH family by name (`delayed_tau` or `delayed-tau`, `exponential`, `constant`, `burst`).
pub fn parse_sfh_family(s: &str) -> Result<SfhFamily> {
    match s {
        "delayed_tau" | "delayed-tau" => Ok(SfhFamily::DelayedTau),
        "exponential" => Ok(SfhFamily::Exponential),
        "constant" => Ok(SfhFamily::Constant),
        "burst" => Ok(SfhFamily::Burst),
        _ => Err(Error::invalid("sfh", s, "unknown sfh family (delayed_tau, exponential, constant, burst)")),
    }
}

impl PhotometryRequest {
    /// Refuses a cosmology the model cannot have (the redshift range is the model's to check).
    pub fn validate(&self) -> Result<()> {
        self.model_config().map(|_| ())
    }

    /// The forward model's configuration.
    pub fn model_config(&self) -> Result<ModelConfig> {
        let cosmology = Cosmology::new(self.h0, self.omega_m).map_err(|e| match e {
            sbipix_sps::SpsError::InvalidParameter { name, value, reason } => Error::invalid(name, value, reason),
            other => other.into(),
        })?;
        Ok(ModelConfig {
            cosmology,
            igm: self.igm,
            nebular: self.nebular,
            line_placement: self.line_placement,
            filter_sampling: self.filter_sampling,
            sfh_binning: self.sfh_binning,
            dust_emission: self.dust_emission,
            max_redshift: self.max_redshift,
            ..ModelConfig::default()
        })
    }

    /// Reads the filter curves, loads the grids (fetching them on first use) and builds the
    /// forward model.
    pub fn build_model(&self, log: &dyn Fn(&str)) -> Result<SpsModel> {
        let config = self.model_config()?;
        let filters = match (&self.filters, self.filter_files.is_empty()) {
            (Some(list), _) => FilterChoice::List(list.clone()),
            (None, true) => FilterChoice::Jades,
            (None, false) => FilterChoice::Given(
                self.filter_files.iter().map(|p| sbipix_io::filters::read_filter_file(p)).collect::<sbipix_io::Result<Vec<_>>>()?,
            ),
        };
        let store = sbipix_io::DataStore::from_env()?;
        build_sps_model(&store, &filters, config, log)
    }
}
