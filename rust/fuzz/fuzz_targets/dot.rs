//! DotReader, DotStuffer and dot_stuff: never panic; the reader gives the same
//! result whatever the split (whole input exercises the block scan, small
//! pieces the byte-level scan); stuffing then reading returns the input with
//! line ends normalised; the end of data is only ever CRLF "." CRLF.
#![no_main]

use _core::dot::{dot_stuff, DotReader, DotStuffer};
use libfuzzer_sys::fuzz_target;

struct Read {
    body: Vec<u8>,
    done: bool,
    rest: Vec<u8>,
    size: usize,
    oversize: bool,
    bare: bool,
}

fn read<'a>(max: usize, normalize: bool, chunks: impl Iterator<Item = &'a [u8]>) -> Read {
    let mut r = DotReader::new(max, normalize);
    let mut body = Vec::new();
    let mut done = false;
    for c in chunks {
        let before = body.len();
        let was_done = r.done();
        done = r.feed(c, &mut body);
        assert!(!was_done || body.len() == before);
    }
    assert!(body.len() <= max);
    Read {
        body,
        done,
        rest: r.rest().to_vec(),
        size: r.size(),
        oversize: r.oversize(),
        bare: r.bare_line_end(),
    }
}

fn same(a: &Read, b: &Read) {
    assert_eq!(a.body, b.body);
    assert_eq!(
        (a.done, &a.rest, a.size, a.oversize, a.bare),
        (b.done, &b.rest, b.size, b.oversize, b.bare)
    );
}

/// Bare CR and bare LF as CRLF, and a final CRLF on non-empty text.
fn normalised(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 2);
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'\r' if data.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

fuzz_target!(|input: &[u8]| {
    let [opts, cut, data @ ..] = input else {
        return;
    };
    let normalize = opts & 1 != 0;
    let max = if opts & 2 != 0 {
        usize::from(opts >> 2) * 4
    } else {
        usize::MAX
    };
    let piece = usize::from(*cut % 13) + 1;

    // The reader on arbitrary input: split anywhere changes nothing.
    let whole = read(max, normalize, std::iter::once(data));
    same(&whole, &read(max, normalize, data.chunks(piece)));
    same(&whole, &read(max, normalize, data.chunks(1)));
    let at = usize::from(*cut) % (data.len() + 1);
    same(
        &whole,
        &read(max, normalize, [&data[..at], &data[at..]].into_iter()),
    );
    // The end is the first CRLF "." CRLF of the stream seen from a line start.
    let mut framed = b"\r\n".to_vec();
    framed.extend_from_slice(data);
    let end = framed.windows(5).position(|w| w == b"\r\n.\r\n");
    assert_eq!(whole.done, end.is_some());
    if let Some(end) = end {
        assert_eq!(whole.rest, &framed[end + 5..]);
    }

    // Stuffing: streaming equals whole, and reading it back gives the body.
    let wire = dot_stuff(data);
    let mut s = DotStuffer::new();
    let mut streamed = Vec::new();
    for c in data.chunks(piece) {
        s.feed(c, &mut streamed);
    }
    s.finish(&mut streamed);
    assert_eq!(streamed, wire);
    let back = read(usize::MAX, false, wire.chunks(piece));
    assert!(back.done && back.rest.is_empty() && !back.bare);
    assert_eq!(back.body, normalised(data));
    same(&back, &read(usize::MAX, false, std::iter::once(&wire[..])));
});
