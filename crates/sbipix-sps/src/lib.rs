//! # sbipix-sps — stellar population synthesis for sbipix
//!
//! Turns physical parameters (star-formation history, metallicity, dust, ionisation parameter,
//! redshift) into photon-counting band fluxes in µJy, from BC03-MILES simple stellar
//! populations with Cloudy nebular emission, Calzetti (2000) dust with Draine & Li (2007)
//! emission by energy balance, and Inoue et al. (2014) or Madau (1995) IGM absorption.
//!
//! The grids are passed in explicitly ([`SpsData`]); reading and caching them is done by
//! `sbipix-io`. One module per physical component; the order of the physics is in one function,
//! [`SpsModel::synthesize`].
//!
//! ```no_run
//! # fn demo(data: &sbipix_sps::SpsData, filters: Vec<sbipix_sps::Filter>) -> Result<(), sbipix_sps::SpsError> {
//! use sbipix_sps::{GalaxyParams, ModelConfig, SpsModel};
//! let model = SpsModel::new(data, filters, ModelConfig::default())?;
//! let params = GalaxyParams::delayed_tau(2.0, 10.0, 1.5, 0.5);
//! let (flux_ujy, derived) = model.photometry(&params)?;
//! println!("log M* = {:.2}, F444W = {:.3} µJy", derived.log_mstar, flux_ujy[11]);
//! # Ok(()) }
//! ```

pub mod absorption;
pub mod compiled;
pub mod constants;
pub mod cosmology;
pub mod dense_basis;
pub mod dust;
pub mod error;
pub mod filters;
pub mod grids;
pub mod igm;
mod lines;
pub mod model;
mod model_tables;
pub mod params;
pub mod sampling;
pub mod sfh;
pub mod sfh_inverse;

pub use compiled::{CompileRange, CompiledPhotometry};
pub use cosmology::Cosmology;
pub use dense_basis::{DenseBasisTuple, dense_basis_calctimes};
pub use dust::Dl07Params;
pub use error::SpsError;
pub use filters::{Filter, band_name_from_file_name};
pub use grids::{Dl07Grid, InoueLine, NebularGrid, SpsData, SspLibrary};
pub use igm::IgmModel;
pub use model::{Derived, FilterSampling, GalaxyParams, LinePlacement, ModelConfig, SfhBinning, SfhSpec, SpsModel, Workspace};
pub use sfh::{Sfh, SfhFamily, SfhShape, SfhSummary};
pub use sfh_inverse::DelayedTauInverse;
