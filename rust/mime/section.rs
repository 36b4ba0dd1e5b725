//! BODY[section]<partial> and BINARY[part] extraction.

use std::ops::Range;

use super::*;

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

pub(crate) fn syntax(offset: usize, expected: &'static str) -> crate::CoreError {
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
pub(crate) fn find_part<'a>(root: &'a Part, path: &[u32]) -> Option<&'a Part> {
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
