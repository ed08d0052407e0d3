//! The one mapping from core error kinds to the exception classes defined in
//! `blit/errors.py`, which subclass both `blit.BlitError` and the matching
//! built-in (`FileNotFoundError`, `PermissionError`, ...).

use blit_core::{Error, ErrorKind};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

/// Returns the name of the `blit.errors` class for a kind.
pub(crate) fn class_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::NotFound => "NotFoundError",
        ErrorKind::PermissionDenied => "PermissionDeniedError",
        ErrorKind::Unauthenticated => "AuthenticationError",
        ErrorKind::InvalidArgument => "InvalidArgumentError",
        ErrorKind::Conflict => "ConflictError",
        ErrorKind::ResourceExhausted => "ResourceExhaustedError",
        ErrorKind::Transfer => "TransferError",
        ErrorKind::Network => "NetworkError",
        ErrorKind::Cancelled => "CancelledError",
        _ => "InternalError",
    }
}

/// Converts a core error into an instance of its `blit.errors` class, with
/// the message, the kind name and the path (or `None`).
pub(crate) fn to_py_err(py: Python<'_>, err: &Error) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let module = py.import("blit.errors")?;
        let class = module.getattr(class_name(err.kind()))?;
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("path", err.path().map(|p| p.as_os_str()))?;
        let instance = class.call((err.message(),), Some(&kwargs))?;
        Ok(PyErr::from_value(instance))
    };
    build().unwrap_or_else(|import_err| {
        PyRuntimeError::new_err(format!(
            "{} (and blit.errors could not be loaded: {import_err})",
            err.message()
        ))
    })
}
