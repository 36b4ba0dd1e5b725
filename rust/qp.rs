//! Quoted-printable (RFC 2045 section 6.7) and the RFC 2047 "Q" form.
//!
//! RFC 2045 section 6.7, the rules the encoder follows:
//!
//! > (1) (General 8bit representation) Any octet, except a CR or LF that is
//! > part of a CRLF line break of the canonical (standard) form of the data
//! > being encoded, may be represented by an "=" followed by a two digit
//! > hexadecimal representation of the octet's value. [...] Uppercase letters
//! > must be used when sending hexadecimal data.
//! >
//! > (2) (Literal representation) Octets with decimal values of 33 through
//! > 60 inclusive, and 62 through 126, inclusive, MAY be represented as the
//! > US-ASCII characters which correspond to those octets.
//! >
//! > (3) (White Space) Octets with values of 9 and 32 MAY be represented as
//! > US-ASCII TAB (HT) and SPACE characters, respectively, but MUST NOT be so
//! > represented at the end of an encoded line.
//! >
//! > (4) (Line Breaks) A line break in a text body, represented as a CRLF
//! > sequence in the text canonical form, must be represented by a (RFC 822)
//! > line break, which is also a CRLF sequence, in the Quoted-Printable
//! > encoding.
//! >
//! > (5) (Soft Line Breaks) The Quoted-Printable encoding REQUIRES that
//! > encoded lines be no more than 76 characters long. If longer lines are
//! > to be encoded with the Quoted-Printable encoding, "soft" line breaks
//! > must be used. An equal sign as the last character on a encoded line
//! > indicates such a non-significant ("soft") line break in the encoded text.
//!
//! A CR or LF that is not part of a CRLF is binary data here: it is encoded
//! as `=0D` or `=0A`, so that it survives any transport and decodes back to
//! itself.
//!
//! The grammar the decoder reads:
//!
//! ```text
//! quoted-printable := qp-line *(CRLF qp-line)
//! qp-line := *(qp-segment transport-padding CRLF)
//!            qp-part transport-padding
//! qp-segment := qp-section *(SPACE / TAB) "="
//! transport-padding := *LWSP-char
//!                      ; Composers MUST NOT generate non-zero length
//!                      ; transport padding, but receivers MUST be able to
//!                      ; handle padding added by message transports.
//! hex-octet := "=" 2(DIGIT / "A" / "B" / "C" / "D" / "E" / "F")
//! ```
//!
//! and its advice for malformed input (section 6.7, note 1): "An "=" followed
//! by a character that is neither a hexadecimal digit (including "abcdef") nor
//! the CR character of a CRLF pair is illegal. [...] A reasonable approach by a
//! robust implementation might be to include the "=" character and the
//! following character in the decoded data without any transformation".
//!
//! RFC 2047 section 4.2 ("Q"): "(2) The 8-bit hexadecimal value 20 (e.g., ISO
//! SPACE) may be represented as "_" (underscore, ASCII 95.)" and "(3) 8-bit
//! values which correspond to printable ASCII characters other than "=", "?",
//! and "_" (underscore), MAY be represented as those characters."

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// What the encoder does with a byte.
const LIT: u8 = 0;
const WS: u8 = 1;
const ENC: u8 = 2;

const BODY_CLASS: [u8; 256] = {
    let mut t = [ENC; 256];
    let mut c = 33;
    while c <= 126 {
        if c != b'=' as usize {
            t[c] = LIT;
        }
        c += 1;
    }
    t[b' ' as usize] = WS;
    t[b'\t' as usize] = WS;
    t
};

const HEADER_CLASS: [u8; 256] = {
    let mut t = BODY_CLASS;
    t[b'?' as usize] = ENC;
    t[b'_' as usize] = ENC;
    t[b'\t' as usize] = ENC;
    // Space is written as "_" (handled before the table is read).
    t[b' ' as usize] = LIT;
    t
};

/// Hex digit value, or 0xFF.
const fn hex_value(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'A'..=b'F' => c - b'A' + 10,
        b'a'..=b'f' => c - b'a' + 10,
        _ => 0xFF,
    }
}

/// Smallest `line_length` the encoder honours: "=XX" plus the soft-break "=".
pub const MIN_LINE_LENGTH: usize = 4;

/// Encode `src` as quoted-printable.
///
/// Body form (`header == false`): CRLF is kept as a hard line break, every
/// encoded line is at most `line_length` characters (counting the "=" of a soft
/// line break, not the CRLF), "=" and non-printable bytes are encoded, and a
/// space or tab is encoded when it would end a line. `line_length` below
/// [`MIN_LINE_LENGTH`] is raised to it.
///
/// Header form (`header == true`, RFC 2047 "Q"): one line, space as "_",
/// "=", "?", "_", tab, CR, LF and non-printable bytes encoded.
pub fn encode(src: &[u8], header: bool, line_length: usize) -> Vec<u8> {
    if header {
        return encode_header(src);
    }
    let line = line_length.max(MIN_LINE_LENGTH);
    // Worst case: every byte as "=XX", plus a soft break per (line - 1) characters.
    let mut out = Vec::with_capacity(src.len() * 3 + (src.len() * 3 / (line - 1) + 1) * 3);
    let mut rest = src;
    loop {
        let (seg, next) = match memchr::memmem::find(rest, b"\r\n") {
            Some(i) => (&rest[..i], Some(&rest[i + 2..])),
            None => (rest, None),
        };
        encode_line(seg, line, &mut out);
        match next {
            Some(n) => {
                out.extend_from_slice(b"\r\n");
                rest = n;
            }
            None => break,
        }
    }
    out
}

/// Encode one line of input (no CRLF in it) with soft breaks.
fn encode_line(seg: &[u8], line: usize, out: &mut Vec<u8>) {
    let mut col = 0;
    let last = seg.len().wrapping_sub(1);
    let mut i = 0;
    while i < seg.len() {
        // Fast path: a run of literal bytes that fits on the current line
        // without reaching its last column is copied in one go.
        let room = (line - 1 - col).min(seg.len() - i);
        let mut run = 0;
        while run < room && BODY_CLASS[usize::from(seg[i + run])] == LIT {
            run += 1;
        }
        if run > 0 && i + run <= last {
            out.extend_from_slice(&seg[i..i + run]);
            col += run;
            i += run;
            continue;
        }
        let b = seg[i];
        let literal = match BODY_CLASS[usize::from(b)] {
            LIT => true,
            WS => i != last,
            _ => false,
        };
        let width = if literal { 1 } else { 3 };
        // The last byte of a line may reach the last column; any other byte
        // must leave room for the "=" of a soft break.
        let limit = if i == last { line } else { line - 1 };
        if col + width > limit {
            out.extend_from_slice(b"=\r\n");
            col = 0;
        }
        if literal {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'=', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
        col += width;
        i += 1;
    }
}

fn encode_header(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len() * 3);
    for &b in src {
        if b == b' ' {
            out.push(b'_');
        } else if HEADER_CLASS[usize::from(b)] == LIT {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'=', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
    out
}

/// Length of `src` once encoded in the header ("Q") form, without encoding it.
pub fn header_encoded_len(src: &[u8]) -> usize {
    src.iter()
        .map(|&b| {
            if b == b' ' || HEADER_CLASS[usize::from(b)] == LIT {
                1
            } else {
                3
            }
        })
        .sum()
}

/// Decode quoted-printable; never fails.
///
/// - "=" followed by two hex digits (either case) is that byte;
/// - "=" followed by optional spaces and tabs, then CRLF, LF or the end of the
///   input, is a soft line break and is removed;
/// - any other "=" is kept as it is, with what follows it (RFC 2045 note 1);
/// - spaces and tabs before a line end (CRLF, LF or the end of the input) were
///   added by transport and are removed (RFC 2045 section 6.7 rule 3);
/// - line ends are kept as they are.
///
/// With `header == true`, "_" is also turned into a space (RFC 2047 "Q").
pub fn decode(src: &[u8], header: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len());
    // Output bytes before `floor` are not transport padding: decoded escapes
    // and everything up to the last line end.
    let mut floor = 0;
    let mut i = 0;
    let n = src.len();
    while i < n {
        let stop = if header {
            memchr::memchr3(b'=', b'\n', b'_', &src[i..])
        } else {
            memchr::memchr2(b'=', b'\n', &src[i..])
        };
        let Some(off) = stop else {
            out.extend_from_slice(&src[i..]);
            break;
        };
        out.extend_from_slice(&src[i..i + off]);
        i += off;
        match src[i] {
            b'\n' => {
                let cr = out.last() == Some(&b'\r') && out.len() > floor;
                if cr {
                    out.pop();
                }
                trim_padding(&mut out, floor);
                if cr {
                    out.push(b'\r');
                }
                out.push(b'\n');
                floor = out.len();
                i += 1;
            }
            b'_' => {
                out.push(b' ');
                floor = out.len();
                i += 1;
            }
            _ => {
                // "=": an escape, a soft break, or malformed.
                let hi = src.get(i + 1).map_or(0xFF, |&c| hex_value(c));
                let lo = src.get(i + 2).map_or(0xFF, |&c| hex_value(c));
                if hi != 0xFF && lo != 0xFF {
                    out.push(hi << 4 | lo);
                    floor = out.len();
                    i += 3;
                    continue;
                }
                let mut j = i + 1;
                while j < n && (src[j] == b' ' || src[j] == b'\t') {
                    j += 1;
                }
                let soft_end = match src.get(j..) {
                    Some([]) => Some(j),
                    Some([b'\n', ..]) => Some(j + 1),
                    Some([b'\r', b'\n', ..]) => Some(j + 2),
                    _ => None,
                };
                match soft_end {
                    Some(end) => {
                        // White space before the "=" is data (qp-segment).
                        floor = out.len();
                        i = end;
                    }
                    None => {
                        out.push(b'=');
                        floor = out.len();
                        i += 1;
                    }
                }
            }
        }
    }
    trim_padding(&mut out, floor);
    out
}

/// Remove spaces and tabs at the end of `out`, but none before `floor`.
fn trim_padding(out: &mut Vec<u8>, floor: usize) {
    while out.len() > floor && matches!(out.last(), Some(b' ' | b'\t')) {
        out.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"hello", b"hello"),
            (b"a=b", b"a=3Db"),
            (b"caf\xc3\xa9", b"caf=C3=A9"),
            (b"a \r\nb\t", b"a=20\r\nb=09"),
            (b"a b", b"a b"),
            (b"a\nb\rc", b"a=0Ab=0Dc"),
            (b"\r\n\r\n", b"\r\n\r\n"),
            (b"x\r", b"x=0D"),
        ];
        for (src, want) in cases {
            assert_eq!(encode(src, false, 76), *want, "{src:?}");
            assert_eq!(decode(want, false), *src, "decode {want:?}");
        }
    }

    #[test]
    fn soft_breaks_keep_lines_within_the_limit() {
        let src = [b'a'; 80];
        let enc = encode(&src, false, 76);
        let mut want = vec![b'a'; 75];
        want.extend_from_slice(b"=\r\naaaaa");
        assert_eq!(enc, want);
        // Exactly 76 characters fit on one line (no soft break needed after the last).
        assert_eq!(encode(&[b'a'; 76], false, 76), vec![b'a'; 76]);
        let mut tricky = vec![b'a'; 74];
        tricky.push(0xFF);
        tricky.push(b'b');
        let enc = encode(&tricky, false, 76);
        for line in enc.split(|&c| c == b'\n') {
            assert!(line.len() <= 77, "{}", line.len());
        }
        assert_eq!(decode(&enc, false), tricky);
    }

    #[test]
    fn header_form() {
        assert_eq!(
            encode(b"a b_c?d=e\t", true, 76),
            b"a_b=5Fc=3Fd=3De=09".to_vec()
        );
        assert_eq!(decode(b"a_b=5Fc", true), b"a b_c".to_vec());
        assert_eq!(header_encoded_len(b"a b_c?d=e\t"), 18);
    }

    #[test]
    fn decode_table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"a=3Db", b"a=b"),
            (b"a=3db", b"a=b"),
            (b"soft=\r\nbreak", b"softbreak"),
            (b"soft=\nbreak", b"softbreak"),
            (b"soft= \t\r\nbreak", b"softbreak"),
            (b"kept =\r\nx", b"kept x"),
            (b"end=", b"end"),
            (b"pad  \r\nnext\t\n", b"pad\r\nnext\n"),
            (b"pad  ", b"pad"),
            (b"kept=20\r\n", b"kept \r\n"),
            (b"bad=ZZ", b"bad=ZZ"),
            (b"bad=\rx", b"bad=\rx"),
            (b"bad=4", b"bad=4"),
            (b"x_y", b"x_y"),
        ];
        for (src, want) in cases {
            assert_eq!(decode(src, false), *want, "{src:?}");
        }
    }
}
