//! The one error type of the facade. A component's error is kept whole as the source; the facade's
//! own variants say what was wrong with which argument, array, file or row.
//!
//! Display texts do not repeat their source: front ends print the whole chain ([`full_message`]),
//! the command line one cause per line.

use std::path::{Path, PathBuf};

/// Any error that can be kept as a source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of the pipelines.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Io(#[from] sbipix_io::IoError),
    #[error(transparent)]
    Sps(#[from] sbipix_sps::SpsError),
    #[error(transparent)]
    Sim(#[from] sbipix_sim::SimError),
    #[error(transparent)]
    Flow(#[from] sbipix_flow::FlowError),

    /// An argument (a command-line option, a Python keyword, a request field) with a value it
    /// cannot take.
    #[error("{name} {value}: {reason}")]
    InvalidArgument { name: String, value: String, reason: String },

    /// Arrays whose shapes disagree.
    #[error("{what}: expected {expected}, got {got}")]
    ShapeMismatch { what: String, expected: String, got: String },

    /// A file or folder that could not be read.
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: BoxError,
    },

    /// A file or folder that could not be written.
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: BoxError,
    },

    /// A file or folder whose content cannot be used as it is (format, version, columns, values
    /// that disagree with each other).
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },

    /// One row of a table.
    #[error("{file}, row {row} (line {line}){column}: {reason}")]
    Row { file: String, row: usize, line: usize, column: String, reason: String },

    /// A request the model or method cannot serve (e.g. likelihood-based posteriors for an SFH
    /// family they are not implemented for).
    #[error("{what}: {reason}")]
    Unsupported { what: String, reason: String },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// [`Error::InvalidArgument`].
    pub fn invalid(name: impl Into<String>, value: impl std::fmt::Display, reason: impl Into<String>) -> Self {
        Error::InvalidArgument { name: name.into(), value: value.to_string(), reason: reason.into() }
    }

    /// [`Error::ShapeMismatch`].
    pub fn shape(what: impl Into<String>, expected: impl std::fmt::Display, got: impl std::fmt::Display) -> Self {
        Error::ShapeMismatch { what: what.into(), expected: expected.to_string(), got: got.to_string() }
    }

    /// [`Error::Read`] of `path`, keeping `source`.
    pub fn read(path: impl AsRef<Path>, source: impl Into<BoxError>) -> Self {
        Error::Read { path: path.as_ref().to_path_buf(), source: source.into() }
    }

    /// [`Error::Write`] of `path`, keeping `source`.
    pub fn write(path: impl AsRef<Path>, source: impl Into<BoxError>) -> Self {
        Error::Write { path: path.as_ref().to_path_buf(), source: source.into() }
    }

    /// [`Error::File`].
    pub fn file(path: impl AsRef<Path>, reason: impl Into<String>) -> Self {
        Error::File { path: path.as_ref().to_path_buf(), reason: reason.into() }
    }

    /// [`Error::Unsupported`].
    pub fn unsupported(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Unsupported { what: what.into(), reason: reason.into() }
    }

    /// True for errors in what the caller asked (arguments, array shapes): the command line exits
    /// with status 2 for these, 1 for every other failure.
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::InvalidArgument { .. } | Error::ShapeMismatch { .. })
    }
}

/// `std::fs::write` with the path in the error.
pub(crate) fn write_file(path: &Path, contents: impl AsRef<[u8]>) -> Result<()> {
    std::fs::write(path, contents).map_err(|e| Error::write(path, e))
}

/// `std::fs::read_to_string` with the path in the error.
pub(crate) fn read_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::read(path, e))
}

/// The error and its causes in one line, joined by ": ", each cause once (a cause whose text the
/// previous message already contains is not repeated).
pub fn full_message(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let t = c.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_message_keeps_every_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let e = Error::read("/x/model.json", io);
        assert!(matches!(e, Error::Read { .. }));
        assert_eq!(e.to_string(), "cannot read /x/model.json");
        assert_eq!(full_message(&e), "cannot read /x/model.json: No such file or directory");
        let e = Error::invalid("draws", 0, "must be at least 1");
        assert!(e.is_usage());
        assert_eq!(full_message(&e), "draws 0: must be at least 1");
        assert!(!Error::file("a.csv", "no rows").is_usage());
    }
}
