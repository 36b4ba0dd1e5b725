//! The one error type of the core.
//!
//! "Need more data" is never an error here: incremental readers return it as a
//! value. A `CoreError` means the input is wrong, and it always says where
//! (a byte offset into the input given to the call) and what was expected.
//! `py/errors.rs` turns it into the exceptions defined in `mailcore/errors.py`.

use std::fmt;

/// What went wrong with an input, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoreError {
    /// Bytes that are not valid in an encoding (base64, quoted-printable, ...).
    Decode {
        offset: usize,
        expected: &'static str,
    },
    /// Bytes that do not match a protocol grammar (an SMTP path, an IMAP command, ...).
    Syntax {
        offset: usize,
        expected: &'static str,
    },
    /// Input longer than a configured bound.
    TooLong { offset: usize, limit: usize },
}

impl CoreError {
    /// Byte offset into the input at which the problem was found.
    pub fn offset(&self) -> usize {
        match self {
            CoreError::Decode { offset, .. }
            | CoreError::Syntax { offset, .. }
            | CoreError::TooLong { offset, .. } => *offset,
        }
    }

    /// Short description of what the parser expected at `offset`.
    pub fn expected(&self) -> String {
        match self {
            CoreError::Decode { expected, .. } | CoreError::Syntax { expected, .. } => {
                (*expected).to_string()
            }
            CoreError::TooLong { limit, .. } => format!("at most {limit} bytes"),
        }
    }
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreError::Decode { offset, expected } => {
                write!(
                    f,
                    "invalid encoding at offset {offset}: expected {expected}"
                )
            }
            CoreError::Syntax { offset, expected } => {
                write!(f, "syntax error at offset {offset}: expected {expected}")
            }
            CoreError::TooLong { offset, limit } => {
                write!(
                    f,
                    "input too long at offset {offset}: limit is {limit} bytes"
                )
            }
        }
    }
}

impl std::error::Error for CoreError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_offset_and_expectation() {
        let e = CoreError::Decode {
            offset: 7,
            expected: "base64 alphabet",
        };
        assert_eq!(e.offset(), 7);
        assert_eq!(
            e.to_string(),
            "invalid encoding at offset 7: expected base64 alphabet"
        );
        let t = CoreError::TooLong {
            offset: 1001,
            limit: 1000,
        };
        assert_eq!(t.expected(), "at most 1000 bytes");
    }
}
