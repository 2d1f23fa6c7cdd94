//! The one error type of `sbipix-flow`.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum FlowError {
    /// Arrays of the wrong width or length.
    #[error("{what}: expected {expected}, found {found}")]
    Shape { what: String, expected: String, found: String },

    /// Non-finite values where numbers are needed.
    #[error("{what}: {reason}")]
    BadData { what: String, reason: String },

    /// A model file or directory is unusable.
    #[error("{path}: {reason}")]
    Model { path: String, reason: String },

    /// A setting is impossible.
    #[error("setting `{name}`: {reason}")]
    Config { name: String, reason: String },

    #[error("training: {0}")]
    Candle(#[from] candle_core::Error),
}

pub type Result<T> = std::result::Result<T, FlowError>;

pub(crate) fn shape(what: impl Into<String>, expected: impl ToString, found: impl ToString) -> FlowError {
    FlowError::Shape { what: what.into(), expected: expected.to_string(), found: found.to_string() }
}
