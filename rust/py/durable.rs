//! Python face of `durable.rs`: the store's group-commit file writes.
//!
//! Every function releases the GIL for the whole batch. Failures come back
//! as `OSError` instances (the errno picks the subclass, as `os.open` would:
//! `FileNotFoundError`, `FileExistsError`, ...), one per item.

use std::io;
use std::path::{Path, PathBuf};

use pyo3::exceptions::{PyBaseException, PyOSError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;

use crate::durable;

fn os_error(err: &io::Error, path: &Path) -> PyErr {
    let text = err.to_string();
    let strerror = text.split(" (os error").next().unwrap_or(&text).to_owned();
    let filename = path.to_string_lossy().into_owned();
    match err.raw_os_error() {
        Some(code) => PyOSError::new_err((code, strerror, filename)),
        None => PyOSError::new_err(format!("{strerror}: {filename}")),
    }
}

/// One entry per item: `None` where its operation succeeded, else its `OSError`
/// naming the path `path_of` picks from the item.
fn errors_by_item<T>(
    py: Python<'_>,
    results: &[io::Result<()>],
    items: &[T],
    path_of: impl Fn(&T) -> &Path,
) -> Vec<Option<Py<PyBaseException>>> {
    results
        .iter()
        .zip(items)
        .map(|(result, item)| {
            result
                .as_ref()
                .err()
                .map(|e| os_error(e, path_of(item)).into_value(py))
        })
        .collect()
}

/// Create, write and fsync each `(path, data)`; one result per item, `None` when durable.
#[pyfunction]
#[pyo3(signature = (items, threads = 8))]
fn write_files_durable(
    py: Python<'_>,
    items: Vec<(PathBuf, PyBackedBytes)>,
    threads: usize,
) -> Vec<Option<Py<PyBaseException>>> {
    let results = py.detach(|| durable::write_many(&items, threads));
    errors_by_item(py, &results, &items, |(path, _)| path)
}

/// Rename each `(from, to)` in order; one result per pair, `None` when renamed.
#[pyfunction]
fn rename_files(
    py: Python<'_>,
    pairs: Vec<(PathBuf, PathBuf)>,
) -> Vec<Option<Py<PyBaseException>>> {
    let results = py.detach(|| durable::rename_many(&pairs));
    errors_by_item(py, &results, &pairs, |(from, _)| from)
}

/// fsync every directory in `dirs`; raises `OSError` for the first that fails.
#[pyfunction]
#[pyo3(signature = (dirs, threads = 8))]
fn sync_dirs(py: Python<'_>, dirs: Vec<PathBuf>, threads: usize) -> PyResult<()> {
    let results = py.detach(|| durable::sync_dirs(&dirs, threads));
    for (result, dir) in results.iter().zip(&dirs) {
        if let Err(e) = result {
            return Err(os_error(e, dir));
        }
    }
    Ok(())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(write_files_durable, m)?)?;
    m.add_function(wrap_pyfunction!(sync_dirs, m)?)?;
    m.add_function(wrap_pyfunction!(rename_files, m)?)?;
    Ok(())
}
