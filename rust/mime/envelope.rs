//! IMAP strings and the ENVELOPE (RFC 9051 7.5.2).

use std::ops::Range;

use super::*;

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

pub(crate) fn nstring_or_nil(out: &mut Vec<u8>, s: Option<Vec<u8>>) {
    write_nstring(out, s.as_deref().filter(|v| !v.is_empty()));
}

pub(crate) fn upper_string(out: &mut Vec<u8>, s: &[u8]) {
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

pub(crate) fn write_addresses(out: &mut Vec<u8>, v: Option<Vec<u8>>) {
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
