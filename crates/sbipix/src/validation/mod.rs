//! Validation of a trained model: on fresh simulations from its own prior and survey
//! ([`simulated`]), against exact likelihood-based posteriors ([`mod@reference`]), on photometry made
//! by another code ([`mismatch`]), with test pixels like the user's data ([`like`]); the calibration of interval widths
//! ([`calibrate`]); the Markdown page and tables ([`report`]).

pub mod calibrate;
pub mod like;
pub mod mismatch;
pub mod reference;
pub mod report;
pub mod simulated;
