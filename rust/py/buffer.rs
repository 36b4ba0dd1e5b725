//! Bytes-like arguments without needless copies.
//!
//! `bytes` is borrowed in place. `bytearray` and `memoryview` are copied once:
//! the buffer protocol is not part of the stable ABI before CPython 3.11, and
//! borrowing a mutable buffer while the GIL is released would not be sound.

use std::borrow::Cow;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView};

/// Borrow the bytes of a `bytes` object, or copy those of another bytes-like object.
pub fn bytes_of<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, [u8]>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Cow::Borrowed(b.as_bytes()));
    }
    if let Ok(ba) = obj.cast::<PyByteArray>() {
        return Ok(Cow::Owned(ba.to_vec()));
    }
    if obj.cast::<PyMemoryView>().is_ok() {
        let copied = obj.call_method0("tobytes")?;
        let b = copied.cast_into::<PyBytes>()?;
        return Ok(Cow::Owned(b.as_bytes().to_vec()));
    }
    Err(PyTypeError::new_err(format!(
        "a bytes-like object is required, not '{}'",
        obj.get_type().name()?
    )))
}
