//! The one place where a `CoreError` becomes a Python exception.
//!
//! The exception classes are defined in Python (`mailcore/errors.py`) so that
//! users can import, subclass and document them like any other Python class.

use pyo3::import_exception;
use pyo3::PyErr;

use crate::error::CoreError;

import_exception!(mailcore.errors, DecodeError);
import_exception!(mailcore.errors, ParseError);
import_exception!(mailcore.errors, LimitExceeded);

/// Convert a core error into the matching `mailcore.errors` exception.
///
/// Every exception is built as `Class(message, offset, expected)`.
pub fn to_py(err: CoreError) -> PyErr {
    let message = err.to_string();
    let offset = err.offset();
    let expected = err.expected();
    match err {
        CoreError::Decode { .. } => DecodeError::new_err((message, offset, expected)),
        CoreError::Syntax { .. } => ParseError::new_err((message, offset, expected)),
        CoreError::TooLong { .. } => LimitExceeded::new_err((message, offset, expected)),
    }
}
