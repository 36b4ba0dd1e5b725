//! Python face of `framing.rs` and `dot.rs`: LineReader, DotReader, dot_stuff, DotStuffer.
//!
//! The readers are mutable pyclasses: PyO3's runtime borrow check turns a
//! second thread using the same reader at the same time into an error instead
//! of a data race. Large feeds to DotReader and dot_stuff run with the GIL
//! released; the input is an immutable `bytes` or our own copy, so nothing can
//! change it meanwhile.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList};

use super::buffer::bytes_of;
use crate::dot;
use crate::framing::{self, Item};

/// Feeds at least this large are decoded with the GIL released; below it the
/// release and re-acquire would cost more than the work.
const DETACH_THRESHOLD: usize = 64 * 1024;

/// The `LineErrorKind` enum: a real `enum.Enum`, made once per interpreter.
static LINE_ERROR_KIND: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn line_error_kind(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    LINE_ERROR_KIND
        .get_or_try_init(py, || {
            let members = vec![("TOO_LONG", 1), ("BARE_LF", 2), ("BARE_CR", 3)];
            let kwargs = PyDict::new(py);
            kwargs.set_item("module", "mailcore._core")?;
            let cls = py
                .import("enum")?
                .getattr("Enum")?
                .call(("LineErrorKind", members), Some(&kwargs))?;
            cls.setattr("__doc__", "Why a LineReader could not return a line.")?;
            Ok(cls.unbind())
        })
        .map(|cls| cls.bind(py))
}

fn kind_value(kind: framing::LineErrorKind) -> u8 {
    match kind {
        framing::LineErrorKind::TooLong => 1,
        framing::LineErrorKind::BareLf => 2,
        framing::LineErrorKind::BareCr => 3,
    }
}

/// A line that was not returned, in place of the line, so a caller can reply.
#[pyclass(frozen, eq, hash, module = "mailcore._core")]
#[derive(PartialEq, Eq, Hash)]
pub struct LineError {
    kind: u8,
    length: usize,
}

#[pymethods]
impl LineError {
    /// Why the line was refused.
    #[getter]
    fn kind<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        line_error_kind(py)?.call1((self.kind,))
    }

    /// Length in bytes of the refused line (without its line end).
    #[getter]
    fn length(&self) -> usize {
        self.length
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let kind = self.kind(py)?;
        Ok(format!(
            "LineError(kind={}, length={})",
            kind.str()?,
            self.length
        ))
    }
}

/// Cut a byte stream into CRLF-ended lines.
#[pyclass(module = "mailcore._core")]
pub struct LineReader {
    inner: framing::LineReader,
}

#[pymethods]
impl LineReader {
    #[new]
    #[pyo3(signature = (max_line, *, allow_bare_lf = false))]
    fn new(max_line: usize, allow_bare_lf: bool) -> Self {
        LineReader {
            inner: framing::LineReader::new(max_line, allow_bare_lf),
        }
    }

    /// The work is done in `__new__`; this states the signature for Python
    /// tools that read `__init__` (the stub declares the constructor there).
    #[pyo3(signature = (max_line, *, allow_bare_lf = false))]
    fn __init__(&self, max_line: usize, allow_bare_lf: bool) {
        let _ = (max_line, allow_bare_lf);
    }

    /// Add ``data`` and return the complete lines, without their line ends.
    #[pyo3(signature = (data, max_lines = None))]
    fn feed<'py>(
        &mut self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        max_lines: Option<usize>,
    ) -> PyResult<Bound<'py, PyList>> {
        let bytes = bytes_of(data)?;
        let list = PyList::empty(py);
        let mut failure: Option<PyErr> = None;
        self.inner.feed(&bytes, max_lines, |item| {
            if failure.is_some() {
                return;
            }
            let pushed = match item {
                Item::Line(line) => list.append(PyBytes::new(py, line)),
                Item::Error { kind, length } => list.append(LineError {
                    kind: kind_value(kind),
                    length,
                }),
            };
            if let Err(e) = pushed {
                failure = Some(e);
            }
        });
        match failure {
            Some(e) => Err(e),
            None => Ok(list),
        }
    }

    /// Remove and return every byte not yet returned as a line.
    fn take_buffered<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.take_buffered())
    }

    /// Number of bytes held that were not yet returned.
    #[getter]
    fn buffered(&self) -> usize {
        self.inner.buffered()
    }
}

/// Decode a dot-stuffed body (SMTP DATA, POP3 multi-line reply) as a stream.
#[pyclass(module = "mailcore._core")]
pub struct DotReader {
    inner: dot::DotReader,
}

#[pymethods]
impl DotReader {
    #[new]
    #[pyo3(signature = (max_size, *, normalize = false))]
    fn new(max_size: usize, normalize: bool) -> Self {
        DotReader {
            inner: dot::DotReader::new(max_size, normalize),
        }
    }

    /// The work is done in `__new__`; see `LineReader.__init__`.
    #[pyo3(signature = (max_size, *, normalize = false))]
    fn __init__(&self, max_size: usize, normalize: bool) {
        let _ = (max_size, normalize);
    }

    /// Add ``data``; return the unstuffed body bytes decoded so far and
    /// whether the end was reached.
    fn feed<'py>(
        &mut self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyBytes>, bool)> {
        let bytes = bytes_of(data)?;
        let input: &[u8] = &bytes;
        let inner = &mut self.inner;
        let room = inner.room();
        let mut decode = move || {
            // The body is never longer than its input, nor than what max_size lets out.
            let mut out = Vec::with_capacity(input.len().min(room));
            let done = inner.feed(input, &mut out);
            (out, done)
        };
        let (out, done) = if input.len() >= DETACH_THRESHOLD {
            py.detach(decode)
        } else {
            decode()
        };
        Ok((PyBytes::new(py, &out), done))
    }

    /// Whether the terminating line has been seen.
    #[getter]
    fn done(&self) -> bool {
        self.inner.done()
    }

    /// Bytes that followed the end of data (pipelined commands).
    #[getter]
    fn rest<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.rest())
    }

    /// Number of body bytes decoded so far (also past ``max_size``).
    #[getter]
    fn size(&self) -> usize {
        self.inner.size()
    }

    /// Whether the body grew past ``max_size``.
    #[getter]
    fn oversize(&self) -> bool {
        self.inner.oversize()
    }

    /// Whether a bare LF or bare CR was seen in the body.
    #[getter]
    fn bare_line_end(&self) -> bool {
        self.inner.bare_line_end()
    }
}

/// Prepare ``data`` for sending as an SMTP DATA body or POP3 multi-line reply.
#[pyfunction]
fn dot_stuff<'py>(py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let bytes = bytes_of(data)?;
    let input: &[u8] = &bytes;
    let out = if input.len() >= DETACH_THRESHOLD {
        py.detach(|| dot::dot_stuff(input))
    } else {
        dot::dot_stuff(input)
    };
    Ok(PyBytes::new(py, &out))
}

/// Streaming form of :func:`dot_stuff`, for bodies sent in chunks.
#[pyclass(module = "mailcore._core")]
pub struct DotStuffer {
    inner: dot::DotStuffer,
}

#[pymethods]
impl DotStuffer {
    #[new]
    fn new() -> Self {
        DotStuffer {
            inner: dot::DotStuffer::new(),
        }
    }

    /// Return the stuffed form of ``data``, given what came before it.
    fn feed<'py>(
        &mut self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = bytes_of(data)?;
        let input: &[u8] = &bytes;
        let inner = &mut self.inner;
        let mut stuff = move || {
            let mut out = Vec::with_capacity(input.len() + input.len() / 32 + 2);
            inner.feed(input, &mut out);
            out
        };
        let out = if input.len() >= DETACH_THRESHOLD {
            py.detach(stuff)
        } else {
            stuff()
        };
        Ok(PyBytes::new(py, &out))
    }

    /// Return the bytes that end the body (a CRLF if needed, then "." CRLF).
    fn finish<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let mut out = Vec::with_capacity(5);
        self.inner.finish(&mut out);
        PyBytes::new(py, &out)
    }
}

/// Add the framing and dot-stuffing exports to `mailcore._core`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("LineErrorKind", line_error_kind(m.py())?)?;
    m.add_class::<LineError>()?;
    m.add_class::<LineReader>()?;
    m.add_class::<DotReader>()?;
    m.add_class::<DotStuffer>()?;
    m.add_function(wrap_pyfunction!(dot_stuff, m)?)?;
    Ok(())
}
