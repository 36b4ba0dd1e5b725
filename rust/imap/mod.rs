//! IMAP4rev1/rev2 byte-level work: framing and the command grammar.

pub mod command;
pub mod fragment;
