//! base64 for MIME bodies (RFC 4648 alphabet, RFC 2045 section 6.8 line breaking).
//!
//! The 4-character groups are encoded and decoded by `base64-simd` (AVX2/SSSE3/
//! NEON chosen at run time); this module adds what MIME needs around it: CRLF
//! line breaking, the lenient decoding mail readers do, and a strict decoding
//! that accepts exactly what CPython's `base64.b64decode(x, validate=True)`
//! accepts while naming the offset of the first bad byte.
//!
//! RFC 2045 section 6.8:
//!
//! > The encoded output stream must be represented in lines of no more than 76
//! > characters each. All line breaks or other characters not found in Table 1
//! > must be ignored by decoding software. In base64 data, characters other
//! > than those in Table 1, line breaks, and other white space probably
//! > indicate a transmission error, about which a warning message or even a
//! > message rejection might be appropriate under some circumstances.
//!
//! RFC 4648 section 4: `"A"-"Z" "a"-"z" "0"-"9" "+" "/"`, pad `"="`.

use base64_simd::{Out, STANDARD};

use crate::error::CoreError;

/// Input bytes encoded per block: a multiple of 3 (whole groups) whose
/// encoding (16 KiB) fits on the stack and in L1 cache.
const ENCODE_BLOCK: usize = 3 * 4096;
/// Characters gathered per block by the lenient decoder: a multiple of 4.
const DECODE_BLOCK: usize = 4 * 2048;

const INVALID: u8 = 0xFF;

/// 6-bit value of each alphabet byte, `INVALID` for every other byte.
const DECODE_TABLE: [u8; 256] = {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        t[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// Length of the base64 form of `n` bytes, with CRLF after every
/// `line_length` characters and after the last line (`None`: one line, no CRLF).
pub fn encoded_len(n: usize, line_length: Option<usize>) -> usize {
    let chars = n.div_ceil(3) * 4;
    match line_length {
        None => chars,
        Some(l) => chars + 2 * chars.div_ceil(l.max(1)),
    }
}

/// Encode `src` into `dst`, which must be exactly `encoded_len(src.len(), line_length)` long.
///
/// A `line_length` of 0 is treated as 1.
pub fn encode_into(src: &[u8], line_length: Option<usize>, dst: &mut [u8]) {
    let Some(line) = line_length else {
        let _ = STANDARD.encode(src, Out::from_slice(dst));
        return;
    };
    let line = line.max(1);
    let mut block = [0u8; ENCODE_BLOCK / 3 * 4];
    let mut col = 0;
    let mut o = 0;
    for chunk in src.chunks(ENCODE_BLOCK) {
        let mut chars: &[u8] = STANDARD.encode(chunk, Out::from_slice(&mut block));
        while !chars.is_empty() {
            let take = (line - col).min(chars.len());
            dst[o..o + take].copy_from_slice(&chars[..take]);
            o += take;
            col += take;
            chars = &chars[take..];
            if col == line {
                dst[o..o + 2].copy_from_slice(b"\r\n");
                o += 2;
                col = 0;
            }
        }
    }
    if col > 0 {
        dst[o..o + 2].copy_from_slice(b"\r\n");
    }
}

/// Encode `src` as base64, MIME lines of `line_length` characters ended by CRLF.
pub fn encode(src: &[u8], line_length: Option<usize>) -> Vec<u8> {
    let mut out = vec![0u8; encoded_len(src.len(), line_length.map(|l| l.max(1)))];
    encode_into(src, line_length, &mut out);
    out
}

/// Streaming lenient decoder: skips every byte outside the alphabet, stops at
/// the padding that completes a group, tolerates missing padding.
///
/// On every input that CPython's `binascii.a2b_base64` (non-strict) accepts it
/// returns the same bytes; where CPython raises ("Incorrect padding", a lone
/// sixth bit group) it returns what the complete groups and bytes hold, as
/// mail readers do. Any split of the input into `feed` calls gives the same
/// output.
#[derive(Debug, Default, Clone)]
pub struct Decoder {
    /// Bits gathered for the current group.
    acc: u32,
    /// Data characters in the current group (0..=3).
    quad: u8,
    /// "=" seen since the last data character, counted once `quad >= 2`.
    pads: u8,
    /// A complete padding ended the data: the rest is ignored.
    done: bool,
}

impl Decoder {
    /// A decoder at the start of the data.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether padding has ended the data (further input is ignored).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Decode `input`, appending the bytes to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() / 4 * 3 + 3);
        // Line breaks are gathered out of the way so that whole blocks of
        // clean characters go through the SIMD decoder in one call.
        let mut block = [0u8; DECODE_BLOCK];
        let mut n = 0;
        let mut rest = input;
        while !rest.is_empty() && !self.done {
            let end = memchr::memchr2(b'\r', b'\n', rest).unwrap_or(rest.len());
            let take = end.min(DECODE_BLOCK - n);
            block[n..n + take].copy_from_slice(&rest[..take]);
            n += take;
            rest = &rest[take..];
            if take == end {
                // Skip the CR or LF that stopped the copy, and an LF after a CR.
                let skip = match rest {
                    [b'\r', b'\n', ..] => 2,
                    [] => 0,
                    _ => 1,
                };
                rest = &rest[skip..];
            }
            if n == DECODE_BLOCK {
                self.flush(&block, out);
                n = 0;
            }
        }
        self.flush(&block[..n], out);
    }

    /// Finish: a partial group of 2 or 3 characters gives its 1 or 2 bytes; a
    /// lone character (6 bits) gives nothing.
    pub fn finish(self, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        match self.quad {
            2 => out.push((self.acc >> 4) as u8),
            3 => out.extend_from_slice(&[(self.acc >> 10) as u8, (self.acc >> 2) as u8]),
            _ => {}
        }
    }

    fn flush(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        let mut chunk = chunk;
        if self.quad == 0 {
            let whole = chunk.len() / 4 * 4;
            if whole > 0 {
                let start = out.len();
                out.resize(start + whole / 4 * 3, 0);
                let decoded = STANDARD.decode(&chunk[..whole], Out::from_slice(&mut out[start..]));
                match decoded {
                    Ok(d) if d.len() == whole / 4 * 3 => chunk = &chunk[whole..],
                    // Padding (which ends the data), white space or garbage
                    // in the block: the byte-wise path knows what to do.
                    _ => out.truncate(start),
                }
            }
        }
        self.slow(chunk, out);
    }

    fn slow(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        for &c in chunk {
            if c == b'=' {
                if self.quad >= 2 {
                    self.pads += 1;
                    if self.quad + self.pads >= 4 {
                        self.finish_group(out);
                        self.done = true;
                        return;
                    }
                }
                continue;
            }
            let v = DECODE_TABLE[usize::from(c)];
            if v == INVALID {
                continue;
            }
            self.pads = 0;
            self.acc = (self.acc << 6) | u32::from(v);
            self.quad += 1;
            if self.quad == 4 {
                out.extend_from_slice(&[
                    (self.acc >> 16) as u8,
                    (self.acc >> 8) as u8,
                    self.acc as u8,
                ]);
                self.acc = 0;
                self.quad = 0;
            }
        }
    }

    /// Emit the bytes of a group completed by padding.
    fn finish_group(&mut self, out: &mut Vec<u8>) {
        let done = std::mem::take(self);
        done.finish(out);
    }
}

/// Lenient decode of a whole input (see [`Decoder`]).
pub fn decode_lenient(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len() / 4 * 3 + 3);
    let mut d = Decoder::new();
    d.feed(src, &mut out);
    d.finish(&mut out);
    out
}

/// Output length of `src` if it has the exact shape of MIME base64 as
/// encoders write it: lines of 76 characters ended by CRLF, then a shorter
/// last line (a multiple of 4 characters, CRLF-ended). `None` otherwise.
///
/// For such input [`decode_mime_into`] writes the output in place, with no
/// gathering of characters and no second buffer.
pub fn canonical_mime_len(src: &[u8]) -> Option<usize> {
    let full = src.len() / 78;
    let tail = &src[full * 78..];
    let tail_out = match tail {
        // The last full line may end in padding.
        [] if full > 0 => {
            let pads = src[..src.len() - 2]
                .iter()
                .rev()
                .take_while(|&&c| c == b'=')
                .count();
            return (full * 57).checked_sub(pads.min(2));
        }
        [] => 0,
        [content @ .., b'\r', b'\n'] if !content.is_empty() && content.len() % 4 == 0 => {
            let pads = content.iter().rev().take_while(|&&c| c == b'=').count();
            (content.len() / 4 * 3).checked_sub(pads.min(2))?
        }
        _ => return None,
    };
    Some(full * 57 + tail_out)
}

/// Decode input of the shape [`canonical_mime_len`] accepts into `dst` (of
/// that length). Returns `false`, with `dst` partly written, when the input
/// is not exactly that shape or holds bytes outside the alphabet, padding
/// inside it or a non-canonical end: the caller then uses [`decode_lenient`],
/// which gives what this would have given on the bytes it accepts.
pub fn decode_mime_into(src: &[u8], dst: &mut [u8]) -> bool {
    const LINES: usize = 64;
    let full = src.len() / 78;
    let tail = &src[full * 78..];
    // Padding may only end the very last line, which is decoded on its own.
    let last_full = usize::from(tail.is_empty() && full > 0);
    let plain = full - last_full;
    // Lines are gathered into a block so that the SIMD decoder runs on
    // thousands of characters per call, not 76.
    let mut block = [0u8; 76 * LINES];
    let mut o = 0;
    let mut k = 0;
    while k < plain {
        let m = (plain - k).min(LINES);
        for j in 0..m {
            let line = &src[(k + j) * 78..(k + j + 1) * 78];
            if &line[76..] != b"\r\n" {
                return false;
            }
            block[j * 76..(j + 1) * 76].copy_from_slice(&line[..76]);
        }
        let want = m * 57;
        if o + want > dst.len() {
            return false;
        }
        match STANDARD.decode(&block[..m * 76], Out::from_slice(&mut dst[o..o + want])) {
            Ok(d) if d.len() == want => o += want,
            _ => return false,
        }
        k += m;
    }
    let last = if last_full == 1 {
        let line = &src[plain * 78..];
        if &line[76..] != b"\r\n" {
            return false;
        }
        &line[..76]
    } else if tail.is_empty() {
        return o == dst.len();
    } else {
        match tail.strip_suffix(b"\r\n") {
            Some(content) => content,
            None => return false,
        }
    };
    if last_len(last).is_none_or(|n| o + n != dst.len()) {
        return false;
    }
    match STANDARD.decode(last, Out::from_slice(&mut dst[o..])) {
        Ok(d) => o + d.len() == dst.len(),
        Err(_) => false,
    }
}

/// Decoded length of a last line of 4k characters with up to 2 "=" at the end.
fn last_len(line: &[u8]) -> Option<usize> {
    if line.is_empty() || line.len() % 4 != 0 {
        return None;
    }
    let pads = line.iter().rev().take_while(|&&c| c == b'=').count();
    (line.len() / 4 * 3).checked_sub(pads.min(2))
}

const ALPHABET: &str = "a base64 character (A-Z a-z 0-9 + /)";

fn bad(offset: usize, expected: &'static str) -> CoreError {
    CoreError::Decode { offset, expected }
}

/// Strict decode: accepts exactly what `base64.b64decode(src, validate=True)`
/// accepts in CPython (3.11+): only alphabet characters, then the padding
/// that completes the last group and nothing after it. Bits left over in the
/// last character are not checked (CPython does not either).
pub fn decode_strict(src: &[u8]) -> Result<Vec<u8>, CoreError> {
    if src.first() == Some(&b'=') {
        return Err(bad(0, "base64 data before '=' padding"));
    }
    let p = memchr::memchr(b'=', src).unwrap_or(src.len());
    let data = &src[..p];
    let whole = data.len() / 4 * 4;
    let quad = data.len() % 4;
    let mut out = vec![0u8; whole / 4 * 3 + quad.saturating_sub(1)];
    if STANDARD
        .decode(&data[..whole], Out::from_slice(&mut out[..whole / 4 * 3]))
        .is_err()
    {
        let at = data
            .iter()
            .position(|&c| DECODE_TABLE[usize::from(c)] == INVALID)
            .unwrap_or(0);
        return Err(bad(at, ALPHABET));
    }
    let mut acc = 0u32;
    for (i, &c) in data[whole..].iter().enumerate() {
        let v = DECODE_TABLE[usize::from(c)];
        if v == INVALID {
            return Err(bad(whole + i, ALPHABET));
        }
        acc = (acc << 6) | u32::from(v);
    }
    let pad = &src[p..];
    match (quad, pad) {
        (0, []) => {}
        // CPython ignores a run of '=' after a complete group when nothing
        // follows it ("AAAA==" decodes like "AAAA"); anything after it is an error.
        (0, _) if pad.iter().all(|&c| c == b'=') => {}
        (0, _) => {
            let at = pad
                .iter()
                .position(|&c| c != b'=')
                .map_or(src.len(), |i| p + i);
            return Err(bad(at, "end of data after padding"));
        }
        (1, _) => {
            // Nothing can complete a group of one character: point at the
            // first byte after the padding, or the end.
            let at = pad
                .iter()
                .position(|&c| c != b'=')
                .map_or(src.len(), |i| p + i);
            let expected = if at == src.len() {
                "2 or 3 characters in the last group (1 is never valid)"
            } else {
                ALPHABET
            };
            return Err(bad(at, expected));
        }
        (_, []) => return Err(bad(src.len(), "'=' padding to complete the last group")),
        (2, [b'=']) => return Err(bad(src.len(), "a second '=' to complete the padding")),
        (2, [b'=', b'=']) | (3, [b'=']) => {}
        (2, [b'=', b'=', ..]) => return Err(bad(p + 2, "end of data after padding")),
        (2, [b'=', c, ..]) => {
            let expected = if DECODE_TABLE[usize::from(*c)] == INVALID {
                ALPHABET
            } else {
                "'=' (padding must be contiguous)"
            };
            return Err(bad(p + 1, expected));
        }
        _ => return Err(bad(p + 1, "end of data after padding")),
    }
    match quad {
        2 => out[whole / 4 * 3] = (acc >> 4) as u8,
        3 => {
            out[whole / 4 * 3] = (acc >> 10) as u8;
            out[whole / 4 * 3 + 1] = (acc >> 2) as u8;
        }
        _ => {}
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lenient_bytewise(src: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut d = Decoder::new();
        for b in src.chunks(1) {
            d.feed(b, &mut out);
        }
        d.finish(&mut out);
        out
    }

    #[test]
    fn encode_table() {
        let cases: &[(&[u8], Option<usize>, &[u8])] = &[
            (b"", Some(76), b""),
            (b"", None, b""),
            (b"f", None, b"Zg=="),
            (b"fo", None, b"Zm8="),
            (b"foo", None, b"Zm9v"),
            (b"foobar", None, b"Zm9vYmFy"),
            (b"foo", Some(76), b"Zm9v\r\n"),
            (b"foobar", Some(4), b"Zm9v\r\nYmFy\r\n"),
            (b"foob", Some(4), b"Zm9v\r\nYg==\r\n"),
            (b"foob", Some(3), b"Zm9\r\nvYg\r\n==\r\n"),
        ];
        for (src, line, want) in cases {
            assert_eq!(encode(src, *line), *want, "{src:?} {line:?}");
            assert_eq!(encoded_len(src.len(), *line), want.len());
        }
    }

    #[test]
    fn encode_long_input_breaks_every_76_characters() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 3) as u8).collect();
        let enc = encode(&data, Some(76));
        for line in enc.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
            assert!(line.len() <= 77 && line.ends_with(b"\r"));
        }
        assert_eq!(decode_lenient(&enc), data);
        assert_eq!(decode_strict(&encode(&data, None)), Ok(data));
    }

    #[test]
    fn lenient_table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"Zm9v\r\nYmFy\r\n", b"foobar"),
            (b"Zm9 vYm\tFy", b"foobar"),
            (b"Zm9v!!YmFy", b"foobar"),
            (b"Zg==", b"f"),
            (b"Zg", b"f"),
            (b"Zm8", b"fo"),
            (b"Zm8=Zm9v", b"fo"),
            (b"Zg==Zm9v", b"f"),
            (b"Zg=\r\n=Zm9v", b"f"),
            (b"=Zm9v", b"foo"),
            (b"Z=m9v", b"foo"),
            (b"Zm9vY", b"foo"),
            (b"\r\r\n\n", b""),
        ];
        for (src, want) in cases {
            assert_eq!(decode_lenient(src), *want, "{src:?}");
            assert_eq!(lenient_bytewise(src), *want, "bytewise {src:?}");
        }
    }

    #[test]
    fn lenient_handles_blocks_with_garbage_and_padding() {
        let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        let mut enc = encode(&data, Some(76));
        // Garbage that the SIMD block decoder refuses: the byte-wise path takes over.
        enc.splice(5000..5000, b"  *".iter().copied());
        assert_eq!(decode_lenient(&enc), data);
        assert_eq!(lenient_bytewise(&enc), data);
    }

    #[test]
    fn canonical_mime_fast_path_matches_lenient() {
        for n in [0usize, 1, 2, 3, 56, 57, 58, 114, 1000, 4000] {
            let data: Vec<u8> = (0..n).map(|i| (i * 31 % 256) as u8).collect();
            let enc = encode(&data, Some(76));
            let len = canonical_mime_len(&enc).expect("encoder output is canonical");
            let mut dst = vec![0u8; len];
            assert!(decode_mime_into(&enc, &mut dst), "{n}");
            assert_eq!(dst, data);
        }
        let mut enc = encode(&[7u8; 300], Some(76));
        enc[10] = b'*';
        let len = canonical_mime_len(&enc).expect("shape is still canonical");
        assert!(!decode_mime_into(&enc, &mut vec![0u8; len]));
        assert_eq!(canonical_mime_len(b"Zm9v\n"), None);
        assert_eq!(canonical_mime_len(b"Zm9\r\n"), None);
    }

    #[test]
    fn strict_table() {
        let ok: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"Zm9v", b"foo"),
            (b"Zg==", b"f"),
            (b"Zm8=", b"fo"),
            (b"Zh==", b"f"),
            // CPython's validate=True ignores '=' after a complete group.
            (b"Zm9v=", b"foo"),
            (b"Zm9v====", b"foo"),
        ];
        for (src, want) in ok {
            assert_eq!(decode_strict(src).as_deref(), Ok(*want), "{src:?}");
        }
        let bad: &[(&[u8], usize)] = &[
            (b"=", 0),
            (b"Zm9v\r\n", 4),
            (b"Zm 9v", 2),
            (b"Zm9vZ", 5),
            (b"Zm9vZ=", 6),
            (b"Zm9vZ=a", 6),
            (b"Zm9v=a", 5),
            (b"Zm9v=Zm9v", 5),
            (b"Zg", 2),
            (b"Zg=", 3),
            (b"Zg=a", 3),
            (b"Zg=*", 3),
            (b"Zg===", 4),
            (b"Zm8==", 4),
            (b"Zm8=a", 4),
            (b"Zm9vYmFy*", 8),
        ];
        for (src, at) in bad {
            match decode_strict(src) {
                Err(e) => assert_eq!(e.offset(), *at, "{src:?}: {e}"),
                Ok(v) => panic!("{src:?} accepted as {v:?}"),
            }
        }
    }
}
