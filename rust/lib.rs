//! mailcore's byte-level core.
//!
//! Everything here is plain Rust that `cargo test --no-default-features` and
//! `cargo fuzz` build without a Python interpreter. The PyO3 bindings live in
//! `py/` alone, behind the `python` feature, so the boundary between the two
//! worlds is one folder wide.

pub mod error;

pub mod base64;
pub mod dot;
pub mod durable;
pub mod framing;
pub mod imap;
pub mod imapwrite;
pub mod mime;
pub mod qp;
pub mod rfc2047;
pub mod smtp;

#[cfg(feature = "python")]
mod py;

pub use error::CoreError;
