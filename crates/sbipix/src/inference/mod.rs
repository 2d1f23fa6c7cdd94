//! Inference: model folders and the network posterior ([`model`]), training sets and training
//! ([`training_set`], [`training`]), the forward model a model was trained with ([`sps_model`]),
//! integrated photometry ([`integrated`]), the likelihood ([`likelihood`]) and the refinement of
//! the network's posteriors against it ([`refine`]), posterior-predictive checks ([`ppc`]),
//! out-of-distribution flags ([`ood`]).

pub mod integrated;
mod laplace;
pub mod likelihood;
pub mod model;
pub mod ood;
pub mod photoz;
pub mod ppc;
pub mod refine;
pub mod snr_focus;
pub mod sps_model;
pub mod training;
pub mod training_set;
