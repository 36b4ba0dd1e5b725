//! SEARCH keys (RFC 9051 section 6.4.4 and section 9, RFC 3501, RFC 5182).
//!
//! ```text
//! search-key      = "ALL" / "ANSWERED" / "BCC" SP astring /
//!                   "BEFORE" SP date / "BODY" SP astring /
//!                   "CC" SP astring / "DELETED" / "FLAGGED" /
//!                   "FROM" SP astring / "KEYWORD" SP flag-keyword /
//!                   "NEW" / "OLD" / "ON" SP date / "RECENT" / "SEEN" /
//!                   "SINCE" SP date / "SUBJECT" SP astring /
//!                   "TEXT" SP astring / "TO" SP astring /
//!                   "UNANSWERED" / "UNDELETED" / "UNFLAGGED" /
//!                   "UNKEYWORD" SP flag-keyword / "UNSEEN" /
//!                   "DRAFT" / "HEADER" SP header-fld-name SP astring /
//!                   "LARGER" SP number64 / "NOT" SP search-key /
//!                   "OR" SP search-key SP search-key /
//!                   "SENTBEFORE" SP date / "SENTON" SP date /
//!                   "SENTSINCE" SP date / "SMALLER" SP number64 /
//!                   "UID" SP sequence-set / "UNDRAFT" / sequence-set /
//!                   "(" search-key *(SP search-key) ")"
//! ```
//!
//! NEW is returned as `RECENT UNSEEN`, OLD as `NOT RECENT` in flag form.
//! Recursion is bounded by `CommandLimits::max_depth`.

use super::args::{Date, PResult, Parser};
use super::sequence::SequenceSet;

/// Which date a date key compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateField {
    /// INTERNALDATE (BEFORE, ON, SINCE).
    Internal,
    /// The Date: header (SENTBEFORE, SENTON, SENTSINCE).
    Sent,
}

/// How a date key compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Before,
    On,
    Since,
}

/// Where a substring is looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextField {
    Bcc,
    Body,
    Cc,
    From,
    Subject,
    Text,
    To,
}

/// A search key tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    All,
    /// Messages with (`set`) or without the flag.
    Flag {
        flag: String,
        set: bool,
    },
    Date {
        field: DateField,
        when: When,
        date: Date,
    },
    /// LARGER (`larger`) or SMALLER than `size` octets.
    Size {
        larger: bool,
        size: u64,
    },
    Text {
        field: TextField,
        value: Vec<u8>,
    },
    Header {
        name: String,
        value: Vec<u8>,
    },
    Sequence(SequenceSet),
    Uid(SequenceSet),
    Not(Box<SearchKey>),
    Or(Box<SearchKey>, Box<SearchKey>),
    And(Vec<SearchKey>),
}

fn flag(name: &str, set: bool) -> SearchKey {
    SearchKey::Flag {
        flag: name.to_string(),
        set,
    }
}

/// `search-key *(SP search-key)` up to the end of the command.
pub(crate) fn search_program(p: &mut Parser<'_>) -> PResult<SearchKey> {
    let mut keys = vec![search_key(p, 1)?];
    while p.peek() == Some(b' ') {
        p.pos += 1;
        keys.push(search_key(p, 1)?);
    }
    Ok(if keys.len() == 1 {
        keys.swap_remove(0)
    } else {
        SearchKey::And(keys)
    })
}

fn search_key(p: &mut Parser<'_>, depth: usize) -> PResult<SearchKey> {
    const E: &str = "search key";
    if depth > p.limits.max_depth {
        return p.err("less deeply nested search keys");
    }
    match p.peek() {
        Some(b'(') => {
            p.open(E, depth)?;
            let mut keys = vec![search_key(p, depth + 1)?];
            while p.peek() == Some(b' ') {
                p.pos += 1;
                keys.push(search_key(p, depth + 1)?);
            }
            p.byte(b')', "SP or )")?;
            return Ok(if keys.len() == 1 {
                keys.swap_remove(0)
            } else {
                SearchKey::And(keys)
            });
        }
        Some(b'0'..=b'9' | b'*' | b'$') => return Ok(SearchKey::Sequence(p.sequence_set()?)),
        _ => {}
    }
    let start = p.pos;
    let name = p.atom_upper(E)?;
    let text = |p: &mut Parser<'_>, field| -> PResult<SearchKey> {
        p.sp()?;
        Ok(SearchKey::Text {
            field,
            value: p.astring("search string")?,
        })
    };
    let date = |p: &mut Parser<'_>, field, when| -> PResult<SearchKey> {
        p.sp()?;
        Ok(SearchKey::Date {
            field,
            when,
            date: p.date()?,
        })
    };
    Ok(match name.as_str() {
        "ALL" => SearchKey::All,
        "ANSWERED" => flag("\\Answered", true),
        "DELETED" => flag("\\Deleted", true),
        "FLAGGED" => flag("\\Flagged", true),
        "SEEN" => flag("\\Seen", true),
        "DRAFT" => flag("\\Draft", true),
        "RECENT" => flag("\\Recent", true),
        "UNANSWERED" => flag("\\Answered", false),
        "UNDELETED" => flag("\\Deleted", false),
        "UNFLAGGED" => flag("\\Flagged", false),
        "UNSEEN" => flag("\\Seen", false),
        "UNDRAFT" => flag("\\Draft", false),
        "OLD" => flag("\\Recent", false),
        "NEW" => SearchKey::And(vec![flag("\\Recent", true), flag("\\Seen", false)]),
        "KEYWORD" | "UNKEYWORD" => {
            p.sp()?;
            let s = p.pos;
            let k = p.atom("flag keyword")?;
            let k = p.utf8(s, k.to_vec(), "flag keyword")?;
            SearchKey::Flag {
                flag: k,
                set: name == "KEYWORD",
            }
        }
        "BCC" => text(p, TextField::Bcc)?,
        "BODY" => text(p, TextField::Body)?,
        "CC" => text(p, TextField::Cc)?,
        "FROM" => text(p, TextField::From)?,
        "SUBJECT" => text(p, TextField::Subject)?,
        "TEXT" => text(p, TextField::Text)?,
        "TO" => text(p, TextField::To)?,
        "BEFORE" => date(p, DateField::Internal, When::Before)?,
        "ON" => date(p, DateField::Internal, When::On)?,
        "SINCE" => date(p, DateField::Internal, When::Since)?,
        "SENTBEFORE" => date(p, DateField::Sent, When::Before)?,
        "SENTON" => date(p, DateField::Sent, When::On)?,
        "SENTSINCE" => date(p, DateField::Sent, When::Since)?,
        "LARGER" | "SMALLER" => {
            p.sp()?;
            SearchKey::Size {
                larger: name == "LARGER",
                size: p.number(i64::MAX as u64, "size in octets")?,
            }
        }
        "HEADER" => {
            p.sp()?;
            let s = p.pos;
            let n = p.astring("header field name")?;
            let name = p.utf8(s, n, "header field name")?;
            p.sp()?;
            SearchKey::Header {
                name,
                value: p.astring("search string")?,
            }
        }
        "UID" => {
            p.sp()?;
            SearchKey::Uid(p.sequence_set()?)
        }
        "NOT" => {
            p.sp()?;
            SearchKey::Not(Box::new(search_key(p, depth + 1)?))
        }
        "OR" => {
            p.sp()?;
            let a = search_key(p, depth + 1)?;
            p.sp()?;
            let b = search_key(p, depth + 1)?;
            SearchKey::Or(Box::new(a), Box::new(b))
        }
        _ => {
            p.pos = start;
            return p.err(E);
        }
    })
}
