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

fn line_end(raw: &[u8], from: usize, end: usize) -> usize {
    // memchr: bodies are scanned line by line, so this is the hot loop.
    match memchr::memchr(b'\n', &raw[from..end]) {
        Some(i) => from + i + 1,
        None => end,
    }
}

fn is_blank_line(line: &[u8]) -> bool {
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
fn header_value(raw: &[u8], header: &Range<usize>, name: &[u8]) -> Option<Vec<u8>> {
    fields(raw, header.clone())
        .into_iter()
        .find(|f| raw[f.name.clone()].eq_ignore_ascii_case(name))
        .map(|f| unfold(&raw[f.value]))
}

/// Remove CR/LF of folding and trim surrounding whitespace.
fn unfold(v: &[u8]) -> Vec<u8> {
    let out: Vec<u8> = v
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    trim(&out).to_vec()
}

fn trim(v: &[u8]) -> &[u8] {
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
fn skip_cfws(v: &[u8], mut i: usize) -> usize {
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
fn parse_ctype(v: &[u8]) -> Option<(MediaType, Params)> {
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

fn parse_params(v: &[u8], mut i: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
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

/// Parse the MIME tree of a whole message.
pub fn parse(raw: &[u8]) -> Part {
    let mut count = 0usize;
    parse_part(raw, 0, raw.len(), false, 0, &mut count)
}

fn parse_part(
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
fn split_multipart(raw: &[u8], body: Range<usize>, boundary: &[u8]) -> Vec<Range<usize>> {
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

fn strip_eol_before(raw: &[u8], floor: usize, pos: usize) -> usize {
    let mut e = pos;
    if e > floor && raw[e - 1] == b'\n' {
        e -= 1;
        if e > floor && raw[e - 1] == b'\r' {
            e -= 1;
        }
    }
    e
}

/// Append an IMAP nstring: NIL, a quoted string when it is safe, else a literal.
///
/// RFC 9051: `string = quoted / literal`, `quoted = DQUOTE *QUOTED-CHAR DQUOTE`,
/// `QUOTED-CHAR = <any TEXT-CHAR except quoted-specials> / "\" quoted-specials`,
/// `literal = "{" number64 ["+"] "}" CRLF *CHAR8` (CHAR8 excludes NUL, which
/// is written as 0x80, as Dovecot does).
pub fn write_nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    let Some(s) = s else {
        out.extend_from_slice(b"NIL");
        return;
    };
    let quotable = s.len() < 1024
        && s.iter()
            .all(|&b| (0x01..0x80).contains(&b) && b != b'\r' && b != b'\n');
    if quotable {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
        out.extend(s.iter().map(|&b| if b == 0 { 0x80 } else { b }));
    }
}

fn nstring_or_nil(out: &mut Vec<u8>, s: Option<Vec<u8>>) {
    write_nstring(out, s.as_deref().filter(|v| !v.is_empty()));
}

fn upper_string(out: &mut Vec<u8>, s: &[u8]) {
    write_nstring(out, Some(&s.to_ascii_uppercase()));
}

/// One address of an ENVELOPE: (name, adl, mailbox, host); a group start has
/// host None and mailbox = group name, a group end has mailbox and host None.
pub type Addr = (
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
);

/// Parse an address list.
///
/// RFC 5322 3.4: `address = mailbox / group`, `mailbox = name-addr / addr-spec`,
/// `name-addr = [display-name] angle-addr`, `group = display-name ":" [group-list] ";"`.
pub fn parse_addresses(v: &[u8]) -> Vec<Addr> {
    let mut out: Vec<Addr> = Vec::new();
    let mut i = 0;
    let mut in_group = false;
    while i < v.len() && out.len() < 10_000 {
        // Collect one element up to ',' ';' or ':' outside quotes/comments/angles.
        let mut phrase = Vec::new();
        let mut comment = Vec::new();
        let mut angle: Option<Vec<u8>> = None;
        let mut term = 0u8;
        while i < v.len() {
            match v[i] {
                b'"' => {
                    i += 1;
                    while i < v.len() && v[i] != b'"' {
                        if v[i] == b'\\' && i + 1 < v.len() {
                            i += 1;
                        }
                        phrase.push(v[i]);
                        i += 1;
                    }
                    i += 1;
                }
                b'(' => {
                    let e = skip_cfws(v, i);
                    if comment.is_empty() && e > i + 1 {
                        comment = trim(&v[i + 1..e.saturating_sub(1).max(i + 1)]).to_vec();
                    }
                    i = e.max(i + 1);
                }
                b'<' => {
                    let s = i + 1;
                    while i < v.len() && v[i] != b'>' {
                        i += 1;
                    }
                    angle = Some(v[s..i.min(v.len())].to_vec());
                    i += 1;
                }
                b',' | b';' => {
                    term = v[i];
                    i += 1;
                    break;
                }
                b':' if !in_group && angle.is_none() => {
                    term = b':';
                    i += 1;
                    break;
                }
                c => {
                    if c.is_ascii_whitespace() {
                        if !phrase.is_empty() && phrase.last() != Some(&b' ') {
                            phrase.push(b' ');
                        }
                    } else {
                        phrase.push(c);
                    }
                    i += 1;
                }
            }
        }
        let phrase = trim(&phrase).to_vec();
        if term == b':' {
            out.push((None, None, Some(phrase), None));
            in_group = true;
            continue;
        }
        let spec = match angle {
            Some(a) => Some((Some(phrase).filter(|p| !p.is_empty()), a)),
            None if !phrase.is_empty() => {
                let a: Vec<u8> = phrase.iter().copied().filter(|b| *b != b' ').collect();
                Some((Some(comment).filter(|c| !c.is_empty()), a))
            }
            None => None,
        };
        if let Some((name, a)) = spec {
            // Strip a source route "@a,@b:" into adl.
            let (adl, a) = match a.iter().position(|&b| b == b':') {
                Some(p) if a.first() == Some(&b'@') => (Some(a[..p].to_vec()), a[p + 1..].to_vec()),
                _ => (None, a),
            };
            let a = trim(&a).to_vec();
            let (mb, host) = match a.iter().rposition(|&b| b == b'@') {
                Some(p) => (a[..p].to_vec(), Some(a[p + 1..].to_vec())),
                None => (a, None),
            };
            if !mb.is_empty() || host.is_some() {
                out.push((
                    name,
                    adl,
                    Some(mb),
                    host.or_else(|| Some(b"MISSING_DOMAIN".to_vec())),
                ));
            }
        }
        if term == b';' && in_group {
            out.push((None, None, None, None));
            in_group = false;
        }
    }
    if in_group {
        out.push((None, None, None, None));
    }
    out
}

fn write_addresses(out: &mut Vec<u8>, v: Option<Vec<u8>>) {
    let addrs = v.map(|v| parse_addresses(&v)).unwrap_or_default();
    if addrs.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (name, adl, mb, host) in addrs {
        out.push(b'(');
        write_nstring(out, name.as_deref());
        out.push(b' ');
        write_nstring(out, adl.as_deref());
        out.push(b' ');
        write_nstring(out, mb.as_deref());
        out.push(b' ');
        write_nstring(out, host.as_deref());
        out.push(b')');
    }
    out.push(b')');
}

/// The IMAP ENVELOPE of the header block `header`, ready to send.
///
/// RFC 9051: `envelope = "(" env-date SP env-subject SP env-from SP env-sender
/// SP env-reply-to SP env-to SP env-cc SP env-bcc SP env-in-reply-to SP
/// env-message-id ")"`; sender and reply-to default to from.
pub fn envelope_of(raw: &[u8], header: &Range<usize>) -> Vec<u8> {
    let get = |n: &[u8]| header_value(raw, header, n);
    let mut out = b"(".to_vec();
    nstring_or_nil(&mut out, get(b"date"));
    out.push(b' ');
    nstring_or_nil(&mut out, get(b"subject"));
    let from = get(b"from");
    for name in [&b"from"[..], b"sender", b"reply-to", b"to", b"cc", b"bcc"] {
        out.push(b' ');
        let mut v = get(name);
        let empty = v.as_deref().is_none_or(|v| parse_addresses(v).is_empty());
        if empty && (name == b"sender" || name == b"reply-to") {
            v.clone_from(&from);
        }
        write_addresses(&mut out, v);
    }
    out.push(b' ');
    nstring_or_nil(&mut out, get(b"in-reply-to"));
    out.push(b' ');
    nstring_or_nil(&mut out, get(b"message-id"));
    out.push(b')');
    out
}

/// The ENVELOPE of a whole raw message.
pub fn envelope(raw: &[u8]) -> Vec<u8> {
    let (h, _) = split_header(raw, 0, raw.len());
    envelope_of(raw, &h)
}

/// Lines of a body: its line ends, plus a last line without one (the line end
/// before a boundary belongs to the boundary, not to the part).
fn count_lines(b: &[u8]) -> usize {
    let n = b.iter().filter(|&&c| c == b'\n').count();
    n + usize::from(b.last().is_some_and(|&c| c != b'\n'))
}

fn write_params(out: &mut Vec<u8>, params: &[(Vec<u8>, Vec<u8>)]) {
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

fn write_disposition(out: &mut Vec<u8>, raw: &[u8], p: &Part) {
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

fn write_lang_loc(out: &mut Vec<u8>, raw: &[u8], p: &Part) {
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

/// What part of a part a section names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    /// The whole part (or message for the empty section).
    Full,
    /// HEADER.
    Header,
    /// HEADER.FIELDS (names), or with `true` HEADER.FIELDS.NOT.
    Fields(Vec<Vec<u8>>, bool),
    /// TEXT.
    Text,
    /// MIME.
    Mime,
}

/// A parsed section spec: part path and what of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Part numbers, 1-based; empty for the top level.
    pub path: Vec<u32>,
    /// What of the part.
    pub text: SectionText,
}

fn syntax(offset: usize, expected: &'static str) -> crate::CoreError {
    crate::CoreError::Syntax { offset, expected }
}

/// Parse the inside of `[...]` of a FETCH BODY section.
///
/// RFC 9051: `section-spec = section-msgtext / (section-part ["." section-text])`,
/// `section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"`,
/// `section-part = nz-number *("." nz-number)`, `section-text = section-msgtext / "MIME"`,
/// `header-list = "(" header-fld-name *(SP header-fld-name) ")"`.
pub fn parse_section(spec: &[u8]) -> Result<Section, crate::CoreError> {
    let mut path = Vec::new();
    let mut i = 0;
    while i < spec.len() && spec[i].is_ascii_digit() {
        let s = i;
        while i < spec.len() && spec[i].is_ascii_digit() {
            i += 1;
        }
        let n: u32 = std::str::from_utf8(&spec[s..i])
            .ok()
            .and_then(|t| t.parse().ok())
            .filter(|&n| n > 0)
            .ok_or_else(|| syntax(s, "nz-number"))?;
        path.push(n);
        if i < spec.len() {
            if spec[i] != b'.' {
                return Err(syntax(i, "\".\""));
            }
            i += 1;
        } else {
            return Ok(Section {
                path,
                text: SectionText::Full,
            });
        }
    }
    let rest = &spec[i..];
    let upper = rest.to_ascii_uppercase();
    let text = if rest.is_empty() && path.is_empty() {
        SectionText::Full
    } else if upper == b"HEADER" {
        SectionText::Header
    } else if upper == b"TEXT" {
        SectionText::Text
    } else if upper == b"MIME" && !path.is_empty() {
        SectionText::Mime
    } else if let Some((not, skip)) = if upper.starts_with(b"HEADER.FIELDS.NOT ") {
        Some((true, 18))
    } else if upper.starts_with(b"HEADER.FIELDS ") {
        Some((false, 14))
    } else {
        None
    } {
        let list = &rest[skip..];
        if list.first() != Some(&b'(') || list.last() != Some(&b')') || list.len() < 3 {
            return Err(syntax(i + skip, "header-list"));
        }
        let names: Vec<Vec<u8>> = list[1..list.len() - 1]
            .split(|&b| b == b' ')
            .filter(|n| !n.is_empty())
            .map(|n| {
                let n = if n.len() >= 2 && n[0] == b'"' && n[n.len() - 1] == b'"' {
                    &n[1..n.len() - 1]
                } else {
                    n
                };
                n.to_vec()
            })
            .collect();
        if names.is_empty() {
            return Err(syntax(i + skip, "header-fld-name"));
        }
        SectionText::Fields(names, not)
    } else {
        return Err(syntax(i, "HEADER, HEADER.FIELDS, TEXT or MIME"));
    };
    Ok(Section { path, text })
}

/// The header fields of `header` whose names are (or with `exclude`, are not)
/// in `names`, case-insensitively, each field with its folded lines, followed
/// by the blank line (RFC 9051 6.4.5: the blank line is always included).
pub fn header_fields(
    raw: &[u8],
    header: Range<usize>,
    names: &[Vec<u8>],
    exclude: bool,
) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fields(raw, header) {
        let name = &raw[f.name.clone()];
        let listed = names.iter().any(|n| n.eq_ignore_ascii_case(name));
        if listed != exclude {
            out.extend_from_slice(&raw[f.whole.clone()]);
            if out.last() != Some(&b'\n') {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Find the part named by `path`; for a message/rfc822 part, numbers go into
/// its enclosed message (RFC 9051 6.4.5).
fn find_part<'a>(root: &'a Part, path: &[u32]) -> Option<&'a Part> {
    let mut p = root;
    for &n in path {
        // A message/rfc822 part's sub-parts are those of its enclosed message.
        let container = match &p.message {
            Some(m) => m.as_ref(),
            None => p,
        };
        p = if container.children.is_empty() {
            // A non-multipart has exactly one part, numbered 1.
            if n == 1 && container.message.is_none() && std::ptr::eq(container, p) {
                p
            } else if n == 1 && !std::ptr::eq(container, p) {
                container
            } else {
                return None;
            }
        } else {
            container
                .children
                .get(usize::try_from(n).ok()?.checked_sub(1)?)?
        };
    }
    Some(p)
}

/// The exact bytes of BODY[section]; an absent part yields empty bytes (as
/// Dovecot answers `""` for nonexistent sections).
pub fn section(raw: &[u8], s: &Section) -> Vec<u8> {
    let tree = parse(raw);
    let Some(p) = find_part(&tree, &s.path) else {
        return Vec::new();
    };
    // HEADER/TEXT/FIELDS of a part address its enclosed message.
    let msg = if s.path.is_empty() {
        Some(p)
    } else {
        p.message.as_deref()
    };
    match &s.text {
        SectionText::Full if s.path.is_empty() => raw.to_vec(),
        SectionText::Full => raw[p.body.clone()].to_vec(),
        SectionText::Mime => raw[p.header.clone()].to_vec(),
        SectionText::Header => msg
            .map(|m| raw[m.header.clone()].to_vec())
            .unwrap_or_default(),
        SectionText::Text => msg
            .map(|m| raw[m.body.clone()].to_vec())
            .unwrap_or_default(),
        SectionText::Fields(names, not) => msg
            .map(|m| header_fields(raw, m.header.clone(), names, *not))
            .unwrap_or_default(),
    }
}

/// The decoded content of BINARY[part] (RFC 3516).
///
/// RFC 3516: `section-binary = "[" [section-part] "]"`. The part's body is
/// decoded by its Content-Transfer-Encoding (base64 leniently, as mail readers
/// do; quoted-printable; 7bit/8bit/binary as is). Multipart and message parts
/// and the empty section are returned as stored. An unknown encoding is a
/// `Decode` error (the server answers `NO [UNKNOWN-CTE]`); a part that does
/// not exist yields empty bytes.
pub fn binary(raw: &[u8], path: &[u32]) -> Result<Vec<u8>, crate::CoreError> {
    let tree = parse(raw);
    if path.is_empty() {
        return Ok(raw.to_vec());
    }
    let Some(p) = find_part(&tree, path) else {
        return Ok(Vec::new());
    };
    let body = &raw[p.body.clone()];
    if !p.children.is_empty() || p.message.is_some() {
        return Ok(body.to_vec());
    }
    let cte = header_value(raw, &p.header, b"content-transfer-encoding")
        .map(|v| v.to_ascii_lowercase())
        .unwrap_or_default();
    match &cte[..] {
        b"" | b"7bit" | b"8bit" | b"binary" => Ok(body.to_vec()),
        b"base64" => Ok(crate::base64::decode_lenient(body)),
        b"quoted-printable" => Ok(crate::qp::decode(body, false)),
        _ => Err(crate::CoreError::Decode {
            offset: p.header.start,
            expected: "a known Content-Transfer-Encoding",
        }),
    }
}

/// Parse the part path inside BINARY[...] / BINARY.SIZE[...]: `nz-number *("." nz-number)` or empty.
pub fn parse_part_path(spec: &[u8]) -> Result<Vec<u32>, crate::CoreError> {
    if spec.is_empty() {
        return Ok(Vec::new());
    }
    let s = parse_section(spec)?;
    if s.text != SectionText::Full {
        return Err(syntax(0, "section-part"));
    }
    Ok(s.path)
}

/// Apply `<origin.count>`: bytes from `origin`, at most `count`.
pub fn partial(data: &[u8], origin: usize, count: usize) -> &[u8] {
    let s = origin.min(data.len());
    let e = s.saturating_add(count).min(data.len());
    &data[s..e]
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
