//! IMAP4rev1/rev2 byte-level work: framing and the command grammar.

pub mod args;
pub mod command;
pub mod fetch;
pub mod fragment;
pub mod search;
pub mod sequence;
