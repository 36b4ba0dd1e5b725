//! Python bindings of the MIME codecs: base64, quoted-printable, RFC 2047.
//!
//! Inputs above `DETACH_AT` are processed with the GIL released, so several
//! threads can encode or decode at once; smaller ones keep it, as releasing
//! and taking it back costs more than the work.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use super::buffer::bytes_of;
use super::errors::to_py;
use crate::{base64, qp, rfc2047};

const DETACH_AT: usize = 64 * 1024;

/// Run `f` without the GIL when the input is large.
fn maybe_detach<T: Send>(py: Python<'_>, len: usize, f: impl FnOnce() -> T + Send) -> T {
    if len > DETACH_AT {
        py.detach(f)
    } else {
        f()
    }
}

#[pyfunction]
#[pyo3(signature = (data, line_length = Some(76)), text_signature = "(data, line_length=76)")]
fn b64encode<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    line_length: Option<usize>,
) -> PyResult<Bound<'py, PyBytes>> {
    if line_length == Some(0) {
        return Err(PyValueError::new_err(
            "line_length must be positive or None",
        ));
    }
    let src = bytes_of(data)?;
    let src: &[u8] = &src;
    let len = base64::encoded_len(src.len(), line_length);
    // Written in place into the new bytes object: one allocation per call.
    PyBytes::new_with(py, len, |dst| {
        maybe_detach(py, src.len(), || base64::encode_into(src, line_length, dst));
        Ok(())
    })
}

#[pyfunction]
#[pyo3(signature = (data, *, strict = false))]
fn b64decode<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    strict: bool,
) -> PyResult<Bound<'py, PyBytes>> {
    let src = bytes_of(data)?;
    let src: &[u8] = &src;
    if !strict {
        if let Some(len) = base64::canonical_mime_len(src) {
            // Encoder-shaped MIME text: decoded straight into the new bytes
            // object. Anything unusual falls through to the general path.
            let mut ok = false;
            let out = PyBytes::new_with(py, len, |dst| {
                ok = maybe_detach(py, src.len(), || base64::decode_mime_into(src, dst));
                Ok(())
            })?;
            if ok {
                return Ok(out);
            }
        }
    }
    let out = maybe_detach(py, src.len(), || {
        if strict {
            base64::decode_strict(src)
        } else {
            Ok(base64::decode_lenient(src))
        }
    })
    .map_err(to_py)?;
    Ok(PyBytes::new(py, &out))
}

#[pyfunction]
#[pyo3(signature = (data, *, header = false, line_length = 76))]
fn qp_encode<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    header: bool,
    line_length: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    if line_length < qp::MIN_LINE_LENGTH {
        return Err(PyValueError::new_err(format!(
            "line_length must be at least {}",
            qp::MIN_LINE_LENGTH
        )));
    }
    let src = bytes_of(data)?;
    let src: &[u8] = &src;
    let out = maybe_detach(py, src.len(), || qp::encode(src, header, line_length));
    Ok(PyBytes::new(py, &out))
}

#[pyfunction]
#[pyo3(signature = (data, *, header = false))]
fn qp_decode<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    header: bool,
) -> PyResult<Bound<'py, PyBytes>> {
    let src = bytes_of(data)?;
    let src: &[u8] = &src;
    let out = maybe_detach(py, src.len(), || qp::decode(src, header));
    Ok(PyBytes::new(py, &out))
}

#[pyfunction]
fn decode_header(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<String> {
    let owned;
    let src: &[u8] = if let Ok(s) = value.cast::<PyString>() {
        owned = s.to_str()?.as_bytes().to_vec();
        &owned
    } else {
        owned = bytes_of(value)?.into_owned();
        &owned
    };
    let codecs = py.import("codecs")?;
    // Charsets not built in go through Python's codecs; one it does not know
    // (LookupError) leaves the word as it is.
    let mut other = |charset: &str, bytes: &[u8]| -> Option<String> {
        codecs
            .call_method1("decode", (PyBytes::new(py, bytes), charset, "replace"))
            .ok()
            .and_then(|s| s.extract::<String>().ok())
    };
    Ok(rfc2047::decode_header(src, &mut other))
}

#[pyfunction]
#[pyo3(signature = (text, *, charset = "utf-8", max_line = 76))]
fn encode_header(py: Python<'_>, text: &str, charset: &str, max_line: usize) -> PyResult<String> {
    if charset.is_empty()
        || !charset
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(&c))
    {
        return Err(PyValueError::new_err(format!(
            "not a charset name: {charset:?}"
        )));
    }
    if max_line < charset.len() + 20 {
        return Err(PyValueError::new_err(format!(
            "max_line must be at least {} for charset {charset}",
            charset.len() + 20
        )));
    }
    if let Some(builtin) = rfc2047::builtin_encoder(charset) {
        let mut enc = builtin;
        return rfc2047::encode_header(text, charset, max_line, &mut enc)
            .map_err(PyValueError::new_err);
    }
    // Other charsets: Python encodes each character (and raises LookupError
    // or UnicodeEncodeError, which we pass on unchanged).
    let mut py_err: Option<PyErr> = None;
    let mut enc = |c: char, out: &mut Vec<u8>| -> Result<(), String> {
        let encoded = PyString::new(py, c.encode_utf8(&mut [0u8; 4]))
            .call_method1("encode", (charset,))
            .and_then(|b| Ok(b.cast_into::<PyBytes>()?.as_bytes().to_vec()));
        match encoded {
            Ok(b) => {
                out.extend_from_slice(&b);
                Ok(())
            }
            Err(e) => {
                let msg = e.to_string();
                py_err = Some(e);
                Err(msg)
            }
        }
    };
    let result = rfc2047::encode_header(text, charset, max_line, &mut enc);
    match (result, py_err) {
        (_, Some(e)) => Err(e),
        (Ok(s), None) => Ok(s),
        (Err(msg), None) => Err(PyValueError::new_err(msg)),
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(b64encode, m)?)?;
    m.add_function(wrap_pyfunction!(b64decode, m)?)?;
    m.add_function(wrap_pyfunction!(qp_encode, m)?)?;
    m.add_function(wrap_pyfunction!(qp_decode, m)?)?;
    m.add_function(wrap_pyfunction!(decode_header, m)?)?;
    m.add_function(wrap_pyfunction!(encode_header, m)?)?;
    Ok(())
}
