//! Python face of `mime.rs` and `imapwrite.rs`: ENVELOPE, BODYSTRUCTURE,
//! BODY[section] bytes, and the batched FETCH response writer.
//!
//! Every function takes the raw message (bytes-like) and returns ready IMAP
//! bytes. Large messages are scanned with the GIL released; the input is an
//! immutable `bytes` or our own copy, so nothing can change it meanwhile.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt};

use super::buffer::bytes_of;
use super::errors::to_py;
use crate::imapwrite::{self, Value};
use crate::mime;

/// Messages at least this large are scanned with the GIL released.
const DETACH_THRESHOLD: usize = 64 * 1024;

fn run<T: Send>(py: Python<'_>, len: usize, f: impl FnOnce() -> T + Send) -> T {
    if len >= DETACH_THRESHOLD {
        py.detach(f)
    } else {
        f()
    }
}

/// The IMAP ENVELOPE of a raw message, as ready-to-send bytes.
#[pyfunction]
fn mime_envelope<'py>(py: Python<'py>, raw: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let raw = bytes_of(raw)?;
    let out = run(py, raw.len(), || mime::envelope(&raw));
    Ok(PyBytes::new(py, &out))
}

/// BODYSTRUCTURE (or, with `extensible=False`, BODY) of a raw message.
#[pyfunction]
#[pyo3(signature = (raw, *, extensible = true))]
fn mime_bodystructure<'py>(
    py: Python<'py>,
    raw: &Bound<'py, PyAny>,
    extensible: bool,
) -> PyResult<Bound<'py, PyBytes>> {
    let raw = bytes_of(raw)?;
    let out = run(py, raw.len(), || mime::bodystructure(&raw, extensible));
    Ok(PyBytes::new(py, &out))
}

/// Exact bytes of BODY[spec]<partial>; `spec` is the text inside the brackets.
#[pyfunction]
#[pyo3(signature = (raw, spec, partial = None))]
fn mime_section<'py>(
    py: Python<'py>,
    raw: &Bound<'py, PyAny>,
    spec: &Bound<'py, PyAny>,
    partial: Option<(usize, usize)>,
) -> PyResult<Bound<'py, PyBytes>> {
    let raw = bytes_of(raw)?;
    let spec = spec_bytes(spec)?;
    let section = mime::parse_section(&spec).map_err(to_py)?;
    let out = run(py, raw.len(), || mime::section(&raw, &section));
    let out = match partial {
        Some((origin, count)) => mime::partial(&out, origin, count),
        None => &out[..],
    };
    Ok(PyBytes::new(py, out))
}

fn spec_bytes(spec: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    match spec.extract::<String>() {
        Ok(text) => Ok(text.into_bytes()),
        Err(_) => Ok(bytes_of(spec)?.into_owned()),
    }
}

/// Decoded content of `BINARY[part]<origin.count>` (RFC 3516); `part` is
/// e.g. `"1.2"` or `""`. An unknown Content-Transfer-Encoding raises DecodeError.
#[pyfunction]
#[pyo3(signature = (raw, part, partial = None))]
fn mime_binary<'py>(
    py: Python<'py>,
    raw: &Bound<'py, PyAny>,
    part: &Bound<'py, PyAny>,
    partial: Option<(usize, usize)>,
) -> PyResult<Bound<'py, PyBytes>> {
    let raw = bytes_of(raw)?;
    let path = mime::parse_part_path(&spec_bytes(part)?).map_err(to_py)?;
    let out = run(py, raw.len(), || mime::binary(&raw, &path)).map_err(to_py)?;
    let out = match partial {
        Some((origin, count)) => mime::partial(&out, origin, count),
        None => &out[..],
    };
    Ok(PyBytes::new(py, out))
}

/// `BINARY.SIZE[part]`: the length of the decoded content.
#[pyfunction]
fn mime_binary_size(
    py: Python<'_>,
    raw: &Bound<'_, PyAny>,
    part: &Bound<'_, PyAny>,
) -> PyResult<usize> {
    let raw = bytes_of(raw)?;
    let path = mime::parse_part_path(&spec_bytes(part)?).map_err(to_py)?;
    let out = run(py, raw.len(), || mime::binary(&raw, &path)).map_err(to_py)?;
    Ok(out.len())
}

/// The top-level header fields named (or with `exclude=True`, not named) in
/// `names`, plus the blank line: HEADER.FIELDS / HEADER.FIELDS.NOT.
#[pyfunction]
#[pyo3(signature = (raw, names, *, exclude = false))]
fn mime_header_fields<'py>(
    py: Python<'py>,
    raw: &Bound<'py, PyAny>,
    names: Vec<Vec<u8>>,
    exclude: bool,
) -> PyResult<Bound<'py, PyBytes>> {
    let raw = bytes_of(raw)?;
    let (header, _) = mime::split_header(&raw, 0, raw.len());
    let out = mime::header_fields(&raw, header, &names, exclude);
    Ok(PyBytes::new(py, &out))
}

/// The store's cached header fields of `raw[:header_len]`, as JSON (see `mime::cache`).
#[pyfunction]
fn header_cache_json(raw: &Bound<'_, PyAny>, header_len: usize) -> PyResult<String> {
    let raw = bytes_of(raw)?;
    Ok(mime::header_cache_json(&raw[..header_len.min(raw.len())]))
}

/// An IMAP nstring: `NIL`, a quoted string, or a `{n}` literal.
#[pyfunction]
fn imap_string<'py>(py: Python<'py>, value: Option<Vec<u8>>) -> Bound<'py, PyBytes> {
    let mut out = Vec::new();
    mime::write_nstring(&mut out, value.as_deref());
    PyBytes::new(py, &out)
}

fn value_of(name: &[u8], v: &Bound<'_, PyAny>) -> PyResult<Value> {
    if v.is_none() {
        return Ok(Value::Str(None));
    }
    if v.is_instance_of::<PyInt>() {
        return Ok(Value::Number(v.extract()?));
    }
    let b = bytes_of(v)?.into_owned();
    let upper = name.to_ascii_uppercase();
    let raw_items: [&[u8]; 4] = [b"FLAGS", b"ENVELOPE", b"BODYSTRUCTURE", b"BODY"];
    if raw_items.contains(&&upper[..]) || upper.starts_with(b"BINARY.SIZE") {
        Ok(Value::Raw(b))
    } else if upper.starts_with(b"BINARY[") {
        Ok(Value::Binary(b))
    } else {
        Ok(Value::Str(Some(b)))
    }
}

/// One message as given from Python: (seq, [(name, value), ...]).
type PyMessage<'py> = (u32, Vec<(Vec<u8>, Bound<'py, PyAny>)>);

/// Bytes of `* seq FETCH (...)` lines for a batch of messages.
///
/// `messages` is a list of `(seq, [(name, value), ...])`. An `int` value is a
/// number; `None` is NIL; bytes under FLAGS, ENVELOPE, BODYSTRUCTURE and BODY
/// are written verbatim (pre-formatted/cached IMAP data); under `BINARY[...]`
/// as literal8 when they hold NUL; under any other name (INTERNALDATE,
/// BODY[...], RFC822...) as a quoted string or literal.
#[pyfunction]
fn write_fetch<'py>(
    py: Python<'py>,
    messages: Vec<PyMessage<'py>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let mut batch = Vec::with_capacity(messages.len());
    for (seq, items) in messages {
        let mut converted = Vec::with_capacity(items.len());
        for (name, v) in items {
            if name.is_empty() || name.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
                return Err(PyValueError::new_err(
                    "FETCH item name must be non-empty, without CR, LF or NUL",
                ));
            }
            let value = value_of(&name, &v)?;
            converted.push((name, value));
        }
        batch.push((seq, converted));
    }
    let out = imapwrite::write_fetch(&batch);
    Ok(PyBytes::new(py, &out))
}

/// Register this area's functions on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(mime_envelope, m)?)?;
    m.add_function(wrap_pyfunction!(mime_bodystructure, m)?)?;
    m.add_function(wrap_pyfunction!(mime_section, m)?)?;
    m.add_function(wrap_pyfunction!(mime_header_fields, m)?)?;
    m.add_function(wrap_pyfunction!(mime_binary, m)?)?;
    m.add_function(wrap_pyfunction!(mime_binary_size, m)?)?;
    m.add_function(wrap_pyfunction!(header_cache_json, m)?)?;
    m.add_function(wrap_pyfunction!(imap_string, m)?)?;
    m.add_function(wrap_pyfunction!(write_fetch, m)?)?;
    Ok(())
}
