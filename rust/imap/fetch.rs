//! FETCH attributes (RFC 9051 section 9, RFC 3516 BINARY, RFC 7162 MODSEQ).
//!
//! ```text
//! fetch-att       = "ENVELOPE" / "FLAGS" / "INTERNALDATE" /
//!                   "RFC822" [".HEADER" / ".TEXT"] / "RFC822.SIZE" /
//!                   "BODY" ["STRUCTURE"] / "UID" /
//!                   "BODY" section [partial] /
//!                   "BODY.PEEK" section [partial] /
//!                   "BINARY" [".PEEK"] section-binary [partial] /
//!                   "BINARY.SIZE" section-binary / "MODSEQ"
//! partial         = "<" number64 "." nz-number64 ">"
//! section         = "[" [section-spec] "]"
//! section-spec    = section-msgtext / (section-part ["." section-text])
//! section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"
//! section-part    = nz-number *("." nz-number)
//! section-text    = section-msgtext / "MIME"
//! header-list     = "(" header-fld-name *(SP header-fld-name) ")"
//! section-binary  = "[" [section-part] "]"
//! ```

use super::args::{PResult, Parser};

/// The text part of a section specifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    Header,
    HeaderFields(Vec<String>),
    HeaderFieldsNot(Vec<String>),
    Text,
    Mime,
}

/// `BODY[1.2.HEADER.FIELDS (FROM)]`: part numbers and an optional text part.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Section {
    pub part: Vec<u32>,
    pub text: Option<SectionText>,
}

/// One FETCH attribute. `name` is the attribute in upper case without its
/// section (`"BODY"`, `"BINARY"`, `"BINARY.SIZE"`, `"RFC822.SIZE"`, ...);
/// `section` is `Some` for the `BODY[...]`/`BINARY[...]` forms, so `"BODY"`
/// with no section is the non-extensible BODYSTRUCTURE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchAttr {
    pub name: &'static str,
    pub section: Option<Section>,
    pub partial: Option<(u64, u64)>,
    pub peek: bool,
}

fn simple(name: &'static str) -> FetchAttr {
    FetchAttr {
        name,
        section: None,
        partial: None,
        peek: false,
    }
}

/// `"ALL" / "FULL" / "FAST" / fetch-att / "(" fetch-att *(SP fetch-att) ")"`
///
/// The macros expand as RFC 9051 section 6.4.5 says.
pub(crate) fn fetch_attrs(p: &mut Parser<'_>) -> PResult<Vec<FetchAttr>> {
    let fast = ["FLAGS", "INTERNALDATE", "RFC822.SIZE"];
    let expand = |names: &[&'static str]| names.iter().map(|n| simple(n)).collect();
    if p.keyword("ALL") {
        return Ok(expand(&[fast[0], fast[1], fast[2], "ENVELOPE"]));
    }
    if p.keyword("FAST") {
        return Ok(expand(&fast));
    }
    if p.keyword("FULL") {
        return Ok(expand(&[fast[0], fast[1], fast[2], "ENVELOPE", "BODY"]));
    }
    if p.peek() == Some(b'(') {
        if p.limits.max_depth == 0 {
            return p.err("less deeply nested parentheses");
        }
        return p.list_of("fetch attributes", false, fetch_att);
    }
    Ok(vec![fetch_att(p)?])
}

fn fetch_att(p: &mut Parser<'_>) -> PResult<FetchAttr> {
    const E: &str = "fetch attribute";
    // Longest names first so that "BODY" does not match "BODYSTRUCTURE".
    for name in [
        "ENVELOPE",
        "FLAGS",
        "INTERNALDATE",
        "RFC822.HEADER",
        "RFC822.TEXT",
        "RFC822.SIZE",
        "RFC822",
        "BODYSTRUCTURE",
        "UID",
        "MODSEQ",
    ] {
        if p.keyword(name) {
            return Ok(simple(name));
        }
    }
    if p.prefix("BINARY.SIZE") {
        let part = section_binary(p)?;
        return Ok(FetchAttr {
            name: "BINARY.SIZE",
            section: Some(Section { part, text: None }),
            partial: None,
            peek: false,
        });
    }
    if p.prefix("BINARY") {
        let peek = p.prefix(".PEEK");
        let part = section_binary(p)?;
        let partial = partial(p)?;
        return Ok(FetchAttr {
            name: "BINARY",
            section: Some(Section { part, text: None }),
            partial,
            peek,
        });
    }
    if p.prefix("BODY") {
        let peek = p.prefix(".PEEK");
        if !peek && p.peek() != Some(b'[') {
            if p.peek().is_some_and(super::args::is_atom_char) {
                p.pos -= 4;
                return p.err(E);
            }
            return Ok(simple("BODY"));
        }
        let section = section(p)?;
        let partial = partial(p)?;
        return Ok(FetchAttr {
            name: "BODY",
            section: Some(section),
            partial,
            peek,
        });
    }
    p.err(E)
}

/// `partial = "<" number64 "." nz-number64 ">"`
fn partial(p: &mut Parser<'_>) -> PResult<Option<(u64, u64)>> {
    if p.peek() != Some(b'<') {
        return Ok(None);
    }
    p.pos += 1;
    let start = p.number(i64::MAX as u64, "partial start")?;
    p.byte(b'.', "partial <start.length>")?;
    let s = p.pos;
    let len = p.number(i64::MAX as u64, "partial length")?;
    if len == 0 {
        p.pos = s;
        return p.err("non-zero partial length");
    }
    p.byte(b'>', "> closing the partial")?;
    Ok(Some((start, len)))
}

/// `section-part = nz-number *("." nz-number)`, stopping before a text part.
fn section_part(p: &mut Parser<'_>) -> PResult<Vec<u32>> {
    let mut part = Vec::new();
    while p.peek().is_some_and(|b| b.is_ascii_digit()) {
        if part.len() >= p.limits.max_depth {
            return p.err("fewer section part numbers");
        }
        part.push(p.nz_number("section part number")?);
        if p.peek() == Some(b'.') && p.data.get(p.pos + 1).is_some_and(u8::is_ascii_digit) {
            p.pos += 1;
        } else {
            break;
        }
    }
    Ok(part)
}

/// `section-binary = "[" [section-part] "]"`
fn section_binary(p: &mut Parser<'_>) -> PResult<Vec<u32>> {
    p.byte(b'[', "[ section ]")?;
    let part = section_part(p)?;
    p.byte(b']', "] closing the section")?;
    Ok(part)
}

fn section(p: &mut Parser<'_>) -> PResult<Section> {
    p.byte(b'[', "[ section ]")?;
    let part = section_part(p)?;
    if p.peek() == Some(b']') {
        p.pos += 1;
        return Ok(Section { part, text: None });
    }
    if !part.is_empty() {
        p.byte(b'.', ". before the section text")?;
    }
    let text = if p.prefix("HEADER.FIELDS.NOT") {
        p.sp()?;
        SectionText::HeaderFieldsNot(header_list(p)?)
    } else if p.prefix("HEADER.FIELDS") {
        p.sp()?;
        SectionText::HeaderFields(header_list(p)?)
    } else if p.prefix("HEADER") {
        SectionText::Header
    } else if p.prefix("TEXT") {
        SectionText::Text
    } else if !part.is_empty() && p.prefix("MIME") {
        SectionText::Mime
    } else {
        return p.err("HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT or MIME");
    };
    p.byte(b']', "] closing the section")?;
    Ok(Section {
        part,
        text: Some(text),
    })
}

/// `header-list = "(" header-fld-name *(SP header-fld-name) ")"`
fn header_list(p: &mut Parser<'_>) -> PResult<Vec<String>> {
    p.list_of("header field list", false, |p| {
        let s = p.pos;
        let name = p.astring("header field name")?;
        let name = p.utf8(s, name, "header field name")?;
        Ok(name.to_ascii_uppercase())
    })
}
