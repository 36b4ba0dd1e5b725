//! Header blocks: splitting header from body, fields, Content-Type parameters.

use std::ops::Range;

use super::*;

/// Offsets of a header field: name, and the whole field with its line end.
#[derive(Debug, Clone)]
pub struct Field {
    /// The field name (without the colon).
    pub name: Range<usize>,
    /// The value after the colon, up to but excluding the final line end.
    pub value: Range<usize>,
    /// The full field including folded lines and the final line end.
    pub whole: Range<usize>,
}

pub(crate) fn line_end(raw: &[u8], from: usize, end: usize) -> usize {
    // memchr: bodies are scanned line by line, so this is the hot loop.
    match memchr::memchr(b'\n', &raw[from..end]) {
        Some(i) => from + i + 1,
        None => end,
    }
}

pub(crate) fn is_blank_line(line: &[u8]) -> bool {
    line == b"\n" || line == b"\r\n"
}

/// Split `raw[start..end]` into (header, body). The header keeps its blank line.
///
/// RFC 5322 2.1: `message = header CRLF body`; the header is a run of fields.
pub fn split_header(raw: &[u8], start: usize, end: usize) -> (Range<usize>, Range<usize>) {
    let mut pos = start;
    while pos < end {
        let next = line_end(raw, pos, end);
        if is_blank_line(&raw[pos..next]) {
            return (start..next, next..end);
        }
        pos = next;
    }
    (start..end, end..end)
}

/// The fields of a header block.
///
/// RFC 5322 2.2: `field = field-name ":" unstructured CRLF`, folded lines
/// start with WSP. Lines without a colon are skipped (Dovecot does the same).
pub fn fields(raw: &[u8], header: Range<usize>) -> Vec<Field> {
    let mut out = Vec::new();
    let mut pos = header.start;
    let end = header.end;
    while pos < end {
        let mut next = line_end(raw, pos, end);
        if is_blank_line(&raw[pos..next]) {
            break;
        }
        while next < end && (raw[next] == b' ' || raw[next] == b'\t') {
            next = line_end(raw, next, end);
        }
        let chunk = &raw[pos..next];
        if let Some(colon) = chunk.iter().position(|&b| b == b':') {
            let mut name_end = pos + colon;
            while name_end > pos && matches!(raw[name_end - 1], b' ' | b'\t') {
                name_end -= 1;
            }
            let mut vend = next;
            while vend > pos + colon + 1 && matches!(raw[vend - 1], b'\r' | b'\n') {
                vend -= 1;
            }
            if name_end > pos && !matches!(raw[pos], b' ' | b'\t') {
                out.push(Field {
                    name: pos..name_end,
                    value: pos + colon + 1..vend,
                    whole: pos..next,
                });
            }
        }
        pos = next;
    }
    out
}

/// The unfolded, trimmed value of the first field named `name`.
pub(crate) fn header_value(raw: &[u8], header: &Range<usize>, name: &[u8]) -> Option<Vec<u8>> {
    fields(raw, header.clone())
        .into_iter()
        .find(|f| raw[f.name.clone()].eq_ignore_ascii_case(name))
        .map(|f| unfold(&raw[f.value]))
}

/// Remove CR/LF of folding and trim surrounding whitespace.
pub(crate) fn unfold(v: &[u8]) -> Vec<u8> {
    let out: Vec<u8> = v
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    trim(&out).to_vec()
}

pub(crate) fn trim(v: &[u8]) -> &[u8] {
    let s = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let e = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(s, |i| i + 1);
    &v[s..e.max(s)]
}

/// Skip CFWS (comments nest) from `i`.
pub(crate) fn skip_cfws(v: &[u8], mut i: usize) -> usize {
    loop {
        while i < v.len() && v[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < v.len() && v[i] == b'(' {
            let mut depth = 0usize;
            while i < v.len() {
                match v[i] {
                    b'\\' => i += 1,
                    b'(' => depth += 1,
                    b')' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        } else {
            return i.min(v.len());
        }
    }
}

/// Parse a Content-Type value.
///
/// RFC 2045 5.1: `content := "Content-Type" ":" type "/" subtype *(";" parameter)`,
/// `parameter := attribute "=" value`, `value := token / quoted-string`.
pub(crate) fn parse_ctype(v: &[u8]) -> Option<(MediaType, Params)> {
    let i = skip_cfws(v, 0);
    let tok = |i: usize| {
        let mut j = i;
        while j < v.len() && !b"()<>@,;:\\\"/[]?= \t".contains(&v[j]) && v[j] > 0x20 {
            j += 1;
        }
        j
    };
    let te = tok(i);
    let ty = v[i..te].to_ascii_lowercase();
    let mut j = skip_cfws(v, te);
    if ty.is_empty() || j >= v.len() || v[j] != b'/' {
        return None;
    }
    j = skip_cfws(v, j + 1);
    let se = tok(j);
    let sub = v[j..se].to_ascii_lowercase();
    if sub.is_empty() {
        return None;
    }
    Some(((ty, sub), parse_params(v, se)))
}

pub(crate) fn parse_params(v: &[u8], mut i: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut params = Vec::new();
    loop {
        i = skip_cfws(v, i);
        while i < v.len() && v[i] != b';' {
            i += 1;
        }
        if i >= v.len() {
            return params;
        }
        i = skip_cfws(v, i + 1);
        let ns = i;
        while i < v.len() && v[i] != b'=' && v[i] != b';' && !v[i].is_ascii_whitespace() {
            i += 1;
        }
        let name = v[ns..i].to_ascii_lowercase();
        i = skip_cfws(v, i);
        if i >= v.len() || v[i] != b'=' {
            continue;
        }
        i = skip_cfws(v, i + 1);
        let mut value = Vec::new();
        if i < v.len() && v[i] == b'"' {
            i += 1;
            while i < v.len() && v[i] != b'"' {
                if v[i] == b'\\' && i + 1 < v.len() {
                    i += 1;
                }
                value.push(v[i]);
                i += 1;
            }
            i += 1;
        } else {
            let vs = i;
            while i < v.len() && v[i] != b';' && !v[i].is_ascii_whitespace() {
                i += 1;
            }
            value.extend_from_slice(&v[vs..i]);
        }
        if !name.is_empty() && params.len() < 100 {
            params.push((name, value));
        }
    }
}
