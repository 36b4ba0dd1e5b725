//! The store's header cache: a few common fields of a new message, as JSON.
//!
//! Every append keeps `From`, `To`, `Cc`, `Subject`, `Date` and `Message-ID`
//! (the first of each) in the index, so listings need not open the file.
//! This runs once per delivered message on the event loop, which is why it
//! is here and not a regular expression plus `json.dumps` in Python.
//!
//! Rules (the same for every writer of the index):
//! * only the first `CACHE_SCAN` octets of the header section are looked at;
//! * a field starts a line: its name (any case), optional blanks, a colon;
//!   its value runs to the end of the line and over continuation lines
//!   (those starting with a space or a tab);
//! * a folded value has every run of white space turned into one space,
//!   an unfolded one is trimmed;
//! * octets that are not UTF-8 become U+DC80..U+DCFF (Python's
//!   `surrogateescape`), so `json.loads` gives back exactly what
//!   `bytes.decode("utf-8", "surrogateescape")` would.
//!
//! The JSON is ASCII-only (`\uXXXX` escapes), as `json.dumps` writes it.

/// Cached fields, lowercase (the JSON object lists them in the order found).
pub const CACHED_FIELDS: [&[u8]; 6] = [b"from", b"to", b"cc", b"subject", b"date", b"message-id"];

/// Octets of header scanned at most: a hostile header costs no more than a normal one.
pub const CACHE_SCAN: usize = 64 * 1024;

/// The cached fields of `header` as a JSON object (`{"subject": "..."}`).
pub fn header_cache_json(header: &[u8]) -> String {
    let scan = &header[..header.len().min(CACHE_SCAN)];
    let mut found: [bool; 6] = [false; 6];
    let mut out = String::with_capacity(256);
    out.push('{');
    let mut pos = 0;
    while pos < scan.len() {
        let line_end = memchr::memchr(b'\n', &scan[pos..]).map_or(scan.len(), |i| pos + i);
        if let Some((which, value_start)) = field_at(scan, pos, line_end) {
            // The value: this line, then every continuation line.
            let mut end = line_end;
            while end < scan.len() && end + 1 < scan.len() && is_blank(scan[end + 1]) {
                end = memchr::memchr(b'\n', &scan[end + 1..]).map_or(scan.len(), |i| end + 1 + i);
            }
            if !found[which] {
                found[which] = true;
                if out.len() > 1 {
                    out.push_str(", ");
                }
                push_json_str(&mut out, CACHED_FIELDS[which].iter().map(|&b| u32::from(b)));
                out.push_str(": ");
                let chars = decode_escaped(&scan[value_start..end]);
                let folded = scan[value_start..end].contains(&b'\n');
                push_json_str(&mut out, squeeze(&chars, folded).into_iter());
            }
            pos = end + 1;
        } else {
            pos = line_end + 1;
        }
    }
    out.push('}');
    out
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Which cached field starts the line at `pos`, and where its value begins.
fn field_at(scan: &[u8], pos: usize, line_end: usize) -> Option<(usize, usize)> {
    let line = &scan[pos..line_end];
    for (which, name) in CACHED_FIELDS.iter().enumerate() {
        if line.len() > name.len() && line[..name.len()].eq_ignore_ascii_case(name) {
            let mut i = name.len();
            while i < line.len() && is_blank(line[i]) {
                i += 1;
            }
            if i < line.len() && line[i] == b':' {
                return Some((which, pos + i + 1));
            }
        }
    }
    None
}

/// UTF-8 decoding where each octet of an invalid sequence becomes U+DC00 + octet.
fn decode_escaped(raw: &[u8]) -> Vec<u32> {
    let mut out = Vec::with_capacity(raw.len());
    for chunk in raw.utf8_chunks() {
        out.extend(chunk.valid().chars().map(u32::from));
        out.extend(chunk.invalid().iter().map(|&b| 0xDC00 + u32::from(b)));
    }
    out
}

/// White space as Python's `str.split()` and `str.strip()` see it.
fn is_space(c: u32) -> bool {
    matches!(c, 0x1C..=0x1F) || char::from_u32(c).is_some_and(char::is_whitespace)
}

/// Folded: runs of white space become one space, none at the ends. Else trimmed.
fn squeeze(chars: &[u32], folded: bool) -> Vec<u32> {
    if !folded {
        let start = chars
            .iter()
            .position(|&c| !is_space(c))
            .unwrap_or(chars.len());
        let end = chars
            .iter()
            .rposition(|&c| !is_space(c))
            .map_or(start, |i| i + 1);
        return chars[start..end].to_vec();
    }
    let mut out = Vec::with_capacity(chars.len());
    for word in chars.split(|&c| is_space(c)).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(u32::from(b' '));
        }
        out.extend_from_slice(word);
    }
    out
}

/// A JSON string of code points (lone surrogates allowed), ASCII only.
fn push_json_str(out: &mut String, chars: impl Iterator<Item = u32>) {
    use std::fmt::Write;
    out.push('"');
    for c in chars {
        match c {
            0x22 => out.push_str("\\\""),
            0x5C => out.push_str("\\\\"),
            0x0A => out.push_str("\\n"),
            0x0D => out.push_str("\\r"),
            0x09 => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0C => out.push_str("\\f"),
            0x20..=0x7E => out.push(char::from(c as u8)),
            0x10000.. => {
                let v = c - 0x10000;
                let _ = write!(
                    out,
                    "\\u{:04x}\\u{:04x}",
                    0xD800 + (v >> 10),
                    0xDC00 + (v & 0x3FF)
                );
            }
            _ => {
                let _ = write!(out, "\\u{c:04x}");
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_fields() {
        let h = b"Received: x\r\nFROM : a@b\r\nSubject: hello\r\n  world\r\nTo:  c@d \r\nsubject: later\r\n\r\n";
        assert_eq!(
            header_cache_json(h),
            r#"{"from": "a@b", "subject": "hello world", "to": "c@d"}"#
        );
    }

    #[test]
    fn escapes() {
        let h = "Subject: \"q\" \\ caf\u{e9} \u{1f600}\r\n".as_bytes();
        assert_eq!(
            header_cache_json(h),
            r#"{"subject": "\"q\" \\ caf\u00e9 \ud83d\ude00"}"#
        );
        assert_eq!(
            header_cache_json(b"Subject: a\xffb\n"),
            r#"{"subject": "a\udcffb"}"#
        );
    }

    #[test]
    fn bounded_and_odd() {
        assert_eq!(header_cache_json(b""), "{}");
        assert_eq!(header_cache_json(b"Subject"), "{}");
        assert_eq!(header_cache_json(b"Subject:"), r#"{"subject": ""}"#);
        assert_eq!(header_cache_json(b"Subject: x"), r#"{"subject": "x"}"#);
        assert_eq!(header_cache_json(b"X-To: y\nTo-Do: z\n"), "{}");
        let mut big = vec![b'a'; CACHE_SCAN];
        big.extend_from_slice(b"\nSubject: late\n");
        assert_eq!(header_cache_json(&big), "{}");
    }
}
