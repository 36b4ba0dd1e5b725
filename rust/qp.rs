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
    // Worst case: every byte as "=XX", plus soft breaks. A line is only
    // broken when the next form (at most 3 characters) does not fit in
    // line - 1 columns, so each holds at least line - 3 characters (and at
    // least one byte). 16 bytes of slack for the fixed-size writes below.
    let breaks = if line > 6 {
        src.len() * 3 / (line - 3)
    } else {
        src.len()
    };
    let cap = src.len() * 3 + breaks * 3 + 16;
    let mut out = vec![0u8; cap];
    let mut o = 0;
    let mut rest = src;
    loop {
        let (seg, next) = match find_crlf(rest) {
            Some(i) => (&rest[..i], Some(&rest[i + 2..])),
            None => (rest, None),
        };
        o = encode_line(seg, line, &mut out, o);
        match next {
            Some(n) => {
                out[o..o + 2].copy_from_slice(b"\r\n");
                o += 2;
                rest = n;
            }
            None => break,
        }
    }
    out.truncate(o);
    out
}

/// Offset of the first CRLF in `s`. (A plain memchr: `memmem::find` sets up
/// a searcher on every call, which costs more than a short line.)
fn find_crlf(s: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(k) = memchr::memchr(b'\r', &s[from..]) {
        let at = from + k;
        if s.get(at + 1) == Some(&b'\n') {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Each byte's encoded form, padded to 4 bytes so that it is written with
/// one store, and its width in the last byte: literal bytes, space and tab
/// take 1, the rest "=XX" 3. Written with no branch on the byte, since for
/// binary data that branch is unpredictable; the padding is overwritten by
/// what follows.
const FORMS: [[u8; 4]; 256] = {
    let mut t = [[0u8; 4]; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = if BODY_CLASS[b] == ENC {
            [b'=', HEX[b >> 4], HEX[b & 15], 3]
        } else {
            [b as u8, 0, 0, 1]
        };
        b += 1;
    }
    t
};

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Non-zero when a byte of `v` is zero (the lowest set bit marks the first).
const fn has_zero(v: u64) -> u64 {
    v.wrapping_sub(LO) & !v & HI
}

/// Whether all 8 bytes are written as themselves in the middle of a line
/// (32..=126 but "=").
const fn all_literal(x: u64) -> bool {
    x & HI == 0
        && x.wrapping_sub(LO * 0x20) & !x & HI == 0
        && has_zero(x ^ (LO * 0x3D)) == 0
        && has_zero(x ^ (LO * 0x7F)) == 0
}

fn load8(src: &[u8], i: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&src[i..i + 8]);
    u64::from_le_bytes(a)
}

/// Encode one line of input (no CRLF in it) with soft breaks into `out` at `o`.
fn encode_line(seg: &[u8], line: usize, out: &mut [u8], mut o: usize) -> usize {
    let Some((&last, body)) = seg.split_last() else {
        return o;
    };
    // Every byte but the last must leave room for the "=" of a soft break.
    let soft = line - 1;
    let mut col = 0;
    let mut i = 0;
    while i < body.len() {
        if i + 8 <= body.len() && col + 8 <= soft && all_literal(load8(body, i)) {
            out[o..o + 8].copy_from_slice(&body[i..i + 8]);
            o += 8;
            col += 8;
            i += 8;
            continue;
        }
        if i + 4 <= body.len() {
            // Four bytes at a time when they fit on the line: their four
            // table look-ups do not wait on each other, only one add
            // moves the output position.
            let f0 = FORMS[usize::from(body[i])];
            let f1 = FORMS[usize::from(body[i + 1])];
            let f2 = FORMS[usize::from(body[i + 2])];
            let f3 = FORMS[usize::from(body[i + 3])];
            // Widths are 1 or 3; the mask lets the compiler see that every
            // write stays inside the 16-byte window (no bounds checks).
            let (w0, w1, w2) = (
                usize::from(f0[3] & 3),
                usize::from(f1[3] & 3),
                usize::from(f2[3] & 3),
            );
            let total = w0 + w1 + w2 + usize::from(f3[3] & 3);
            if col + total <= soft {
                let (a, b, c) = (w0, w0 + w1, w0 + w1 + w2);
                let window = &mut out[o..o + 16];
                window[..4].copy_from_slice(&f0);
                window[a..a + 4].copy_from_slice(&f1);
                window[b..b + 4].copy_from_slice(&f2);
                window[c..c + 4].copy_from_slice(&f3);
                o += total;
                col += total;
                i += 4;
                continue;
            }
        }
        let form = FORMS[usize::from(body[i])];
        let width = usize::from(form[3]);
        if col + width > soft {
            out[o..o + 3].copy_from_slice(b"=\r\n");
            o += 3;
            col = 0;
        }
        out[o..o + 4].copy_from_slice(&form);
        o += width;
        col += width;
        i += 1;
    }
    // Rule 3: a space or tab ending the line is encoded.
    let form = match last {
        b' ' | b'\t' => [
            b'=',
            HEX[usize::from(last >> 4)],
            HEX[usize::from(last & 15)],
            3,
        ],
        _ => FORMS[usize::from(last)],
    };
    let width = usize::from(form[3]);
    if col + width > line {
        out[o..o + 3].copy_from_slice(b"=\r\n");
        o += 3;
    }
    out[o..o + 4].copy_from_slice(&form);
    o + width
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

/// Hex digit values, 0xFF for other bytes.
const HEX_VALUE: [u8; 256] = {
    let mut t = [0xFFu8; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = hex_value(c as u8);
        c += 1;
    }
    t
};

/// Decode quoted-printable; never fails.
///
/// - "=" followed by two hex digits (either case) is that byte;
/// - "=" followed by optional spaces and tabs, then CRLF, LF or the end of the
///   input, is a soft line break and is removed (white space before the "="
///   is data);
/// - any other "=" is kept as it is, with what follows it (RFC 2045 note 1);
/// - spaces and tabs before a line end (CRLF, LF or the end of the input) were
///   added by transport and are removed (RFC 2045 section 6.7 rule 3);
/// - line ends are kept as they are.
///
/// With `header == true`, "_" is also turned into a space (RFC 2047 "Q").
pub fn decode(src: &[u8], header: bool) -> Vec<u8> {
    if header {
        decode_form::<true>(src)
    } else {
        decode_form::<false>(src)
    }
}

/// [`decode`], compiled once per form so the body form's scan does not look
/// for "_".
fn decode_form<const HEADER: bool>(src: &[u8]) -> Vec<u8> {
    let header = HEADER;
    let n = src.len();
    // The output is never longer than the input; 8 bytes of slack for the
    // word-sized copies.
    let mut out = vec![0u8; n + 8];
    let mut o = 0;
    // Output bytes before `floor` are not transport padding: decoded escapes
    // and everything up to the last line end.
    let mut floor = 0;
    let mut i = 0;
    while i < n {
        if i + 8 <= n {
            // Copy up to the next "=", LF (or "_"), 8 bytes at a time, and
            // decode a valid escape right here: the common cases take no
            // trip through the general code below.
            let x = load8(src, i);
            let mut m =
                has_zero(x ^ (LO * u64::from(b'='))) | has_zero(x ^ (LO * u64::from(b'\n')));
            if HEADER {
                m |= has_zero(x ^ (LO * u64::from(b'_')));
            }
            out[o..o + 8].copy_from_slice(&x.to_le_bytes());
            if m == 0 {
                o += 8;
                i += 8;
                continue;
            }
            let k = (m.trailing_zeros() / 8) as usize;
            o += k;
            i += k;
            if src[i] == b'=' && i + 2 < n {
                let hi = HEX_VALUE[usize::from(src[i + 1])];
                let lo = HEX_VALUE[usize::from(src[i + 2])];
                if hi | lo != 0xFF {
                    out[o] = hi << 4 | lo;
                    o += 1;
                    i += 3;
                    // Escapes come in runs (UTF-8 sequences, binary data).
                    while i + 2 < n && src[i] == b'=' {
                        let hi = HEX_VALUE[usize::from(src[i + 1])];
                        let lo = HEX_VALUE[usize::from(src[i + 2])];
                        if hi | lo == 0xFF {
                            break;
                        }
                        out[o] = hi << 4 | lo;
                        o += 1;
                        i += 3;
                    }
                    floor = o;
                    continue;
                }
            }
        } else {
            // Fewer than 8 bytes left.
            while i < n && !matches!(src[i], b'=' | b'\n') && !(header && src[i] == b'_') {
                out[o] = src[i];
                o += 1;
                i += 1;
            }
            if i >= n {
                break;
            }
        }
        match src[i] {
            b'\n' => {
                let cr = o > floor && out[o - 1] == b'\r';
                if cr {
                    o -= 1;
                }
                o = trim_padding(&out, o, floor);
                if cr {
                    out[o] = b'\r';
                    o += 1;
                }
                out[o] = b'\n';
                o += 1;
                floor = o;
                i += 1;
            }
            b'_' => {
                out[o] = b' ';
                o += 1;
                floor = o;
                i += 1;
            }
            _ => {
                // "=": escapes (often several in a row in binary data), a
                // soft break, or malformed.
                while i + 2 < n && src[i] == b'=' {
                    let hi = HEX_VALUE[usize::from(src[i + 1])];
                    let lo = HEX_VALUE[usize::from(src[i + 2])];
                    if hi | lo == 0xFF {
                        break;
                    }
                    out[o] = hi << 4 | lo;
                    o += 1;
                    floor = o;
                    i += 3;
                }
                if i >= n || src[i] != b'=' {
                    continue;
                }
                let hi = src.get(i + 1).map_or(0xFF, |&c| HEX_VALUE[usize::from(c)]);
                let lo = src.get(i + 2).map_or(0xFF, |&c| HEX_VALUE[usize::from(c)]);
                if hi != 0xFF && lo != 0xFF {
                    out[o] = hi << 4 | lo;
                    o += 1;
                    floor = o;
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
                        floor = o;
                        i = end;
                    }
                    None => {
                        out[o] = b'=';
                        o += 1;
                        floor = o;
                        i += 1;
                    }
                }
            }
        }
    }
    let end = trim_padding(&out, o, floor);
    out.truncate(end);
    out
}

/// Length of `out[..o]` without its trailing spaces and tabs, but not below `floor`.
fn trim_padding(out: &[u8], mut o: usize, floor: usize) -> usize {
    while o > floor && matches!(out[o - 1], b' ' | b'\t') {
        o -= 1;
    }
    o
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
    fn short_lines_break_before_every_escape() {
        let src = b"\x00\xc3\xa9=\xff\x01\x02";
        for line in 4..10 {
            let enc = encode(src, false, line);
            assert!(enc.split(|&c| c == b'\n').all(|l| l.len() <= line + 1));
            assert_eq!(decode(&enc, false), src.to_vec());
        }
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
