//! Cutting a byte stream into CRLF-ended lines (SMTP, POP3 and IMAP commands).
//!
//! RFC 5321 section 2.3.8 and RFC 1939 section 3:
//!
//! ```text
//! CRLF = %x0D %x0A   ; the only line end; "the character sequence CR LF"
//! ```
//!
//! "In addition, the appearance of "bare" "CR" or "LF" characters in text
//! (i.e., either without the other) has a long history of causing problems in
//! mail implementations and applications that use the mail system as a tool.
//! SMTP client implementations MUST NOT transmit these characters except when
//! they are intended as line terminators and then MUST, as indicated above,
//! transmit them only as a <CRLF> sequence." (RFC 5321 section 2.3.8)
//!
//! The reader is resumable: it keeps the partial line and a pending CR between
//! feeds and only ever scans bytes it has not seen, with `memchr`, so a line
//! arriving one byte at a time costs linear time. A line longer than
//! `max_line` is counted, not stored, and reported once its CRLF arrives; a
//! line holding a bare CR or bare LF is reported instead of returned. Errors
//! come back in order among the good lines, never as a `Result::Err`, so a
//! server can answer each line in turn.

use memchr::memchr2;

/// Why a line was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineErrorKind {
    /// Longer than `max_line` bytes (without the line end).
    TooLong,
    /// Held a LF not preceded by CR.
    BareLf,
    /// Held a CR not followed by LF.
    BareCr,
}

/// One result of [`LineReader::feed`]: a line, or the reason a line was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'a> {
    /// A complete line without its line end.
    Line(&'a [u8]),
    /// A refused line: why, and its length in bytes without the line end.
    Error { kind: LineErrorKind, length: usize },
}

/// Owned form of [`Item`], for callers that collect results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedItem {
    /// A complete line without its line end.
    Line(Vec<u8>),
    /// A refused line: why, and its length in bytes without the line end.
    Error { kind: LineErrorKind, length: usize },
}

impl From<Item<'_>> for OwnedItem {
    fn from(item: Item<'_>) -> Self {
        match item {
            Item::Line(l) => OwnedItem::Line(l.to_vec()),
            Item::Error { kind, length } => OwnedItem::Error { kind, length },
        }
    }
}

/// Incremental CRLF line splitter with a line-length bound.
#[derive(Debug, Clone)]
pub struct LineReader {
    max_line: usize,
    allow_bare_lf: bool,
    /// Bytes of the current partial line (never more than `max_line`; empty
    /// once the line is known to be too long).
    line: Vec<u8>,
    /// Length of the current partial line, also counting bytes not stored.
    line_len: usize,
    /// The first bare CR or LF seen in the current line.
    flaw: Option<LineErrorKind>,
    /// The last byte scanned was a CR whose follower has not arrived yet.
    cr_pending: bool,
    /// Raw bytes not scanned yet, left over when `max_lines` stopped a feed.
    pending: Vec<u8>,
}

impl LineReader {
    /// A reader refusing lines longer than `max_line` bytes (line end excluded).
    /// With `allow_bare_lf`, a LF alone also ends a line (a CR before it is
    /// part of the CRLF, as usual).
    pub fn new(max_line: usize, allow_bare_lf: bool) -> Self {
        LineReader {
            max_line,
            allow_bare_lf,
            line: Vec::new(),
            line_len: 0,
            flaw: None,
            cr_pending: false,
            pending: Vec::new(),
        }
    }

    /// Number of bytes held that were not yet returned (bytes of a too-long
    /// line that were dropped are not held).
    pub fn buffered(&self) -> usize {
        self.line.len() + usize::from(self.cr_pending) + self.pending.len()
    }

    /// Remove and return every byte held, and start again at a line start.
    ///
    /// The dropped part of a too-long line cannot be returned; only what is held.
    pub fn take_buffered(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.line);
        if self.cr_pending {
            out.push(b'\r');
        }
        out.append(&mut self.pending);
        self.reset_line();
        self.cr_pending = false;
        out
    }

    /// Add `data` and hand each complete line (or refused line) to `emit`, in
    /// order. With `max_lines`, stop after that many and keep the rest
    /// unscanned for the next call (`feed(b"", Some(1))` takes one more).
    pub fn feed<F>(&mut self, data: &[u8], max_lines: Option<usize>, mut emit: F)
    where
        F: FnMut(Item<'_>),
    {
        let limit = max_lines.unwrap_or(usize::MAX);
        if self.pending.is_empty() {
            let used = self.scan(data, limit, &mut emit);
            if used < data.len() {
                self.pending.extend_from_slice(&data[used..]);
            }
        } else {
            let mut input = std::mem::take(&mut self.pending);
            input.extend_from_slice(data);
            let used = self.scan(&input, limit, &mut emit);
            input.drain(..used);
            self.pending = input;
        }
    }

    /// Convenience for tests and tools: feed and collect owned items.
    pub fn feed_vec(&mut self, data: &[u8], max_lines: Option<usize>) -> Vec<OwnedItem> {
        let mut out = Vec::new();
        self.feed(data, max_lines, |item| out.push(item.into()));
        out
    }

    fn reset_line(&mut self) {
        self.line.clear();
        self.line_len = 0;
        self.flaw = None;
    }

    /// Append content bytes to the current line, storing them only while the
    /// line is still within bounds.
    fn push(&mut self, bytes: &[u8]) {
        self.line_len = self.line_len.saturating_add(bytes.len());
        if self.line_len > self.max_line {
            // Too long: nothing of it will be returned, so hold nothing.
            if !self.line.is_empty() {
                self.line = Vec::new();
            }
        } else {
            self.line.extend_from_slice(bytes);
        }
    }

    fn mark(&mut self, kind: LineErrorKind) {
        if self.flaw.is_none() {
            self.flaw = Some(kind);
        }
    }

    /// The line just ended; `tail` is its last part, still in the input.
    fn finish_line<F: FnMut(Item<'_>)>(&mut self, tail: &[u8], emit: &mut F) {
        let length = self.line_len.saturating_add(tail.len());
        if length > self.max_line {
            emit(Item::Error {
                kind: LineErrorKind::TooLong,
                length,
            });
        } else if let Some(kind) = self.flaw {
            emit(Item::Error { kind, length });
        } else if self.line.is_empty() {
            // Whole line inside this input: hand it out without copying.
            emit(Item::Line(tail));
        } else {
            self.line.extend_from_slice(tail);
            emit(Item::Line(&self.line));
        }
        self.reset_line();
    }

    /// Scan `input`, emitting at most `limit` items; return how many bytes
    /// were consumed (all of them unless the limit was reached).
    fn scan<F: FnMut(Item<'_>)>(&mut self, input: &[u8], limit: usize, emit: &mut F) -> usize {
        let mut count = 0usize;
        let mut pos = 0usize;
        if count >= limit {
            return 0;
        }
        if self.cr_pending {
            let Some(&first) = input.first() else {
                return 0;
            };
            self.cr_pending = false;
            if first == b'\n' {
                self.finish_line(&[], emit);
                count += 1;
                pos = 1;
            } else {
                // The CR was bare: it is content, and the line is flawed.
                self.push(b"\r");
                self.mark(LineErrorKind::BareCr);
            }
        }
        // `start` is where the not-yet-stored part of the current line begins.
        let mut start = pos;
        while count < limit {
            let Some(off) = memchr2(b'\r', b'\n', &input[pos..]) else {
                self.push(&input[start..]);
                return input.len();
            };
            let at = pos + off;
            if input[at] == b'\r' {
                match input.get(at + 1) {
                    Some(b'\n') => {
                        self.finish_line(&input[start..at], emit);
                        count += 1;
                        pos = at + 2;
                        start = pos;
                    }
                    Some(_) => {
                        // Bare CR: content of a line that will be refused.
                        self.mark(LineErrorKind::BareCr);
                        pos = at + 1;
                    }
                    None => {
                        self.push(&input[start..at]);
                        self.cr_pending = true;
                        return input.len();
                    }
                }
            } else if self.allow_bare_lf {
                self.finish_line(&input[start..at], emit);
                count += 1;
                pos = at + 1;
                start = pos;
            } else {
                self.mark(LineErrorKind::BareLf);
                pos = at + 1;
            }
        }
        // Limit reached: the current line is fresh, keep the rest unscanned.
        debug_assert_eq!(start, pos);
        pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LineErrorKind::*;

    fn line(s: &str) -> OwnedItem {
        OwnedItem::Line(s.as_bytes().to_vec())
    }

    fn err(kind: LineErrorKind, length: usize) -> OwnedItem {
        OwnedItem::Error { kind, length }
    }

    /// Every way of cutting `data`: whole, byte by byte, and in two at each offset.
    fn splits(data: &[u8]) -> Vec<Vec<&[u8]>> {
        let mut all = vec![vec![data], data.chunks(1).collect()];
        for cut in 1..data.len() {
            all.push(vec![&data[..cut], &data[cut..]]);
        }
        all
    }

    fn run(max: usize, bare: bool, chunks: &[&[u8]]) -> (Vec<OwnedItem>, Vec<u8>) {
        let mut r = LineReader::new(max, bare);
        let mut out = Vec::new();
        for c in chunks {
            out.extend(r.feed_vec(c, None));
        }
        (out, r.take_buffered())
    }

    #[test]
    fn table_whole_and_split_agree() {
        #[allow(clippy::type_complexity)]
        let cases: Vec<(&str, usize, bool, Vec<OwnedItem>, &str)> = vec![
            ("", 10, false, vec![], ""),
            ("abc", 10, false, vec![], "abc"),
            ("abc\r\n", 10, false, vec![line("abc")], ""),
            ("\r\n\r\n", 10, false, vec![line(""), line("")], ""),
            ("a\r\nb\r\nc", 10, false, vec![line("a"), line("b")], "c"),
            ("abc\r", 10, false, vec![], "abc\r"),
            // Exactly max_line is fine, one more is too long.
            ("0123456789\r\n", 10, false, vec![line("0123456789")], ""),
            (
                "0123456789X\r\nok\r\n",
                10,
                false,
                vec![err(TooLong, 11), line("ok")],
                "",
            ),
            ("x\r\n0123456789XY", 10, false, vec![line("x")], ""),
            // Bare LF and bare CR are refused, not line ends.
            (
                "a\nb\r\nc\r\n",
                10,
                false,
                vec![err(BareLf, 3), line("c")],
                "",
            ),
            (
                "a\rb\r\nc\r\n",
                10,
                false,
                vec![err(BareCr, 3), line("c")],
                "",
            ),
            ("a\r\r\n", 10, false, vec![err(BareCr, 2)], ""),
            ("\n\r\n", 10, false, vec![err(BareLf, 1)], ""),
            ("\r\r\r\n", 10, false, vec![err(BareCr, 2)], ""),
            // Too long wins over a bare line end.
            ("0123456789\nX\r\n", 10, false, vec![err(TooLong, 12)], ""),
            // The quirk: bare LF ends a line; CRLF still does, bare CR still refused.
            ("a\nb\r\nc", 10, true, vec![line("a"), line("b")], "c"),
            ("a\rb\nc\r\n", 10, true, vec![err(BareCr, 3), line("c")], ""),
            ("\n\n", 10, true, vec![line(""), line("")], ""),
            (
                "0123456789XY\nz\n",
                10,
                true,
                vec![err(TooLong, 12), line("z")],
                "",
            ),
            // SMTP smuggling shapes are never line ends.
            ("DATA\r\n.\n", 10, false, vec![line("DATA")], ".\n"),
            (
                "a\n.\r\nb\r\n",
                10,
                false,
                vec![err(BareLf, 3), line("b")],
                "",
            ),
        ];
        for (input, max, bare, want, rest) in cases {
            for chunks in splits(input.as_bytes()) {
                let (got, left) = run(max, bare, &chunks);
                assert_eq!(got, want, "input {input:?} chunks {chunks:?}");
                // The partial line is held, except what a too-long line dropped.
                assert_eq!(left, rest.as_bytes(), "rest of {input:?} in {chunks:?}");
            }
        }
    }

    #[test]
    fn too_long_line_holds_at_most_max_line() {
        let mut r = LineReader::new(8, false);
        for _ in 0..10_000 {
            assert!(r.feed_vec(b"xxxxxxx", None).is_empty());
            assert!(r.buffered() <= 8);
        }
        assert_eq!(
            r.feed_vec(b"\r\nok\r\n", None),
            vec![err(TooLong, 70_000), line("ok")]
        );
    }

    #[test]
    fn max_lines_leaves_the_rest_raw() {
        let mut r = LineReader::new(100, false);
        let got = r.feed_vec(b"EHLO x\r\nDATA\r\nSubject: a\r\n\r\nbody\r", Some(2));
        assert_eq!(got, vec![line("EHLO x"), line("DATA")]);
        assert_eq!(r.buffered(), 19);
        assert_eq!(r.feed_vec(b"", Some(0)), vec![]);
        assert_eq!(r.take_buffered(), b"Subject: a\r\n\r\nbody\r");
        assert_eq!(r.buffered(), 0);
        assert_eq!(r.feed_vec(b"\nQUIT\r\n", None), vec![err(BareLf, 5)]);
    }

    #[test]
    fn max_lines_one_at_a_time_equals_all_at_once() {
        let data = b"a\r\nbb\r\n0123456789012\r\nc\nd\r\ne\r\nrest";
        let mut whole = LineReader::new(10, false);
        let want = whole.feed_vec(data, None);
        let mut r = LineReader::new(10, false);
        let mut got = r.feed_vec(data, Some(1));
        loop {
            let next = r.feed_vec(b"", Some(1));
            if next.is_empty() {
                break;
            }
            got.extend(next);
        }
        assert_eq!(got, want);
        assert_eq!(r.take_buffered(), b"rest");
    }

    #[test]
    fn pending_cr_then_more_pending_input() {
        let mut r = LineReader::new(10, false);
        assert_eq!(r.feed_vec(b"ab\r", Some(1)), vec![]);
        assert_eq!(r.buffered(), 3);
        assert_eq!(r.feed_vec(b"\ncd\r\nef\r\n", Some(1)), vec![line("ab")]);
        assert_eq!(r.feed_vec(b"", None), vec![line("cd"), line("ef")]);
    }
}
