//! The one error type of the facade: a component's error, or a problem with a row, a file or an
//! argument.

/// Errors of the pipelines: a component's error, with context.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Io(#[from] sbipix_io::IoError),
    #[error(transparent)]
    Sps(#[from] sbipix_sps::SpsError),
    #[error(transparent)]
    Sim(#[from] sbipix_sim::SimError),
    #[error(transparent)]
    Flow(#[from] sbipix_flow::FlowError),
    #[error("{file}, row {row} (line {line}){column}: {reason}")]
    Row { file: String, row: usize, line: usize, column: String, reason: String },
    #[error("{file}: {reason}")]
    File { file: String, reason: String },
}

pub type Result<T> = std::result::Result<T, Error>;
