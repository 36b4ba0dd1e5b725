//! Dot-stuffing: the SMTP DATA body and the POP3 multi-line response.
//!
//! RFC 5321 section 4.5.2 (transparency) and section 4.1.1.4 (DATA):
//!
//! ```text
//! end-of-data = CRLF "." CRLF     ; "." CRLF alone when the body is empty
//! ```
//!
//! "Before sending a line of mail text, the SMTP client checks the first
//! character of the line. If it is a period, one additional period is
//! inserted at the beginning of the line." "When a line of mail text is
//! received by the SMTP server, it checks the line. If the line is composed of
//! a single period, it is treated as the end of mail indicator. If the first
//! character is a period and there are other characters on the line, the
//! first character is deleted." RFC 1939 section 3 says the same of POP3
//! multi-line responses.
//!
//! A line start is only ever the byte after CRLF (or the first byte of the
//! body). A bare LF or bare CR is not a line end here: "\n.\n", "\r.\r",
//! "\n.\r\n", "\r\n.\n", "\r.\r\n" and "\r\n.\r\r\n" never end the data, which
//! is what closes SMTP smuggling (CVE-2023-51764, and Postfix's second variant
//! where CRs before LF were collapsed). A "." directly followed by a bare CR
//! or LF is a line holding a single period: it is kept as it is, neither an
//! end nor a stuffed dot. A dot after a bare line end is not at a line start
//! either, so it is kept, also with `normalize`.
//!
//! The reader is a small state machine that survives any split of the input;
//! the hot path copies runs of ordinary lines with one `memchr2` per line and
//! one copy per run between stuffed dots.

use memchr::memchr2;

const CR: u8 = b'\r';
const LF: u8 = b'\n';

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line (after CRLF, or at the very beginning).
    Start,
    /// Inside a line.
    Mid,
    /// Inside a line, after a CR whose follower has not arrived.
    Cr,
    /// After a "." at a line start.
    Dot,
    /// After "." CR at a line start.
    DotCr,
    /// The end of data was seen.
    Done,
}

/// Incremental decoder of a dot-stuffed body.
#[derive(Debug, Clone)]
pub struct DotReader {
    max_size: usize,
    normalize: bool,
    state: State,
    size: usize,
    oversize: bool,
    bare_line_end: bool,
    rest: Vec<u8>,
}

impl DotReader {
    /// A reader that writes out at most `max_size` body bytes. With
    /// `normalize`, each bare CR or LF is written as CRLF.
    pub fn new(max_size: usize, normalize: bool) -> Self {
        DotReader {
            max_size,
            normalize,
            state: State::Start,
            size: 0,
            oversize: false,
            bare_line_end: false,
            rest: Vec::new(),
        }
    }

    /// Whether the end of data was seen.
    pub fn done(&self) -> bool {
        self.state == State::Done
    }

    /// Bytes that followed the end of data.
    pub fn rest(&self) -> &[u8] {
        &self.rest
    }

    /// Body bytes decoded so far, also those past `max_size` that were dropped.
    pub fn size(&self) -> usize {
        self.size
    }

    /// How many more body bytes will be written out before `max_size` is reached.
    pub fn room(&self) -> usize {
        self.max_size.saturating_sub(self.size)
    }

    /// Whether the body grew past `max_size`.
    pub fn oversize(&self) -> bool {
        self.oversize
    }

    /// Whether a bare CR or bare LF was seen in the body.
    pub fn bare_line_end(&self) -> bool {
        self.bare_line_end
    }

    /// Decode `data`, appending body bytes to `out`; return whether the end
    /// was reached. After the end, input is kept in [`DotReader::rest`].
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) -> bool {
        let mut i = 0;
        while i < data.len() {
            let byte = data[i];
            match self.state {
                State::Mid => i = self.scan_line(data, i, out),
                State::Start => {
                    if byte == b'.' {
                        self.state = State::Dot;
                        i += 1;
                    } else {
                        self.state = State::Mid;
                    }
                }
                State::Cr => {
                    if byte == LF {
                        self.emit(out, b"\r\n");
                        self.state = State::Start;
                        i += 1;
                    } else {
                        self.bare(out, CR);
                        self.state = State::Mid;
                    }
                }
                State::Dot => match byte {
                    CR => {
                        self.state = State::DotCr;
                        i += 1;
                    }
                    LF => {
                        // A single "." before a bare LF: kept, the LF is bare.
                        self.emit(out, b".");
                        self.state = State::Mid;
                    }
                    // A stuffed dot: drop it, the rest of the line is content.
                    _ => self.state = State::Mid,
                },
                State::DotCr => {
                    if byte == LF {
                        self.state = State::Done;
                        self.rest.extend_from_slice(&data[i + 1..]);
                        return true;
                    }
                    // "." CR and no LF: a single period and a bare CR.
                    self.emit(out, b".");
                    self.bare(out, CR);
                    self.state = State::Mid;
                }
                State::Done => {
                    self.rest.extend_from_slice(&data[i..]);
                    return true;
                }
            }
        }
        self.state == State::Done
    }

    /// Copy body bytes from `data[pos..]` while in `Mid`, over as many whole
    /// lines as possible in one run; return where to continue, with the state
    /// set for the byte there.
    fn scan_line(&mut self, data: &[u8], mut pos: usize, out: &mut Vec<u8>) -> usize {
        let run = pos;
        loop {
            let Some(off) = memchr2(CR, LF, &data[pos..]) else {
                self.emit(out, &data[run..]);
                return data.len();
            };
            let at = pos + off;
            if data[at] == CR {
                match data.get(at + 1) {
                    Some(&LF) => {
                        pos = at + 2;
                        match data.get(pos) {
                            // A line start that is not a dot: carry on in the same run.
                            Some(&b) if b != b'.' => {}
                            Some(_) => {
                                self.emit(out, &data[run..pos]);
                                self.state = State::Dot;
                                return pos + 1;
                            }
                            None => {
                                self.emit(out, &data[run..pos]);
                                self.state = State::Start;
                                return pos;
                            }
                        }
                    }
                    Some(_) if !self.normalize => {
                        self.bare_line_end = true;
                        pos = at + 1;
                    }
                    Some(_) => {
                        self.emit(out, &data[run..at]);
                        self.bare(out, CR);
                        return at + 1;
                    }
                    None => {
                        self.emit(out, &data[run..at]);
                        self.state = State::Cr;
                        return at + 1;
                    }
                }
            } else if !self.normalize {
                self.bare_line_end = true;
                pos = at + 1;
            } else {
                self.emit(out, &data[run..at]);
                self.bare(out, LF);
                return at + 1;
            }
        }
    }

    /// Write body bytes, up to `max_size` in all; count them all.
    fn emit(&mut self, out: &mut Vec<u8>, bytes: &[u8]) {
        let room = self.max_size.saturating_sub(self.size);
        self.size = self.size.saturating_add(bytes.len());
        if bytes.len() <= room {
            out.extend_from_slice(bytes);
        } else {
            out.extend_from_slice(&bytes[..room]);
            self.oversize = true;
        }
    }

    /// A bare CR or LF in the body.
    fn bare(&mut self, out: &mut Vec<u8>, byte: u8) {
        self.bare_line_end = true;
        if self.normalize {
            self.emit(out, b"\r\n");
        } else {
            self.emit(out, &[byte]);
        }
    }
}

/// Incremental dot-stuffer: the sending side of [`DotReader`].
///
/// Leading dots are doubled, bare CR and bare LF become CRLF (a CR at the end
/// of one chunk and a LF at the start of the next are one CRLF), and
/// [`DotStuffer::finish`] adds a CRLF if the body did not end with one, then
/// "." CRLF.
#[derive(Debug, Clone)]
pub struct DotStuffer {
    line_start: bool,
    /// The previous byte was a CR, already written as CRLF: a LF next is its.
    after_cr: bool,
    any: bool,
}

impl Default for DotStuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl DotStuffer {
    /// A stuffer at the start of a body.
    pub fn new() -> Self {
        DotStuffer {
            line_start: true,
            after_cr: false,
            any: false,
        }
    }

    /// Append the stuffed form of `data` to `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) {
        if data.is_empty() {
            return;
        }
        self.any = true;
        let mut pos = 0;
        if self.after_cr {
            self.after_cr = false;
            if data[0] == LF {
                pos = 1;
            }
        }
        let mut run = pos;
        let mut at_start = self.line_start;
        loop {
            if at_start {
                match data.get(pos) {
                    None => break,
                    Some(&b'.') => {
                        // Write the extra dot; the original goes out with the run.
                        out.extend_from_slice(&data[run..pos]);
                        out.push(b'.');
                        run = pos;
                    }
                    Some(_) => {}
                }
                at_start = false;
            }
            let Some(off) = memchr2(CR, LF, &data[pos..]) else {
                pos = data.len();
                break;
            };
            let at = pos + off;
            if data[at] == CR && data.get(at + 1) == Some(&LF) {
                pos = at + 2;
            } else {
                // Bare CR or LF: written as CRLF.
                out.extend_from_slice(&data[run..at]);
                out.extend_from_slice(b"\r\n");
                pos = at + 1;
                run = pos;
                if data[at] == CR && pos == data.len() {
                    self.after_cr = true;
                }
            }
            at_start = true;
        }
        out.extend_from_slice(&data[run..pos]);
        self.line_start = at_start;
    }

    /// Append the end of the body, and start afresh for another body.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.any && !self.line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        *self = DotStuffer::new();
    }
}

/// Dot-stuff a whole body and end it with "." CRLF (empty input gives ".\r\n").
pub fn dot_stuff(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 32 + 5);
    let mut s = DotStuffer::new();
    s.feed(data, &mut out);
    s.finish(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn splits(data: &[u8]) -> Vec<Vec<&[u8]>> {
        let mut all = vec![vec![data], data.chunks(1).collect()];
        for cut in 1..data.len() {
            all.push(vec![&data[..cut], &data[cut..]]);
        }
        all
    }

    struct Got {
        body: Vec<u8>,
        done: bool,
        rest: Vec<u8>,
        size: usize,
        oversize: bool,
        bare: bool,
    }

    fn read(max: usize, normalize: bool, chunks: &[&[u8]]) -> Got {
        let mut r = DotReader::new(max, normalize);
        let mut body = Vec::new();
        let mut done = false;
        for c in chunks {
            let was_done = r.done();
            let mut piece = Vec::new();
            done = r.feed(c, &mut piece);
            assert!(!was_done || piece.is_empty(), "output after the end");
            body.extend(piece);
        }
        Got {
            body,
            done,
            rest: r.rest().to_vec(),
            size: r.size(),
            oversize: r.oversize(),
            bare: r.bare_line_end(),
        }
    }

    /// (input, body, done, rest, bare line end) with normalize off.
    const READ_CASES: &[(&str, &str, bool, &str, bool)] = &[
        (".\r\n", "", true, "", false),
        (".\r\nQUIT\r\n", "", true, "QUIT\r\n", false),
        ("a\r\n.\r\n", "a\r\n", true, "", false),
        (
            "a\r\nb\r\n.\r\nMAIL FROM:<>\r\n",
            "a\r\nb\r\n",
            true,
            "MAIL FROM:<>\r\n",
            false,
        ),
        ("..\r\n.\r\n", ".\r\n", true, "", false),
        (
            "..a\r\n...\r\n.b\r\n.\r\n",
            ".a\r\n..\r\nb\r\n",
            true,
            "",
            false,
        ),
        ("a.\r\n.\r\n", "a.\r\n", true, "", false),
        ("\r\n.\r\n", "\r\n", true, "", false),
        ("\r\n\r\n.\r\n", "\r\n\r\n", true, "", false),
        ("abc", "abc", false, "", false),
        ("abc\r\n.", "abc\r\n", false, "", false),
        ("abc\r\n.\r", "abc\r\n", false, "", false),
        // SMTP smuggling: none of these ends the data.
        ("a\n.\nb", "a\n.\nb", false, "", true),
        ("a\r.\rb", "a\r.\rb", false, "", true),
        ("a\n.\r\nb", "a\n.\r\nb", false, "", true),
        ("a\r\n.\nb", "a\r\n.\nb", false, "", true),
        ("a\r.\r\nb", "a\r.\r\nb", false, "", true),
        ("a\r\n.\r\r\nb", "a\r\n.\r\r\nb", false, "", true),
        (".\n", ".\n", false, "", true),
        (".\r.\r\n", ".\r.\r\n", false, "", true),
        // ... and the real end after them still counts.
        ("a\n.\r\nb\r\n.\r\nX", "a\n.\r\nb\r\n", true, "X", true),
        ("\r\n.\r\r\n.\r\nX", "\r\n.\r\r\n", true, "X", true),
        // A dot after a bare line end is not at a line start: not unstuffed.
        ("a\n..b\r\n.\r\n", "a\n..b\r\n", true, "", true),
        ("a\r\r\n..\r\n.\r\n", "a\r\r\n.\r\n", true, "", true),
    ];

    #[test]
    fn reader_table_whole_and_split_agree() {
        for &(input, body, done, rest, bare) in READ_CASES {
            for chunks in splits(input.as_bytes()) {
                let g = read(1000, false, &chunks);
                let ctx = format!("input {input:?} chunks {chunks:?}");
                assert_eq!(g.body, body.as_bytes(), "{ctx}");
                assert_eq!(g.done, done, "{ctx}");
                assert_eq!(g.rest, rest.as_bytes(), "{ctx}");
                assert_eq!(g.bare, bare, "{ctx}");
                assert_eq!(g.size, body.len(), "{ctx}");
                assert!(!g.oversize, "{ctx}");
            }
        }
    }

    #[test]
    fn normalize_writes_bare_line_ends_as_crlf_and_still_never_ends() {
        let cases: &[(&str, &str, bool)] = &[
            ("a\nb\r\n.\r\n", "a\r\nb\r\n", true),
            ("a\rb\r\n.\r\n", "a\r\nb\r\n", true),
            ("a\n.\nb", "a\r\n.\r\nb", false),
            ("a\n.\r\nb", "a\r\n.\r\nb", false),
            ("a\r\n.\nb", "a\r\n.\r\nb", false),
            ("a\r.\r\nb", "a\r\n.\r\nb", false),
            ("a\r\n.\r\r\nb", "a\r\n.\r\n\r\nb", false),
            ("a\r\r\n.\r\n", "a\r\n\r\n", true),
            ("\n\n.\r\n", "\r\n\r\n.\r\n", false),
        ];
        for &(input, body, done) in cases {
            for chunks in splits(input.as_bytes()) {
                let g = read(1000, true, &chunks);
                let ctx = format!("input {input:?} chunks {chunks:?}");
                assert_eq!(g.body, body.as_bytes(), "{ctx}");
                assert_eq!(g.done, done, "{ctx}");
                assert!(g.bare, "{ctx}");
                assert_eq!(g.size, body.len(), "{ctx}");
            }
        }
    }

    #[test]
    fn oversize_stops_output_and_still_finds_the_end() {
        let input = b"0123456789\r\n..abc\r\n.\r\nQUIT\r\n";
        for chunks in splits(input) {
            let g = read(8, false, &chunks);
            assert_eq!(g.body, b"01234567");
            assert!(g.done && g.oversize);
            assert_eq!(g.size, 18);
            assert_eq!(g.rest, b"QUIT\r\n");
        }
        let exact = read(5, false, &[b"abc\r\n.\r\n"]);
        assert_eq!(exact.body, b"abc\r\n");
        assert!(exact.done && !exact.oversize);
    }

    #[test]
    fn oversize_body_is_not_held() {
        let mut r = DotReader::new(100, false);
        let line = b"x".repeat(1000);
        for _ in 0..1000 {
            let mut out = Vec::new();
            assert!(!r.feed(&line, &mut out));
            assert!(out.len() <= 100);
        }
        let mut out = Vec::new();
        assert!(r.feed(b"\r\n.\r\n", &mut out));
        assert_eq!(r.size(), 1_000_002);
        assert!(r.oversize());
    }

    #[test]
    fn input_after_the_end_goes_to_rest() {
        let mut r = DotReader::new(100, false);
        let mut out = Vec::new();
        assert!(r.feed(b"a\r\n.\r\nNO", &mut out));
        assert!(r.feed(b"OP\r\n", &mut out));
        assert_eq!(out, b"a\r\n");
        assert_eq!(r.rest(), b"NOOP\r\n");
    }

    /// (input, stuffed without the final ".\r\n").
    const STUFF_CASES: &[(&str, &str)] = &[
        ("", ""),
        ("a", "a\r\n"),
        ("a\r\n", "a\r\n"),
        (".", "..\r\n"),
        (".\r\n", "..\r\n"),
        ("a\r\n.b\r\n..c", "a\r\n..b\r\n...c\r\n"),
        ("a.b", "a.b\r\n"),
        ("a\nb", "a\r\nb\r\n"),
        ("a\rb", "a\r\nb\r\n"),
        ("a\r", "a\r\n"),
        ("a\n.\n", "a\r\n..\r\n"),
        ("\r\r\n\n", "\r\n\r\n\r\n"),
        ("\r.\n.", "\r\n..\r\n..\r\n"),
        ("\r\n", "\r\n"),
        ("\n", "\r\n"),
    ];

    #[test]
    fn stuffer_table_whole_and_split_agree() {
        for &(input, want) in STUFF_CASES {
            let want = format!("{want}.\r\n");
            assert_eq!(dot_stuff(input.as_bytes()), want.as_bytes(), "{input:?}");
            for chunks in splits(input.as_bytes()) {
                let mut s = DotStuffer::new();
                let mut out = Vec::new();
                for c in &chunks {
                    s.feed(c, &mut out);
                    s.feed(b"", &mut out);
                }
                s.finish(&mut out);
                assert_eq!(out, want.as_bytes(), "{input:?} in {chunks:?}");
            }
        }
    }

    #[test]
    fn stuffer_starts_afresh_after_finish() {
        let mut s = DotStuffer::new();
        let mut out = Vec::new();
        s.feed(b"a\r", &mut out);
        s.finish(&mut out);
        s.feed(b"\n.", &mut out);
        s.finish(&mut out);
        assert_eq!(out, b"a\r\n.\r\n\r\n..\r\n.\r\n");
    }

    #[test]
    fn stuff_then_read_round_trips_with_line_ends_normalised() {
        for &(input, stuffed) in STUFF_CASES {
            let wire = dot_stuff(input.as_bytes());
            for chunks in splits(&wire) {
                let g = read(usize::MAX, false, &chunks);
                assert!(g.done && g.rest.is_empty() && !g.bare, "{input:?}");
                // The stuffed text without its extra dots is the normalised body.
                let want = stuffed.replace("\r\n..", "\r\n.");
                let want = want
                    .strip_prefix('.')
                    .map_or(want.clone(), |_| want[1..].to_string());
                assert_eq!(g.body, want.as_bytes(), "{input:?} in {chunks:?}");
            }
        }
    }
}
