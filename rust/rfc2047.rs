//! RFC 2047 encoded-words in header values.
//!
//! RFC 2047 section 2:
//!
//! ```text
//! encoded-word = "=?" charset "?" encoding "?" encoded-text "?="
//! charset = token    ; see section 3
//! encoding = token   ; see section 4
//! token = 1*<Any CHAR except SPACE, CTLs, and especials>
//! especials = "(" / ")" / "<" / ">" / "@" / "," / ";" / ":" / "
//!             <"> / "/" / "[" / "]" / "?" / "." / "="
//! encoded-text = 1*<Any printable ASCII character other than "?"
//!                   or SPACE>
//! ```
//!
//! > An 'encoded-word' may not be more than 75 characters long, including
//! > 'charset', 'encoding', 'encoded-text', and delimiters.
//!
//! Section 6.2: "When displaying a particular header field that contains
//! multiple 'encoded-word's, any 'linear-white-space' that separates a pair of
//! adjacent 'encoded-word's is ignored." RFC 2231 section 5 adds an optional
//! language to the charset: `charset "*" language`.
//!
//! The decoder is lenient the way mail readers are: encoded-words are
//! recognised even when text touches them, and a word that does not parse
//! (unknown encoding, charset nobody knows) is left as it is. Charsets other
//! than UTF-8, US-ASCII and ISO-8859-1 are decoded by a function the caller
//! supplies (the Python binding uses Python's codecs).

use crate::{base64, qp};

/// Longest encoded-word RFC 2047 allows.
pub const MAX_WORD: usize = 75;

/// Decode `bytes` written in `charset` when the charset is built in; `None` otherwise.
pub fn decode_builtin(charset: &str, bytes: &[u8]) -> Option<String> {
    match charset.to_ascii_lowercase().as_str() {
        "utf-8" | "utf8" => Some(String::from_utf8_lossy(bytes).into_owned()),
        "us-ascii" | "ascii" => Some(
            bytes
                .iter()
                .map(|&b| if b < 0x80 { char::from(b) } else { '\u{FFFD}' })
                .collect(),
        ),
        "iso-8859-1" | "iso8859-1" | "latin1" | "latin-1" => {
            Some(bytes.iter().map(|&b| char::from(b)).collect())
        }
        _ => None,
    }
}

/// A parsed encoded-word: where it ends in the input, its charset and its bytes.
struct Word<'a> {
    end: usize,
    charset: &'a str,
    bytes: Vec<u8>,
}

const fn is_token(c: u8) -> bool {
    c > b' '
        && c < 0x7F
        && !matches!(
            c,
            b'(' | b')'
                | b'<'
                | b'>'
                | b'@'
                | b','
                | b';'
                | b':'
                | b'"'
                | b'/'
                | b'['
                | b']'
                | b'?'
                | b'.'
                | b'='
        )
}

/// Parse an encoded-word starting at `start` (which holds "=?").
fn parse_word(src: &[u8], start: usize) -> Option<Word<'_>> {
    let mut i = start + 2;
    let cs_start = i;
    while i < src.len() && is_token(src[i]) {
        i += 1;
    }
    if i == cs_start || src.get(i) != Some(&b'?') {
        return None;
    }
    let charset_full = std::str::from_utf8(&src[cs_start..i]).ok()?;
    // RFC 2231: "charset*language".
    let charset = charset_full.split('*').next().unwrap_or(charset_full);
    let enc = *src.get(i + 1)?;
    if src.get(i + 2) != Some(&b'?') {
        return None;
    }
    let text_start = i + 3;
    let mut j = text_start;
    while j < src.len() && src[j] > b' ' && src[j] < 0x7F && src[j] != b'?' {
        j += 1;
    }
    if src.get(j..j + 2) != Some(b"?=") {
        return None;
    }
    let text = &src[text_start..j];
    let bytes = match enc {
        b'B' | b'b' => base64::decode_lenient(text),
        b'Q' | b'q' => qp::decode(text, true),
        _ => return None,
    };
    Some(Word {
        end: j + 2,
        charset,
        bytes,
    })
}

/// Decode the encoded-words of a header value.
///
/// Text outside encoded-words is read as UTF-8 (invalid sequences replaced)
/// and folding (CRLF before a space or tab) is undone. `decode_other` decodes
/// the charsets that [`decode_builtin`] does not know; a word whose charset
/// neither knows is kept as it is.
pub fn decode_header(
    src: &[u8],
    decode_other: &mut dyn FnMut(&str, &[u8]) -> Option<String>,
) -> String {
    let mut out = String::with_capacity(src.len());
    // Raw bytes of plain text not yet appended (appended at once, as UTF-8).
    let mut plain: Vec<u8> = Vec::new();
    let mut after_word = false;
    let mut i = 0;
    while i < src.len() {
        if src[i] == b'=' && src.get(i + 1) == Some(&b'?') {
            if let Some(word) = parse_word(src, i) {
                let text = decode_builtin(word.charset, &word.bytes)
                    .or_else(|| decode_other(word.charset, &word.bytes));
                if let Some(text) = text {
                    // White space between two adjacent encoded-words is dropped.
                    let only_ws = plain.iter().all(|&c| matches!(c, b' ' | b'\t'));
                    if !(after_word && only_ws) {
                        out.push_str(&String::from_utf8_lossy(&plain));
                    }
                    plain.clear();
                    out.push_str(&text);
                    after_word = true;
                    i = word.end;
                    continue;
                }
            }
        }
        // Unfold: CRLF (or LF) followed by white space is removed.
        match &src[i..] {
            [b'\r', b'\n', b' ' | b'\t', ..] => i += 2,
            [b'\n', b' ' | b'\t', ..] => i += 1,
            _ => {
                plain.push(src[i]);
                if !matches!(src[i], b' ' | b'\t') {
                    after_word = false;
                }
                i += 1;
            }
        }
    }
    out.push_str(&String::from_utf8_lossy(&plain));
    out
}

/// The encoded form of one character in the target charset.
pub type CharEncoder<'a> = dyn FnMut(char, &mut Vec<u8>) -> Result<(), String> + 'a;

/// A built-in charset encoder: appends one character's bytes, or says why not.
pub type BuiltinEncoder = fn(char, &mut Vec<u8>) -> Result<(), String>;

/// Encode a character with a built-in charset encoder, if `charset` is one.
pub fn builtin_encoder(charset: &str) -> Option<BuiltinEncoder> {
    fn utf8(c: char, out: &mut Vec<u8>) -> Result<(), String> {
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        Ok(())
    }
    fn latin1(c: char, out: &mut Vec<u8>) -> Result<(), String> {
        let v = u32::from(c);
        let b = u8::try_from(v).map_err(|_| format!("{c:?} is not in iso-8859-1"))?;
        out.push(b);
        Ok(())
    }
    fn ascii(c: char, out: &mut Vec<u8>) -> Result<(), String> {
        if c.is_ascii() {
            out.push(c as u8);
            Ok(())
        } else {
            Err(format!("{c:?} is not in us-ascii"))
        }
    }
    match charset.to_ascii_lowercase().as_str() {
        "utf-8" | "utf8" => Some(utf8),
        "iso-8859-1" | "latin1" | "latin-1" => Some(latin1),
        "us-ascii" | "ascii" => Some(ascii),
        _ => None,
    }
}

/// Whether a word of the text (with the white space before it) can be
/// written as it is: printable ASCII that fits on a line and that no decoder
/// could take for an encoded-word.
fn plain_ok(ws: &str, word: &str, max_line: usize) -> bool {
    ws.len().max(1) + word.len() <= max_line
        && !word.contains("=?")
        && word.bytes().all(|c| (b'!'..=b'~').contains(&c))
}

/// Bytes allowed as themselves in a "Q" word anywhere in a header (RFC 2047
/// section 5 (3): the safest set, also valid inside a phrase).
fn q_cost(b: u8) -> usize {
    if b.is_ascii_alphanumeric() || matches!(b, b'!' | b'*' | b'+' | b'-' | b'/' | b' ') {
        1
    } else {
        3
    }
}

fn q_write(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b == b' ' {
            out.push('_');
        } else if q_cost(b) == 1 {
            out.push(char::from(b));
        } else {
            out.push('=');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

/// Builds the folded header value.
struct Writer {
    out: String,
    /// Characters on the current line.
    col: usize,
    max_line: usize,
}

impl Writer {
    /// Write `sep` (white space, may be empty at the start) then `token`,
    /// folding before `sep` when the token would not fit.
    fn put(&mut self, sep: &str, token: &str) {
        if self.col > 0 && self.col + sep.len() + token.len() > self.max_line && !sep.is_empty() {
            self.out.push_str("\r\n");
            self.col = 0;
        }
        self.out.push_str(sep);
        self.out.push_str(token);
        self.col += sep.len() + token.len();
    }
}

/// Encode `text` as a header value: words of printable ASCII stay as they
/// are; runs of other words (with the white space between them) become
/// encoded-words in `charset`, B or Q, whichever is shorter; the value is
/// folded with CRLF before white space so that no line exceeds `max_line`.
///
/// `max_line` must leave room for an encoded-word holding one character
/// (`charset.len() + 20` is always enough); the caller checks it.
pub fn encode_header(
    text: &str,
    charset: &str,
    max_line: usize,
    encode_char: &mut CharEncoder<'_>,
) -> Result<String, String> {
    // Split into (white space before, word) pairs; a trailing white space run
    // gets an empty word.
    let mut pieces: Vec<(&str, &str)> = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let ws_end = rest.find(|c| c != ' ' && c != '\t').unwrap_or(rest.len());
        let (ws, after) = rest.split_at(ws_end);
        let w_end = after.find([' ', '\t']).unwrap_or(after.len());
        let (word, next) = after.split_at(w_end);
        pieces.push((ws, word));
        rest = next;
    }
    let mut w = Writer {
        out: String::with_capacity(text.len() * 2),
        col: 0,
        max_line,
    };
    let mut i = 0;
    while i < pieces.len() {
        let (ws, word) = pieces[i];
        if word.is_empty() || plain_ok(ws, word, max_line) {
            w.put(ws, word);
            i += 1;
            continue;
        }
        // A run of words to encode, with the white space inside the run.
        let mut j = i + 1;
        while j < pieces.len()
            && !pieces[j].1.is_empty()
            && !plain_ok(pieces[j].0, pieces[j].1, max_line)
        {
            j += 1;
        }
        let start = word.as_ptr() as usize - text.as_ptr() as usize;
        let last_word = pieces[j - 1].1;
        let end = last_word.as_ptr() as usize - text.as_ptr() as usize + last_word.len();
        // Keep one white space character as the separator before the run and
        // encode the rest with it, so a long run of white space cannot push
        // the first encoded-word past max_line (at the start: keep none).
        let keep = if w.out.is_empty() { 0 } else { ws.len().min(1) };
        let start = start - (ws.len() - keep);
        encode_run(&text[start..end], &ws[..keep], charset, &mut w, encode_char)?;
        i = j;
    }
    Ok(w.out)
}

/// Write `run` as encoded-words, the first preceded by `sep`.
fn encode_run(
    run: &str,
    sep: &str,
    charset: &str,
    w: &mut Writer,
    encode_char: &mut CharEncoder<'_>,
) -> Result<(), String> {
    // Encode each character once; B or Q is chosen for the whole run.
    let mut bytes = Vec::with_capacity(run.len());
    let mut bounds = Vec::with_capacity(run.len() + 1);
    bounds.push(0);
    for c in run.chars() {
        encode_char(c, &mut bytes)?;
        bounds.push(bytes.len());
    }
    let q_len: usize = bytes.iter().map(|&b| q_cost(b)).sum();
    let b_len = bytes.len().div_ceil(3) * 4;
    let use_b = b_len < q_len;
    let prefix = format!("=?{charset}?{}?", if use_b { 'b' } else { 'q' });
    let overhead = prefix.len() + 2;
    let cost = |from: usize, to: usize| -> usize {
        let chunk = &bytes[from..to];
        if use_b {
            chunk.len().div_ceil(3) * 4
        } else {
            chunk.iter().map(|&b| q_cost(b)).sum()
        }
    };
    let mut sep = sep;
    let mut k = 0;
    let chars = bounds.len() - 1;
    while k < chars {
        // Room on the current line, or on a fresh one after a fold.
        let room_here = w.max_line.saturating_sub(w.col + sep.len().max(1));
        let fits_here = |n: usize| overhead + n <= room_here.min(MAX_WORD);
        let mut m = k;
        while m < chars && fits_here(cost(bounds[k], bounds[m + 1])) {
            m += 1;
        }
        if m == k || (m < chars && w.col > 0 && m - k < 4) {
            // Little or nothing fits here: start the word on a new line.
            let room = w.max_line.saturating_sub(sep.len().max(1)).min(MAX_WORD);
            m = k;
            while m < chars && overhead + cost(bounds[k], bounds[m + 1]) <= room {
                m += 1;
            }
            if m == k {
                return Err(format!(
                    "max_line {} is too short for an encoded-word",
                    w.max_line
                ));
            }
            if w.col > 0 {
                w.out.push_str("\r\n");
                w.col = 0;
            }
            if sep.is_empty() {
                sep = " ";
            }
        }
        let mut word = prefix.clone();
        let chunk = &bytes[bounds[k]..bounds[m]];
        if use_b {
            word.push_str(&String::from_utf8_lossy(&base64::encode(chunk, None)));
        } else {
            q_write(chunk, &mut word);
        }
        word.push_str("?=");
        w.put(sep, &word);
        sep = " ";
        k = m;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> String {
        decode_header(s.as_bytes(), &mut |cs, b| {
            (cs.eq_ignore_ascii_case("iso-8859-2")).then(|| {
                b.iter()
                    .map(|&c| if c == 0xE8 { 'č' } else { char::from(c) })
                    .collect()
            })
        })
    }

    fn enc(s: &str, max: usize) -> String {
        let mut e = builtin_encoder("utf-8").expect("utf-8 is built in");
        encode_header(s, "utf-8", max, &mut e).expect("encodable")
    }

    #[test]
    fn rfc2047_section8_examples() {
        let cases = [
            ("(=?ISO-8859-1?Q?a?=)", "(a)"),
            ("(=?ISO-8859-1?Q?a?= b)", "(a b)"),
            ("(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(ab)"),
            ("(=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=)", "(ab)"),
            ("(=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?=)", "(ab)"),
            ("(=?ISO-8859-1?Q?a_b?=)", "(a b)"),
            ("(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)", "(a b)"),
            ("=?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>", "Keith Moore <moore@cs.utk.edu>"),
            ("=?ISO-8859-1?Q?Andr=E9?= Pirard", "André Pirard"),
            (
                "=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=\r\n    =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=",
                "If you can read this you understand the example.",
            ),
        ];
        for (src, want) in cases {
            assert_eq!(dec(src), want, "{src}");
        }
    }

    #[test]
    fn malformed_and_unknown_words_stay() {
        for s in [
            "=?utf-8?x?abc?=",
            "=?utf-8?q?abc",
            "=??q?abc?=",
            "=?klingon?q?abc?=",
            "a =?utf-8?q?a b?=",
        ] {
            assert_eq!(dec(s), s);
        }
        assert_eq!(dec("=?utf-8*en?q?caf=C3=A9?="), "café");
        assert_eq!(dec("x=?utf-8?b?w6k=?=y"), "xéy");
    }

    #[test]
    fn encode_only_what_needs_it() {
        assert_eq!(enc("hello world", 76), "hello world");
        // B is shorter here (8 characters against 9 for Q), Q for the longer word.
        assert_eq!(enc("café au lait", 76), "=?utf-8?b?Y2Fmw6k=?= au lait");
        assert_eq!(enc("a Hélloworld", 76), "a =?utf-8?q?H=C3=A9lloworld?=");
        assert_eq!(dec(&enc("café crème au lait", 76)), "café crème au lait");
        assert_eq!(dec(&enc("日本語のテキスト", 76)), "日本語のテキスト");
    }

    #[test]
    fn encode_folds_long_values() {
        let text = "Ünïcödé ".repeat(30) + &"word ".repeat(30);
        for max in [40, 76, 100] {
            let e = enc(&text, max);
            for line in e.split("\r\n") {
                assert!(line.len() <= max, "{max}: {line:?}");
            }
            assert_eq!(dec(&e), text);
        }
    }
}
