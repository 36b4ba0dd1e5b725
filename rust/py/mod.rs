//! The only PyO3 code in the crate: one file per area, registered here.

use pyo3::prelude::*;

mod buffer;
mod codecs;
mod durable;
mod errors;
mod framing;
mod imap;
mod mime;
mod smtp;

/// `mailcore._core`: the compiled half of mailcore.
#[pymodule]
#[pyo3(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    codecs::register(m)?;
    durable::register(m)?;
    framing::register(m)?;
    mime::register(m)?;
    imap::register(m)?;
    smtp::register(m)?;
    Ok(())
}
