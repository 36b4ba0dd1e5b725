//! The part tree and its BODYSTRUCTURE / BODY form.

use std::ops::Range;

use super::*;

/// Parse the MIME tree of a whole message.
pub fn parse(raw: &[u8]) -> Part {
    let mut count = 0usize;
    parse_part(raw, 0, raw.len(), false, 0, &mut count)
}

pub(crate) fn parse_part(
    raw: &[u8],
    start: usize,
    end: usize,
    digest: bool,
    depth: usize,
    count: &mut usize,
) -> Part {
    *count += 1;
    let (header, body) = split_header(raw, start, end);
    let (ctype, params) =
        match header_value(raw, &header, b"content-type").and_then(|v| parse_ctype(&v)) {
            Some(ct) => ct,
            None if digest => ((b"message".to_vec(), b"rfc822".to_vec()), Vec::new()),
            None => (
                (b"text".to_vec(), b"plain".to_vec()),
                vec![(b"charset".to_vec(), b"us-ascii".to_vec())],
            ),
        };
    let mut part = Part {
        header,
        body,
        ctype,
        params,
        children: Vec::new(),
        message: None,
    };
    let limited = depth >= MAX_DEPTH || *count >= MAX_PARTS;
    if part.ctype.0 == b"multipart" && !limited {
        let boundary = part
            .params
            .iter()
            .find(|(n, _)| n == b"boundary")
            .map(|(_, v)| v.clone());
        match boundary {
            Some(b) if !b.is_empty() => {
                let is_digest = part.ctype.1 == b"digest";
                for r in split_multipart(raw, part.body.clone(), &b) {
                    if *count >= MAX_PARTS {
                        break;
                    }
                    part.children.push(parse_part(
                        raw,
                        r.start,
                        r.end,
                        is_digest,
                        depth + 1,
                        count,
                    ));
                }
            }
            // A multipart without boundary is shown as text/plain, as Dovecot does.
            _ => {
                part.ctype = (b"text".to_vec(), b"plain".to_vec());
                part.params = vec![(b"charset".to_vec(), b"us-ascii".to_vec())];
            }
        }
        if part.children.is_empty() && part.ctype.0 == b"multipart" {
            // IMAP needs at least one body in a multipart: an empty text/plain.
            let e = part.body.end;
            part.children.push(Part {
                header: e..e,
                body: e..e,
                ctype: (b"text".to_vec(), b"plain".to_vec()),
                params: vec![(b"charset".to_vec(), b"us-ascii".to_vec())],
                children: Vec::new(),
                message: None,
            });
        }
    } else if part.ctype.0 == b"message"
        && (part.ctype.1 == b"rfc822" || part.ctype.1 == b"global")
        && !limited
    {
        let b = part.body.clone();
        part.message = Some(Box::new(parse_part(
            raw,
            b.start,
            b.end,
            false,
            depth + 1,
            count,
        )));
    }
    part
}

/// Ranges of the body parts of a multipart body.
///
/// RFC 2046 5.1.1: `dash-boundary := "--" boundary`; a delimiter is
/// `CRLF dash-boundary`, the close delimiter adds `"--"`; the CRLF before a
/// delimiter belongs to the delimiter, not to the preceding part.
pub(crate) fn split_multipart(
    raw: &[u8],
    body: Range<usize>,
    boundary: &[u8],
) -> Vec<Range<usize>> {
    let mut parts = Vec::new();
    let mut pos = body.start;
    let mut current: Option<usize> = None;
    while pos < body.end {
        let next = line_end(raw, pos, body.end);
        let line = &raw[pos..next];
        if line.len() >= 2 + boundary.len()
            && line.starts_with(b"--")
            && &line[2..2 + boundary.len()] == boundary
        {
            let rest = &line[2 + boundary.len()..];
            let closing = rest.starts_with(b"--");
            let tail = if closing { &rest[2..] } else { rest };
            if tail.iter().all(|b| b.is_ascii_whitespace()) {
                if let Some(s) = current.take() {
                    parts.push(s..strip_eol_before(raw, s, pos));
                }
                if closing {
                    return parts;
                }
                current = Some(next);
            }
        }
        pos = next;
    }
    if let Some(s) = current {
        parts.push(s..body.end);
    }
    parts
}

pub(crate) fn strip_eol_before(raw: &[u8], floor: usize, pos: usize) -> usize {
    let mut e = pos;
    if e > floor && raw[e - 1] == b'\n' {
        e -= 1;
        if e > floor && raw[e - 1] == b'\r' {
            e -= 1;
        }
    }
    e
}

/// Lines of a body: its line ends, plus a last line without one (the line end
/// before a boundary belongs to the boundary, not to the part).
pub(crate) fn count_lines(b: &[u8]) -> usize {
    let n = b.iter().filter(|&&c| c == b'\n').count();
    n + usize::from(b.last().is_some_and(|&c| c != b'\n'))
}

pub(crate) fn write_params(out: &mut Vec<u8>, params: &[(Vec<u8>, Vec<u8>)]) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (n, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        upper_string(out, n);
        out.push(b' ');
        write_nstring(out, Some(v));
    }
    out.push(b')');
}

pub(crate) fn write_disposition(out: &mut Vec<u8>, raw: &[u8], p: &Part) {
    // RFC 2183: disposition := "Content-Disposition" ":" disposition-type *(";" parameter)
    match header_value(raw, &p.header, b"content-disposition") {
        Some(v) => {
            let i = skip_cfws(&v, 0);
            let mut e = i;
            while e < v.len() && v[e] != b';' && !v[e].is_ascii_whitespace() && v[e] != b'(' {
                e += 1;
            }
            if e == i {
                out.extend_from_slice(b"NIL");
                return;
            }
            out.push(b'(');
            upper_string(out, &v[i..e]);
            out.push(b' ');
            write_params(out, &parse_params(&v, e));
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
}

pub(crate) fn write_lang_loc(out: &mut Vec<u8>, raw: &[u8], p: &Part) {
    out.push(b' ');
    match header_value(raw, &p.header, b"content-language") {
        Some(v) => {
            let langs: Vec<&[u8]> = v
                .split(|&b| b == b',')
                .map(trim)
                .filter(|l| !l.is_empty())
                .collect();
            if langs.is_empty() {
                out.extend_from_slice(b"NIL");
            } else {
                out.push(b'(');
                for (i, l) in langs.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    write_nstring(out, Some(l));
                }
                out.push(b')');
            }
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    nstring_or_nil(out, header_value(raw, &p.header, b"content-location"));
}

/// BODYSTRUCTURE (`extensible`) or BODY of a parsed part, ready to send.
///
/// RFC 9051: `body = "(" (body-type-1part / body-type-mpart) ")"`,
/// `body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]`,
/// `body-fields = body-fld-param SP body-fld-id SP body-fld-desc SP
/// body-fld-enc SP body-fld-octets`.
pub fn write_body(out: &mut Vec<u8>, raw: &[u8], p: &Part, extensible: bool) {
    out.push(b'(');
    if !p.children.is_empty() {
        for c in &p.children {
            write_body(out, raw, c, extensible);
        }
        out.push(b' ');
        upper_string(out, &p.ctype.1);
        if extensible {
            out.push(b' ');
            write_params(out, &p.params);
            out.push(b' ');
            write_disposition(out, raw, p);
            write_lang_loc(out, raw, p);
        }
        out.push(b')');
        return;
    }
    upper_string(out, &p.ctype.0);
    out.push(b' ');
    upper_string(out, &p.ctype.1);
    out.push(b' ');
    write_params(out, &p.params);
    out.push(b' ');
    nstring_or_nil(out, header_value(raw, &p.header, b"content-id"));
    out.push(b' ');
    nstring_or_nil(out, header_value(raw, &p.header, b"content-description"));
    out.push(b' ');
    match header_value(raw, &p.header, b"content-transfer-encoding") {
        Some(e) if !e.is_empty() => upper_string(out, &e),
        _ => out.extend_from_slice(b"\"7BIT\""),
    }
    let body = &raw[p.body.clone()];
    out.extend_from_slice(format!(" {}", body.len()).as_bytes());
    if let Some(m) = &p.message {
        out.push(b' ');
        out.extend_from_slice(&envelope_of(raw, &m.header));
        out.push(b' ');
        write_body(out, raw, m, extensible);
        out.extend_from_slice(format!(" {}", count_lines(body)).as_bytes());
    } else if p.ctype.0 == b"text" {
        out.extend_from_slice(format!(" {}", count_lines(body)).as_bytes());
    }
    if extensible {
        out.push(b' ');
        nstring_or_nil(out, header_value(raw, &p.header, b"content-md5"));
        out.push(b' ');
        write_disposition(out, raw, p);
        write_lang_loc(out, raw, p);
    }
    out.push(b')');
}

/// BODYSTRUCTURE (`extensible = true`) or BODY of a raw message.
pub fn bodystructure(raw: &[u8], extensible: bool) -> Vec<u8> {
    let tree = parse(raw);
    let mut out = Vec::new();
    write_body(&mut out, raw, &tree, extensible);
    out
}
