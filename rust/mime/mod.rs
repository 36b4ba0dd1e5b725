//! MIME structure of a raw message for IMAP: part offsets, ENVELOPE,
//! BODYSTRUCTURE/BODY, and BODY[section]<partial> extraction.
//!
//! Why a focused scanner and not a crate: IMAP sections must return the exact
//! original bytes of each part's header and body, so the one thing we need is
//! a tree of byte ranges into the raw message. `mail-parser` (Stalwart) decodes
//! into owned/borrowed values and had CVE-2026-26312 (cyclic structures, OOM);
//! `mailparse` exposes no header/body offsets for nested parts; imap-codec's
//! types model the grammar but do not parse MIME. This scanner works on byte
//! ranges only, never allocates per byte of body, and is bounded: nesting
//! depth `MAX_DEPTH` (100) and `MAX_PARTS` (10000) parts, Dovecot's limits;
//! past them, a part is kept as an opaque leaf. It never panics on any input.
//!
//! Broken real-world MIME is taken as Dovecot takes it: LF-only line ends are
//! line ends, a missing closing boundary ends the multipart at the end of its
//! parent, a multipart without boundary is a leaf, a missing Content-Type is
//! text/plain (message/rfc822 inside multipart/digest).

use std::ops::Range;

mod cache;
mod envelope;
mod header;
mod section;
mod structure;

pub use cache::*;
pub use envelope::*;
pub use header::*;
pub use section::*;
pub use structure::*;

/// Deepest part nesting that is parsed; deeper parts are leaves.
pub const MAX_DEPTH: usize = 100;
/// Most parts parsed in one message; later parts are not split further.
pub const MAX_PARTS: usize = 10_000;

/// Lowercased (type, subtype).
pub type MediaType = (Vec<u8>, Vec<u8>);
/// Parameters as (lowercased name, value).
pub type Params = Vec<(Vec<u8>, Vec<u8>)>;

/// One MIME part: ranges into the raw message.
#[derive(Debug, Clone)]
pub struct Part {
    /// The header block, including the blank line that ends it (if any).
    pub header: Range<usize>,
    /// The body (for multipart, everything after the header).
    pub body: Range<usize>,
    /// Lowercased type and subtype.
    pub ctype: (Vec<u8>, Vec<u8>),
    /// Content-Type parameters, names lowercased, values unquoted.
    pub params: Vec<(Vec<u8>, Vec<u8>)>,
    /// Sub-parts of a multipart.
    pub children: Vec<Part>,
    /// The enclosed message of a message/rfc822 (or message/global) part.
    pub message: Option<Box<Part>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIXED: &[u8] = b"From: A <a@x.org>\r\nSubject: hi\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npre\r\n--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b1\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nbody\r\n--b1--\r\nepi\r\n";

    #[test]
    fn sections() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", MIXED),
            (b"1", b"hello"),
            (b"1.MIME", b"Content-Type: text/plain\r\n\r\n"),
            (b"2.HEADER", b"Subject: inner\r\n\r\n"),
            (b"2.TEXT", b"body"),
            (b"2.1", b"body"),
            (b"HEADER.FIELDS (subject)", b"Subject: hi\r\n\r\n"),
            (b"3", b""),
        ];
        for (spec, want) in cases {
            let s = parse_section(spec).expect("valid spec in table");
            assert_eq!(
                section(MIXED, &s),
                *want,
                "{}",
                String::from_utf8_lossy(spec)
            );
        }
    }

    #[test]
    fn binary_parts() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\nAAE=\r\n--b\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\na=3Db\r\n--b\r\nContent-Transfer-Encoding: x-uue\r\n\r\nz\r\n--b--\r\n";
        assert_eq!(binary(raw, &[1]), Ok(vec![0, 1]));
        assert_eq!(binary(raw, &[2]), Ok(b"a=b".to_vec()));
        assert!(binary(raw, &[3]).is_err());
        assert_eq!(binary(raw, &[4]), Ok(Vec::new()));
        assert!(parse_part_path(b"1.TEXT").is_err());
        assert_eq!(parse_part_path(b"1.2"), Ok(vec![1, 2]));
    }

    #[test]
    fn bad_specs() {
        for spec in [&b"0"[..], b"1.", b"FOO", b"HEADER.FIELDS ()", b"MIME"] {
            assert!(parse_section(spec).is_err());
        }
    }

    #[test]
    fn structure_simple() {
        let raw = b"Subject: x\r\n\r\nab\r\ncd\r\n";
        assert_eq!(
            bodystructure(raw, false),
            b"(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 8 2)".to_vec()
        );
    }

    #[test]
    fn addresses() {
        let a = parse_addresses(b"\"Doe, J\" <j@d.com>, g: x@y.z;, bare@h");
        assert_eq!(a.len(), 5);
        assert_eq!(a[0].0.as_deref(), Some(&b"Doe, J"[..]));
        assert_eq!(a[1].2.as_deref(), Some(&b"g"[..]));
        assert_eq!(a[3], (None, None, None, None));
        assert_eq!(a[4].3.as_deref(), Some(&b"h"[..]));
    }

    #[test]
    fn deep_nesting_bounded() {
        let mut raw = Vec::new();
        for _ in 0..500 {
            raw.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        let out = bodystructure(&raw, true);
        assert!(!out.is_empty());
    }
}
