//! FETCH response writer: `* n FETCH (...)` lines for a batch of messages.
//!
//! RFC 9051: `message-data = nz-number SP "FETCH" SP msg-att`,
//! `msg-att = "(" (msg-att-dynamic / msg-att-static) *(SP ...) ")"`.
//! The caller gives each item's name and value; the value's kind decides how
//! it is written, so cached ENVELOPE/BODYSTRUCTURE bytes pass through as-is.

use crate::mime::write_nstring;

/// How one FETCH item value is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A number (UID, RFC822.SIZE, MODSEQ...).
    Number(u64),
    /// Pre-formatted IMAP data written verbatim (FLAGS list, ENVELOPE, BODYSTRUCTURE).
    Raw(Vec<u8>),
    /// An nstring: quoted when safe, else a literal (NUL written as 0x80).
    Str(Option<Vec<u8>>),
    /// BINARY content: a `~{n}` literal8 if it holds NUL, else a plain literal
    /// or quoted string (RFC 3516).
    Binary(Vec<u8>),
}

/// Append the value of one item.
pub fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::Raw(b) => out.extend_from_slice(b),
        Value::Str(s) => write_nstring(out, s.as_deref()),
        Value::Binary(b) if b.contains(&0) => {
            out.extend_from_slice(format!("~{{{}}}\r\n", b.len()).as_bytes());
            out.extend_from_slice(b);
        }
        Value::Binary(b) => write_nstring(out, Some(b)),
    }
}

/// One message of a batch: sequence number and (item name, value) pairs.
pub type Message = (u32, Vec<(Vec<u8>, Value)>);

/// Write `* seq FETCH (name value ...)\r\n` for each message.
pub fn write_fetch(messages: &[Message]) -> Vec<u8> {
    let mut out = Vec::new();
    for (seq, items) in messages {
        out.extend_from_slice(format!("* {seq} FETCH (").as_bytes());
        for (i, (name, value)) in items.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            out.extend_from_slice(name);
            out.push(b' ');
            write_value(&mut out, value);
        }
        out.extend_from_slice(b")\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: Vec<(Value, &[u8])> = vec![
            (Value::Number(7), b"7"),
            (Value::Raw(b"(\\Seen)".to_vec()), b"(\\Seen)"),
            (Value::Str(None), b"NIL"),
            (Value::Str(Some(b"a\"b".to_vec())), b"\"a\\\"b\""),
            (Value::Str(Some(b"a\r\nb".to_vec())), b"{4}\r\na\r\nb"),
            (Value::Str(Some(b"a\0".to_vec())), b"{2}\r\na\x80"),
            (Value::Binary(b"a\0".to_vec()), b"~{2}\r\na\0"),
        ];
        for (v, want) in cases {
            let mut out = Vec::new();
            write_value(&mut out, &v);
            assert_eq!(out, want);
        }
        let all = write_fetch(&[(1, vec![(b"UID".to_vec(), Value::Number(5))])]);
        assert_eq!(all, b"* 1 FETCH (UID 5)\r\n");
    }
}
