#![doc = include_str!("../../../README.md")]
//!
//! ## The crate
//!
//! The facade of the sbipix workspace: re-exports the component crates and holds the pipelines
//! that join them.
//!
//! * [`inference`] — model folders, training, integrated photometry, the likelihood and the
//!   refinement of the network's posteriors, posterior-predictive checks;
//! * [`products`] — maps, catalogue fits, photometry catalogues, surveys, synthetic galaxies;
//! * [`validation`] — on simulations, against exact posteriors, against another code;
//! * [`request`] — what the command line and Python ask for: one struct per verb whose `Default`
//!   is the single source of every default, checked at the edge and carried out.

pub mod error;
pub mod inference;
pub mod products;
pub mod request;
pub mod validation;

pub use sbipix_diagnostics as diagnostics;
pub use sbipix_flow as flow;
pub use sbipix_io as io;
pub use sbipix_sim as sim;
pub use sbipix_sps as sps;
pub use sbipix_stats as stats;

pub use error::{Error, Result};
pub use inference::model::{Posterior, builtin_model_dir, default_model_dir};
pub use inference::sps_model::{FilterChoice, build_sps_model};
pub use products::photometry::{ParamTable, photometry_catalog};
pub use sbipix_io::images::ImageSet;
pub use sbipix_io::{check_output, write_dir_atomic};
