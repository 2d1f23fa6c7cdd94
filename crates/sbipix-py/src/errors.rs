//! The one mapping from `sbipix::Error` to Python exceptions.
//!
//! ```text
//! ValueError
//! └── sbipix.SbipixError                 every sbipix error (str: the message and its causes)
//!     ├── sbipix.InvalidArgumentError    an argument with a value it cannot take (.name, .value, .reason)
//!     ├── sbipix.ShapeError              arrays whose shapes disagree (.what, .expected, .got)
//!     └── sbipix.FileError               a file or folder that could not be read or written
//!                                        (.path); also an OSError
//! ```
//!
//! A file that exists but whose content cannot be used (a bad column, a corrupt FITS HDU, a
//! model folder of another format) is a plain `SbipixError`: the file system did not fail.

use pyo3::create_exception;
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};
use sbipix::Error;
use std::path::Path;

create_exception!(
    sbipix,
    SbipixError,
    PyValueError,
    "An sbipix error: bad input, a missing or corrupt file, a model that does not fit the data. The message holds the causes too."
);
create_exception!(
    sbipix,
    InvalidArgumentError,
    SbipixError,
    "An argument with a value it cannot take; `name`, `value` and `reason` say which and why."
);
create_exception!(sbipix, ShapeError, SbipixError, "Arrays whose shapes disagree; `what`, `expected` and `got` say how.");

/// `sbipix.FileError(SbipixError, OSError)`: made at import (two bases need `type()`).
static FILE_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn file_error(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    FILE_ERROR
        .get_or_try_init(py, || {
            let bases = PyTuple::new(py, [py.get_type::<SbipixError>().into_any(), py.get_type::<PyOSError>().into_any()])?;
            let dict = PyDict::new(py);
            dict.set_item("__module__", "sbipix")?;
            dict.set_item(
                "__doc__",
                "A file or folder that could not be read or written (missing, not permitted, already there); `path` names it. Also an OSError.",
            )?;
            let t = py.get_type::<PyType>().call1(("FileError", bases, dict))?;
            Ok(t.cast_into::<PyType>()?.unbind())
        })
        .map(|t| t.bind(py))
}

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("SbipixError", py.get_type::<SbipixError>())?;
    m.add("InvalidArgumentError", py.get_type::<InvalidArgumentError>())?;
    m.add("ShapeError", py.get_type::<ShapeError>())?;
    m.add("FileError", file_error(py)?)?;
    Ok(())
}

/// The path of an error the file system raised, if it is one.
fn file_path(e: &Error) -> Option<&Path> {
    use sbipix::io::IoError;
    match e {
        Error::Read { path, .. } | Error::Write { path, .. } => Some(path),
        Error::Io(IoError::Io { path, .. } | IoError::OutputExists { path } | IoError::OutputFolderMissing { path, .. }) => Some(path),
        _ => None,
    }
}

/// The Python exception for `e`, its message the whole cause chain.
pub fn to_py(e: Error) -> PyErr {
    let msg = sbipix::error::full_message(&e);
    Python::attach(|py| {
        let made = || -> PyResult<PyErr> {
            let err = match &e {
                Error::InvalidArgument { name, value, reason } => {
                    let err = InvalidArgumentError::new_err(msg.clone());
                    let v = err.value(py);
                    v.setattr("name", name)?;
                    v.setattr("value", value)?;
                    v.setattr("reason", reason)?;
                    err
                }
                Error::ShapeMismatch { what, expected, got } => {
                    let err = ShapeError::new_err(msg.clone());
                    let v = err.value(py);
                    v.setattr("what", what)?;
                    v.setattr("expected", expected)?;
                    v.setattr("got", got)?;
                    err
                }
                _ => match file_path(&e) {
                    Some(path) => {
                        let err = PyErr::from_type(file_error(py)?.clone(), (msg.clone(),));
                        err.value(py).setattr("path", path.display().to_string())?;
                        err
                    }
                    None => SbipixError::new_err(msg.clone()),
                },
            };
            Ok(err)
        };
        made().unwrap_or_else(|x| x)
    })
}

/// Anything else that can go wrong in the binding (a JSON encoding), as an `SbipixError`.
pub fn other(e: impl std::fmt::Display) -> PyErr {
    SbipixError::new_err(e.to_string())
}

/// [`Error::InvalidArgument`] as its exception.
pub fn invalid(name: &str, value: impl std::fmt::Display, reason: impl Into<String>) -> PyErr {
    to_py(Error::invalid(name, value, reason))
}

/// [`Error::ShapeMismatch`] as its exception.
pub fn shape(what: &str, expected: impl std::fmt::Display, got: impl std::fmt::Display) -> PyErr {
    to_py(Error::shape(what, expected, got))
}
