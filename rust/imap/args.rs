//! IMAP argument types (RFC 9051 section 9): atoms, strings, literals,
//! mailbox names, flags, sequence sets, dates; the cursor every command
//! parser runs on.

use crate::error::CoreError;

use super::command::CommandLimits;
use super::sequence::{SeqNumber, SequenceSet};

/// A calendar date (`date-day "-" date-month "-" date-year`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

/// An APPEND date-time: a date, a time, and the zone offset in minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    pub date: Date,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub zone_minutes: i16,
}

/// Recursive-descent cursor over one command.
pub(crate) struct Parser<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) pos: usize,
    pub(crate) limits: CommandLimits,
}

pub(crate) type PResult<T> = Result<T, CoreError>;

/// `ATOM-CHAR = <any CHAR except atom-specials>`;
/// `atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards /
///                  quoted-specials / resp-specials`.
pub(crate) fn is_atom_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// `ASTRING-CHAR = ATOM-CHAR / resp-specials`.
pub(crate) fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// `list-char = ATOM-CHAR / list-wildcards / resp-specials`.
pub(crate) fn is_list_char(b: u8) -> bool {
    is_astring_char(b) || b == b'%' || b == b'*'
}

impl<'a> Parser<'a> {
    pub(crate) fn err<T>(&self, expected: &'static str) -> PResult<T> {
        Err(CoreError::Syntax {
            offset: self.pos,
            expected,
        })
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    pub(crate) fn byte(&mut self, b: u8, expected: &'static str) -> PResult<()> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            self.err(expected)
        }
    }

    pub(crate) fn sp(&mut self) -> PResult<()> {
        self.byte(b' ', "SP")
    }

    /// Consume `word` (ASCII, case-insensitive) if it is next and is not the
    /// start of a longer atom.
    pub(crate) fn keyword(&mut self, word: &str) -> bool {
        let end = self.pos + word.len();
        match self.data.get(self.pos..end) {
            Some(s) if s.eq_ignore_ascii_case(word.as_bytes()) => {
                if self.data.get(end).is_some_and(|&b| is_atom_char(b)) {
                    return false;
                }
                self.pos = end;
                true
            }
            _ => false,
        }
    }

    /// Consume the exact (case-insensitive) bytes `word`, whatever follows.
    pub(crate) fn prefix(&mut self, word: &str) -> bool {
        let end = self.pos + word.len();
        match self.data.get(self.pos..end) {
            Some(s) if s.eq_ignore_ascii_case(word.as_bytes()) => {
                self.pos = end;
                true
            }
            _ => false,
        }
    }

    pub(crate) fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        &self.data[start..self.pos]
    }

    /// `atom = 1*ATOM-CHAR`
    pub(crate) fn atom(&mut self, expected: &'static str) -> PResult<&'a [u8]> {
        let a = self.take_while(is_atom_char);
        if a.is_empty() {
            return self.err(expected);
        }
        Ok(a)
    }

    pub(crate) fn atom_upper(&mut self, expected: &'static str) -> PResult<String> {
        Ok(String::from_utf8_lossy(self.atom(expected)?).to_ascii_uppercase())
    }

    /// `number = 1*DIGIT` (unsigned 32-bit); `number64` with `max` = i63.
    pub(crate) fn number(&mut self, max: u64, expected: &'static str) -> PResult<u64> {
        let start = self.pos;
        let digits = self.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() || digits.len() > 19 {
            self.pos = start;
            return self.err(expected);
        }
        let n = digits.iter().fold(0u64, |n, &d| {
            n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        });
        if n > max {
            self.pos = start;
            return self.err(expected);
        }
        Ok(n)
    }

    /// `nz-number = digit-nz *DIGIT`
    pub(crate) fn nz_number(&mut self, expected: &'static str) -> PResult<u32> {
        let start = self.pos;
        let n = self.number(u64::from(u32::MAX), expected)?;
        if n == 0 {
            self.pos = start;
            return self.err(expected);
        }
        Ok(n as u32)
    }

    /// ```text
    /// quoted          = DQUOTE *QUOTED-CHAR DQUOTE
    /// QUOTED-CHAR     = <any TEXT-CHAR except quoted-specials> /
    ///                   "\" quoted-specials / UTF8-2 / UTF8-3 / UTF8-4
    /// ```
    pub(crate) fn quoted(&mut self, expected: &'static str) -> PResult<Vec<u8>> {
        self.byte(b'"', expected)?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(b @ (b'"' | b'\\')) => {
                            out.push(b);
                            self.pos += 1;
                        }
                        _ => return self.err("\\\" or \\\\ in a quoted string"),
                    }
                }
                Some(b'\r' | b'\n' | 0) | None => return self.err("closing DQUOTE"),
                Some(b) => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
    }

    /// ```text
    /// literal         = "{" number64 ["+"] "}" CRLF *CHAR8
    /// literal8        = "~{" number64 "}" CRLF *OCTET
    /// ```
    /// Returns the bytes and whether it was a literal8.
    pub(crate) fn literal(
        &mut self,
        allow8: bool,
        expected: &'static str,
    ) -> PResult<(Vec<u8>, bool)> {
        let binary = allow8 && self.peek() == Some(b'~');
        if binary {
            self.pos += 1;
        }
        self.byte(b'{', expected)?;
        let n = self.number(i64::MAX as u64, "literal size")?;
        if self.peek() == Some(b'+') {
            self.pos += 1;
        }
        self.byte(b'}', "} after the literal size")?;
        if self.peek() == Some(b'\r') {
            self.pos += 1;
        }
        self.byte(b'\n', "CRLF after the literal header")?;
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| self.pos.checked_add(n))
            .filter(|&e| e <= self.data.len());
        let Some(end) = end else {
            return self.err("literal bytes");
        };
        let bytes = self.data[self.pos..end].to_vec();
        if !binary {
            if let Some(i) = memchr::memchr(0, &bytes) {
                self.pos += i;
                return self.err("no NUL in a literal (literal8 allows it)");
            }
        }
        self.pos = end;
        Ok((bytes, binary))
    }

    /// `string = quoted / literal`
    pub(crate) fn string(&mut self, expected: &'static str) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(expected),
            Some(b'{') => Ok(self.literal(false, expected)?.0),
            _ => self.err(expected),
        }
    }

    /// `astring = 1*ASTRING-CHAR / string`
    pub(crate) fn astring(&mut self, expected: &'static str) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(expected),
            _ => {
                let a = self.take_while(is_astring_char);
                if a.is_empty() {
                    return self.err(expected);
                }
                Ok(a.to_vec())
            }
        }
    }

    /// `nstring = string / nil`
    pub(crate) fn nstring(&mut self, expected: &'static str) -> PResult<Option<Vec<u8>>> {
        if self.keyword("NIL") {
            return Ok(None);
        }
        self.string(expected).map(Some)
    }

    pub(crate) fn utf8(
        &self,
        start: usize,
        bytes: Vec<u8>,
        expected: &'static str,
    ) -> PResult<String> {
        String::from_utf8(bytes).map_err(|_| CoreError::Syntax {
            offset: start,
            expected,
        })
    }

    /// `mailbox = "INBOX" / astring`  ; INBOX is case-insensitive
    pub(crate) fn mailbox(&mut self) -> PResult<String> {
        let start = self.pos;
        let raw = self.astring("mailbox name")?;
        let name = self.utf8(start, raw, "UTF-8 mailbox name")?;
        if name.eq_ignore_ascii_case("INBOX") {
            return Ok("INBOX".to_string());
        }
        Ok(name)
    }

    /// `list-mailbox = 1*list-char / string`
    pub(crate) fn list_mailbox(&mut self) -> PResult<String> {
        let start = self.pos;
        let raw = match self.peek() {
            Some(b'"' | b'{') => self.string("mailbox pattern")?,
            _ => {
                let a = self.take_while(is_list_char);
                if a.is_empty() {
                    return self.err("mailbox pattern");
                }
                a.to_vec()
            }
        };
        self.utf8(start, raw, "UTF-8 mailbox pattern")
    }

    pub(crate) fn open(&mut self, expected: &'static str, depth: usize) -> PResult<()> {
        if depth >= self.limits.max_depth {
            return self.err("less deeply nested parentheses");
        }
        self.byte(b'(', expected)
    }

    /// `"(" [item *(SP item)] ")"` with `item` read by `f`.
    pub(crate) fn list_of<T>(
        &mut self,
        expected: &'static str,
        allow_empty: bool,
        mut f: impl FnMut(&mut Self) -> PResult<T>,
    ) -> PResult<Vec<T>> {
        self.byte(b'(', expected)?;
        let mut out = Vec::new();
        if self.peek() == Some(b')') {
            if !allow_empty {
                return self.err(expected);
            }
            self.pos += 1;
            return Ok(out);
        }
        loop {
            out.push(f(self)?);
            match self.peek() {
                Some(b' ') => self.pos += 1,
                Some(b')') => {
                    self.pos += 1;
                    return Ok(out);
                }
                _ => return self.err("SP or )"),
            }
        }
    }

    /// ```text
    /// flag            = "\Answered" / "\Flagged" / "\Deleted" / "\Seen" /
    ///                   "\Draft" / flag-keyword / flag-extension
    /// flag-extension  = "\" atom
    /// flag-keyword    = "$MDNSent" / "$Forwarded" / ... / atom
    /// ```
    pub(crate) fn flag(&mut self) -> PResult<String> {
        let start = self.pos;
        if self.peek() == Some(b'\\') {
            self.pos += 1;
        }
        if self.atom("flag").is_err() {
            self.pos = start;
            return self.err("flag");
        }
        let raw = self.data[start..self.pos].to_vec();
        let mut flag = String::from_utf8_lossy(&raw).into_owned();
        // System flags are case-insensitive: spell them as RFC 9051 does.
        for name in [
            "\\Answered",
            "\\Flagged",
            "\\Deleted",
            "\\Seen",
            "\\Draft",
            "\\Recent",
        ] {
            if flag.eq_ignore_ascii_case(name) {
                flag = name.to_string();
            }
        }
        Ok(flag)
    }

    /// `flag-list = "(" [flag *(SP flag)] ")"`
    pub(crate) fn flag_list(&mut self) -> PResult<Vec<String>> {
        self.list_of("flag list", true, |p| p.flag())
    }

    /// ```text
    /// sequence-set    = (seq-number / seq-range) ["," sequence-set]
    /// seq-range       = seq-number ":" seq-number
    /// seq-number      = nz-number / "*"
    /// ```
    pub(crate) fn sequence_set(&mut self) -> PResult<SequenceSet> {
        if self.peek() == Some(b'$') {
            self.pos += 1;
            return Ok(SequenceSet::Saved);
        }
        let mut ranges = Vec::new();
        loop {
            if ranges.len() >= self.limits.max_ranges {
                return self.err("fewer sequence ranges");
            }
            let a = self.seq_number()?;
            let b = if self.peek() == Some(b':') {
                self.pos += 1;
                self.seq_number()?
            } else {
                a
            };
            ranges.push((a, b));
            if self.peek() == Some(b',') {
                self.pos += 1;
            } else {
                return Ok(SequenceSet::Ranges(ranges));
            }
        }
    }

    pub(crate) fn seq_number(&mut self) -> PResult<SeqNumber> {
        if self.peek() == Some(b'*') {
            self.pos += 1;
            return Ok(None);
        }
        self.nz_number("sequence set").map(Some)
    }

    /// ```text
    /// date            = date-text / DQUOTE date-text DQUOTE
    /// date-text       = date-day "-" date-month "-" date-year
    /// date-day        = 1*2DIGIT
    /// date-month      = "Jan" / "Feb" / "Mar" / "Apr" / "May" / "Jun" /
    ///                   "Jul" / "Aug" / "Sep" / "Oct" / "Nov" / "Dec"
    /// date-year       = 4DIGIT
    /// ```
    pub(crate) fn date(&mut self) -> PResult<Date> {
        let quoted = self.peek() == Some(b'"');
        if quoted {
            self.pos += 1;
        }
        let start = self.pos;
        let day = self.take_while(|b| b.is_ascii_digit());
        if day.is_empty() || day.len() > 2 {
            self.pos = start;
            return self.err("date (d-Mon-yyyy)");
        }
        let day = day.iter().fold(0u8, |n, &d| n * 10 + (d - b'0'));
        self.byte(b'-', "date (d-Mon-yyyy)")?;
        let month = self.month()?;
        self.byte(b'-', "date (d-Mon-yyyy)")?;
        let year = self.digits(4, "4-digit year")?;
        if day == 0 || day > days_in(month, year) {
            self.pos = start;
            return self.err("valid day of the month");
        }
        if quoted {
            self.byte(b'"', "closing DQUOTE of the date")?;
        }
        Ok(Date { year, month, day })
    }

    pub(crate) fn month(&mut self) -> PResult<u8> {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        for (i, m) in MONTHS.iter().enumerate() {
            if self.prefix(m) {
                return Ok(i as u8 + 1);
            }
        }
        self.err("month name (Jan..Dec)")
    }

    pub(crate) fn digits(&mut self, n: usize, expected: &'static str) -> PResult<u16> {
        match self.data.get(self.pos..self.pos + n) {
            Some(d) if d.iter().all(u8::is_ascii_digit) => {
                self.pos += n;
                Ok(d.iter().fold(0u16, |v, &c| v * 10 + u16::from(c - b'0')))
            }
            _ => self.err(expected),
        }
    }

    /// ```text
    /// date-time       = DQUOTE date-day-fixed "-" date-month "-" date-year
    ///                   SP time SP zone DQUOTE
    /// date-day-fixed  = (SP DIGIT) / 2DIGIT
    /// time            = 2DIGIT ":" 2DIGIT ":" 2DIGIT
    /// zone            = ("+" / "-") 4DIGIT
    /// ```
    pub(crate) fn date_time(&mut self) -> PResult<DateTime> {
        const E: &str = "date-time (\"dd-Mon-yyyy hh:mm:ss +zzzz\")";
        let start = self.pos;
        self.byte(b'"', E)?;
        if self.peek() == Some(b' ') {
            self.pos += 1;
        }
        let day = if self.data.get(self.pos + 1).is_some_and(u8::is_ascii_digit) {
            self.digits(2, E)?
        } else {
            self.digits(1, E)?
        } as u8;
        self.byte(b'-', E)?;
        let month = self.month()?;
        self.byte(b'-', E)?;
        let year = self.digits(4, E)?;
        self.sp()?;
        let hour = self.digits(2, E)? as u8;
        self.byte(b':', E)?;
        let minute = self.digits(2, E)? as u8;
        self.byte(b':', E)?;
        let second = self.digits(2, E)? as u8;
        self.sp()?;
        let sign: i16 = match self.peek() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return self.err("zone (+hhmm or -hhmm)"),
        };
        self.pos += 1;
        let zone = self.digits(4, "zone (+hhmm or -hhmm)")? as i16;
        self.byte(b'"', E)?;
        let zone_minutes = sign * ((zone / 100) * 60 + zone % 100);
        if day == 0
            || day > days_in(month, year)
            || hour > 23
            || minute > 59
            || second > 60
            || zone % 100 > 59
        {
            self.pos = start;
            return self.err(E);
        }
        Ok(DateTime {
            date: Date { year, month, day },
            hour,
            minute,
            second: second.min(59),
            zone_minutes,
        })
    }

    /// ```text
    /// tagged-ext-val  = tagged-ext-simple / "(" [tagged-ext-comp] ")"
    /// ```
    /// Read and returned raw; parentheses are balanced within the depth limit.
    pub(crate) fn tagged_ext_val(&mut self, depth: usize) -> PResult<Vec<u8>> {
        let start = self.pos;
        if self.peek() == Some(b'(') {
            self.open("(", depth)?;
            let mut level = 1usize;
            while level > 0 {
                match self.peek() {
                    Some(b'(') => {
                        if depth + level >= self.limits.max_depth {
                            return self.err("less deeply nested parentheses");
                        }
                        level += 1;
                        self.pos += 1;
                    }
                    Some(b')') => {
                        level -= 1;
                        self.pos += 1;
                    }
                    Some(b'"' | b'{') => {
                        self.string("string")?;
                    }
                    Some(b'\r' | b'\n') | None => return self.err(")"),
                    Some(_) => self.pos += 1,
                }
            }
        } else {
            let v = self.take_while(|b| is_astring_char(b) || b == b'*' || b == b'$');
            if v.is_empty() {
                return self.err("parameter value");
            }
        }
        Ok(self.data[start..self.pos].to_vec())
    }

    pub(crate) fn end(&mut self) -> PResult<()> {
        if self.peek() == Some(b'\r') {
            self.pos += 1;
        }
        if self.peek() == Some(b'\n') {
            self.pos += 1;
        }
        if self.pos != self.data.len() {
            return self.err("end of command (CRLF)");
        }
        Ok(())
    }
}

pub(crate) fn days_in(month: u8, year: u16) -> u8 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}
