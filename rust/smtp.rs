//! SMTP envelope grammar: the arguments of MAIL FROM and RCPT TO.
//!
//! The caller (the sans-IO server machine) has already recognised the command
//! verb and hands over the bytes after `MAIL FROM:` / `RCPT TO:`. What comes
//! back is the mailbox as text (empty for the null reverse-path `<>`), with any
//! source route dropped as RFC 5321 section 4.1.1.3 / appendix C allows, and
//! the ESMTP parameters as `(KEYWORD, value)` pairs with the keyword upper-cased.
//!
//! Everything is bounded by RFC 5321 section 4.5.3.1: local part 64 octets,
//! domain 255, path 256. UTF-8 in addresses and parameter values is accepted
//! only when the session negotiated SMTPUTF8 (RFC 6531); otherwise the error's
//! `expected` text is [`EXPECTED_ASCII`] so the server can answer 553 5.6.7.
//! Errors in the parameters carry an `expected` text that starts with
//! [`PARAM_PREFIX`], so the server can answer 501 5.5.4 instead of 5.1.x.

use std::net::Ipv6Addr;
use std::str::FromStr;

use crate::error::CoreError;

/// `expected` text of the error raised for non-ASCII without SMTPUTF8.
pub const EXPECTED_ASCII: &str = "ASCII (UTF-8 needs SMTPUTF8)";
/// Prefix of the `expected` text of every error inside the ESMTP parameters.
pub const PARAM_PREFIX: &str = "esmtp-param";

/// RFC 5321 4.5.3.1.1: the maximum total length of a user name or other local-part is 64 octets.
pub const MAX_LOCAL_PART: usize = 64;
/// RFC 5321 4.5.3.1.2: the maximum total length of a domain name or number is 255 octets.
pub const MAX_DOMAIN: usize = 255;
/// RFC 5321 4.5.3.1.3: the maximum total length of a reverse-path or forward-path is 256
/// octets (including the punctuation and element separators).
pub const MAX_PATH: usize = 256;

/// A parsed MAIL FROM or RCPT TO argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopePath {
    /// `local@domain`, `Postmaster`, or empty for the null reverse-path.
    pub address: String,
    /// ESMTP parameters in order, keyword upper-cased, value as sent.
    pub params: Vec<(String, Option<String>)>,
}

struct Cursor<'a> {
    input: &'a [u8],
    pos: usize,
    /// Offset of the first byte >= 0x80, if any, for the SMTPUTF8 check.
    first_non_ascii: Option<usize>,
}

fn syntax(offset: usize, expected: &'static str) -> CoreError {
    CoreError::Syntax { offset, expected }
}

fn is_atext(b: u8) -> bool {
    // RFC 5322 atext: ALPHA / DIGIT / "!#$%&'*+-/=?^_`{|}~"
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

impl<'a> Cursor<'a> {
    fn new(input: &'a [u8]) -> Self {
        Cursor {
            input,
            pos: 0,
            first_non_ascii: None,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, b: u8, expected: &'static str) -> Result<(), CoreError> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(syntax(self.pos, expected))
        }
    }

    /// Consume one UTF8-non-ascii character (RFC 6531 / RFC 3629) if one starts here.
    fn utf8_non_ascii(&mut self) -> Result<bool, CoreError> {
        let Some(b) = self.peek() else {
            return Ok(false);
        };
        if b < 0x80 {
            return Ok(false);
        }
        let start = self.pos;
        let width = match b {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => return Err(syntax(start, "UTF-8")),
        };
        let end = start + width;
        let chunk = self.input.get(start..end).ok_or(syntax(start, "UTF-8"))?;
        if std::str::from_utf8(chunk).is_err() {
            return Err(syntax(start, "UTF-8"));
        }
        self.first_non_ascii.get_or_insert(start);
        self.pos = end;
        Ok(true)
    }

    // Dot-string = Atom *("."  Atom)
    // Atom       = 1*atext          ; RFC 6531: atext =/ UTF8-non-ascii
    fn dot_string(&mut self) -> Result<(), CoreError> {
        loop {
            let start = self.pos;
            loop {
                match self.peek() {
                    Some(b) if is_atext(b) => self.pos += 1,
                    Some(b) if b >= 0x80 => {
                        self.utf8_non_ascii()?;
                    }
                    _ => break,
                }
            }
            if self.pos == start {
                return Err(syntax(self.pos, "atext"));
            }
            if !self.eat(b'.') {
                return Ok(());
            }
        }
    }

    // Quoted-string   = DQUOTE *QcontentSMTP DQUOTE
    // QcontentSMTP    = qtextSMTP / quoted-pairSMTP
    // quoted-pairSMTP = %d92 %d32-126
    // qtextSMTP       = %d32-33 / %d35-91 / %d93-126   ; RFC 6531: =/ UTF8-non-ascii
    fn quoted_string(&mut self) -> Result<(), CoreError> {
        self.expect(b'"', "DQUOTE")?;
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(32..=126) => self.pos += 1,
                        _ => return Err(syntax(self.pos, "printable ASCII after backslash")),
                    }
                }
                Some(32..=126) => self.pos += 1,
                Some(b) if b >= 0x80 => {
                    self.utf8_non_ascii()?;
                }
                _ => return Err(syntax(self.pos, "qtextSMTP or DQUOTE")),
            }
        }
    }

    // Domain     = sub-domain *("." sub-domain)
    // sub-domain = Let-dig [Ldh-str]        ; RFC 6531: sub-domain =/ U-label
    // Let-dig    = ALPHA / DIGIT
    // Ldh-str    = *( ALPHA / DIGIT / "-" ) Let-dig
    fn domain(&mut self) -> Result<(), CoreError> {
        loop {
            let start = self.pos;
            let mut last = 0u8;
            loop {
                match self.peek() {
                    Some(b) if b.is_ascii_alphanumeric() || b == b'-' => {
                        if self.pos == start && b == b'-' {
                            return Err(syntax(self.pos, "letter or digit"));
                        }
                        last = b;
                        self.pos += 1;
                    }
                    Some(b) if b >= 0x80 => {
                        self.utf8_non_ascii()?;
                        last = b'a';
                    }
                    _ => break,
                }
            }
            if self.pos == start {
                return Err(syntax(self.pos, "domain label"));
            }
            if last == b'-' {
                return Err(syntax(self.pos - 1, "letter or digit at end of label"));
            }
            if !self.eat(b'.') {
                return Ok(());
            }
        }
    }

    // address-literal = "[" ( IPv4-address-literal / IPv6-address-literal /
    //                         General-address-literal ) "]"
    // IPv4-address-literal = Snum 3("."  Snum)
    // IPv6-address-literal = "IPv6:" IPv6-addr
    // General-address-literal = Standardized-tag ":" 1*dcontent
    // Standardized-tag = Ldh-str
    // dcontent = %d33-90 / %d94-126
    // Snum = 1*3DIGIT  ; representing a decimal integer value in the range 0 through 255
    fn address_literal(&mut self) -> Result<(), CoreError> {
        let open = self.pos;
        self.expect(b'[', "[")?;
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b == b']' {
                break;
            }
            if !(33..=126).contains(&b) || b == b'[' || b == b'\\' {
                return Err(syntax(self.pos, "dcontent or ]"));
            }
            self.pos += 1;
        }
        let end = self.pos;
        self.expect(b']', "]")?;
        let body = &self.input[start..end];
        if body.is_empty() {
            return Err(syntax(start, "address literal"));
        }
        if body.len() > 5 && body[..5].eq_ignore_ascii_case(b"IPv6:") {
            let text = std::str::from_utf8(&body[5..]).map_err(|_| syntax(start, "IPv6-addr"))?;
            Ipv6Addr::from_str(text).map_err(|_| syntax(start + 5, "IPv6-addr"))?;
            return Ok(());
        }
        if body[0].is_ascii_digit() {
            let mut parts = 0;
            for snum in body.split(|&b| b == b'.') {
                parts += 1;
                let ok = (1..=3).contains(&snum.len())
                    && snum.iter().all(u8::is_ascii_digit)
                    && snum.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')) <= 255;
                if !ok {
                    return Err(syntax(start, "IPv4 address (Snum 3(\".\" Snum))"));
                }
            }
            if parts != 4 {
                return Err(syntax(start, "IPv4 address (Snum 3(\".\" Snum))"));
            }
            return Ok(());
        }
        // General-address-literal: a tag, a colon, then dcontent.
        let colon = body
            .iter()
            .position(|&b| b == b':')
            .ok_or(syntax(open, "IPv4, IPv6: or tagged address literal"))?;
        let tag = &body[..colon];
        let tag_ok = !tag.is_empty()
            && tag.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
            && tag.last().is_some_and(u8::is_ascii_alphanumeric);
        if !tag_ok || colon + 1 == body.len() {
            return Err(syntax(start, "Standardized-tag \":\" 1*dcontent"));
        }
        Ok(())
    }

    // Mailbox = Local-part "@" ( Domain / address-literal )
    // Local-part = Dot-string / Quoted-string
    fn mailbox(&mut self) -> Result<(), CoreError> {
        let local_start = self.pos;
        if self.peek() == Some(b'"') {
            self.quoted_string()?;
        } else {
            self.dot_string()?;
        }
        if self.pos - local_start > MAX_LOCAL_PART {
            return Err(CoreError::TooLong {
                offset: local_start,
                limit: MAX_LOCAL_PART,
            });
        }
        self.expect(b'@', "@")?;
        let domain_start = self.pos;
        if self.peek() == Some(b'[') {
            self.address_literal()?;
        } else {
            self.domain()?;
        }
        if self.pos - domain_start > MAX_DOMAIN {
            return Err(CoreError::TooLong {
                offset: domain_start,
                limit: MAX_DOMAIN,
            });
        }
        Ok(())
    }

    // A-d-l     = At-domain *( "," At-domain )
    // At-domain = "@" Domain
    fn source_route(&mut self) -> Result<(), CoreError> {
        loop {
            self.expect(b'@', "@")?;
            self.domain()?;
            if !self.eat(b',') {
                return self.expect(b':', "\":\" after source route");
            }
        }
    }

    /// Parse `"<" [ A-d-l ":" ] Mailbox ">"` (or `<>` / `<Postmaster>` when allowed)
    /// and return the mailbox as written.
    fn path(&mut self, allow_null: bool, allow_postmaster: bool) -> Result<String, CoreError> {
        let open = self.pos;
        self.expect(b'<', "\"<\"")?;
        if allow_null && self.eat(b'>') {
            return Ok(String::new());
        }
        if allow_postmaster {
            let rest = &self.input[self.pos..];
            if rest.len() >= 11 && rest[..11].eq_ignore_ascii_case(b"postmaster>") {
                let name = String::from_utf8_lossy(&rest[..10]).into_owned();
                self.pos += 11;
                return Ok(name);
            }
        }
        if self.peek() == Some(b'@') {
            self.source_route()?;
        }
        let start = self.pos;
        self.mailbox()?;
        let end = self.pos;
        self.expect(b'>', "\">\"")?;
        if self.pos - open > MAX_PATH {
            return Err(CoreError::TooLong {
                offset: open,
                limit: MAX_PATH,
            });
        }
        let text =
            std::str::from_utf8(&self.input[start..end]).map_err(|_| syntax(start, "UTF-8"))?;
        Ok(text.to_owned())
    }

    // Mail-parameters = esmtp-param *(SP esmtp-param)
    // esmtp-param     = esmtp-keyword ["=" esmtp-value]
    // esmtp-keyword   = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
    // esmtp-value     = 1*(%d33-60 / %d62-126)   ; RFC 6531: =/ UTF8-non-ascii
    fn params(&mut self) -> Result<Vec<(String, Option<String>)>, CoreError> {
        let mut out: Vec<(String, Option<String>)> = Vec::new();
        loop {
            // RFC 5321 asks for one SP; several are tolerated, as by Postfix.
            let mut spaces = 0;
            while self.eat(b' ') {
                spaces += 1;
            }
            if self.peek().is_none() {
                return Ok(out);
            }
            if spaces == 0 {
                return Err(syntax(self.pos, "esmtp-param: SP between parameters"));
            }
            let kw_start = self.pos;
            match self.peek() {
                Some(b) if b.is_ascii_alphanumeric() => self.pos += 1,
                _ => return Err(syntax(self.pos, "esmtp-param: keyword")),
            }
            while matches!(self.peek(), Some(b) if b.is_ascii_alphanumeric() || b == b'-') {
                self.pos += 1;
            }
            let keyword =
                String::from_utf8_lossy(&self.input[kw_start..self.pos]).to_ascii_uppercase();
            let value = if self.eat(b'=') {
                let v_start = self.pos;
                loop {
                    match self.peek() {
                        Some(b) if (33..=126).contains(&b) && b != b'=' => self.pos += 1,
                        Some(b) if b >= 0x80 => {
                            self.utf8_non_ascii()?;
                        }
                        _ => break,
                    }
                }
                if self.pos == v_start {
                    return Err(syntax(self.pos, "esmtp-param: value after \"=\""));
                }
                let text = std::str::from_utf8(&self.input[v_start..self.pos])
                    .map_err(|_| syntax(v_start, "esmtp-param: UTF-8 value"))?;
                Some(text.to_owned())
            } else {
                None
            };
            match self.peek() {
                None | Some(b' ') => {}
                Some(_) => return Err(syntax(self.pos, "esmtp-param: SP or end of line")),
            }
            if out.iter().any(|(k, _)| *k == keyword) {
                return Err(syntax(kw_start, "esmtp-param: each keyword once"));
            }
            out.push((keyword, value));
        }
    }
}

fn skip_leading_spaces(c: &mut Cursor<'_>) {
    // RFC 5321 has no space after the colon, but section 4.1.1.2's examples were
    // widely copied with one ("MAIL FROM: <a@b>"); Postfix and aiosmtpd accept it.
    while c.eat(b' ') {}
}

/// Parse the argument of `MAIL FROM:`.
///
/// ```text
/// mail         = "MAIL FROM:" Reverse-path [SP Mail-parameters] CRLF
/// Reverse-path = Path / "<>"
/// Path         = "<" [ A-d-l ":" ] Mailbox ">"
/// ```
///
/// A non-ASCII address or parameter value is accepted only when
/// `smtputf8_allowed` (the server offers SMTPUTF8) and the command carries
/// the `SMTPUTF8` parameter (RFC 6531 section 3.4).
pub fn parse_mail_from(arg: &[u8], smtputf8_allowed: bool) -> Result<EnvelopePath, CoreError> {
    let mut c = Cursor::new(arg);
    skip_leading_spaces(&mut c);
    let address = c.path(true, false)?;
    let params = c.params()?;
    let utf8_ok = smtputf8_allowed && params.iter().any(|(k, _)| k == "SMTPUTF8");
    if let Some(offset) = c.first_non_ascii {
        if !utf8_ok {
            return Err(syntax(offset, EXPECTED_ASCII));
        }
    }
    Ok(EnvelopePath { address, params })
}

/// Parse the argument of `RCPT TO:`.
///
/// ```text
/// rcpt         = "RCPT TO:" ( "<Postmaster@" Domain ">" / "<Postmaster>" /
///                Forward-path ) [SP Rcpt-parameters] CRLF
/// Forward-path = Path
/// ```
///
/// `smtputf8` says whether the transaction's MAIL command carried SMTPUTF8.
pub fn parse_rcpt_to(arg: &[u8], smtputf8: bool) -> Result<EnvelopePath, CoreError> {
    let mut c = Cursor::new(arg);
    skip_leading_spaces(&mut c);
    let address = c.path(false, true)?;
    let params = c.params()?;
    if let Some(offset) = c.first_non_ascii {
        if !smtputf8 {
            return Err(syntax(offset, EXPECTED_ASCII));
        }
    }
    Ok(EnvelopePath { address, params })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(address: &str, params: &[(&str, Option<&str>)]) -> EnvelopePath {
        EnvelopePath {
            address: address.to_owned(),
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
                .collect(),
        }
    }

    #[test]
    fn mail_from_table() {
        let long_local = format!("<{}@x.org>", "a".repeat(65));
        let long_domain = format!("<a@{}.org>", "b".repeat(252));
        let long_path = format!("<{}@{}>", "a".repeat(60), vec!["c".repeat(50); 4].join("."));
        let cases: Vec<(&[u8], bool, Result<EnvelopePath, CoreError>)> = vec![
            (b"<a@b.org>", false, Ok(p("a@b.org", &[]))),
            (b"<>", false, Ok(p("", &[]))),
            (b" <a@b.org>", false, Ok(p("a@b.org", &[]))),
            (
                b"<a.b+tag@sub.example.com> SIZE=1000 BODY=8BITMIME",
                false,
                Ok(p(
                    "a.b+tag@sub.example.com",
                    &[("SIZE", Some("1000")), ("BODY", Some("8BITMIME"))],
                )),
            ),
            (
                b"<> ret=hdrs envid=QQ+2Bx",
                false,
                Ok(p("", &[("RET", Some("hdrs")), ("ENVID", Some("QQ+2Bx"))])),
            ),
            (
                b"<\"john doe\"@x.org>",
                false,
                Ok(p("\"john doe\"@x.org", &[])),
            ),
            (b"<\"a\\\"b\"@x.org>", false, Ok(p("\"a\\\"b\"@x.org", &[]))),
            (b"<a@[192.0.2.1]>", false, Ok(p("a@[192.0.2.1]", &[]))),
            (
                b"<a@[IPv6:2001:db8::1]>",
                false,
                Ok(p("a@[IPv6:2001:db8::1]", &[])),
            ),
            (
                b"<a@[IPv6:::ffff:192.0.2.1]>",
                false,
                Ok(p("a@[IPv6:::ffff:192.0.2.1]", &[])),
            ),
            (b"<a@[x-tag:stuff]>", false, Ok(p("a@[x-tag:stuff]", &[]))),
            (
                b"<@relay.one,@relay.two:user@final.org>",
                false,
                Ok(p("user@final.org", &[])),
            ),
            (
                b"<a@b> SMTPUTF8",
                false,
                Ok(p("a@b", &[("SMTPUTF8", None)])),
            ),
            (
                "<jos\u{e9}@b.org> SMTPUTF8".as_bytes(),
                true,
                Ok(p("jos\u{e9}@b.org", &[("SMTPUTF8", None)])),
            ),
            (
                "<a@b\u{fc}cher.de> SMTPUTF8".as_bytes(),
                true,
                Ok(p("a@b\u{fc}cher.de", &[("SMTPUTF8", None)])),
            ),
            // errors in the path
            (b"a@b.org", false, Err(syntax(0, "\"<\""))),
            (b"<a@b.org", false, Err(syntax(8, "\">\""))),
            (
                b"<a@b.org>x",
                false,
                Err(syntax(9, "esmtp-param: SP between parameters")),
            ),
            (
                b"<@b.org>",
                false,
                Err(syntax(7, "\":\" after source route")),
            ),
            (b"<a>", false, Err(syntax(2, "@"))),
            (b"<a@>", false, Err(syntax(3, "domain label"))),
            (b"<a..b@x>", false, Err(syntax(3, "atext"))),
            (b"<.a@x>", false, Err(syntax(1, "atext"))),
            (b"<a@-x.org>", false, Err(syntax(3, "letter or digit"))),
            (
                b"<a@x-.org>",
                false,
                Err(syntax(4, "letter or digit at end of label")),
            ),
            (b"<a@x..org>", false, Err(syntax(5, "domain label"))),
            (
                b"<a@[300.1.1.1]>",
                false,
                Err(syntax(4, "IPv4 address (Snum 3(\".\" Snum))")),
            ),
            (
                b"<a@[1.2.3]>",
                false,
                Err(syntax(4, "IPv4 address (Snum 3(\".\" Snum))")),
            ),
            (b"<a@[IPv6:zz::1]>", false, Err(syntax(9, "IPv6-addr"))),
            (
                b"<a@[foo]>",
                false,
                Err(syntax(3, "IPv4, IPv6: or tagged address literal")),
            ),
            (
                b"<\"a\x01\"@x>",
                false,
                Err(syntax(3, "qtextSMTP or DQUOTE")),
            ),
            (b"<a\x00b@x>", false, Err(syntax(2, "@"))),
            (b"<a\rb@x>", false, Err(syntax(2, "@"))),
            (b"<Postmaster>", false, Err(syntax(11, "@"))),
            (
                "<jos\u{e9}@b.org>".as_bytes(),
                true,
                Err(syntax(4, EXPECTED_ASCII)),
            ),
            (
                "<jos\u{e9}@b.org> SMTPUTF8".as_bytes(),
                false,
                Err(syntax(4, EXPECTED_ASCII)),
            ),
            (b"<a\xff@b.org> SMTPUTF8", true, Err(syntax(2, "UTF-8"))),
            (b"<a\xc3@b.org> SMTPUTF8", true, Err(syntax(2, "UTF-8"))),
            (
                long_local.as_bytes(),
                false,
                Err(CoreError::TooLong {
                    offset: 1,
                    limit: 64,
                }),
            ),
            (
                long_domain.as_bytes(),
                false,
                Err(CoreError::TooLong {
                    offset: 3,
                    limit: 255,
                }),
            ),
            (
                long_path.as_bytes(),
                false,
                Err(CoreError::TooLong {
                    offset: 0,
                    limit: 256,
                }),
            ),
            // errors in the parameters
            (b"<a@b> =x", false, Err(syntax(6, "esmtp-param: keyword"))),
            (
                b"<a@b> SIZE=",
                false,
                Err(syntax(11, "esmtp-param: value after \"=\"")),
            ),
            (
                b"<a@b> SIZE=1=2",
                false,
                Err(syntax(12, "esmtp-param: SP or end of line")),
            ),
            (
                b"<a@b> SIZE=1 size=2",
                false,
                Err(syntax(13, "esmtp-param: each keyword once")),
            ),
            (
                b"<a@b> X=\x01",
                false,
                Err(syntax(8, "esmtp-param: value after \"=\"")),
            ),
        ];
        for (input, utf8, want) in cases {
            assert_eq!(
                parse_mail_from(input, utf8),
                want,
                "input {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn rcpt_to_table() {
        let cases: Vec<(&[u8], bool, Result<EnvelopePath, CoreError>)> = vec![
            (b"<b@y.org>", false, Ok(p("b@y.org", &[]))),
            (b"<Postmaster>", false, Ok(p("Postmaster", &[]))),
            (b"<postmaster>", false, Ok(p("postmaster", &[]))),
            (b"<Postmaster@y.org>", false, Ok(p("Postmaster@y.org", &[]))),
            (
                b"<b@y.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@y.org",
                false,
                Ok(p(
                    "b@y.org",
                    &[
                        ("NOTIFY", Some("SUCCESS,FAILURE")),
                        ("ORCPT", Some("rfc822;b@y.org")),
                    ],
                )),
            ),
            (
                "<\u{fc}ser@y.org>".as_bytes(),
                true,
                Ok(p("\u{fc}ser@y.org", &[])),
            ),
            (
                "<\u{fc}ser@y.org>".as_bytes(),
                false,
                Err(syntax(1, EXPECTED_ASCII)),
            ),
            (b"<>", false, Err(syntax(1, "atext"))),
            (b"", false, Err(syntax(0, "\"<\""))),
        ];
        for (input, utf8, want) in cases {
            assert_eq!(
                parse_rcpt_to(input, utf8),
                want,
                "input {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn every_prefix_of_a_valid_path_fails_cleanly() {
        let full: &[u8] = b"<@r.example,@s.example:\"q u\"@[IPv6:2001:db8::1]> SIZE=10 SMTPUTF8";
        assert!(parse_mail_from(full, true).is_ok());
        for cut in 0..full.len() {
            let _ = parse_mail_from(&full[..cut], true);
            let _ = parse_rcpt_to(&full[..cut], true);
        }
    }
}
