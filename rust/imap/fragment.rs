//! IMAP framing: a byte stream cut into whole commands before any grammar runs.
//!
//! RFC 9051 section 4.3 / RFC 7888 / RFC 3516:
//!
//! ```text
//! literal         = "{" number64 ["+"] "}" CRLF *CHAR8
//!                   ; number64 is the number of CHAR8s; "+" marks a
//!                   ; non-synchronising literal (LITERAL+ / LITERAL-)
//! literal8        = "~{" number64 "}" CRLF *OCTET
//! number64        = 1*DIGIT          ; unsigned 63-bit integer
//! ```
//!
//! A command is one or more lines; each line but the last ends in a literal
//! header, and the literal's bytes follow that line's CRLF. The fragmenter
//! knows only that much. It stops at every *synchronising* literal header and
//! reports it ([`Fragment::LiteralAnnounced`]) so the server can send
//! "+ Ready" ([`Fragmenter::accept_literal`]) or refuse it
//! ([`Fragmenter::reject_literal`]) before a byte of it arrives.
//!
//! Nothing is buffered beyond `max_command` bytes per command: past the limit
//! the command is *poisoned*, its bytes are counted and dropped (a
//! non-synchronising literal is skipped byte for byte, never scanned for
//! lines: Stalwart issue #2768 parsed a rejected upload as commands), and one
//! [`Fragment::Poisoned`] is reported with the tag when the command ends, so
//! the next command is found at the right place.
//!
//! Input is scanned once: unconsumed bytes wait in `input`, and a line that
//! has no end yet is moved into the command buffer, so `memchr` never sees a
//! byte twice.

use memchr::{memchr, memrchr};

/// Literal sizes with more digits than this are refused (RFC 9051's number64
/// is 63 bits; 15 digits is already far beyond any limit, and Stalwart uses
/// the same bound).
pub const MAX_LITERAL_DIGITS: usize = 15;

/// How many trailing bytes of a discarded line are kept to find a literal
/// header at its end: `~{` + 15 digits + `+}` + CRLF fits in 24.
const TAIL_KEEP: usize = 32;

/// Why a command was poisoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PoisonReason {
    /// The command's lines and literals passed `max_command` bytes.
    CommandTooLong,
    /// A literal was longer than `max_literal` (or was accepted although
    /// it did not fit).
    LiteralTooLong,
    /// A literal header such as `{}`, `{+}` or a size of over 15 digits.
    BadLiteral,
}

/// What the fragmenter found in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fragment {
    /// A whole command: its lines with their line ends and its literals'
    /// bytes, exactly as received, ready for `command::parse_command`.
    Command(Vec<u8>),
    /// A synchronising literal header ended a line. The fragmenter waits
    /// (returns `None`) until the server calls `accept_literal` or
    /// `reject_literal`. `fits` says whether the literal is within the
    /// limits; a server accepts only literals that fit.
    LiteralAnnounced {
        tag: Option<Vec<u8>>,
        length: u64,
        binary: bool,
        fits: bool,
    },
    /// A command was refused by the framing; its bytes are gone and the
    /// next fragment is the next command. Reported once per command.
    Poisoned {
        tag: Option<Vec<u8>>,
        reason: PoisonReason,
    },
    /// A raw line asked for with `expect_line` (IDLE's "DONE", an
    /// AUTHENTICATE response), without its line end.
    Line(Vec<u8>),
}

/// Misuse of the fragmenter by its caller (not the peer's fault).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageError {
    /// `accept_literal`/`reject_literal` while no literal was announced.
    NoLiteralAnnounced,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Line,
    Decide { length: u64, fits: bool },
    Literal { remaining: u64, keep: bool },
}

/// The end of a line, seen as a literal header or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Header {
    None,
    Bad,
    Literal {
        length: u64,
        sync: bool,
        binary: bool,
    },
}

/// Resumable IMAP command framer; see the module documentation.
#[derive(Debug, Clone)]
pub struct Fragmenter {
    max_command: usize,
    max_literal: u64,
    input: Vec<u8>,
    pos: usize,
    cmd: Vec<u8>,
    line_start: usize,
    tail: Vec<u8>,
    total: u64,
    poison: Option<PoisonReason>,
    tag: Option<Vec<u8>>,
    state: State,
    raw_line: bool,
}

/// `tag = 1*<any ASTRING-CHAR except "+">` (RFC 9051).
pub fn is_tag_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b'+')
}

/// The tag at the start of `data` if it is a valid tag followed by SP or a
/// line end.
pub fn leading_tag(data: &[u8]) -> Option<Vec<u8>> {
    let end = data
        .iter()
        .position(|&b| !is_tag_char(b))
        .unwrap_or(data.len());
    if end == 0 || !matches!(data.get(end), Some(b' ' | b'\r' | b'\n')) {
        return None;
    }
    Some(data[..end].to_vec())
}

fn literal_header(line: &[u8]) -> Header {
    if line.last() != Some(&b'}') {
        return Header::None;
    }
    let close = line.len() - 1;
    let Some(open) = memrchr(b'{', &line[..close]) else {
        return Header::None;
    };
    let inner = &line[open + 1..close];
    let (digits, sync) = match inner.strip_suffix(b"+") {
        Some(d) => (d, false),
        None => (inner, true),
    };
    if !digits.iter().all(u8::is_ascii_digit) {
        // Not a literal header at all (e.g. `{-1}`): the grammar refuses it.
        return Header::None;
    }
    if digits.is_empty() || digits.len() > MAX_LITERAL_DIGITS {
        return Header::Bad;
    }
    let length = digits
        .iter()
        .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
    let binary = open > 0 && line[open - 1] == b'~';
    Header::Literal {
        length,
        sync,
        binary,
    }
}

fn strip_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

impl Fragmenter {
    /// A fragmenter that keeps at most `max_command` bytes of one command
    /// (lines and literals together) and at most `max_literal` per literal.
    pub fn new(max_command: usize, max_literal: u64) -> Self {
        Fragmenter {
            max_command,
            max_literal,
            input: Vec::new(),
            pos: 0,
            cmd: Vec::new(),
            line_start: 0,
            tail: Vec::new(),
            total: 0,
            poison: None,
            tag: None,
            state: State::Line,
            raw_line: false,
        }
    }

    /// Append received bytes; call `next` until it returns `None`.
    pub fn feed(&mut self, data: &[u8]) {
        if self.pos == self.input.len() {
            self.input.clear();
            self.pos = 0;
        } else if self.pos > 0 && self.pos >= self.input.len() / 2 {
            self.input.drain(..self.pos);
            self.pos = 0;
        }
        self.input.extend_from_slice(data);
    }

    /// The next line is a raw line (IDLE "DONE", an AUTHENTICATE response),
    /// returned as [`Fragment::Line`] with no literal handling. Only
    /// meaningful between commands.
    pub fn expect_line(&mut self) {
        self.raw_line = true;
    }

    /// Whether a synchronising literal waits for `accept_literal` /
    /// `reject_literal`.
    pub fn awaiting_decision(&self) -> bool {
        matches!(self.state, State::Decide { .. })
    }

    /// Change the bounds for the rest of the stream (IMAP raises them at
    /// login); the command being read keeps the accounting it has.
    pub fn set_limits(&mut self, max_command: usize, max_literal: u64) {
        self.max_command = max_command;
        self.max_literal = max_literal;
    }

    /// Why the command being read is poisoned (its bytes are skipped, not
    /// kept), if it is. Set as soon as the cause is seen, for instance at
    /// the header of an oversized non-synchronising literal, before the
    /// command ends and [`Fragment::Poisoned`] reports it.
    pub fn poison(&self) -> Option<PoisonReason> {
        self.poison
    }

    /// Bytes received and not yet consumed (held while a decision is due).
    pub fn pending(&self) -> usize {
        self.input.len() - self.pos + self.cmd.len()
    }

    /// The server sent "+ ...": read the announced literal. A literal that
    /// does not fit poisons the command and is skipped byte for byte.
    pub fn accept_literal(&mut self) -> Result<(), UsageError> {
        let State::Decide { length, fits } = self.state else {
            return Err(UsageError::NoLiteralAnnounced);
        };
        if !fits {
            self.poison_now(PoisonReason::LiteralTooLong);
        }
        self.total = self.total.saturating_add(length);
        self.state = State::Literal {
            remaining: length,
            keep: fits,
        };
        Ok(())
    }

    /// The server refused the literal (tagged NO/BAD): the client will not
    /// send it, and the command is over.
    pub fn reject_literal(&mut self) -> Result<(), UsageError> {
        if !self.awaiting_decision() {
            return Err(UsageError::NoLiteralAnnounced);
        }
        self.reset();
        Ok(())
    }

    fn reset(&mut self) {
        self.cmd = Vec::new();
        self.line_start = 0;
        self.tail.clear();
        self.total = 0;
        self.poison = None;
        self.tag = None;
        self.state = State::Line;
    }

    fn poison_now(&mut self, reason: PoisonReason) {
        if self.poison.is_some() {
            return;
        }
        // A raw line (SASL response, DONE) has no tag to answer with.
        if self.tag.is_none() && !self.raw_line {
            self.tag = leading_tag(&self.cmd);
        }
        self.poison = Some(reason);
        let line = self.cmd.get(self.line_start..).unwrap_or(&[]);
        let keep = line.len().saturating_sub(TAIL_KEEP);
        self.tail = line[keep..].to_vec();
        self.cmd = Vec::new();
        self.line_start = 0;
    }

    fn limit(&self) -> u64 {
        self.max_command as u64
    }

    /// Take `self.input[from..to]` as part of the current line.
    fn take_line(&mut self, from: usize, to: usize) {
        let before = self.total;
        self.total = self.total.saturating_add((to - from) as u64);
        if self.poison.is_none() && self.total > self.limit() {
            // Keep what fits first, so the tag is known and the line's
            // start is there to be cut into the tail.
            let room = self.limit().saturating_sub(before) as usize;
            self.cmd.extend_from_slice(&self.input[from..from + room]);
            self.poison_now(PoisonReason::CommandTooLong);
            self.take_tail(from + room, to);
            return;
        }
        if self.poison.is_some() {
            self.take_tail(from, to);
        } else {
            self.cmd.extend_from_slice(&self.input[from..to]);
        }
    }

    /// Keep the last bytes of a discarded line (to find a literal header).
    fn take_tail(&mut self, from: usize, to: usize) {
        {
            let chunk = &self.input[from..to];
            let start = chunk.len().saturating_sub(TAIL_KEEP);
            self.tail.extend_from_slice(&chunk[start..]);
            if self.tail.len() > 2 * TAIL_KEEP {
                let cut = self.tail.len() - TAIL_KEEP;
                self.tail.drain(..cut);
            }
        }
    }

    fn finish_poisoned(&mut self) -> Fragment {
        let reason = self.poison.unwrap_or(PoisonReason::CommandTooLong);
        let tag = self.tag.take();
        self.reset();
        Fragment::Poisoned { tag, reason }
    }

    /// A whole line (with its end) has been taken: decide what follows.
    fn end_of_line(&mut self) -> Option<Fragment> {
        if self.raw_line {
            self.raw_line = false;
            if self.poison.is_some() {
                return Some(self.finish_poisoned());
            }
            let line = strip_eol(&self.cmd).to_vec();
            self.reset();
            return Some(Fragment::Line(line));
        }
        let header = if self.poison.is_some() {
            literal_header(strip_eol(&self.tail))
        } else {
            literal_header(strip_eol(&self.cmd[self.line_start..]))
        };
        if self.tag.is_none() && self.poison.is_none() {
            self.tag = leading_tag(&self.cmd);
        }
        match header {
            Header::None => {
                if self.poison.is_some() {
                    return Some(self.finish_poisoned());
                }
                let cmd = std::mem::take(&mut self.cmd);
                self.reset();
                Some(Fragment::Command(cmd))
            }
            Header::Bad => {
                self.poison_now(PoisonReason::BadLiteral);
                Some(self.finish_poisoned())
            }
            Header::Literal {
                length,
                sync,
                binary,
            } => {
                self.tail.clear();
                let fits =
                    length <= self.max_literal && self.total.saturating_add(length) <= self.limit();
                if self.poison.is_some() {
                    if sync {
                        // The client waits for "+" that never comes: the
                        // command ends here.
                        return Some(self.finish_poisoned());
                    }
                    self.total = self.total.saturating_add(length);
                    self.state = State::Literal {
                        remaining: length,
                        keep: false,
                    };
                    return None;
                }
                if sync {
                    self.state = State::Decide { length, fits };
                    return Some(Fragment::LiteralAnnounced {
                        tag: self.tag.clone(),
                        length,
                        binary,
                        fits,
                    });
                }
                if !fits {
                    self.poison_now(if length > self.max_literal {
                        PoisonReason::LiteralTooLong
                    } else {
                        PoisonReason::CommandTooLong
                    });
                }
                self.total = self.total.saturating_add(length);
                self.state = State::Literal {
                    remaining: length,
                    keep: fits,
                };
                None
            }
        }
    }

    /// The next fragment, or `None` when more input (or a literal decision)
    /// is needed.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Fragment> {
        loop {
            match self.state {
                State::Decide { .. } => return None,
                State::Literal { remaining, keep } => {
                    let avail = (self.input.len() - self.pos) as u64;
                    let n = remaining.min(avail) as usize;
                    if keep {
                        self.cmd
                            .extend_from_slice(&self.input[self.pos..self.pos + n]);
                    }
                    self.pos += n;
                    let remaining = remaining - n as u64;
                    if remaining > 0 {
                        self.state = State::Literal { remaining, keep };
                        return None;
                    }
                    self.state = State::Line;
                    self.line_start = self.cmd.len();
                }
                State::Line => {
                    let from = self.pos;
                    match memchr(b'\n', &self.input[from..]) {
                        None => {
                            let to = self.input.len();
                            self.take_line(from, to);
                            self.pos = to;
                            return None;
                        }
                        Some(i) => {
                            let to = from + i + 1;
                            self.take_line(from, to);
                            self.pos = to;
                            if let Some(f) = self.end_of_line() {
                                return Some(f);
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `chunks`, accepting every literal that fits and rejecting the rest.
    fn run(f: &mut Fragmenter, chunks: &[&[u8]]) -> Vec<Fragment> {
        let mut out = Vec::new();
        for c in chunks {
            f.feed(c);
            while let Some(x) = f.next() {
                if let Fragment::LiteralAnnounced { fits, .. } = x {
                    if fits {
                        f.accept_literal().expect("announced just now");
                    } else {
                        f.reject_literal().expect("announced just now");
                    }
                }
                out.push(x);
            }
        }
        out
    }

    #[test]
    fn poison_is_known_at_the_literal_header_and_limits_can_grow() {
        let mut f = Fragmenter::new(100, 10);
        f.feed(b"a LOGIN {50+}\r\nxxxx");
        assert_eq!(f.next(), None);
        assert_eq!(f.poison(), Some(PoisonReason::LiteralTooLong));
        assert_eq!(f.pending(), 0); // the literal's bytes are skipped, not kept
        let mut g = Fragmenter::new(100, 10);
        g.feed(b"a NOOP\r\n");
        assert_eq!(g.next(), Some(Fragment::Command(b"a NOOP\r\n".to_vec())));
        assert_eq!(g.poison(), None);
        g.set_limits(1000, 500);
        g.feed(b"b APPEND x {50+}\r\n");
        g.feed(&[b'y'; 50]);
        g.feed(b"\r\n");
        match g.next() {
            Some(Fragment::Command(c)) => assert_eq!(c.len(), 18 + 50 + 2),
            other => panic!("{other:?}"),
        }
    }

    fn whole_and_bytewise(input: &[u8], max: usize, lit: u64) -> Vec<Fragment> {
        let whole = run(&mut Fragmenter::new(max, lit), &[input]);
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        let split = run(&mut Fragmenter::new(max, lit), &bytes);
        assert_eq!(whole, split);
        whole
    }

    fn cmd(b: &[u8]) -> Fragment {
        Fragment::Command(b.to_vec())
    }

    #[test]
    fn table() {
        let ann = |len, binary, fits| Fragment::LiteralAnnounced {
            tag: Some(b"a".to_vec()),
            length: len,
            binary,
            fits,
        };
        let cases: Vec<(&[u8], Vec<Fragment>)> = vec![
            (b"a NOOP\r\n", vec![cmd(b"a NOOP\r\n")]),
            (b"a NOOP\r\nb X\n", vec![cmd(b"a NOOP\r\n"), cmd(b"b X\n")]),
            (
                b"a LOGIN {3}\r\nbob {2+}\r\npw\r\n",
                vec![ann(3, false, true), cmd(b"a LOGIN {3}\r\nbob {2+}\r\npw\r\n")],
            ),
            (
                b"a APPEND x ~{4}\r\n\r\n\0\n\r\n",
                vec![ann(4, true, true), cmd(b"a APPEND x ~{4}\r\n\r\n\0\n\r\n")],
            ),
            // Literal bytes that look like commands stay literal bytes.
            (
                b"a X {8+}\r\nb NOOP\n\r\n",
                vec![cmd(b"a X {8+}\r\nb NOOP\n\r\n")],
            ),
            (
                b"a X {}\r\nb NOOP\r\n",
                vec![
                    Fragment::Poisoned {
                        tag: Some(b"a".to_vec()),
                        reason: PoisonReason::BadLiteral,
                    },
                    cmd(b"b NOOP\r\n"),
                ],
            ),
            (
                b"a X {+}\r\nb NOOP\r\n",
                vec![
                    Fragment::Poisoned {
                        tag: Some(b"a".to_vec()),
                        reason: PoisonReason::BadLiteral,
                    },
                    cmd(b"b NOOP\r\n"),
                ],
            ),
            (
                b"a X {1234567890123456}\r\nb NOOP\r\n",
                vec![
                    Fragment::Poisoned {
                        tag: Some(b"a".to_vec()),
                        reason: PoisonReason::BadLiteral,
                    },
                    cmd(b"b NOOP\r\n"),
                ],
            ),
            // `{-1}` is no literal header: the grammar answers BAD.
            (b"a X {-1}\r\n", vec![cmd(b"a X {-1}\r\n")]),
            // Refused synchronising literal: the next line is a new command.
            (
                b"a APPEND x {999}\r\nb NOOP\r\n",
                vec![ann(999, false, false), cmd(b"b NOOP\r\n")],
            ),
            // Oversized non-synchronising literal: skipped, one error.
            (
                b"a APPEND x {40+}\r\nb NOOP\r\nc NOOP\r\nd NOOP\r\ne NOOP\r\nf NOOP\r\n\r\ng NOOP\r\n",
                vec![
                    Fragment::Poisoned {
                        tag: Some(b"a".to_vec()),
                        reason: PoisonReason::LiteralTooLong,
                    },
                    cmd(b"g NOOP\r\n"),
                ],
            ),
            // Too long line: poisoned, the tail literal header still counts.
            (
                b"a LOGIN xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx {6+}\r\nb NO\r\n\r\nc NOOP\r\n",
                vec![
                    Fragment::Poisoned {
                        tag: Some(b"a".to_vec()),
                        reason: PoisonReason::CommandTooLong,
                    },
                    cmd(b"c NOOP\r\n"),
                ],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                whole_and_bytewise(input, 64, 30),
                want,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn decision_is_waited_for() {
        let mut f = Fragmenter::new(100, 100);
        f.feed(b"a LOGIN {3}\r\nbob pw\r\n");
        assert!(matches!(
            f.next(),
            Some(Fragment::LiteralAnnounced { length: 3, .. })
        ));
        assert!(f.awaiting_decision());
        assert_eq!(f.next(), None);
        f.accept_literal().expect("announced");
        assert_eq!(f.next(), Some(cmd(b"a LOGIN {3}\r\nbob pw\r\n")));
        assert_eq!(f.accept_literal(), Err(UsageError::NoLiteralAnnounced));
        assert_eq!(f.reject_literal(), Err(UsageError::NoLiteralAnnounced));
    }

    #[test]
    fn accepted_literal_that_does_not_fit_is_discarded() {
        let mut f = Fragmenter::new(100, 4);
        f.feed(b"a X {10}\r\n");
        assert!(matches!(
            f.next(),
            Some(Fragment::LiteralAnnounced { fits: false, .. })
        ));
        f.accept_literal().expect("announced");
        f.feed(b"0123456789\r\nb NOOP\r\n");
        assert_eq!(
            f.next(),
            Some(Fragment::Poisoned {
                tag: Some(b"a".to_vec()),
                reason: PoisonReason::LiteralTooLong
            })
        );
        assert_eq!(f.next(), Some(cmd(b"b NOOP\r\n")));
        assert_eq!(f.next(), None);
    }

    #[test]
    fn raw_lines() {
        let mut f = Fragmenter::new(100, 100);
        f.expect_line();
        f.feed(b"DONE {3}\r\na NOOP\r\n");
        assert_eq!(f.next(), Some(Fragment::Line(b"DONE {3}".to_vec())));
        assert_eq!(f.next(), Some(cmd(b"a NOOP\r\n")));
        // A raw line over the limit: dropped, reported without a tag.
        let mut f = Fragmenter::new(10, 10);
        f.expect_line();
        f.feed(b"abc def ghi jkl {3}\r\na NOOP\r\n");
        assert_eq!(
            f.next(),
            Some(Fragment::Poisoned {
                tag: None,
                reason: PoisonReason::CommandTooLong
            })
        );
        assert_eq!(f.next(), Some(cmd(b"a NOOP\r\n")));
    }

    #[test]
    fn tags() {
        assert_eq!(leading_tag(b"a1 NOOP"), Some(b"a1".to_vec()));
        assert_eq!(leading_tag(b"+ NOOP"), None);
        assert_eq!(leading_tag(b"a*b NOOP"), None);
        assert_eq!(leading_tag(b"abc"), None);
        assert_eq!(leading_tag(b"a]\r\n"), Some(b"a]".to_vec()));
    }
}
