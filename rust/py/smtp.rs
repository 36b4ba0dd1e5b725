//! SMTP envelope grammar for Python: `parse_mail_from`, `parse_rcpt_to`.

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::buffer::bytes_of;
use super::errors::to_py;
use crate::smtp::{self, EnvelopePath};

fn to_tuple<'py>(py: Python<'py>, path: EnvelopePath) -> PyResult<(String, Bound<'py, PyDict>)> {
    let params = PyDict::new(py);
    for (k, v) in path.params {
        params.set_item(k, v)?;
    }
    Ok((path.address, params))
}

/// Parse the argument of MAIL FROM: into (address, params).
#[pyfunction]
#[pyo3(signature = (arg, *, smtputf8_allowed))]
fn parse_mail_from<'py>(
    py: Python<'py>,
    arg: &Bound<'py, PyAny>,
    smtputf8_allowed: bool,
) -> PyResult<(String, Bound<'py, PyDict>)> {
    let data = bytes_of(arg)?;
    let path = smtp::parse_mail_from(&data, smtputf8_allowed).map_err(to_py)?;
    to_tuple(py, path)
}

/// Parse the argument of RCPT TO: into (address, params).
#[pyfunction]
#[pyo3(signature = (arg, *, smtputf8))]
fn parse_rcpt_to<'py>(
    py: Python<'py>,
    arg: &Bound<'py, PyAny>,
    smtputf8: bool,
) -> PyResult<(String, Bound<'py, PyDict>)> {
    let data = bytes_of(arg)?;
    let path = smtp::parse_rcpt_to(&data, smtputf8).map_err(to_py)?;
    to_tuple(py, path)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(parse_mail_from, m)?)?;
    m.add_function(wrap_pyfunction!(parse_rcpt_to, m)?)?;
    m.add("SMTP_EXPECTED_ASCII", smtp::EXPECTED_ASCII)?;
    m.add("SMTP_PARAM_PREFIX", smtp::PARAM_PREFIX)?;
    Ok(())
}
