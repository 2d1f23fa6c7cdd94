//! The one error type of `sbipix-sps`.

use thiserror::Error;

/// Everything that can go wrong when building or evaluating a forward model.
///
/// Variants carry the values that explain them, so a front end can name the parameter,
/// filter or grid at fault.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum SpsError {
    /// A parameter is NaN/infinite or outside the values the model accepts.
    #[error("parameter `{name}` = {value}: {reason}")]
    InvalidParameter { name: String, value: f64, reason: String },

    /// A parameter lies outside the range covered by a grid.
    #[error("parameter `{name}` = {value} is outside the grid range [{min}, {max}]")]
    GridOutOfRange { name: String, value: f64, min: f64, max: f64 },

    /// The star-formation history starts before the Big Bang.
    #[error(
        "star formation would start {onset_age_gyr} Gyr before observation, but the universe is only {age_universe_gyr:.4} Gyr old at z = {redshift}"
    )]
    OnsetBeforeBigBang { onset_age_gyr: f64, age_universe_gyr: f64, redshift: f64 },

    /// The redshift is beyond the largest redshift the model was set up for.
    #[error("redshift {redshift} is outside the model's range [0, {max_redshift}] (raise `max_redshift` in the model configuration)")]
    RedshiftOutOfRange { redshift: f64, max_redshift: f64 },

    /// A filter curve is unusable.
    #[error("filter `{filter}`: {reason}")]
    InvalidFilter { filter: String, reason: String },

    /// A tabulated star-formation history is unusable.
    #[error("tabulated star-formation history: {0}")]
    InvalidSfhTable(String),

    /// Input arrays of a grid have inconsistent shapes.
    #[error("grid `{grid}`: {reason}")]
    InvalidGrid { grid: String, reason: String },
}

impl SpsError {
    pub(crate) fn invalid(name: &str, value: f64, reason: impl Into<String>) -> Self {
        SpsError::InvalidParameter { name: name.to_string(), value, reason: reason.into() }
    }
}

/// Checks that `value` is finite; returns it.
pub(crate) fn finite(name: &str, value: f64) -> Result<f64, SpsError> {
    if value.is_finite() { Ok(value) } else { Err(SpsError::invalid(name, value, "must be a finite number")) }
}
