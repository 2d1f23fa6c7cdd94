//! The one error type of `sbipix-sim`.

use thiserror::Error;

/// Errors of priors, survey models and simulations, naming the file and key at fault.
#[derive(Debug, Error)]
pub enum SimError {
    /// A prior file or value is unusable.
    #[error("prior {file}: `{key}`: {reason}")]
    Prior { file: String, key: String, reason: String },

    /// A survey file or value is unusable.
    #[error("survey {file}: {reason}")]
    Survey { file: String, reason: String },

    /// Data given to learn a survey from is unusable.
    #[error("{file}: {reason}")]
    Data { file: String, reason: String },

    /// The forward model refused a draw.
    #[error("simulation {index} (seed {seed}): {source}")]
    Draw { index: usize, seed: u64, source: sbipix_sps::SpsError },

    #[error(transparent)]
    Sps(#[from] sbipix_sps::SpsError),
}

pub type Result<T> = std::result::Result<T, SimError>;
